//! The Parquet output: `data/outputs/<schema>/<table>.parquet`, streamed through parquet's
//! `ArrowWriter`.
//!
//! Snappy compression; a row group is closed at 1 Mi rows or about 128 MiB encoded, whichever
//! comes first, which bounds the memory the writer holds. The Arrow schema is embedded, so Arrow
//! readers get the exact types back (for example Duration for INTERVAL DAY TO SECOND).

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use crate::files::{HashingFile, create_table_file, finish_files};
use crate::worker::{FormatWriter, TableWriter};
use publish_columns::OutputPlan;
use publish_sink::{SinkError, WrittenFile};
use publish_types::OutputFormat;

/// Most rows in one row group.
const ROW_GROUP_ROWS: usize = 1 << 20;
/// Most (estimated, encoded) bytes in one row group.
const ROW_GROUP_BYTES: usize = 128 << 20;

pub(crate) struct ParquetWriter {
    root: PathBuf,
    algorithm: publish_hash::HashAlgorithm,
    files: Vec<WrittenFile>,
}

impl ParquetWriter {
    pub(crate) fn new(root: &Path, algorithm: publish_hash::HashAlgorithm) -> Self {
        Self {
            root: root.to_path_buf(),
            algorithm,
            files: Vec::new(),
        }
    }
}

impl FormatWriter for ParquetWriter {
    const FORMAT: OutputFormat = OutputFormat::Parquet;

    fn begin_table(&mut self, plan: &OutputPlan) -> Result<Box<dyn TableWriter + '_>, SinkError> {
        let created = create_table_file(&self.root, plan, "parquet", self.algorithm)?;
        self.files.push(WrittenFile {
            path: created.relative,
            digest: None,
        });
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .build();
        let path = created.path;
        let writer = ArrowWriter::try_new(created.file, plan.output().clone(), Some(properties))
            .map_err(|e| encode_error(&path, e))?;
        Ok(Box::new(ParquetTable {
            writer,
            path,
            written: self.files.last_mut().expect("just pushed"),
        }))
    }

    fn finish(self) -> Result<Vec<WrittenFile>, SinkError> {
        finish_files(&self.root, self.files)
    }
}

struct ParquetTable<'a> {
    writer: ArrowWriter<HashingFile>,
    path: PathBuf,
    /// Where the file's digest goes once it is complete.
    written: &'a mut WrittenFile,
}

impl TableWriter for ParquetTable<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.writer
            .write(batch)
            .map_err(|e| encode_error(&self.path, e))
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| encode_error(&self.path, e))?;
        self.written.digest = Some(file.finish(&self.path)?);
        Ok(())
    }
}

fn encode_error(path: &Path, e: ParquetError) -> SinkError {
    match e {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => SinkError::io(path, *io),
            Err(other) => SinkError::Encode {
                format: "parquet",
                message: other.to_string(),
            },
        },
        other => SinkError::Encode {
            format: "parquet",
            message: other.to_string(),
        },
    }
}
