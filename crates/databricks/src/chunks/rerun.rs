//! The result being read: which statement it comes from now — the first run, or the re-run that
//! replaced it after its result expired (docs/DATABRICKS-WIRE.md §6.3) — and what every download
//! of it shares.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use super::buffers::InflateBuffers;
use super::decode::InflateLimit;
use crate::client::Client;
use crate::statement::{CancelOnDrop, get_chunk};
use crate::wire::Manifest;
use publish_source::{RetryCause, SourceError};

/// What every download of one result shares.
pub(super) struct Ctx {
    pub(super) client: Arc<Client>,
    /// The statement whose result is being read: the first one, or the re-run that replaced
    /// it after its result expired.
    current: std::sync::Mutex<Current>,
    /// Held while a re-run is under way, so that concurrent downloads run it once.
    rerun_lock: tokio::sync::Mutex<()>,
    /// How to run the statement again, if its result expires mid-read.
    rerun: Rerun,
    /// The first run's totals, which a re-run must reproduce.
    total_rows: Option<u64>,
    total_chunks: Option<u64>,
    pub(super) table: String,
    pub(super) target: SchemaRef,
    pub(super) lz4: bool,
    /// The manifest's uncompressed `byte_count` per chunk index.
    chunk_bytes: HashMap<u64, u64>,
    /// The manifest's `total_byte_count`, for chunks it lists no size for.
    total_bytes: Option<u64>,
    /// Where LZ4 chunks are inflated, reused from chunk to chunk.
    pub(super) buffers: Arc<InflateBuffers>,
}

/// The statement being read.
struct Current {
    id: String,
    /// How many times the statement was re-run.
    generation: u64,
    /// The re-run's cancel guard (the first run's is the producer's).
    guard: Option<CancelOnDrop>,
}

/// What a re-run needs: the same SQL, which reads the same snapshot only when it is pinned to a
/// Delta version.
pub(crate) struct Rerun {
    pub(crate) query: crate::statement::Query,
    pub(crate) catalog: publish_types::ObjectName,
    pub(crate) pinned: bool,
}

/// How many times one read re-runs its statement after its result expired.
const MAX_RERUNS: u64 = 3;

impl Ctx {
    /// The read of statement `statement_id`'s result, as its `manifest` describes it.
    pub(super) fn new(
        client: Arc<Client>,
        statement_id: String,
        rerun: Rerun,
        manifest: &Manifest,
        table: String,
        target: SchemaRef,
    ) -> Ctx {
        let lz4 = manifest
            .result_compression
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("LZ4_FRAME"));
        let chunk_bytes: HashMap<u64, u64> = manifest
            .chunks
            .iter()
            .flatten()
            .filter_map(|c| Some((c.chunk_index?, c.byte_count?)))
            .collect();
        Ctx {
            client,
            current: std::sync::Mutex::new(Current {
                id: statement_id,
                generation: 0,
                guard: None,
            }),
            rerun_lock: tokio::sync::Mutex::new(()),
            rerun,
            total_rows: manifest.total_row_count,
            total_chunks: manifest.total_chunk_count,
            table,
            target,
            lz4,
            chunk_bytes,
            total_bytes: manifest.total_byte_count,
            buffers: Arc::default(),
        }
    }

    /// The current statement's id (for requests and logs).
    pub(super) fn statement_id(&self) -> String {
        self.lock().id.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The links of chunk `index`; when the statement's result is gone (it is kept for about
    /// an hour after it succeeded: `404`), the statement is run again — on the same pinned
    /// version — and the read goes on with the re-run's chunk `index`.
    pub(super) async fn chunk_links(
        &self,
        index: u64,
    ) -> Result<crate::wire::ResultData, SourceError> {
        loop {
            let (id, generation) = {
                let current = self.lock();
                (current.id.clone(), current.generation)
            };
            match get_chunk(&self.client, &id, index).await {
                Err(SourceError::Rejected { status: 404, .. }) => {
                    self.run_again(generation, index).await?;
                }
                other => return other,
            }
        }
    }

    /// Runs the statement again unless another download already did since `generation`.
    async fn run_again(&self, generation: u64, index: u64) -> Result<(), SourceError> {
        let _one_at_a_time = self.rerun_lock.lock().await;
        let old = {
            let current = self.lock();
            if current.generation != generation {
                return Ok(());
            }
            current.id.clone()
        };
        let table = &self.table;
        if !self.rerun.pinned {
            return Err(SourceError::Unavailable {
                operation: format!("reading chunk {index} of table `{table}`"),
                message: format!(
                    "the result of statement {old} expired before it was read, and the table \
                     has no pinned Delta version to read again from; package it again"
                ),
            });
        }
        if generation >= MAX_RERUNS {
            return Err(SourceError::Unavailable {
                operation: format!("reading chunk {index} of table `{table}`"),
                message: format!(
                    "the result expired {MAX_RERUNS} times before it was read; the read is \
                     too slow for the warehouse's result lifetime"
                ),
            });
        }
        tracing::warn!(statement_id = %old, table, chunk_index = index, "the result expired before it was read; running the statement again at the same version");
        self.client
            .options
            .retries
            .record(RetryCause::ExpiredResult);
        let (guard, finished) = crate::statement::run(
            &self.client,
            &self.rerun.query,
            &self.rerun.catalog,
            table,
            crate::statement::Disposition::ArrowLinks,
        )
        .await?;
        let manifest = &finished.manifest;
        if manifest.total_row_count != self.total_rows
            || manifest.total_chunk_count != self.total_chunks
        {
            return Err(SourceError::protocol(format!(
                "statement {} (a re-run of {old} at the same version) answered {:?} rows in {:?} \
                 chunks, the first run {:?} in {:?}; the read cannot go on from chunk {index}",
                guard.statement_id(),
                manifest.total_row_count,
                manifest.total_chunk_count,
                self.total_rows,
                self.total_chunks
            )));
        }
        let mut current = self.lock();
        current.id = guard.statement_id().to_owned();
        current.generation += 1;
        current.guard = Some(guard);
        Ok(())
    }

    /// The read is complete: nothing is left to cancel.
    pub(super) fn disarm(&self) {
        if let Some(guard) = self.lock().guard.as_mut() {
            guard.disarm();
        }
    }

    /// Chunk `index`'s uncompressed size as the manifest gives it (else its share of the total,
    /// else 0): what it holds once decoded.
    pub(super) fn chunk_size(&self, index: u64) -> u64 {
        self.chunk_bytes.get(&index).copied().unwrap_or_else(|| {
            match (self.total_bytes, self.total_chunks) {
                (Some(bytes), Some(chunks)) if chunks > 0 => bytes / chunks,
                _ => 0,
            }
        })
    }

    pub(super) fn inflate_limit(&self, index: u64) -> InflateLimit {
        InflateLimit::new(self.chunk_bytes.get(&index).copied().or(self.total_bytes))
    }
}
