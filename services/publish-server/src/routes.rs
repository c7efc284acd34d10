//! Routes: `POST /data-publish/{package,publish,validate}` (API key required) and the public
//! `GET /health`. Handlers only translate between HTTP and the workflow layer.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use publish_types::{
    Envelope, PackagePayload, PackageRequest, PublishPayload, PublishRequest, ValidatePayload,
    ValidateRequest,
};
use publish_workflow::WorkflowError;
use serde_json::json;

use crate::auth::ApiKey;
use crate::error::{AppError, log_internal_errors};
use crate::extract::{BodyLimit, JsonBody};
use crate::state::AppState;

/// The service's router.
pub fn app(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/data-publish/package", post(package))
        .route("/data-publish/publish", post(publish))
        .route("/data-publish/validate", post(validate))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(BodyLimit(limit)))
        .layer(middleware::map_response(log_internal_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count_requests,
        ))
        .with_state(state)
}

async fn package(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PackageRequest>,
) -> Result<Json<Envelope<PackagePayload>>, AppError> {
    let files = run(&state, "package", state.workflow.package(req)).await?;
    Ok(Json(Envelope::success(PackagePayload {
        data_retrieved: files,
    })))
}

async fn publish(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PublishRequest>,
) -> Result<Json<Envelope<PublishPayload>>, AppError> {
    let files = run(&state, "publish", state.workflow.publish(req)).await?;
    Ok(Json(Envelope::success(PublishPayload {
        data_published: files,
    })))
}

async fn validate(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ValidateRequest>,
) -> Result<Json<Envelope<ValidatePayload>>, AppError> {
    run(&state, "validate", state.workflow.validate(req)).await?;
    Ok(Json(Envelope::success(ValidatePayload::success())))
}

async fn health() -> impl IntoResponse {
    Json(Envelope::success(json!({
        "service": "publish-service",
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// Readiness: 503 while the API key cannot be read or a destination's `staging` or
/// `production` volume is missing (not mounted), naming what is wrong; otherwise 200.
async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let mut problems = Vec::new();
    if let Err(e) = state.api_key.current() {
        problems.push(e);
    }
    let workflow = std::sync::Arc::clone(&state.workflow);
    let missing = tokio::task::spawn_blocking(move || {
        workflow
            .destinations()
            .iter()
            .filter_map(|d| d.check_containers().err().map(|e| e.to_string()))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| AppError::internal(format!("readiness check failed: {e}")))?;
    problems.extend(missing);
    if problems.is_empty() {
        Ok(Json(Envelope::success(json!({"ready": true}))))
    } else {
        Err(AppError::unavailable(
            format!("not ready: {}", problems.join("; ")),
            10,
        ))
    }
}

async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route for {method} {}; the endpoints are POST /data-publish/package, /data-publish/publish and /data-publish/validate",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Runs one operation: admitted only while fewer than `PUBLISH_MAX_CONCURRENT_OPERATIONS` run
/// (else 503 with `Retry-After`), bounded by `PUBLISH_OPERATION_TIMEOUT_SECS` (504), and stopped
/// with a 503 when a shutdown's grace period runs out. A stopped or timed-out operation is
/// dropped: what it was writing is in a temporary folder, which its drop (or, after a crash,
/// the next operation or the start-up sweep) removes.
async fn run<T>(
    state: &AppState,
    operation: &'static str,
    op: impl Future<Output = Result<T, WorkflowError>>,
) -> Result<T, AppError> {
    let began = std::time::Instant::now();
    let result = admitted(state, op).await;
    let outcome = match &result {
        Ok(_) => "success".to_owned(),
        Err(e) => e.status().as_u16().to_string(),
    };
    state.metrics.finished(operation, &outcome, began.elapsed());
    result
}

async fn admitted<T>(
    state: &AppState,
    op: impl Future<Output = Result<T, WorkflowError>>,
) -> Result<T, AppError> {
    let Ok(_permit) = state.operations.try_acquire() else {
        return Err(AppError::unavailable(
            "the service is running as many operations as it is configured for \
             (PUBLISH_MAX_CONCURRENT_OPERATIONS); retry later",
            30,
        ));
    };
    let _running = state.metrics.running();
    let mut stop = state.stop.clone();
    if *stop.borrow() {
        return Err(shutting_down());
    }
    tokio::select! {
        result = tokio::time::timeout(state.operation_timeout, op) => match result {
            Ok(result) => Ok(result?),
            Err(_) => Err(timed_out(state)),
        },
        _ = stop.wait_for(|stopped| *stopped) => Err(shutting_down()),
    }
}

fn shutting_down() -> AppError {
    AppError::unavailable(
        "the service is shutting down and stopped this operation; nothing half-written is kept — retry",
        5,
    )
}

fn timed_out(state: &AppState) -> AppError {
    AppError::new(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "the operation did not finish within {} s (PUBLISH_OPERATION_TIMEOUT_SECS); nothing was committed",
            state.operation_timeout.as_secs()
        ),
    )
}
