//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use publish_workflow::Workflow;
use tokio::sync::{Semaphore, watch};

use crate::auth::KeyFile;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// The operations.
    pub workflow: Arc<Workflow>,
    /// The API key callers must present, re-read when its file changes.
    pub api_key: Arc<KeyFile>,
    /// Admission of operations (`PUBLISH_MAX_CONCURRENT_OPERATIONS` permits).
    pub operations: Arc<Semaphore>,
    /// Set to `true` when a shutdown's grace period is over: running operations stop.
    pub stop: Arc<watch::Sender<bool>>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Overall limit of one operation.
    pub operation_timeout: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}
