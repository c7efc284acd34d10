//! The query result cache: a statement identical to an earlier one, over the same data, is
//! answered from the chunk bodies already produced for it — Arrow already encoded and, when LZ4
//! is asked, already compressed — sent as stored bytes.
//!
//! It follows Databricks SQL's own result cache (docs/DATABRICKS-WIRE.md §6.6): a result is
//! reused when the same query is submitted again and its underlying table has not changed
//! (`USE_CACHED_RESULT`, on by default); a warehouse's local cache holds results in memory until
//! the warehouse stops or the cache is full. Here "the same query" is the statement's text, its
//! bound parameters, its `row_limit` and `byte_limit`, and the result's format and compression
//! (a chunk's bytes depend on all of them); "unchanged" is the same data file last written at
//! the same moment, so a new version or a rewritten file is a miss. Full means the byte budget
//! ([`crate::EmulatorConfig::result_cache_bytes`]): a body that does not fit is not kept, and
//! nothing is evicted. Off (a budget of 0) by default, so that every test sees each chunk
//! produced from its table; the benchmark turns it on, so that the warehouse's work of encoding
//! and compressing is not charged to the client it measures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use crate::result::Format;

/// What makes two statements' results the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResultKey {
    /// The statement as sent, its parameters (`name`, `value`, `type`), `row_limit` and
    /// `byte_limit`, in one string.
    pub(crate) query: String,
    /// The data file the result is read from and when it was last written.
    pub(crate) table: PathBuf,
    pub(crate) modified_ms: i64,
    pub(crate) format: Format,
    pub(crate) compress: bool,
}

/// The bodies of one result's chunks, each kept once it has been produced whole.
#[derive(Debug)]
pub(crate) struct CachedChunks {
    bodies: Vec<OnceLock<Bytes>>,
}

impl CachedChunks {
    /// The stored body of `chunk`, if it has been produced whole before.
    pub(crate) fn get(&self, chunk: usize) -> Option<Bytes> {
        self.bodies.get(chunk).and_then(|b| b.get().cloned())
    }
}

/// The cache, shared by every statement.
#[derive(Debug, Default)]
pub(crate) struct ResultCache {
    budget: u64,
    entries: Mutex<HashMap<ResultKey, Arc<CachedChunks>>>,
    stored: AtomicU64,
    hits: AtomicU64,
    produced: AtomicU64,
}

/// What the cache did so far, and how many bodies were produced (`GET /emulator/stats`).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct CacheStats {
    /// Chunk bodies sent from the cache.
    pub(crate) hits: u64,
    /// Chunk bodies produced whole from a table (every one, whether the cache is on or off).
    pub(crate) produced: u64,
    /// Bytes of bodies held.
    pub(crate) stored_bytes: u64,
}

impl ResultCache {
    /// A cache holding at most `budget` bytes of bodies; 0 turns it off.
    pub(crate) fn new(budget: u64) -> ResultCache {
        ResultCache {
            budget,
            ..ResultCache::default()
        }
    }

    /// The chunks of the result `key` names (a result of `chunks` chunks), shared with every
    /// earlier statement of the same key; `None` when the cache is off.
    pub(crate) fn entry(&self, key: ResultKey, chunks: usize) -> Option<Arc<CachedChunks>> {
        if self.budget == 0 {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(key).or_insert_with(|| {
            Arc::new(CachedChunks {
                bodies: (0..chunks).map(|_| OnceLock::new()).collect(),
            })
        });
        Some(entry.clone())
    }

    /// Counts a body sent from the cache.
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a body produced whole from its table.
    pub(crate) fn produced(&self) {
        self.produced.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps a body produced whole when it fits the budget.
    pub(crate) fn store(&self, chunks: &CachedChunks, chunk: usize, body: Bytes) {
        let Some(slot) = chunks.bodies.get(chunk) else {
            return;
        };
        let len = body.len() as u64;
        let reserved = self
            .stored
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + len <= self.budget).then_some(held + len)
            });
        if reserved.is_ok() && slot.set(body).is_err() {
            // Another download of the same chunk stored it first.
            self.stored.fetch_sub(len, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            produced: self.produced.load(Ordering::Relaxed),
            stored_bytes: self.stored.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(query: &str, modified_ms: i64) -> ResultKey {
        ResultKey {
            query: query.into(),
            table: PathBuf::from("t.parquet"),
            modified_ms,
            format: Format::ArrowStream,
            compress: true,
        }
    }

    #[test]
    fn the_same_query_on_the_same_data_shares_its_bodies_and_nothing_else_does() {
        let cache = ResultCache::new(1 << 20);
        let first = cache.entry(key("SELECT 1", 7), 2).unwrap();
        cache.store(&first, 1, Bytes::from_static(b"chunk one"));
        let again = cache.entry(key("SELECT 1", 7), 2).unwrap();
        assert_eq!(again.get(1), Some(Bytes::from_static(b"chunk one")));
        assert_eq!(again.get(0), None, "a chunk never produced is not held");
        assert_eq!(cache.entry(key("SELECT 1", 8), 2).unwrap().get(1), None);
        assert_eq!(cache.entry(key("SELECT  1", 7), 2).unwrap().get(1), None);
        assert_eq!(cache.stats().stored_bytes, 9);
    }

    #[test]
    fn a_body_past_the_budget_is_not_kept_and_an_off_cache_keeps_nothing() {
        let cache = ResultCache::new(10);
        let chunks = cache.entry(key("q", 1), 2).unwrap();
        cache.store(&chunks, 0, Bytes::from_static(b"12345678"));
        cache.store(&chunks, 1, Bytes::from_static(b"123"));
        assert!(chunks.get(0).is_some());
        assert_eq!(chunks.get(1), None, "8 + 3 bytes exceed the budget of 10");
        assert!(ResultCache::new(0).entry(key("q", 1), 2).is_none());
    }
}
