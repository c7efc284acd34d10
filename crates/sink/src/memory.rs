//! [`MemorySinks`]: a [`SinkFactory`] whose sinks keep every table in memory, for tests here,
//! in the workflow and in other CR8TOR services (feature `test-util`).
//!
//! Each finished table is recorded ([`MemorySinks::tables`]) and also written as one file,
//! `data/outputs/<schema>/<table>.jsonl` (one JSON object per row, arrow-json's encoding), so
//! that staging, the package record and publish have real files to commit, hash and copy. Its
//! sinks behave as the contract says: the schema is checked against the canonical one, NOT NULL
//! is enforced, a table is written once, an abandoned table fails the sink. A fault can be
//! armed: the write of the n-th batch fails as a full volume would.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use publish_hash::HashAlgorithm;
use publish_types::{OutputFormat, TableSchema};

use crate::{
    OUTPUT_DIR, Output, Sink, SinkError, SinkFactory, SinkProtocol, TableSink, TableStats,
    WrittenFile,
};

/// One table a memory sink finished.
#[derive(Debug, Clone)]
pub struct MemoryTable {
    /// The declared table.
    pub schema: TableSchema,
    /// Every batch received, in order.
    pub batches: Vec<RecordBatch>,
}

impl MemoryTable {
    /// Rows received.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

#[derive(Debug, Default)]
struct Shared {
    tables: Vec<MemoryTable>,
    /// Fail the write of the batch with this index (0-based, counted over all sinks).
    fail_batch: Option<usize>,
    batches_seen: usize,
    sinks_opened: usize,
}

/// Opens [`Sink`]s that keep their tables in memory; clones share what they recorded.
#[derive(Debug, Clone, Default)]
pub struct MemorySinks {
    shared: Arc<Mutex<Shared>>,
}

impl MemorySinks {
    /// A factory that has recorded nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every table finished so far, by every sink opened, in the order finished.
    pub fn tables(&self) -> Vec<MemoryTable> {
        self.lock().tables.clone()
    }

    /// How many sinks were opened.
    pub fn sinks_opened(&self) -> usize {
        self.lock().sinks_opened
    }

    /// Makes the write of the `n`-th batch from now (0-based, over all sinks) fail with
    /// `ENOSPC`, as on a full volume.
    pub fn fail_batch(&self, n: usize) {
        let mut shared = self.lock();
        shared.fail_batch = Some(shared.batches_seen + n);
    }
}

impl SinkFactory for MemorySinks {
    fn shared_files(&self, _format: OutputFormat) -> Vec<String> {
        Vec::new()
    }

    fn open(
        &self,
        _format: OutputFormat,
        root: &Path,
        _output: Output<'_>,
        digest: HashAlgorithm,
    ) -> Result<Box<dyn Sink>, SinkError> {
        let out = root.join(OUTPUT_DIR);
        std::fs::create_dir_all(&out).map_err(|e| SinkError::io(&out, e))?;
        self.lock().sinks_opened += 1;
        Ok(Box::new(MemorySink {
            factory: self.clone(),
            root: root.to_path_buf(),
            digest,
            protocol: SinkProtocol::default(),
            files: Vec::new(),
        }))
    }
}

struct MemorySink {
    factory: MemorySinks,
    root: PathBuf,
    digest: HashAlgorithm,
    protocol: SinkProtocol,
    files: Vec<WrittenFile>,
}

#[async_trait]
impl Sink for MemorySink {
    async fn begin_table<'s>(
        &'s mut self,
        table: &TableSchema,
        arrow: SchemaRef,
    ) -> Result<Box<dyn TableSink + 's>, SinkError> {
        let plan = self
            .protocol
            .begin_file_table(table, arrow, OutputFormat::Parquet)?;
        Ok(Box::new(MemoryTableSink {
            sink: self,
            plan,
            batches: Vec::new(),
            stats: TableStats::default(),
        }))
    }

    async fn finish(mut self: Box<Self>) -> Result<Vec<WrittenFile>, SinkError> {
        self.protocol.finish()?;
        let mut files = self.files;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

struct MemoryTableSink<'s> {
    sink: &'s mut MemorySink,
    plan: publish_columns::OutputPlan,
    batches: Vec<RecordBatch>,
    stats: TableStats,
}

#[async_trait]
impl TableSink for MemoryTableSink<'_> {
    async fn write_batch(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        let table = self.plan.table();
        self.plan
            .check(&batch)
            .map_err(|e| SinkError::plan(table, e))?;
        self.plan
            .apply(&batch)
            .map_err(|e| SinkError::plan(table, e))?;
        {
            let mut shared = self.sink.factory.lock();
            let n = shared.batches_seen;
            shared.batches_seen += 1;
            if shared.fail_batch == Some(n) {
                return Err(SinkError::io(
                    self.sink.root.join(OUTPUT_DIR),
                    std::io::Error::from_raw_os_error(28),
                ));
            }
        }
        self.stats.add(&batch);
        self.batches.push(batch);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<TableStats, SinkError> {
        let this = *self;
        let t = this.plan.table();
        if ![t.schema.as_identifier(), t.table.as_identifier()]
            .iter()
            .all(publish_types::Identifier::is_path_safe)
        {
            return Err(SinkError::SchemaMismatch {
                table: t.table.to_string(),
                detail: "the name cannot be a file name".into(),
            });
        }
        let relative = format!("{OUTPUT_DIR}/{}/{}.jsonl", t.schema, t.table);
        let mut text = Vec::new();
        {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut text);
            for batch in &this.batches {
                writer.write(batch).map_err(|e| SinkError::Encode {
                    format: "jsonl",
                    message: e.to_string(),
                })?;
            }
            writer.finish().map_err(|e| SinkError::Encode {
                format: "jsonl",
                message: e.to_string(),
            })?;
        }
        let path = this.sink.root.join(&relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SinkError::io(dir, e))?;
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
            .map_err(|e| SinkError::io(&path, e))?;
        let digest = publish_hash::hash_reader(text.as_slice(), this.sink.digest)
            .map_err(|e| SinkError::io(&path, e))?;
        this.sink.files.push(WrittenFile {
            path: relative,
            digest: Some(digest),
        });
        this.sink.factory.lock().tables.push(MemoryTable {
            schema: t.clone(),
            batches: this.batches,
        });
        this.sink.protocol.table_finished();
        Ok(this.stats)
    }
}
