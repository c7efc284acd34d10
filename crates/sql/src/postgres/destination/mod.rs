//! The PostgreSQL destination: a project's datasets loaded into the database that DataSHIELD
//! reads through OBiBa Opal ([`publish_sink::DatabaseDestination`]).
//!
//! # Names (as the reference service, so researchers' scripts keep working)
//!
//! A dataset's tables land in schema `lower(<project>_<start time>_<schema_name>)`, each table
//! and column named exactly as the source names it and always quoted, never spliced. A name
//! longer than PostgreSQL's 63-byte identifier limit is refused (`SinkError::InvalidName`)
//! rather than truncated as PostgreSQL would do silently; so is a schema PostgreSQL reserves
//! (`pg_…`) or that would look like one of ours.
//!
//! # What is ours, and where it lives
//!
//! Nothing of the service's is ever in a researchers' schema. The writer role keeps:
//!
//! * schema **`publish_service`**, granted to nobody, holding `loaded_tables`: which dataset of
//!   which project run loaded which table (`schema_name`, `table_name`, unique), with its rows
//!   and time. It is this destination's package record: claims, replacement and
//!   [`tables`](publish_sink::LockedProject::tables) read it. Created on first use.
//! * one private **load schema** per load under way, `_publish_load_<run>_<random>`, where
//!   `<run>` is 16 hex digits of a SHA-256 of the project run (so every load of one run is
//!   recognisable, and no researchers' schema can take that form).
//!
//! # Locking, atomicity, leftovers
//!
//! [`lock`](publish_sink::DatabaseDestination::lock) opens the writer's connection and takes
//! a session-level advisory lock keyed by the same hash, so it reaches every replica using
//! the database and is released when the connection closes, however the process ends. It
//! waits [`LOCK_GRACE`] for a holder that is just closing its connection, then answers
//! `SinkError::Busy`. Holding it, it drops the load schemas an interrupted load of the run
//! left behind.
//!
//! A load creates each table in its load schema and fills it with binary
//! `COPY … FROM STDIN (FORMAT binary)`, streamed a buffer at a time (`encode.rs`); the primary
//! key is added once the rows are in. Nobody sees any of it until
//! [`commit`](publish_sink::LockedProject::commit), one transaction that replaces the
//! dataset's previous tables (and any table of the same name) by the new ones
//! (`ALTER TABLE … SET SCHEMA`), grants the read-only role `USAGE` on the schema and `SELECT`
//! on exactly those tables, updates `loaded_tables` and drops the load schema. Any failure
//! before its `COMMIT` rolls all of it back. A sink or locked project dropped without
//! committing drops its load schema at once from a background task (which the connection,
//! and so the lock, outlives); if the process dies first, the next lock of the run does it.

mod encode;
mod locked;
mod sink;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use publish_sink::{DatabaseDestination, DatasetLoad, LockedProject, SinkError};
use publish_types::{ProjectName, StartTime, TableSchema};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::SqlOptions;
use crate::error::pg_sink_error;
use crate::tls::{RustlsConnect, pg_tls};

/// PostgreSQL's identifier limit in bytes (`NAMEDATALEN` − 1).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The schema of the service's own records in the destination database.
const BOOKKEEPING_SCHEMA: &str = "publish_service";

/// The beginning of every private load schema's name.
const LOAD_PREFIX: &str = "_publish_load_";

/// How long [`DatabaseDestination::lock`] waits for the lock before answering `Busy`: long
/// enough for a holder that has just finished (its connection closing) to let go, so that a
/// publish sent right after its package is not refused.
const LOCK_GRACE: Duration = Duration::from_secs(2);

/// Where the destination database is and as whom the service writes to it.
pub struct PostgresDestinationConfig {
    /// The server's host name or address.
    pub host: String,
    /// Its port ([`PostgresDestinationConfig::DEFAULT_PORT`] unless configured).
    pub port: u16,
    /// The database the tables go into (e.g. `opal-resource-db`).
    pub database: String,
    /// The role that creates, loads and replaces the tables. It needs `CREATE` on the database.
    pub writer_user: String,
    /// Its password, sent only as a connection parameter (never in a connection string).
    pub writer_password: SecretString,
    /// The role Opal's resources read as, granted `USAGE` on each schema and `SELECT` on each
    /// table loaded; nothing is granted when it is the writer.
    pub reader_role: String,
    /// TLS (`tls`, `ca_file`) and time limits (`connect_timeout`; `query_timeout` for each
    /// statement other than a load, and for the locks the commit waits for), as for the SQL
    /// sources. `batch_rows` is not used.
    pub options: SqlOptions,
}

impl PostgresDestinationConfig {
    /// PostgreSQL's port, the reference service's default.
    pub const DEFAULT_PORT: u16 = 5432;
}

impl std::fmt::Debug for PostgresDestinationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDestinationConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("tls", &self.options.tls)
            .finish_non_exhaustive()
    }
}

/// The PostgreSQL database a deployment publishes to for DataSHIELD (see the module
/// documentation). Cheap to share: each [`lock`](DatabaseDestination::lock) and
/// [`check`](DatabaseDestination::check) opens a connection of its own.
pub struct PostgresDestination {
    shared: Arc<Shared>,
}

/// What every connection of a destination shares.
struct Shared {
    pg: tokio_postgres::Config,
    tls: Option<RustlsConnect>,
    /// `postgresql://host:port/database`, for messages.
    host: String,
    /// The reader role, `None` when it is the writer.
    reader: Option<String>,
    options: SqlOptions,
}

impl std::fmt::Debug for PostgresDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDestination")
            .field("host", &self.shared.host)
            .field("tls", &self.shared.options.tls)
            .finish_non_exhaustive()
    }
}

impl PostgresDestination {
    /// PostgreSQL's identifier limit in bytes (`NAMEDATALEN` − 1): longer schema, table or
    /// column names are refused.
    pub const MAX_IDENTIFIER_BYTES: usize = MAX_IDENTIFIER_BYTES;
    /// The schema of the service's own records in the destination database (granted to
    /// nobody): table `loaded_tables`, which dataset of which project run loaded which table.
    pub const BOOKKEEPING_SCHEMA: &'static str = BOOKKEEPING_SCHEMA;
    /// How long [`lock`](DatabaseDestination::lock) waits for a holder that is just letting
    /// go before answering `Busy`.
    pub const LOCK_GRACE: Duration = LOCK_GRACE;

    /// A destination with `config`. Connects to nothing; reads the CA file, so a missing or
    /// unusable one (or one given with `prefer`, which checks no certificate) is an error here.
    pub fn new(config: PostgresDestinationConfig) -> Result<Self, SinkError> {
        let host = format!(
            "postgresql://{}:{}/{}",
            config.host, config.port, config.database
        );
        let (tls, ssl_mode) = pg_tls(&config.options).map_err(|message| SinkError::Database {
            operation: format!("reading the TLS settings of {host}"),
            message,
        })?;
        let mut pg = tokio_postgres::Config::new();
        pg.host(&config.host)
            .port(config.port)
            .dbname(&config.database)
            .user(&config.writer_user)
            .password(config.writer_password.expose_secret())
            .application_name("cr8tor-publish destination")
            .connect_timeout(config.options.connect_timeout)
            .ssl_mode(ssl_mode);
        let reader = (config.reader_role != config.writer_user).then_some(config.reader_role);
        Ok(Self {
            shared: Arc::new(Shared {
                pg,
                tls,
                host,
                reader,
                options: config.options,
            }),
        })
    }
}

impl Shared {
    /// A new connection as the writer, its session set up.
    async fn connect(&self) -> Result<(Client, JoinHandle<()>), SinkError> {
        let operation = format!("connecting to {}", self.host);
        let timeout = self.options.connect_timeout;
        let (client, task) =
            match tokio::time::timeout(timeout, super::open(&self.pg, self.tls.as_ref())).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(pg_sink_error(&operation, &self.host, &e)),
                Err(_) => {
                    return Err(SinkError::Database {
                        operation,
                        message: format!("no answer within {timeout:?}"),
                    });
                }
            };
        // Literals in generated SQL (comments) are quoted for standard strings; notices of
        // `IF EXISTS` are noise.
        self.timed(
            "setting up the session",
            client.batch_execute(
                "SET standard_conforming_strings = on; SET client_min_messages = warning",
            ),
        )
        .await?;
        Ok((client, task))
    }

    /// Runs a statement within `query_timeout`, naming `operation` if it fails.
    async fn timed<T>(
        &self,
        operation: &str,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, SinkError> {
        match tokio::time::timeout(self.options.query_timeout, statement).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(operation, &e)),
            Err(_) => Err(SinkError::Database {
                operation: operation.to_owned(),
                message: format!("no answer within {:?}", self.options.query_timeout),
            }),
        }
    }

    fn error(&self, operation: &str, e: &tokio_postgres::Error) -> SinkError {
        pg_sink_error(operation, &self.host, e)
    }
}

/// A project run: its names, and the hash that keys its lock and names its load schemas.
#[derive(Debug, Clone)]
struct Run {
    project: String,
    start: String,
    /// The advisory lock's key.
    key: i64,
    /// `_publish_load_<16 hex digits>_`: the start of the name of every load schema of the run.
    prefix: String,
}

impl Run {
    fn new(project: &ProjectName, start: &StartTime) -> Self {
        let digest = Sha256::new()
            .chain_update(b"cr8tor-publish postgresql destination\n")
            .chain_update(project.as_str())
            .chain_update(b"\n")
            .chain_update(start.as_str())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let key = i64::from_be_bytes(first);
        Self {
            project: project.to_string(),
            start: start.to_string(),
            key,
            prefix: format!("{LOAD_PREFIX}{:016x}_", u64::from_be_bytes(first)),
        }
    }
}

/// The schema of a dataset's tables, `lower(<project>_<start>_<schema_name>)`, once every
/// name the database must hold is checked.
fn target_schema(project: &str, start: &str, dataset: &DatasetLoad) -> Result<String, SinkError> {
    let schema = format!("{project}_{start}_{}", dataset.schema_name).to_lowercase();
    check_identifier("schema", &schema)?;
    if schema.starts_with("pg_") || schema.starts_with(LOAD_PREFIX) || schema == BOOKKEEPING_SCHEMA
    {
        return Err(SinkError::InvalidName {
            what: "schema",
            name: schema,
            detail: "PostgreSQL reserves names starting with pg_, and the service keeps \
                     publish_service and _publish_load_… for itself"
                .into(),
        });
    }
    for table in &dataset.tables {
        check_identifier("table", table.table.as_str())?;
    }
    Ok(schema)
}

/// Refuses a name longer than PostgreSQL's identifier limit, which it would truncate.
fn check_identifier(what: &'static str, name: &str) -> Result<(), SinkError> {
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(SinkError::InvalidName {
            what,
            name: name.to_owned(),
            detail: format!(
                "it is {} bytes long, and PostgreSQL holds names of at most \
                 {MAX_IDENTIFIER_BYTES} bytes (it would cut it short)",
                name.len()
            ),
        });
    }
    Ok(())
}

/// `name` quoted as an SQL identifier (`"` doubled).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal (standard strings; NUL, which no text can hold, dropped).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\0', "").replace('\'', "''"))
}

#[async_trait]
impl DatabaseDestination for PostgresDestination {
    fn plan(
        &self,
        project: &ProjectName,
        start: &StartTime,
        dataset: &DatasetLoad,
    ) -> Result<String, SinkError> {
        target_schema(project.as_str(), start.as_str(), dataset)
    }

    fn check_columns(&self, table: &TableSchema) -> Result<(), SinkError> {
        for column in &table.columns {
            check_identifier("column", column.name.as_str())?;
        }
        Ok(())
    }

    async fn lock(
        &self,
        project: &ProjectName,
        start: &StartTime,
    ) -> Result<Box<dyn LockedProject>, SinkError> {
        let locked =
            locked::PgLocked::open(Arc::clone(&self.shared), Run::new(project, start)).await?;
        Ok(Box::new(locked))
    }

    async fn check(&self) -> Result<(), SinkError> {
        let (client, _task) = self.shared.connect().await?;
        let operation = format!("checking {}", self.shared.host);
        let row = self
            .shared
            .timed(
                &operation,
                client.query_one(
                    "SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE'), \
                     $1::text IS NULL OR EXISTS \
                       (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1::text)",
                    &[&self.shared.reader],
                ),
            )
            .await?;
        let (create, reader): (bool, bool) = (row.get(0), row.get(1));
        if !create {
            return Err(SinkError::Database {
                operation,
                message: "the writer role may not create schemas in the database: grant it \
                          CREATE on the database"
                    .into(),
            });
        }
        if !reader {
            return Err(SinkError::Database {
                operation,
                message: "the read-only role that Opal reads as does not exist in the server"
                    .into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use publish_types::{ObjectName, TableRef};

    use super::*;

    fn dataset(schema: &str, tables: &[&str]) -> DatasetLoad {
        DatasetLoad {
            id: "d".into(),
            schema_name: ObjectName::parse(schema).unwrap(),
            tables: tables
                .iter()
                .map(|t| TableRef {
                    schema: ObjectName::parse(schema).unwrap(),
                    table: ObjectName::parse(t).unwrap(),
                })
                .collect(),
        }
    }

    /// The reference's naming, and the hash that keys the lock: stable (replicas and versions
    /// of the service agree on it) and different per run.
    #[test]
    fn names_and_run_keys() {
        let p = ProjectName::parse("PR004-Cohort").unwrap();
        let s = StartTime::parse("20250205_010101").unwrap();
        assert_eq!(
            target_schema(p.as_str(), s.as_str(), &dataset("Omop_CDM", &["Person"])).unwrap(),
            "pr004-cohort_20250205_010101_omop_cdm"
        );
        let run = Run::new(&p, &s);
        assert_eq!(run.key, Run::new(&p, &s).key);
        assert_eq!(
            run.prefix,
            format!("_publish_load_{:016x}_", run.key as u64)
        );
        assert_eq!(run.prefix.len(), 31);
        let other = Run::new(&p, &StartTime::parse("20250205_010102").unwrap());
        assert_ne!(run.key, other.key);
        // A fixed value: a change would stop two versions of the service from excluding each
        // other during a rolling update.
        assert_eq!(
            Run::new(
                &ProjectName::parse("p").unwrap(),
                &StartTime::parse("20250101_000000").unwrap()
            )
            .prefix,
            "_publish_load_3bafaee6783daec3_"
        );
    }

    /// Schema and table names over 63 bytes (counted in bytes, not characters), and reserved
    /// schemas, are refused naming the name and the limit.
    #[test]
    fn names_postgresql_cannot_hold() {
        let s = StartTime::parse("20250205_010101").unwrap();
        let p = ProjectName::parse("p").unwrap();
        // 1 + 1 + 15 + 1 + 45 = 63 bytes: accepted.
        let ok = "a".repeat(45);
        assert_eq!(
            target_schema(p.as_str(), s.as_str(), &dataset(&ok, &["t"]))
                .unwrap()
                .len(),
            63
        );
        let long = "a".repeat(46);
        let e = target_schema(p.as_str(), s.as_str(), &dataset(&long, &["t"])).unwrap_err();
        assert!(
            matches!(&e, SinkError::InvalidName { what: "schema", name, detail }
                if name.len() == 64 && detail.contains("at most 63 bytes")),
            "{e:?}"
        );
        // 32 two-byte characters: 64 bytes.
        let table = "é".repeat(32);
        let e = target_schema(p.as_str(), s.as_str(), &dataset("s", &[&table])).unwrap_err();
        assert!(
            matches!(&e, SinkError::InvalidName { what: "table", name, .. } if *name == table),
            "{e:?}"
        );
        assert!(target_schema(p.as_str(), s.as_str(), &dataset("s", &[&"é".repeat(31)])).is_ok());
        let e = target_schema("pg_x", s.as_str(), &dataset("s", &["t"])).unwrap_err();
        assert!(matches!(e, SinkError::InvalidName { .. }), "{e:?}");
        let e = target_schema("_publish_load_x", s.as_str(), &dataset("s", &["t"])).unwrap_err();
        assert!(matches!(e, SinkError::InvalidName { .. }), "{e:?}");
    }
}
