//! The DuckDB, CSV and Parquet implementations of [`publish_sink::Sink`], opened by [`Writers`].
//!
//! A sink turns a stream of Arrow record batches, one table after another, into the files a
//! researcher receives, under `<root>/data/outputs/`:
//!
//! | format | files |
//! |---|---|
//! | `OutputFormat::Duckdb` | `data/outputs/database.duckdb`, one schema per Unity Catalog schema |
//! | `OutputFormat::Csv` | `data/outputs/<schema>/<table>.csv` |
//! | `OutputFormat::Parquet` | `data/outputs/<schema>/<table>.parquet` |
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
//! # Types
//!
//! Each column's Unity Catalog type decides the output type; the mapping, and the conversion
//! of each batch for each format, belong to `publish-columns` (its crate documentation has the
//! table). Batches arrive of `publish_columns::arrow_schema` of their table; the writer checks
//! that once per table (`publish_columns::OutputPlan`) and converts only what the format
//! cannot hold as it is. DuckDB stores TIMESTAMPTZ as UTC microseconds (no ICU extension
//! needed).
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

mod csv_file;
mod database;
mod duckdb_ffi;
mod files;
mod parquet_file;
mod regroup;
mod worker;

pub use worker::wait_for_writers;

#[cfg(feature = "test-util")]
pub mod conformance;

use std::path::{Path, PathBuf};

use publish_hash::HashAlgorithm;
use publish_sink::{OUTPUT_DIR, Output, Sink, SinkError, SinkFactory};
use publish_types::{OutputFormat, TableRef};

/// The DuckDB database file, relative to a sink's root: the one file every dataset of a
/// project writes into together.
pub const DUCKDB_FILE: &str = "data/outputs/database.duckdb";

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
            shared_duckdb: None,
        }
    }
}

/// The [`SinkFactory`] of the service: DuckDB, CSV and Parquet writers with one set of
/// [`SinkOptions`].
#[derive(Debug, Clone, Default)]
pub struct Writers {
    options: SinkOptions,
}

impl Writers {
    /// Writers with `options`.
    pub fn new(options: SinkOptions) -> Self {
        Self { options }
    }
}

impl SinkFactory for Writers {
    fn shared_files(&self, format: OutputFormat) -> Vec<String> {
        match format {
            OutputFormat::Duckdb => vec![DUCKDB_FILE.to_owned()],
            OutputFormat::Csv | OutputFormat::Parquet | OutputFormat::Sql => Vec::new(),
        }
    }

    /// Fails with [`SinkError::OutputExists`] when a fresh DuckDB output's file already exists.
    /// Adding to DuckDB needs `data/outputs/database.duckdb`: the replaced tables are dropped
    /// from it first, with the schemas they leave empty, in one transaction.
    fn open(
        &self,
        format: OutputFormat,
        root: &Path,
        output: Output<'_>,
        digest: HashAlgorithm,
    ) -> Result<Box<dyn Sink>, SinkError> {
        let adding = match output {
            Output::Fresh => None,
            Output::Adding { replace } => Some(replace),
        };
        open(format, root, &self.options, adding, digest)
    }
}

fn open(
    format: OutputFormat,
    root: &Path,
    options: &SinkOptions,
    adding: Option<&[TableRef]>,
    digest: HashAlgorithm,
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
            let writer = csv_file::CsvWriter::new(root, digest);
            worker::spawn("csv", depth, move || Ok(writer))
        }
        OutputFormat::Parquet => {
            let writer = parquet_file::ParquetWriter::new(root, digest);
            worker::spawn("parquet", depth, move || Ok(writer))
        }
        // The database destination is not written into files (publish-sql loads it).
        OutputFormat::Sql => Err(SinkError::Internal {
            message: "`sql` is the postgresql destination's format, not a file format".into(),
        }),
    }
}
