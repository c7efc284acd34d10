//! The CSV output: `data/outputs/<schema>/<table>.csv`, streamed through arrow-csv.
//!
//! The dialect is described in the crate documentation. Every column reaches the writer as a
//! scalar: [`TablePlan`] has already turned nested values into JSON text.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::csv::WriterBuilder;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::SinkError;
use crate::convert::{Flavor, TablePlan};
use crate::files::{create_table_file, finish_files};
use crate::worker::{FormatWriter, TableWriter};

/// Bytes buffered before a write reaches the file.
const BUFFER: usize = 1 << 20;

pub(crate) struct CsvWriter {
    root: PathBuf,
    files: Vec<String>,
}

impl CsvWriter {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            files: Vec::new(),
        }
    }
}

impl FormatWriter for CsvWriter {
    const FLAVOR: Flavor = Flavor::Csv;

    fn begin_table(&mut self, plan: &TablePlan) -> Result<Box<dyn TableWriter + '_>, SinkError> {
        let created = create_table_file(&self.root, plan, "csv")?;
        self.files.push(created.relative);
        let mut table = CsvTable {
            writer: WriterBuilder::new()
                .with_header(true)
                .build(BufWriter::with_capacity(BUFFER, created.file)),
            path: created.path,
        };
        // arrow-csv writes the header with the first batch; an empty one makes sure a table
        // without rows still gets its header.
        table.write(&RecordBatch::new_empty(plan.output.clone()))?;
        Ok(Box::new(table))
    }

    fn finish(self) -> Result<Vec<String>, SinkError> {
        finish_files(&self.root, self.files)
    }
}

struct CsvTable {
    writer: arrow::csv::Writer<BufWriter<File>>,
    path: PathBuf,
}

impl TableWriter for CsvTable {
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
        file.sync_all().map_err(|e| SinkError::io(&self.path, e))
    }
}
