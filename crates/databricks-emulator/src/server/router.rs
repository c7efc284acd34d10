//! The routes, and the middleware every observed route runs through: faults applied or handed
//! to the handler, then the request written to the journal.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};

use super::Injected;
use super::admin;
use super::downloads::{download, storage_error};
use super::statements::{
    cancel, close_statement, create_session, delete_session, execute, get_chunk, get_statement,
};
use super::unity_catalog::{get_schema, get_table, list_tables};
use super::warehouses::get_warehouse;
use crate::api_error::ApiError;
use crate::auth;
use crate::faults::{Fault, Operation};
use crate::journal::JournalEntry;
use crate::state::AppState;

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
            post(admin::push_fault).delete(admin::clear_faults),
        )
        .route("/emulator/journal", get(admin::journal))
        .route("/emulator/stats", get(admin::stats))
        .route("/emulator/statements/{id}", get(admin::statement))
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
