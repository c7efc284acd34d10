//! The HTTP surface, one module per group of routes: `router` (the routes, the fault/journal
//! middleware), `unity_catalog`, `statements` (with `request`, the execute body, and `plan`, what
//! a statement reads), `downloads` (the external links), `warehouses` and `admin`. This module
//! holds only what their handlers share; it uses none of them.

use axum::http::StatusCode;

use crate::api_error::ApiError;
use crate::faults::Fault;

mod admin;
mod downloads;
mod plan;
mod request;
pub(crate) mod router;
mod statements;
mod unity_catalog;
mod warehouses;

/// A fault the middleware hands to the handler because only the handler can apply it.
#[derive(Debug, Clone)]
struct Injected(Fault);

/// Runs `f` on the blocking pool; a task that fails is a `500 INTERNAL_ERROR`.
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
