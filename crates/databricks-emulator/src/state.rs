//! What every handler shares: the configuration, the catalog, the tokens issued, the
//! statements, the fault queues and the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use axum::http::header::HOST;

use crate::EmulatorConfig;
use crate::catalog::Catalog;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::statements::Statements;
use crate::tokens::Tokens;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) url: String,
    pub(crate) catalog: Catalog,
    pub(crate) tokens: Tokens,
    pub(crate) statements: Statements,
    pub(crate) faults: Faults,
    pub(crate) journal: Journal,
    /// Bytes of chunk bodies sent from the external-link routes (`GET /emulator/stats`).
    pub(crate) download_bytes: std::sync::atomic::AtomicU64,
    /// Chunk downloads in progress, and the most at one moment.
    pub(crate) downloads: InFlight,
    /// The query result cache (docs/DATABRICKS-WIRE.md §6.6).
    pub(crate) result_cache: crate::result_cache::ResultCache,
}

impl Shared {
    /// `http://<host>` as the client addressed the emulator.
    pub(crate) fn host_url(&self, headers: &HeaderMap) -> String {
        headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map_or_else(|| self.url.clone(), |host| format!("http://{host}"))
    }
}

/// Handler state: a cheap handle on [`Shared`].
#[derive(Debug, Clone)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A count of things in progress and the most there were at once.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: AtomicU64,
    pub(crate) max: AtomicU64,
}

impl InFlight {
    /// Counts one more in progress until the returned guard is dropped.
    pub(crate) fn enter(state: &AppState) -> InFlightGuard {
        let now = state.downloads.now.fetch_add(1, Ordering::Relaxed) + 1;
        state.downloads.max.fetch_max(now, Ordering::Relaxed);
        InFlightGuard(state.clone())
    }
}

/// One download in progress; dropping it ends it.
pub(crate) struct InFlightGuard(AppState);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.downloads.now.fetch_sub(1, Ordering::Relaxed);
    }
}
