//! Destinations that are databases rather than files: the PostgreSQL destination that
//! DataSHIELD (OBiBa Opal) reads (docs/CONTRACT.md §4.5). The implementation lives in
//! `publish-sql`; the workflow sees only these traits, so it links no database driver.
//!
//! A package loads one dataset of a project run. Its tables go through the ordinary [`Sink`]
//! protocol into a private place of the database nobody reads, and [`LockedProject::commit`]
//! then makes them visible at once, in one transaction: the dataset's previous tables are
//! replaced, the project's other datasets are kept, the read-only role is granted exactly what
//! it needs to read them. Until that commit nothing the researchers see has changed; a package
//! that fails or is dropped at any point leaves the previous tables as they were, and what an
//! interrupted one left behind is removed by the next operation on the project run.
//!
//! # Call order
//!
//! ```text
//! destination.lock(project, start)          the project run's lock (SinkError::Busy if held)
//!   ├── locked.load(dataset) -> sink        a private place for the dataset's tables
//!   │     └── (begin_table, write_batch*, finish)* then sink.finish()
//!   ├── locked.commit()                     the one transaction that makes them visible
//!   └── locked.tables()                     what every dataset of the run committed (publish)
//! ```
//!
//! The sink borrows the locked project, so the project cannot be committed while a table is
//! being written; committing before the sink finished, or twice, is [`SinkError::Failed`].

use async_trait::async_trait;
use publish_types::{ObjectName, ProjectName, StartTime, TableRef, TableSchema};

use crate::{Sink, SinkError};

/// One dataset of a project run, as a package loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetLoad {
    /// The dataset's id among the project's datasets: its `name`, else its `schema_name`.
    pub id: String,
    /// The dataset's source schema (`schema_name`), which names its database schema.
    pub schema_name: ObjectName,
    /// The tables it loads, in request order.
    pub tables: Vec<TableRef>,
}

/// A table as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedTable {
    /// The database schema, e.g. `pr004_20250205_010101_cohort`.
    pub schema: String,
    /// The table's name in it, as the source names it.
    pub table: String,
    /// The dataset that loaded it.
    pub dataset: String,
    /// Rows loaded.
    pub rows: u64,
}

impl LoadedTable {
    /// `<schema>.<table>`, as the package answer names it.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// A database destination: opens project runs for loading and publishing.
#[async_trait]
pub trait DatabaseDestination: Send + Sync {
    /// The schema a dataset's tables land in, after checking every name of `dataset` the
    /// database must hold — the schema's and the tables' (a name it cannot hold, e.g. longer
    /// than PostgreSQL's 63 bytes, is [`SinkError::InvalidName`] naming it and the limit).
    /// Pure: contacts nothing, so the workflow calls it before anything is read. Column names
    /// are not in a [`DatasetLoad`]; [`Sink::begin_table`] checks them, before creating
    /// anything, with the same error.
    fn plan(
        &self,
        project: &ProjectName,
        start: &StartTime,
        dataset: &DatasetLoad,
    ) -> Result<String, SinkError>;

    /// Checks that the destination can hold every column name of a described table
    /// ([`SinkError::InvalidName`] naming it and the limit). Pure, like [`Self::plan`]: the
    /// workflow calls it once the tables are described, before any row is read.
    fn check_columns(&self, table: &TableSchema) -> Result<(), SinkError>;

    /// Takes the lock of one project run, held in the database so that it reaches every
    /// replica, without waiting for another operation to end ([`SinkError::Busy`] when one
    /// holds it; an implementation may wait a moment for a holder that is just letting go, as
    /// a database releases a lock only once the holder's connection has closed), and removes
    /// what an interrupted load of this run left behind.
    async fn lock(
        &self,
        project: &ProjectName,
        start: &StartTime,
    ) -> Result<Box<dyn LockedProject>, SinkError>;

    /// Checks that the writer can sign in and create schemas (what validate asks). Changes
    /// nothing.
    async fn check(&self) -> Result<(), SinkError>;
}

/// A locked project run. Dropping it releases the lock (once a load not committed has been
/// discarded, which may finish in the background); it neither blocks nor panics.
#[async_trait]
pub trait LockedProject: Send {
    /// Starts loading `dataset` into a private place and returns the sink its tables are
    /// written through. A table another dataset of the run already loaded is
    /// [`SinkError::TableClaimed`], before anything is written.
    async fn load<'s>(&'s mut self, dataset: &DatasetLoad)
    -> Result<Box<dyn Sink + 's>, SinkError>;

    /// Makes the finished load visible in one transaction (see the module documentation) and
    /// returns the dataset's tables. Atomic: on any error nothing visible has changed.
    async fn commit(&mut self) -> Result<Vec<LoadedTable>, SinkError>;

    /// Every table the run's datasets committed, sorted by schema and table.
    async fn tables(&mut self) -> Result<Vec<LoadedTable>, SinkError>;
}
