//! A local Databricks emulator: OAuth M2M, Unity Catalog tables, SQL Statement Execution with
//! Arrow results and injectable faults, served over real HTTP on loopback.
//!
//! No Databricks workspace is reachable from development machines, so the service's Databricks
//! client is tested against this emulator. It follows `docs/DATABRICKS-WIRE.md` (and `docs/UNITY-CATALOG-AND-LZ4.md`) field for field
//! for the calls it answers:
//!
//! - `POST /oidc/v1/token` (client credentials, Basic or form fields), the discovery documents
//!   `/.well-known/databricks-config` and `/oidc/.well-known/oauth-authorization-server`;
//! - `POST /{tenant}/oauth2/v2.0/token`, Microsoft Entra ID's client-credentials endpoint for an
//!   Azure service principal ([`EmulatorConfig::entra_tenant`], its own secret, the Azure
//!   Databricks scope), standing in for `login.microsoftonline.com`;
//! - `GET /api/2.1/unity-catalog/schemas/{catalog.schema}` (a `SchemaInfo`: what `cr8tor validate`
//!   asks before listing a schema);
//! - `GET /api/2.1/unity-catalog/tables/{full_name}` and the list `GET
//!   /api/2.1/unity-catalog/tables?catalog_name=…&schema_name=…`, paged as `docs/UNITY-CATALOG-AND-LZ4.md` ("List tables") says
//!   (`max_results` omitted: everything in one answer; `0`: the server's page of 50; above: at
//!   most 50; below: `400`), with `omit_columns`, `omit_properties` and `omit_username` honoured;
//! - `POST /api/2.0/sql/statements`, `GET …/{id}`, `GET …/{id}/result/chunks/{n}`,
//!   `POST …/{id}/cancel`, `DELETE …/{id}`, `POST`/`DELETE /api/2.0/sql/sessions[/{id}]`;
//! - `GET /api/2.0/sql/warehouses/{id}` (a running serverless warehouse; which ids exist is
//!   [`EmulatorConfig::warehouses`]);
//! - external links it serves itself under `/external/…`, standing in for presigned cloud storage.
//!
//! Tables come from a data directory laid out as `DIR/<catalog>/<schema>/<table>.parquet`, with
//! an optional `<table>.json` [`fixtures::Sidecar`] for comments, the primary key and
//! `char(n)`/`varchar(n)` types. Every folder `DIR/<catalog>/` is a catalog and every folder below
//! it a schema, empty or not; an optional `DIR/<catalog>/<schema>.json`
//! [`fixtures::SchemaSidecar`] gives the schema a comment and properties. Tables are looked up on disk at request time (metadata cached
//! until a file's mtime or length changes). Results are planned from Parquet metadata alone and
//! each chunk is read (just its rows and columns) and streamed when downloaded, so tables far
//! larger than memory work.
//!
//! Statements are `SELECT <columns | *> FROM <table> [VERSION AS OF <n>] [WHERE
//! _metadata.file_path IN (:p, …)]` (named `STRING` parameters bound in `parameters`), the data
//! files query `SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM <table>
//! [VERSION AS OF <n>] GROUP BY _metadata.file_path`, and `DESCRIBE HISTORY <table> [LIMIT
//! <n>]`. Each Parquet row group of a table stands for one Delta data file
//! (`abfss://…/part-<n>-<uuid>.c000.snappy.parquet`, stable per version), so a read can be split
//! by file. A result is capped at [`EmulatorConfig::result_byte_limit`] (or the request's
//! `byte_limit`) as Databricks caps one at 100 GiB: past it the rows are cut and `truncated`
//! is `true`. A table written over ([`fixtures::TableWriter::finish`]) gets a new
//! Delta version; the data it replaced stays readable `VERSION AS OF` from
//! `<table>.versions/<n>.parquet`, and `DESCRIBE HISTORY` lists the versions newest first
//! (`version`, `timestamp`, `operation`).
//!
//! Column types follow docs/DATABRICKS-WIRE.md §4: Parquet `Interval(YearMonth)` and `Duration` columns are `INTERVAL
//! YEAR TO MONTH` and `INTERVAL DAY TO SECOND`; nested columns arrive as native Arrow types, or as
//! `Utf8` JSON text with [`EmulatorConfig::complex_as_json_text`] (the manifest and the
//! `Spark:DataType:SqlName` metadata still name the nested type).
//!
//! # What the emulator does NOT check — a green test is not proof of these
//!
//! - **Warehouses**: any non-empty `warehouse_id` exists unless [`EmulatorConfig::warehouses`]
//!   lists them. Every warehouse is always `RUNNING` (never `STOPPED`, `STARTING` or `DELETED`),
//!   its `GET` answer is a fixed subset of the real one, and the `PENDING`/`RUNNING` phases of a
//!   statement are only a configurable delay. The 404 `RESOURCE_DOES_NOT_EXIST` for execute on an
//!   unknown warehouse is a guess: the wire reference does not document that answer.
//! - **Cancel** is best effort, as on Databricks: it ends a `PENDING`/`RUNNING` statement as
//!   `CANCELED` at once, and leaves a statement that already ended (`SUCCEEDED`, `FAILED`,
//!   `CLOSED`) unchanged, its result still fetchable. Real warehouses may take a while to cancel,
//!   and may still finish a statement that was cancelled at the last moment.
//! - **SQL**: only the statements above are understood (identifiers plain or back-quoted). No
//!   other `WHERE`, no `LIMIT`, expressions or aliases; parameters only as the file list, only
//!   `STRING`; `query_tags` and `session_id` are ignored. Everything else fails with
//!   `PARSE_SYNTAX_ERROR`, which real Databricks would run. The byte cap counts the estimated
//!   sizes below, not Databricks' internal ones, and a truncated manifest's `total_row_count`
//!   is the rows kept (assumed of Databricks, not documented). Data files are row groups, not
//!   Delta's real files, and a file filter reads only those groups (whether a warehouse prunes
//!   files by `_metadata.file_path` is not verified).
//! - **Permissions**: every token sees every catalog, schema and table; there is no
//!   `PERMISSION_DENIED` and no foreign keys. Governed objects (views, materialized views,
//!   foreign tables, row filters and column masks per table or by ABAC policy:
//!   [`fixtures::Governance`]) answer `TableInfo` and refuse pinning as Databricks documents
//!   (docs/DATABRICKS-WIRE.md §6.5), but their rows are the Parquet file's: no filter, mask or
//!   view definition is evaluated, and no ABAC policy API is served. `include_browse` is checked to be `true` or
//!   `false` but changes nothing, since nothing is browse-only (`browse_only` is always `false`
//!   on a schema and never sent on a table).
//! - **Unity Catalog metadata**: only what the folders, files and sidecars say. Every catalog is a
//!   `MANAGED_CATALOG` and every table a `MANAGED` `DELTA` table owned by
//!   `emulator-owner@example.com`; ids are uuid-shaped hashes of the name;
//!   `created_at` and `updated_at` are the modification time of the schema folder or the Parquet
//!   file. No storage locations, effective properties, tags, lineage or catalog `GET`/list, and no
//!   schema list (`GET /api/2.1/unity-catalog/schemas`). Boolean flags accept `true`/`false` in
//!   any case; what Databricks does with other spellings is not verified. Table properties are
//!   always `{}`. Full names are checked only for their number of dot-separated parts, not for
//!   the characters docs/CONTRACT.md §5 forbids.
//! - **Signatures**: external links carry a random `sig` looked up in a table, not a real
//!   signature; expiry is checked against the emulator's own clock. Error bodies of the download
//!   route only imitate Azure's XML.
//! - **Tokens**: access tokens are opaque random strings, not JWTs; scopes are not enforced and no
//!   token exchange or user (U2M) flow exists. PATs are not accepted.
//! - **Sizes**: `byte_count`/`total_byte_count` are estimates from Parquet's uncompressed column
//!   sizes, not the exact body length. The 25 MiB INLINE limit counts rendered text.
//! - **Value rendering** in `JSON_ARRAY`/`CSV` (timestamps, floats, binary, nested values) is a
//!   plausible imitation, not a verified copy of Databricks' output.
//! - **Lifetimes**: statements and results never expire (no 1-hour result window, no 15-minute
//!   polling requirement); the file is re-read at download time, so replacing a table between
//!   execute and download gives undefined results.
//! - **LZ4** (`result_compression: "LZ4_FRAME"`): an `ARROW_STREAM` chunk is written as Databricks
//!   writes it, one LZ4 frame per Arrow IPC message (schema, each batch, end marker), so a reader
//!   must decode every concatenated frame. The frames' block size, checksums and content-size
//!   flags are lz4_flex's defaults, not copied from Databricks; `byte_count` stays the
//!   uncompressed estimate on links too, where Databricks puts the compressed length.
//! - **Newer behaviours** (docs/DATABRICKS-WIRE.md §7, §14: direct results, `attachment`, bounded SEA) are not emulated;
//!   `INLINE_OR_EXTERNAL_LINKS` is treated as `EXTERNAL_LINKS`.
//! - **JSON text of nested values** (`complex_as_json_text`, `JSON_ARRAY`, `CSV`) keeps null
//!   struct fields as `null` and prints map keys as JSON strings; Spark's `to_json` drops null
//!   fields, and what Databricks sends byte for byte is not verified.
//! - **Types**: `VARIANT`, `GEOGRAPHY`, `GEOMETRY` and single-field or partial intervals
//!   (`INTERVAL YEAR`, `INTERVAL HOUR TO MINUTE`, …) never appear, since a Parquet file cannot
//!   say a column is one: every `Interval(YearMonth)` is `YEAR TO MONTH` and every `Duration` is
//!   `DAY TO SECOND`. Other Arrow intervals (`DayTime`, `MonthDayNano`) are served as strings.
//! - **Table list paging**: tables come sorted by name and a page token is an offset, so tables
//!   added or removed between pages shift the rest. `next_page_token` is sent exactly when more
//!   tables follow, so pages are never empty; real servers may send an empty page with a token
//!   (`docs/UNITY-CATALOG-AND-LZ4.md`, "List tables"), which clients must still handle and this emulator never exercises.
//!
//! # Faults and observation
//!
//! [`Emulator::faults`] queues [`Fault`]s FIFO per [`Operation`]; [`Emulator::journal`] lists the
//! requests answered, [`Emulator::submitted_statements`] the execute bodies, and
//! [`Emulator::statement_state`] reads a statement's state. The binary
//! exposes the same on unauthenticated, test-only routes: `POST /emulator/faults` with
//! `{"operation": "download", "fault": {"kind": "slow", "millis": 500}}` (kinds
//! `too_many_requests`, `unavailable`, `error`, `expired_link`, `truncated_chunk`,
//! `fail_statement`, `slow`, `stay_running`, `storage_firewall`), `DELETE /emulator/faults`, `GET /emulator/journal`,
//! `GET /emulator/statements/{id}`. Never expose the emulator beyond loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod api_error;
mod auth;
mod catalog;
mod error;
mod faults;
pub mod fixtures;
mod governance;
mod journal;
mod result;
mod result_cache;
mod server;
mod sql;
mod state;
mod statements;
mod tokens;
mod types;

pub use error::Error;
pub use faults::{Fault, Faults, Operation};
pub use journal::JournalEntry;

/// How an emulator runs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Root of `<catalog>/<schema>/<table>.parquet`.
    pub data_dir: PathBuf,
    /// OAuth client id the token endpoint accepts.
    pub client_id: String,
    /// OAuth client secret the token endpoint accepts.
    pub client_secret: String,
    /// The tenant whose Entra ID token endpoint (`POST /{tenant}/oauth2/v2.0/token`) the
    /// emulator also serves, standing in for `login.microsoftonline.com`.
    pub entra_tenant: String,
    /// The Entra ID client secret of the same client id: a different secret from the
    /// Databricks OAuth one, as for a real Azure service principal.
    pub entra_client_secret: String,
    /// Rows per result chunk.
    pub chunk_rows: usize,
    /// Lifetime of an external link.
    pub link_ttl: Duration,
    /// Lifetime of an access token (`expires_in`).
    pub token_ttl: Duration,
    /// How long a statement stays PENDING (first half) then RUNNING (second half).
    pub pending_delay: Duration,
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The SQL warehouses that exist. `None` (the default): any non-empty id exists. `Some`:
    /// only these ids exist; any other is answered `404 RESOURCE_DOES_NOT_EXIST` by
    /// `GET /api/2.0/sql/warehouses/{id}`, by execute and by session creation.
    pub warehouses: Option<Vec<String>>,
    /// Send `ARRAY`/`MAP`/`STRUCT` columns of `ARROW_STREAM` chunks as `Utf8` JSON text instead
    /// of native nested Arrow types (docs/DATABRICKS-WIRE.md §4; off by default, as on Databricks).
    pub complex_as_json_text: bool,
    /// External links per response (the statement's first result, and each chunk request),
    /// each with the `next_chunk_index` of its successor, as Databricks sends several at once.
    /// Default 1; at least 1 is used.
    pub links_per_response: usize,
    /// Bytes per second each download is paced to (a stand-in for the network); `None` (the
    /// default): as fast as it is produced.
    pub download_bandwidth: Option<u64>,
    /// How long a succeeded statement's result stays fetchable; then the statement is `CLOSED`,
    /// its chunks answer 404 `NOT_FOUND` and its links are refused. Databricks keeps results
    /// for about an hour; tests set seconds. Default 1 hour.
    pub result_ttl: Duration,
    /// The most (estimated, uncompressed) bytes one statement's result holds, as Databricks
    /// caps a downloaded result at 100 GiB: rows past it are cut and the manifest says
    /// `truncated: true`. A request's smaller `byte_limit` wins. Default 100 GiB; tests set a
    /// few kilobytes to make a table too large for one result.
    pub result_byte_limit: u64,
    /// The query result cache's budget in bytes of chunk bodies (docs/DATABRICKS-WIRE.md §6.6):
    /// a statement repeated over unchanged data is answered with the bodies already produced.
    /// 0 (the default) turns it off, so that every download is produced from its table.
    pub result_cache_bytes: u64,
}

impl EmulatorConfig {
    /// Defaults: client `emulator-client-id` / `emulator-client-secret` (Entra ID: tenant
    /// `11111111-2222-3333-4444-555555555555`, secret `emulator-entra-secret`), 500 000 rows per chunk,
    /// links for 15 minutes, tokens for 1 hour, no pending delay, `127.0.0.1:0`, any warehouse
    /// id, native nested types, one link per response.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmulatorConfig {
            data_dir: data_dir.into(),
            client_id: "emulator-client-id".into(),
            client_secret: "emulator-client-secret".into(),
            entra_tenant: "11111111-2222-3333-4444-555555555555".into(),
            entra_client_secret: "emulator-entra-secret".into(),
            chunk_rows: 500_000,
            link_ttl: Duration::from_secs(15 * 60),
            token_ttl: Duration::from_secs(60 * 60),
            pending_delay: Duration::ZERO,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            warehouses: None,
            complex_as_json_text: false,
            links_per_response: 1,
            download_bandwidth: None,
            result_ttl: Duration::from_secs(60 * 60),
            result_byte_limit: 100 << 30,
            result_cache_bytes: 0,
        }
    }
}

/// A running emulator. Dropping it stops the server in the background; [`Emulator::shutdown`]
/// waits for that.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Validates `config`, binds the socket and starts serving on the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, Error> {
        if !config.data_dir.is_dir() {
            return Err(Error::DataDir {
                path: config.data_dir.clone(),
            });
        }
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| Error::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.bind,
            source,
        })?;
        let result_cache = result_cache::ResultCache::new(config.result_cache_bytes);
        let shared = Arc::new(state::Shared {
            url: format!("http://{addr}"),
            catalog: catalog::Catalog::new(config.data_dir.clone())
                .map_err(|source| Error::Scratch { source })?,
            config,
            tokens: tokens::Tokens::default(),
            statements: statements::Statements::default(),
            faults: Faults::default(),
            journal: journal::Journal::default(),
            download_bytes: std::sync::atomic::AtomicU64::new(0),
            downloads: state::InFlight::default(),
            result_cache,
        });
        let app = server::router::app(state::AppState(shared.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "emulator server failed");
            }
        });
        tracing::info!(%addr, "databricks emulator listening");
        Ok(Emulator {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, `http://127.0.0.1:PORT`: the workspace host to give a client.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The most chunk downloads that were in progress at one moment so far (`GET
    /// /emulator/stats` says it too).
    pub fn downloads_in_flight_max(&self) -> u64 {
        self.shared
            .downloads
            .max
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The fault queues.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every request answered so far, oldest first (admin routes excluded).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.journal.snapshot()
    }

    /// The JSON body of every `POST /api/2.0/sql/statements` received, oldest first, refused
    /// ones included: what the client asked for (`statement`, `disposition`,
    /// `result_compression`, …), field for field.
    pub fn submitted_statements(&self) -> Vec<serde_json::Value> {
        self.shared.journal.submitted()
    }

    /// A statement's current state (`PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELED`,
    /// `CLOSED`), or `None` for an unknown id.
    pub fn statement_state(&self, id: &str) -> Option<String> {
        self.shared
            .statements
            .with(id, |s| s.state(Instant::now()).as_str().to_owned())
    }

    /// Stops accepting connections and waits (at most 5 s) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
