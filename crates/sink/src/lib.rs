//! The [`Sink`] trait — where a package's tables are written — and the [`SinkFactory`] that
//! opens sinks. The DuckDB, CSV and Parquet implementations live in `publish-writers`, so a
//! consumer of the trait (the workflow) links no DuckDB; an in-memory implementation
//! ([`memory`]) and a protocol conformance suite ([`conformance`]) ship behind `test-util`.
//!
//! A sink turns a stream of Arrow record batches, one table after another, into the files a
//! researcher receives, under `<root>/data/outputs/` ([`OUTPUT_DIR`]). The batches are of
//! `publish_columns::arrow_schema` of their table: sources convert what their wire delivers,
//! sinks check that once per table and convert only what their format cannot hold as it is.
//!
//! # The call protocol, carried by types
//!
//! [`Sink::begin_table`] borrows the sink and returns the table being written, a
//! [`TableSink`], which can only be filled and then [finished](TableSink::finish) or
//! [abandoned](TableSink::abandon). While it lives the sink cannot be used, so a second table
//! cannot be begun and the sink cannot be finished with a table open:
//!
//! ```no_run
//! # use publish_sink::Sink;
//! # async fn f(mut sink: Box<dyn Sink>, t: &publish_types::TableSchema, s: arrow::datatypes::SchemaRef) {
//! let table = sink.begin_table(t, s).await.unwrap();
//! table.finish().await.unwrap();
//! let files = sink.finish().await; // fine: the table is finished
//! # }
//! ```
//!
//! but not:
//!
//! ```compile_fail,E0505
//! # use publish_sink::Sink;
//! # async fn f(mut sink: Box<dyn Sink>, t: &publish_types::TableSchema, s: arrow::datatypes::SchemaRef) {
//! let table = sink.begin_table(t, s).await.unwrap();
//! let files = sink.finish().await; // error: `sink` is borrowed by `table`
//! table.finish().await;
//! # }
//! ```

pub mod database;
mod error;

#[cfg(feature = "test-util")]
pub mod conformance;
#[cfg(feature = "test-util")]
pub mod memory;

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use publish_hash::{FileDigest, HashAlgorithm};
use publish_types::{OutputFormat, TableRef, TableSchema};

pub use database::{DatabaseDestination, DatasetLoad, LoadedTable, LockedProject};
pub use error::SinkError;

/// The folder, relative to a sink's root, that every output file lands in.
pub const OUTPUT_DIR: &str = "data/outputs";

/// Writes extracted tables into a fresh output directory.
///
/// The workflow passes a temporary directory inside staging as `root` (see
/// [`SinkFactory::open`]); the sink writes only under `<root>/data/outputs/`.
///
/// # Call order
///
/// `(begin_table, write_batch*, finish)*` on the tables one after another, then `finish` of the
/// sink once. The order is carried by the types (see the crate documentation); nothing is
/// checked at run time. A sink is `Send` and may move between threads between calls.
///
/// # Atomicity
///
/// A sink does **not** make its output atomic: while it runs, and after an error, the directory
/// holds partial files. The caller writes into a temporary directory and renames it into place
/// only after `finish` succeeded, and deletes it otherwise. The sink does not retry and is not
/// idempotent: a table can be written once per sink ([`SinkError::TableExists`]).
///
/// # Errors
///
/// [`TableSink::write_batch`] may return before the batch is written (implementations may
/// queue it to a writer thread), so a write error can surface from a later `write_batch` or, at
/// the latest, from [`TableSink::finish`]. After any error, and after a table was abandoned,
/// the sink is unusable and every further call returns [`SinkError::Failed`]; the first error
/// is the one to report.
///
/// # Cancellation and drop
///
/// Dropping a sink or a table at any point (also a future of one of their methods) neither
/// blocks nor panics. Work still running in the background may flush or close files, always
/// inside `root`; the caller may delete `root` at any time.
#[async_trait]
pub trait Sink: Send {
    /// Starts a table: creates it from the declared Unity Catalog schema and the Arrow schema
    /// that every batch of it will have, which must be `publish_columns::arrow_schema(table)`.
    ///
    /// Fails with [`SinkError::SchemaMismatch`] when `arrow` is not that schema, and with
    /// [`SinkError::TableExists`] when the table was already written.
    async fn begin_table<'s>(
        &'s mut self,
        table: &TableSchema,
        arrow: SchemaRef,
    ) -> Result<Box<dyn TableSink + 's>, SinkError>;

    /// Closes every file: databases checkpointed and closed, files flushed and fsynced. Returns
    /// the files written, relative to the root, `/`-separated and sorted by path (e.g.
    /// `data/outputs/database.duckdb`), each with the digest of the bytes written to it where
    /// the sink could take it while writing (files written in order), `None` where it could not
    /// (a database, written out of order).
    async fn finish(self: Box<Self>) -> Result<Vec<WrittenFile>, SinkError>;
}

/// One table being written: filled with batches, then finished or abandoned.
#[async_trait]
pub trait TableSink: Send {
    /// Appends one batch. Fails with [`SinkError::SchemaMismatch`] when it does not have the
    /// Arrow schema the table was begun with, and with [`SinkError::NullInNotNull`] when a
    /// NOT NULL column holds a null.
    ///
    /// May return before the batch is durably written; any write error surfaces at the latest
    /// from [`TableSink::finish`].
    async fn write_batch(&mut self, batch: RecordBatch) -> Result<(), SinkError>;

    /// Ends the table once everything written has reached its file; returns the rows and bytes
    /// written. The sink can then begin the next table or be finished.
    async fn finish(self: Box<Self>) -> Result<TableStats, SinkError>;

    /// Gives the table up: the sink becomes unusable ([`SinkError::Failed`]) and its output is
    /// to be discarded. Dropping the table does the same.
    fn abandon(self: Box<Self>) {}
}

/// Where a sink writes: a fresh output, or one that already holds other datasets' tables.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// Nothing under `<root>/data/outputs` yet (shared files must not exist).
    Fresh,
    /// `<root>/data/outputs` already holds what the project's other datasets staged (CR8TOR
    /// packages each dataset of a project separately, into one output), including the shared
    /// files ([`SinkFactory::shared_files`]). The tables in `replace` (what the same dataset
    /// staged before) are removed from the shared files first; files of single tables are
    /// never overwritten (they are created exclusively).
    Adding {
        /// Tables the same dataset staged before, to drop from the shared files.
        replace: &'a [TableRef],
    },
}

/// Opens the sinks of packages. The server passes the writers of `publish-writers`; tests and
/// other services pass their own (e.g. [`memory::MemorySinks`]).
pub trait SinkFactory: Send + Sync {
    /// The files, relative to a sink's root, that every dataset of a project writes into
    /// together in `format` (for DuckDB, the one database file); empty where each table has
    /// files of its own. The storage carries them from one package of a project to the next.
    fn shared_files(&self, format: OutputFormat) -> Vec<String>;

    /// Opens a sink writing `format` under `<root>/data/outputs/`. `root` must exist; the
    /// output folders are created. A sink that hashes what it writes (as CSV and Parquet files
    /// are hashed while written) hashes with `digest`, the one algorithm the caller configured;
    /// a [`WrittenFile::digest`] in another algorithm is a broken sink. Does blocking
    /// file-system work, which takes milliseconds.
    fn open(
        &self,
        format: OutputFormat,
        root: &Path,
        output: Output<'_>,
        digest: HashAlgorithm,
    ) -> Result<Box<dyn Sink>, SinkError>;
}

/// The state every sink keeps to follow the [`Sink`] protocol, so that each implementation
/// opens a table the same way: a failed sink refuses everything ([`SinkError::Failed`]); from
/// the moment a table begins until it finishes the sink counts as failed, so a table that
/// errs, is abandoned or is dropped leaves the sink failed without more bookkeeping; and each
/// table is written once, names compared case-insensitively, as DuckDB and case-insensitive
/// filesystems compare them.
#[derive(Debug, Default)]
pub struct SinkProtocol {
    begun: std::collections::HashSet<(String, String)>,
    failed: bool,
}

impl SinkProtocol {
    /// Begins `table`: [`SinkError::Failed`] when the sink has failed (or a table of it never
    /// finished), [`SinkError::TableExists`] when `table` was begun before. From here the sink
    /// counts as failed until [`SinkProtocol::table_finished`].
    pub fn begin_table(&mut self, table: &TableSchema) -> Result<(), SinkError> {
        self.check()?;
        self.failed = true;
        let key = (
            table.schema.as_str().to_lowercase(),
            table.table.as_str().to_lowercase(),
        );
        if self.begun.insert(key) {
            Ok(())
        } else {
            Err(SinkError::TableExists {
                schema: table.schema.to_string(),
                table: table.table.to_string(),
            })
        }
    }

    /// [`SinkProtocol::begin_table`], then the table's [`OutputPlan`](publish_columns::OutputPlan)
    /// for a file `format`, which the file sinks write by.
    pub fn begin_file_table(
        &mut self,
        table: &TableSchema,
        arrow: SchemaRef,
        format: OutputFormat,
    ) -> Result<publish_columns::OutputPlan, SinkError> {
        self.begin_table(table)?;
        publish_columns::OutputPlan::new(table, arrow, format)
            .map_err(|e| SinkError::plan(table, e))
    }

    /// The table begun last finished completely: the sink may go on.
    pub fn table_finished(&mut self) {
        self.failed = false;
    }

    /// [`SinkError::Failed`] when the sink has failed or a table is still open.
    pub fn check(&self) -> Result<(), SinkError> {
        if self.failed {
            Err(SinkError::Failed)
        } else {
            Ok(())
        }
    }

    /// Ends the sink: [`SinkProtocol::check`], after which the sink refuses everything.
    pub fn finish(&mut self) -> Result<(), SinkError> {
        self.check()?;
        self.failed = true;
        Ok(())
    }
}

/// One file a sink wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Relative to the sink's root, `/`-separated.
    pub path: String,
    /// The digest of every byte written to it, taken while writing with the algorithm the sink
    /// was opened with; `None` when the format writes out of order (DuckDB).
    pub digest: Option<FileDigest>,
}

/// What one table amounted to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Rows written.
    pub rows: u64,
    /// Bytes of Arrow data in the batches received ([`batch_bytes`]), a measure of the data
    /// moved, not of the file size.
    pub bytes: u64,
}

impl TableStats {
    /// Counts one batch.
    pub fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        self.bytes += batch_bytes(batch);
    }
}

/// Bytes of Arrow data a batch holds: the slices its columns actually cover. Unlike
/// `RecordBatch::get_array_memory_size`, this does not count a buffer shared by several
/// columns (as after decoding one Arrow IPC message) once per column, nor the unused rest of a
/// sliced buffer. The one definition of "bytes" in progress logs and [`TableStats`].
pub fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size()) as u64
        })
        .sum()
}
