//! The PostgreSQL source: catalog from `pg_catalog`, data through binary `COPY`, every read of
//! a package inside one exported snapshot (see the crate documentation).

mod copy;
pub(crate) mod destination;
mod types;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use publish_source::columns::{CatalogTable, same_name};
use publish_source::{Source, SourceError, TableRequest, TableStream};
use publish_types::{HostAllowList, ObjectName, TableSchema};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, CopyOutStream, NoTls};
use tracing::debug;

use crate::error::{pg_error, protocol};
use crate::shared::{Declared, catalog_table, described_columns, pick, request_of};
use crate::tls::RustlsConnect;
use crate::{SqlConfig, SqlOptions};
use copy::CopyDecoder;
use types::{PgColumn, map};

/// Session settings of every connection: text output of the types read as text in ISO
/// spellings, whatever the server's defaults.
const SESSION: &str = "SET IntervalStyle = iso_8601; SET DateStyle = ISO; \
                       SET TimeZone = 'UTC'; SET extra_float_digits = 3";

/// A PostgreSQL database, read for one package from one snapshot.
///
/// Holds one connection with the package's `REPEATABLE READ, READ ONLY` transaction open
/// (catalog queries run there); each [`read`](Source::read) opens a connection of its own that
/// imports the transaction's snapshot, so reads may run at the same time and dropping one
/// (which closes its connection, ending the `COPY` on the server) leaves the others and the
/// snapshot intact. Dropping the source ends the transaction.
pub struct PostgresSource {
    main: Connection,
    connector: Connector,
    database: ObjectName,
    /// `pg_export_snapshot()`'s id, imported by every read.
    snapshot_id: String,
    /// The snapshot's identity for the package record.
    snapshot: String,
    options: SqlOptions,
}

/// How to open another connection like the first.
#[derive(Clone)]
struct Connector {
    config: tokio_postgres::Config,
    tls: Option<RustlsConnect>,
    host: String,
}

/// A client and its connection task; dropping it closes the connection at once.
struct Connection {
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a connection with `config` (over `tls` where given; see [`crate::tls::pg_tls`]) and
/// spawns the task that drives it, which ends when the client is dropped or the connection
/// fails.
pub(crate) async fn open(
    config: &tokio_postgres::Config,
    tls: Option<&RustlsConnect>,
) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
    fn drive<F>(connection: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "database connection ended");
            }
        })
    }
    Ok(match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls.clone()).await?;
            (client, drive(connection))
        }
        None => {
            let (client, connection) = config.connect(NoTls).await?;
            (client, drive(connection))
        }
    })
}

impl Connector {
    async fn connect(&self, timeout: Duration) -> Result<Connection, SourceError> {
        let operation = format!("connecting to {}", self.host);
        let connect = async {
            let (client, task) = open(&self.config, self.tls.as_ref()).await?;
            Ok(Connection { client, task })
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(pg_error(&operation, &self.host, e)),
            Err(_) => Err(SourceError::Timeout {
                operation,
                after: timeout,
            }),
        }
    }
}

impl PostgresSource {
    /// Connects, opens the package's snapshot and exports it. The host is checked against
    /// `allowed` (again: the workflow checked it before reading the secrets).
    pub async fn connect(config: SqlConfig, allowed: &HostAllowList) -> Result<Self, SourceError> {
        if !allowed.allows(&config.host) {
            return Err(SourceError::HostNotAllowed {
                host: config.host.origin(),
                allowed: allowed.describe(),
            });
        }
        let host = config.host.origin();
        let (tls, ssl_mode) = crate::tls::pg_tls(&config.options)
            .map_err(|message| SourceError::InvalidConfig { message })?;
        let mut pg = tokio_postgres::Config::new();
        pg.host(config.host.host())
            .port(config.host.port())
            .dbname(config.database.as_str())
            .user(config.user.expose_secret())
            .password(config.password.expose_secret())
            .application_name(&config.application_name)
            .connect_timeout(config.options.connect_timeout)
            .ssl_mode(ssl_mode);
        let connector = Connector {
            config: pg,
            tls,
            host,
        };
        let main = connector.connect(config.options.connect_timeout).await?;
        let source_timeout = config.options.query_timeout;
        let begin = format!("{SESSION}; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        timed(
            source_timeout,
            "opening the snapshot",
            &connector.host,
            async { main.client.batch_execute(&begin).await },
        )
        .await?;
        let row = timed(
            source_timeout,
            "exporting the snapshot",
            &connector.host,
            async {
                main.client
                    .query_one(
                        "SELECT pg_catalog.pg_export_snapshot(), \
                     pg_catalog.txid_current_snapshot()::text, \
                     (CASE WHEN pg_catalog.pg_is_in_recovery() \
                      THEN pg_catalog.pg_last_wal_replay_lsn() \
                      ELSE pg_catalog.pg_current_wal_lsn() END)::text",
                        &[],
                    )
                    .await
            },
        )
        .await?;
        let snapshot_id: String = row.get(0);
        let xids: String = row.get(1);
        let lsn: Option<String> = row.get(2);
        let snapshot = match lsn {
            Some(lsn) => format!("postgresql snapshot {xids} at WAL {lsn}"),
            None => format!("postgresql snapshot {xids}"),
        };
        debug!(%snapshot, "package snapshot open");
        Ok(Self {
            main,
            connector,
            database: config.database,
            snapshot_id,
            snapshot,
            options: config.options,
        })
    }

    /// The identity of the package's snapshot, as recorded for every table.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    async fn query(
        &self,
        operation: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, SourceError> {
        timed(
            self.options.query_timeout,
            operation,
            &self.connector.host,
            async { self.main.client.query(sql, params).await },
        )
        .await
    }

    /// The schema's name as the catalog spells it: an exact match, else the one equal
    /// ignoring case.
    async fn find_schema(&self, request: &TableRequest) -> Result<String, SourceError> {
        let rows = self
            .query(
                "reading the schemas",
                "SELECT nspname::text FROM pg_catalog.pg_namespace \
                 WHERE lower(nspname::text) = lower($1::text)",
                &[&request.schema.as_str()],
            )
            .await?;
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        pick(&names, request.schema.as_str()).ok_or_else(|| SourceError::UnknownSchema {
            schema: format!("{}.{}", request.catalog, request.schema),
        })
    }

    /// The table's oid, name and comment.
    async fn find_table(
        &self,
        request: &TableRequest,
        schema: &str,
    ) -> Result<(u32, String, Option<String>), SourceError> {
        let rows = self
            .query(
                "reading the tables",
                "SELECT c.oid, c.relname::text, pg_catalog.obj_description(c.oid, 'pg_class') \
                 FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1::text AND lower(c.relname::text) = lower($2::text) \
                 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                &[&schema, &request.table.as_str()],
            )
            .await?;
        let names: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
        let name =
            pick(&names, request.table.as_str()).ok_or_else(|| SourceError::UnknownTable {
                table: request.full_name(),
            })?;
        let row = rows
            .iter()
            .find(|r| r.get::<_, String>(1) == name)
            .ok_or_else(|| protocol("a table vanished from the catalog"))?;
        Ok((row.get(0), name, row.get(2)))
    }

    async fn columns(&self, oid: u32) -> Result<Vec<PgColumn>, SourceError> {
        let rows = self
            .query(
                "reading the columns",
                "SELECT a.attname::text, a.attnotnull, t.typname::text, \
                   CASE WHEN d.typtype = 'd' THEN d.typtypmod ELSE a.atttypmod END, \
                   e.typname::text, pg_catalog.col_description(a.attrelid, a.attnum) \
                 FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_type d ON d.oid = a.atttypid \
                 JOIN pg_catalog.pg_type t \
                   ON t.oid = CASE WHEN d.typtype = 'd' THEN d.typbasetype ELSE d.oid END \
                 LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&oid],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PgColumn {
                name: r.get(0),
                not_null: r.get(1),
                type_name: r.get(2),
                typmod: r.get(3),
                element: r.get(4),
                comment: r.get(5),
            })
            .collect())
    }

    async fn primary_key(&self, oid: u32) -> Result<Vec<String>, SourceError> {
        let rows = self
            .query(
                "reading the primary key",
                "SELECT a.attname::text \
                 FROM pg_catalog.pg_index i \
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_catalog.pg_attribute a \
                   ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = $1 AND i.indisprimary \
                 ORDER BY k.ord",
                &[&oid],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The table as the catalog declares it, and its columns as PostgreSQL knows them.
    async fn catalog_table(
        &self,
        request: &TableRequest,
    ) -> Result<(CatalogTable, Vec<PgColumn>), SourceError> {
        if !same_name(request.catalog.as_str(), self.database.as_str()) {
            return Err(SourceError::UnknownCatalog {
                catalog: request.catalog.to_string(),
            });
        }
        let schema = self.find_schema(request).await?;
        let (oid, table, comment) = self.find_table(request, &schema).await?;
        let pg_columns = self.columns(oid).await?;
        let primary_key = self.primary_key(oid).await?;
        let declared = pg_columns.iter().map(|c| Declared {
            name: &c.name,
            uc: map(c).uc,
            not_null: c.not_null,
            comment: c.comment.as_deref(),
        });
        let catalog = catalog_table(
            &self.database,
            &schema,
            &table,
            comment,
            primary_key,
            declared,
        )?;
        Ok((catalog, pg_columns))
    }
}

/// Runs `query` within `after`, naming `operation` on `host` if it fails.
async fn timed<T>(
    after: Duration,
    operation: &str,
    host: &str,
    query: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, SourceError> {
    crate::shared::timed(after, operation, query, |e| pg_error(operation, host, e)).await
}

#[async_trait]
impl Source for PostgresSource {
    async fn describe(&self, table: &TableRequest) -> Result<TableSchema, SourceError> {
        let (catalog, _) = self.catalog_table(table).await?;
        catalog.select(table.columns.as_deref())
    }

    async fn read(&self, schema: &TableSchema) -> Result<TableStream, SourceError> {
        let request = request_of(schema);
        let (catalog, pg_columns) = self.catalog_table(&request).await?;
        let full_name = request.full_name();
        // Quoted as standard SQL does (`"` doubled), the names as the catalog spells them.
        let select: Vec<String> =
            described_columns(schema, &catalog, &pg_columns, |c| &c.name, map, |m| &m.uc)?
                .into_iter()
                .map(|(name, m)| match m.cast {
                    Some(cast) => format!("{}::{cast}", name.quoted_double()),
                    None => name.quoted_double(),
                })
                .collect();
        let sql = format!(
            "COPY (SELECT {} FROM {}.{}) TO STDOUT (FORMAT binary)",
            select.join(", "),
            catalog.schema.quoted_double(),
            catalog.table.quoted_double(),
        );
        let arrow_schema = publish_columns::arrow_schema(schema);
        let decoder = CopyDecoder::new(Arc::clone(&arrow_schema), self.options.batch_rows)
            .map_err(|e| protocol(format!("table `{full_name}`: {}", e.0)))?;

        let connection = self.connector.connect(self.options.connect_timeout).await?;
        let host = &self.connector.host;
        let import = format!(
            "{SESSION}; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET TRANSACTION SNAPSHOT '{}'",
            self.snapshot_id.replace('\'', "''")
        );
        timed(
            self.options.query_timeout,
            "importing the snapshot",
            host,
            async { connection.client.batch_execute(&import).await },
        )
        .await?;
        let operation = format!("reading `{full_name}`");
        let copy = timed(self.options.query_timeout, &operation, host, async {
            connection.client.copy_out(sql.as_str()).await
        })
        .await?;
        let names = schema.columns.iter().map(|c| c.name.to_string()).collect();
        let state = ReadState {
            copy: Box::pin(copy),
            decoder,
            ready: VecDeque::new(),
            connection,
            table: full_name,
            names,
            host: host.clone(),
            done: false,
        };
        Ok(TableStream {
            schema: arrow_schema,
            batches: Box::pin(futures::stream::unfold(state, ReadState::next)),
            snapshot: Some(self.snapshot.clone()),
            unpinned: None,
        })
    }

    async fn check(&self) -> Result<(), SourceError> {
        self.query("checking the connection", "SELECT 1", &[])
            .await
            .map(|_| ())
    }
}

/// A read under way: the `COPY` stream on its own connection, and the decoder.
struct ReadState {
    copy: Pin<Box<CopyOutStream>>,
    decoder: CopyDecoder,
    ready: VecDeque<arrow::array::RecordBatch>,
    /// Kept so that dropping the stream closes the connection (and ends the `COPY`).
    #[allow(dead_code, reason = "held for its Drop")]
    connection: Connection,
    table: String,
    names: Vec<String>,
    host: String,
    done: bool,
}

impl ReadState {
    async fn next(mut self) -> Option<(Result<arrow::array::RecordBatch, SourceError>, Self)> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some((Ok(batch), self));
            }
            if self.done {
                return None;
            }
            let failed = match self.copy.next().await {
                Some(Ok(data)) => match self.decoder.push(&data) {
                    Ok(batches) => {
                        self.ready.extend(batches);
                        continue;
                    }
                    Err((column, e)) => self.decode_error(Some(column), e),
                },
                Some(Err(e)) => pg_error(&format!("reading `{}`", self.table), &self.host, e),
                None => match self.decoder.finish() {
                    Ok(last) => {
                        self.done = true;
                        self.ready.extend(last);
                        continue;
                    }
                    Err(e) => self.decode_error(None, e),
                },
            };
            self.done = true;
            self.ready.clear();
            return Some((Err(failed), self));
        }
    }

    fn decode_error(&self, column: Option<usize>, e: copy::DecodeError) -> SourceError {
        match column.and_then(|i| self.names.get(i)) {
            Some(name) => protocol(format!("column `{name}` of `{}` holds {}", self.table, e.0)),
            None => protocol(format!("reading `{}`: {}", self.table, e.0)),
        }
    }
}
