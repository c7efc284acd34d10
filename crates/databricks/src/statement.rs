//! Running one query through the SQL Statement Execution API (docs/DATABRICKS-WIRE.md §6–§7):
//! submit, poll until it ends, and cancel it if the reader goes away first.

use std::sync::Arc;
use std::time::Instant;

use publish_types::{ObjectName, TableSchema};
use reqwest::StatusCode;
use serde_json::json;

use crate::catalog::encode_segment;
use crate::client::{ApiFailure, Call, Client, json_body};
use crate::wire::{Manifest, ResultData, StatementResponse, StatementStatus};
use publish_source::SourceError;

/// The table's name as SQL: every part back-quoted, embedded back-quotes doubled.
pub(crate) fn table_sql(schema: &TableSchema) -> String {
    format!(
        "{}.{}.{}",
        schema.catalog.quoted_backtick(),
        schema.schema.quoted_backtick(),
        schema.table.quoted_backtick()
    )
}

/// `DESCRIBE HISTORY <table> LIMIT 1`: the table's latest Delta version (docs/DATABRICKS-WIRE.md §6.3).
pub(crate) fn history_sql(schema: &TableSchema) -> String {
    format!("DESCRIBE HISTORY {} LIMIT 1", table_sql(schema))
}

/// `SELECT <columns> FROM <catalog>.<schema>.<table> [VERSION AS OF <v>]`, every identifier
/// back-quoted with embedded back-quotes doubled: names are never spliced into SQL.
pub(crate) fn select_sql(schema: &TableSchema, version: Option<u64>) -> String {
    let columns: Vec<String> = schema
        .columns
        .iter()
        .map(|c| c.name.quoted_backtick())
        .collect();
    let pinned = version.map_or_else(String::new, |v| format!(" VERSION AS OF {v}"));
    format!(
        "SELECT {} FROM {}{pinned}",
        columns.join(", "),
        table_sql(schema)
    )
}

/// `SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM <table> VERSION AS OF <v>
/// GROUP BY _metadata.file_path`: the snapshot's data files and the rows each holds, for
/// splitting a read (docs/DATABRICKS-WIRE.md §6.4).
pub(crate) fn files_sql(schema: &TableSchema, version: u64) -> String {
    format!(
        "SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM {} VERSION AS OF \
         {version} GROUP BY _metadata.file_path",
        table_sql(schema)
    )
}

/// One part of a split read: [`select_sql`] at `version` with `WHERE _metadata.file_path IN
/// (:f0, :f1, …)`, the file paths bound as `STRING` parameters, never spliced.
pub(crate) fn part_query(schema: &TableSchema, version: u64, files: &[String]) -> Query {
    let markers: Vec<String> = (0..files.len()).map(|i| format!(":f{i}")).collect();
    Query {
        sql: format!(
            "{} WHERE _metadata.file_path IN ({})",
            select_sql(schema, Some(version)),
            markers.join(", ")
        ),
        parameters: files
            .iter()
            .enumerate()
            .map(|(i, file)| (format!("f{i}"), file.clone()))
            .collect(),
    }
}

/// A statement's text and its named `STRING` parameters (`:name` in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) sql: String,
    pub(crate) parameters: Vec<(String, String)>,
}

impl Query {
    /// A statement without parameters.
    pub(crate) fn plain(sql: String) -> Self {
        Query {
            sql,
            parameters: Vec::new(),
        }
    }
}

/// How a statement's result comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// `EXTERNAL_LINKS` to `ARROW_STREAM` chunks (LZ4 per the options): table data.
    ArrowLinks,
    /// `INLINE` `JSON_ARRAY` rows in the response: small metadata answers.
    InlineJson,
}

/// Cancels the statement in the background when dropped while armed: the reader went away,
/// failed or timed out before the result was fully read.
pub(crate) struct CancelOnDrop {
    client: Arc<Client>,
    statement_id: String,
    armed: bool,
    runtime: tokio::runtime::Handle,
}

impl CancelOnDrop {
    pub(crate) fn new(client: Arc<Client>, statement_id: String) -> Self {
        CancelOnDrop {
            client,
            statement_id,
            armed: true,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The statement needs no cancelling (it ended, or its result was read to the end).
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }

    pub(crate) fn statement_id(&self) -> &str {
        &self.statement_id
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let client = self.client.clone();
        let id = std::mem::take(&mut self.statement_id);
        self.runtime.spawn(async move {
            cancel(&client, &id).await;
        });
    }
}

/// `POST /api/2.0/sql/statements/{id}/cancel`, best effort: failures are only logged.
async fn cancel(client: &Client, statement_id: &str) {
    let url = client.url(&format!(
        "/api/2.0/sql/statements/{}/cancel",
        encode_segment(statement_id)
    ));
    let result = client
        .send("cancelling the query", Call::Idempotent, |http| {
            http.post(&url).json(&json!({}))
        })
        .await;
    match result {
        Ok(r) if r.status().is_success() => {
            tracing::info!(statement_id, "query cancelled");
        }
        Ok(r) => {
            let status = r.status();
            tracing::warn!(statement_id, %status, "cancelling the query was refused");
        }
        Err(e) => tracing::warn!(statement_id, error = %e, "cancelling the query failed"),
    }
}

/// What a finished statement handed back: its manifest and the first chunk's link(s).
pub(crate) struct Finished {
    pub(crate) manifest: Manifest,
    pub(crate) first: Option<ResultData>,
}

/// A statement that ended successfully: its cancel guard and what it answered.
pub(crate) type Ran = (CancelOnDrop, Finished);

/// Submits `sql`, waits (polling with backoff) until the statement ends, and returns the
/// armed cancel guard with the result's description. On any failure the guard is dropped,
/// which cancels a statement that may still run.
pub(crate) async fn run(
    client: &Arc<Client>,
    query: &Query,
    catalog: &ObjectName,
    table: &str,
    disposition: Disposition,
) -> Result<Ran, SourceError> {
    let started = Instant::now();
    let deadline = started + client.options.overall_timeout;
    let submitted = submit(client, query, catalog, table, disposition).await?;
    let mut guard = CancelOnDrop::new(client.clone(), submitted.statement_id.clone());
    tracing::info!(statement_id = %submitted.statement_id, table, "query submitted");
    let status = wait_until_ended(client, &mut guard, submitted, deadline, table).await?;
    let manifest = status.manifest.ok_or_else(|| {
        SourceError::protocol(format!(
            "statement {} succeeded without a manifest",
            guard.statement_id()
        ))
    })?;
    tracing::info!(
        statement_id = guard.statement_id(),
        table,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        total_rows = manifest.total_row_count,
        total_chunks = manifest.total_chunk_count,
        "query finished"
    );
    Ok((
        guard,
        Finished {
            manifest,
            first: status.result,
        },
    ))
}

/// `POST /api/2.0/sql/statements`: the statement's first status, which may already be final.
async fn submit(
    client: &Client,
    query: &Query,
    catalog: &ObjectName,
    table: &str,
    disposition: Disposition,
) -> Result<StatementResponse, SourceError> {
    let url = client.url("/api/2.0/sql/statements");
    let body = submit_body(client, query, catalog, disposition);
    let operation = format!("submitting the query for table `{table}`");
    let response = client
        .send(&operation, Call::Once, |http| http.post(&url).json(&body))
        .await?;
    if !response.status().is_success() {
        let failure = ApiFailure::read(response).await;
        return Err(submit_error(client, failure, &operation));
    }
    json_body(response, &operation).await
}

/// The execute request: external links to Arrow streams with LZ4 per the options (or inline
/// JSON rows), the parameters, and query tags.
fn submit_body(
    client: &Client,
    query: &Query,
    catalog: &ObjectName,
    disposition: Disposition,
) -> serde_json::Value {
    let (disposition_name, format) = match disposition {
        Disposition::ArrowLinks => ("EXTERNAL_LINKS", "ARROW_STREAM"),
        Disposition::InlineJson => ("INLINE", "JSON_ARRAY"),
    };
    let mut body = json!({
        "statement": query.sql,
        "warehouse_id": client.warehouse_id,
        "catalog": catalog.as_str(),
        "disposition": disposition_name,
        "format": format,
        "wait_timeout": wait_timeout(client.options.submit_wait),
        "on_wait_timeout": "CONTINUE",
    });
    if !query.parameters.is_empty() {
        body["parameters"] = query
            .parameters
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value, "type": "STRING"}))
            .collect();
    }
    if client.options.lz4_compression && disposition == Disposition::ArrowLinks {
        body["result_compression"] = json!("LZ4_FRAME");
    }
    if !client.options.query_tags.is_empty() {
        body["query_tags"] = client
            .options
            .query_tags
            .iter()
            .take(20)
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
    }
    body
}

/// Polls, with a doubling interval up to `poll_max`, until the statement ends, and returns
/// its final status if it succeeded. Disarms `guard` when the statement ended without a
/// result, as there is nothing left to cancel.
async fn wait_until_ended(
    client: &Client,
    guard: &mut CancelOnDrop,
    mut status: StatementResponse,
    deadline: Instant,
    table: &str,
) -> Result<StatementResponse, SourceError> {
    let mut poll = client.options.poll_initial;
    loop {
        match status.status.state.as_str() {
            "PENDING" | "RUNNING" => {
                let now = Instant::now();
                if now >= deadline {
                    // The guard cancels the statement as it is dropped with this error.
                    return Err(SourceError::Timeout {
                        operation: format!("the query for table `{table}`"),
                        after: client.options.overall_timeout,
                    });
                }
                tokio::time::sleep(poll.min(deadline - now)).await;
                poll = (poll * 2).min(client.options.poll_max);
                status = get_status(client, guard.statement_id()).await?;
            }
            "SUCCEEDED" => return Ok(status),
            // Direct results (docs/DATABRICKS-WIRE.md §7): CLOSED together with its result is a success.
            "CLOSED" if status.manifest.is_some() && status.result.is_some() => return Ok(status),
            "FAILED" => {
                guard.disarm();
                return Err(statement_failed(status.status));
            }
            state @ ("CANCELED" | "CLOSED") => {
                guard.disarm();
                return Err(ended_unread(state, table));
            }
            other => {
                return Err(SourceError::protocol(format!(
                    "statement {} is in the undocumented state {other:?}",
                    guard.statement_id()
                )));
            }
        }
    }
}

/// A `FAILED` statement's error, as the warehouse described it.
fn statement_failed(status: StatementStatus) -> SourceError {
    let error = status.error.unwrap_or_default();
    SourceError::Statement {
        error_code: error.error_code.unwrap_or_else(|| "UNKNOWN".into()),
        message: error
            .message
            .unwrap_or_else(|| "the query failed without a message".into()),
        sql_state: status.sql_state.or(error.sql_state),
    }
}

/// A statement that was cancelled or closed (`state`) before its result could be read.
fn ended_unread(state: &str, table: &str) -> SourceError {
    SourceError::Statement {
        error_code: state.to_owned(),
        message: format!(
            "the query for table `{table}` was {} before its result was read",
            state.to_ascii_lowercase()
        ),
        sql_state: None,
    }
}

/// `wait_timeout` as the API accepts it: `0s` or `5s`..=`50s`.
fn wait_timeout(wait: std::time::Duration) -> String {
    match wait.as_secs() {
        0 => "0s".into(),
        s => format!("{}s", s.clamp(5, 50)),
    }
}

fn submit_error(client: &Client, failure: ApiFailure, operation: &str) -> SourceError {
    match failure.status {
        StatusCode::NOT_FOUND => SourceError::UnknownWarehouse {
            warehouse: client.warehouse_id.clone(),
            message: failure.message,
        },
        StatusCode::FORBIDDEN => SourceError::PermissionDenied {
            object: format!("SQL warehouse `{}`", client.warehouse_id),
            message: failure.message,
        },
        _ => failure.rejected(operation),
    }
}

/// `GET /api/2.0/sql/statements/{id}`.
async fn get_status(client: &Client, statement_id: &str) -> Result<StatementResponse, SourceError> {
    let url = client.url(&format!(
        "/api/2.0/sql/statements/{}",
        encode_segment(statement_id)
    ));
    let operation = "polling the query status";
    let response = client
        .send(operation, Call::Idempotent, |http| http.get(&url))
        .await?;
    if !response.status().is_success() {
        return Err(ApiFailure::read(response).await.rejected(operation));
    }
    json_body(response, operation).await
}

/// Every row of a finished `INLINE` + `JSON_ARRAY` result: the first chunk's, then each next
/// chunk's by `next_chunk_index`. Disarms `guard` once all are read.
pub(crate) async fn inline_rows(
    client: &Client,
    guard: &mut CancelOnDrop,
    first: Option<ResultData>,
) -> Result<Vec<Vec<Option<String>>>, SourceError> {
    let mut rows = Vec::new();
    let mut data = first.unwrap_or_default();
    loop {
        rows.extend(data.data_array.take().unwrap_or_default());
        match data.next_chunk_index {
            Some(next) => data = get_chunk(client, guard.statement_id(), next).await?,
            None => break,
        }
    }
    guard.disarm();
    Ok(rows)
}

/// `GET /api/2.0/sql/statements/{id}/result/chunks/{n}`: a fresh link for chunk `n`.
pub(crate) async fn get_chunk(
    client: &Client,
    statement_id: &str,
    chunk: u64,
) -> Result<ResultData, SourceError> {
    let url = client.url(&format!(
        "/api/2.0/sql/statements/{}/result/chunks/{chunk}",
        encode_segment(statement_id)
    ));
    let operation = format!("fetching the link of chunk {chunk}");
    let response = client
        .send(&operation, Call::Idempotent, |http| http.get(&url))
        .await?;
    if !response.status().is_success() {
        return Err(ApiFailure::read(response).await.rejected(&operation));
    }
    json_body(response, &operation).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use publish_types::{ColumnSchema, Identifier, UcType};

    #[test]
    fn select_quotes_every_identifier() {
        let col = |n: &str| ColumnSchema {
            name: Identifier::parse(n).unwrap(),
            data_type: UcType::Int,
            nullable: true,
            comment: None,
        };
        let schema = TableSchema {
            catalog: ObjectName::parse("tre").unwrap(),
            schema: ObjectName::parse("co`h").unwrap(),
            table: ObjectName::parse("we\"ird").unwrap(),
            columns: vec![col("a`b"), col("x; DROP TABLE y --")],
            primary_key: vec![],
            comment: None,
        };
        assert_eq!(
            select_sql(&schema, None),
            "SELECT `a``b`, `x; DROP TABLE y --` FROM `tre`.`co``h`.`we\"ird`"
        );
        assert_eq!(
            select_sql(&schema, Some(7)),
            "SELECT `a``b`, `x; DROP TABLE y --` FROM `tre`.`co``h`.`we\"ird` VERSION AS OF 7"
        );
        assert_eq!(
            history_sql(&schema),
            "DESCRIBE HISTORY `tre`.`co``h`.`we\"ird` LIMIT 1"
        );
        assert_eq!(
            files_sql(&schema, 3),
            "SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM \
             `tre`.`co``h`.`we\"ird` VERSION AS OF 3 GROUP BY _metadata.file_path"
        );
        let hostile = "abfss://c@a.dfs.core.windows.net/t/part-0'); DROP TABLE x; --.parquet";
        let part = part_query(&schema, 3, &["a.parquet".into(), hostile.into()]);
        assert_eq!(
            part.sql,
            "SELECT `a``b`, `x; DROP TABLE y --` FROM `tre`.`co``h`.`we\"ird` VERSION AS OF 3 \
             WHERE _metadata.file_path IN (:f0, :f1)"
        );
        assert_eq!(
            part.parameters,
            vec![
                ("f0".to_owned(), "a.parquet".to_owned()),
                ("f1".to_owned(), hostile.to_owned())
            ]
        );
    }
}
