//! Statements: their life cycle (PENDING → RUNNING → terminal, by the clock), their external
//! links, and the JSON a client sees for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::result::{Format, InlineRows, ResultSet};

/// Where a result goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    Inline,
    ExternalLinks,
}

/// What executing a statement produced, decided at submission and revealed when it is ready.
#[derive(Debug)]
pub(crate) enum Outcome {
    Succeeded {
        result: Arc<ResultSet>,
        inline: Option<Arc<InlineRows>>,
    },
    Failed {
        error_code: String,
        message: String,
        sql_state: Option<String>,
    },
}

/// The state a client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Closed,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Running => "RUNNING",
            State::Succeeded => "SUCCEEDED",
            State::Failed => "FAILED",
            State::Canceled => "CANCELED",
            State::Closed => "CLOSED",
        }
    }

    pub(crate) fn is_terminal(self) -> bool {
        !matches!(self, State::Pending | State::Running)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) chunk: usize,
    pub(crate) expires: DateTime<Utc>,
}

/// One submitted statement.
#[derive(Debug)]
pub(crate) struct Statement {
    pub(crate) id: String,
    pub(crate) disposition: Disposition,
    pub(crate) format: Format,
    pub(crate) compress: bool,
    pending_until: Instant,
    pub(crate) ready_at: Instant,
    /// When a succeeded statement's result is gone (state `CLOSED`), as Databricks keeps it
    /// for about an hour ([`crate::EmulatorConfig::result_ttl`]).
    result_until: Instant,
    pub(crate) outcome: Outcome,
    ended: Option<State>,
    pub(crate) links: HashMap<String, Link>,
    /// Value of the `x-ms-emulator-check` header every download of this statement must carry.
    pub(crate) check: String,
    /// Its result's bodies in the query result cache, when the cache is on.
    pub(crate) cached: Option<Arc<crate::result_cache::CachedChunks>>,
}

/// How to mint links for a response.
pub(crate) struct LinkMaker {
    /// `http://host:port` as the client addressed the emulator.
    pub(crate) base: String,
    pub(crate) ttl: Duration,
    /// Hand out an already expired link (the `ExpiredLink` fault).
    pub(crate) expired: bool,
    /// Links per response ([`crate::EmulatorConfig::links_per_response`]).
    pub(crate) per_response: usize,
}

pub(crate) const CHECK_HEADER: &str = "x-ms-emulator-check";

/// When a statement was submitted, and how long each of its phases lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) submitted: Instant,
    /// PENDING for the first half of this, RUNNING for the second.
    pub(crate) pending: Duration,
    /// RUNNING after that.
    pub(crate) running: Duration,
    /// How long the result stays once it succeeded.
    pub(crate) result_ttl: Duration,
}

impl Statement {
    pub(crate) fn new(
        disposition: Disposition,
        format: Format,
        compress: bool,
        timing: Timing,
        outcome: Outcome,
    ) -> Statement {
        let Timing {
            submitted,
            pending,
            running,
            result_ttl,
        } = timing;
        Statement {
            id: uuid::Uuid::new_v4().to_string(),
            disposition,
            format,
            compress,
            pending_until: submitted + pending / 2,
            ready_at: submitted + pending + running,
            result_until: submitted + pending + running + result_ttl,
            outcome,
            ended: None,
            links: HashMap::new(),
            check: uuid::Uuid::new_v4().simple().to_string(),
            cached: None,
        }
    }

    pub(crate) fn state(&self, now: Instant) -> State {
        if let Some(ended) = self.ended {
            ended
        } else if now < self.pending_until {
            State::Pending
        } else if now < self.ready_at {
            State::Running
        } else {
            match self.outcome {
                Outcome::Succeeded { .. } if now >= self.result_until => State::Closed,
                Outcome::Succeeded { .. } => State::Succeeded,
                Outcome::Failed { .. } => State::Failed,
            }
        }
    }

    /// Cancels a statement that has not finished; a finished one is left alone.
    pub(crate) fn cancel(&mut self, now: Instant) {
        if !self.state(now).is_terminal() {
            self.ended = Some(State::Canceled);
        }
    }

    pub(crate) fn close(&mut self) {
        self.ended = Some(State::Closed);
        self.links.clear();
    }

    /// The StatementResponse JSON; a SUCCEEDED one carries the manifest and chunk 0.
    pub(crate) fn response(&mut self, now: Instant, links: &LinkMaker) -> Value {
        let state = self.state(now);
        let mut status = Map::new();
        status.insert("state".into(), json!(state.as_str()));
        let mut body = Map::new();
        body.insert("statement_id".into(), json!(self.id));
        match (&self.outcome, state) {
            (
                Outcome::Failed {
                    error_code,
                    message,
                    sql_state,
                },
                State::Failed,
            ) => {
                status.insert(
                    "error".into(),
                    json!({"error_code": error_code, "message": message}),
                );
                if let Some(sql_state) = sql_state {
                    status.insert("sql_state".into(), json!(sql_state));
                }
            }
            (Outcome::Succeeded { result, .. }, State::Succeeded) => {
                let manifest = self.manifest(result);
                let has_chunks = !result.chunks.is_empty();
                body.insert("manifest".into(), manifest);
                if has_chunks && let Some(first) = self.result(0, now, links) {
                    body.insert("result".into(), first);
                }
            }
            _ => {}
        }
        body.insert("status".into(), Value::Object(status));
        Value::Object(body)
    }

    fn manifest(&self, result: &ResultSet) -> Value {
        let columns: Vec<Value> = result
            .columns
            .iter()
            .enumerate()
            .map(|(position, c)| {
                let mut col = Map::new();
                col.insert("name".into(), json!(c.name));
                col.insert("position".into(), json!(position));
                col.insert("type_name".into(), json!(c.ty.type_name()));
                col.insert("type_text".into(), json!(c.ty.sql()));
                if let Some((p, s)) = c.ty.precision_scale() {
                    col.insert("type_precision".into(), json!(p));
                    col.insert("type_scale".into(), json!(s));
                }
                if let Some(interval) = c.ty.interval_type() {
                    col.insert("type_interval_type".into(), json!(interval));
                }
                Value::Object(col)
            })
            .collect();
        let external = self.disposition == Disposition::ExternalLinks;
        let chunks: Vec<Value> = result
            .chunks
            .iter()
            .map(|c| {
                let mut chunk = json!({
                    "chunk_index": c.index, "row_offset": c.row_offset, "row_count": c.row_count
                });
                if external {
                    chunk["byte_count"] = json!(c.byte_count);
                }
                chunk
            })
            .collect();
        let mut manifest = Map::new();
        manifest.insert("format".into(), json!(self.format.as_str()));
        manifest.insert(
            "schema".into(),
            json!({"column_count": columns.len(), "columns": columns}),
        );
        manifest.insert("total_chunk_count".into(), json!(result.chunks.len()));
        manifest.insert("chunks".into(), Value::Array(chunks));
        manifest.insert("total_row_count".into(), json!(result.total_rows));
        if external {
            let total: u64 = result.chunks.iter().map(|c| c.byte_count).sum();
            manifest.insert("total_byte_count".into(), json!(total));
        }
        manifest.insert("truncated".into(), json!(result.truncated));
        if self.compress {
            manifest.insert("result_compression".into(), json!("LZ4_FRAME"));
        }
        Value::Object(manifest)
    }

    /// The ResultData for chunk `index`, minting a fresh link for EXTERNAL_LINKS; `None` if the
    /// statement has no such chunk.
    pub(crate) fn result(
        &mut self,
        index: usize,
        now: Instant,
        links: &LinkMaker,
    ) -> Option<Value> {
        let Outcome::Succeeded { result, inline } = &self.outcome else {
            return None;
        };
        let (result, inline) = (Arc::clone(result), inline.clone());
        if self.state(now) != State::Succeeded {
            return None;
        }
        let chunk = *result.chunks.get(index)?;
        let last = index + 1 == result.chunks.len();
        let next_link = format!(
            "/api/2.0/sql/statements/{}/result/chunks/{}",
            self.id,
            index + 1
        );
        let mut data = Map::new();
        data.insert("chunk_index".into(), json!(chunk.index));
        data.insert("row_offset".into(), json!(chunk.row_offset));
        data.insert("row_count".into(), json!(chunk.row_count));
        match (self.disposition, &inline) {
            (Disposition::Inline, Some(rows)) => {
                data.insert("data_array".into(), json!(rows.get(index)?));
                if !last {
                    data.insert("next_chunk_index".into(), json!(index + 1));
                    data.insert("next_chunk_internal_link".into(), json!(next_link));
                }
                Some(Value::Object(data))
            }
            _ => {
                let last_in_response = (index + links.per_response).min(result.chunks.len());
                let external_links: Vec<Value> = (index..last_in_response)
                    .map(|i| {
                        let chunk = result.chunks[i];
                        Value::Object(self.external_link(&chunk, i, result.chunks.len(), links))
                    })
                    .collect();
                Some(json!({ "external_links": external_links }))
            }
        }
    }
}

impl Statement {
    /// One `external_links[]` element for chunk `index` of `total`: a fresh signed link (kept
    /// for the download route), its expiry, the headers the download must send, and the next
    /// chunk's index unless it is the last.
    fn external_link(
        &mut self,
        chunk: &crate::result::ChunkInfo,
        index: usize,
        total: usize,
        links: &LinkMaker,
    ) -> Map<String, Value> {
        let sig = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let expires = if links.expired {
            Utc::now() - chrono::Duration::seconds(1)
        } else {
            Utc::now() + chrono::Duration::from_std(links.ttl).unwrap_or_default()
        };
        self.links.insert(
            sig.clone(),
            Link {
                chunk: index,
                expires,
            },
        );
        let mut data = Map::new();
        data.insert("chunk_index".into(), json!(chunk.index));
        data.insert("row_offset".into(), json!(chunk.row_offset));
        data.insert("row_count".into(), json!(chunk.row_count));
        data.insert("byte_count".into(), json!(chunk.byte_count));
        data.insert(
            "external_link".into(),
            json!(format!(
                "{}/external/{}/{}?exp={}&sig={sig}",
                links.base,
                self.id,
                index,
                expires.timestamp()
            )),
        );
        data.insert(
            "expiration".into(),
            json!(expires.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        data.insert("http_headers".into(), json!({CHECK_HEADER: self.check}));
        if index + 1 < total {
            data.insert("next_chunk_index".into(), json!(index + 1));
            data.insert(
                "next_chunk_internal_link".into(),
                json!(format!(
                    "/api/2.0/sql/statements/{}/result/chunks/{}",
                    self.id,
                    index + 1
                )),
            );
        }
        data
    }
}

/// All statements of one emulator. Statements are kept until the emulator stops.
#[derive(Debug, Default)]
pub(crate) struct Statements {
    map: Mutex<HashMap<String, Statement>>,
}

impl Statements {
    pub(crate) fn insert(&self, statement: Statement) -> String {
        let id = statement.id.clone();
        self.lock().insert(id.clone(), statement);
        id
    }

    /// Runs `f` on statement `id` under the lock.
    pub(crate) fn with<R>(&self, id: &str, f: impl FnOnce(&mut Statement) -> R) -> Option<R> {
        self.lock().get_mut(id).map(f)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Statement>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
