//! Reading a finished statement's result (docs/DATABRICKS-WIRE.md §8–§10): discovering chunks by
//! `next_chunk_index`, downloading their presigned links in parallel (bounded) without an
//! `Authorization` header, decompressing LZ4 (every frame: Databricks writes one per Arrow IPC
//! message), decoding each Arrow IPC stream, converting it to the declared types, and handing
//! the batches on in chunk order.
//!
//! A producer task runs the pipeline and feeds a bounded channel; each download is a task of
//! its own, so a transfer keeps going while the consumer is busy and never stalls into a read
//! timeout. At most `max_parallel_downloads` chunks are in flight and `prefetch_chunks` decoded
//! chunks wait in the channel. Dropping the stream aborts the producer and its downloads, and
//! the producer's [`CancelOnDrop`] cancels the statement.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamDecoder;
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use tokio::sync::mpsc;

use crate::DatabricksOptions;
use crate::client::{Client, Retry, builder_error, describe_reqwest, retry_after, transport_error};
use crate::statement::{CancelOnDrop, Finished, get_chunk};
use crate::wire::ExternalLink;
use publish_columns::conform_columns;
use publish_source::RetryCause;
use publish_source::{BatchStream, SourceError};

/// End-of-stream marker of an Arrow IPC stream (continuation + zero length).
const ARROW_EOS: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];
/// Magic number of an LZ4 frame.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4D, 0x18];
/// Links with less than this left are refreshed before use, as the JDBC driver does.
const LINK_MARGIN: Duration = Duration::from_secs(60);
/// An LZ4 chunk may decompress to this many times the manifest's uncompressed `byte_count`
/// for it (the emulator's counts are estimates, a real warehouse's near exact)…
const LZ4_GROWTH: u64 = 8;
/// …but always to at least this much, since small chunks' counts are the roughest…
const LZ4_FLOOR: u64 = 256 << 20;
/// …and to this much when the manifest gives no size at all. Anything past the limit is
/// corrupt or hostile, and is refused rather than allocated.
const LZ4_UNKNOWN_CAP: u64 = 2 << 30;

/// What every download of one result shares.
struct Ctx {
    client: Arc<Client>,
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
    table: String,
    target: SchemaRef,
    lz4: bool,
    /// The manifest's uncompressed `byte_count` per chunk index.
    chunk_bytes: HashMap<u64, u64>,
    /// The manifest's `total_byte_count`, for chunks it lists no size for.
    total_bytes: Option<u64>,
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
    /// The current statement's id (for requests and logs).
    fn statement_id(&self) -> String {
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
    async fn chunk_links(&self, index: u64) -> Result<crate::wire::ResultData, SourceError> {
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
    fn disarm(&self) {
        if let Some(guard) = self.lock().guard.as_mut() {
            guard.disarm();
        }
    }

    fn inflate_limit(&self, index: u64) -> InflateLimit {
        InflateLimit::new(self.chunk_bytes.get(&index).copied().or(self.total_bytes))
    }
}

/// One decoded chunk.
struct Chunk {
    batches: Vec<RecordBatch>,
    rows: u64,
    /// Size of the Arrow stream after decompression.
    plain_bytes: usize,
}

/// The most bytes one LZ4-compressed chunk may decompress to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InflateLimit {
    bytes: u64,
    /// The manifest's uncompressed size the limit was derived from, if it gave one.
    manifest_bytes: Option<u64>,
}

impl InflateLimit {
    fn new(manifest_bytes: Option<u64>) -> Self {
        let bytes = manifest_bytes.map_or(LZ4_UNKNOWN_CAP, |n| {
            n.saturating_mul(LZ4_GROWTH).max(LZ4_FLOOR)
        });
        InflateLimit {
            bytes,
            manifest_bytes,
        }
    }

    fn describe(&self) -> String {
        match self.manifest_bytes {
            Some(n) => format!(
                "the limit of {} bytes ({LZ4_GROWTH} × the manifest's uncompressed size of {n} \
                 bytes for this chunk, at least {LZ4_FLOOR})",
                self.bytes
            ),
            None => format!(
                "the limit of {} bytes for a chunk whose size the manifest does not give",
                self.bytes
            ),
        }
    }
}

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
    let total_bytes = manifest.total_byte_count;
    let first: VecDeque<ExternalLink> = finished
        .first
        .and_then(|r| r.external_links)
        .unwrap_or_default()
        .into();
    let empty = manifest.total_chunk_count == Some(0)
        || (manifest.total_row_count == Some(0) && manifest.total_chunk_count.is_none());
    // Chunk 0 came with the statement; otherwise ask for it unless the result is empty.
    let next = (first.is_empty() && !empty).then_some(0);
    let links = LinkWalk {
        pending: first,
        next,
        expected: 0,
        total_chunks: manifest.total_chunk_count,
        done: false,
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
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
        target: target.clone(),
        lz4,
        chunk_bytes,
        total_bytes,
    });
    let options = &client.options;
    let (tx, rx) = mpsc::channel(options.prefetch_chunks.max(1));
    let producer = tokio::spawn(produce(
        ctx,
        links,
        tx,
        guard,
        options.max_parallel_downloads.max(1),
        manifest.total_row_count,
    ));
    Ok(Box::pin(ChunkStream {
        rx,
        pending: VecDeque::new(),
        _producer: AbortOnDrop(producer),
    }))
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

/// Runs the pipeline: links in order → downloads (each its own task, at most `parallel` at a
/// time) → decoded chunks in order → channel. Ends the statement's guard only after the last
/// chunk was handed on and the totals match.
async fn produce(
    ctx: Arc<Ctx>,
    links: LinkWalk,
    tx: mpsc::Sender<Item>,
    mut guard: CancelOnDrop,
    parallel: usize,
    total_rows: Option<u64>,
) {
    let started = Instant::now();
    let link_stream = futures::stream::unfold((links, ctx.clone()), |(mut walk, ctx)| async move {
        let item = walk.next_link(&ctx).await?;
        Some((item, (walk, ctx)))
    });
    let downloads = link_stream
        .map(|item| {
            let ctx = ctx.clone();
            async move {
                let (index, link) = item?;
                AbortOnDrop(tokio::spawn(download(ctx, index, link))).await
            }
        })
        .buffered(parallel);
    futures::pin_mut!(downloads);
    let mut rows = 0u64;
    let mut chunks = 0u64;
    while let Some(result) = downloads.next().await {
        match result {
            Ok(chunk) => {
                rows += chunk.rows;
                chunks += 1;
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
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "result read"
    );
}

/// Why a downloaded body could not be used.
enum DecodeError {
    /// Truncated or corrupt bytes: downloading again may help.
    Garbled(String),
    /// Well-formed data that does not fit the declared schema: downloading again will not help.
    Mismatch(String),
}

/// Downloads and decodes one chunk, refreshing its link when it expired and retrying transfers
/// that failed or arrived garbled.
async fn download(ctx: Arc<Ctx>, index: u64, link: ExternalLink) -> Result<Chunk, SourceError> {
    let mut job = ChunkDownload::new(&ctx, index, link);
    loop {
        job.refresh_expiring_link().await?;
        let started = Instant::now();
        let failure = match job.transfer().await? {
            Ok(body) => match job.decode_body(body, started).await? {
                Some(chunk) => return Ok(chunk),
                // Garbled: download it again.
                None => continue,
            },
            Err(failure) => failure,
        };
        job.recover(failure).await?;
    }
}

/// The state of one chunk's download across its attempts: the link in use and what the
/// retry, link refresh and garbled-body budgets have spent so far.
struct ChunkDownload<'a> {
    ctx: &'a Ctx,
    options: &'a DatabricksOptions,
    index: u64,
    link: ExternalLink,
    operation: String,
    retry: Retry<'a>,
    refreshes: u32,
    garbled: u32,
}

impl<'a> ChunkDownload<'a> {
    fn new(ctx: &'a Ctx, index: u64, link: ExternalLink) -> Self {
        let options = &ctx.client.options;
        ChunkDownload {
            ctx,
            options,
            index,
            link,
            operation: format!(
                "downloading chunk {index} of the result for `{}`",
                ctx.table
            ),
            retry: Retry::new(options),
            refreshes: 0,
            garbled: 0,
        }
    }

    /// Replaces a link that expired or is about to, while refreshes are left.
    async fn refresh_expiring_link(&mut self) -> Result<(), SourceError> {
        while self.refreshes < self.options.max_link_refreshes && expires_soon(&self.link) {
            self.refreshes += 1;
            tracing::debug!(statement_id = %self.ctx.statement_id(), chunk_index = self.index, "link about to expire; refreshing");
            self.link = fresh_link(self.ctx, self.index).await?;
        }
        Ok(())
    }

    /// Fetches the link's body: `Ok(Ok(body))` on success, `Ok(Err(failure))` for a failure
    /// [`Self::recover`] decides about, `Err` for a request that cannot even be built.
    async fn transfer(&self) -> Result<Result<Buffer, Failure>, SourceError> {
        // No Authorization header: this client never has one, and the link is presigned.
        let mut request = self.ctx.client.storage.get(&self.link.external_link);
        for (name, value) in self.link.http_headers.iter().flatten() {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(response
                .bytes()
                .await
                .map(Buffer::from)
                .map_err(Failure::Transport)),
            Ok(response) => Ok(Err(Failure::of_refusal(response).await)),
            Err(e) if e.is_builder() => Err(builder_error(&self.operation, &e)),
            Err(e) => Ok(Err(Failure::Transport(e))),
        }
    }

    /// Decodes a downloaded body on the blocking pool: `Ok(None)` when it arrived garbled and
    /// is worth downloading again.
    async fn decode_body(
        &mut self,
        body: Buffer,
        started: Instant,
    ) -> Result<Option<Chunk>, SourceError> {
        let index = self.index;
        let bytes = body.len();
        let (lz4, target) = (self.ctx.lz4, self.ctx.target.clone());
        let expected = self.link.row_count;
        let limit = self.ctx.inflate_limit(index);
        let decoded =
            tokio::task::spawn_blocking(move || decode(body, lz4, limit, expected, &target))
                .await
                .map_err(|e| {
                    SourceError::protocol(format!("decoding chunk {index} panicked: {e}"))
                })?;
        match decoded {
            Ok(chunk) => {
                tracing::debug!(
                    statement_id = %self.ctx.statement_id(),
                    chunk_index = index,
                    rows = chunk.rows,
                    bytes,
                    plain_bytes = chunk.plain_bytes,
                    elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "chunk downloaded"
                );
                Ok(Some(chunk))
            }
            Err(DecodeError::Mismatch(message)) => Err(SourceError::protocol(format!(
                "chunk {index} of table `{}` (statement {}) does not match the \
                 declared columns: {message}",
                self.ctx.table,
                self.ctx.statement_id()
            ))),
            Err(DecodeError::Garbled(message)) => {
                self.count_garbled(bytes, &message).map(|()| None)
            }
        }
    }

    /// Counts a garbled body against `max_chunk_attempts`.
    fn count_garbled(&mut self, bytes: usize, message: &str) -> Result<(), SourceError> {
        self.garbled += 1;
        if self.garbled >= self.options.max_chunk_attempts.max(1) {
            let (index, garbled) = (self.index, self.garbled);
            return Err(SourceError::protocol(format!(
                "chunk {index} of table `{}` (statement {}) could not be \
                 decoded after {garbled} downloads: {message}",
                self.ctx.table,
                self.ctx.statement_id()
            )));
        }
        tracing::warn!(statement_id = %self.ctx.statement_id(), chunk_index = self.index, bytes, %message, "garbled chunk; downloading it again");
        self.options.retries.record(RetryCause::GarbledChunk);
        Ok(())
    }

    /// Gets ready for the next attempt after `failure` (a fresh link, or a wait), or gives up.
    async fn recover(&mut self, failure: Failure) -> Result<(), SourceError> {
        match failure {
            // A firewall or private endpoint in front of the storage account refuses this
            // network path: a fresh link cannot help beyond the first.
            Failure::Firewall if self.refreshes >= 1 => Err(self.firewall_error()),
            Failure::Firewall => {
                self.refreshes += 1;
                tracing::info!(statement_id = %self.ctx.statement_id(), chunk_index = self.index, "result storage refused the download (AuthorizationFailure); trying one fresh link");
                self.options.retries.record(RetryCause::ExpiredLink);
                self.link = fresh_link(self.ctx, self.index).await?;
                Ok(())
            }
            Failure::Status(status, _)
                if matches!(
                    status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
                ) =>
            {
                self.refresh_refused_link(status).await
            }
            Failure::Status(status, after)
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                self.wait_for_storage(status, after).await
            }
            Failure::Status(status, _) => Err(SourceError::Rejected {
                operation: self.operation.clone(),
                status: status.as_u16(),
                error_code: None,
                message: "the storage service refused the download".into(),
            }),
            Failure::Transport(e) => self.wait_after_transport_error(&e).await,
        }
    }

    /// The storage's network rules refused even a fresh link.
    fn firewall_error(&self) -> SourceError {
        let host = reqwest::Url::parse(&self.link.external_link)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "the result storage".to_owned());
        SourceError::Unavailable {
            operation: self.operation.clone(),
            message: format!(
                "the result storage host {host} refused the download (HTTP 403 \
                 AuthorizationFailure) even with a fresh link: a firewall or private \
                 endpoint in front of the workspace's storage account does not admit \
                 this service's network path; allow it there, or route the service \
                 through the private endpoint"
            ),
        }
    }

    /// An expired (or otherwise refused) presigned link: ask for a fresh one.
    async fn refresh_refused_link(&mut self, status: StatusCode) -> Result<(), SourceError> {
        if self.refreshes >= self.options.max_link_refreshes {
            let refreshes = self.refreshes;
            return Err(SourceError::Unavailable {
                operation: self.operation.clone(),
                message: format!(
                    "the storage service refused the result link (HTTP {status}) even \
                     after {refreshes} fresh links"
                ),
            });
        }
        self.refreshes += 1;
        tracing::info!(statement_id = %self.ctx.statement_id(), chunk_index = self.index, %status, "link refused; fetching a fresh one");
        self.options.retries.record(RetryCause::ExpiredLink);
        self.link = fresh_link(self.ctx, self.index).await?;
        Ok(())
    }

    /// Waits out a throttling or failing storage service, while the retry budget lasts.
    async fn wait_for_storage(
        &mut self,
        status: StatusCode,
        after: Duration,
    ) -> Result<(), SourceError> {
        let cause = RetryCause::of_status(status.as_u16());
        let throttled = cause == RetryCause::Throttled;
        let Some(wait) = self.retry.next(throttled.then_some(after)) else {
            return Err(SourceError::Unavailable {
                operation: self.operation.clone(),
                message: format!("HTTP {status} after {} attempts", self.retry.attempts()),
            });
        };
        tracing::warn!(statement_id = %self.ctx.statement_id(), chunk_index = self.index, %status, ?wait, "download failed; retrying");
        self.options.retries.record(cause);
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Waits before trying a transfer that got no answer again, while the retry budget lasts.
    async fn wait_after_transport_error(&mut self, e: &reqwest::Error) -> Result<(), SourceError> {
        let Some(wait) = self.retry.next(None) else {
            return Err(transport_error(&self.operation, e, self.options));
        };
        tracing::warn!(statement_id = %self.ctx.statement_id(), chunk_index = self.index, error = %describe_reqwest(e), ?wait, "download failed; retrying");
        self.options.retries.record(RetryCause::Connection);
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// Why one transfer of a chunk failed.
enum Failure {
    Status(StatusCode, Duration),
    /// 403 `AuthorizationFailure` from the result storage: its network rules refuse us.
    Firewall,
    Transport(reqwest::Error),
}

impl Failure {
    /// A non-2xx answer of the result storage.
    async fn of_refusal(response: reqwest::Response) -> Self {
        let status = response.status();
        let after = retry_after(response.headers());
        // Azure storage names the refusal in its XML body (`<Code>…</Code>`).
        let body: Vec<u8> = if status == StatusCode::FORBIDDEN {
            response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let firewall = String::from_utf8_lossy(&body[..body.len().min(4096)])
            .contains("<Code>AuthorizationFailure</Code>");
        if firewall {
            Failure::Firewall
        } else {
            Failure::Status(status, after)
        }
    }
}

/// True when the link's `expiration` has passed or is less than a minute away.
fn expires_soon(link: &ExternalLink) -> bool {
    link.expiration
        .as_deref()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .is_some_and(|at| {
            let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
            left < chrono::Duration::from_std(LINK_MARGIN).unwrap_or_default()
        })
}

async fn fresh_link(ctx: &Ctx, index: u64) -> Result<ExternalLink, SourceError> {
    let data = ctx.chunk_links(index).await?;
    data.external_links
        .unwrap_or_default()
        .into_iter()
        .find(|l| l.chunk_index.is_none_or(|i| i == index))
        .ok_or_else(|| {
            SourceError::protocol(format!(
                "statement {}: no link for chunk {index} in its chunk answer",
                ctx.statement_id()
            ))
        })
}

/// Decodes one chunk body: LZ4 frames (when the manifest says so or the body starts with their
/// magic), then one complete Arrow IPC stream, converted to `target`. Runs on the blocking pool.
fn decode(
    body: Buffer,
    lz4: bool,
    limit: InflateLimit,
    expected_rows: Option<u64>,
    target: &SchemaRef,
) -> Result<Chunk, DecodeError> {
    let mut buffer = if lz4 || body.as_slice().starts_with(&LZ4_MAGIC) {
        Buffer::from_vec(inflate(body.as_slice(), limit)?)
    } else {
        body
    };
    let plain_bytes = buffer.len();
    // A stream cut at a message boundary decodes cleanly; only its end marker tells.
    if !buffer.as_slice().ends_with(&ARROW_EOS) {
        return Err(DecodeError::Garbled(
            "the Arrow stream ends without its end-of-stream marker (truncated)".into(),
        ));
    }
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    let mut rows = 0u64;
    while !buffer.is_empty() {
        match decoder.decode(&mut buffer) {
            Ok(Some(batch)) => {
                rows += batch.num_rows() as u64;
                let batch = conform_columns(batch.columns(), batch.num_rows(), target)
                    .map_err(DecodeError::Mismatch)?;
                batches.push(batch);
            }
            Ok(None) => {}
            Err(e) => return Err(DecodeError::Garbled(format!("Arrow IPC: {e}"))),
        }
    }
    decoder
        .finish()
        .map_err(|e| DecodeError::Garbled(format!("Arrow IPC: {e}")))?;
    if decoder.schema().is_none() {
        return Err(DecodeError::Garbled(
            "the Arrow stream has no schema".into(),
        ));
    }
    if let Some(expected) = expected_rows
        && expected != rows
    {
        return Err(DecodeError::Garbled(format!(
            "decoded {rows} rows, the link announced {expected}"
        )));
    }
    Ok(Chunk {
        batches,
        rows,
        plain_bytes,
    })
}

/// Decompresses every LZ4 frame of `body`, in order, into one buffer of at most `limit.bytes`.
///
/// Databricks writes one frame per Arrow IPC message (schema, each batch, end marker), so a
/// chunk is a concatenation of frames; a body of one frame is the same case with one. lz4_flex
/// 0.11's decoder ends its reads at a frame's end mark and must not be reused for the next
/// frame (it trips its own debug assertions), so each frame gets a fresh decoder, reading from
/// where the last one stopped: it reads exactly its frame's bytes.
fn inflate(body: &[u8], limit: InflateLimit) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read as _;
    let cap = usize::try_from(limit.bytes).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(cap));
    let mut rest = body;
    let mut frame = 0usize;
    while !rest.is_empty() {
        let before = rest.len();
        // Checked here: lz4_flex reads a stray 4-byte tail as an empty frame, without error.
        if !rest.starts_with(&LZ4_MAGIC) {
            return Err(DecodeError::Garbled(format!(
                "LZ4 frame {frame} (at byte {}) does not start with the LZ4 magic number",
                body.len() - before
            )));
        }
        // One byte more than the limit allows, to tell "exactly at the limit" from "past it".
        let budget = limit
            .bytes
            .saturating_add(1)
            .saturating_sub(out.len() as u64);
        lz4_flex::frame::FrameDecoder::new(&mut rest)
            .take(budget)
            .read_to_end(&mut out)
            .map_err(|e| {
                DecodeError::Garbled(format!(
                    "LZ4 frame {frame} (at byte {}): {e}",
                    body.len() - before
                ))
            })?;
        if out.len() as u64 > limit.bytes {
            return Err(DecodeError::Garbled(format!(
                "the LZ4 frames decompress past {}; refusing the chunk rather than allocating more",
                limit.describe()
            )));
        }
        if rest.len() == before {
            return Err(DecodeError::Garbled(format!(
                "LZ4 frame {frame} (at byte {}) could not be read",
                body.len() - before
            )));
        }
        frame += 1;
    }
    Ok(out)
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
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::writer::StreamWriter;
    use std::io::Write as _;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]))
    }

    fn batch(schema: &SchemaRef, rows: usize) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        RecordBatch::try_new(schema.clone(), vec![a]).unwrap()
    }

    /// An Arrow stream of two batches of `rows`, in one piece.
    fn ipc(rows: usize) -> (Vec<u8>, SchemaRef) {
        let schema = schema();
        let batch = batch(&schema, rows);
        let mut w = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        w.write(&batch).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        (w.into_inner().unwrap(), schema)
    }

    fn lz4_frame(plain: &[u8]) -> Vec<u8> {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(plain).unwrap();
        enc.finish().unwrap()
    }

    /// A chunk as Databricks compresses it: each IPC message of a stream of `batches` (of
    /// `rows` each) in an LZ4 frame of its own. Returns the body and its frame count.
    fn framed_per_message(batches: usize, rows: usize) -> (Vec<u8>, usize, SchemaRef) {
        let schema = schema();
        let mut w = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        let mut body = lz4_frame(w.get_ref());
        w.get_mut().clear();
        let mut frames = 1;
        for _ in 0..batches {
            w.write(&batch(&schema, rows)).unwrap();
            body.extend(lz4_frame(w.get_ref()));
            w.get_mut().clear();
            frames += 1;
        }
        w.finish().unwrap();
        assert_eq!(w.get_ref().as_slice(), ARROW_EOS);
        body.extend(lz4_frame(w.get_ref()));
        (body, frames + 1, schema)
    }

    fn run_limited(
        bytes: Vec<u8>,
        lz4: bool,
        limit: InflateLimit,
        expected: Option<u64>,
        schema: &SchemaRef,
    ) -> Result<Chunk, String> {
        decode(Buffer::from_vec(bytes), lz4, limit, expected, schema).map_err(|e| match e {
            DecodeError::Garbled(m) => format!("garbled: {m}"),
            DecodeError::Mismatch(m) => format!("mismatch: {m}"),
        })
    }

    fn run(
        bytes: Vec<u8>,
        lz4: bool,
        expected: Option<u64>,
        schema: &SchemaRef,
    ) -> Result<u64, String> {
        run_limited(bytes, lz4, InflateLimit::new(None), expected, schema).map(|c| c.rows)
    }

    #[test]
    fn decodes_and_detects_truncation() {
        let (bytes, schema) = ipc(10);
        assert_eq!(run(bytes.clone(), false, Some(20), &schema), Ok(20));
        for cut in [bytes.len() / 2, bytes.len() - 8, 3] {
            let r = run(bytes[..cut].to_vec(), false, None, &schema);
            assert!(
                r.as_ref().is_err_and(|e| e.starts_with("garbled")),
                "cut at {cut}: {r:?}"
            );
        }
        let r = run(bytes.clone(), false, Some(21), &schema);
        assert!(r.is_err_and(|e| e.contains("announced 21")));
        let other = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        assert!(run(bytes, false, None, &other).is_err_and(|e| e.starts_with("mismatch")));
    }

    #[test]
    fn decodes_one_lz4_frame_per_chunk() {
        // What this client's emulator used to send, and any writer that frames the whole stream.
        let (bytes, schema) = ipc(5);
        assert_eq!(run(lz4_frame(&bytes), true, Some(10), &schema), Ok(10));
    }

    #[test]
    fn decodes_every_lz4_frame_of_a_chunk() {
        // As Databricks writes it: schema, each batch and the end marker, one frame each.
        let (body, frames, schema) = framed_per_message(4, 1000);
        assert_eq!(frames, 6);
        let chunk = run_limited(
            body.clone(),
            true,
            InflateLimit::new(None),
            Some(4000),
            &schema,
        )
        .expect("every frame decoded");
        assert_eq!(chunk.rows, 4000);
        assert_eq!(
            chunk.batches.len(),
            4,
            "every batch, not just the first frame's"
        );
        // Detected by its magic even when the manifest does not say LZ4.
        assert_eq!(run(body.clone(), false, Some(4000), &schema), Ok(4000));
        // A body cut between frames, before the end marker's: garbled, not short.
        let cut = body.len() - lz4_frame(&ARROW_EOS).len();
        let r = run(body[..cut].to_vec(), true, None, &schema);
        assert!(r.is_err_and(|e| e.contains("end-of-stream")), "cut body");
        // Trailing bytes that are not a frame are garbled too.
        let mut trailing = body;
        trailing.extend_from_slice(b"junk");
        let r = run(trailing, true, None, &schema);
        assert!(r.is_err_and(|e| e.contains("LZ4 frame 6")), "trailing junk");
    }

    #[test]
    fn refuses_chunks_that_decompress_past_the_limit() {
        let (body, _, schema) = framed_per_message(4, 1000);
        let plain = run_limited(body.clone(), true, InflateLimit::new(None), None, &schema)
            .unwrap()
            .plain_bytes as u64;
        let at = |bytes| InflateLimit {
            bytes,
            manifest_bytes: Some(bytes / LZ4_GROWTH),
        };
        // Exactly at the limit is fine; one byte under is refused, naming the limit.
        assert!(run_limited(body.clone(), true, at(plain), None, &schema).is_ok());
        let r = run_limited(body.clone(), true, at(plain - 1), None, &schema);
        let e = r.err().expect("refused");
        assert!(e.starts_with("garbled"), "{e}");
        assert!(e.contains(&format!("limit of {} bytes", plain - 1)), "{e}");
        assert!(e.contains("× the manifest's uncompressed size of"), "{e}");
        // A bomb: one frame of 64 MiB of zeros (a few hundred KiB compressed) stops at the
        // limit instead of being inflated whole.
        let bomb = lz4_frame(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        let small = InflateLimit {
            bytes: 1 << 20,
            manifest_bytes: None,
        };
        let e = run_limited(bomb, true, small, None, &schema)
            .err()
            .expect("refused");
        assert!(
            e.contains("limit of 1048576 bytes for a chunk whose size the manifest does not give"),
            "{e}"
        );
    }

    #[test]
    fn inflate_limits_follow_the_manifest() {
        assert_eq!(InflateLimit::new(None).bytes, LZ4_UNKNOWN_CAP);
        assert_eq!(InflateLimit::new(Some(1000)).bytes, LZ4_FLOOR);
        assert_eq!(InflateLimit::new(Some(100 << 20)).bytes, 800 << 20);
        assert_eq!(InflateLimit::new(Some(u64::MAX)).bytes, u64::MAX);
    }
}
