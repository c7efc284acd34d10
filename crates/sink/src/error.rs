//! The one error type of this crate, in the caller's terms.

use std::io;
use std::path::PathBuf;

/// Why a [`Sink`](crate::Sink) could not write what it was given.
///
/// Every error leaves the sink unusable: later calls return [`SinkError::Failed`], and the
/// caller should drop the sink and discard its output directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The same table was begun twice in one package (names compared case-insensitively, as
    /// DuckDB compares them), or its file already exists.
    #[error(
        "table `{schema}.{table}` was already written to this output; each table is written once"
    )]
    TableExists {
        /// Output schema (folder) name.
        schema: String,
        /// Table name.
        table: String,
    },
    /// The output location already holds a result; sinks only write into a fresh directory.
    #[error("{} already exists; a sink writes only into a fresh directory", path.display())]
    OutputExists {
        /// The file that is in the way.
        path: PathBuf,
    },
    /// A column's declared type (with the Arrow type it arrives as) cannot be written in this
    /// output format.
    #[error(
        "column `{column}` of table `{table}` has type {type_text}, which cannot be written: {detail}"
    )]
    UnsupportedType {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// The Unity Catalog type text.
        type_text: String,
        /// What is wrong, naming the Arrow type it arrived as.
        detail: String,
    },
    /// The declared table schema and the Arrow schema disagree, or a batch does not have the
    /// Arrow schema given to `begin_table`.
    #[error("table `{table}`: {detail}")]
    SchemaMismatch {
        /// Table name.
        table: String,
        /// What differs.
        detail: String,
    },
    /// A column declared NOT NULL received a null.
    #[error("column `{column}` of table `{table}` is NOT NULL but a batch holds a null in it")]
    NullInNotNull {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// A value could not be converted to the declared type (for example JSON text that does not
    /// match a declared STRUCT, or a timestamp outside the representable range).
    #[error("column `{column}` of table `{table}`: {detail}")]
    InvalidValue {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// What is wrong with the value.
        detail: String,
    },
    /// An earlier call failed, which left the sink unusable.
    #[error("the sink stopped after an earlier error; discard its output and start again")]
    Failed,
    /// Reading or writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// DuckDB reported an error.
    #[error("DuckDB: {message}")]
    DuckDb {
        /// DuckDB's message.
        message: String,
    },
    /// The CSV or Parquet encoder reported an error.
    #[error("writing {format} failed: {message}")]
    Encode {
        /// `csv` or `parquet`.
        format: &'static str,
        /// The encoder's message.
        message: String,
    },
    /// Another operation holds the lock of this project run in a database destination.
    #[error(
        "another operation on project {project} ({start}) is running; try again when it has \
         finished"
    )]
    Busy {
        /// The project name.
        project: String,
        /// Its start time.
        start: String,
    },
    /// A table another dataset of the project run already loaded into a database destination.
    #[error(
        "table `{table}` was already loaded by dataset {claimed_by:?} of this project; dataset \
         {dataset:?} cannot load it too"
    )]
    TableClaimed {
        /// `schema.table` as requested.
        table: String,
        /// The dataset being loaded.
        dataset: String,
        /// The dataset that loaded it.
        claimed_by: String,
    },
    /// A name the destination cannot hold (e.g. longer than PostgreSQL's 63-byte limit).
    #[error("{what} `{name}` cannot be used in the destination: {detail}")]
    InvalidName {
        /// What the name is of, e.g. `schema` or `table`.
        what: &'static str,
        /// The name.
        name: String,
        /// Why, naming the limit.
        detail: String,
    },
    /// The destination database refused or failed (never carries a password or a value).
    #[error("the destination database failed while {operation}: {message}")]
    Database {
        /// What was being done, e.g. `creating schema pr004_…`.
        operation: String,
        /// The database's message.
        message: String,
    },
    /// The writer thread stopped unexpectedly: a bug in this crate or a library it uses.
    #[error("internal error in the output writer: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

impl SinkError {
    /// True when writing failed because the volume (or a quota) is full.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Self::Io { source, .. } => publish_fs::is_out_of_space(source),
            Self::DuckDb { message } | Self::Encode { message, .. } => {
                publish_fs::text_is_out_of_space(message)
            }
            _ => false,
        }
    }

    /// A [`SinkError::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// The error of `table` for a refusal of its [`publish_columns::OutputPlan`].
    pub fn plan(table: &publish_types::TableSchema, e: publish_columns::PlanError) -> Self {
        let table = table.table.to_string();
        match e {
            publish_columns::PlanError::SchemaMismatch(detail) => {
                Self::SchemaMismatch { table, detail }
            }
            publish_columns::PlanError::InvalidValue { column, detail } => Self::InvalidValue {
                table,
                column,
                detail,
            },
            publish_columns::PlanError::NullInNotNull { column } => {
                Self::NullInNotNull { table, column }
            }
        }
    }

    /// A [`SinkError::DuckDb`] with DuckDB's message.
    pub fn duckdb(err: impl std::fmt::Display) -> Self {
        Self::DuckDb {
            message: err.to_string(),
        }
    }
}
