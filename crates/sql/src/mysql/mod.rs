//! The MySQL / MariaDB dialect of the SQL source: catalog from `information_schema`, data
//! through a prepared `SELECT` (the binary protocol, streamed row by row into Arrow builders),
//! every read of a package inside one `START TRANSACTION WITH CONSISTENT SNAPSHOT`.
//!
//! MySQL cannot hand a snapshot to another connection, so all reads of a package share the
//! one connection that holds it, one at a time: a second read waits until the first stream
//! has ended or been dropped. A stream dropped midway has its statement stopped with
//! `KILL QUERY` from a second connection (which ends the statement, not the transaction), so
//! the next read neither waits for the rest of a large table nor loses the snapshot.

mod rows;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{BinaryProtocol, Conn, OptsBuilder, QueryResult, Row, Value};
use publish_source::{BatchStream, SourceError};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc};

use crate::builders::Batcher;
use crate::dialect::{Column, Dialect, Found, Read, Reading, timed};
use crate::error::{my_error, protocol};
use crate::{SqlConfig, SqlOptions, SqlTls};
use types::{DeclaredType, Mapping, map};

/// MySQL's and MariaDB's side of [`crate::MysqlSource`]: the one connection that holds the
/// package's consistent snapshot, shared by its catalog queries and its reads, one at a time.
pub struct Mysql {
    conn: Arc<Mutex<Conn>>,
    host: String,
    options: SqlOptions,
}

impl Mysql {
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
}

/// A column of `information_schema.COLUMNS`, its type mapped; the `SELECT` reads it as text
/// where the type has no mapping of its own.
fn column(name: String, not_null: bool, comment: Option<String>, t: &DeclaredType) -> Column {
    let Mapping { uc, as_text } = map(t);
    Column::new::<Mysql>(name, not_null, comment, uc, |quoted| {
        if as_text {
            format!("CAST({quoted} AS CHAR)")
        } else {
            quoted
        }
    })
}

#[async_trait]
impl Dialect for Mysql {
    /// The name is all the next queries need.
    type Table = ();

    const QUOTE: char = '`';

    /// Connects, opens the package's consistent snapshot and names it.
    async fn open(config: &SqlConfig) -> Result<(Self, String), SourceError> {
        let host = config.host.origin();
        let ssl = crate::tls::my_tls(&config.options)
            .map_err(|message| SourceError::InvalidConfig { message })?;
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
        let mut conn = timed(config.options.connect_timeout, &operation, &host, connect).await?;
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
        let mysql = Self {
            conn: Arc::new(Mutex::new(conn)),
            host,
            options: config.options.clone(),
        };
        Ok((mysql, snapshot))
    }

    async fn schemas(&self, name: &str) -> Result<Vec<String>, SourceError> {
        Ok(self
            .query(
                "reading the schemas",
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
                 WHERE LOWER(SCHEMA_NAME) = LOWER(?)",
                vec![name.into()],
            )
            .await?
            .into_iter()
            .filter_map(|mut r| r.take::<String, _>(0))
            .collect())
    }

    async fn tables(&self, schema: &str, name: &str) -> Result<Vec<Found<()>>, SourceError> {
        Ok(self
            .query(
                "reading the tables",
                "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND LOWER(TABLE_NAME) = LOWER(?)",
                vec![schema.into(), name.into()],
            )
            .await?
            .into_iter()
            .filter_map(|mut r| {
                Some(Found {
                    name: r.take::<String, _>(0)?,
                    key: (),
                    comment: Some(r.take::<String, _>(1)?).filter(|c| !c.is_empty()),
                })
            })
            .collect())
    }

    async fn columns(
        &self,
        schema: &str,
        table: &Found<()>,
    ) -> Result<(Vec<Column>, Vec<String>), SourceError> {
        let columns = self
            .query(
                "reading the columns",
                "SELECT COLUMN_NAME, IS_NULLABLE, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), \
                   NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_MAXIMUM_LENGTH, COLUMN_COMMENT \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 ORDER BY ORDINAL_POSITION",
                vec![schema.into(), table.name.as_str().into()],
            )
            .await?
            .into_iter()
            .map(|mut r| {
                let name = r
                    .take(0)
                    .ok_or_else(|| protocol("a column without a name"))?;
                let not_null = r.take::<String, _>(1).is_some_and(|n| n == "NO");
                let declared = DeclaredType {
                    data_type: r.take(2).unwrap_or_default(),
                    column_type: r.take(3).unwrap_or_default(),
                    precision: r.take::<Option<u64>, _>(4).flatten(),
                    scale: r.take::<Option<u64>, _>(5).flatten(),
                    length: r.take::<Option<u64>, _>(6).flatten(),
                };
                let comment = r.take::<String, _>(7).filter(|c| !c.is_empty());
                Ok(column(name, not_null, comment, &declared))
            })
            .collect::<Result<_, SourceError>>()?;
        let primary_key = self
            .query(
                "reading the primary key",
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
                 ORDER BY ORDINAL_POSITION",
                vec![schema.into(), table.name.as_str().into()],
            )
            .await?
            .into_iter()
            .filter_map(|mut r| r.take::<String, _>(0))
            .collect();
        Ok((columns, primary_key))
    }

    /// Runs the `SELECT` on the snapshot's connection, one read at a time: the connection's
    /// guard is held by the task that streams the rows and released when the read ends or its
    /// stream is dropped.
    async fn stream(&self, read: Read) -> Result<BatchStream, SourceError> {
        let guard = Arc::clone(&self.conn).lock_owned().await;
        let (tx, rx) = mpsc::channel(2);
        let job = ReadJob {
            sql: read.select,
            rows: read.rows,
            reading: read.reading,
            host: self.host.clone(),
        };
        tokio::spawn(job.run(guard, tx));
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })))
    }

    async fn check(&self) -> Result<(), SourceError> {
        self.query("checking the connection", "SELECT 1", Vec::new())
            .await
            .map(|_| ())
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

/// One table's rows, streamed on the snapshot's connection into batches sent to the reader.
struct ReadJob {
    sql: String,
    rows: Batcher,
    reading: Reading,
    host: String,
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
        let operation = self.reading.operation();
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
            if let Err((i, what)) = rows::push(&mut self.rows, &row.unwrap()) {
                let _ = tx.send(Err(self.reading.undecodable(Some(i), &what))).await;
                stop(result, id, opts).await;
                return;
            }
            if self.rows.is_full() && !self.send(&tx).await {
                // The reader is gone (or the batch failed): stop the statement.
                stop(result, id, opts).await;
                return;
            }
        }
        if self.rows.rows() > 0 {
            self.send(&tx).await;
        }
    }

    /// Sends the rows so far as a batch; false when the reader has gone or the batch failed.
    async fn send(&mut self, tx: &Sender) -> bool {
        let batch = self
            .rows
            .batch()
            .map_err(|e| self.reading.undecodable(None, &e));
        let failed = batch.is_err();
        tx.send(batch).await.is_ok() && !failed
    }
}
