//! A JSON body extractor that gives bad bodies the service's error envelope: 413 when too
//! large, 422 naming the field otherwise.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use publish_types::{PackageRequest, PublishRequest, RequestError, ValidateRequest};

use crate::error::AppError;

/// A request type parsed from a JSON body.
pub(crate) trait FromJsonBody: Sized {
    /// Parses and validates.
    fn from_json_body(body: &[u8]) -> Result<Self, RequestError>;
}

impl FromJsonBody for PackageRequest {
    fn from_json_body(body: &[u8]) -> Result<Self, RequestError> {
        Self::from_json(body)
    }
}

impl FromJsonBody for PublishRequest {
    fn from_json_body(body: &[u8]) -> Result<Self, RequestError> {
        Self::from_json(body)
    }
}

impl FromJsonBody for ValidateRequest {
    fn from_json_body(body: &[u8]) -> Result<Self, RequestError> {
        Self::from_json(body)
    }
}

/// A validated request body.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: FromJsonBody,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(1024 * 1024);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::body_too_large(limit)
            } else {
                AppError::unreadable_body(rejection.body_text())
            }
        })?;
        Ok(JsonBody(T::from_json_body(&bytes)?))
    }
}

/// The configured body limit, put in request extensions so the rejection can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);
