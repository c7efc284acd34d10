//! The package record: which dataset staged which tables and files, and the size and digest of
//! every staged file.
//!
//! It lives beside the staged data, outside `data/`, at
//! `<mount>/staging/<project>/<start>/package-record.json`, and is written into the same
//! temporary folder as the data, so the one rename that commits a package commits its record
//! too: the record always describes exactly what is staged. Publish copies the files it lists
//! and nothing else, checking each against its recorded size and digest.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use publish_hash::HashAlgorithm;
use publish_types::{ObjectName, OutputFormat, TableRef};
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, StorageError};

/// The record's file name inside the staged folder.
pub const RECORD_FILE: &str = "package-record.json";

/// Version of the record's layout.
const RECORD_FORMAT: u32 = 1;

/// A record larger than this is not one of ours.
const RECORD_MAX_BYTES: u64 = 64 << 20;

/// What is staged for one project run: every dataset packaged into it and every file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// Layout version of this record.
    pub record_format: u32,
    /// The output format every dataset of the project was packaged in.
    pub output_format: OutputFormat,
    /// The digest in [`StagedFile::hash_value`].
    pub algorithm: HashAlgorithm,
    /// A fresh id for every committed package: the manifest of a publish names the package it
    /// published, so that a publish interrupted after its commit is recognised and completed
    /// (docs/CONTRACT.md §7.1). Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
    /// The datasets, sorted by id.
    pub datasets: Vec<DatasetRecord>,
    /// Every staged file, sorted by path.
    pub files: Vec<StagedFile>,
}

/// One dataset of a project, as its last package staged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The dataset's `name`, else its `schema_name`.
    pub id: String,
    /// The dataset's `name`, if it had one.
    pub name: Option<String>,
    /// Its Unity Catalog schema, also its schema (or folder) in the output.
    pub schema_name: ObjectName,
    /// When it was packaged, in seconds since the Unix epoch.
    pub packaged_at_unix: u64,
    /// The tables it staged, in request order.
    pub tables: Vec<StagedTable>,
    /// The files that hold its tables, sorted (the DuckDB database is shared by every dataset).
    pub files: Vec<String>,
}

/// One staged table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedTable {
    /// Which table.
    #[serde(flatten)]
    pub table: TableRef,
    /// Rows written.
    pub rows: u64,
    /// Which snapshot of the source table was read (e.g. `delta version 12`), so that a
    /// project's record says exactly what it received; absent where the source names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Why the table could not be read at one named snapshot, where the source refused to pin
    /// it (a governed table, a view); absent when it was pinned or the source pins nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpinned: Option<String>,
}

/// One staged file with its size and digest when it was staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Path relative to the staged folder, `/`-separated (e.g. `data/outputs/database.duckdb`).
    pub file_path: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Lower-case hex digest ([`PackageRecord::algorithm`]).
    pub hash_value: String,
}

impl PackageRecord {
    pub(crate) fn new(
        output_format: OutputFormat,
        algorithm: HashAlgorithm,
        mut datasets: Vec<DatasetRecord>,
        mut files: Vec<StagedFile>,
    ) -> Self {
        datasets.sort_by(|a, b| a.id.cmp(&b.id));
        files.sort_by(|a, b| a.file_path.cmp(&b.file_path));
        Self {
            record_format: RECORD_FORMAT,
            output_format,
            algorithm,
            package_id: Some(uuid::Uuid::new_v4().simple().to_string()),
            datasets,
            files,
        }
    }

    /// The recorded file at `path`.
    pub fn file(&self, path: &str) -> Option<&StagedFile> {
        self.files.iter().find(|f| f.file_path == path)
    }

    /// Reads the record of the staged folder `dir`; `None` when it has none.
    ///
    /// The record is opened without following a symbolic link. A record that cannot be parsed,
    /// or is of a layout this version does not know, is [`StorageError::RecordInvalid`].
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>, StorageError> {
        crate::fsops::settle(|| Self::read_once(dir), &dir.join(RECORD_FILE))
    }

    fn read_once(dir: &Path) -> Result<Option<Self>, StorageError> {
        let path = dir.join(RECORD_FILE);
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at("open the package record", &path),
        };
        let meta = file.metadata().at("inspect", &path)?;
        if !meta.is_file() || meta.len() > RECORD_MAX_BYTES {
            return Err(StorageError::RecordInvalid {
                path,
                reason: "it is not a regular file of a plausible size".into(),
            });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(RECORD_MAX_BYTES)
            .read_to_end(&mut bytes)
            .at("read", &path)?;
        let record: Self =
            serde_json::from_slice(&bytes).map_err(|e| StorageError::RecordInvalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if record.record_format != RECORD_FORMAT {
            return Err(StorageError::RecordInvalid {
                path,
                reason: format!(
                    "layout {} is not the one this version writes ({RECORD_FORMAT})",
                    record.record_format
                ),
            });
        }
        Ok(Some(record))
    }

    /// Writes the record as a new file in the folder `dir` and syncs it.
    pub(crate) fn write_new(&self, dir: &Path) -> Result<(), StorageError> {
        let path = dir.join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(self)
            .map_err(io::Error::other)
            .at("encode", &path)?;
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .at("create", &path)?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .at("write", &path)
    }
}
