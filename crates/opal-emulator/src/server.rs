//! The HTTP surface: routes, the middleware every `/ws` call goes through (journal, faults,
//! authentication, authorization), the handlers, and the test-only `/emulator` routes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::header::{AUTHORIZATION, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::OpalEmulatorConfig;
use crate::auth::{Admin, Auth, Caller, Outcome, SESSION_COOKIE, SESSION_TIMEOUT};
use crate::faults::{Fault, FaultRequest, Faults, Operation};
use crate::journal::{Journal, JournalEntry};
use crate::net::ConnMeta;
use crate::rules;
use crate::state::{
    AuthType, DATASHIELD_NODE, Project, Resource, Store, Subject, SubjectType, resources_node,
};
use crate::wire::{self, Reject, client_error, empty, illegal_argument, read_message, unhandled};

/// Request bodies larger than this are refused (Opal's own limit is larger; ours are tiny).
const BODY_LIMIT: usize = 1 << 20;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: OpalEmulatorConfig,
    pub(crate) tls: bool,
    pub(crate) started: chrono::DateTime<Utc>,
    pub(crate) store: Mutex<Store>,
    pub(crate) auth: Auth,
    pub(crate) faults: Faults,
    pub(crate) journal: Journal,
    /// Turns `true` when the emulator stops, releasing hung requests.
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // Handlers never panic while holding the lock with the store half-changed.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn admin(&self) -> Admin<'_> {
        Admin {
            user: &self.config.admin_user,
            password: &self.config.admin_password,
        }
    }
}

/// Handler state: a cheap handle on [`Shared`].
#[derive(Debug, Clone)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Builds the whole application.
pub(crate) fn app(state: AppState) -> Router {
    let s = &state;
    let ws = Router::new()
        .route(
            "/ws/system/subject-profile/_current",
            observed(s, Operation::SignIn, get(sign_in)),
        )
        .route(
            "/ws/projects",
            observed(s, Operation::CreateProject, post(create_project)),
        )
        .route(
            "/ws/project/{name}",
            observed(s, Operation::GetProject, get(get_project)),
        )
        .route(
            "/ws/system/group/{name}",
            observed(s, Operation::GetGroup, get(get_group)),
        )
        .route(
            "/ws/system/subject-credentials",
            observed(s, Operation::CreateSubjectCredential, post(create_subject)),
        )
        .route(
            "/ws/system/subject-credential/{name}",
            observed(s, Operation::GetSubjectCredential, get(get_subject)).merge(observed(
                s,
                Operation::UpdateSubjectCredential,
                axum::routing::put(update_subject),
            )),
        )
        .route(
            "/ws/system/permissions/datashield",
            observed(
                s,
                Operation::ListDataShieldPermissions,
                get(list_datashield),
            )
            .merge(observed(
                s,
                Operation::AddDataShieldPermission,
                post(add_datashield),
            )),
        )
        .route(
            "/ws/project/{project}/resources",
            observed(s, Operation::ListResources, get(list_resources)).merge(observed(
                s,
                Operation::CreateResource,
                post(create_resource),
            )),
        )
        .route(
            "/ws/project/{project}/resource/{name}",
            observed(s, Operation::GetResource, get(get_resource)).merge(observed(
                s,
                Operation::UpdateResource,
                axum::routing::put(update_resource),
            )),
        )
        .route(
            "/ws/project/{project}/permissions/resources",
            observed(
                s,
                Operation::ListResourcePermissions,
                get(list_resource_perms),
            )
            .merge(observed(
                s,
                Operation::AddResourcePermission,
                post(add_resource_perm),
            )),
        );
    let admin = Router::new()
        .route("/emulator/state", get(emulator_state))
        .route(
            "/emulator/faults",
            post(emulator_push_fault).delete(emulator_clear_faults),
        )
        .route("/emulator/journal", get(emulator_journal))
        .route("/emulator/password-check", post(emulator_password_check));
    ws.merge(admin)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// RESTEasy's answer for a path no resource matches (`NotFoundExceptionMapper`: the message).
async fn not_found(request: Request) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "RESTEASY003210: Could not find resource for full path: {}",
            request.uri()
        ),
    )
        .into_response()
}

/// Wraps one operation's handler in the journal, fault, authentication and authorization
/// middleware.
fn observed(
    state: &AppState,
    op: Operation,
    route: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    route.route_layer(middleware::from_fn_with_state((state.clone(), op), observe))
}

async fn observe(
    State((state, op)): State<(AppState, Operation)>,
    ConnectInfo(conn): ConnectInfo<ConnMeta>,
    request: Request,
    next: Next,
) -> Response {
    let mut entry = JournalEntry {
        operation: Some(op),
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        status: 0,
        user: None,
    };
    let (response, user) = respond(&state, op, &conn, request, next).await;
    entry.status = response.as_ref().map_or(0, |r| r.status().as_u16());
    entry.user = user;
    state.journal.record(entry);
    match response {
        Some(response) => response,
        None => {
            // Hung until the emulator stopped, or the connection was killed: the client never
            // sees this.
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// The answer, `None` when none is to be sent, and who asked.
async fn respond(
    state: &AppState,
    op: Operation,
    conn: &ConnMeta,
    request: Request,
    next: Next,
) -> (Option<Response>, Option<String>) {
    if let Some(fault) = state.faults.pop(op) {
        match fault {
            Fault::Delay { delay } => tokio::time::sleep(delay).await,
            Fault::Hang => {
                let mut stopping = state.stopping.clone();
                let _ = stopping.wait_for(|stop| *stop).await;
                return (None, None);
            }
            Fault::DropConnection => {
                conn.kill.kill();
                return (None, None);
            }
            Fault::Error {
                status,
                error_status,
                arguments,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (
                    Some(wire::client_error_owned(status, &error_status, arguments)),
                    None,
                );
            }
            Fault::Status { status } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (Some(empty(status)), None);
            }
            Fault::EchoRequest { status } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let authorization = request
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let body = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
                    .await
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(&body).into_owned();
                return (
                    Some(wire::client_error_owned(
                        status,
                        "UnhandledException",
                        vec!["ParseException".into(), body, authorization],
                    )),
                    None,
                );
            }
        }
    }
    let outcome = {
        let store = state.store();
        state.auth.authenticate(
            request.headers(),
            &store,
            &state.admin(),
            state.config.login_ban,
        )
    };
    let caller = match outcome {
        Outcome::Malformed => return (Some(empty(StatusCode::BAD_REQUEST)), None),
        Outcome::Anonymous => {
            return (
                Some(client_error(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    &["org.apache.shiro.authz.UnauthorizedException"],
                )),
                None,
            );
        }
        Outcome::Authenticated(caller) => caller,
    };
    let user = Some(caller.user.clone());
    let needs_recent_login = matches!(
        op,
        Operation::CreateSubjectCredential | Operation::UpdateSubjectCredential
    );
    if needs_recent_login
        && let Some(timeout) = state.config.reauth_timeout
        && Instant::now().duration_since(caller.session_started) >= timeout
    {
        return (
            Some(client_error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                &["reauthentication_required"],
            )),
            user,
        );
    }
    if op != Operation::SignIn && !caller.admin {
        return (
            Some(client_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &["HTTP 403 Forbidden"],
            )),
            user,
        );
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Lax",
        caller.session_id,
        SESSION_TIMEOUT.as_secs()
    );
    let mut request = request;
    request.extensions_mut().insert(caller);
    let base = BaseUrl(base_url(state, request.headers()));
    request.extensions_mut().insert(base);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    (Some(response), user)
}

/// `uriInfo.getBaseUriBuilder()`: `scheme://host/ws/`.
#[derive(Debug, Clone)]
struct BaseUrl(String);

fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}/ws/", if state.tls { "https" } else { "http" })
}

/// `UriBuilder.path(segment)`: percent-encodes what is not allowed in a path segment.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn created(location: String) -> Response {
    let mut response = empty(StatusCode::CREATED);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn no_such_project(name: &str) -> Response {
    client_error(StatusCode::NOT_FOUND, "NoSuchProject", &[name])
}

/// Query parameters as RESTEasy sees them: every value of every name, decoded.
#[derive(Debug, Default)]
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(raw: Option<&str>) -> QueryParams {
        let raw = raw.unwrap_or("");
        QueryParams(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode_component(k), decode_component(v))
                })
                .collect(),
        )
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `@QueryParam("type") SubjectType` (no default: absent is `None`).
    fn subject_type(&self) -> Result<Option<SubjectType>, Reject> {
        match self.first("type") {
            None => Ok(None),
            Some(v) => SubjectType::parse(v)
                .map(Some)
                .ok_or_else(|| wire::bad_param("type", v).into()),
        }
    }

    /// An enum query parameter restricted to `allowed`; absent is `None`.
    fn permission(&self, allowed: &[&str]) -> Result<Option<String>, Reject> {
        match self.first("permission") {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
            Some(v) => Err(wire::bad_param("permission", v).into()),
        }
    }
}

fn decode_component(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- handlers -------------------------------------------------------------------------------

/// `SubjectProfileCurrentResource.get` (`@NoAuthorization`).
async fn sign_in(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let store = state.store();
    let (realm, created, groups) = match store.subjects.get(&caller.user) {
        Some(subject) => (
            "opal-user-realm",
            subject.created,
            subject.groups.iter().cloned().collect::<Vec<_>>(),
        ),
        None => ("opal-ini-realm", state.started, vec!["admin".to_owned()]),
    };
    let mut profile = json!({
        "principal": caller.user,
        "realm": realm,
        "created": wire::iso_8601(created),
        "lastUpdate": wire::iso_8601(created),
        "otpEnabled": false,
        "otpRequired": false,
    });
    if !groups.is_empty() {
        profile["groups"] = Value::from(groups);
    }
    wire::dto(profile)
}

fn project_dto(project: &Project) -> Value {
    let mut dto = json!({
        "name": project.name,
        "title": project.title,
        "datasource": {
            "name": project.name,
            "type": "null",
            "link": format!("/datasource/{}", project.name),
        },
        "link": format!("/project/{}", project.name),
        "archived": false,
        "datasourceStatus": "NONE",
    });
    if let Some(description) = project.description.as_ref().filter(|d| !d.is_empty()) {
        dto["description"] = Value::from(description.clone());
    }
    if !project.tags.is_empty() {
        dto["tags"] = Value::from(project.tags.clone());
    }
    dto
}

/// `ProjectResource.get`.
async fn get_project(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.store().projects.get(&name) {
        Some(project) => wire::dto(project_dto(project)),
        None => no_such_project(&name),
    }
}

/// `ProjectsResource.createProject`.
async fn create_project(
    State(state): State<AppState>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let message = match read_message(&headers, &body, "ProjectFactoryDto", &["name"]) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let fields = (|| {
        Ok::<_, Reject>((
            message.string_or_default("name")?,
            message.string_or_default("title")?,
            message.string("description")?,
            message.strings("tags")?,
        ))
    })();
    let (name, title, description, tags) = match fields {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let mut store = state.store();
    if store.projects.contains_key(&name) {
        return illegal_argument("Project already exists");
    }
    if !rules::project_name_ok(&name) {
        return illegal_argument(
            "Project nome invalid: only words, blank space, underscore and hyphen characters are valid",
        );
    }
    if title.trim().is_empty() {
        return client_error(StatusCode::BAD_REQUEST, "ConstraintViolation", &[]);
    }
    store.projects.insert(
        name.clone(),
        Project {
            name: name.clone(),
            title,
            description,
            tags,
        },
    );
    created(format!("{base}project/{}", encode_segment(&name)))
}

/// `GroupResource.getGroup`.
async fn get_group(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.store().groups.get(&name) {
        Some(members) => {
            let mut dto = json!({"name": name});
            if !members.is_empty() {
                dto["subjectCredentials"] =
                    Value::from(members.iter().cloned().collect::<Vec<_>>());
            }
            wire::dto(dto)
        }
        None => empty(StatusCode::NOT_FOUND),
    }
}

fn subject_dto(subject: &Subject) -> Value {
    let mut dto = json!({
        "name": subject.name,
        "authenticationType": subject.auth_type.as_str(),
        "enabled": subject.enabled,
    });
    if !subject.groups.is_empty() {
        dto["groups"] = Value::from(subject.groups.iter().cloned().collect::<Vec<_>>());
    }
    dto
}

/// `SubjectCredentialResource.get`.
async fn get_subject(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.store().subjects.get(&name) {
        Some(subject) => wire::dto(subject_dto(subject)),
        None => empty(StatusCode::NOT_FOUND),
    }
}

const AUTH_TYPES: &[(&str, i64)] = &[("PASSWORD", 1), ("CERTIFICATE", 2)];

/// A `SubjectCredentialsDto` read from a request.
struct SubjectBody {
    name: String,
    auth_type: AuthType,
    password: Option<String>,
    has_certificate: bool,
    groups: BTreeSet<String>,
    enabled: bool,
}

fn read_subject(headers: &HeaderMap, body: &[u8]) -> Result<SubjectBody, Reject> {
    let message = read_message(
        headers,
        body,
        "SubjectCredentialsDto",
        &["name", "authenticationType"],
    )?;
    let auth_type = match message
        .enumeration(
            "authenticationType",
            "SubjectCredentialsDto.AuthenticationType",
            AUTH_TYPES,
        )?
        .as_deref()
    {
        Some("CERTIFICATE") => AuthType::Certificate,
        _ => AuthType::Password,
    };
    Ok(SubjectBody {
        name: message.string_or_default("name")?,
        auth_type,
        password: message.string("password")?,
        has_certificate: message
            .string("certificate")?
            .is_some_and(|c| !c.is_empty()),
        groups: message.strings("groups")?.into_iter().collect(),
        // `optional bool enabled = 6 [default = true]`.
        enabled: message.bool("enabled")?.unwrap_or(true),
    })
}

/// `SubjectCredentialsResource.create`, then `SubjectCredentialsServiceImpl.save`.
async fn create_subject(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let subject = match read_subject(&headers, &body) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if subject.name.trim().is_empty() {
        return illegal_argument("Subject name cannot be empty");
    }
    if subject.name.trim() == "*" {
        return illegal_argument("Subject name not allowed");
    }
    if subject.groups.iter().any(|g| g.trim() == "*") {
        return illegal_argument("Group name not allowed");
    }
    let mut store = state.store();
    if store.subjects.contains_key(&subject.name) {
        return client_error(
            StatusCode::CONFLICT,
            "Conflict",
            &["Subject name must be unique"],
        );
    }
    match subject.auth_type {
        AuthType::Password => {
            if let Some(password) = &subject.password
                && let Err(problem) = rules::check_password(password)
            {
                return client_error(
                    StatusCode::BAD_REQUEST,
                    problem.error_status(),
                    &[problem.message()],
                );
            }
        }
        AuthType::Certificate => {
            if !subject.has_certificate {
                return illegal_argument("Subject certificate must be unique");
            }
        }
    }
    if subject.name == state.config.admin_user {
        // The administrator's profile lives in the `shiro.ini` realm (`validateProfile`).
        return client_error(
            StatusCode::BAD_REQUEST,
            "DuplicateSubjectProfile",
            &[&format!(
                "A subject with name '{}' already exists in a different realm: opal-ini-realm",
                subject.name
            )],
        );
    }
    store.save_subject(Subject {
        name: subject.name,
        auth_type: subject.auth_type,
        password: match subject.auth_type {
            AuthType::Password => subject.password.map(crate::state::Password::new),
            AuthType::Certificate => None,
        },
        groups: subject.groups,
        enabled: subject.enabled,
        created: crate::wire::now(),
    });
    empty(StatusCode::OK)
}

/// `SubjectCredentialResource.update`, then `SubjectCredentialsServiceImpl.save`.
async fn update_subject(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let subject = match read_subject(&headers, &body) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if subject.name != name {
        return empty(StatusCode::BAD_REQUEST);
    }
    let mut store = state.store();
    let Some(existing) = store.subjects.get(&name) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if subject.groups.iter().any(|g| g.trim() == "*") {
        return empty(StatusCode::BAD_REQUEST);
    }
    let password = match subject.auth_type {
        AuthType::Password => match subject.password.filter(|p| !p.is_empty()) {
            Some(p) => {
                if let Err(problem) = rules::check_password(&p) {
                    return client_error(
                        StatusCode::BAD_REQUEST,
                        problem.error_status(),
                        &[problem.message()],
                    );
                }
                Some(crate::state::Password::new(p))
            }
            None => None,
        },
        AuthType::Certificate => None,
    };
    if existing.auth_type != subject.auth_type {
        return illegal_argument("Authentication type cannot be changed");
    }
    store.save_subject(Subject {
        name: subject.name,
        auth_type: subject.auth_type,
        password,
        groups: subject.groups,
        enabled: subject.enabled,
        created: crate::wire::now(),
    });
    empty(StatusCode::OK)
}

fn acl_dtos(store: &Store, node: &str, subject_type: Option<SubjectType>) -> Value {
    Value::from(
        store
            .node_permissions(node, subject_type)
            .into_iter()
            .map(|p| {
                json!({
                    "subject": {"principal": p.principal, "type": p.subject_type},
                    "resource": node,
                    "actions": p.actions,
                    "domain": "opal",
                })
            })
            .collect::<Vec<_>>(),
    )
}

const DATASHIELD_PERMISSIONS: &[&str] = &["DATASHIELD_ALL", "DATASHIELD_USE"];
const RESOURCES_PERMISSIONS: &[&str] = &["RESOURCES_ALL", "RESOURCES_VIEW"];

/// `DataShieldPermissionsResource.getDataShieldPermissions`.
async fn list_datashield(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = QueryParams::parse(query.as_deref());
    let subject_type = match params.subject_type() {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    wire::dto(acl_dtos(&state.store(), DATASHIELD_NODE, subject_type))
}

/// The query parameters of a permission `POST`, converted as JAX-RS does before the method
/// runs (an unknown `type` or `permission` is a 404); `type` defaults to `USER`.
struct PermissionPost {
    subject_type: SubjectType,
    principals: Vec<String>,
    permission: Option<String>,
}

impl PermissionPost {
    fn parse(params: &QueryParams, allowed: &[&str]) -> Result<PermissionPost, Reject> {
        Ok(PermissionPost {
            subject_type: params.subject_type()?.unwrap_or(SubjectType::User),
            permission: params.permission(allowed)?,
            principals: params.all("principal"),
        })
    }

    /// In the method, Java evaluates `permission.name()` (500 when absent) before
    /// `validatePrincipals` (400 when none).
    fn require(self, converter: &str) -> Result<(SubjectType, Vec<String>, String), Reject> {
        let Some(permission) = self.permission else {
            return Err(Reject::from(unhandled(
                "NullPointerException",
                &format!(
                    "Cannot invoke \"{converter}$Permission.name()\" because \"permission\" is null"
                ),
            )));
        };
        if self.principals.is_empty() {
            return Err(
                client_error(StatusCode::BAD_REQUEST, "A principal is required.", &[]).into(),
            );
        }
        Ok((self.subject_type, self.principals, permission))
    }
}

/// `DataShieldPermissionsResource.setDataShieldPermission`.
async fn add_datashield(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = QueryParams::parse(query.as_deref());
    let post = PermissionPost::parse(&params, DATASHIELD_PERMISSIONS)
        .and_then(|p| p.require("org.obiba.opal.core.security.DataShieldPermissionConverter"));
    let (subject_type, principals, permission) = match post {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let mut store = state.store();
    for principal in &principals {
        store.set_permission(DATASHIELD_NODE, subject_type, principal, &permission);
    }
    empty(StatusCode::OK)
}

/// `ProjectResourceReferencesPermissionsResource.getPermissions`.
async fn list_resource_perms(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = QueryParams::parse(query.as_deref());
    let subject_type = match params.subject_type() {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = params.permission(RESOURCES_PERMISSIONS) {
        return r.into_response();
    }
    let store = state.store();
    if !store.projects.contains_key(&project) {
        return no_such_project(&project);
    }
    wire::dto(acl_dtos(&store, &resources_node(&project), subject_type))
}

/// `ProjectResourceReferencesPermissionsResource.setPermission`: the project is checked
/// (404) before the permission and principals.
async fn add_resource_perm(
    State(state): State<AppState>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = QueryParams::parse(query.as_deref());
    let post = match PermissionPost::parse(&params, RESOURCES_PERMISSIONS) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let mut store = state.store();
    if !store.projects.contains_key(&project) {
        return no_such_project(&project);
    }
    let (subject_type, principals, permission) = match post
        .require("org.obiba.opal.core.security.ProjectResourceReferencesPermissionConverter")
    {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let node = resources_node(&project);
    for principal in &principals {
        store.set_permission(&node, subject_type, principal, &permission);
    }
    empty(StatusCode::OK)
}

/// `Dtos.asDto(ResourceReference, Resource, editable)`.
fn resource_dto(resource: &Resource, editable: bool) -> Value {
    let mut dto = json!({
        "name": resource.name,
        "project": resource.project,
        "provider": resource.provider,
        "factory": resource.factory,
        "parameters": resource.parameters,
        "created": wire::instant(resource.created),
        "updated": wire::instant(resource.updated),
        "editable": editable,
    });
    if let Some(description) = resource.description.as_ref().filter(|d| !d.is_empty()) {
        dto["description"] = Value::from(description.clone());
    }
    if editable {
        dto["credentials"] = Value::from(resource.credentials.clone());
    }
    if let Some(summary) = resource_summary(resource) {
        dto["resource"] = summary;
    }
    dto
}

/// The `resource` summary resourcer's `sql` factory makes (`resource.js`):
/// `driver://host:port/db/[schema/]table`. Other providers are not emulated.
fn resource_summary(resource: &Resource) -> Option<Value> {
    if resource.provider != "resourcer" || resource.factory != "sql" {
        return None;
    }
    let params: Value = serde_json::from_str(&resource.parameters).ok()?;
    let text = |key: &str| match params.get(key) {
        None | Some(Value::Null) => "undefined".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let mut table = text("table");
    if params
        .get("schema")
        .is_some_and(|s| !s.is_null() && s.as_str() != Some(""))
    {
        table = format!("{}/{table}", text("schema"));
    }
    Some(json!({
        "name": resource.name,
        "url": format!("{}://{}:{}/{}/{table}", text("driver"), text("host"), text("port"), text("db")),
    }))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    safe: Option<String>,
}

/// `ProjectResourceReferencesResource.list`: sorted by name; credentials only with
/// `safe=false` (`Boolean.valueOf`: anything but `true`, any case, is false).
async fn list_resources(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Response {
    let safe = query.safe.is_none_or(|s| s.eq_ignore_ascii_case("true"));
    let store = state.store();
    if !store.projects.contains_key(&project) {
        return no_such_project(&project);
    }
    let list: Vec<Value> = store
        .resources
        .values()
        .filter(|r| r.project == project)
        .map(|r| resource_dto(r, !safe && caller.admin))
        .collect();
    wire::dto(Value::from(list))
}

/// `ProjectResourceReferenceResource.get`.
async fn get_resource(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, name)): Path<(String, String)>,
) -> Response {
    let store = state.store();
    if !store.projects.contains_key(&project) {
        return no_such_project(&project);
    }
    match store.resources.get(&(project.clone(), name.clone())) {
        Some(resource) => wire::dto(resource_dto(resource, caller.admin)),
        None => client_error(StatusCode::NOT_FOUND, "NoSuchResource", &[&project, &name]),
    }
}

/// A `ResourceReferenceDto` read from a request (`Dtos.fromDto`).
fn read_resource(headers: &HeaderMap, body: &[u8]) -> Result<Resource, Reject> {
    let message = read_message(
        headers,
        body,
        "ResourceReferenceDto",
        &["name", "project", "provider", "factory", "parameters"],
    )?;
    let now = crate::wire::now();
    Ok(Resource {
        name: message.string_or_default("name")?,
        description: message.string("description")?,
        project: message.string_or_default("project")?,
        provider: message.string_or_default("provider")?,
        factory: message.string_or_default("factory")?,
        parameters: message.string_or_default("parameters")?,
        // `getCredentials()` of an absent optional string is "".
        credentials: message.string_or_default("credentials")?,
        created: now,
        updated: now,
    })
}

fn reserved_name() -> Response {
    client_error(StatusCode::BAD_REQUEST, "ReservedResourceName", &[])
}

/// `ProjectResourceReferencesResource.createResourceReference`: saved over any reference of
/// the same name (`OrientDbServiceImpl.save` finds it by its unique properties and copies the
/// new one onto it, `created` included).
async fn create_resource(
    State(state): State<AppState>,
    Extension(BaseUrl(base)): Extension<BaseUrl>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resource = match read_resource(&headers, &body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    if resource.project != project {
        return illegal_argument(&format!("Expected project name: {project}"));
    }
    let mut store = state.store();
    if !store.projects.contains_key(&project) {
        return no_such_project(&project);
    }
    if resource.name == "*" {
        return reserved_name();
    }
    let location = format!(
        "{base}project/{}/resource/{}",
        encode_segment(&project),
        encode_segment(&resource.name)
    );
    store
        .resources
        .insert((project, resource.name.clone()), resource);
    created(location)
}

/// `ProjectResourceReferenceResource.update`: the original is deleted and the new one saved
/// with the original's `created` (so it may be renamed).
async fn update_resource(
    State(state): State<AppState>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut resource = match read_resource(&headers, &body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    if resource.project != project {
        return illegal_argument(&format!("Expecting a resource of project: {project}"));
    }
    let mut store = state.store();
    if !store.projects.contains_key(&project) {
        return no_such_project(&project);
    }
    if resource.name == "*" {
        return reserved_name();
    }
    let Some(original) = store.resources.remove(&(project.clone(), name.clone())) else {
        return client_error(StatusCode::NOT_FOUND, "NoSuchResource", &[&project, &name]);
    };
    resource.created = original.created;
    store
        .resources
        .insert((project, resource.name.clone()), resource);
    empty(StatusCode::OK)
}

// ---- test-only routes -----------------------------------------------------------------------

async fn emulator_state(State(state): State<AppState>) -> Response {
    Json(state.store().snapshot()).into_response()
}

async fn emulator_push_fault(State(state): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultRequest>(&body) {
        Ok(request) => {
            state.faults.push(request.operation, request.fault.into());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn emulator_clear_faults(State(state): State<AppState>) -> Response {
    state.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn emulator_journal(State(state): State<AppState>) -> Response {
    Json(state.journal.snapshot()).into_response()
}

#[derive(Debug, Deserialize)]
struct PasswordCheck {
    name: String,
    password: String,
}

async fn emulator_password_check(State(state): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<PasswordCheck>(&body) {
        Ok(check) => Json(json!({
            "ok": crate::password_ok(&state, &check.name, &check.password),
            "meets_opal_rule": rules::check_password(&check.password).is_ok(),
        }))
        .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}
