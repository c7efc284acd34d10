//! The Statement Execution routes: execute, poll, fetch a chunk's links, cancel, close, and the
//! sessions drivers open around them.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::plan::{failed, plan_statement};
use super::request::ExecuteRequest;
use super::warehouses::check_warehouse;
use super::{Injected, blocking};
use crate::api_error::ApiError;
use crate::auth::Authenticated;
use crate::faults::Fault;
use crate::result_cache::ResultKey;
use crate::state::AppState;
use crate::statements::{
    Disposition, LinkMaker, Outcome, State as StatementState, Statement, Timing,
};

fn link_maker(state: &AppState, headers: &HeaderMap, injected: Option<&Injected>) -> LinkMaker {
    LinkMaker {
        base: state.host_url(headers),
        ttl: state.config.link_ttl,
        expired: matches!(injected, Some(Injected(Fault::ExpiredLink))),
        per_response: state.config.links_per_response.max(1),
    }
}

/// `f` applied to statement `id`, or the 404 Databricks answers for an unknown statement.
pub(super) fn found<T>(
    state: &AppState,
    id: &str,
    f: impl FnOnce(&mut Statement) -> T,
) -> Result<T, ApiError> {
    state
        .statements
        .with(id, f)
        .ok_or_else(|| statement_not_found(id))
}

pub(super) fn statement_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Statement '{id}' was not found."),
    )
}

pub(super) async fn execute(
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
    let request = ExecuteRequest::parse(&body)?;
    let statement = request.statement()?;
    match request.warehouse_id.as_deref() {
        None | Some("") => return Err(ApiError::invalid("warehouse_id is required.")),
        Some(id) => check_warehouse(&state, id)?,
    }
    let disposition = request.disposition()?;
    let format = request.format(disposition)?;
    let wait = request.wait()?;
    let cancel_on_timeout = request.cancel_on_timeout()?;
    request.check_row_limit()?;
    let compress = request.compress()?;
    let injected = injected.map(|Extension(i)| i);
    let query = request.cache_query(&statement);
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
    let cached = match &outcome {
        Outcome::Succeeded { result, .. } if disposition == Disposition::ExternalLinks => {
            let (table, modified_ms) = result.source();
            let key = ResultKey {
                query,
                table: table.to_owned(),
                modified_ms,
                format,
                compress,
            };
            state.result_cache.entry(key, result.chunks.len())
        }
        _ => None,
    };
    let mut statement = Statement::new(
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
    );
    statement.cached = cached;
    let id = state.statements.insert(statement);
    wait_for(&state, &id, submitted, wait, cancel_on_timeout).await?;
    let links = link_maker(&state, &headers, injected.as_ref());
    let body = found(&state, &id, |s| s.response(Instant::now(), &links))?;
    Ok(Json(body).into_response())
}

/// Waits (`wait_timeout`) until statement `id` ends, cancelling it when the wait ends first and
/// the request asked for that (`on_wait_timeout: CANCEL`).
async fn wait_for(
    state: &AppState,
    id: &str,
    submitted: Instant,
    wait: Duration,
    cancel_on_timeout: bool,
) -> Result<(), ApiError> {
    let deadline = submitted + wait;
    loop {
        let now = Instant::now();
        let (current, ready_at) = found(state, id, |s| (s.state(now), s.ready_at))?;
        if current.is_terminal() || wait.is_zero() {
            return Ok(());
        }
        if now >= deadline {
            if cancel_on_timeout {
                state.statements.with(id, |s| s.cancel(now));
            }
            return Ok(());
        }
        let until = ready_at.min(deadline).min(now + Duration::from_millis(100));
        tokio::time::sleep_until(until.into()).await;
    }
}

pub(super) async fn get_statement(
    State(state): State<AppState>,
    _auth: Authenticated,
    injected: Option<Extension<Injected>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let links = link_maker(&state, &headers, injected.as_ref().map(|e| &e.0));
    let body = found(&state, &id, |s| s.response(Instant::now(), &links))?;
    Ok(Json(body).into_response())
}

pub(super) async fn get_chunk(
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

pub(super) async fn cancel(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    found(&state, &id, |s| s.cancel(Instant::now()))?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn close_statement(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    found(&state, &id, Statement::close)?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn create_session(
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

pub(super) async fn delete_session(_auth: Authenticated, Path(_id): Path<String>) -> Response {
    Json(json!({})).into_response()
}
