//! The PostgreSQL dialect of the SQL source: catalog from `pg_catalog`, data through binary
//! `COPY`, every read of a package inside one exported snapshot (see the crate documentation);
//! and the connection code the PostgreSQL destination shares ([`open`]).

mod copy;
pub(crate) mod destination;
mod types;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use publish_source::{BatchStream, SourceError};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, CopyOutStream, NoTls};
use tracing::debug;

use crate::dialect::{Column, Dialect, Found, Read, Reading, timed};
use crate::error::pg_error;
use crate::tls::RustlsConnect;
use crate::{SqlConfig, SqlOptions};
use copy::CopyDecoder;
use types::{DeclaredType, Mapping, map};

/// Session settings of every connection: text output of the types read as text in ISO
/// spellings, whatever the server's defaults.
const SESSION: &str = "SET IntervalStyle = iso_8601; SET DateStyle = ISO; \
                       SET TimeZone = 'UTC'; SET extra_float_digits = 3";

/// PostgreSQL's side of [`crate::PostgresSource`].
///
/// Holds one connection with the package's `REPEATABLE READ, READ ONLY` transaction open
/// (catalog queries run there); each read opens a connection of its own that imports the
/// transaction's snapshot, so reads may run at the same time and dropping one (which closes its
/// connection, ending the `COPY` on the server) leaves the others and the snapshot intact.
/// Dropping it ends the transaction.
pub struct Postgres {
    main: Connection,
    connector: Connector,
    /// `pg_export_snapshot()`'s id, imported by every read.
    snapshot_id: String,
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
            Ok::<_, tokio_postgres::Error>(Connection { client, task })
        };
        timed(timeout, &operation, &self.host, connect).await
    }
}

impl Postgres {
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
}

/// A column of `pg_catalog`, its type mapped; the `SELECT` casts it where its send format is
/// not what the decoder reads.
fn column(name: String, not_null: bool, comment: Option<String>, t: &DeclaredType) -> Column {
    let Mapping { uc, cast } = map(t);
    Column::new::<Postgres>(name, not_null, comment, uc, |quoted| match cast {
        Some(cast) => format!("{quoted}::{cast}"),
        None => quoted,
    })
}

#[async_trait]
impl Dialect for Postgres {
    type Table = u32;

    const QUOTE: char = '"';

    /// Connects, opens the package's transaction and exports its snapshot.
    async fn open(config: &SqlConfig) -> Result<(Self, String), SourceError> {
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
        let postgres = Self {
            main,
            connector,
            snapshot_id,
            options: config.options.clone(),
        };
        Ok((postgres, snapshot))
    }

    async fn schemas(&self, name: &str) -> Result<Vec<String>, SourceError> {
        let rows = self
            .query(
                "reading the schemas",
                "SELECT nspname::text FROM pg_catalog.pg_namespace \
                 WHERE lower(nspname::text) = lower($1::text)",
                &[&name],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Tables, partitioned tables, views, materialized views and foreign tables, by `oid`.
    async fn tables(&self, schema: &str, name: &str) -> Result<Vec<Found<u32>>, SourceError> {
        let rows = self
            .query(
                "reading the tables",
                "SELECT c.oid, c.relname::text, pg_catalog.obj_description(c.oid, 'pg_class') \
                 FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1::text AND lower(c.relname::text) = lower($2::text) \
                 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                &[&schema, &name],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Found {
                key: r.get(0),
                name: r.get(1),
                comment: r.get(2),
            })
            .collect())
    }

    async fn columns(
        &self,
        _schema: &str,
        table: &Found<u32>,
    ) -> Result<(Vec<Column>, Vec<String>), SourceError> {
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
                &[&table.key],
            )
            .await?;
        let columns = rows
            .iter()
            .map(|r| {
                let declared = DeclaredType {
                    type_name: r.get(2),
                    typmod: r.get(3),
                    element: r.get(4),
                };
                column(r.get(0), r.get(1), r.get(5), &declared)
            })
            .collect();
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
                &[&table.key],
            )
            .await?;
        Ok((columns, rows.iter().map(|r| r.get(0)).collect()))
    }

    /// A connection of the read's own imports the package's snapshot and runs the `SELECT` as
    /// a binary `COPY`, decoded as it arrives.
    async fn stream(&self, read: Read) -> Result<BatchStream, SourceError> {
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
        let sql = format!("COPY ({}) TO STDOUT (FORMAT binary)", read.select);
        let copy = timed(
            self.options.query_timeout,
            &read.reading.operation(),
            host,
            async { connection.client.copy_out(sql.as_str()).await },
        )
        .await?;
        let state = ReadState {
            copy: Box::pin(copy),
            decoder: CopyDecoder::appending_to(read.rows),
            ready: VecDeque::new(),
            connection,
            reading: read.reading,
            host: host.clone(),
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, ReadState::next)))
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
    reading: Reading,
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
                    Err((column, e)) => self.reading.undecodable(Some(column), &e.0),
                },
                Some(Err(e)) => pg_error(&self.reading.operation(), &self.host, e),
                None => match self.decoder.finish() {
                    Ok(last) => {
                        self.done = true;
                        self.ready.extend(last);
                        continue;
                    }
                    Err(e) => self.reading.undecodable(None, &e.0),
                },
            };
            self.done = true;
            self.ready.clear();
            return Some((Err(failed), self));
        }
    }
}
