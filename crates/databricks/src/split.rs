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

/// The files one part reads, and the rows they hold together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) files: Vec<String>,
    pub(crate) rows: u64,
}

/// Packs `files`, in path order, into parts of at most `budget` rows; a file holding more than
/// `budget` rows is a part of its own. Files without rows are left out: they add nothing.
pub(crate) fn plan(mut files: Vec<DataFile>, budget: u64) -> Vec<Part> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut parts: Vec<Part> = Vec::new();
    for file in files.into_iter().filter(|f| f.rows > 0) {
        match parts.last_mut() {
            Some(part) if part.rows + file.rows <= budget => {
                part.rows += file.rows;
                part.files.push(file.path);
            }
            _ => parts.push(Part {
                files: vec![file.path],
                rows: file.rows,
            }),
        }
    }
    parts
}

impl Part {
    /// The part as two, each with half its files (a part whose result was still truncated).
    fn halves(self, rows_of: &dyn Fn(&str) -> u64) -> (Part, Part) {
        let mut files = self.files;
        let second = files.split_off(files.len() / 2);
        let part = |files: Vec<String>| Part {
            rows: files.iter().map(|f| rows_of(f)).sum(),
            files,
        };
        (part(files), part(second))
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
    let position = |name: &str| {
        finished
            .manifest
            .schema
            .as_ref()
            .and_then(|s| {
                s.columns
                    .iter()
                    .position(|c| c.get("name").and_then(serde_json::Value::as_str) == Some(name))
            })
            .ok_or_else(|| {
                SourceError::protocol(format!(
                    "the data files of `{table}` came without a `{name}` column"
                ))
            })
    };
    let (path_at, rows_at) = (position("file_path")?, position("num_rows")?);
    let mut files = Vec::new();
    let mut data = finished.first.unwrap_or_default();
    loop {
        for row in data.data_array.take().unwrap_or_default() {
            let cell = |i: usize| row.get(i).cloned().flatten();
            let path = cell(path_at).ok_or_else(|| {
                SourceError::protocol(format!("a data file of `{table}` came without a path"))
            })?;
            let rows = cell(rows_at)
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    SourceError::protocol(format!(
                        "a data file of `{table}` came without a row count"
                    ))
                })?;
            files.push(DataFile { path, rows });
        }
        match data.next_chunk_index {
            Some(next) => data = statement::get_chunk(client, guard.statement_id(), next).await?,
            None => break,
        }
    }
    guard.disarm();
    let announced = finished.manifest.total_row_count;
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
    /// Every file's rows, to size the halves of a part that was still too large.
    pub(crate) files: Vec<DataFile>,
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
    started: VecDeque<(Part, Started)>,
    /// The part being downloaded.
    current: Option<BatchStream>,
    parallel: usize,
    parts_read: usize,
    rows: u64,
    total_rows: u64,
    done: bool,
}

/// Reads `parts` as one stream of batches of `split.target`, checking that they hold the
/// snapshot's `split.files` rows exactly.
pub(crate) fn stream(split: Split, parts: Vec<Part>) -> BatchStream {
    let parallel = split.client.options.parallel_parts.max(1);
    let total_rows = split.files.iter().map(|f| f.rows).sum();
    tracing::info!(
        table = %split.table,
        version = split.version,
        files = split.files.len(),
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
            let Some((part, started)) = self.started.pop_front() else {
                return self.finish().err().map(Err);
            };
            match self.open(part, started).await {
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
            let started = self.submit(&part);
            self.started.push_back((part, started));
        }
    }

    /// Runs the part's statement in a task of its own.
    fn submit(&self, part: &Part) -> Started {
        let split = self.split.clone();
        let query = statement::part_query(&split.schema, split.version, &part.files);
        AbortOnDrop(tokio::spawn(async move {
            statement::run(
                &split.client,
                &query,
                &split.catalog,
                &split.table,
                Disposition::ArrowLinks,
            )
            .await
        }))
    }

    /// The batches of a part whose statement finished; `None` when the part was still too large
    /// and was split in two again: both halves are submitted at once and read next, so the
    /// rows still come in table order.
    async fn open(
        &mut self,
        part: Part,
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
                    split.version, part.rows
                )));
            }
            tracing::info!(table = %table, files = part.files.len(), "a part is still larger than one result; halving it");
            let rows_of = |path: &str| {
                split
                    .files
                    .iter()
                    .find(|f| f.path == path)
                    .map_or(0, |f| f.rows)
            };
            let (first, second) = part.halves(&rows_of);
            for half in [second, first] {
                let started = self.submit(&half);
                self.started.push_front((half, started));
            }
            return Ok(None);
        }
        if manifest.total_row_count != Some(part.rows) {
            return Err(SourceError::protocol(format!(
                "statement {} (part {} of table `{table}` at Delta version {}) announced {:?} \
                 rows; its {} data files hold {}",
                guard.statement_id(),
                self.parts_read + 1,
                split.version,
                manifest.total_row_count,
                part.files.len(),
                part.rows
            )));
        }
        tracing::info!(
            table = %table,
            part = self.parts_read + 1,
            parts_left = self.waiting.len() + self.started.len(),
            files = part.files.len(),
            rows = part.rows,
            "reading a part"
        );
        let query = statement::part_query(&split.schema, split.version, &part.files);
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
        let got: Vec<(Vec<&str>, u64)> = parts
            .iter()
            .map(|p| (p.files.iter().map(String::as_str).collect(), p.rows))
            .collect();
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

    #[test]
    fn a_part_halves_by_files() {
        let part = Part {
            files: vec!["a".into(), "b".into(), "c".into()],
            rows: 6,
        };
        let rows = |p: &str| match p {
            "a" => 1,
            "b" => 2,
            _ => 3,
        };
        let (first, second) = part.halves(&rows);
        assert_eq!((first.files, first.rows), (vec!["a".to_owned()], 1));
        assert_eq!(
            (second.files, second.rows),
            (vec!["b".to_owned(), "c".to_owned()], 5)
        );
    }
}
