//! A local OBiBa Opal emulator: the REST calls a DataSHIELD publisher makes, served over real
//! HTTP or HTTPS on loopback.
//!
//! No Opal server can be installed on development machines (it ships as a container image or
//! from OBiBa's own package repository), so the service's Opal client (`publish-opal`) and the
//! reference's own Python client (`obiba-opal`, `tests/python/reference_calls.py`) are tested
//! against this emulator. It follows `docs/OPAL-WIRE.md`, which traces every behaviour to Opal's
//! source (5.7.4), for these calls, all under `/ws`:
//!
//! - `GET /system/subject-profile/_current` (signing in);
//! - `GET /project/{p}`, `POST /projects`;
//! - `GET /system/group/{g}` (groups exist through their users);
//! - `GET`/`PUT /system/subject-credential/{n}`, `POST /system/subject-credentials`, with Opal's
//!   password rule ([`rules::check_password`]);
//! - `GET`/`POST /system/permissions/datashield`;
//! - `GET`/`POST /project/{p}/resources`, `GET`/`PUT /project/{p}/resource/{name}` (a `POST` of
//!   an existing name overwrites it, as Opal does);
//! - `GET`/`POST /project/{p}/permissions/resources`.
//!
//! Authentication is HTTP Basic against the configured administrator and the users created
//! through the API, with Opal's `opalsid` session cookie, its login ban after three failures
//! and its demand for a recent sign-in before creating or changing a user. A user is an
//! administrator when it is the configured one or a member of group `admin`; every other user
//! gets `403` on everything but signing in, since the emulator keeps no per-user ACLs.
//!
//! # What the emulator does NOT check — a green test is not proof of these
//!
//! - **ACL-based authorization**: no permission a non-administrator could hold is honoured
//!   (`PROJECT_ADD`, a project's `PROJECT_ALL`, resource permissions given to a user): such a user
//!   gets `403` wherever Opal would look its permissions up. Permissions are stored and listed,
//!   never enforced.
//! - **Other sign-ins**: no personal access tokens (`X-Opal-Auth`), no certificates, no OpenID
//!   Connect, no two-factor codes (so a `401` never carries `WWW-Authenticate`, as in Opal
//!   without TOTP), no CSRF cookie. A certificate user is stored but cannot sign in.
//! - **Datasources and R**: projects have no database, tables or views; `datasourceStatus` is
//!   always `NONE` and the project DTO is a subset of Opal's. Resources are not tested against R,
//!   their parameters are not checked against resourcer's forms, and the `resource` summary (its
//!   URL) is computed only for provider `resourcer`, factory `sql`.
//! - **Encryption**: credentials are kept as sent, not encrypted at rest as Opal does.
//! - **Answers to malformed input**: a body that is not JSON or has a field of the wrong type
//!   gets `400` with status `BadRequest`; what Opal (RESTEasy, protobuf-java-format) sends then
//!   is not verified. RESTEasy's plain-text `404` messages (unknown path, unconvertible query
//!   parameter) are imitations. An unsupported method on a known path gets axum's empty `405`.
//! - **JSON layout**: keys and values are Opal's, but whitespace, key order and the escaping of
//!   non-ASCII characters are serde_json's, and lists Opal returns from hash sets (a user's
//!   groups, a group's members, permissions) come sorted.
//! - **Persistence and time**: everything lives in memory; sessions expire after 30 minutes
//!   unused, the login ban and the re-authentication window follow [`OpalEmulatorConfig`].
//!
//! # Faults and observation
//!
//! [`OpalEmulator::faults`] queues [`Fault`]s FIFO per [`Operation`]; [`OpalEmulator::journal`]
//! lists the requests answered (never a body or the `Authorization` header);
//! [`OpalEmulator::state`] is a snapshot of everything held, with resources' stored
//! parameters and credentials, and [`OpalEmulator::password_ok`] checks a user's password
//! without showing it. The binary exposes the same on unauthenticated, test-only routes:
//! `GET /emulator/state`, `POST /emulator/faults` with `{"operation": "create_resource",
//! "fault": {"kind": "error", "status": 500}}` (kinds `error`, `status`, `echo_request`, `delay`
//! with `millis`, `hang`, `drop_connection`), `DELETE /emulator/faults`, `GET /emulator/journal`,
//! `POST /emulator/password-check` with `{"name", "password"}`. Never expose the emulator beyond
//! loopback: those routes answer anyone, and `/emulator/state` shows stored credentials.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod auth;
mod certs;
mod error;
mod faults;
mod journal;
mod net;
pub mod rules;
mod server;
mod state;
mod wire;

pub use auth::LoginBan;
pub use certs::throwaway_tls;
pub use error::Error;
pub use faults::{Fault, Faults, Operation};
pub use journal::JournalEntry;
pub use state::{
    GroupState, OpalState, PermissionState, ProjectState, ResourceState, SubjectCredentialState,
};

/// A certificate chain and its private key, both PEM, for serving HTTPS.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The server certificate, then any intermediates.
    pub cert_pem: String,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// A user created before the emulator serves, as if an administrator had added it.
#[derive(Clone)]
pub struct SeedUser {
    /// Its name.
    pub name: String,
    /// Its password (not checked against Opal's rule).
    pub password: String,
    /// Its groups; `admin` makes it an administrator.
    pub groups: Vec<String>,
}

impl std::fmt::Debug for SeedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedUser")
            .field("name", &self.name)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// How an emulator runs.
#[derive(Clone)]
pub struct OpalEmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The administrator's name (Opal's `shiro.ini` user).
    pub admin_user: String,
    /// The administrator's password.
    pub admin_password: String,
    /// Serve HTTPS with this identity instead of HTTP.
    pub tls: Option<TlsIdentity>,
    /// Users that exist from the start.
    pub users: Vec<SeedUser>,
    /// The login ban; `None` switches it off. Default: Opal's (3 failures in 300 s ban the name
    /// for 300 s).
    pub login_ban: Option<LoginBan>,
    /// How old a session may be when it creates or changes a user
    /// (`org.obiba.opal.security.login.reAuth.timeout`, Opal 5.4 and later); `None` switches the
    /// check off. Default 300 s.
    pub reauth_timeout: Option<Duration>,
}

impl std::fmt::Debug for OpalEmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpalEmulatorConfig")
            .field("bind", &self.bind)
            .field("admin_user", &self.admin_user)
            .field("tls", &self.tls.is_some())
            .field("users", &self.users)
            .field("login_ban", &self.login_ban)
            .field("reauth_timeout", &self.reauth_timeout)
            .finish_non_exhaustive()
    }
}

impl OpalEmulatorConfig {
    /// `127.0.0.1:0`, administrator `administrator` with `admin_password`, plain HTTP, no
    /// other user, Opal's login ban and re-authentication window.
    pub fn new(admin_password: impl Into<String>) -> Self {
        OpalEmulatorConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_user: "administrator".into(),
            admin_password: admin_password.into(),
            tls: None,
            users: Vec::new(),
            login_ban: Some(LoginBan::default()),
            reauth_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// A running emulator. Dropping it stops the server in the background;
/// [`OpalEmulator::shutdown`] waits for that.
#[derive(Debug)]
pub struct OpalEmulator {
    addr: SocketAddr,
    url: String,
    shared: Arc<server::Shared>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl OpalEmulator {
    /// Binds the socket and starts serving on the current tokio runtime.
    pub async fn start(config: OpalEmulatorConfig) -> Result<OpalEmulator, Error> {
        let acceptor = config.tls.as_ref().map(net::acceptor).transpose()?;
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| Error::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.bind,
            source,
        })?;
        let tls = acceptor.is_some();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let shared = Arc::new(server::Shared {
            tls,
            started: crate::wire::now(),
            store: Mutex::new(state::Store::default()),
            auth: auth::Auth::default(),
            faults: Faults::default(),
            journal: journal::Journal::default(),
            stopping: stopping.clone(),
            config,
        });
        for user in &shared.config.users {
            let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
            add_user(&shared, &user.name, &user.password, &groups)?;
        }
        let shared_handle = shared.clone();
        let app = server::app(server::AppState(shared))
            .into_make_service_with_connect_info::<net::ConnMeta>();
        let listener = net::EmuListener::new(listener, acceptor);
        let mut stopped = stopping;
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "opal emulator server failed");
            }
        });
        tracing::info!(%addr, tls, "opal emulator listening");
        Ok(OpalEmulator {
            addr,
            url: net::base_url(addr, tls),
            shared: shared_handle,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, `http://127.0.0.1:PORT` (or `https://…`): the Opal address to give a client.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The fault queues.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every `/ws` request answered so far, oldest first (test-only routes excluded).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.journal.snapshot()
    }

    /// A snapshot of everything the emulator holds.
    pub fn state(&self) -> OpalState {
        self.shared.store().snapshot()
    }

    /// Whether `candidate` is the password of user `name` (a database user, or the
    /// administrator).
    pub fn password_ok(&self, name: &str, candidate: &str) -> bool {
        password_ok(&self.shared, name, candidate)
    }

    /// Adds a password user, as an administrator would (the password rule is not applied).
    /// Group `admin` makes it an administrator.
    pub fn add_user(&self, name: &str, password: &str, groups: &[&str]) -> Result<(), Error> {
        add_user(&self.shared, name, password, groups)
    }

    /// Stops accepting connections, releases hung requests and waits (at most 5 s) for open
    /// connections to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for OpalEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

pub(crate) fn password_ok(shared: &server::Shared, name: &str, candidate: &str) -> bool {
    if name == shared.config.admin_user {
        return state::Password::new(shared.config.admin_password.clone()).matches(candidate);
    }
    shared
        .store()
        .subjects
        .get(name)
        .and_then(|s| s.password.as_ref())
        .is_some_and(|p| p.matches(candidate))
}

fn add_user(
    shared: &server::Shared,
    name: &str,
    password: &str,
    groups: &[&str],
) -> Result<(), Error> {
    let refuse = |reason| Error::User {
        name: name.to_owned(),
        reason,
    };
    if name.trim().is_empty() || name.trim() == "*" {
        return Err(refuse("the name is empty or `*`"));
    }
    if name == shared.config.admin_user {
        return Err(refuse("it is the administrator's name"));
    }
    let mut store = shared.store();
    if store.subjects.contains_key(name) {
        return Err(refuse("a user of that name exists"));
    }
    store.save_subject(state::Subject {
        name: name.to_owned(),
        auth_type: state::AuthType::Password,
        password: Some(state::Password::new(password)),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        enabled: true,
        created: crate::wire::now(),
    });
    Ok(())
}
