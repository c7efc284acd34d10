//! Writing test tables into a data directory: `DIR/<catalog>/<schema>/<table>.parquet` plus the
//! optional sidecar, staged under a temporary name and renamed into place so a running emulator
//! never sees half a file; and schemas, `DIR/<catalog>/<schema>/` plus the optional
//! `DIR/<catalog>/<schema>.json`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

pub use crate::catalog::{SchemaSidecar, Sidecar, SidecarColumn};
pub use crate::governance::{Governance, TIME_TRAVEL_REFUSALS};

/// Rows per Parquet row group in files written here; small enough that chunk reads skip most
/// of a large file.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Writes `batches` as table `catalog.schema.table` (names should be lower-case, as in Unity
/// Catalog) and its sidecar if given, replacing any previous version. Returns the Parquet path.
///
/// `batches` must not be empty (the first batch gives the schema; it may have zero rows).
pub fn write_table(
    data_dir: &Path,
    catalog: &str,
    schema: &str,
    table: &str,
    batches: &[RecordBatch],
    sidecar: Option<&Sidecar>,
) -> io::Result<PathBuf> {
    let first = batches.first().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "write_table needs at least one batch to know the schema",
        )
    })?;
    let mut writer = TableWriter::create(data_dir, catalog, schema, table, first.schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish(sidecar)
}

/// Creates schema `catalog.schema` (an empty folder if new) and writes its sidecar if given,
/// replacing or removing any previous one. Returns the schema folder.
pub fn write_schema(
    data_dir: &Path,
    catalog: &str,
    schema: &str,
    sidecar: Option<&SchemaSidecar>,
) -> io::Result<PathBuf> {
    for part in [catalog, schema] {
        check_name_part(part)?;
    }
    let dir = data_dir.join(catalog).join(schema);
    fs::create_dir_all(&dir)?;
    let sidecar_path = data_dir.join(catalog).join(format!("{schema}.json"));
    match sidecar {
        Some(sidecar) => {
            let text = serde_json::to_vec_pretty(sidecar).map_err(io::Error::other)?;
            let staging = data_dir
                .join(catalog)
                .join(format!(".{schema}.json.partial"));
            fs::write(&staging, text)?;
            fs::rename(&staging, &sidecar_path)?;
        }
        None => remove_if_present(&sidecar_path)?,
    }
    Ok(dir)
}

fn check_name_part(part: &str) -> io::Result<()> {
    if part.is_empty() || part.contains(['/', '\\', '.']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid name part {part:?}: must be non-empty without '/', '\\' or '.'"),
        ));
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes a table batch by batch, for tables too large to hold in memory.
#[derive(Debug)]
pub struct TableWriter {
    writer: ArrowWriter<File>,
    staging: PathBuf,
    target: PathBuf,
}

impl TableWriter {
    /// Starts a table; nothing is visible until [`TableWriter::finish`].
    pub fn create(
        data_dir: &Path,
        catalog: &str,
        schema: &str,
        table: &str,
        arrow_schema: SchemaRef,
    ) -> io::Result<TableWriter> {
        TableWriter::create_with_row_groups(
            data_dir,
            catalog,
            schema,
            table,
            arrow_schema,
            ROW_GROUP_ROWS,
        )
    }

    /// Like [`TableWriter::create`], with `row_group_rows` rows per Parquet row group (small
    /// values let tests make chunks that straddle row groups).
    pub fn create_with_row_groups(
        data_dir: &Path,
        catalog: &str,
        schema: &str,
        table: &str,
        arrow_schema: SchemaRef,
        row_group_rows: usize,
    ) -> io::Result<TableWriter> {
        for part in [catalog, schema, table] {
            check_name_part(part)?;
        }
        let dir = data_dir.join(catalog).join(schema);
        fs::create_dir_all(&dir)?;
        let target = dir.join(format!("{table}.parquet"));
        let staging = dir.join(format!(".{table}.parquet.partial"));
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(row_group_rows.max(1)))
            .build();
        let writer = ArrowWriter::try_new(File::create(&staging)?, arrow_schema, Some(properties))
            .map_err(io::Error::other)?;
        Ok(TableWriter {
            writer,
            staging,
            target,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, batch: &RecordBatch) -> io::Result<()> {
        self.writer.write(batch).map_err(io::Error::other)
    }

    /// Closes the file, writes or removes the sidecar, and moves the table into place. A table
    /// written over becomes a new Delta version; the data it replaces stays readable with
    /// `VERSION AS OF` (in `<table>.versions/<n>.parquet`).
    pub fn finish(self, sidecar: Option<&Sidecar>) -> io::Result<PathBuf> {
        self.writer.close().map_err(io::Error::other)?;
        let sidecar_path = self.target.with_extension("json");
        match sidecar {
            Some(sidecar) => {
                let text = serde_json::to_vec_pretty(sidecar).map_err(io::Error::other)?;
                fs::write(&sidecar_path, text)?;
            }
            None => remove_if_present(&sidecar_path)?,
        }
        // Writing over a table makes a new Delta version: the data it replaces is kept as the
        // previous version, for `VERSION AS OF`.
        if self.target.is_file() {
            let versions = crate::catalog::versions_dir(&self.target);
            fs::create_dir_all(&versions)?;
            let previous = fs::read_dir(&versions)?
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .strip_suffix(".parquet")
                        .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                })
                .count();
            fs::rename(&self.target, versions.join(format!("{previous}.parquet")))?;
        }
        fs::rename(&self.staging, &self.target)?;
        Ok(self.target)
    }
}
