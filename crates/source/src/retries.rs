//! Counts of the source's retries by cause, for the service's metrics. Only counts: no table,
//! statement or link is kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a call to the source was tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// 429 or 503: the source asked to slow down.
    Throttled,
    /// Another 5xx.
    ServerError,
    /// The connection failed or timed out.
    Connection,
    /// A result link expired or was refused, and a fresh one was fetched.
    ExpiredLink,
    /// A chunk arrived truncated or garbled and was downloaded again.
    GarbledChunk,
    /// A statement's result expired before it was read, and the statement was run again.
    ExpiredResult,
}

impl RetryCause {
    /// Every cause, in the order of [`RetryCounts::snapshot`].
    pub const ALL: [RetryCause; 6] = [
        Self::Throttled,
        Self::ServerError,
        Self::Connection,
        Self::ExpiredLink,
        Self::GarbledChunk,
        Self::ExpiredResult,
    ];

    /// The cause's label, e.g. `throttled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::Connection => "connection",
            Self::ExpiredLink => "expired_link",
            Self::GarbledChunk => "garbled_chunk",
            Self::ExpiredResult => "expired_result",
        }
    }

    /// The cause of a retried HTTP status: 429 and 503 are the source asking to slow down
    /// (their `Retry-After` is honoured), any other 5xx a server error. The one definition of
    /// "throttled" for every retry loop.
    pub fn of_status(status: u16) -> Self {
        if status == 429 || status == 503 {
            Self::Throttled
        } else {
            Self::ServerError
        }
    }
}

/// Retries counted by cause; clones share the counts (compare equal when they share them).
#[derive(Debug, Clone, Default)]
pub struct RetryCounts(Arc<[AtomicU64; 6]>);

impl RetryCounts {
    /// Counts one retry.
    pub fn record(&self, cause: RetryCause) {
        let i = RetryCause::ALL
            .iter()
            .position(|c| *c == cause)
            .unwrap_or(0);
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Every cause with its count.
    pub fn snapshot(&self) -> [(RetryCause, u64); 6] {
        RetryCause::ALL.map(|c| {
            let i = RetryCause::ALL.iter().position(|x| *x == c).unwrap_or(0);
            (c, self.0[i].load(Ordering::Relaxed))
        })
    }
}

impl PartialEq for RetryCounts {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for RetryCounts {}
