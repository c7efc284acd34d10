//! The pipeline of one read: links discovered in chunk order by `next_chunk_index`, each chunk
//! downloaded and decoded on a task of its own, the decoded chunks handed on in order through a
//! bounded channel, and the totals checked at the end (docs/DATABRICKS-WIRE.md §8).
//!
//! How many downloads run at once adapts to the consumer ([`Downloads`]): one more whenever it
//! had to wait for a chunk (the network is the bottleneck), one fewer whenever decoded chunks
//! queue up unread (the writer is), between 1 and `max_parallel_downloads`, and never past
//! `download_budget` bytes of chunks in flight, a budget every read of the process shares
//! ([`DownloadBudget`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::download::download;
use super::rerun::{Ctx, Rerun};
use crate::budget::{Claim, DownloadBudget};
use crate::client::Client;
use crate::statement::{CancelOnDrop, Finished};
use crate::wire::{ExternalLink, Manifest};
use publish_source::{BatchStream, SourceError};

type Item = Result<Vec<RecordBatch>, SourceError>;

/// Starts reading the result of a finished statement as a stream of batches of `target`.
pub(crate) fn stream(
    client: Arc<Client>,
    guard: CancelOnDrop,
    finished: Finished,
    target: SchemaRef,
    table: String,
    rerun: Rerun,
) -> Result<BatchStream, SourceError> {
    let manifest = &finished.manifest;
    let statement_id = guard.statement_id().to_owned();
    check_manifest(manifest, &statement_id, &table, &target)?;
    let first: VecDeque<ExternalLink> = finished
        .first
        .and_then(|r| r.external_links)
        .unwrap_or_default()
        .into();
    let links = LinkWalk::new(first, manifest);
    let ctx = Arc::new(Ctx::new(
        client.clone(),
        statement_id,
        rerun,
        manifest,
        table,
        target,
    ));
    let options = &client.options;
    let (tx, rx) = mpsc::channel(options.prefetch_chunks.max(1));
    let waited = Arc::new(AtomicBool::new(false));
    let downloads = Downloads::new(
        options.max_parallel_downloads,
        options.download_budget.clone(),
        waited.clone(),
    );
    let producer = tokio::spawn(produce(
        ctx,
        links,
        tx,
        guard,
        downloads,
        manifest.total_row_count,
    ));
    Ok(Box::pin(ChunkStream {
        rx,
        pending: VecDeque::new(),
        waited,
        _producer: AbortOnDrop(producer),
    }))
}

/// Refuses a result this reader cannot read whole: not Arrow, truncated, or of other columns.
fn check_manifest(
    manifest: &Manifest,
    statement_id: &str,
    table: &str,
    target: &SchemaRef,
) -> Result<(), SourceError> {
    if let Some(format) = manifest.format.as_deref()
        && format != "ARROW_STREAM"
    {
        return Err(SourceError::protocol(format!(
            "statement {statement_id} answered in format {format}, not the ARROW_STREAM requested"
        )));
    }
    if manifest.truncated == Some(true) {
        return Err(SourceError::protocol(format!(
            "the warehouse truncated the result of table `{table}` (statement {statement_id}); \
             it is larger than the warehouse returns in one query, and without a Delta version \
             to read it from it cannot be read in parts"
        )));
    }
    if let Some(schema) = &manifest.schema
        && !schema.columns.is_empty()
        && schema.columns.len() != target.fields().len()
    {
        return Err(SourceError::protocol(format!(
            "statement {statement_id} returned {} columns for the {} requested",
            schema.columns.len(),
            target.fields().len()
        )));
    }
    Ok(())
}

/// The sequence of links in chunk order, following `next_chunk_index` and checking it against
/// the manifest's `total_chunk_count`.
struct LinkWalk {
    pending: VecDeque<ExternalLink>,
    next: Option<u64>,
    expected: u64,
    total_chunks: Option<u64>,
    done: bool,
}

impl LinkWalk {
    /// The walk from the links that came with the statement (`first`).
    fn new(first: VecDeque<ExternalLink>, manifest: &Manifest) -> Self {
        let empty = manifest.total_chunk_count == Some(0)
            || (manifest.total_row_count == Some(0) && manifest.total_chunk_count.is_none());
        // Chunk 0 came with the statement; otherwise ask for it unless the result is empty.
        let next = (first.is_empty() && !empty).then_some(0);
        LinkWalk {
            pending: first,
            next,
            expected: 0,
            total_chunks: manifest.total_chunk_count,
            done: false,
        }
    }

    async fn next_link(&mut self, ctx: &Ctx) -> Option<Result<(u64, ExternalLink), SourceError>> {
        let result = self.step(ctx).await;
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }

    async fn step(&mut self, ctx: &Ctx) -> Option<Result<(u64, ExternalLink), SourceError>> {
        let id = &ctx.statement_id();
        loop {
            if self.done {
                return None;
            }
            if let Some(link) = self.pending.pop_front() {
                let index = link.chunk_index.unwrap_or(self.expected);
                if index != self.expected {
                    return Some(Err(SourceError::protocol(format!(
                        "statement {id}: expected chunk {}, got a link to chunk {index}",
                        self.expected
                    ))));
                }
                if self.total_chunks.is_some_and(|total| index >= total) {
                    return Some(Err(SourceError::protocol(format!(
                        "statement {id}: chunk {index} is beyond the {} chunks of the manifest",
                        self.total_chunks.unwrap_or_default()
                    ))));
                }
                self.expected = index + 1;
                if self.pending.is_empty() {
                    self.next = link.next_chunk_index;
                }
                return Some(Ok((index, link)));
            }
            match self.next.take() {
                Some(n) => match ctx.chunk_links(n).await {
                    Ok(data) => {
                        self.pending = data.external_links.unwrap_or_default().into();
                        if self.pending.is_empty() {
                            return Some(Err(SourceError::protocol(format!(
                                "statement {id}: chunk {n} came without a link"
                            ))));
                        }
                    }
                    Err(e) => return Some(Err(e)),
                },
                None => {
                    self.done = true;
                    return match self.total_chunks {
                        Some(total) if total != self.expected => {
                            Some(Err(SourceError::protocol(format!(
                                "statement {id}: the manifest announces {total} chunks, the \
                                 links led to {}",
                                self.expected
                            ))))
                        }
                        _ => None,
                    };
                }
            }
        }
    }
}

/// Downloads a read starts with, unless `max_parallel_downloads` is lower.
const INITIAL_DOWNLOADS: usize = 3;

/// How many downloads may run at once, adapted to the consumer.
struct Downloads {
    /// The current limit, between 1 and `ceiling`.
    limit: usize,
    ceiling: usize,
    /// Shared with every other read of the process.
    budget: DownloadBudget,
    /// Set by the consumer when it found no chunk ready (it waited).
    waited: Arc<AtomicBool>,
    /// The highest limit reached, for the log.
    peak: usize,
}

impl Downloads {
    fn new(ceiling: usize, budget: DownloadBudget, waited: Arc<AtomicBool>) -> Downloads {
        let ceiling = ceiling.max(1);
        let limit = INITIAL_DOWNLOADS.min(ceiling);
        Downloads {
            limit,
            ceiling,
            budget,
            waited,
            peak: limit,
        }
    }

    /// The budget's bytes for another download of `size` bytes beside `running` ones, if it
    /// may start (one always may).
    fn admit(&self, running: usize, size: u64) -> Option<Claim> {
        if running == 0 {
            return self.budget.claim(size, true);
        }
        if running >= self.limit {
            return None;
        }
        self.budget.claim(size, false)
    }

    /// A chunk is about to be handed on while `queued` decoded chunks wait unread in the
    /// channel (`room` more fit): fewer downloads when they queue up, more when the consumer
    /// waited since the last hand-off.
    fn adapt(&mut self, room: usize) {
        let waited = self.waited.swap(false, Ordering::Relaxed);
        if room == 0 {
            self.limit = (self.limit - 1).max(1);
        } else if waited {
            self.limit = (self.limit + 1).min(self.ceiling);
            self.peak = self.peak.max(self.limit);
        }
    }
}

type Download = Pin<Box<dyn Future<Output = Result<super::decode::Chunk, SourceError>> + Send>>;

/// Runs the pipeline: links in order → downloads (each its own task, as many at a time as
/// [`Downloads`] allows) → decoded chunks in order → channel. Ends the statement's guard only
/// after the last chunk was handed on and the totals match.
async fn produce(
    ctx: Arc<Ctx>,
    mut links: LinkWalk,
    tx: mpsc::Sender<Item>,
    mut guard: CancelOnDrop,
    mut downloads: Downloads,
    total_rows: Option<u64>,
) {
    let started = Instant::now();
    let mut running: FuturesOrdered<Download> = FuturesOrdered::new();
    // The budget each running download holds, in chunk order.
    let mut claims: VecDeque<Claim> = VecDeque::new();
    let mut walked = false;
    let mut rows = 0u64;
    let mut chunks = 0u64;
    loop {
        while !walked {
            let Some(claim) = downloads.admit(running.len(), ctx.chunk_size(links.expected)) else {
                break;
            };
            let next: Download = match links.next_link(&ctx).await {
                None => {
                    walked = true;
                    break;
                }
                // Handed on in its turn, after the chunks before it.
                Some(Err(e)) => {
                    walked = true;
                    Box::pin(std::future::ready(Err(e)))
                }
                Some(Ok((index, link))) => Box::pin(AbortOnDrop(tokio::spawn(download(
                    ctx.clone(),
                    index,
                    link,
                )))),
            };
            claims.push_back(claim);
            running.push_back(next);
        }
        let Some(result) = running.next().await else {
            break;
        };
        drop(claims.pop_front());
        match result {
            Ok(chunk) => {
                rows += chunk.rows;
                chunks += 1;
                downloads.adapt(tx.capacity());
                if tx.send(Ok(chunk.batches)).await.is_err() {
                    // The reader went away; dropping the guard cancels the statement.
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
    if let Some(total) = total_rows
        && total != rows
    {
        let _ = tx
            .send(Err(SourceError::protocol(format!(
                "statement {}: the manifest announces {total} rows, the chunks held {rows}",
                ctx.statement_id()
            ))))
            .await;
        return;
    }
    guard.disarm();
    ctx.disarm();
    tracing::info!(
        statement_id = %ctx.statement_id(),
        table = %ctx.table,
        chunks,
        rows,
        downloads_at_once_max = downloads.peak,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "result read"
    );
}

/// A spawned task that is aborted when this handle is dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<Result<T, SourceError>> {
    type Output = Result<T, SourceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                Err(SourceError::protocol(format!(
                    "a download task failed: {e}"
                )))
            })
        })
    }
}

/// The consumer's side: batches out of the channel, one chunk at a time.
struct ChunkStream {
    rx: mpsc::Receiver<Item>,
    pending: VecDeque<RecordBatch>,
    /// Told whenever no chunk was ready: the consumer waited ([`Downloads::adapt`]).
    waited: Arc<AtomicBool>,
    _producer: AbortOnDrop<()>,
}

impl Stream for ChunkStream {
    type Item = Result<RecordBatch, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(batch)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(batches))) => self.pending.extend(batches),
                Poll::Ready(Some(Err(e))) => {
                    self.rx.close();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    self.waited.store(true, Ordering::Relaxed);
                    return Poll::Pending;
                }
            }
        }
    }
}
