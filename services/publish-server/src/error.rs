//! The one place that picks status codes and builds `{"status":"error","payload":{"detail":…}}`.
//!
//! A 5xx body never carries internal text: the real error rides in a response extension to
//! [`log_internal_errors`], which logs it, and the caller sees a bland detail.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use publish_types::{Envelope, RequestError};
use publish_workflow::{ErrorKind, WorkflowError};

/// An error answer.
#[derive(Debug)]
pub(crate) struct AppError {
    status: StatusCode,
    detail: String,
    internal: Option<String>,
    retry_after_secs: Option<u64>,
}

/// The real text of a 5xx, for the logs only.
#[derive(Debug, Clone)]
pub(crate) struct InternalError(pub String);

impl AppError {
    /// An error with a status and a caller-facing detail; outside this module, errors are made
    /// by the named constructors below, so that this module alone picks status codes.
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            internal: None,
            retry_after_secs: None,
        }
    }

    /// 503 with `Retry-After`: the service cannot take the request now (busy, shutting down,
    /// its key unreadable); nothing was changed.
    pub(crate) fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    /// 403: the reference implementation answers 403 for a missing or a wrong key.
    pub(crate) fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "missing or wrong API key: send the key in the x-api-key header",
        )
    }

    /// 403 for a request that sent the key header more than once.
    pub(crate) fn forbidden_because(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 413: the body is larger than the configured limit.
    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 400: the body could not be read at all (not a JSON problem: a broken transfer).
    pub(crate) fn unreadable_body(why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {why}"),
        )
    }

    /// 404 for a path that is no route.
    pub(crate) fn no_route(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 405 for a method a route does not take.
    pub(crate) fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, detail)
    }

    /// 500 with a bland detail; `internal` is logged, never returned.
    pub(crate) fn internal(internal: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: "internal error; the service log has the details".to_owned(),
            internal: Some(internal.into()),
            retry_after_secs: None,
        }
    }

    /// The status code.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<RequestError> for AppError {
    fn from(e: RequestError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
    }
}

impl From<WorkflowError> for AppError {
    fn from(e: WorkflowError) -> Self {
        let status = match e.kind() {
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::SourceFailed => StatusCode::BAD_GATEWAY,
            ErrorKind::SourceTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::DestinationFailed => StatusCode::BAD_GATEWAY,
            ErrorKind::DestinationTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => return Self::unavailable(e.to_string(), 5),
            _ => return Self::internal(format!("{e:#}")),
        };
        Self::new(status, format!("{e}{}", setting_hint(&e)))
    }
}

/// The setting of this server that changes what `e` refused, for the operator reading the
/// detail: the workflow knows its options, not the variables they come from.
fn setting_hint(e: &WorkflowError) -> &'static str {
    match e {
        WorkflowError::HostNotAllowed { .. } => "; set PUBLISH_ALLOWED_SOURCE_HOSTS to change this",
        WorkflowError::Interrupted(publish_workflow::Cut::Timeout(_)) => {
            " (PUBLISH_OPERATION_TIMEOUT_SECS)"
        }
        _ => "",
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(Envelope::error(self.detail))).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if let Some(internal) = self.internal {
            response.extensions_mut().insert(InternalError(internal));
        }
        response
    }
}

/// Middleware: logs the internal error text of 5xx answers.
pub(crate) async fn log_internal_errors(response: Response) -> Response {
    if let Some(InternalError(text)) = response.extensions().get::<InternalError>() {
        tracing::error!(status = response.status().as_u16(), error = %text, "internal error");
    } else if response.status().is_server_error() || response.status().is_client_error() {
        tracing::info!(status = response.status().as_u16(), "request refused");
    }
    response
}
