//! The Databricks REST API's error answer, `{"error_code": …, "message": …}`, as every
//! workspace route and the authentication extractor send it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }
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
