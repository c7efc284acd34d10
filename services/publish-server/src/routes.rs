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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(BodyLimit(limit)))
        .layer(middleware::map_response(log_internal_errors))
        .with_state(state)
}

async fn package(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PackageRequest>,
) -> Result<Json<Envelope<PackagePayload>>, AppError> {
    let files = with_timeout(&state, state.workflow.package(req)).await?;
    Ok(Json(Envelope::success(PackagePayload {
        data_retrieved: files,
    })))
}

async fn publish(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PublishRequest>,
) -> Result<Json<Envelope<PublishPayload>>, AppError> {
    let files = with_timeout(&state, state.workflow.publish(req)).await?;
    Ok(Json(Envelope::success(PublishPayload {
        data_published: files,
    })))
}

async fn validate(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ValidateRequest>,
) -> Result<Json<Envelope<ValidatePayload>>, AppError> {
    with_timeout(&state, state.workflow.validate(req)).await?;
    Ok(Json(Envelope::success(ValidatePayload::success())))
}

async fn health() -> impl IntoResponse {
    Json(Envelope::success(json!({
        "service": "publish-service",
        "version": env!("CARGO_PKG_VERSION"),
    })))
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

async fn with_timeout<T>(
    state: &AppState,
    op: impl Future<Output = Result<T, WorkflowError>>,
) -> Result<T, AppError> {
    match tokio::time::timeout(state.operation_timeout, op).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(AppError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the operation did not finish within {} s (PUBLISH_OPERATION_TIMEOUT_SECS); nothing was committed",
                state.operation_timeout.as_secs()
            ),
        )),
    }
}
