//! One chunk's download from its presigned link, without an `Authorization` header: the link
//! refreshed when it expires or is refused, throttled and failed transfers retried, garbled
//! bodies downloaded again (docs/DATABRICKS-WIRE.md §9).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::buffer::Buffer;
use reqwest::StatusCode;

use super::decode::{Chunk, DecodeError, decode};
use super::rerun::Ctx;
use crate::DatabricksOptions;
use crate::client::{Retry, builder_error, describe_reqwest, retry_after, transport_error};
use crate::wire::ExternalLink;
use publish_source::{RetryCause, SourceError};

/// Links with less than this left are refreshed before use, as the JDBC driver does.
const LINK_MARGIN: Duration = Duration::from_secs(60);

/// Downloads and decodes one chunk, refreshing its link when it expired and retrying transfers
/// that failed or arrived garbled.
pub(super) async fn download(
    ctx: Arc<Ctx>,
    index: u64,
    link: ExternalLink,
) -> Result<Chunk, SourceError> {
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
        let buffers = self.ctx.buffers.clone();
        let expected = self.link.row_count;
        let limit = self.ctx.inflate_limit(index);
        let decoded = tokio::task::spawn_blocking(move || {
            decode(body, lz4, limit, &buffers, expected, &target)
        })
        .await
        .map_err(|e| SourceError::protocol(format!("decoding chunk {index} panicked: {e}")))?;
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
