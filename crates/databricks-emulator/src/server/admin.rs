//! The test-only admin routes (unauthenticated): queue and clear faults, read the journal, the
//! download statistics and a statement's state.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::statements::found;
use crate::api_error::ApiError;
use crate::faults::FaultRequest;
use crate::state::AppState;

pub(super) async fn push_fault(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: FaultRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("Invalid fault: {e}")))?;
    state.faults.push(request.operation, request.fault.into());
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn clear_faults(State(state): State<AppState>) -> Response {
    state.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `{"download_bytes": n, "statements": m, "result_cache": {"hits", "produced", "stored_bytes"},
/// "downloads_in_flight_max": k}`: the bytes of chunk bodies sent so far (what a network
/// carried), the statements submitted, what the query result cache did (docs/DATABRICKS-WIRE.md
/// §6.6), and the most downloads that were in progress at once.
pub(super) async fn stats(State(state): State<AppState>) -> Response {
    let bytes = state
        .download_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    let statements = state.journal.submitted_count();
    Json(serde_json::json!({
        "download_bytes": bytes,
        "statements": statements,
        "result_cache": state.result_cache.stats(),
        "downloads_in_flight_max": state.downloads.max.load(std::sync::atomic::Ordering::Relaxed),
    }))
    .into_response()
}

pub(super) async fn journal(State(state): State<AppState>) -> Response {
    Json(state.journal.snapshot()).into_response()
}

pub(super) async fn statement(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let current = found(&state, &id, |s| s.state(Instant::now()))?;
    Ok(Json(json!({"statement_id": id, "state": current.as_str()})).into_response())
}
