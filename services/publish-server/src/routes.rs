//! Routes: `POST /data-publish/{package,publish,validate}` (API key required) and the public
//! `GET /health`. Handlers only translate between HTTP and the workflow layer.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use publish_types::wire::RawBody;
use publish_types::{
    Envelope, ErrorPayload, PackagePayload, PackageRequest, PublishPayload, PublishRequest,
    ValidatePayload, ValidateRequest,
};
use publish_workflow::{Interrupt, WorkflowError};
use serde_json::json;

use crate::auth::ApiKey;
use crate::error::{AppError, log_internal_errors};
use crate::extract::{BodyLimit, JsonBody};
use crate::state::AppState;

/// The service's OpenAPI document, generated from the wire and response types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "CR8TOR Publish Service", description = "Copies approved tables and columns from Databricks Unity Catalog into staging, then publishes them with a SHA-512 per file. Both request shapes are accepted: the brief's flat shape (destination_type, destination_format, credentials, metadata) and CR8TOR's nested shape (destination, source.credentials, dataset); unknown fields are ignored."),
    paths(package, publish, validate, health, ready),
    modifiers(&ApiKeyScheme, &Refusals)
)]
pub(crate) struct ApiDoc;

/// The refusals every `/data-publish/*` route can answer, in the error envelope: added to each
/// operation in one place rather than listed per route.
struct Refusals;

/// Status and meaning of each refusal (the statuses `error.rs` picks).
const REFUSALS: [(u16, &str); 10] = [
    (403, "`x-api-key` missing, wrong or sent more than once"),
    (
        404,
        "unknown destination, table, column, schema or catalog; missing container",
    ),
    (
        409,
        "another operation on the project is running; a dataset conflict; staged files that differ from their package record; nothing to publish",
    ),
    (413, "body larger than PUBLISH_MAX_BODY_BYTES"),
    (
        422,
        "malformed JSON, wrong types, or a broken rule; the detail names the field",
    ),
    (502, "the source refused or failed"),
    (
        503,
        "too many operations, shutting down, or the API key unreadable; see Retry-After",
    ),
    (504, "the source or the operation timed out"),
    (507, "the staging or production volume is full"),
    (500, "a bug; the detail is bland, the log has the rest"),
];

impl utoipa::Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::ToSchema;
        use utoipa::openapi::content::Content;
        use utoipa::openapi::response::ResponseBuilder;
        use utoipa::openapi::{Ref, RefOr};
        let envelope = "ErrorEnvelope".to_owned();
        let mut schemas = Vec::new();
        <Envelope<ErrorPayload> as ToSchema>::schemas(&mut schemas);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            envelope.to_string(),
            <Envelope<ErrorPayload> as utoipa::PartialSchema>::schema(),
        );
        components.schemas.extend(schemas);
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/data-publish/") {
                continue;
            }
            let Some(op) = item.post.as_mut() else {
                continue;
            };
            for (status, description) in REFUSALS {
                let response = ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(RefOr::Ref(Ref::from_schema_name(envelope.clone())))),
                    )
                    .build();
                op.responses
                    .responses
                    .insert(status.to_string(), RefOr::T(response));
            }
        }
    }
}

/// Declares the `x-api-key` header scheme.
struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "api_key",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
            );
    }
}

async fn openapi_json() -> impl IntoResponse {
    Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

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
        .route("/openapi.json", get(openapi_json))
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

/// Extracts one dataset's tables from the source into staging.
#[utoipa::path(post, path = "/data-publish/package", request_body = RawBody,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "the dataset is staged", body = Envelope<PackagePayload>),
    ))]
async fn package(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PackageRequest>,
) -> Result<Json<Envelope<PackagePayload>>, AppError> {
    let files = run(&state, "package", |interrupt| {
        state.workflow.package(req, interrupt)
    })
    .await?;
    Ok(Json(Envelope::success(PackagePayload {
        data_retrieved: files,
    })))
}

/// Publishes everything staged for the project to production, with a SHA-512 per file.
#[utoipa::path(post, path = "/data-publish/publish", request_body = RawBody,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "published (or already published: the same manifest)", body = Envelope<PublishPayload>),
    ))]
async fn publish(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PublishRequest>,
) -> Result<Json<Envelope<PublishPayload>>, AppError> {
    let files = run(&state, "publish", |interrupt| {
        state.workflow.publish(req, interrupt)
    })
    .await?;
    Ok(Json(Envelope::success(PublishPayload {
        data_published: files,
    })))
}

/// Checks that the source accepts the credentials and the destination's containers exist.
#[utoipa::path(post, path = "/data-publish/validate", request_body = RawBody,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "valid", body = Envelope<ValidatePayload>),
    ))]
async fn validate(
    _: ApiKey,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ValidateRequest>,
) -> Result<Json<Envelope<ValidatePayload>>, AppError> {
    run(&state, "validate", |interrupt| {
        state.workflow.validate(req, interrupt)
    })
    .await?;
    Ok(Json(Envelope::success(ValidatePayload::success())))
}

/// Liveness.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "alive")))]
async fn health() -> impl IntoResponse {
    Json(Envelope::success(json!({
        "service": "publish-service",
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// Readiness: 503 while the API key cannot be read or a destination's `staging` or
/// `production` volume is missing (not mounted), naming what is wrong; otherwise 200.
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "not ready: the detail says why", body = Envelope<ErrorPayload>),
))]
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
    AppError::no_route(format!(
        "no route for {method} {}; the endpoints are POST /data-publish/package, /data-publish/publish and /data-publish/validate",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::method_not_allowed(format!("{method} is not allowed on {}", uri.path()))
}

/// Runs one operation: admitted only while fewer than `PUBLISH_MAX_CONCURRENT_OPERATIONS` run
/// (else 503 with `Retry-After`), and given an [`Interrupt`] of `PUBLISH_OPERATION_TIMEOUT_SECS`
/// and of the end of a shutdown's grace period. What those may cut is the workflow's decision
/// ([`publish_workflow::Interrupt`]): only the work before the operation's commit point, so a
/// 504 or a 503 means nothing was committed; a commit already begun finishes and is answered.
async fn run<T, F>(
    state: &AppState,
    operation: &'static str,
    op: impl FnOnce(Interrupt) -> F,
) -> Result<T, AppError>
where
    F: Future<Output = Result<T, WorkflowError>>,
{
    let began = std::time::Instant::now();
    let result = admitted(state, op).await;
    let outcome = match &result {
        Ok(_) => "success".to_owned(),
        Err(e) => e.status().as_u16().to_string(),
    };
    state.metrics.finished(operation, &outcome, began.elapsed());
    result
}

async fn admitted<T, F>(state: &AppState, op: impl FnOnce(Interrupt) -> F) -> Result<T, AppError>
where
    F: Future<Output = Result<T, WorkflowError>>,
{
    let Ok(_permit) = state.operations.try_acquire() else {
        return Err(AppError::unavailable(
            "the service is running as many operations as it is configured for \
             (PUBLISH_MAX_CONCURRENT_OPERATIONS); retry later",
            30,
        ));
    };
    let interrupt = Interrupt::after(state.operation_timeout).or_when(state.stop.subscribe());
    Ok(op(interrupt).await?)
}
