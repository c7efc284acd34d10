//! [`DatabricksSource`]: Unity Catalog metadata and SQL warehouse results over the Databricks
//! REST APIs. The only crate that knows Databricks' wire format (see `docs/DATABRICKS-WIRE.md`).
//!
//! - **Auth**: OAuth machine-to-machine. One access token per source, fetched from
//!   `{host}/oidc/v1/token` with the service principal's id and secret (or, with
//!   [`TokenSource::EntraId`], from Microsoft Entra ID), cached, refreshed
//!   single-flight when less than 5 minutes remain; a 401 from any call refreshes it once and
//!   retries once.
//! - **Describe**: `GET /api/2.1/unity-catalog/tables/{catalog.schema.table}`.
//! - **Read**: one `SELECT` of the described columns, pinned to the table's Delta version,
//!   through the Statement Execution API with
//!   `EXTERNAL_LINKS` + `ARROW_STREAM` (LZ4-compressed unless
//!   [`DatabricksOptions::lz4_compression`] is off), polled with backoff until it ends (under
//!   [`DatabricksOptions::overall_timeout`]); chunks are downloaded in parallel (bounded), from
//!   presigned links that never receive the bearer token, and yielded in chunk order. A table
//!   larger than one result (`truncated`) is read again in parts by data file over the same
//!   version ([`DatabricksOptions::parallel_parts`], docs/DATABRICKS-WIRE.md §6.4).
//! - **Retries**: 429 and 503 (any call) wait for `Retry-After`, capped, with backoff; other 5xx
//!   and connection errors are retried only for calls that are safe to repeat (everything but
//!   submitting the statement); expired links are refreshed; garbled chunks downloaded again.
//!   Each call has a budget of [`DatabricksOptions::max_retries`] within
//!   [`DatabricksOptions::retry_deadline`].
//! - **Cancel**: a read dropped or failed before its end cancels the statement in the
//!   background.
//!
//! Logs carry statement ids, chunk indexes, row and byte counts — never tokens, secrets,
//! presigned URLs or their headers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use publish_types::{AllowedHost, HostUrl, ObjectName, TableSchema};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use publish_columns::arrow_schema;
use publish_source::{Source, SourceError, TableRequest, TableStream};

mod budget;
mod catalog;
mod chunks;
mod client;
mod governance;
mod split;
mod statement;
mod wire;

pub use budget::DownloadBudget;
use client::{ApiFailure, Call, Client, json_body};

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct DatabricksConfig {
    /// The workspace, e.g. `https://adb-123.azuredatabricks.net`, as the allow-list admitted
    /// it ([`HostAllowList::admit`](publish_types::HostAllowList::admit)).
    pub host: AllowedHost,
    /// The warehouse's JDBC/ODBC HTTP path, `/sql/1.0/warehouses/<id>` (or legacy
    /// `/sql/1.0/endpoints/<id>`), optionally with `?o=<workspace id>`.
    pub http_path: String,
    /// The request's catalog: sent as the statement's default catalog. Tables are always named
    /// in full, so reads never depend on it.
    pub catalog: ObjectName,
    /// The service principal's application (client) id.
    pub client_id: SecretString,
    /// The service principal's OAuth secret: its Databricks OAuth secret, or with
    /// [`TokenSource::EntraId`] its Entra ID client secret.
    pub client_secret: SecretString,
    /// Timeouts, parallelism and retry policy.
    pub options: DatabricksOptions,
}

/// Timeouts, parallelism and the retry policy. [`Default`] gives values suitable for
/// production; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabricksOptions {
    /// Limit of one API call; for downloads, the longest a transfer may stall. Default 120 s.
    pub request_timeout: Duration,
    /// Limit for establishing a connection. Default 10 s.
    pub connect_timeout: Duration,
    /// How long a query may take to finish on the warehouse before it is cancelled and the
    /// read fails with [`SourceError::Timeout`]. Default 1 hour.
    pub overall_timeout: Duration,
    /// The most chunks downloaded at the same time. A read starts with 3 (or this, if fewer)
    /// and adapts: one more each time the consumer had to wait for a chunk, one fewer each time
    /// decoded chunks queue up unread, within this ceiling and [`DatabricksOptions::download_budget`].
    /// Default 16, as Databricks' JDBC driver fetches 16 links at once.
    pub max_parallel_downloads: usize,
    /// Bytes of chunks (the manifest's uncompressed `byte_count`, what a chunk holds once
    /// decoded) downloading or decoded and waiting their turn, shared by every read made with
    /// clones of these options: no further download starts while these would exceed it (a
    /// read's first always may). Default 256 MiB, about ten chunks of Databricks' usual
    /// ~24 MiB. A download in progress holds only its compressed bytes, so this counts each at
    /// its worst.
    pub download_budget: DownloadBudget,
    /// Decoded chunks held ready for the consumer beyond those downloading. Default 1. Memory
    /// is bounded by about [`DatabricksOptions::download_budget`] plus `prefetch_chunks + 2`
    /// chunks per read running.
    pub prefetch_chunks: usize,
    /// `wait_timeout` of the submit call: 0 (the default) or 5 to 50 s. With 0 the call
    /// returns the statement id at once and the client polls, so a read abandoned at any moment
    /// can still cancel its statement; a longer wait saves one poll on fast queries, but a read
    /// dropped during the submit call leaves its statement running until it ends.
    pub submit_wait: Duration,
    /// First interval between status polls. Default 250 ms.
    pub poll_initial: Duration,
    /// The poll interval doubles up to this. Default 5 s.
    pub poll_max: Duration,
    /// Retries of one call (throttling, server errors, dropped connections). Default 8.
    pub max_retries: u32,
    /// No retry of a call starts after this much time since its first attempt. Default 5 min.
    pub retry_deadline: Duration,
    /// First backoff between retries; doubles per retry. Default 500 ms.
    pub retry_initial_backoff: Duration,
    /// Largest backoff between retries. Default 10 s.
    pub retry_max_backoff: Duration,
    /// Largest `Retry-After` honoured; longer requests are shortened to this. Default 60 s.
    pub max_retry_after: Duration,
    /// Downloads of one chunk that arrive truncated or garbled before the read fails with
    /// [`SourceError::Protocol`]. Default 3.
    pub max_chunk_attempts: u32,
    /// Fresh links fetched for one chunk (expired or refused links). Default 3.
    pub max_link_refreshes: u32,
    /// Ask the warehouse for LZ4-frame-compressed results (`result_compression: "LZ4_FRAME"`):
    /// several times fewer bytes on the wire for some CPU. Default on, as in Databricks' JDBC
    /// driver and Python connector (the SDK never asks). Every concatenated frame of a chunk is
    /// decoded, and a chunk that decompresses far past the manifest's uncompressed size for it
    /// is refused as garbled.
    pub lz4_compression: bool,
    /// Statements of one table read in parts (a table larger than one result, see
    /// `docs/DATABRICKS-WIRE.md` §6.4) under way at once, the one being downloaded included:
    /// the next parts run on the warehouse while one is downloaded. Default 2.
    pub parallel_parts: usize,
    /// `query_tags` sent with every statement (`[{"key", "value"}]`, at most 20 kept by
    /// Databricks), so the workspace's query history shows who read what. Default none; the
    /// service sends its name, the project, its start time and the destination.
    pub query_tags: Vec<(String, String)>,
    /// Where access tokens come from. Default [`TokenSource::Databricks`].
    pub token_source: TokenSource,
    /// Where retries are counted by cause (for metrics); clones share the counts.
    pub retries: publish_source::RetryCounts,
}

/// Where the source gets its access tokens (docs/DATABRICKS-WIRE.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenSource {
    /// The workspace's own OAuth endpoint (`{host}/oidc/v1/token`), with the service
    /// principal's Databricks OAuth secret: works on every cloud.
    #[default]
    Databricks,
    /// Microsoft Entra ID, for an Azure service principal with an Entra ID client secret:
    /// `POST {authority}/{tenant}/oauth2/v2.0/token`, scope
    /// [`AZURE_DATABRICKS_SCOPE`]. The authority and tenant come from the service's
    /// configuration, never from a request.
    EntraId {
        /// The Entra ID authority, `https://login.microsoftonline.com` (sovereign clouds have
        /// their own); an origin without a path.
        authority: String,
        /// The directory (tenant) id: a GUID or a verified domain name.
        tenant: String,
    },
}

/// The scope of an Entra ID token for Azure Databricks: its first-party application id.
pub const AZURE_DATABRICKS_SCOPE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default";

/// The Entra ID authority of Azure's public cloud.
pub const ENTRA_PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Why an Entra ID [`TokenSource`] was refused: which of its two settings is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraIdError {
    /// The authority is not an origin.
    #[error("{0}")]
    Authority(String),
    /// The tenant is neither a directory id nor a domain name.
    #[error("{0}")]
    Tenant(String),
}

impl TokenSource {
    /// Entra ID at the public cloud's authority, checking the tenant's spelling.
    pub fn entra_id(tenant: &str) -> Result<TokenSource, EntraIdError> {
        TokenSource::entra_id_at(ENTRA_PUBLIC_AUTHORITY, tenant)
    }

    /// Entra ID at `authority` (an `http(s)://host[:port]` origin), checking both.
    pub fn entra_id_at(authority: &str, tenant: &str) -> Result<TokenSource, EntraIdError> {
        let authority = authority.trim_end_matches('/');
        let origin_ok = ["https://", "http://"].iter().any(|scheme| {
            authority.strip_prefix(scheme).is_some_and(|host| {
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            })
        });
        if !origin_ok {
            return Err(EntraIdError::Authority(format!(
                "the Entra ID authority {authority:?} must be an origin such as \
                 https://login.microsoftonline.com"
            )));
        }
        if tenant.is_empty()
            || tenant.len() > 253
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        {
            return Err(EntraIdError::Tenant(format!(
                "the Entra ID tenant {tenant:?} must be a directory id (a GUID) or a domain name"
            )));
        }
        Ok(TokenSource::EntraId {
            authority: authority.to_owned(),
            tenant: tenant.to_owned(),
        })
    }
}

impl Default for DatabricksOptions {
    fn default() -> Self {
        DatabricksOptions {
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            overall_timeout: Duration::from_secs(3600),
            max_parallel_downloads: 16,
            download_budget: DownloadBudget::new(256 << 20),
            prefetch_chunks: 1,
            submit_wait: Duration::ZERO,
            poll_initial: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
            max_retries: 8,
            retry_deadline: Duration::from_secs(300),
            retry_initial_backoff: Duration::from_millis(500),
            retry_max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            max_chunk_attempts: 3,
            max_link_refreshes: 3,
            lz4_compression: true,
            parallel_parts: 2,
            query_tags: Vec::new(),
            token_source: TokenSource::Databricks,
            retries: publish_source::RetryCounts::default(),
        }
    }
}

/// A Databricks workspace as a [`Source`]: Unity Catalog for metadata, a SQL warehouse for data.
///
/// Cheap to clone (clones share the token cache); every method may run concurrently.
#[derive(Clone)]
pub struct DatabricksSource {
    client: Arc<Client>,
    catalog: ObjectName,
    host: HostUrl,
}

impl std::fmt::Debug for DatabricksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabricksSource")
            .field("host", &self.host.origin())
            .field("warehouse_id", &self.client.warehouse_id)
            .finish_non_exhaustive()
    }
}

/// The warehouse id of an HTTP path: the segment after the last `/warehouses/` (else
/// `/endpoints/`), up to `?` or `&`; and the `o=` workspace id, if any.
fn parse_http_path(http_path: &str) -> Result<(String, Option<String>), SourceError> {
    let invalid = |why: &str| SourceError::InvalidConfig {
        message: format!(
            "http_path {http_path:?} {why}; expected /sql/1.0/warehouses/<warehouse id>"
        ),
    };
    let after = ["/warehouses/", "/endpoints/"]
        .iter()
        .find_map(|marker| {
            http_path
                .rfind(marker)
                .map(|i| &http_path[i + marker.len()..])
        })
        .ok_or_else(|| invalid("names no warehouse"))?;
    let id = after
        .split(['?', '&'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    if id.is_empty() {
        return Err(invalid("has an empty warehouse id"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(invalid(
            "has a warehouse id with characters other than letters, digits, '-' and '_'",
        ));
    }
    let org_id = http_path.split_once('?').and_then(|(_, query)| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("o="))
            .filter(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_owned)
    });
    Ok((id.to_owned(), org_id))
}

impl DatabricksSource {
    /// Checks the configuration and builds the client. Contacts nothing (the host was admitted
    /// by the allow-list before any credential was read); an `http_path` without a warehouse
    /// id is [`SourceError::InvalidConfig`].
    pub fn new(config: DatabricksConfig) -> Result<Self, SourceError> {
        let (warehouse_id, org_id) = parse_http_path(&config.http_path)?;
        if config.client_id.expose_secret().trim().is_empty()
            || config.client_secret.expose_secret().is_empty()
        {
            return Err(SourceError::InvalidConfig {
                message: "the service principal's client id and secret must not be empty".into(),
            });
        }
        let client = Client::new(
            config.host.origin(),
            config.options,
            warehouse_id,
            org_id,
            config.client_id,
            config.client_secret,
        )?;
        Ok(DatabricksSource {
            client: Arc::new(client),
            catalog: config.catalog,
            host: HostUrl::clone(&config.host),
        })
    }

    /// The configured catalog.
    pub fn catalog(&self) -> &ObjectName {
        &self.catalog
    }

    /// The warehouse id taken from the HTTP path.
    pub fn warehouse_id(&self) -> &str {
        &self.client.warehouse_id
    }
}

/// How a read is pinned: to a Delta version, or not at all, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pin {
    /// `VERSION AS OF` this version.
    Version(u64),
    /// Read as it is: Databricks refused to pin it (docs/DATABRICKS-WIRE.md §6.5).
    Unpinned(String),
}

impl DatabricksSource {
    /// The table's latest Delta version (`DESCRIBE HISTORY … LIMIT 1`), which the read then
    /// pins with `VERSION AS OF`, so that the rows come from one snapshot that the package record
    /// names. [`Pin::Unpinned`] where Databricks documents refusing the history for such an
    /// object (a view, a non-Delta table, row filters or column masks:
    /// [`governance::refusal`]); any other failure fails the read.
    async fn pin(&self, schema: &TableSchema, table: &str) -> Result<Pin, SourceError> {
        let query = statement::Query::plain(statement::history_sql(schema));
        let run = statement::run(
            &self.client,
            &query,
            &self.catalog,
            table,
            statement::Disposition::InlineJson,
        )
        .await;
        let (mut guard, finished) = match run {
            Ok(done) => done,
            Err(e) => {
                return match governance::refusal(&e, governance::Pinning::History) {
                    Some(reason) => {
                        tracing::warn!(table, %reason, "reading the table unpinned");
                        Ok(Pin::Unpinned(reason))
                    }
                    None => Err(e),
                };
            }
        };
        let column = finished.manifest.column("version").ok_or_else(|| {
            SourceError::protocol(format!(
                "DESCRIBE HISTORY of `{table}` answered without a `version` column"
            ))
        })?;
        let rows = statement::inline_rows(&self.client, &mut guard, finished.first).await?;
        let version = rows
            .first()
            .and_then(|row| row.get(column).cloned().flatten())
            .ok_or_else(|| {
                SourceError::protocol(format!("DESCRIBE HISTORY of `{table}` returned no version"))
            })?;
        let version = version.parse::<u64>().map_err(|_| {
            SourceError::protocol(format!(
                "DESCRIBE HISTORY of `{table}` returned a version that is not a number"
            ))
        })?;
        Ok(Pin::Version(version))
    }

    /// Submits the table's `SELECT` pinned as `pin` says and waits for it to end; where
    /// Databricks refuses the time travel of a pinned read ([`governance::refusal`]), submits
    /// it again unpinned. Returns the pin the running statement has.
    async fn select(
        &self,
        schema: &TableSchema,
        table: &str,
        pin: Pin,
    ) -> Result<(Pin, statement::Query, statement::Ran), SourceError> {
        let version = match &pin {
            Pin::Version(v) => Some(*v),
            Pin::Unpinned(_) => None,
        };
        let run = |version| async move {
            let query = statement::Query::plain(statement::select_sql(schema, version));
            let ran = statement::run(
                &self.client,
                &query,
                &self.catalog,
                table,
                statement::Disposition::ArrowLinks,
            )
            .await?;
            Ok::<_, SourceError>((query, ran))
        };
        match (run(version).await, pin) {
            (Ok((query, ran)), pin) => Ok((pin, query, ran)),
            (Err(e), Pin::Version(version)) => {
                let reason = governance::refusal(&e, governance::Pinning::TimeTravel).ok_or(e)?;
                tracing::warn!(table, version, %reason, "reading the table unpinned");
                let (query, ran) = run(None).await?;
                Ok((Pin::Unpinned(reason), query, ran))
            }
            (Err(e), Pin::Unpinned(_)) => Err(e),
        }
    }
}

#[async_trait]
impl Source for DatabricksSource {
    async fn describe(&self, table: &TableRequest) -> Result<TableSchema, SourceError> {
        let found = catalog::get_table(&self.client, table).await?;
        found.select(table.columns.as_deref())
    }

    async fn read(&self, schema: &TableSchema) -> Result<TableStream, SourceError> {
        let table = format!("{}.{}.{}", schema.catalog, schema.schema, schema.table);
        if schema.columns.is_empty() {
            return Err(SourceError::NoColumns { table });
        }
        let target = arrow_schema(schema);
        let pin = self.pin(schema, &table).await?;
        let (pin, query, (mut guard, finished)) = self.select(schema, &table, pin).await?;
        if let Pin::Version(version) = pin {
            tracing::info!(
                table,
                version,
                "reading the table at its latest Delta version"
            );
        }
        let batches = match (finished.manifest.truncated, &pin) {
            // Larger than one result: read again in parts over the same version. The truncated
            // result is left unread.
            (Some(true), Pin::Version(version)) => {
                let version = *version;
                guard.disarm();
                let kept = finished.manifest.total_row_count.unwrap_or(0);
                let files =
                    split::data_files(&self.client, &self.catalog, schema, version, &table).await?;
                split::stream(
                    split::Split {
                        client: self.client.clone(),
                        catalog: self.catalog.clone(),
                        schema: schema.clone(),
                        version,
                        target: target.clone(),
                        table,
                    },
                    split::plan(files, (kept / 2).max(1)),
                )
            }
            // Parts must come from one snapshot, which Databricks will not pin here.
            (Some(true), Pin::Unpinned(reason)) => {
                return Err(SourceError::TooLargeUnpinned {
                    table,
                    reason: reason.clone(),
                });
            }
            _ => {
                let rerun = chunks::Rerun {
                    query,
                    catalog: self.catalog.clone(),
                    pinned: matches!(pin, Pin::Version(_)),
                };
                chunks::stream(
                    self.client.clone(),
                    guard,
                    finished,
                    target.clone(),
                    table,
                    rerun,
                )?
            }
        };
        let (snapshot, unpinned) = match pin {
            Pin::Version(v) => (Some(format!("delta version {v}")), None),
            Pin::Unpinned(reason) => (None, Some(reason)),
        };
        Ok(TableStream {
            schema: target,
            batches,
            snapshot,
            unpinned,
        })
    }

    async fn check(&self) -> Result<(), SourceError> {
        let id = &self.client.warehouse_id;
        let url = self.client.url(&format!(
            "/api/2.0/sql/warehouses/{}",
            catalog::encode_segment(id)
        ));
        let operation = format!("looking up SQL warehouse `{id}`");
        let response = self
            .client
            .send(&operation, Call::Idempotent, |http| http.get(&url))
            .await?;
        match response.status() {
            s if s.is_success() => {
                let warehouse: wire::Warehouse = json_body(response, &operation).await?;
                match warehouse.state.as_deref() {
                    Some(state @ ("DELETED" | "DELETING")) => Err(SourceError::UnknownWarehouse {
                        warehouse: id.clone(),
                        message: format!("the warehouse is {}", state.to_ascii_lowercase()),
                    }),
                    _ => Ok(()),
                }
            }
            StatusCode::NOT_FOUND => Err(SourceError::UnknownWarehouse {
                warehouse: id.clone(),
                message: ApiFailure::read(response).await.message,
            }),
            StatusCode::FORBIDDEN => Err(SourceError::PermissionDenied {
                object: format!("SQL warehouse `{id}`"),
                message: ApiFailure::read(response).await.message,
            }),
            _ => Err(ApiFailure::read(response).await.rejected(&operation)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warehouse_ids_from_http_paths() {
        let ok = [
            (
                "/sql/1.0/warehouses/bd1395d4652aa599",
                "bd1395d4652aa599",
                None,
            ),
            ("/sql/1.0/endpoints/abc123", "abc123", None),
            ("/sql/1.0/warehouses/abc/", "abc", None),
            (
                "/sql/1.0/warehouses/abc?o=1234567890",
                "abc",
                Some("1234567890"),
            ),
            ("/sql/1.0/warehouses/abc&x=1", "abc", None),
        ];
        for (path, id, org) in ok {
            assert_eq!(
                parse_http_path(path).unwrap(),
                (id.to_owned(), org.map(str::to_owned)),
                "{path}"
            );
        }
        for path in [
            "",
            "/sql/1.0/",
            "/sql/1.0/warehouses/",
            "/sql/1.0/warehouses/a/../b",
            "/sql/1.0/warehouses/a b",
        ] {
            assert!(
                matches!(
                    parse_http_path(path),
                    Err(SourceError::InvalidConfig { .. })
                ),
                "{path}"
            );
        }
    }
}
