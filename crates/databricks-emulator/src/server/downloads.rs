//! The external links' route, the stand-in for presigned cloud storage: which requests a link
//! admits, and the chunk body streamed (or, under a fault, cut short).

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::{Injected, blocking};
use crate::faults::Fault;
use crate::result::{Format, ResultSet};
use crate::result_cache::CachedChunks;
use crate::state::AppState;
use crate::statements::{CHECK_HEADER, Outcome, State as StatementState};

#[derive(Debug, Deserialize)]
pub(super) struct LinkQuery {
    sig: Option<String>,
}

/// A cloud-storage style XML error, as a presigned-URL host answers.
pub(super) fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{}\nTime:{}</Message></Error>",
        uuid::Uuid::new_v4(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    (status, [(CONTENT_TYPE, "application/xml")], body).into_response()
}

pub(super) async fn download(
    State(state): State<AppState>,
    injected: Option<Extension<Injected>>,
    headers: HeaderMap,
    Path((id, chunk)): Path<(String, String)>,
    Query(query): Query<LinkQuery>,
) -> Response {
    let injected = injected.map(|Extension(Injected(fault))| fault);
    let signed = match signed_chunk(&state, injected.as_ref(), &headers, &id, &chunk, query.sig) {
        Ok(signed) => signed,
        Err(Refused { code, message }) => {
            return storage_error(StatusCode::FORBIDDEN, code, message);
        }
    };
    if matches!(injected, Some(Fault::TruncatedChunk)) {
        return truncated(signed).await;
    }
    let content_type = signed.content_type();
    match signed.cached.as_ref().and_then(|c| c.get(signed.chunk)) {
        Some(body) => {
            state.result_cache.hit();
            paced(&state, content_type, stored(body))
        }
        None => paced(&state, content_type, produced(state.clone(), signed)),
    }
}

/// A chunk a link admits a download of: its result, and how its body is written.
struct SignedChunk {
    result: Arc<ResultSet>,
    chunk: usize,
    format: Format,
    compress: bool,
    /// The result's bodies in the query result cache, when it is on.
    cached: Option<Arc<CachedChunks>>,
}

impl SignedChunk {
    /// Writes the chunk's body to `sink` (blocking: it reads the table's file).
    fn write<W: std::io::Write>(&self, sink: W) -> io::Result<W> {
        self.result
            .write_chunk(self.chunk, self.format, self.compress, sink)
    }

    fn content_type(&self) -> &'static str {
        if self.compress {
            "application/octet-stream"
        } else {
            self.format.content_type()
        }
    }
}

/// Why the storage refuses a download (a `403`, as [`storage_error`] spells it).
struct Refused {
    code: &'static str,
    message: &'static str,
}

/// The chunk link `sig` of statement `id` names, or the storage's refusal: a request with an
/// `Authorization` header, behind the firewall fault, with a wrong, expired or gone link, or
/// without the header the link lists.
fn signed_chunk(
    state: &AppState,
    injected: Option<&Fault>,
    headers: &HeaderMap,
    id: &str,
    chunk: &str,
    sig: Option<String>,
) -> Result<SignedChunk, Refused> {
    if headers.contains_key(AUTHORIZATION) {
        return Err(Refused {
            code: "InvalidAuthenticationInfo",
            message: "Authentication information is not given in the correct format: a presigned URL must not be sent with an Authorization header.",
        });
    }
    if matches!(injected, Some(Fault::StorageFirewall)) {
        return Err(Refused {
            code: "AuthorizationFailure",
            message: "This request is not authorized to perform this operation.",
        });
    }
    let denied = || Refused {
        code: "AuthenticationFailed",
        message: "Server failed to authenticate the request. Make sure the value of the signature is formed correctly.",
    };
    let (Some(sig), Ok(chunk)) = (sig, chunk.parse::<usize>()) else {
        return Err(denied());
    };
    let now = Instant::now();
    let found = state.statements.with(id, |s| {
        // A result that is gone takes its links with it.
        let link = (s.state(now) == StatementState::Succeeded)
            .then(|| s.links.get(&sig).cloned())
            .flatten();
        let result = match &s.outcome {
            Outcome::Succeeded { result, .. } => Some(result.clone()),
            Outcome::Failed { .. } => None,
        };
        (
            link,
            result,
            s.format,
            s.compress,
            s.check.clone(),
            s.cached.clone(),
        )
    });
    let Some((Some(link), Some(result), format, compress, check, cached)) = found else {
        return Err(denied());
    };
    if link.chunk != chunk {
        return Err(denied());
    }
    if link.expires <= chrono::Utc::now() {
        return Err(Refused {
            code: "AuthenticationFailed",
            message: "Server failed to authenticate the request. Signed expiry time has passed.",
        });
    }
    if headers.get(CHECK_HEADER).and_then(|v| v.to_str().ok()) != Some(check.as_str()) {
        return Err(Refused {
            code: "AuthenticationFailed",
            message: "Server failed to authenticate the request. A header listed in http_headers is missing or wrong.",
        });
    }
    Ok(SignedChunk {
        result,
        chunk,
        format,
        compress,
        cached,
    })
}

/// The `TruncatedChunk` fault: the first half of the body, sent with its (short) length.
async fn truncated(signed: SignedChunk) -> Response {
    let content_type = signed.content_type();
    let produced = blocking(move || signed.write(Vec::new())).await;
    match produced {
        Ok(Ok(mut bytes)) => {
            bytes.truncate(bytes.len() / 2);
            let length = bytes.len();
            (
                StatusCode::OK,
                [
                    (CONTENT_TYPE, content_type.to_owned()),
                    (CONTENT_LENGTH, length.to_string()),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "producing chunk failed");
            storage_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "Internal error.",
            )
        }
        Err(e) => e.into_response(),
    }
}

/// A body stored in the result cache, in slices of at most 1 MiB as a produced one arrives.
fn stored(body: Bytes) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    const SLICE: usize = 1 << 20;
    let slices: Vec<io::Result<Bytes>> = (0..body.len())
        .step_by(SLICE)
        .map(|at| Ok(body.slice(at..body.len().min(at + SLICE))))
        .collect();
    futures::stream::iter(slices)
}

/// The body as the blocking pool produces it from the table; kept in the result cache, when it
/// is on, once it has been produced whole.
fn produced(
    state: AppState,
    signed: SignedChunk,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut writer = crate::result::ChannelWriter::new(tx);
        let written = match &signed.cached {
            Some(cached) => {
                let mut tee = Tee {
                    inner: &mut writer,
                    copy: Vec::new(),
                };
                signed.write(&mut tee).map(|tee| {
                    state.result_cache.store(
                        cached,
                        signed.chunk,
                        Bytes::from(std::mem::take(&mut tee.copy)),
                    );
                })
            }
            None => signed.write(&mut writer).map(drop),
        };
        if written.is_ok() {
            state.result_cache.produced();
        }
        if let Err(e) = written {
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!(error = %e, "producing chunk failed");
            }
            writer.fail(e);
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// A writer that keeps a copy of what it passes on.
struct Tee<'w, W: Write> {
    inner: &'w mut W,
    copy: Vec<u8>,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.copy.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The response sending `body`: counted as sent, and paced to `download_bandwidth` when set (a
/// stand-in for the network between a warehouse's storage and the service).
fn paced(
    state: &AppState,
    content_type: &'static str,
    body: impl Stream<Item = io::Result<Bytes>> + Send + 'static,
) -> Response {
    let bandwidth = state.config.download_bandwidth;
    // Counted in progress until the body ends or the client goes.
    let in_flight = crate::state::InFlight::enter(state);
    let state = state.clone();
    let began = tokio::time::Instant::now();
    let start = (Box::pin(body), 0_u64, in_flight);
    let stream = futures::stream::unfold(start, move |(mut body, mut sent, in_flight)| {
        let state = state.clone();
        async move {
            let item = body.next().await?;
            if let Ok(bytes) = &item {
                let n = bytes.len() as u64;
                sent += n;
                state
                    .download_bytes
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                if let Some(rate) = bandwidth.filter(|r| *r > 0) {
                    let due = began + Duration::from_secs_f64(sent as f64 / rate as f64);
                    tokio::time::sleep_until(due).await;
                }
            }
            Some((item, (body, sent, in_flight)))
        }
    });
    (
        StatusCode::OK,
        [(CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}
