//! Reading a table too large for one statement's result (docs/DATABRICKS-WIRE.md §6.4).
//!
//! A downloaded result is capped (100 GiB of the warehouse's uncompressed size); past it the
//! manifest says `truncated`. Such a table is read in parts over the one Delta version the read
//! is pinned to: the snapshot's data files and their row counts come from one metadata query,
//! are packed in path order into parts of at most half the rows the truncated result held, and
//! each part is a `SELECT … VERSION AS OF v WHERE _metadata.file_path IN (…)`, so the warehouse
//! reads each data file for one part only instead of scanning the table once per part. Up to
//! [`DatabricksOptions::parallel_parts`](crate::DatabricksOptions::parallel_parts) parts' statements
//! run at once while the first is downloaded; their batches go on, part after part, into the one
//! output table. Every part must return exactly its files' rows, and the parts together the
//! snapshot's.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use publish_source::{BatchStream, SourceError};
use publish_types::{ObjectName, TableSchema};

use crate::chunks::{self, AbortOnDrop, Rerun};
use crate::client::Client;
use crate::statement::{self, CancelOnDrop, Disposition, Finished, Query};

/// One data file of a snapshot and the rows it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataFile {
    pub(crate) path: String,
    pub(crate) rows: u64,
}

/// The files one part reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) files: Vec<DataFile>,
}

/// Packs `files`, in path order, into parts of at most `budget` rows; a file holding more than
/// `budget` rows is a part of its own. Files without rows are left out: they add nothing.
pub(crate) fn plan(mut files: Vec<DataFile>, budget: u64) -> Vec<Part> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut parts: Vec<Part> = Vec::new();
    for file in files.into_iter().filter(|f| f.rows > 0) {
        match parts.last_mut() {
            Some(part) if part.rows() + file.rows <= budget => part.files.push(file),
            _ => parts.push(Part { files: vec![file] }),
        }
    }
    parts
}

impl Part {
    /// The rows its files hold together.
    pub(crate) fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// The part as two, each with half its files (a part whose result was still truncated).
    fn halves(mut self) -> (Part, Part) {
        let second = self.files.split_off(self.files.len() / 2);
        (self, Part { files: second })
    }

    /// Its statement: [`statement::part_query`] over its files' paths.
    fn query(&self, split: &Split) -> Query {
        let paths: Vec<String> = self.files.iter().map(|f| f.path.clone()).collect();
        statement::part_query(&split.schema, split.version, &paths)
    }
}

/// The snapshot's data files with their row counts: one `INLINE` query answered from the files'
/// metadata, every chunk of its answer read.
pub(crate) async fn data_files(
    client: &Arc<Client>,
    catalog: &ObjectName,
    schema: &TableSchema,
    version: u64,
    table: &str,
) -> Result<Vec<DataFile>, SourceError> {
    let query = Query::plain(statement::files_sql(schema, version));
    let (mut guard, finished) =
        statement::run(client, &query, catalog, table, Disposition::InlineJson).await?;
    let manifest = &finished.manifest;
    let position = |name: &str| {
        manifest.column(name).ok_or_else(|| {
            SourceError::protocol(format!(
                "the data files of `{table}` came without a `{name}` column"
            ))
        })
    };
    let (path_at, rows_at) = (position("file_path")?, position("num_rows")?);
    let mut files = Vec::new();
    for row in statement::inline_rows(client, &mut guard, finished.first).await? {
        let cell = |i: usize| row.get(i).cloned().flatten();
        let path = cell(path_at).ok_or_else(|| {
            SourceError::protocol(format!("a data file of `{table}` came without a path"))
        })?;
        let rows = cell(rows_at)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                SourceError::protocol(format!("a data file of `{table}` came without a row count"))
            })?;
        files.push(DataFile { path, rows });
    }
    let announced = manifest.total_row_count;
    if announced.is_some_and(|n| n != files.len() as u64) {
        return Err(SourceError::protocol(format!(
            "the data files query of `{table}` announced {announced:?} files and returned {}",
            files.len()
        )));
    }
    Ok(files)
}

/// What every part of one split read shares.
pub(crate) struct Split {
    pub(crate) client: Arc<Client>,
    pub(crate) catalog: ObjectName,
    pub(crate) schema: TableSchema,
    pub(crate) version: u64,
    pub(crate) target: SchemaRef,
    pub(crate) table: String,
}

type Started = AbortOnDrop<Result<(CancelOnDrop, Finished), SourceError>>;

/// Where a split read is.
struct State {
    split: Arc<Split>,
    /// Parts whose statements have not been submitted yet, in table order.
    waiting: VecDeque<Part>,
    /// Parts whose statements run (or finished), in table order; aborting one cancels its
    /// statement. At most `parallel` with the one downloading, one more just after a part was
    /// halved.
    started: VecDeque<(Part, Query, Started)>,
    /// The part being downloaded.
    current: Option<BatchStream>,
    parallel: usize,
    parts_read: usize,
    rows: u64,
    total_rows: u64,
    done: bool,
}

/// Reads `parts` as one stream of batches of `split.target`, checking that they hold their
/// files' rows exactly: together, the snapshot's.
pub(crate) fn stream(split: Split, parts: Vec<Part>) -> BatchStream {
    let parallel = split.client.options.parallel_parts.max(1);
    let total_rows = parts.iter().map(Part::rows).sum();
    tracing::info!(
        table = %split.table,
        version = split.version,
        files = parts.iter().map(|p| p.files.len()).sum::<usize>(),
        parts = parts.len(),
        total_rows,
        "the table is larger than one result; reading it in parts"
    );
    let state = State {
        split: Arc::new(split),
        waiting: parts.into(),
        started: VecDeque::new(),
        current: None,
        parallel,
        parts_read: 0,
        rows: 0,
        total_rows,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let item = state.next().await;
        match &item {
            Some(Ok(_)) => {}
            _ => state.done = true,
        }
        item.map(|item| (item, state))
    }))
}

impl State {
    async fn next(&mut self) -> Option<Result<arrow::array::RecordBatch, SourceError>> {
        loop {
            if let Some(current) = self.current.as_mut() {
                match current.next().await {
                    Some(Ok(batch)) => {
                        self.rows += batch.num_rows() as u64;
                        return Some(Ok(batch));
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => {
                        self.current = None;
                        self.parts_read += 1;
                    }
                }
            }
            self.start_parts();
            let Some((part, query, started)) = self.started.pop_front() else {
                return self.finish().err().map(Err);
            };
            match self.open(part, query, started).await {
                Ok(stream) => self.current = stream,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Submits waiting parts until `parallel` are under way (the one downloading included).
    fn start_parts(&mut self) {
        let busy = usize::from(self.current.is_some());
        while self.started.len() + busy < self.parallel
            && let Some(part) = self.waiting.pop_front()
        {
            let (query, started) = self.submit(&part);
            self.started.push_back((part, query, started));
        }
    }

    /// Runs the part's statement in a task of its own; the query is kept for a re-run.
    fn submit(&self, part: &Part) -> (Query, Started) {
        let split = self.split.clone();
        let query = part.query(&split);
        let submitted = query.clone();
        let task = AbortOnDrop(tokio::spawn(async move {
            statement::run(
                &split.client,
                &submitted,
                &split.catalog,
                &split.table,
                Disposition::ArrowLinks,
            )
            .await
        }));
        (query, task)
    }

    /// The batches of a part whose statement finished; `None` when the part was still too large
    /// and was split in two again: both halves are submitted at once and read next, so the
    /// rows still come in table order.
    async fn open(
        &mut self,
        part: Part,
        query: Query,
        started: Started,
    ) -> Result<Option<BatchStream>, SourceError> {
        let (mut guard, finished) = started.await?;
        let split = &self.split;
        let table = &split.table;
        let manifest = &finished.manifest;
        if manifest.truncated == Some(true) {
            guard.disarm();
            if part.files.len() < 2 {
                return Err(SourceError::protocol(format!(
                    "one data file of table `{table}` at Delta version {} holds more than the \
                     warehouse returns in one query ({} rows); it cannot be read in parts",
                    split.version,
                    part.rows()
                )));
            }
            tracing::info!(table = %table, files = part.files.len(), "a part is still larger than one result; halving it");
            let (first, second) = part.halves();
            for half in [second, first] {
                let (query, started) = self.submit(&half);
                self.started.push_front((half, query, started));
            }
            return Ok(None);
        }
        let rows = part.rows();
        if manifest.total_row_count != Some(rows) {
            return Err(SourceError::protocol(format!(
                "statement {} (part {} of table `{table}` at Delta version {}) announced {:?} \
                 rows; its {} data files hold {}",
                guard.statement_id(),
                self.parts_read + 1,
                split.version,
                manifest.total_row_count,
                part.files.len(),
                rows
            )));
        }
        tracing::info!(
            table = %table,
            part = self.parts_read + 1,
            parts_left = self.waiting.len() + self.started.len(),
            files = part.files.len(),
            rows,
            "reading a part"
        );
        let rerun = Rerun {
            query,
            catalog: split.catalog.clone(),
            pinned: true,
        };
        chunks::stream(
            split.client.clone(),
            guard,
            finished,
            split.target.clone(),
            table.clone(),
            rerun,
        )
        .map(Some)
    }

    /// Every part was read: the rows must be the snapshot's.
    fn finish(&self) -> Result<(), SourceError> {
        if self.rows != self.total_rows {
            return Err(SourceError::protocol(format!(
                "table `{}` at Delta version {} holds {} rows in its data files; its {} parts \
                 returned {}",
                self.split.table, self.split.version, self.total_rows, self.parts_read, self.rows
            )));
        }
        tracing::info!(table = %self.split.table, parts = self.parts_read, rows = self.rows, "all parts read");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, rows: u64) -> DataFile {
        DataFile {
            path: path.into(),
            rows,
        }
    }

    #[test]
    fn files_are_packed_in_path_order_under_the_budget() {
        let files = vec![
            file("c", 40),
            file("a", 30),
            file("b", 30),
            file("e", 0),
            file("d", 150),
            file("f", 10),
        ];
        let parts = plan(files, 100);
        let got: Vec<(Vec<&str>, u64)> = parts.iter().map(summary).collect();
        assert_eq!(
            got,
            vec![
                (vec!["a", "b", "c"], 100),
                (vec!["d"], 150),
                (vec!["f"], 10)
            ]
        );
        assert!(plan(Vec::new(), 10).is_empty());
    }

    /// A part's paths and rows.
    fn summary(part: &Part) -> (Vec<&str>, u64) {
        (
            part.files.iter().map(|f| f.path.as_str()).collect(),
            part.rows(),
        )
    }

    #[test]
    fn a_part_halves_by_files() {
        let part = Part {
            files: vec![file("a", 1), file("b", 2), file("c", 3)],
        };
        assert_eq!(part.rows(), 6);
        let (first, second) = part.halves();
        assert_eq!(summary(&first), (vec!["a"], 1));
        assert_eq!(summary(&second), (vec!["b", "c"], 5));
    }
}
