//! The [`Source`] trait — where approved tables are read from, as Arrow record batches. Its
//! implementations live in their own crates (`publish-databricks`), so a consumer of the trait
//! (the workflow) links no HTTP client.
//!
//! A source does two things for the workflow layer: it *describes* a table (resolving the
//! requested columns against the catalog, with the types Unity Catalog declares), and it *reads*
//! a described table as a stream of [`RecordBatch`]es whose Arrow types follow one fixed mapping,
//! [`publish_columns::arrow_type`], whatever the source sent over the wire (converted with
//! [`publish_columns::conform_columns`]). Sinks therefore only ever see
//! [`publish_columns::arrow_schema`] of a [`TableSchema`], and can be tested with the in-memory source
//! ([`memory::MemorySource`], feature `test-util`) instead of a warehouse.
//!
//! Every implementation is checked by the same suite, `conformance` (feature `test-util`):
//! the in-memory source here, the Databricks client against the local emulator in
//! `publish-databricks`. [`columns`] resolves requested columns against a catalog the way Unity
//! Catalog does, for every implementation.

use std::pin::Pin;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use futures::{Stream, TryStreamExt};
use publish_types::{Identifier, ObjectName, TableSchema};

pub mod columns;
mod error;
mod retries;

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;

pub use error::SourceError;
pub use retries::{RetryCause, RetryCounts};

/// What to read: a table and the approved columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRequest {
    /// Unity Catalog catalog.
    pub catalog: ObjectName,
    /// Schema within the catalog.
    pub schema: ObjectName,
    /// Table within the schema.
    pub table: ObjectName,
    /// The approved columns, in the order they must appear; `None` = all columns, in catalog
    /// order. Matched case-insensitively, as Unity Catalog does.
    pub columns: Option<Vec<Identifier>>,
}

impl TableRequest {
    /// `catalog.schema.table`, unquoted, for messages.
    pub fn full_name(&self) -> String {
        format!("{}.{}.{}", self.catalog, self.schema, self.table)
    }
}

/// The batches of a read, in table order. Each item is a batch or the error that ended the read;
/// nothing follows an error.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, SourceError>> + Send>>;

/// A started read: the Arrow schema every batch has (exactly the requested columns, in order,
/// typed as UC declares them — [`arrow_schema`](publish_columns::arrow_schema) of the described [`TableSchema`]) and the batches,
/// in table order.
pub struct TableStream {
    /// The schema of every batch.
    pub schema: SchemaRef,
    /// The batches.
    pub batches: BatchStream,
    /// Which snapshot of the table the batches come from, in the source's terms (e.g.
    /// `delta version 12`), recorded in the package record; `None` where the source cannot
    /// name one.
    pub snapshot: Option<String>,
    /// Why the read is not pinned to one snapshot, when the source refused to pin it (a
    /// governed table, a view: docs/DATABRICKS-WIRE.md §6.5); recorded in the package record.
    /// `None` when it is pinned, or when the source has no such notion.
    pub unpinned: Option<String>,
}

impl std::fmt::Debug for TableStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A place approved tables are read from.
///
/// # Contract
///
/// **Describe, then read.** [`describe`](Source::describe) resolves a [`TableRequest`] against
/// the catalog and returns the [`TableSchema`] of exactly the requested columns, in the requested
/// order, with their Unity Catalog types, nullability and comments. Column names are matched
/// case-insensitively (as Unity Catalog resolves them) and returned as the catalog spells them.
/// The declared primary key is kept only when every key column was requested (it is
/// informational: sources do not enforce it). [`read`](Source::read) takes such a schema —
/// possibly described earlier, or by another instance — and starts reading it.
///
/// **What a read yields.** Every batch has exactly the schema in [`TableStream::schema`], which
/// is [`arrow_schema`](publish_columns::arrow_schema) of the given [`TableSchema`]: implementations convert whatever physical
/// types their wire delivers (a decimal sent as text, a timestamp in zone `Etc/UTC`, nested
/// values as JSON) into the one mapping of [`arrow_type`](publish_columns::arrow_type), and never yield a batch that does not
/// match it. Batches come in table order; a read is one consistent query, not a union of
/// several. Batch sizes are the source's choice. A column declared NOT NULL that holds a null is
/// an error ([`SourceError::Protocol`]), not a silently nullable column.
///
/// **Bounded memory.** A read streams: an implementation holds a bounded number of batches
/// (configurable, independent of the table size) and fetches more only as the consumer polls.
/// A slow consumer slows the read down; it never makes it buffer the table.
///
/// **Errors end the stream.** An `Err` item is the last item. Implementations retry what is
/// safe to retry (throttling, dropped connections, expired links) before reporting, so an error
/// that reaches the caller is final for this read; [`SourceError::is_transient`] says whether
/// running the whole read again later may help.
///
/// **Cancellation.** Dropping the future of `read` or the [`TableStream`] before its end cancels
/// the remote work (for Databricks, the statement is cancelled) in the background, best effort,
/// without blocking the drop. Nothing needs to be closed after a stream has ended.
///
/// **Concurrency.** All methods take `&self` and may run concurrently, also several reads of
/// the same table; each read is independent. Implementations share credentials (for example one
/// cached access token) between calls.
///
/// **Errors mean:** `UnknownCatalog` / `UnknownSchema` / `UnknownTable` / `UnknownColumn` — a
/// requested name does not exist (the column error lists the available columns);
/// `DuplicateColumn` — two requested names are the same column; `NoColumns` — an empty column
/// list (which never means "all columns"); `Authentication` /
/// `PermissionDenied` — fix the credentials or grants; `InvalidConfig` — fix the
/// configuration (a source's host is admitted by the allow-list before it is built,
/// [`publish_types::AllowedHost`]); `Statement` — the source ran the query and it failed; `Unavailable` /
/// `Timeout` — the source is down or slow; `Rejected` / `Protocol` — the source answered
/// something unexpected (report it).
///
/// Conveniences built on these three methods live in [`SourceExt`], so a wrapper that forwards
/// the trait cannot forget one of them.
#[async_trait]
pub trait Source: Send + Sync {
    /// Resolves `table` against the catalog: the [`TableSchema`] of exactly the requested
    /// columns, in the requested order (all columns in catalog order when `columns` is `None`),
    /// with Unity Catalog types, nullability, comments and the declared primary key.
    ///
    /// Fails with `UnknownCatalog` / `UnknownSchema` / `UnknownTable` naming the missing object,
    /// or `UnknownColumn` naming the column and listing the available ones.
    async fn describe(&self, table: &TableRequest) -> Result<TableSchema, SourceError>;

    /// Starts reading a described table. The returned stream yields batches of
    /// [`arrow_schema`](publish_columns::arrow_schema)`(schema)`, in table order. Dropping it before its end cancels the remote
    /// work.
    async fn read(&self, schema: &TableSchema) -> Result<TableStream, SourceError>;

    /// For `/validate`: the credentials are accepted and the warehouse (or other compute) is
    /// reachable. Reads no table data.
    async fn check(&self) -> Result<(), SourceError>;
}

#[async_trait]
impl<S: Source + ?Sized> Source for std::sync::Arc<S> {
    async fn describe(&self, table: &TableRequest) -> Result<TableSchema, SourceError> {
        (**self).describe(table).await
    }

    async fn read(&self, schema: &TableSchema) -> Result<TableStream, SourceError> {
        (**self).read(schema).await
    }

    async fn check(&self) -> Result<(), SourceError> {
        (**self).check().await
    }
}

/// Conveniences over any [`Source`].
#[async_trait]
pub trait SourceExt: Source {
    /// Describes `table`, then starts reading it.
    async fn open(&self, table: &TableRequest) -> Result<(TableSchema, TableStream), SourceError> {
        let schema = self.describe(table).await?;
        let stream = self.read(&schema).await?;
        Ok((schema, stream))
    }

    /// Reads a described table into memory. Only for small tables and tests: this buffers the
    /// whole table, which [`Source::read`] exists to avoid.
    async fn read_to_vec(&self, schema: &TableSchema) -> Result<Vec<RecordBatch>, SourceError> {
        let stream = self.read(schema).await?;
        stream.batches.try_collect().await
    }
}

impl<S: Source + ?Sized> SourceExt for S {}
