//! The [`Sink`] trait and its DuckDB, CSV and Parquet writers.
//!
//! A sink turns a stream of Arrow record batches, one table after another, into the files a
//! researcher receives, under `<root>/data/outputs/`:
//!
//! | format | files |
//! |---|---|
//! | [`OutputFormat::Duckdb`] | `data/outputs/database.duckdb`, one schema per Unity Catalog schema |
//! | [`OutputFormat::Csv`] | `data/outputs/<schema>/<table>.csv` |
//! | [`OutputFormat::Parquet`] | `data/outputs/<schema>/<table>.parquet` |
//!
//! Nothing else is written into the user's files: no bookkeeping tables, no extra columns.
//!
//! # Design
//!
//! Writing is blocking work (DuckDB is synchronous; files are written with `std::fs`), so every
//! sink owns one dedicated writer thread, fed through a bounded channel of
//! [`SinkOptions::queue_depth`] batches. `write_batch` returns as soon as the batch is queued,
//! which lets the next download overlap the write of the previous batch, while the bound keeps
//! memory at a few batches whatever the table size. All DuckDB calls live in `database.rs`
//! (and the raw C API calls the duckdb crate lacks in `duckdb_ffi.rs`): DuckDB reads each
//! table's batches through its own Arrow scan, converting them on its own threads.
//!
//! Each column's Unity Catalog type decides the output type; the Arrow type it arrives as only
//! decides how to get there. Where the Arrow type differs from the canonical one below, the
//! column is converted with Arrow's own kernels (`arrow::compute::cast` with overflow checks, or
//! arrow-json for JSON text). Values are never touched one by one on the path of ordinary
//! columns.
//!
//! # Type mapping
//!
//! | Unity Catalog | Arrow (canonical) | DuckDB | Parquet | CSV |
//! |---|---|---|---|---|
//! | BOOLEAN | Boolean | BOOLEAN | BOOLEAN | `true` / `false` |
//! | TINYINT, SMALLINT, INT, BIGINT | Int8 … Int64 | TINYINT … BIGINT | INT32 / INT64 with int logical type | digits |
//! | FLOAT, DOUBLE | Float32, Float64 | FLOAT, DOUBLE | FLOAT, DOUBLE | shortest round-trip text, `NaN`, `inf` |
//! | DECIMAL(p,s) | Decimal128(p,s) | DECIMAL(p,s) (p ≤ 38) | DECIMAL(p,s) | exact, with `s` digits after the point |
//! | STRING, CHAR(n), VARCHAR(n) | Utf8 | VARCHAR | BYTE_ARRAY UTF8 | text |
//! | BINARY | Binary | BLOB | BYTE_ARRAY | lowercase hex, no prefix |
//! | DATE | Date32 | DATE | DATE | `2024-01-31` |
//! | TIMESTAMP | Timestamp(µs, "+00:00") | TIMESTAMPTZ | TIMESTAMP(MICROS, UTC-adjusted) | `2024-01-31T12:00:00.5Z` |
//! | TIMESTAMP_NTZ | Timestamp(µs) | TIMESTAMP | TIMESTAMP(MICROS, not adjusted) | `2024-01-31T12:00:00.5` |
//! | ARRAY\<T\> | List | `T[]` | LIST | JSON text |
//! | MAP\<K,V\> | Map | MAP(K, V) | MAP | JSON object text, keys as strings |
//! | STRUCT\<…\> | Struct | STRUCT(…) | group | JSON object text |
//! | INTERVAL YEAR TO MONTH | Interval(YearMonth) | INTERVAL | INTERVAL | ISO 8601, `P1Y2M`, `-P0Y1M` |
//! | INTERVAL DAY TO SECOND | Duration(µs) | INTERVAL | INT64 (Arrow Duration in the embedded Arrow schema) | ISO 8601, `PT93784.000005S` |
//! | VARIANT, anything else | Utf8 (JSON text) | VARCHAR | BYTE_ARRAY UTF8 | text |
//!
//! * TIMESTAMP values are instants: whatever zone the batch carries (Databricks sends its
//!   session zone, e.g. `Etc/UTC`), the output holds the same instant in UTC. UTC is spelled
//!   `+00:00` in Arrow and in the Arrow schema embedded in Parquet, because Arrow built without
//!   `chrono-tz` cannot format named zones. DuckDB stores TIMESTAMPTZ as UTC microseconds (no
//!   ICU extension needed).
//! * DuckDB: the children of a NULL struct are written as NULL (Arrow leaves them undefined;
//!   DuckDB would otherwise return them through `s.field`).
//! * Nested values that arrive as JSON text (Databricks can send them so) are parsed into the
//!   native nested types for DuckDB and Parquet, and written as they are to CSV. Nested values
//!   that arrive natively are written to CSV as JSON text (arrow-json: binary as hex strings,
//!   timestamps as strings, map keys converted to strings).
//! * VARIANT and unknown types (and nested values of those inside a STRUCT/ARRAY/MAP) are text.
//!   A VARIANT that arrives as anything but text is written as its JSON text.
//! * Intervals that arrive as text stay text (VARCHAR in DuckDB).
//!
//! # Constraints, comments and keys
//!
//! * NOT NULL is kept: DuckDB columns are created `NOT NULL`, Parquet columns are `REQUIRED`,
//!   and every sink rejects a batch with a null in such a column ([`SinkError::NullInNotNull`]).
//!   DuckDB has no NOT NULL on STRUCT fields; there the flag lives only in Parquet.
//! * Primary keys are **recorded, not enforced**. Databricks primary keys are informational and
//!   unenforced, so the data may hold duplicates; an enforced DuckDB `PRIMARY KEY` would fail
//!   the load on them and slow it down. The DuckDB table comment holds the Unity Catalog table
//!   comment followed by a line `primary key: (a, b)` (names double-quoted where SQL needs it).
//! * Column comments come from Unity Catalog (`COMMENT ON COLUMN`). CHAR(n) and VARCHAR(n)
//!   become VARCHAR (DuckDB ignores lengths anyway); the declared type is kept as a line
//!   `declared type: char(n)` in the column comment.
//! * CSV and Parquet files carry no comments or keys.
//!
//! # CSV dialect
//!
//! RFC 4180 quoting (fields with `,`, `"`, CR or LF are quoted, quotes doubled), a header row of
//! column names, `\n` line ends, UTF-8. NULL is an empty field; an empty string is also written
//! as an empty field, so CSV cannot tell the two apart (use DuckDB or Parquet when it matters).

mod convert;
mod csv_file;
mod database;
mod duckdb_ffi;
mod error;
mod files;
mod parquet_file;
mod worker;

#[cfg(feature = "test-util")]
pub mod conformance;

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

pub use error::SinkError;
pub use publish_hash::{FileDigest, HashAlgorithm};
pub use publish_types::{OutputFormat, TableRef, TableSchema};

/// The folder, relative to a sink's root, that every output file lands in.
pub const OUTPUT_DIR: &str = "data/outputs";

/// The DuckDB database file, relative to a sink's root.
pub const DUCKDB_FILE: &str = "data/outputs/database.duckdb";

/// Writes extracted tables into a fresh output directory.
///
/// The workflow passes a temporary directory inside staging as `root` (see [`open_sink`]); the
/// sink writes only under `<root>/data/outputs/`.
///
/// # Call order
///
/// `(begin_table, write_batch*, finish_table)*, finish` — tables one after another, each one
/// begun, filled with zero or more batches and finished before the next is begun; then
/// `finish` once. A call out of this order returns [`SinkError::OutOfOrder`] and changes
/// nothing. The methods take `&mut self`, so they cannot be called concurrently; a sink is
/// `Send` and may move between threads between calls.
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
/// `write_batch` may return before the batch is written (it is queued to the writer thread),
/// so a write error can surface from a later `write_batch` or, at the latest, from
/// `finish_table`. After any error other than [`SinkError::OutOfOrder`] the sink is unusable
/// and every further call returns [`SinkError::Failed`]; the first error is the one to report.
/// (`finish` consumes the sink, so after its `OutOfOrder` the sink is gone too.)
///
/// # Cancellation and drop
///
/// Dropping a sink at any point (also mid-table, or a future of one of its methods) neither
/// blocks nor panics: the writer thread sees the channel close, drops what it holds and ends on
/// its own. Until it has ended it may still flush or close files, always inside `root`; the
/// caller may delete `root` at any time.
#[async_trait]
pub trait Sink: Send {
    /// Starts a table: creates it from the declared Unity Catalog schema and the Arrow schema
    /// that every batch of it will have (same columns, in order).
    ///
    /// Fails with [`SinkError::UnsupportedType`] or [`SinkError::SchemaMismatch`] when a column
    /// cannot be written, and with [`SinkError::TableExists`] when the table was already written.
    async fn begin_table(&mut self, table: &TableSchema, arrow: SchemaRef)
    -> Result<(), SinkError>;

    /// Appends one batch to the current table.
    ///
    /// May return before the batch is durably written (it waits only for room in the bounded
    /// queue); any write error surfaces at the latest from [`Sink::finish_table`].
    async fn write_batch(&mut self, batch: RecordBatch) -> Result<(), SinkError>;

    /// Ends the current table once everything queued has been written; returns the rows and
    /// bytes written.
    async fn finish_table(&mut self) -> Result<TableStats, SinkError>;

    /// Closes every file: DuckDB checkpointed and closed, files flushed and fsynced. Returns the
    /// files written, relative to the root, `/`-separated and sorted by path (e.g.
    /// `data/outputs/database.duckdb`), each with the digest
    /// ([`SinkOptions::digest_algorithm`]) of the bytes written to it where the sink could take
    /// it while writing (CSV and Parquet, written in order), `None` where it could not (DuckDB,
    /// which writes its file out of order).
    async fn finish(self: Box<Self>) -> Result<Vec<WrittenFile>, SinkError>;
}

/// One file a sink wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Relative to the sink's root, `/`-separated.
    pub path: String,
    /// The digest of every byte written to it, taken while writing; `None` when the format
    /// writes out of order (DuckDB).
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

/// Tuning of a sink. Only the DuckDB sink reads the `duckdb_*` fields and `scratch_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// Where DuckDB spills when a load exceeds its memory limit. A sink with an instance of its
    /// own spills into a subfolder of its own here (`<root>/.duckdb_tmp` when `None`), removed
    /// when the sink ends; a [`SharedDuckDb`] uses this folder itself as its `temp_directory`.
    pub scratch_dir: Option<PathBuf>,
    /// DuckDB's `threads`; `None` keeps DuckDB's default (the number of cores).
    pub duckdb_threads: Option<usize>,
    /// DuckDB's `memory_limit`, e.g. `"2GB"`; `None` keeps DuckDB's default (80% of RAM).
    pub duckdb_memory_limit: Option<String>,
    /// How many batches may wait for the writer thread (at least 1 is used).
    pub queue_depth: usize,
    /// The digest CSV and Parquet files are hashed with while they are written.
    pub digest_algorithm: HashAlgorithm,
    /// One DuckDB instance for every DuckDB sink opened with these options, so that
    /// concurrent packages share one `memory_limit` and one thread pool instead of each
    /// getting their own. `None`: each sink opens its own instance with the settings above.
    pub shared_duckdb: Option<SharedDuckDb>,
}

/// A DuckDB instance that DuckDB sinks share ([`SinkOptions::shared_duckdb`]). Each sink
/// attaches its own file to it and detaches it when done or dropped. Cloning shares.
#[derive(Clone)]
pub struct SharedDuckDb(std::sync::Arc<duckdb_ffi::Database>);

impl SharedDuckDb {
    /// Opens an in-memory instance with `options`' `duckdb_threads` and `duckdb_memory_limit`
    /// (for all sinks together) and `scratch_dir` as its `temp_directory` (the system temp
    /// folder when `None`); extension autoinstall and autoload are off. Fails when DuckDB
    /// rejects a setting, e.g. a malformed memory limit.
    pub fn open(options: &SinkOptions) -> Result<Self, SinkError> {
        database::open_shared(options).map(|db| Self(std::sync::Arc::new(db)))
    }

    pub(crate) fn database(&self) -> std::sync::Arc<duckdb_ffi::Database> {
        std::sync::Arc::clone(&self.0)
    }
}

impl std::fmt::Debug for SharedDuckDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedDuckDb")
    }
}

/// Two handles are equal when they share the same instance.
impl PartialEq for SharedDuckDb {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedDuckDb {}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            scratch_dir: None,
            duckdb_threads: None,
            duckdb_memory_limit: None,
            queue_depth: 1,
            digest_algorithm: HashAlgorithm::Sha512,
            shared_duckdb: None,
        }
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

/// Opens a sink writing `format` under `<root>/data/outputs/`.
///
/// `root` must exist; the output folders are created. Fails with [`SinkError::OutputExists`]
/// when the DuckDB file already exists. This does blocking file-system work (and, for DuckDB,
/// creates the database), which takes milliseconds.
pub fn open_sink(
    format: OutputFormat,
    root: &Path,
    options: &SinkOptions,
) -> Result<Box<dyn Sink>, SinkError> {
    open(format, root, options, None)
}

/// Opens a sink that adds tables to the output already under `root` — what the other datasets
/// of a project staged (CR8TOR packages each dataset of a project separately, into one output).
///
/// For DuckDB, `data/outputs/database.duckdb` must exist; the tables in `replace` (what the same
/// dataset staged before) are dropped from it first, with the schemas they leave empty, in one
/// transaction, and the new tables are added beside the others. CSV and Parquet files of other
/// tables are left as they are; `replace` must not name a file that exists (files are created
/// exclusively). The output is no more atomic than with [`open_sink`]: the caller works on a
/// private copy (see the storage crate's carried files).
pub fn open_sink_adding(
    format: OutputFormat,
    root: &Path,
    options: &SinkOptions,
    replace: &[TableRef],
) -> Result<Box<dyn Sink>, SinkError> {
    open(format, root, options, Some(replace))
}

fn open(
    format: OutputFormat,
    root: &Path,
    options: &SinkOptions,
    adding: Option<&[TableRef]>,
) -> Result<Box<dyn Sink>, SinkError> {
    let out = root.join(OUTPUT_DIR);
    std::fs::create_dir_all(&out).map_err(|e| SinkError::io(&out, e))?;
    let depth = options.queue_depth.max(1);
    match format {
        OutputFormat::Duckdb => {
            let root = root.to_path_buf();
            let options = options.clone();
            let adding = adding.map(<[TableRef]>::to_vec);
            worker::spawn("duckdb", depth, move || {
                database::DuckDbWriter::open(&root, &options, adding.as_deref())
            })
        }
        OutputFormat::Csv => {
            let writer = csv_file::CsvWriter::new(root, options.digest_algorithm);
            worker::spawn("csv", depth, move || Ok(writer))
        }
        OutputFormat::Parquet => {
            let writer = parquet_file::ParquetWriter::new(root, options.digest_algorithm);
            worker::spawn("parquet", depth, move || Ok(writer))
        }
    }
}
