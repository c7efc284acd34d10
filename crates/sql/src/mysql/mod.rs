//! The MySQL / MariaDB source: catalog from `information_schema`, data through a prepared
//! `SELECT` (the binary protocol, streamed row by row into Arrow builders), every read of a
//! package inside one `START TRANSACTION WITH CONSISTENT SNAPSHOT`.
//!
//! MySQL cannot hand a snapshot to another connection, so all reads of a package share the
//! one connection that holds it, one at a time: a second read waits until the first stream
//! has ended or been dropped. A stream dropped midway has its statement stopped with
//! `KILL QUERY` from a second connection (which ends the statement, not the transaction), so
//! the next read neither waits for the rest of a large table nor loses the snapshot.

mod rows;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{BinaryProtocol, Conn, OptsBuilder, QueryResult, Row, SslOpts, Value};
use publish_source::columns::{CatalogTable, same_name};
use publish_source::{Source, SourceError, TableRequest, TableStream};
use publish_types::{HostAllowList, ObjectName, TableSchema};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc};
use tracing::debug;

use crate::error::{my_error, protocol};
use crate::shared::{Declared, catalog_table, described_columns, pick, request_of};
use crate::{SqlConfig, SqlOptions, SqlTls};
use rows::Batcher;
use types::{MyColumn, map};

/// A MySQL or MariaDB database, read for one package from one consistent snapshot.
pub struct MysqlSource {
    conn: Arc<Mutex<Conn>>,
    database: ObjectName,
    snapshot: String,
    host: String,
    options: SqlOptions,
}

impl MysqlSource {
    /// Connects, opens the package's consistent snapshot and names it. The host is checked
    /// against `allowed` (again: the workflow checked it before reading the secrets).
    pub async fn connect(config: SqlConfig, allowed: &HostAllowList) -> Result<Self, SourceError> {
        if !allowed.allows(&config.host) {
            return Err(SourceError::HostNotAllowed {
                host: config.host.origin(),
                allowed: allowed.describe(),
            });
        }
        let host = config.host.origin();
        let ssl = match config.options.tls {
            SqlTls::VerifyFull => {
                let mut ssl = SslOpts::default();
                if let Some(ca) = &config.options.ca_file {
                    if !ca.is_file() {
                        return Err(SourceError::InvalidConfig {
                            message: format!("the CA file {} cannot be read", ca.display()),
                        });
                    }
                    ssl = ssl.with_root_certs(vec![ca.clone().into()]);
                }
                Some(ssl)
            }
            SqlTls::Prefer => {
                if let Some(ca) = &config.options.ca_file {
                    return Err(SourceError::InvalidConfig {
                        message: format!(
                            "the CA file {} is set, but TLS mode prefer checks no certificate: \
                             use verify-full to check the server against it, or remove it",
                            ca.display()
                        ),
                    });
                }
                Some(
                    SslOpts::default()
                        .with_danger_accept_invalid_certs(true)
                        .with_danger_skip_domain_validation(true),
                )
            }
            SqlTls::Disable => None,
        };
        let prefer = config.options.tls == SqlTls::Prefer;
        let opts = OptsBuilder::default()
            .ip_or_hostname(config.host.host())
            .tcp_port(config.host.port())
            .user(Some(config.user.expose_secret()))
            .pass(Some(config.password.expose_secret()))
            .db_name(Some(config.database.as_str()))
            // Never a Unix socket the server names: the allow-listed host is what is used.
            .prefer_socket(false)
            .ssl_opts(ssl)
            .connect_attributes({
                let mut a = std::collections::HashMap::new();
                a.insert("program_name".to_owned(), config.application_name.clone());
                a
            });
        let operation = format!("connecting to {host}");
        let connect = async {
            match Conn::new(opts.clone()).await {
                // `prefer`: plain TCP when the server offers no TLS, as libpq does.
                Err(mysql_async::Error::Driver(
                    mysql_async::DriverError::NoClientSslFlagFromServer,
                )) if prefer => Conn::new(opts.ssl_opts(None)).await,
                other => other,
            }
        };
        let mut conn = match tokio::time::timeout(config.options.connect_timeout, connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(my_error(&operation, &host, e)),
            Err(_) => {
                return Err(SourceError::Timeout {
                    operation,
                    after: config.options.connect_timeout,
                });
            }
        };
        let timeout = config.options.query_timeout;
        timed(timeout, "opening the snapshot", &host, async {
            conn.query_drop(
                "SET SESSION time_zone = '+00:00'; \
                 SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                 START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            )
            .await
        })
        .await?;
        let snapshot = snapshot_identity(&mut conn).await;
        debug!(%snapshot, "package snapshot open");
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            database: config.database,
            snapshot,
            host,
            options: config.options,
        })
    }

    /// The identity of the package's snapshot, as recorded for every table.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// Rows of a catalog query with string parameters, on the snapshot's connection.
    async fn query(
        &self,
        operation: &str,
        sql: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, SourceError> {
        let mut conn = self.conn.lock().await;
        timed(self.options.query_timeout, operation, &self.host, async {
            conn.exec::<Row, _, _>(sql, params).await
        })
        .await
    }

    async fn catalog_table(
        &self,
        request: &TableRequest,
    ) -> Result<(CatalogTable, Vec<MyColumn>), SourceError> {
        if !same_name(request.catalog.as_str(), self.database.as_str()) {
            return Err(SourceError::UnknownCatalog {
                catalog: request.catalog.to_string(),
            });
        }
        let schemas: Vec<String> = self
            .query(
                "reading the schemas",
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
                 WHERE LOWER(SCHEMA_NAME) = LOWER(?)",
                vec![request.schema.as_str().into()],
            )
            .await?
            .into_iter()
            .filter_map(|mut r| r.take::<String, _>(0))
            .collect();
        let schema =
            pick(&schemas, request.schema.as_str()).ok_or_else(|| SourceError::UnknownSchema {
                schema: format!("{}.{}", request.catalog, request.schema),
            })?;
        let tables: Vec<(String, String)> = self
            .query(
                "reading the tables",
                "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND LOWER(TABLE_NAME) = LOWER(?)",
                vec![schema.as_str().into(), request.table.as_str().into()],
            )
            .await?
            .into_iter()
            .filter_map(|mut r| Some((r.take::<String, _>(0)?, r.take::<String, _>(1)?)))
            .collect();
        let names: Vec<String> = tables.iter().map(|(n, _)| n.clone()).collect();
        let table =
            pick(&names, request.table.as_str()).ok_or_else(|| SourceError::UnknownTable {
                table: request.full_name(),
            })?;
        let comment = tables
            .iter()
            .find(|(n, _)| *n == table)
            .map(|(_, c)| c.clone())
            .filter(|c| !c.is_empty());
        let my_columns: Vec<MyColumn> = self
            .query(
                "reading the columns",
                "SELECT COLUMN_NAME, IS_NULLABLE, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), \
                   NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_MAXIMUM_LENGTH, COLUMN_COMMENT \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION",
                vec![schema.as_str().into(), table.as_str().into()],
            )
            .await?
            .into_iter()
            .map(|mut r| {
                Ok(MyColumn {
                    name: r
                        .take(0)
                        .ok_or_else(|| protocol("a column without a name"))?,
                    not_null: r.take::<String, _>(1).is_some_and(|n| n == "NO"),
                    data_type: r.take(2).unwrap_or_default(),
                    column_type: r.take(3).unwrap_or_default(),
                    precision: r.take::<Option<u64>, _>(4).flatten(),
                    scale: r.take::<Option<u64>, _>(5).flatten(),
                    length: r.take::<Option<u64>, _>(6).flatten(),
                    comment: r.take::<String, _>(7).filter(|c| !c.is_empty()),
                })
            })
            .collect::<Result<_, SourceError>>()?;
        let primary_key: Vec<String> = self
            .query(
                "reading the primary key",
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
                 ORDER BY ORDINAL_POSITION",
                vec![schema.as_str().into(), table.as_str().into()],
            )
            .await?
            .into_iter()
            .filter_map(|mut r| r.take::<String, _>(0))
            .collect();
        let declared = my_columns.iter().map(|c| Declared {
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
        Ok((catalog, my_columns))
    }
}

/// The snapshot's GTID position, where the server keeps one (MySQL's `gtid_executed`, else
/// MariaDB's `gtid_binlog_pos`), and the server's UTC time just after it was taken; with no
/// binary log the time alone names it.
async fn snapshot_identity(conn: &mut Conn) -> String {
    let taken = conn
        .query_first::<String, _>("SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ')")
        .await
        .ok()
        .flatten()
        .map(|t| format!(", taken {t}"))
        .unwrap_or_default();
    for (query, flavour) in [
        ("SELECT @@GLOBAL.gtid_executed", "mysql"),
        ("SELECT @@GLOBAL.gtid_binlog_pos", "mariadb"),
    ] {
        if let Ok(Some(position)) = conn.query_first::<Option<String>, _>(query).await {
            return match position {
                Some(p) if !p.is_empty() => {
                    format!("{flavour} consistent snapshot at GTID {p}{taken}")
                }
                _ => format!("{flavour} consistent snapshot{taken} (no binary log, so no GTID)"),
            };
        }
    }
    format!("mysql consistent snapshot{taken}")
}

/// Runs `query` within `after`, naming `operation` on `host` if it fails.
async fn timed<T>(
    after: Duration,
    operation: &str,
    host: &str,
    query: impl Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, SourceError> {
    crate::shared::timed(after, operation, query, |e| my_error(operation, host, e)).await
}

#[async_trait]
impl Source for MysqlSource {
    async fn describe(&self, table: &TableRequest) -> Result<TableSchema, SourceError> {
        let (catalog, _) = self.catalog_table(table).await?;
        catalog.select(table.columns.as_deref())
    }

    async fn read(&self, schema: &TableSchema) -> Result<TableStream, SourceError> {
        let request = request_of(schema);
        let (catalog, my_columns) = self.catalog_table(&request).await?;
        let full_name = request.full_name();
        // Quoted as MySQL (and Databricks) do (`` ` `` doubled).
        let select: Vec<String> =
            described_columns(schema, &catalog, &my_columns, |c| &c.name, map, |m| &m.uc)?
                .into_iter()
                .map(|(name, m)| {
                    if m.as_text {
                        format!("CAST({} AS CHAR)", name.quoted_backtick())
                    } else {
                        name.quoted_backtick()
                    }
                })
                .collect();
        let sql = format!(
            "SELECT {} FROM {}.{}",
            select.join(", "),
            catalog.schema.quoted_backtick(),
            catalog.table.quoted_backtick(),
        );
        let arrow_schema = publish_columns::arrow_schema(schema);
        let batcher = Batcher::new(Arc::clone(&arrow_schema))
            .map_err(|e| protocol(format!("table `{full_name}`: {e}")))?;
        let names: Vec<String> = schema.columns.iter().map(|c| c.name.to_string()).collect();
        // The connection is the snapshot's: one read at a time, the guard held by the task
        // that streams it and released when the read ends or its stream is dropped.
        let guard = Arc::clone(&self.conn).lock_owned().await;
        let (tx, rx) = mpsc::channel(2);
        let job = ReadJob {
            sql,
            batcher,
            names,
            table: full_name,
            host: self.host.clone(),
            batch_rows: self.options.batch_rows,
        };
        tokio::spawn(job.run(guard, tx));
        Ok(TableStream {
            schema: arrow_schema,
            batches: Box::pin(futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            })),
            snapshot: Some(self.snapshot.clone()),
            unpinned: None,
        })
    }

    async fn check(&self) -> Result<(), SourceError> {
        self.query("checking the connection", "SELECT 1", Vec::new())
            .await
            .map(|_| ())
    }
}

/// One table's rows, streamed on the snapshot's connection into batches sent to the reader.
struct ReadJob {
    sql: String,
    batcher: Batcher,
    names: Vec<String>,
    table: String,
    host: String,
    batch_rows: usize,
}

/// Ends the statement under way on the snapshot's connection (`id`) without ending its
/// transaction: `KILL QUERY` from a second connection, then what is left of the result read
/// and dropped here, so that the package's next read starts on a clean connection instead of
/// first skipping the rest of a large table.
async fn stop(result: QueryResult<'_, 'static, BinaryProtocol>, id: u32, opts: mysql_async::Opts) {
    if let Ok(mut killer) = Conn::new(opts).await {
        let _ = killer.query_drop(format!("KILL QUERY {id}")).await;
        let _ = killer.disconnect().await;
    }
    // The statement ends with "query execution was interrupted", or had ended already.
    let _ = result.drop_result().await;
}

type Sender = mpsc::Sender<Result<arrow::array::RecordBatch, SourceError>>;

impl ReadJob {
    async fn run(mut self, mut conn: OwnedMutexGuard<Conn>, tx: Sender) {
        let operation = format!("reading `{}`", self.table);
        let (id, opts) = (conn.id(), conn.opts().clone());
        let mut result = match conn.exec_iter(self.sql.as_str(), ()).await {
            Ok(result) => result,
            Err(e) => {
                let _ = tx.send(Err(my_error(&operation, &self.host, e))).await;
                return;
            }
        };
        loop {
            let row = match result.next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(my_error(&operation, &self.host, e))).await;
                    return;
                }
            };
            if let Err((i, what)) = self.batcher.push(&row.unwrap()) {
                let message = match self.names.get(i) {
                    Some(name) => format!("column `{name}` of `{}` holds {what}", self.table),
                    None => format!("reading `{}`: {what}", self.table),
                };
                let _ = tx.send(Err(protocol(message))).await;
                stop(result, id, opts).await;
                return;
            }
            if self.batcher.rows() >= self.batch_rows && !self.send(&tx).await {
                // The reader is gone (or the batch failed): stop the statement.
                stop(result, id, opts).await;
                return;
            }
        }
        if self.batcher.rows() > 0 {
            self.send(&tx).await;
        }
    }

    /// Sends the rows so far as a batch; false when the reader has gone or the batch failed.
    async fn send(&mut self, tx: &Sender) -> bool {
        let batch = self
            .batcher
            .batch()
            .map_err(|e| protocol(format!("reading `{}`: {e}", self.table)));
        let failed = batch.is_err();
        tx.send(batch).await.is_ok() && !failed
    }
}
