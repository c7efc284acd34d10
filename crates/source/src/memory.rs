//! [`MemorySource`]: tables held in memory, for tests here and in the other CR8TOR services.
//!
//! It resolves names exactly as the Databricks source does (case-insensitive columns, the
//! requested order, the primary key only when fully requested) and yields batches of
//! [`arrow_schema`], so a workflow tested against it sees what it would see from a warehouse.
//! Faults are queued per table and consumed by the next read: fail after N batches with a given
//! error, or pause between batches.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use publish_types::TableSchema;

use crate::columns::{CatalogTable, same_name};
use crate::{Source, SourceError, TableRequest, TableStream};
use publish_columns::{arrow_schema, conform_columns};

/// An in-memory [`Source`]. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct MemorySource {
    state: Mutex<State>,
    open_streams: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by the lower-cased `catalog.schema.table`.
    tables: HashMap<String, Table>,
    read_faults: HashMap<String, VecDeque<ReadFault>>,
    delays: HashMap<String, Duration>,
    check_faults: VecDeque<SourceError>,
    reads_started: usize,
}

#[derive(Debug, Clone)]
struct Table {
    definition: TableSchema,
    /// Already of `arrow_schema(definition)`.
    batches: Vec<RecordBatch>,
}

#[derive(Debug, Clone)]
struct ReadFault {
    after_batches: usize,
    error: SourceError,
}

fn key(catalog: &str, schema: &str, table: &str) -> String {
    format!("{catalog}.{schema}.{table}").to_lowercase()
}

fn key_of(schema: &TableSchema) -> String {
    key(
        schema.catalog.as_str(),
        schema.schema.as_str(),
        schema.table.as_str(),
    )
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds (or replaces) a table. `definition` lists every column in catalog order, with its
    /// Unity Catalog type, nullability and comment, plus the primary key and table comment.
    /// `batches` hold the rows: each must have a column of every defined name (matched
    /// case-insensitively; extra columns are ignored) convertible to its declared type.
    pub fn add_table(
        &self,
        definition: TableSchema,
        batches: Vec<RecordBatch>,
    ) -> Result<(), SourceError> {
        let target = arrow_schema(&definition);
        let mut converted = Vec::with_capacity(batches.len());
        for batch in batches {
            let columns = definition
                .columns
                .iter()
                .map(|c| {
                    let schema = batch.schema();
                    let index = schema
                        .fields()
                        .iter()
                        .position(|f| same_name(f.name(), c.name.as_str()))
                        .ok_or_else(|| {
                            SourceError::protocol(format!(
                                "the batches given for `{}` lack column `{}`",
                                key_of(&definition),
                                c.name
                            ))
                        })?;
                    Ok(batch.column(index).clone())
                })
                .collect::<Result<Vec<_>, SourceError>>()?;
            converted.push(
                conform_columns(&columns, batch.num_rows(), &target)
                    .map_err(SourceError::protocol)?,
            );
        }
        self.lock().tables.insert(
            key_of(&definition),
            Table {
                definition,
                batches: converted,
            },
        );
        Ok(())
    }

    /// [`add_table`](Self::add_table), builder style.
    pub fn with_table(
        self,
        definition: TableSchema,
        batches: Vec<RecordBatch>,
    ) -> Result<Self, SourceError> {
        self.add_table(definition, batches)?;
        Ok(self)
    }

    /// The next read of `catalog.schema.table` yields `after_batches` batches, then `error`.
    /// Faults queue FIFO per table; each read takes at most one.
    pub fn fail_read_after(&self, full_name: &str, after_batches: usize, error: SourceError) {
        self.lock()
            .read_faults
            .entry(full_name.to_lowercase())
            .or_default()
            .push_back(ReadFault {
                after_batches,
                error,
            });
    }

    /// Every read of `catalog.schema.table` pauses this long before each batch (zero removes
    /// the delay).
    pub fn delay_batches(&self, full_name: &str, delay: Duration) {
        let mut state = self.lock();
        if delay.is_zero() {
            state.delays.remove(&full_name.to_lowercase());
        } else {
            state.delays.insert(full_name.to_lowercase(), delay);
        }
    }

    /// The next [`Source::check`] fails with `error` (FIFO).
    pub fn fail_next_check(&self, error: SourceError) {
        self.lock().check_faults.push_back(error);
    }

    /// How many reads were started.
    pub fn reads_started(&self) -> usize {
        self.lock().reads_started
    }

    /// How many streams returned by `read` are still alive (not yet dropped).
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::SeqCst)
    }

    fn lookup(&self, catalog: &str, schema: &str, table: &str) -> Result<Table, SourceError> {
        let state = self.lock();
        if let Some(t) = state.tables.get(&key(catalog, schema, table)) {
            return Ok(t.clone());
        }
        let defs = state.tables.values().map(|t| &t.definition);
        let in_catalog: Vec<_> = defs
            .filter(|d| d.catalog.as_str().eq_ignore_ascii_case(catalog))
            .collect();
        Err(if in_catalog.is_empty() {
            SourceError::UnknownCatalog {
                catalog: catalog.to_owned(),
            }
        } else if !in_catalog
            .iter()
            .any(|d| d.schema.as_str().eq_ignore_ascii_case(schema))
        {
            SourceError::UnknownSchema {
                schema: format!("{catalog}.{schema}"),
            }
        } else {
            SourceError::UnknownTable {
                table: format!("{catalog}.{schema}.{table}"),
            }
        })
    }
}

/// The progress of one read.
struct ReadState {
    batches: VecDeque<RecordBatch>,
    yielded: usize,
    fault: Option<ReadFault>,
    delay: Option<Duration>,
    indices: Vec<usize>,
    target: arrow::datatypes::SchemaRef,
    done: bool,
    _open: OpenStream,
}

/// Decrements the open-stream count when the stream is dropped.
struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn describe(&self, request: &TableRequest) -> Result<TableSchema, SourceError> {
        let table = self.lookup(
            request.catalog.as_str(),
            request.schema.as_str(),
            request.table.as_str(),
        )?;
        let d = table.definition;
        CatalogTable {
            catalog: d.catalog,
            schema: d.schema,
            table: d.table,
            columns: d.columns,
            primary_key: d.primary_key.iter().map(ToString::to_string).collect(),
            comment: d.comment,
        }
        .select(request.columns.as_deref())
    }

    async fn read(&self, schema: &TableSchema) -> Result<TableStream, SourceError> {
        let table = self.lookup(
            schema.catalog.as_str(),
            schema.schema.as_str(),
            schema.table.as_str(),
        )?;
        let full_name = key_of(schema);
        if schema.columns.is_empty() {
            return Err(SourceError::NoColumns { table: full_name });
        }
        let indices = schema
            .columns
            .iter()
            .map(|c| {
                table
                    .definition
                    .columns
                    .iter()
                    .position(|d| same_name(d.name.as_str(), c.name.as_str()))
                    .ok_or_else(|| SourceError::UnknownColumn {
                        table: full_name.clone(),
                        column: c.name.to_string(),
                        available: table
                            .definition
                            .columns
                            .iter()
                            .map(|d| d.name.to_string())
                            .collect(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let target = arrow_schema(schema);
        let (fault, delay) = {
            let mut state = self.lock();
            state.reads_started += 1;
            let fault = state
                .read_faults
                .get_mut(&full_name)
                .and_then(VecDeque::pop_front);
            (fault, state.delays.get(&full_name).copied())
        };
        self.open_streams.fetch_add(1, Ordering::SeqCst);
        let state = ReadState {
            batches: table.batches.into(),
            yielded: 0,
            fault,
            delay,
            indices,
            target: target.clone(),
            done: false,
            _open: OpenStream(self.open_streams.clone()),
        };
        let batches = futures::stream::unfold(state, |mut s| async move {
            if s.done {
                return None;
            }
            // A fault fires after its batches, or at the end of a shorter table.
            if s.fault
                .as_ref()
                .is_some_and(|f| s.yielded >= f.after_batches || s.batches.is_empty())
            {
                s.done = true;
                let error = s.fault.take()?.error;
                return Some((Err(error), s));
            }
            let batch = s.batches.pop_front()?;
            if let Some(delay) = s.delay {
                tokio::time::sleep(delay).await;
            }
            let item = batch
                .project(&s.indices)
                .map_err(|e| SourceError::protocol(format!("projecting a stored batch: {e}")))
                .and_then(|b| {
                    conform_columns(b.columns(), b.num_rows(), &s.target)
                        .map_err(SourceError::protocol)
                });
            s.yielded += 1;
            s.done = item.is_err();
            Some((item, s))
        });
        Ok(TableStream {
            schema: target,
            batches: Box::pin(batches),
            snapshot: None,
            unpinned: None,
        })
    }

    async fn check(&self) -> Result<(), SourceError> {
        match self.lock().check_faults.pop_front() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
