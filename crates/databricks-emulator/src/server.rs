//! The HTTP surface: routes, the fault/journal middleware, and the Unity Catalog, statement,
//! session, download and admin handlers.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::EmulatorConfig;
use crate::auth::{self, Authenticated, Tokens, host_url};
use crate::catalog::{Catalog, InfoParts, LookupError, data_file};
use crate::faults::{Fault, FaultRequest, Faults, Operation};
use crate::governance;
use crate::journal::{Journal, JournalEntry};
use crate::result::{Format, Limits, ResultSet};
use crate::sql;
use crate::statements::{
    CHECK_HEADER, Disposition, LinkMaker, Outcome, State as StatementState, Statement, Statements,
    Timing,
};
use crate::types::{backtick, quote_if_needed};

/// An INLINE result larger than this fails, as on Databricks.
const INLINE_LIMIT: usize = 25 * 1024 * 1024;
/// Largest page a table list returns.
const LIST_PAGE_CAP: usize = 50;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) url: String,
    pub(crate) catalog: Catalog,
    pub(crate) tokens: Tokens,
    pub(crate) statements: Statements,
    pub(crate) faults: Faults,
    pub(crate) journal: Journal,
    /// Bytes of chunk bodies sent from the external-link routes (`GET /emulator/stats`).
    pub(crate) download_bytes: std::sync::atomic::AtomicU64,
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

/// A Databricks error answer: `{"error_code": ..., "message": ...}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error_code: String,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        error_code: &str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            error_code: error_code.to_owned(),
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }
}

/// A throttling answer with `Retry-After`: in cloud storage's format for a result link
/// (`storage`), otherwise in the REST API's `(error_code, message)`.
fn busy(
    storage: bool,
    status: StatusCode,
    (api_code, api_message): (&str, &str),
    storage_message: &str,
    retry_after_secs: u64,
) -> Response {
    let mut response = if storage {
        storage_error(status, "ServerBusy", storage_message)
    } else {
        ApiError::new(status, api_code, api_message).into_response()
    };
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error_code": self.error_code, "message": self.message})),
        )
            .into_response()
    }
}

/// A cloud-storage style XML error, as a presigned-URL host answers.
fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{}\nTime:{}</Message></Error>",
        uuid::Uuid::new_v4(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    (status, [(CONTENT_TYPE, "application/xml")], body).into_response()
}

/// A fault the middleware hands to the handler because only the handler can apply it.
#[derive(Debug, Clone)]
struct Injected(Fault);

/// The path as the client sent it, before trailing slashes were trimmed.
#[derive(Debug, Clone)]
struct OriginalPath(String);

/// Builds the whole application.
pub(crate) fn app(state: AppState) -> Router {
    let s = &state;
    let api = Router::new()
        .route(
            "/oidc/v1/token",
            observed(s, Operation::Token, post(auth::token)),
        )
        .route(
            "/{tenant}/oauth2/v2.0/token",
            observed(s, Operation::Token, post(auth::entra_token)),
        )
        .route(
            "/.well-known/databricks-config",
            observed(s, Operation::Discovery, get(auth::databricks_config)),
        )
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            observed(s, Operation::Discovery, get(auth::authorization_server)),
        )
        .route(
            "/oidc/.well-known/openid-configuration",
            observed(s, Operation::Discovery, get(auth::authorization_server)),
        )
        .route(
            "/api/2.1/unity-catalog/schemas/{full_name}",
            observed(s, Operation::GetSchema, get(get_schema)),
        )
        .route(
            "/api/2.1/unity-catalog/tables",
            observed(s, Operation::ListTables, get(list_tables)),
        )
        .route(
            "/api/2.1/unity-catalog/tables/{full_name}",
            observed(s, Operation::GetTable, get(get_table)),
        )
        .route(
            "/api/2.0/sql/statements",
            observed(s, Operation::ExecuteStatement, post(execute)),
        )
        .route(
            "/api/2.0/sql/statements/{id}",
            observed(s, Operation::GetStatement, get(get_statement)).merge(observed(
                s,
                Operation::CloseStatement,
                delete(close_statement),
            )),
        )
        .route(
            "/api/2.0/sql/statements/{id}/result/chunks/{chunk}",
            observed(s, Operation::GetChunk, get(get_chunk)),
        )
        .route(
            "/api/2.0/sql/statements/{id}/cancel",
            observed(s, Operation::Cancel, post(cancel)),
        )
        .route(
            "/api/2.0/sql/sessions",
            observed(s, Operation::CreateSession, post(create_session)),
        )
        .route(
            "/api/2.0/sql/sessions/{id}",
            observed(s, Operation::DeleteSession, delete(delete_session)),
        )
        .route(
            "/api/2.0/sql/warehouses/{id}",
            observed(s, Operation::GetWarehouse, get(get_warehouse)),
        )
        .route(
            "/external/{id}/{chunk}",
            observed(s, Operation::Download, get(download)),
        )
        .route(
            "/emulator/faults",
            post(admin_push_fault).delete(admin_clear_faults),
        )
        .route("/emulator/journal", get(admin_journal))
        .route("/emulator/stats", get(admin_stats))
        .route("/emulator/statements/{id}", get(admin_statement))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(17 * 1024 * 1024))
        .with_state(state.clone());
    Router::new()
        .fallback_service(api)
        .layer(middleware::map_request(trim_trailing_slash))
}

/// Accepts every path with or without a trailing slash (the JDBC driver adds one).
async fn trim_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(OriginalPath(path.clone()));
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let path_and_query = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// Wraps a route with fault injection and journaling for `operation`.
fn observed(
    state: &AppState,
    operation: Operation,
    route: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    route.layer(middleware::from_fn_with_state(
        (state.clone(), operation),
        observe,
    ))
}

async fn observe(
    State((state, operation)): State<(AppState, Operation)>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let path = req
        .extensions()
        .get::<OriginalPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.0.clone());
    let authorization = req.headers().contains_key(AUTHORIZATION);
    let storage = operation == Operation::Download;
    let response = match state.faults.pop(operation) {
        None => next.run(req).await,
        Some(Fault::Slow { delay }) => {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => busy(
            storage,
            StatusCode::TOO_MANY_REQUESTS,
            (
                "REQUEST_LIMIT_EXCEEDED",
                "Too many requests. Please wait and retry.",
            ),
            "The server is busy.",
            retry_after_secs,
        ),
        Some(Fault::Unavailable { retry_after_secs }) => busy(
            storage,
            StatusCode::SERVICE_UNAVAILABLE,
            (
                "TEMPORARILY_UNAVAILABLE",
                "The service is temporarily unavailable. Please retry.",
            ),
            "The server is currently unable to receive requests. Please retry your request.",
            retry_after_secs,
        ),
        Some(Fault::Error {
            status,
            error_code,
            message,
        }) => ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &error_code,
            message,
        )
        .into_response(),
        Some(other) => {
            req.extensions_mut().insert(Injected(other));
            next.run(req).await
        }
    };
    state.journal.record(JournalEntry {
        operation: Some(operation),
        method,
        path,
        status: response.status().as_u16(),
        authorization,
    });
    response
}

async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    let path = req
        .extensions()
        .get::<OriginalPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.0.clone());
    state.journal.record(JournalEntry {
        operation: None,
        method: req.method().to_string(),
        path: path.clone(),
        status: 404,
        authorization: req.headers().contains_key(AUTHORIZATION),
    });
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!("No API found for '{} {path}'", req.method()),
    )
    .into_response()
}

fn lookup_error(error: LookupError) -> ApiError {
    match error {
        LookupError::Catalog(name) => ApiError::new(
            StatusCode::NOT_FOUND,
            "CATALOG_DOES_NOT_EXIST",
            format!("Catalog '{name}' does not exist."),
        ),
        LookupError::Schema(name) => ApiError::new(
            StatusCode::NOT_FOUND,
            "SCHEMA_DOES_NOT_EXIST",
            format!("Schema '{name}' does not exist."),
        ),
        LookupError::Table(name) => ApiError::new(
            StatusCode::NOT_FOUND,
            "TABLE_DOES_NOT_EXIST",
            format!("Table '{name}' does not exist."),
        ),
        LookupError::Unreadable(detail) => {
            tracing::error!(%detail, "table files unreadable");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "The table's files could not be read.",
            )
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal error.",
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Unity Catalog

/// Splits a dot-joined full name into exactly `N` non-empty parts (`what` names the shape in the
/// error, e.g. `<catalog>.<schema>`).
fn name_parts<const N: usize>(
    full_name: &str,
    kind: &str,
    what: &str,
) -> Result<[String; N], ApiError> {
    let parts: Vec<String> = full_name.split('.').map(str::to_owned).collect();
    match <[String; N]>::try_from(parts) {
        Ok(parts) if parts.iter().all(|p| !p.is_empty()) => Ok(parts),
        _ => Err(ApiError::invalid(format!(
            "Invalid {kind} full name '{full_name}': expected {what}."
        ))),
    }
}

/// A boolean query flag: absent is `false`; `true`/`false` in any case, anything else a 400.
fn flag(query: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match query.get(key) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::invalid(format!(
            "Invalid value '{v}' for {key}: expected true or false."
        ))),
    }
}

/// `GET /api/2.1/unity-catalog/schemas/{catalog.schema}`: a `SchemaInfo`.
async fn get_schema(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(full_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let [c, s] = name_parts(&full_name, "schema", "<catalog>.<schema>")?;
    // No schema is browse-only, so the flag changes nothing; it is still checked.
    flag(&query, "include_browse")?;
    let st = state.clone();
    let schema = blocking(move || st.catalog.schema(&c, &s))
        .await?
        .map_err(lookup_error)?;
    Ok(Json(schema.info()).into_response())
}

async fn get_table(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(full_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let [c, s, t] = name_parts(&full_name, "table", "<catalog>.<schema>.<table>")?;
    for key in [
        "include_browse",
        "include_delta_metadata",
        "include_manifest_capabilities",
    ] {
        flag(&query, key)?;
    }
    let st = state.clone();
    let table = blocking(move || st.catalog.table(&c, &s, &t))
        .await?
        .map_err(lookup_error)?;
    Ok(Json(table.info(InfoParts::DETAIL)).into_response())
}

async fn list_tables(
    State(state): State<AppState>,
    _auth: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let required = |key: &str| {
        query
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| ApiError::invalid(format!("Missing required field: {key}")))
    };
    let catalog = required("catalog_name")?;
    let schema = required("schema_name")?;
    // Omitted: the legacy unpaginated answer; 0: the server's page size; above: capped.
    let page_size = match query.get("max_results") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(0) => Some(LIST_PAGE_CAP),
            Ok(n) if n > 0 => Some(
                usize::try_from(n)
                    .unwrap_or(LIST_PAGE_CAP)
                    .min(LIST_PAGE_CAP),
            ),
            _ => {
                return Err(ApiError::invalid(format!(
                    "Invalid max_results '{v}': must be an integer greater than or equal to 0."
                )));
            }
        },
    };
    let offset = match query.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.strip_prefix("offset:")?.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid("Invalid page_token"))?,
    };
    // No table is browse-only, so include_browse changes nothing; it is still checked.
    flag(&query, "include_browse")?;
    flag(&query, "include_manifest_capabilities")?;
    let parts = InfoParts {
        constraints: false,
        columns: !flag(&query, "omit_columns")?,
        properties: !flag(&query, "omit_properties")?,
        usernames: !flag(&query, "omit_username")?,
    };
    let st = state.clone();
    let (tables, more) = blocking(move || st.catalog.tables(&catalog, &schema, offset, page_size))
        .await?
        .map_err(lookup_error)?;
    let mut body = serde_json::Map::new();
    if !tables.is_empty() {
        let infos: Vec<Value> = tables.iter().map(|t| t.info(parts)).collect();
        body.insert("tables".into(), Value::Array(infos));
    }
    if more {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("offset:{}", offset + tables.len()));
        body.insert("next_page_token".into(), json!(token));
    }
    Ok(Json(Value::Object(body)).into_response())
}

// ---------------------------------------------------------------------------------------------
// Statement execution

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExecuteRequest {
    statement: Option<String>,
    warehouse_id: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
    disposition: Option<String>,
    format: Option<String>,
    wait_timeout: Option<String>,
    on_wait_timeout: Option<String>,
    row_limit: Option<i64>,
    byte_limit: Option<i64>,
    parameters: Option<Vec<Parameter>>,
    result_compression: Option<String>,
}

/// One named parameter of a statement (`:name` in the SQL).
#[derive(Debug, Deserialize)]
struct Parameter {
    name: String,
    value: Option<String>,
    #[serde(rename = "type")]
    ty: Option<String>,
}

fn parse_wait_timeout(value: Option<&str>) -> Result<Duration, ApiError> {
    let text = value.unwrap_or("10s");
    let secs = text
        .strip_suffix('s')
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n == 0 || (5..=50).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "wait_timeout must be 0s or between 5s and 50s, got '{text}'."
            ))
        })?;
    Ok(Duration::from_secs(secs))
}

/// The values of the parameters `names` as the request binds them, as `STRING`s; an unbound
/// name fails the statement as Databricks does.
fn bound_values(request: &ExecuteRequest, names: &[String]) -> Result<Vec<String>, Outcome> {
    let bound = request.parameters.as_deref().unwrap_or_default();
    names
        .iter()
        .map(|name| {
            let parameter = bound.iter().find(|p| p.name == *name).ok_or_else(|| {
                failed(
                    "BAD_REQUEST",
                    format!(
                        "[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {name}. Please, fix \
                         `args` and provide a mapping of the parameter to either a SQL literal \
                         or collection constructor functions such as `map()`, `array()`, \
                         `struct()`. SQLSTATE: 42P02"
                    ),
                    Some("42P02"),
                )
            })?;
            match parameter.ty.as_deref() {
                None | Some("STRING") => Ok(parameter.value.clone().unwrap_or_default()),
                Some(other) => Err(failed(
                    "BAD_REQUEST",
                    format!("The emulator binds only STRING parameters; `{name}` is {other}."),
                    None,
                )),
            }
        })
        .collect()
}

fn failed(error_code: &str, message: String, sql_state: Option<&str>) -> Outcome {
    Outcome::Failed {
        error_code: error_code.to_owned(),
        message,
        sql_state: sql_state.map(str::to_owned),
    }
}

/// Runs the statement's planning (metadata only, plus the rows of an INLINE result).
fn plan_statement(
    state: &AppState,
    request: &ExecuteRequest,
    statement: &str,
    disposition: Disposition,
) -> Outcome {
    let parsed = match sql::parse_statement(statement) {
        Ok(parsed) => parsed,
        Err(e) => {
            return failed(
                "BAD_REQUEST",
                format!(
                    "[PARSE_SYNTAX_ERROR] Syntax error at or near '{}'. The emulator answers only \
                     SELECT <columns | *> FROM <catalog>.<schema>.<table> [VERSION AS OF <n>] \
                     [WHERE _metadata.file_path IN (:p, …)], the data files query and \
                     DESCRIBE HISTORY <table> [LIMIT <n>]. SQLSTATE: 42601 (line 1, pos {})",
                    e.near, e.pos
                ),
                Some("42601"),
            );
        }
    };
    let mut files = None;
    let mut list_files = false;
    let (parts, columns, version, history_limit) = match parsed {
        sql::Statement::Select(select) => {
            files = match select.files {
                Some(names) => match bound_values(request, &names) {
                    Ok(values) => Some(values),
                    Err(outcome) => return outcome,
                },
                None => None,
            };
            (select.table, select.columns, select.version, None)
        }
        sql::Statement::History { table, limit } => (table, None, None, Some(limit)),
        sql::Statement::Files { table, version } => {
            list_files = true;
            (table, None, version, None)
        }
    };
    let mut name = parts.clone();
    if name.len() < 3
        && let Some(schema) = request.schema.as_ref().filter(|_| name.len() == 1)
    {
        name.insert(0, schema.clone());
    }
    if name.len() == 2
        && let Some(catalog) = &request.catalog
    {
        name.insert(0, catalog.clone());
    }
    let quoted: Vec<String> = parts.iter().map(|p| backtick(p)).collect();
    let not_found = || {
        failed(
            "BAD_REQUEST",
            format!(
                "[TABLE_OR_VIEW_NOT_FOUND] The table or view {} cannot be found. Verify the \
                 spelling and correctness of the schema and catalog. SQLSTATE: 42P01",
                quoted.join(".")
            ),
            Some("42P01"),
        )
    };
    if name.len() != 3 {
        return not_found();
    }
    let unreadable = |detail: String| {
        tracing::error!(%detail, "table files unreadable");
        failed(
            "INTERNAL_ERROR",
            "The table's files could not be read.".into(),
            None,
        )
    };
    let current = match state.catalog.table(&name[0], &name[1], &name[2]) {
        Ok(table) => table,
        Err(LookupError::Unreadable(detail)) => return unreadable(detail),
        Err(_) => return not_found(),
    };
    let pinning = if history_limit.is_some() {
        Some(governance::Pinning::History)
    } else if version.is_some() {
        Some(governance::Pinning::TimeTravel)
    } else if list_files || files.is_some() {
        Some(governance::Pinning::FileMetadata)
    } else {
        None
    };
    if let Some(refusal) = current
        .governance
        .as_ref()
        .zip(pinning)
        .and_then(|(g, pinning)| g.refuses(pinning, &quoted.join(".")))
    {
        return failed("BAD_REQUEST", refusal.message, Some(refusal.sql_state));
    }
    let table = current.clone();
    let (table, limit) = match (history_limit, version) {
        (Some(limit), _) => match state.catalog.history(&table) {
            Ok(history) => (history, limit),
            Err(LookupError::Unreadable(detail)) => return unreadable(detail),
            Err(_) => return not_found(),
        },
        (None, Some(version)) => match state.catalog.table_at(&table, version) {
            Ok(Some(at)) => (at, None),
            Ok(None) => {
                return failed(
                    "BAD_REQUEST",
                    format!(
                        "[DELTA_VERSION_NOT_FOUND] Cannot time travel Delta table to version \
                         {version}. Available versions: [0, {}]. SQLSTATE: 22003",
                        table.version()
                    ),
                    Some("22003"),
                );
            }
            Err(LookupError::Unreadable(detail)) => return unreadable(detail),
            Err(_) => return not_found(),
        },
        (None, None) => (table, None),
    };
    let at_version = version.unwrap_or_else(|| current.version());
    let (table, row_groups) = if list_files {
        match state.catalog.files(&current, &table, at_version) {
            Ok(files) => (files, None),
            Err(LookupError::Unreadable(detail)) => return unreadable(detail),
            Err(_) => return not_found(),
        }
    } else {
        let groups = files.map(|paths| {
            let paths: std::collections::HashSet<String> = paths.into_iter().collect();
            (0..table.reader.metadata().num_row_groups())
                .filter(|&g| paths.contains(&data_file(&table, at_version, g)))
                .collect()
        });
        (table, groups)
    };
    let row_limit = request.row_limit.and_then(|n| u64::try_from(n).ok());
    let row_limit = match (row_limit, limit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let byte_limit = request.byte_limit.and_then(|n| u64::try_from(n).ok());
    let limits = Limits {
        rows: row_limit,
        bytes: Some(byte_limit.map_or(state.config.result_byte_limit, |b| {
            b.min(state.config.result_byte_limit)
        })),
        row_groups,
    };
    let result = match ResultSet::plan(
        table,
        columns.as_deref(),
        limits,
        state.config.chunk_rows,
        state.config.complex_as_json_text,
    ) {
        Ok(result) => Arc::new(result),
        Err(e) => {
            let available: Vec<String> = e.available.iter().map(|c| backtick(c)).collect();
            return failed(
                "BAD_REQUEST",
                format!(
                    "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter \
                     with name {} cannot be resolved. Did you mean one of the following? [{}]. \
                     SQLSTATE: 42703",
                    quote_if_needed(&e.name),
                    available.join(", ")
                ),
                Some("42703"),
            );
        }
    };
    let inline = if disposition == Disposition::Inline {
        match result.render_inline(INLINE_LIMIT) {
            Ok(Some(rows)) => Some(Arc::new(rows)),
            Ok(None) => {
                return failed(
                    "BAD_REQUEST",
                    "The result exceeds the 25 MiB limit of the INLINE disposition; use \
                     disposition EXTERNAL_LINKS."
                        .into(),
                    None,
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "reading inline result failed");
                return failed("INTERNAL_ERROR", "Reading the result failed.".into(), None);
            }
        }
    } else {
        None
    };
    Outcome::Succeeded { result, inline }
}

fn link_maker(state: &AppState, headers: &HeaderMap, injected: Option<&Injected>) -> LinkMaker {
    LinkMaker {
        base: host_url(headers, state),
        ttl: state.config.link_ttl,
        expired: matches!(injected, Some(Injected(Fault::ExpiredLink))),
        per_response: state.config.links_per_response.max(1),
    }
}

fn statement_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Statement '{id}' was not found."),
    )
}

async fn execute(
    State(state): State<AppState>,
    _auth: Authenticated,
    injected: Option<Extension<Injected>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let submitted = Instant::now();
    if let Ok(raw) = serde_json::from_slice::<Value>(&body) {
        state.journal.record_submitted(raw);
    }
    let request: ExecuteRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("Malformed request: {e}"),
        )
    })?;
    let statement = request
        .statement
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("statement is required."))?;
    match request.warehouse_id.as_deref() {
        None | Some("") => return Err(ApiError::invalid("warehouse_id is required.")),
        Some(id) => check_warehouse(&state, id)?,
    }
    let disposition = match request.disposition.as_deref().unwrap_or("INLINE") {
        "INLINE" => Disposition::Inline,
        "EXTERNAL_LINKS" | "INLINE_OR_EXTERNAL_LINKS" => Disposition::ExternalLinks,
        other => return Err(ApiError::invalid(format!("Unknown disposition '{other}'."))),
    };
    let format = match request.format.as_deref().unwrap_or("JSON_ARRAY") {
        "JSON_ARRAY" => Format::JsonArray,
        "ARROW_STREAM" => Format::ArrowStream,
        "CSV" => Format::Csv,
        other => return Err(ApiError::invalid(format!("Unknown format '{other}'."))),
    };
    if disposition == Disposition::Inline && format != Format::JsonArray {
        return Err(ApiError::invalid(
            "The format field must be JSON_ARRAY when the disposition field is INLINE.",
        ));
    }
    let wait = parse_wait_timeout(request.wait_timeout.as_deref())?;
    let cancel_on_timeout = match request.on_wait_timeout.as_deref().unwrap_or("CONTINUE") {
        "CONTINUE" => false,
        "CANCEL" => true,
        other => {
            return Err(ApiError::invalid(format!(
                "on_wait_timeout must be CONTINUE or CANCEL, got '{other}'."
            )));
        }
    };
    if request.row_limit.is_some_and(|n| n < 0) {
        return Err(ApiError::invalid("row_limit must not be negative."));
    }
    let compress = match request.result_compression.as_deref() {
        None | Some("NONE") => false,
        Some("LZ4_FRAME") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Unknown result_compression '{other}'."
            )));
        }
    };
    let injected = injected.map(|Extension(i)| i);
    let st = state.clone();
    let mut outcome =
        blocking(move || plan_statement(&st, &request, &statement, disposition)).await?;
    let mut running = Duration::ZERO;
    match &injected {
        Some(Injected(Fault::FailStatement {
            error_code,
            message,
        })) => outcome = failed(error_code, message.clone(), None),
        Some(Injected(Fault::StayRunning { duration })) => running = *duration,
        _ => {}
    }
    let id = state.statements.insert(Statement::new(
        disposition,
        format,
        compress,
        Timing {
            submitted,
            pending: state.config.pending_delay,
            running,
            result_ttl: state.config.result_ttl,
        },
        outcome,
    ));
    let deadline = submitted + wait;
    loop {
        let now = Instant::now();
        let (current, ready_at) = state
            .statements
            .with(&id, |s| (s.state(now), s.ready_at))
            .ok_or_else(|| statement_not_found(&id))?;
        if current.is_terminal() || wait.is_zero() {
            break;
        }
        if now >= deadline {
            if cancel_on_timeout {
                state.statements.with(&id, |s| s.cancel(now));
            }
            break;
        }
        let until = ready_at.min(deadline).min(now + Duration::from_millis(100));
        tokio::time::sleep_until(until.into()).await;
    }
    let links = link_maker(&state, &headers, injected.as_ref());
    let body = state
        .statements
        .with(&id, |s| s.response(Instant::now(), &links))
        .ok_or_else(|| statement_not_found(&id))?;
    Ok(Json(body).into_response())
}

async fn get_statement(
    State(state): State<AppState>,
    _auth: Authenticated,
    injected: Option<Extension<Injected>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let links = link_maker(&state, &headers, injected.as_ref().map(|e| &e.0));
    let body = state
        .statements
        .with(&id, |s| s.response(Instant::now(), &links))
        .ok_or_else(|| statement_not_found(&id))?;
    Ok(Json(body).into_response())
}

async fn get_chunk(
    State(state): State<AppState>,
    _auth: Authenticated,
    injected: Option<Extension<Injected>>,
    headers: HeaderMap,
    Path((id, chunk)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let links = link_maker(&state, &headers, injected.as_ref().map(|e| &e.0));
    let chunk: usize = chunk
        .parse()
        .map_err(|_| ApiError::invalid(format!("Invalid chunk index '{chunk}'.")))?;
    let now = Instant::now();
    let answer = state
        .statements
        .with(&id, |s| match s.state(now) {
            StatementState::Succeeded => s.result(chunk, now, &links).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Chunk index {chunk} is out of range for statement '{id}'."
                ))
            }),
            StatementState::Closed => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("The result of statement '{id}' was closed."),
            )),
            other => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!(
                    "Statement '{id}' is {}; results exist only for SUCCEEDED statements.",
                    other.as_str()
                ),
            )),
        })
        .ok_or_else(|| statement_not_found(&id))??;
    Ok(Json(answer).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state
        .statements
        .with(&id, |s| s.cancel(Instant::now()))
        .ok_or_else(|| statement_not_found(&id))?;
    Ok(StatusCode::OK.into_response())
}

async fn close_statement(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state
        .statements
        .with(&id, Statement::close)
        .ok_or_else(|| statement_not_found(&id))?;
    Ok(StatusCode::OK.into_response())
}

async fn create_session(
    State(state): State<AppState>,
    _auth: Authenticated,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Drivers send `warehouse_id` in the body; a body without one is tolerated.
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(id) = body.get("warehouse_id").and_then(Value::as_str) {
        check_warehouse(&state, id)?;
    }
    Ok(Json(json!({"session_id": uuid::Uuid::new_v4().to_string()})).into_response())
}

async fn delete_session(_auth: Authenticated, Path(_id): Path<String>) -> Response {
    Json(json!({})).into_response()
}

// ---------------------------------------------------------------------------------------------
// SQL warehouses

/// `404 RESOURCE_DOES_NOT_EXIST` unless `id` names a configured warehouse (any id does when none
/// are configured). Execute answers the same as `GET /api/2.0/sql/warehouses/{id}` [?]: the
/// reference does not document the status, and 404 with this code is what docs/DATABRICKS-WIRE.md §6 and §11 describe.
fn check_warehouse(state: &AppState, id: &str) -> Result<(), ApiError> {
    let exists = !id.is_empty()
        && state
            .config
            .warehouses
            .as_ref()
            .is_none_or(|known| known.iter().any(|w| w == id));
    if exists {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("Warehouse {id} does not exist."),
        ))
    }
}

/// `GET /api/2.0/sql/warehouses/{id}`: a running serverless warehouse (a subset of
/// GetWarehouseResponse; fields of the real answer that nothing here uses are left out).
async fn get_warehouse(
    State(state): State<AppState>,
    _auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_warehouse(&state, &id)?;
    let host = host_url(&headers, &state);
    let authority = host.trim_start_matches("http://");
    let (hostname, port) = authority
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .unwrap_or((authority, 80));
    let http_path = format!("/sql/1.0/warehouses/{id}");
    Ok(Json(json!({
        "id": id,
        "name": format!("Emulator warehouse {id}"),
        "state": "RUNNING",
        "cluster_size": "2X-Small",
        "warehouse_type": "PRO",
        "enable_serverless_compute": true,
        "enable_photon": true,
        "num_clusters": 1,
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "num_active_sessions": 0,
        "auto_stop_mins": 10,
        "spot_instance_policy": "COST_OPTIMIZED",
        "channel": {"name": "CHANNEL_NAME_CURRENT"},
        "health": {"status": "HEALTHY"},
        "creator_name": "emulator-owner@example.com",
        "jdbc_url": format!(
            "jdbc:databricks://{authority}/default;transportMode=http;ssl=0;AuthMech=11;httpPath={http_path};"
        ),
        "odbc_params": {
            "hostname": hostname,
            "path": http_path,
            "port": port,
            "protocol": "http",
        },
    }))
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// External link downloads (the stand-in for presigned cloud storage)

#[derive(Debug, Deserialize)]
struct LinkQuery {
    sig: Option<String>,
}

async fn download(
    State(state): State<AppState>,
    injected: Option<Extension<Injected>>,
    headers: HeaderMap,
    Path((id, chunk)): Path<(String, String)>,
    Query(query): Query<LinkQuery>,
) -> Response {
    if headers.contains_key(AUTHORIZATION) {
        return storage_error(
            StatusCode::FORBIDDEN,
            "InvalidAuthenticationInfo",
            "Authentication information is not given in the correct format: a presigned URL must not be sent with an Authorization header.",
        );
    }
    if matches!(injected, Some(Extension(Injected(Fault::StorageFirewall)))) {
        return storage_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailure",
            "This request is not authorized to perform this operation.",
        );
    }
    let denied = || {
        storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of the signature is formed correctly.",
        )
    };
    let (Some(sig), Ok(chunk)) = (query.sig, chunk.parse::<usize>()) else {
        return denied();
    };
    let now = Instant::now();
    let found = state.statements.with(&id, |s| {
        // A result that is gone takes its links with it.
        let link = (s.state(now) == StatementState::Succeeded)
            .then(|| s.links.get(&sig).cloned())
            .flatten();
        let result = match &s.outcome {
            Outcome::Succeeded { result, .. } => Some(result.clone()),
            Outcome::Failed { .. } => None,
        };
        (link, result, s.format, s.compress, s.check.clone())
    });
    let Some((Some(link), Some(result), format, compress, check)) = found else {
        return denied();
    };
    if link.chunk != chunk {
        return denied();
    }
    if link.expires <= chrono::Utc::now() {
        return storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Signed expiry time has passed.",
        );
    }
    if headers.get(CHECK_HEADER).and_then(|v| v.to_str().ok()) != Some(check.as_str()) {
        return storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. A header listed in http_headers is missing or wrong.",
        );
    }
    let content_type = if compress {
        "application/octet-stream"
    } else {
        format.content_type()
    };
    if matches!(injected, Some(Extension(Injected(Fault::TruncatedChunk)))) {
        let produced =
            blocking(move || result.write_chunk(chunk, format, compress, Vec::new())).await;
        return match produced {
            Ok(Ok(mut bytes)) => {
                bytes.truncate(bytes.len() / 2);
                let length = bytes.len();
                (
                    StatusCode::OK,
                    [
                        (CONTENT_TYPE, content_type.to_owned()),
                        (CONTENT_LENGTH, length.to_string()),
                    ],
                    bytes,
                )
                    .into_response()
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "producing chunk failed");
                storage_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "Internal error.",
                )
            }
            Err(e) => e.into_response(),
        };
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut writer = crate::result::ChannelWriter::new(tx);
        if let Err(e) = result.write_chunk(chunk, format, compress, &mut writer) {
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!(error = %e, "producing chunk failed");
            }
            writer.fail(e);
        }
    });
    // Counted as sent, and paced to `download_bandwidth` when set: a stand-in for the network
    // between a warehouse's storage and the service.
    let bandwidth = state.config.download_bandwidth;
    let state = state.clone();
    let began = tokio::time::Instant::now();
    let stream = futures::stream::unfold((rx, 0_u64), move |(mut rx, mut sent)| {
        let state = state.clone();
        async move {
            let item = rx.recv().await?;
            if let Ok(bytes) = &item {
                let n = bytes.len() as u64;
                sent += n;
                state
                    .download_bytes
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                if let Some(rate) = bandwidth.filter(|r| *r > 0) {
                    let due = began + Duration::from_secs_f64(sent as f64 / rate as f64);
                    tokio::time::sleep_until(due).await;
                }
            }
            Some((item, (rx, sent)))
        }
    });
    (
        StatusCode::OK,
        [(CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Test-only admin routes (unauthenticated)

async fn admin_push_fault(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: FaultRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("Invalid fault: {e}")))?;
    state.faults.push(request.operation, request.fault.into());
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn admin_clear_faults(State(state): State<AppState>) -> Response {
    state.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `{"download_bytes": n, "statements": m}`: the bytes of chunk bodies sent so far (what a
/// network carried), and the statements submitted.
async fn admin_stats(State(state): State<AppState>) -> Response {
    let bytes = state
        .download_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    let statements = state.journal.submitted_count();
    Json(serde_json::json!({ "download_bytes": bytes, "statements": statements })).into_response()
}

async fn admin_journal(State(state): State<AppState>) -> Response {
    Json(state.journal.snapshot()).into_response()
}

async fn admin_statement(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let current = state
        .statements
        .with(&id, |s| s.state(Instant::now()))
        .ok_or_else(|| statement_not_found(&id))?;
    Ok(Json(json!({"statement_id": id, "state": current.as_str()})).into_response())
}
