//! One project run at one destination: its lock, its staging result and its staging writes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use publish_hash::{HashAlgorithm, hash_reader};
use publish_types::{ObjectName, OutputFormat, ProjectName, StartTime, TableRef};

use crate::destinations::Destination;
use crate::error::{IoContext, StorageError};
use crate::failpoints;
use crate::fsops::{self, Swap, names};
use crate::lock::{self, LockInner, ProjectLock};
use crate::record::{DatasetRecord, PackageRecord, RECORD_FILE, StagedFile, StagedTable};

/// The service's own folder in each container, hidden from researchers' project folders.
pub(crate) const SERVICE_DIR: &str = ".publish-service";

/// The work folders inside [`SERVICE_DIR`].
const WORK_DIR: &str = "work";

/// A destination's two containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// `<mount>/staging`.
    Staging,
    /// `<mount>/production`.
    Production,
}

/// The folders of one `(destination, project, start time)`:
/// `<mount>/staging/<project>/<start>` and `<mount>/production/<project>/<start>`.
///
/// Its temporary folders are in the service's work folder on each volume,
/// `<container>/.publish-service/work/<project>/<start>/` (`tmp-*`, `old-*`, `trash-*`,
/// `incoming-*`), repaired by the next locked operation or the start-up sweep if an earlier
/// operation was interrupted; its lock is in `<mount>/staging/.publish-service/locks/`, and the
/// manifest of its published result is `<mount>/production/<project>/.<start>.manifest.json`.
#[derive(Debug, Clone)]
pub struct ProjectArea {
    pub(crate) destination: Destination,
    pub(crate) project: ProjectName,
    pub(crate) start: StartTime,
}

impl ProjectArea {
    pub(crate) fn new(destination: Destination, project: ProjectName, start: StartTime) -> Self {
        Self {
            destination,
            project,
            start,
        }
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The project name.
    pub fn project(&self) -> &ProjectName {
        &self.project
    }

    /// The project start time.
    pub fn start(&self) -> &StartTime {
        &self.start
    }

    /// `<mount>/staging/<project>/<start>`: where the staged result is (or will be).
    pub fn staging_dir(&self) -> PathBuf {
        self.staging_parent().join(self.start.as_str())
    }

    /// `<mount>/production/<project>/<start>`: where the published result is (or will be).
    pub fn production_dir(&self) -> PathBuf {
        self.production_parent().join(self.start.as_str())
    }

    pub(crate) fn staging_parent(&self) -> PathBuf {
        self.destination.staging_root().join(self.project.as_str())
    }

    pub(crate) fn production_parent(&self) -> PathBuf {
        self.destination
            .production_root()
            .join(self.project.as_str())
    }

    /// `<container>/.publish-service/locks/.<project, lower case>.<start>.lock`: project names
    /// that differ only in case are one project for locking (Azure Files ignores case).
    fn lock_path(&self) -> PathBuf {
        self.destination
            .staging_root()
            .join(SERVICE_DIR)
            .join("locks")
            .join(format!(
                ".{}.{}.lock",
                self.project.as_str().to_lowercase(),
                self.start.as_str()
            ))
    }

    /// The container's root.
    pub(crate) fn root(&self, container: Container) -> PathBuf {
        match container {
            Container::Staging => self.destination.staging_root(),
            Container::Production => self.destination.production_root(),
        }
    }

    /// `<container>/.publish-service/work/<project>/<start>`: where this area's temporary
    /// folders live on that volume (results being built, previous results set aside or being
    /// deleted), never inside a project folder a researcher can see.
    pub(crate) fn work_dir(&self, container: Container) -> PathBuf {
        self.root(container)
            .join(SERVICE_DIR)
            .join(WORK_DIR)
            .join(self.project.as_str())
            .join(self.start.as_str())
    }

    /// Refuses a symbolic link where the service's own folders on `container` lead to this
    /// area's work folder.
    pub(crate) fn refuse_service_links(&self, container: Container) -> Result<(), StorageError> {
        let service = self.root(container).join(SERVICE_DIR);
        fsops::refuse_links(&[
            &service,
            &service.join(WORK_DIR),
            &service.join(WORK_DIR).join(self.project.as_str()),
            &self.work_dir(container),
        ])
    }

    /// Creates the area's work folder on `container` (what interrupted operations left there
    /// was repaired when the lock was taken). Needs the lock.
    pub(crate) fn ensure_work(&self, container: Container) -> Result<PathBuf, StorageError> {
        self.refuse_service_links(container)?;
        let work = self.work_dir(container);
        fs::create_dir_all(&work).at("create the service's work folder", &work)?;
        Ok(work)
    }

    /// Removes the area's work folders where they are empty (best effort: one in use is not
    /// empty and stays), so that no folder of a finished operation is left.
    pub(crate) fn tidy(&self) {
        for container in [Container::Production, Container::Staging] {
            remove_if_empty(&self.work_dir(container));
        }
    }

    /// Repairs what interrupted operations left in both work folders (done when the lock was
    /// taken) and removes the emptied folders; returns how many leftovers were repaired.
    pub(crate) fn repair(&self, lock: &ProjectLock) -> usize {
        let repaired = lock.inner.recovered;
        self.tidy();
        repaired
    }

    /// Takes the exclusive lock for this `(destination, project, start time)` without waiting.
    ///
    /// It excludes other threads and tasks of this process and other processes sharing the
    /// staging volume where its filesystem's locks reach them (an OS file lock on
    /// `<mount>/staging/.publish-service/locks/.<project>.<start>.lock`, the project in lower
    /// case), and is held until the returned guard and every [`StagingWrite`] begun under it are
    /// dropped. If it is held elsewhere: [`StorageError::Busy`]. Needs the staging container to
    /// exist ([`StorageError::ContainerMissing`]).
    ///
    /// Once held, it first brings the area back to a committed state if an earlier operation
    /// was interrupted (see `recover.rs`): no operation ever starts on a half-finished one.
    pub fn lock(&self) -> Result<ProjectLock, StorageError> {
        let root = self.destination.staging_root();
        self.destination.check_container("staging", &root)?;
        self.refuse_links()?;
        let locks = root.join(SERVICE_DIR).join("locks");
        fsops::refuse_links(&[&root.join(SERVICE_DIR), &locks])?;
        fs::create_dir_all(&locks).at("create the service's lock folder", &locks)?;
        let mut held = lock::try_lock(self.lock_path(), || StorageError::Busy {
            destination: self.destination.name().to_string(),
            project: self.project.to_string(),
            start: self.start.to_string(),
        })?;
        held.recovered = self.recover()?;
        let recovered = held.recovered;
        if recovered > 0 {
            tracing::warn!(
                destination = %self.destination.name(), project = %self.project, start = %self.start,
                repaired = recovered, "repaired what an interrupted operation left"
            );
        }
        Ok(ProjectLock {
            inner: Arc::new(held),
            area: self.clone(),
        })
    }

    /// Refuses a project or result folder that is a symbolic link (or not a folder), in staging
    /// or production: nothing is ever read, written or deleted through a link on these
    /// volumes. (The containers themselves are the operator's configuration and may be links.)
    pub(crate) fn refuse_links(&self) -> Result<(), StorageError> {
        fsops::refuse_links(&[
            &self.staging_parent(),
            &self.staging_dir(),
            &self.production_parent(),
            &self.production_dir(),
        ])
    }

    /// [`ProjectLock::begin_dataset`]: the lock is this area's.
    pub(crate) fn begin_dataset(
        &self,
        lock: &ProjectLock,
        claim: DatasetClaim,
        algorithm: HashAlgorithm,
    ) -> Result<StagingWrite, StorageError> {
        self.refuse_links()?;
        let parent = self.staging_parent();
        let work = self.ensure_work(Container::Staging)?;
        fs::create_dir_all(&parent).at("create the project's staging folder", &parent)?;
        let current = self.staging_dir();
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
            _lock: Arc::clone(&lock.inner),
            done: false,
            claim,
            algorithm,
            others,
            carried: Vec::new(),
            replaced,
            digested: Vec::new(),
            shared_carried: false,
        };
        if let Some(record) = &previous
            && !write.others.is_empty()
        {
            write.carry(&current, record)?;
        }
        Ok(write)
    }

    /// The files of the staged result as relative `/`-separated paths, sorted, without its
    /// package record; empty when nothing is staged.
    pub fn staged_files(&self) -> Result<Vec<String>, StorageError> {
        let dir = self.staging_dir();
        if !fsops::is_real_dir(&dir)? {
            return Ok(Vec::new());
        }
        Ok(fsops::walk(&dir)?
            .files
            .into_iter()
            .map(|f| f.rel)
            .filter(|rel| rel != RECORD_FILE)
            .collect())
    }

    /// The package record of the staged result: which dataset staged which tables and files;
    /// `None` when nothing is staged (or it was staged without a record).
    pub fn staged_record(&self) -> Result<Option<PackageRecord>, StorageError> {
        let dir = self.staging_dir();
        if !fsops::is_real_dir(&dir)? {
            return Ok(None);
        }
        PackageRecord::read(&dir)
    }

    pub(crate) fn nothing_to_publish(&self) -> StorageError {
        StorageError::NothingToPublish {
            destination: self.destination.name().to_string(),
            project: self.project.to_string(),
            start: self.start.to_string(),
        }
    }
}

/// What one package stages: one dataset of a project ([`ProjectArea::begin_dataset`]).
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
            let method = carry_file(current, rel, &dst, file, record.algorithm, !shared)?;
            bytes += file.total_bytes;
            tracing::debug!(file = %file.file_path, bytes = file.total_bytes, method, "carried over from the staged result");
            if shared {
                self.shared_carried = true;
            } else {
                self.carried.push(file.clone());
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
    /// `tables` are the tables this dataset wrote, with their row counts. Every file the writer
    /// wrote is recorded with its size and digest: the one it took while writing
    /// ([`StagingWrite::written_with_digests`], its size checked), else read once to hash it; the record is written beside
    /// `data/`; every file and folder is synced; then the folder is swapped with
    /// `<mount>/staging/<project>/<start>` in one rename (`RENAME_EXCHANGE`; where a filesystem
    /// lacks it, the previous result is renamed aside first, leaving the final path absent for
    /// the instant between two renames), and the previous result is deleted. At every instant
    /// the final path holds the complete previous result or the complete new one. Returns this
    /// dataset's files as relative `/`-separated paths, sorted. Symbolic links and special files
    /// are refused ([`StorageError::UnsupportedEntry`]), and then the previous result stays.
    pub fn commit(mut self, tables: Vec<StagedTable>) -> Result<Vec<String>, StorageError> {
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
            tables,
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
/// upon. A file the writer will change is always copied.
fn carry_file(
    current: &Path,
    rel: &str,
    dst: &Path,
    file: &StagedFile,
    algorithm: HashAlgorithm,
    link: bool,
) -> Result<&'static str, StorageError> {
    // Opened first, without following links, so a link planted in staging is refused rather
    // than linked (link(2) would link the symbolic link itself).
    let reader = fsops::open_beneath(current, rel)?;
    if link {
        match fs::hard_link(current.join(rel), dst) {
            Ok(()) => return Ok("linked"),
            Err(e) if crate::publish::cannot_link(&e) => {}
            Err(e) => return Err(e).at("link the staged file into the new staging result at", dst),
        }
    }
    copy_checked(reader, dst, file, algorithm)
}

fn copy_checked(
    reader: File,
    dst: &Path,
    file: &StagedFile,
    algorithm: HashAlgorithm,
) -> Result<&'static str, StorageError> {
    let landed = crate::publish::copy_file(reader, dst, file.total_bytes, algorithm)?;
    if landed.digest.total_bytes != file.total_bytes || landed.digest.hex != file.hash_value {
        return Err(StorageError::StagedFileChanged {
            file: file.file_path.clone(),
            reason: "differs from what its package recorded (its digest changed)".into(),
        });
    }
    Ok("copied")
}

impl Drop for StagingWrite {
    fn drop(&mut self) {
        if !self.done {
            fsops::discard(&self.dir);
            remove_if_empty(&self.work);
        }
    }
}

/// Removes an area's work folder, and its project's, where they are empty (best effort).
fn remove_if_empty(work: &Path) {
    if fs::remove_dir(work).is_ok()
        && let Some(project) = work.parent()
    {
        let _ = fs::remove_dir(project);
    }
}
