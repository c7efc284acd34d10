//! Staging one dataset of a project run: [`ProjectLock::begin_dataset`] gives a
//! [`StagingWrite`], a work folder already holding what the project's other datasets staged,
//! which [`StagingWrite::commit`] records (the package record) and swaps into place with one
//! rename. Which dataset owns which files and tables, and the conflicts between datasets, are
//! decided here from the package record (`record.rs`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use publish_hash::{HashAlgorithm, hash_reader};
use publish_types::{ObjectName, OutputFormat, TableRef};

use crate::error::{IoContext, StorageError};
use crate::failpoints;
use crate::fsops::{self, Swap, names};
use crate::lock::LockInner;
use crate::locked::ProjectLock;
use crate::paths::{Container, remove_if_empty};
use crate::record::{DatasetRecord, PackageRecord, RECORD_FILE, StagedFile, StagedTable};

impl ProjectLock {
    /// Starts staging one dataset of the project in a fresh hidden folder on the staging volume
    /// (`<mount>/staging/<project>/.<start>.tmp-<uuid>/`). Writers put files under
    /// [`StagingWrite::dir`]; nothing is visible at [`ProjectArea::staging_dir`](crate::ProjectArea::staging_dir) until
    /// [`StagingWrite::commit`]. First removes what interrupted operations left behind.
    ///
    /// The new staged result keeps what *other* datasets of the project staged and replaces
    /// what the same dataset ([`DatasetClaim::id`]) staged before:
    ///
    /// - a table the claim names that another dataset already staged is
    ///   [`StorageError::TableClaimed`]; another output format than the other datasets' is
    ///   [`StorageError::FormatConflict`]; both are checked before anything is written;
    /// - files only other datasets own are carried into the new folder as they are (a hard link
    ///   where the filesystem has them, else a copy checked against the recorded digest);
    /// - files in [`DatasetClaim::shared_files`] that another dataset owns (the DuckDB database)
    ///   are carried as a private copy checked against the recorded digest while it is copied,
    ///   because the writer adds to them; the tables the dataset staged before are then listed
    ///   by [`StagingWrite::replaced_tables`] for the writer to drop from them;
    /// - files only this dataset owned are not carried: the writer writes them anew.
    ///
    /// A staged result without a package record (staged by an older version) is replaced whole.
    pub fn begin_dataset(
        &self,
        claim: DatasetClaim,
        algorithm: HashAlgorithm,
    ) -> Result<StagingWrite, StorageError> {
        let area = &self.area;
        area.refuse_links()?;
        let parent = area.staging_parent();
        let work = area.ensure_work(Container::Staging)?;
        fs::create_dir_all(&parent).at("create the project's staging folder", &parent)?;
        let current = area.staging_dir();
        let previous = if fsops::is_real_dir(&current)? {
            let record = PackageRecord::read(&current)?;
            if record.is_none() {
                tracing::warn!(path = %current.display(), "the staged result has no package record (staged by an older version); replacing it whole");
            }
            record
        } else {
            None
        };
        let (others, replaced) = match &previous {
            Some(record) => split_previous(record, &claim)?,
            None => (Vec::new(), Vec::new()),
        };

        let dir = work.join(names::fresh(names::TMP));
        fs::create_dir(&dir).at("create a temporary staging folder", &dir)?;
        let mut write = StagingWrite {
            dir,
            target: current.clone(),
            parent,
            work,
            _lock: Arc::clone(&self.inner),
            done: false,
            claim,
            algorithm,
            others,
            carried: Vec::new(),
            replaced,
            digested: Vec::new(),
            shared_carried: false,
            tables: Vec::new(),
        };
        if let Some(record) = &previous
            && !write.others.is_empty()
        {
            write.carry(&current, record)?;
        }
        Ok(write)
    }
}

/// What one package stages: one dataset of a project ([`ProjectLock::begin_dataset`]).
#[derive(Debug, Clone)]
pub struct DatasetClaim {
    /// The dataset's id among the project's datasets: its `name`, else its `schema_name`.
    pub id: String,
    /// The dataset's `name`, if it has one.
    pub name: Option<String>,
    /// Its schema.
    pub schema_name: ObjectName,
    /// The tables it will stage.
    pub tables: Vec<TableRef>,
    /// The output format.
    pub format: OutputFormat,
    /// Files every dataset of the project writes into, relative to the staged folder (for
    /// DuckDB, the one `data/outputs/database.duckdb`); empty when each dataset has files of
    /// its own (CSV, Parquet).
    pub shared_files: Vec<String>,
}

/// The datasets of `record` other than the claim's, and the tables the claim's dataset staged
/// before; refuses a claim that conflicts with another dataset.
fn split_previous(
    record: &PackageRecord,
    claim: &DatasetClaim,
) -> Result<(Vec<DatasetRecord>, Vec<TableRef>), StorageError> {
    let (mine, others): (Vec<_>, Vec<_>) = record
        .datasets
        .iter()
        .cloned()
        .partition(|d| d.id == claim.id);
    if others.is_empty() {
        // The dataset alone: whatever it staged before is replaced whole, in any format.
        return Ok((Vec::new(), Vec::new()));
    }
    if record.output_format != claim.format {
        return Err(StorageError::FormatConflict {
            dataset: claim.id.clone(),
            requested: claim.format,
            staged: record.output_format,
            others: others.iter().map(|d| d.id.clone()).collect(),
        });
    }
    for table in &claim.tables {
        if let Some(other) = others
            .iter()
            .find(|d| d.tables.iter().any(|t| t.table.same_as(table)))
        {
            return Err(StorageError::TableClaimed {
                table: table.to_string(),
                dataset: claim.id.clone(),
                claimed_by: other.id.clone(),
            });
        }
    }
    let replaced = mine
        .into_iter()
        .flat_map(|d| d.tables.into_iter().map(|t| t.table))
        .collect();
    Ok((others, replaced))
}

/// A staging result being written. Dropping it without [`StagingWrite::commit`] removes what was
/// written and leaves the previous result untouched. It keeps the project lock held while it
/// exists.
pub struct StagingWrite {
    dir: PathBuf,
    target: PathBuf,
    parent: PathBuf,
    work: PathBuf,
    _lock: Arc<LockInner>,
    done: bool,
    claim: DatasetClaim,
    algorithm: HashAlgorithm,
    /// The other datasets of the project, kept as they were.
    others: Vec<DatasetRecord>,
    /// Files carried over unchanged, with their recorded size and digest.
    carried: Vec<StagedFile>,
    /// Tables this dataset staged before that a carried shared file still holds.
    replaced: Vec<TableRef>,
    /// Digests the writer took while writing ([`StagingWrite::written_with_digests`]).
    digested: Vec<StagedFile>,
    /// A shared file was carried over as a private copy for the writer to add to.
    shared_carried: bool,
    /// The tables this dataset wrote ([`StagingWrite::record_table`]).
    tables: Vec<StagedTable>,
}

impl std::fmt::Debug for StagingWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagingWrite")
            .field("dir", &self.dir)
            .field("target", &self.target)
            .field("dataset", &self.claim.id)
            .finish_non_exhaustive()
    }
}

impl StagingWrite {
    /// The folder to write the result into; its layout is the result's (e.g.
    /// `data/outputs/database.duckdb`). It already holds what other datasets staged.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tables this dataset staged before that a carried shared file still holds: the
    /// writer must drop them before writing the dataset again.
    pub fn replaced_tables(&self) -> &[TableRef] {
        &self.replaced
    }

    /// Digests of files the writer hashed while writing them (CSV, Parquet), with the
    /// algorithm this write records: [`StagingWrite::commit`] then checks only their sizes
    /// instead of reading them again.
    pub fn written_with_digests(&mut self, files: Vec<StagedFile>) {
        self.digested.extend(files);
    }

    /// Records a table this dataset wrote, with its row count and the snapshot it was read at,
    /// for the package record [`StagingWrite::commit`] writes.
    pub fn record_table(&mut self, table: StagedTable) {
        self.tables.push(table);
    }

    /// True when a shared file (the DuckDB database) was carried over and is to be added to.
    pub fn carries_shared_files(&self) -> bool {
        self.shared_carried
    }

    /// Copies the files other datasets own from the current staged result `current`.
    fn carry(&mut self, current: &Path, record: &PackageRecord) -> Result<(), StorageError> {
        let began = Instant::now();
        let mut bytes = 0;
        for file in &record.files {
            let owned_by_others = self
                .others
                .iter()
                .any(|d| d.files.iter().any(|f| f == &file.file_path));
            if !owned_by_others {
                continue;
            }
            let dst = self.dir.join(&file.file_path);
            if let Some(folder) = dst.parent() {
                fs::create_dir_all(folder).at("create a staging folder", folder)?;
            }
            let shared = self.claim.shared_files.contains(&file.file_path);
            let rel = file.file_path.as_str();
            // Checked against the record it was staged with; recorded in this write's algorithm,
            // unless it is shared: the writer changes it, and the commit hashes it then.
            let digests = fsops::Digests {
                answer: if shared {
                    record.algorithm
                } else {
                    self.algorithm
                },
                record: record.algorithm,
            };
            let (method, carried) = carry_file(current, rel, &dst, file, digests, !shared)?;
            bytes += file.total_bytes;
            tracing::debug!(file = %file.file_path, bytes = file.total_bytes, method, "carried over from the staged result");
            if shared {
                self.shared_carried = true;
            } else {
                self.carried.push(carried);
            }
        }
        tracing::info!(
            datasets = self.others.len(),
            bytes,
            seconds = began.elapsed().as_secs_f64(),
            "kept what the project's other datasets staged"
        );
        Ok(())
    }

    /// Makes the written result the staged result, atomically, with its package record.
    ///
    /// The tables are those [`StagingWrite::record_table`] recorded. Every file the writer
    /// wrote is recorded with its size and digest: the one it took while writing
    /// ([`StagingWrite::written_with_digests`], its size checked), else read once to hash it; the record is written beside
    /// `data/`; every file and folder is synced; then the folder is swapped with
    /// `<mount>/staging/<project>/<start>` in one rename (`RENAME_EXCHANGE`; where a filesystem
    /// lacks it, the previous result is renamed aside first, leaving the final path absent for
    /// the instant between two renames), and the previous result is deleted. At every instant
    /// the final path holds the complete previous result or the complete new one. Returns this
    /// dataset's files as relative `/`-separated paths, sorted. Symbolic links and special files
    /// are refused ([`StorageError::UnsupportedEntry`]), and then the previous result stays.
    pub fn commit(mut self) -> Result<Vec<String>, StorageError> {
        let tree = fsops::walk(&self.dir)?;
        let mut files = Vec::with_capacity(tree.files.len());
        let mut mine = Vec::new();
        for entry in &tree.files {
            if let Some(carried) = self.carried.iter().find(|c| c.file_path == entry.rel) {
                files.push(carried.clone());
                continue;
            }
            if entry.rel == RECORD_FILE {
                return Err(StorageError::UnsupportedEntry {
                    path: self.dir.join(RECORD_FILE),
                    kind: "file with the package record's reserved name",
                });
            }
            if let Some(known) = self.digested.iter().find(|d| d.file_path == entry.rel) {
                if known.total_bytes != entry.len {
                    return Err(StorageError::StagedFileChanged {
                        file: entry.rel.clone(),
                        reason: format!(
                            "is {} bytes, but {} were written",
                            entry.len, known.total_bytes
                        ),
                    });
                }
                files.push(known.clone());
            } else {
                let path = self.dir.join(&entry.rel);
                let digest = File::open(&path)
                    .and_then(|f| hash_reader(f, self.algorithm))
                    .at("hash the staged file", &path)?;
                files.push(StagedFile {
                    file_path: entry.rel.clone(),
                    total_bytes: digest.total_bytes,
                    hash_value: digest.hex,
                });
            }
            mine.push(entry.rel.clone());
        }
        for other in &self.others {
            if let Some(lost) = other
                .files
                .iter()
                .find(|f| !files.iter().any(|s| &s.file_path == *f))
            {
                return Err(StorageError::Internal {
                    message: format!(
                        "dataset {:?}'s file {lost} was not carried into the new staging result",
                        other.id
                    ),
                });
            }
        }
        let packaged_at_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut datasets = std::mem::take(&mut self.others);
        datasets.push(DatasetRecord {
            id: self.claim.id.clone(),
            name: self.claim.name.clone(),
            schema_name: self.claim.schema_name.clone(),
            packaged_at_unix,
            tables: std::mem::take(&mut self.tables),
            files: mine.clone(),
        });
        let record = PackageRecord::new(self.claim.format, self.algorithm, datasets, files);
        record.write_new(&self.dir)?;
        fsops::sync_tree(&self.dir, &tree, false)?;
        failpoints::hit(failpoints::PACKAGE_RECORDED);
        let aside = self.work.join(names::fresh(names::OLD));
        let superseded = fsops::replace_dir(
            &self.dir,
            &self.target,
            &self.parent,
            &aside,
            Swap::Exchange,
        )?;
        self.done = true;
        failpoints::hit(failpoints::PACKAGE_SWAPPED);
        if let Some(old) = superseded {
            fsops::discard(&old);
        }
        remove_if_empty(&self.work);
        Ok(mine)
    }
}

/// Carries the file `rel` of the current result `current` into the new result at `dst`: by
/// hard link when `link` (and the filesystem has them), else by a private copy checked against
/// the record while it is copied (one read), so a file changed since its package is never built
/// upon. A file the writer will change is always copied. Returns how, and the file's entry in
/// `digests.answer`: the old entry when the record was made in that algorithm, else the digest
/// taken in the same read as the check (a linked file is then read once).
fn carry_file(
    current: &Path,
    rel: &str,
    dst: &Path,
    file: &StagedFile,
    digests: fsops::Digests,
    link: bool,
) -> Result<(&'static str, StagedFile), StorageError> {
    // Opened first, without following links, so a link planted in staging is refused rather
    // than linked (link(2) would link the symbolic link itself).
    let reader = fsops::open_beneath(current, rel)?;
    if link {
        match fs::hard_link(current.join(rel), dst) {
            Ok(()) if digests.answer == digests.record => return Ok(("linked", file.clone())),
            Ok(()) => {
                let landed = fsops::hash_in_place(current, rel, digests, false)?;
                return Ok(("linked", checked(file, landed)?));
            }
            Err(e) if fsops::cannot_link(&e) => {}
            Err(e) => return Err(e).at("link the staged file into the new staging result at", dst),
        }
    }
    let landed = fsops::copy_file(reader, dst, file.total_bytes, digests)?;
    Ok(("copied", checked(file, landed)?))
}

/// The entry of a file read again: refused when it differs from what its record says, else
/// with the digest taken in the algorithm asked for.
fn checked(file: &StagedFile, landed: fsops::Landed) -> Result<StagedFile, StorageError> {
    let recorded = &landed.recorded;
    if recorded.total_bytes != file.total_bytes || recorded.hex != file.hash_value {
        return Err(StorageError::StagedFileChanged {
            file: file.file_path.clone(),
            reason: "differs from what its package recorded (its digest changed)".into(),
        });
    }
    Ok(StagedFile {
        file_path: file.file_path.clone(),
        total_bytes: landed.digest.total_bytes,
        hash_value: landed.digest.hex,
    })
}

impl Drop for StagingWrite {
    fn drop(&mut self) {
        if !self.done {
            fsops::discard(&self.dir);
            remove_if_empty(&self.work);
        }
    }
}
