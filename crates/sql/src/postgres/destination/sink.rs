//! The [`Sink`] of a load: each table created in the load's private schema and filled by one
//! streamed binary `COPY`, its primary key added once the rows are in.

use std::pin::Pin;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use publish_columns::PostgresPlan;
use publish_sink::{Sink, SinkError, SinkProtocol, TableSink, TableStats, WrittenFile};
use publish_types::TableSchema;
use tokio_postgres::CopyInSink;

use super::encode::{self, FLUSH_BYTES, Rows};
use super::locked::PgLocked;
use super::{check_identifier, literal, quote};

/// The tables of one load. Borrows the locked project, so it cannot be committed meanwhile.
pub(super) struct PgSink<'s> {
    locked: &'s mut PgLocked,
    protocol: SinkProtocol,
    finished: bool,
}

impl<'s> PgSink<'s> {
    pub(super) fn new(locked: &'s mut PgLocked) -> Self {
        Self {
            locked,
            protocol: SinkProtocol::default(),
            finished: false,
        }
    }

    /// Creates `table` in the load schema and starts its `COPY`.
    async fn prepare(
        &mut self,
        table: &TableSchema,
        arrow: SchemaRef,
    ) -> Result<Prepared, SinkError> {
        let pending = self.locked.pending.as_ref().ok_or(SinkError::Failed)?;
        let declared = pending.dataset.tables.iter().any(|t| {
            t.schema
                .as_str()
                .eq_ignore_ascii_case(table.schema.as_str())
                && t.table.as_str().eq_ignore_ascii_case(table.table.as_str())
        });
        if !declared {
            return Err(SinkError::SchemaMismatch {
                table: table.table.to_string(),
                detail: format!(
                    "`{}.{}` is not among the tables of dataset {:?}, which were checked \
                     against the other datasets' claims",
                    table.schema, table.table, pending.dataset.id
                ),
            });
        }
        check_identifier("table", table.table.as_str())?;
        for column in &table.columns {
            check_identifier("column", column.name.as_str())?;
        }
        let plan = PostgresPlan::new(table, arrow).map_err(|e| SinkError::plan(table, e))?;
        let name = format!(
            "{}.{}",
            quote(&pending.load_schema),
            quote(table.table.as_str())
        );
        let columns: Vec<String> = table
            .columns
            .iter()
            .zip(plan.types())
            .map(|(c, t)| {
                format!(
                    "{} {}{}",
                    quote(c.name.as_str()),
                    t.sql(),
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect();
        // No autovacuum while the table is private: one started on a loaded table would make the
        // commit's `SET SCHEMA` wait for it to be cancelled (a second per table, as measured by
        // the benchmark); the commit turns it back on.
        let mut ddl = format!(
            "CREATE TABLE {name} ({}) WITH (autovacuum_enabled = false);",
            columns.join(", ")
        );
        if let Some(comment) = &table.comment {
            ddl.push_str(&format!("COMMENT ON TABLE {name} IS {};", literal(comment)));
        }
        for c in &table.columns {
            if let Some(comment) = &c.comment {
                ddl.push_str(&format!(
                    "COMMENT ON COLUMN {name}.{} IS {};",
                    quote(c.name.as_str()),
                    literal(comment)
                ));
            }
        }
        let names: Vec<String> = table
            .columns
            .iter()
            .map(|c| quote(c.name.as_str()))
            .collect();
        let copy = format!(
            "COPY {name} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        );
        let shared = &self.locked.shared;
        let operation = format!("loading table `{}`", table.table);
        let client = self.locked.client.lock().await;
        shared.timed(&operation, client.batch_execute(&ddl)).await?;
        let copy: CopyInSink<Bytes> = shared
            .timed(&operation, client.copy_in(copy.as_str()))
            .await?;
        let mut buf = BytesMut::with_capacity(FLUSH_BYTES + (64 << 10));
        encode::header(&mut buf);
        Ok(Prepared {
            name,
            schema: table.clone(),
            table: table.table.to_string(),
            columns: table.columns.iter().map(|c| c.name.to_string()).collect(),
            primary_key: table
                .primary_key
                .iter()
                .map(|k| quote(k.as_str()))
                .collect(),
            plan,
            copy: Box::pin(copy),
            buf,
            operation,
        })
    }
}

/// A table created and its `COPY` started.
struct Prepared {
    /// `"load schema"."table"`.
    name: String,
    schema: TableSchema,
    table: String,
    columns: Vec<String>,
    /// Quoted.
    primary_key: Vec<String>,
    plan: PostgresPlan,
    copy: Pin<Box<CopyInSink<Bytes>>>,
    buf: BytesMut,
    operation: String,
}

#[async_trait]
impl Sink for PgSink<'_> {
    async fn begin_table<'t>(
        &'t mut self,
        table: &TableSchema,
        arrow: SchemaRef,
    ) -> Result<Box<dyn TableSink + 't>, SinkError> {
        self.protocol.begin_table(table)?;
        let prepared = self.prepare(table, arrow).await?;
        Ok(Box::new(PgTableSink {
            sink: self,
            t: prepared,
            stats: TableStats::default(),
            failed: false,
        }))
    }

    async fn finish(mut self: Box<Self>) -> Result<Vec<WrittenFile>, SinkError> {
        self.protocol.finish()?;
        let pending = self.locked.pending.as_mut().ok_or(SinkError::Failed)?;
        pending.finished = true;
        self.finished = true;
        // A database: no files.
        Ok(Vec::new())
    }
}

impl Drop for PgSink<'_> {
    /// A load not finished is discarded at once (its schema dropped in the background).
    fn drop(&mut self) {
        if !self.finished {
            self.locked.discard();
        }
    }
}

/// One table being loaded. Until it finishes the sink counts as failed ([`SinkProtocol`]), so
/// a table abandoned, dropped or failed fails the load; dropping the `COPY` makes the
/// connection abort it (`CopyFail`).
struct PgTableSink<'t, 's> {
    sink: &'t mut PgSink<'s>,
    t: Prepared,
    stats: TableStats,
    /// A write failed: the `COPY` is broken, and so is the table.
    failed: bool,
}

impl PgTableSink<'_, '_> {
    /// Sends what the buffer holds to the connection (waiting while it is busy: the bound).
    async fn send(&mut self) -> Result<(), SinkError> {
        let chunk = self.t.buf.split().freeze();
        let shared = &self.sink.locked.shared;
        self.t
            .copy
            .send(chunk)
            .await
            .map_err(|e| shared.error(&self.t.operation, &e))
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        let schema = &self.t.schema;
        self.t
            .plan
            .check(&batch)
            .map_err(|e| SinkError::plan(schema, e))?;
        let out = self
            .t
            .plan
            .apply(&batch)
            .map_err(|e| SinkError::plan(schema, e))?;
        let mut rows = Rows::new(self.t.plan.types(), &out).map_err(|e| self.encode_error(e))?;
        loop {
            let done = rows
                .encode(&mut self.t.buf, FLUSH_BYTES)
                .map_err(|e| self.encode_error(e))?;
            if self.t.buf.len() >= FLUSH_BYTES {
                self.send().await?;
            }
            if done {
                break;
            }
        }
        self.stats.add(&batch);
        Ok(())
    }

    async fn complete(&mut self) -> Result<TableStats, SinkError> {
        encode::trailer(&mut self.t.buf);
        self.send().await?;
        let shared = &self.sink.locked.shared;
        let rows = self
            .t
            .copy
            .as_mut()
            .finish()
            .await
            .map_err(|e| shared.error(&self.t.operation, &e))?;
        if rows != self.stats.rows {
            return Err(SinkError::Internal {
                message: format!(
                    "PostgreSQL loaded {rows} rows into `{}` where {} were sent",
                    self.t.table, self.stats.rows
                ),
            });
        }
        if !self.t.primary_key.is_empty() {
            // After the rows: one index build instead of one insertion per row.
            let sql = format!(
                "ALTER TABLE {} ADD PRIMARY KEY ({})",
                self.t.name,
                self.t.primary_key.join(", ")
            );
            let client = self.sink.locked.client.lock().await;
            client.batch_execute(&sql).await.map_err(|e| {
                shared.error(&format!("adding the primary key of `{}`", self.t.table), &e)
            })?;
        }
        let pending = self.sink.locked.pending.as_mut().ok_or(SinkError::Failed)?;
        pending.tables.push((self.t.table.clone(), rows));
        Ok(self.stats)
    }

    fn encode_error(&self, e: encode::EncodeError) -> SinkError {
        SinkError::InvalidValue {
            table: self.t.table.clone(),
            column: self.t.columns.get(e.column).cloned().unwrap_or_default(),
            detail: e.detail,
        }
    }
}

#[async_trait]
impl TableSink for PgTableSink<'_, '_> {
    async fn write_batch(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        if self.failed {
            return Err(SinkError::Failed);
        }
        let result = self.write(batch).await;
        self.failed = result.is_err();
        result
    }

    async fn finish(mut self: Box<Self>) -> Result<TableStats, SinkError> {
        if self.failed {
            return Err(SinkError::Failed);
        }
        let stats = self.complete().await?;
        self.sink.protocol.table_finished();
        Ok(stats)
    }
}
