//! Authentication as Opal's filter chain does it (docs/OPAL-WIRE.md §2): an `opalsid` session
//! cookie or HTTP Basic credentials checked against the configured administrator and the
//! database users, the login ban after repeated failures, and the age of a session for the
//! endpoints that demand a recent sign-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use base64::Engine as _;

use crate::state::{AuthType, Store};

/// Opal's session cookie (`org.obiba.shiro.authenticationFilter.cookie.sessionId`).
pub(crate) const SESSION_COOKIE: &str = "opalsid";

/// Shiro's default session timeout: a session unused this long is gone.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The caller of one request, once authenticated.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: String,
    /// The configured administrator, or a database user in group `admin`.
    pub(crate) admin: bool,
    pub(crate) session_id: String,
    pub(crate) session_started: Instant,
}

/// What the credentials of a request came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Authenticated(Caller),
    /// No valid session and no valid credentials: the request runs as an anonymous subject,
    /// and Opal's `AuthenticationInterceptor` answers 401.
    Anonymous,
    /// `Authorization: Basic` whose decoded value has no `:` (the filter's catch-all: 400).
    Malformed,
}

#[derive(Debug)]
struct Session {
    user: String,
    started: Instant,
    last_access: Instant,
}

/// The login ban (`AbstractAuthenticationExecutor`): `max_try` failures of one user name within
/// `trial_time` ban that name for `ban_time`, during which even the right password fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginBan {
    /// Failed logins before a ban (`org.obiba.opal.security.login.maxTry`, default 3).
    pub max_try: usize,
    /// The window those failures must fall in (`…login.trialTime`, default 300 s).
    pub trial_time: Duration,
    /// How long a ban lasts (`…login.banTime`, default 300 s).
    pub ban_time: Duration,
}

impl Default for LoginBan {
    fn default() -> Self {
        LoginBan {
            max_try: 3,
            trial_time: Duration::from_secs(300),
            ban_time: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    bans: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The administrator of the configuration (Opal's `shiro.ini` user, role `admin`).
pub(crate) struct Admin<'a> {
    pub(crate) user: &'a str,
    pub(crate) password: &'a str,
}

impl Auth {
    /// Authenticates a request: a live session from the cookie wins (Shiro skips the login of a
    /// subject whose session is authenticated, whatever the `Authorization` header says); else
    /// Basic credentials open a new session.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        store: &Store,
        admin: &Admin<'_>,
        ban: Option<LoginBan>,
    ) -> Outcome {
        let now = Instant::now();
        if let Some(id) = session_cookie(headers)
            && let Some(session) = lock(&self.sessions).get_mut(&id)
            && now.duration_since(session.last_access) < SESSION_TIMEOUT
        {
            session.last_access = now;
            let user = session.user.clone();
            return Outcome::Authenticated(Caller {
                admin: is_admin(&user, store, admin),
                user,
                session_id: id,
                session_started: session.started,
            });
        }
        let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Outcome::Anonymous;
        };
        let Some(encoded) = value.strip_prefix("Basic ") else {
            return Outcome::Anonymous;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return Outcome::Anonymous;
        };
        let decoded = String::from_utf8_lossy(&decoded);
        let Some((user, password)) = decoded.split_once(':') else {
            return Outcome::Malformed;
        };
        if let Some(ban) = ban
            && let Some(since) = lock(&self.bans).get(user)
            && now.duration_since(*since) < ban.ban_time
        {
            return Outcome::Anonymous;
        }
        if !credentials_ok(user, password, store, admin) {
            self.record_failure(user, now, ban);
            return Outcome::Anonymous;
        }
        lock(&self.failures).remove(user);
        let id = uuid::Uuid::new_v4().to_string();
        lock(&self.sessions).insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                started: now,
                last_access: now,
            },
        );
        Outcome::Authenticated(Caller {
            admin: is_admin(user, store, admin),
            user: user.to_owned(),
            session_id: id,
            session_started: now,
        })
    }

    fn record_failure(&self, user: &str, now: Instant, ban: Option<LoginBan>) {
        let Some(ban) = ban else { return };
        let mut failures = lock(&self.failures);
        let list = failures.entry(user.to_owned()).or_default();
        list.push(now);
        if list.len() >= ban.max_try {
            let first = list[list.len() - ban.max_try];
            if ban.trial_time.is_zero() || now.duration_since(first) <= ban.trial_time {
                failures.remove(user);
                lock(&self.bans).insert(user.to_owned(), now);
            }
        }
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// `OpalUserRealm` (enabled database users with a password) and the `shiro.ini` administrator.
fn credentials_ok(user: &str, password: &str, store: &Store, admin: &Admin<'_>) -> bool {
    if user == admin.user {
        return crate::state::Password::new(admin.password).matches(password);
    }
    store.subjects.get(user).is_some_and(|s| {
        s.enabled
            && s.auth_type == AuthType::Password
            && s.password.as_ref().is_some_and(|p| p.matches(password))
    })
}

/// Group `admin` holds every permission (`SpatialRealm`'s `GroupPermissionResolver`).
fn is_admin(user: &str, store: &Store, admin: &Admin<'_>) -> bool {
    user == admin.user
        || store
            .subjects
            .get(user)
            .is_some_and(|s| s.groups.contains("admin"))
}
