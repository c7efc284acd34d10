//! The external links' route, the stand-in for presigned cloud storage: which requests a link
//! admits, and the chunk body streamed (or, under a fault, cut short).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Injected, blocking};
use crate::faults::Fault;
use crate::result::{Format, ResultSet};
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
        truncated(signed).await
    } else {
        streamed(&state, signed)
    }
}

/// A chunk a link admits a download of: its result, and how its body is written.
struct SignedChunk {
    result: Arc<ResultSet>,
    chunk: usize,
    format: Format,
    compress: bool,
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
        (link, result, s.format, s.compress, s.check.clone())
    });
    let Some((Some(link), Some(result), format, compress, check)) = found else {
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

/// The body, streamed as the blocking pool produces it.
fn streamed(state: &AppState, signed: SignedChunk) -> Response {
    let content_type = signed.content_type();
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut writer = crate::result::ChannelWriter::new(tx);
        if let Err(e) = signed.write(&mut writer) {
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!(error = %e, "producing chunk failed");
            }
            writer.fail(e);
        }
    });
    // Counted as sent, and paced to `download_bandwidth` when set: a stand-in for the network
    // between a warehouse's storage and the service.
    let bandwidth = state.config.download_bandwidth;
    let state = state.clone();
    let began = tokio::time::Instant::now();
    let stream = futures::stream::unfold((rx, 0_u64), move |(mut rx, mut sent)| {
        let state = state.clone();
        async move {
            let item = rx.recv().await?;
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
            Some((item, (rx, sent)))
        }
    });
    (
        StatusCode::OK,
        [(CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}
