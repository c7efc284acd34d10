//! The CSV output: `data/outputs/<schema>/<table>.csv`, streamed through arrow-csv.
//!
//! The dialect is described in the crate documentation. Every column reaches the writer as a
//! scalar: [`OutputPlan`] has already turned nested values into JSON text.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::csv::WriterBuilder;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::files::{HashingFile, create_table_file, finish_files};
use crate::worker::{FormatWriter, TableWriter};
use publish_columns::OutputPlan;
use publish_sink::{SinkError, WrittenFile};
use publish_types::OutputFormat;

/// Bytes buffered before a write reaches the file.
const BUFFER: usize = 1 << 20;

pub(crate) struct CsvWriter {
    root: PathBuf,
    algorithm: publish_hash::HashAlgorithm,
    files: Vec<WrittenFile>,
}

impl CsvWriter {
    pub(crate) fn new(root: &Path, algorithm: publish_hash::HashAlgorithm) -> Self {
        Self {
            root: root.to_path_buf(),
            algorithm,
            files: Vec::new(),
        }
    }
}

impl FormatWriter for CsvWriter {
    const FORMAT: OutputFormat = OutputFormat::Csv;

    fn begin_table(&mut self, plan: &OutputPlan) -> Result<Box<dyn TableWriter + '_>, SinkError> {
        let created = create_table_file(&self.root, plan, "csv", self.algorithm)?;
        self.files.push(WrittenFile {
            path: created.relative,
            digest: None,
        });
        let mut table = CsvTable {
            writer: WriterBuilder::new()
                .with_header(true)
                .build(BufWriter::with_capacity(BUFFER, created.file)),
            path: created.path,
            written: self.files.last_mut().expect("just pushed"),
        };
        // arrow-csv writes the header with the first batch; an empty one makes sure a table
        // without rows still gets its header.
        table.write(&RecordBatch::new_empty(plan.output().clone()))?;
        Ok(Box::new(table))
    }

    fn finish(self) -> Result<Vec<WrittenFile>, SinkError> {
        finish_files(&self.root, self.files)
    }
}

struct CsvTable<'a> {
    writer: arrow::csv::Writer<BufWriter<HashingFile>>,
    path: PathBuf,
    /// Where the file's digest goes once it is complete.
    written: &'a mut WrittenFile,
}

impl TableWriter for CsvTable<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.writer.write(batch).map_err(|e| match e {
            ArrowError::IoError(_, source) => SinkError::io(&self.path, source),
            other => SinkError::Encode {
                format: "csv",
                message: other.to_string(),
            },
        })
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let mut buffered = self.writer.into_inner();
        buffered.flush().map_err(|e| SinkError::io(&self.path, e))?;
        let file = buffered
            .into_inner()
            .map_err(|e| SinkError::io(&self.path, e.into_error()))?;
        self.written.digest = Some(file.finish(&self.path)?);
        Ok(())
    }
}
