//! The bytes of result chunks that every read of a process may hold at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of result chunks (each counted at the manifest's uncompressed `byte_count`, what it
/// holds once decoded) downloading or decoded and waiting their turn, shared by every read made
/// with clones of the same [`DatabricksOptions`](crate::DatabricksOptions): no download starts
/// while it would take the reads past it, except a read's first (one download per read always
/// may start, so none waits on another). Four packages at once therefore hold at most this
/// plus one chunk each, not four times it.
///
/// Equality compares the size alone.
#[derive(Debug, Clone)]
pub struct DownloadBudget {
    bytes: u64,
    held: Arc<AtomicU64>,
}

impl DownloadBudget {
    /// A budget of `bytes`, none held.
    pub fn new(bytes: u64) -> Self {
        DownloadBudget {
            bytes,
            held: Arc::default(),
        }
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Claims `size` bytes if they fit beside what every read holds, or whatever the budget
    /// when `anyway` (a read's only download).
    pub(crate) fn claim(&self, size: u64, anyway: bool) -> Option<Claim> {
        let fits = |held: u64| anyway || held.saturating_add(size) <= self.bytes;
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                fits(held).then(|| held.saturating_add(size))
            })
            .ok()?;
        Some(Claim {
            held: self.held.clone(),
            size,
        })
    }

    /// The bytes held now by every read (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }
}

impl PartialEq for DownloadBudget {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for DownloadBudget {}

/// Bytes of a [`DownloadBudget`] held by one chunk, given back when dropped: when the chunk is
/// handed on, or when its read is abandoned.
#[derive(Debug)]
pub(crate) struct Claim {
    held: Arc<AtomicU64>,
    size: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.held.fetch_sub(self.size, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_share_one_budget() {
        let budget = DownloadBudget::new(100);
        let other_read = budget.clone();
        let a = budget.claim(60, false).expect("fits");
        // Another read's first download starts whatever the budget holds…
        let b = other_read.claim(60, true).expect("a read's first download");
        assert_eq!(budget.held(), 120);
        // …but no further one of either read does until bytes come back.
        assert!(budget.claim(30, false).is_none());
        assert!(other_read.claim(1, false).is_none());
        drop(b);
        let c = budget.claim(30, false).expect("fits again");
        assert_eq!(budget.held(), 90);
        drop((a, c));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn equal_by_size() {
        assert_eq!(DownloadBudget::new(5), DownloadBudget::new(5));
        assert_ne!(DownloadBudget::new(5), DownloadBudget::new(6));
    }
}
