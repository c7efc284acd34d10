//! What one SQL database does its own way, behind the one source ([`SqlSource`]): connecting
//! and opening the package's snapshot, the catalog queries and the type table that maps each
//! column, how identifiers are quoted, and how a `SELECT`'s rows reach the shared Arrow
//! builders ([`Batcher`]). Everything else — the allow-list, matching names as Unity Catalog
//! does, checking that a described table still maps to the same types, the `SELECT` itself, the
//! errors naming a column — the skeleton does once, for every database.
//!
//! The items are `pub` only so that the public aliases [`crate::PostgresSource`] and
//! [`crate::MysqlSource`] can name their skeleton; the module is private, so nothing outside
//! the crate can name or implement them.

use std::time::Duration;

use async_trait::async_trait;
use publish_source::{BatchStream, SourceError};
use publish_types::{UcType, quote};

use crate::SqlConfig;
use crate::builders::Batcher;
use crate::error::{DriverError, protocol};

#[cfg(doc)]
use crate::source::SqlSource;

/// One SQL database's side of a [`SqlSource`].
///
/// # Contract
///
/// **One snapshot.** [`open`](Dialect::open) connects and leaves the dialect inside the
/// package's snapshot: every later catalog query and every stream sees that snapshot and
/// nothing committed after it, until the dialect is dropped (which ends it).
///
/// **Catalog queries** run one after another for a table — [`schemas`](Dialect::schemas), then
/// [`tables`](Dialect::tables), then [`columns`](Dialect::columns) — each bounded by the
/// configured query timeout. They match names ignoring case and return them as the catalog
/// spells them; the skeleton picks the exact match, else the only one equal ignoring case.
/// Values in catalog queries are bound parameters, never spliced.
///
/// **Streams.** [`stream`](Dialect::stream) runs the skeleton's `SELECT` and appends its rows to
/// the read's [`Batcher`], yielding a batch whenever it is full and the rest at the end; an
/// `Err` item is the last. It may be called while another read's stream is alive: a database
/// that cannot read twice at once on its snapshot (MySQL) makes the second wait, never fails
/// it. Dropping a stream stops its query on the server, best effort, without blocking the drop,
/// and leaves the snapshot usable.
///
/// **Errors** are in the caller's terms (`crate::error`): never a value of a row, never a user
/// name or password; a value that cannot be decoded is [`Reading::undecodable`].
#[async_trait]
pub trait Dialect: Sized + Send + Sync + 'static {
    /// What the queries after [`Dialect::tables`] find a table by: PostgreSQL's `oid`; MySQL
    /// needs only the name (`()`).
    type Table: Send + Sync;

    /// The quote character of identifiers (`"` or `` ` ``), doubled inside a name.
    const QUOTE: char;

    /// Connects as `config` says (TLS per its options) and opens the package's snapshot.
    /// Returns the dialect and the snapshot's identity, as the package record names it. The
    /// host is already checked against the allow-list.
    async fn open(config: &SqlConfig) -> Result<(Self, String), SourceError>;

    /// The schemas whose names equal `name` ignoring case.
    async fn schemas(&self, name: &str) -> Result<Vec<String>, SourceError>;

    /// The tables (and views) of `schema` whose names equal `name` ignoring case.
    async fn tables(
        &self,
        schema: &str,
        name: &str,
    ) -> Result<Vec<Found<Self::Table>>, SourceError>;

    /// The columns of `schema`'s `table` in catalog order, each mapped by the database's type
    /// table, and its primary key's columns in key order.
    async fn columns(
        &self,
        schema: &str,
        table: &Found<Self::Table>,
    ) -> Result<(Vec<Column>, Vec<String>), SourceError>;

    /// Starts `read`: its rows, in batches (see the contract).
    async fn stream(&self, read: Read) -> Result<BatchStream, SourceError>;

    /// A query proving that the connection and the credentials work; reads no table.
    async fn check(&self) -> Result<(), SourceError>;
}

/// A table as the catalog lists it.
pub struct Found<K> {
    /// Its name, as the catalog spells it.
    pub(crate) name: String,
    /// What the next queries find it by ([`Dialect::Table`]).
    pub(crate) key: K,
    /// Its comment; `None` when it has none (or an empty one).
    pub(crate) comment: Option<String>,
}

/// A column as the catalog declares it, mapped by the database's type table.
pub struct Column {
    /// Its name, as the catalog spells it.
    pub(crate) name: String,
    /// Declared `NOT NULL`.
    pub(crate) not_null: bool,
    /// Its comment; `None` when it has none (or an empty one).
    pub(crate) comment: Option<String>,
    /// Its Unity Catalog type.
    pub(crate) uc: UcType,
    /// What the `SELECT` lists for it: the quoted name, cast where the database's own wire
    /// format is not what the decoder reads for `uc`.
    pub(crate) select: String,
}

impl Column {
    /// A column of a `D` catalog, its type mapped to `uc`; `read` turns the quoted name into
    /// what the `SELECT` lists (the name itself, or a cast of it).
    pub(crate) fn new<D: Dialect>(
        name: String,
        not_null: bool,
        comment: Option<String>,
        uc: UcType,
        read: impl FnOnce(String) -> String,
    ) -> Self {
        let select = read(quote(&name, D::QUOTE));
        Self {
            name,
            not_null,
            comment,
            uc,
            select,
        }
    }
}

/// A read the skeleton prepared for [`Dialect::stream`].
pub struct Read {
    /// `SELECT <columns> FROM <schema>.<table>`, every name quoted, the casts applied.
    pub(crate) select: String,
    /// Where the rows go: one builder per selected column.
    pub(crate) rows: Batcher,
    /// What the read's errors name.
    pub(crate) reading: Reading,
}

/// The table a read is of and its columns' names: what the read's errors name.
pub(crate) struct Reading {
    table: String,
    columns: Vec<String>,
}

impl Reading {
    /// A read of `table` (its full name) selecting `columns`, in order.
    pub(crate) fn new(table: String, columns: Vec<String>) -> Self {
        Self { table, columns }
    }

    /// What a failed query of the read names: ``reading `catalog.schema.table` ``.
    pub(crate) fn operation(&self) -> String {
        format!("reading `{}`", self.table)
    }

    /// A value that cannot be decoded: in `column` (by position; `None` for the row or the
    /// stream as a whole), saying `what` it holds, never the value.
    pub(crate) fn undecodable(&self, column: Option<usize>, what: &str) -> SourceError {
        match column.and_then(|i| self.columns.get(i)) {
            Some(name) => protocol(format!("column `{name}` of `{}` holds {what}", self.table)),
            None => protocol(format!("reading `{}`: {what}", self.table)),
        }
    }
}

/// Runs `query` within `after`; a failure or a timeout is named as met while `operation` on
/// `host`.
pub(crate) async fn timed<T, E: DriverError>(
    after: Duration,
    operation: &str,
    host: &str,
    query: impl Future<Output = Result<T, E>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(after, query).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.source_error(operation, host)),
        Err(_) => Err(SourceError::Timeout {
            operation: operation.to_owned(),
            after,
        }),
    }
}
