//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use publish_workflow::Workflow;

use crate::auth::ExpectedKey;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// The operations.
    pub workflow: Arc<Workflow>,
    /// The API key callers must present.
    pub api_key: ExpectedKey,
    /// Overall limit of one operation.
    pub operation_timeout: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}
