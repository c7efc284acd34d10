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
    pub(crate) workflow: Arc<Workflow>,
    /// The API key callers must present, re-read when its file changes.
    pub(crate) api_key: Arc<KeyFile>,
    /// Admission of operations (`PUBLISH_MAX_CONCURRENT_OPERATIONS` permits).
    pub(crate) operations: Arc<Semaphore>,
    /// Set to `true` when a shutdown's grace period is over: running operations stop.
    pub(crate) stop: Arc<watch::Sender<bool>>,
    /// What `/metrics` reports.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Overall limit of one operation.
    pub(crate) operation_timeout: Duration,
    /// Largest accepted request body.
    pub(crate) max_body_bytes: usize,
}

impl AppState {
    /// Stops the operations still running before their commit point (they answer 503): what a
    /// shutdown does when its grace period is over.
    pub fn stop_operations(&self) {
        self.stop.send_replace(true);
    }
}
