//! SQL databases behind [`publish_source::Source`]: PostgreSQL ([`PostgresSource`]) and
//! MySQL / MariaDB ([`MysqlSource`]); and the PostgreSQL database DataSHIELD reads through
//! Opal behind [`publish_sink::DatabaseDestination`] ([`PostgresDestination`]: binary `COPY`
//! into a private schema, one transaction to make a dataset visible, the run's lock held in the
//! database; its column types come from [`publish_columns::PgType`]).
//!
//! A source is opened for one package and reads every table of it from **one snapshot**.
//! PostgreSQL: it
//! opens a `REPEATABLE READ, READ ONLY` transaction, exports its snapshot
//! (`pg_export_snapshot()`), answers every `describe` inside that transaction, and reads each
//! table on a connection of its own that imports the same snapshot (`SET TRANSACTION
//! SNAPSHOT`), so reads may run in parallel and be cancelled one by one, and a researcher never
//! receives tables from different moments. The snapshot's identity (its transaction snapshot
//! and WAL position) is each table's [`TableStream::snapshot`](publish_source::TableStream),
//! recorded in the package record. Dropping the source ends the transaction.
//!
//! Reads stream binary `COPY (SELECT …) TO STDOUT (FORMAT binary)` straight into Arrow
//! builders — no row-by-row queries, no text parsing for the mapped types — in batches of at
//! most [`SqlOptions::batch_rows`] rows; the connection's backpressure bounds memory whatever
//! the table size.
//!
//! # Type mapping (PostgreSQL)
//!
//! Each column's declared type becomes a Unity Catalog type, which then follows the one
//! mapping of [`publish_columns`] into every output format (DuckDB, Parquet, CSV):
//!
//! | PostgreSQL | Unity Catalog type | DuckDB |
//! |---|---|---|
//! | `boolean` | BOOLEAN | BOOLEAN |
//! | `smallint`, `integer`, `bigint` | SMALLINT, INT, BIGINT | SMALLINT, INTEGER, BIGINT |
//! | `real`, `double precision` | FLOAT, DOUBLE | FLOAT, DOUBLE |
//! | `numeric(p,s)`, p ≤ 38 | DECIMAL(p,s) | DECIMAL(p,s) |
//! | `numeric` without a precision, or p > 38 | STRING (the exact decimal text) | VARCHAR |
//! | `text`, `name`, `varchar(n)`, `char(n)` | STRING, VARCHAR(n), CHAR(n) | VARCHAR |
//! | `bytea` | BINARY | BLOB |
//! | `date` | DATE | DATE |
//! | `timestamp` | TIMESTAMP_NTZ | TIMESTAMP |
//! | `timestamp with time zone` | TIMESTAMP (the instant, in UTC) | TIMESTAMPTZ |
//! | `uuid` | STRING (`8-4-4-4-12` lower-case hex) | VARCHAR |
//! | `json`, `jsonb` | STRING (the JSON text) | VARCHAR |
//! | `time`, `timetz`, `interval` | STRING (ISO 8601: `13:45:00.5`, `P1Y2M3DT4H`) | VARCHAR |
//! | a one-dimensional array of any of these | ARRAY\<T\> | `T[]` |
//! | anything else (enums, `money`, `inet`, ranges, geometry, `xml`, domains over those…) | STRING (PostgreSQL's text output) | VARCHAR |
//!
//! A domain takes its base type's mapping. `NOT NULL` and the primary key are kept as for
//! Databricks. Values a mapped type cannot hold fail the read naming the column, never the
//! value: `infinity` dates and timestamps, `NaN` in a `numeric(p,s)`, an array value with more
//! than one dimension.
//!
//! # MySQL / MariaDB
//!
//! [`MysqlSource`] opens `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY` at
//! `REPEATABLE READ` (session time zone `+00:00`) and reads every table of the package on that
//! one connection, one after another (MySQL cannot share a snapshot between connections); the
//! snapshot is recorded as its GTID position where the server keeps a binary log, and the
//! server's time just after it was taken (`mariadb consistent snapshot at GTID 0-1-42, taken
//! 2026-12-02T07:30:01.123456Z`). Rows come through a prepared `SELECT` (the
//! binary protocol: integers, floats and dates as numbers, not text), streamed into Arrow
//! builders. TLS as for PostgreSQL (rustls; `PUBLISH_SQL_CA_FILE` added to the built-in roots).
//!
//! | MySQL / MariaDB | Unity Catalog type | DuckDB |
//! |---|---|---|
//! | `TINYINT` (also `TINYINT(1)`, MySQL's `BOOLEAN`, which can hold −128…127), `SMALLINT`, `MEDIUMINT`/`INT`, `BIGINT` | TINYINT, SMALLINT, INT, BIGINT | TINYINT … BIGINT |
//! | the same `UNSIGNED` | the next wider type; `BIGINT UNSIGNED` as DECIMAL(20,0) | |
//! | `BIT(1)` | BOOLEAN | BOOLEAN |
//! | `BIT(n)`, `BINARY`, `VARBINARY`, `*BLOB` | BINARY | BLOB |
//! | `FLOAT`, `DOUBLE` | FLOAT, DOUBLE | FLOAT, DOUBLE |
//! | `DECIMAL(p,s)`, p ≤ 38 | DECIMAL(p,s) | DECIMAL(p,s) |
//! | `DECIMAL(p,s)`, p > 38 | STRING (the exact text) | VARCHAR |
//! | `CHAR(n)`, `VARCHAR(n)`, `*TEXT`, `ENUM`, `SET`, `JSON` | CHAR(n), VARCHAR(n), STRING | VARCHAR |
//! | `DATE` | DATE | DATE |
//! | `DATETIME` | TIMESTAMP_NTZ | TIMESTAMP |
//! | `TIMESTAMP` | TIMESTAMP (the instant, in UTC) | TIMESTAMPTZ |
//! | `YEAR` | SMALLINT | SMALLINT |
//! | `TIME`, geometry, anything else | STRING (`CAST(… AS CHAR)`) | VARCHAR |
//!
//! A zero date (`0000-00-00`) fails the read naming the column. A read dropped midway is
//! stopped with `KILL QUERY` (the statement, not the transaction).
//!
//! # One source, two dialects
//!
//! Both sources are one implementation (`source.rs`): the allow-list, the snapshot recorded
//! for every table, name matching, the check that a described table still maps to the same
//! types, the generated `SELECT` and the errors naming a column are written once. What
//! differs is each database's dialect (`dialect.rs`: connecting and the snapshot, the catalog
//! queries and the type table, quoting, and the rows' decoding into the shared Arrow builders
//! of `builders.rs`). A new SQL database is a new dialect.
//!
//! # Names
//!
//! The package's catalog is the database it connects to (`source.database`), its schema the
//! PostgreSQL schema or the MySQL database (`dataset.schema_name`). Schema, table and column
//! names are matched exactly, else ignoring case (as Unity Catalog matches them), and always
//! quoted in SQL (`"` or `` ` `` doubled), never spliced; values in catalog queries are bound
//! parameters.

mod builders;
mod dialect;
mod error;
mod mysql;
mod postgres;
mod source;
mod tls;

#[cfg(feature = "test-util")]
pub mod test_rig;

use std::path::PathBuf;
use std::time::Duration;

pub use postgres::destination::{PostgresDestination, PostgresDestinationConfig};

/// A PostgreSQL database, read for one package from one snapshot.
///
/// Holds one connection with the package's `REPEATABLE READ, READ ONLY` transaction open
/// (catalog queries run there); each [`read`](publish_source::Source::read) opens a connection
/// of its own that imports the transaction's snapshot, so reads may run at the same time and
/// dropping one (which closes its connection, ending the `COPY` on the server) leaves the
/// others and the snapshot intact. Dropping the source ends the transaction.
pub type PostgresSource = source::SqlSource<postgres::Postgres>;

/// A MySQL or MariaDB database, read for one package from one consistent snapshot: one
/// connection holds it, and the package's reads take turns on it.
pub type MysqlSource = source::SqlSource<mysql::Mysql>;

use publish_types::{AllowedHost, ObjectName};
use secrecy::SecretString;

/// Whether and how connections to a database are encrypted: `PUBLISH_SQL_TLS` for the
/// sources ([`SqlTls::parse`]), the PostgreSQL destination's own setting
/// ([`SqlTls::parse_destination`]). Spelled as libpq's `sslmode` values it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqlTls {
    /// `verify-full`: TLS, with the server's certificate checked against the system's roots
    /// (plus [`SqlOptions::ca_file`]) and its name against the host.
    #[default]
    VerifyFull,
    /// `prefer`, libpq's default (what the reference service's loader used): TLS when the
    /// server offers it, plain TCP when it does not, and the certificate **not checked** —
    /// encryption against eavesdropping, no protection against an impostor. A CA file is
    /// refused with it rather than silently ignored.
    Prefer,
    /// `disable`: plain TCP, credentials and data unencrypted. Only where the network is
    /// trusted and the operator has said so.
    Disable,
}

impl SqlTls {
    /// Parses the sources' setting: `verify-full` or `disable`. A source sends credentials the
    /// request chose to a host the request named, so an unverified mode is not offered there.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "verify-full" => Ok(Self::VerifyFull),
            "disable" => Ok(Self::Disable),
            _ => Err(format!(
                "{text:?} is not a TLS mode; use verify-full (the default) or disable"
            )),
        }
    }

    /// Parses the PostgreSQL destination's setting: `verify-full`, `prefer` or `disable`.
    pub fn parse_destination(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "prefer" => Ok(Self::Prefer),
            _ => Self::parse(text).map_err(|_| {
                format!("{text:?} is not a TLS mode; use verify-full, prefer or disable")
            }),
        }
    }

    /// The mode's spelling, as [`SqlTls::parse_destination`] reads it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::VerifyFull => "verify-full",
            Self::Prefer => "prefer",
            Self::Disable => "disable",
        }
    }
}

/// Settings shared by every SQL-database source of the service, and by the PostgreSQL
/// destination (which uses `tls`, `ca_file` and the timeouts).
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// TLS to the database (verify-full by default).
    pub tls: SqlTls,
    /// A PEM file of further CA certificates to trust (`PUBLISH_SQL_CA_FILE`), e.g. a private
    /// CA in front of the database.
    pub ca_file: Option<PathBuf>,
    /// Rows per Arrow batch at most.
    pub batch_rows: usize,
    /// How long establishing a connection (TCP, TLS, authentication) may take.
    pub connect_timeout: Duration,
    /// How long one catalog query may take.
    pub query_timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        Self {
            tls: SqlTls::VerifyFull,
            ca_file: None,
            batch_rows: 65_536,
            connect_timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(120),
        }
    }
}

/// Where one package reads from and as whom.
pub struct SqlConfig {
    /// The server (scheme `postgresql` or `mysql`), as the allow-list admitted it
    /// ([`HostAllowList::admit`](publish_types::HostAllowList::admit)).
    pub host: AllowedHost,
    /// The database: the package's catalog.
    pub database: ObjectName,
    /// The user name, from its secret file.
    pub user: SecretString,
    /// The password, from its secret file.
    pub password: SecretString,
    /// A name for the server's activity views (`pg_stat_activity.application_name`), e.g.
    /// the service and the project.
    pub application_name: String,
    /// Service-wide settings.
    pub options: SqlOptions,
}
