//! The per-table files of the CSV and Parquet outputs: where they go, created exclusively,
//! and made durable.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use publish_hash::{FileDigest, HashAlgorithm, Hasher};

use publish_columns::OutputPlan;
use publish_sink::{OUTPUT_DIR, SinkError, WrittenFile};

/// A file being written that hashes every byte on its way to the file, so a finished CSV or
/// Parquet file's digest needs no second read.
pub(crate) struct HashingFile {
    file: File,
    hasher: Hasher,
}

impl HashingFile {
    /// Syncs the file and returns its digest.
    pub(crate) fn finish(self, path: &Path) -> Result<FileDigest, SinkError> {
        self.file.sync_all().map_err(|e| SinkError::io(path, e))?;
        Ok(self.hasher.finish())
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A table's file, freshly created.
pub(crate) struct TableFile {
    /// Relative to the root, `/`-separated.
    pub(crate) relative: String,
    pub(crate) path: PathBuf,
    pub(crate) file: HashingFile,
}

/// Creates `data/outputs/<schema>/<table>.<ext>`; fails with [`SinkError::TableExists`] if it
/// exists.
pub(crate) fn create_table_file(
    root: &Path,
    plan: &OutputPlan,
    ext: &str,
    algorithm: HashAlgorithm,
) -> Result<TableFile, SinkError> {
    let t = plan.table();
    for name in [t.schema.as_identifier(), t.table.as_identifier()] {
        if !name.is_path_safe() {
            return Err(SinkError::SchemaMismatch {
                table: t.table.to_string(),
                detail: format!("`{name}` cannot be used as a file or folder name"),
            });
        }
    }
    let dir = root.join(OUTPUT_DIR).join(t.schema.as_str());
    std::fs::create_dir_all(&dir).map_err(|e| SinkError::io(&dir, e))?;
    let path = dir.join(format!("{}.{ext}", t.table));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => SinkError::TableExists {
                schema: t.schema.to_string(),
                table: t.table.to_string(),
            },
            _ => SinkError::io(&path, e),
        })?;
    Ok(TableFile {
        relative: format!("{OUTPUT_DIR}/{}/{}.{ext}", t.schema, t.table),
        path,
        file: HashingFile {
            file,
            hasher: Hasher::new(algorithm),
        },
    })
}

/// Makes the entries of `dir` (new files, renames) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    publish_fs::sync_dir(dir).map_err(|e| SinkError::io(dir, e))
}

/// Syncs every folder holding one of `files` (relative to `root`), and `data/outputs` itself;
/// returns `files` sorted.
pub(crate) fn finish_files(
    root: &Path,
    mut files: Vec<WrittenFile>,
) -> Result<Vec<WrittenFile>, SinkError> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| root.join(&f.path).parent().map(Path::to_path_buf))
        .collect();
    dirs.push(root.join(OUTPUT_DIR));
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        sync_dir(&dir)?;
    }
    Ok(files)
}
