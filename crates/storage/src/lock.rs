//! The per-(destination, project, start time) lock.
//!
//! Two layers, because neither is enough alone: an OS file lock (`flock`, through
//! [`File::try_lock`]) on a lock file in the staging volume excludes other processes and other
//! replicas sharing the volume; a process-wide set of held lock files excludes other threads and
//! tasks of this process even on filesystems where `flock` is emulated with POSIX record locks,
//! which do not conflict within one process (NFS does this).
//!
//! Lock files are never deleted: deleting one while another process waits to open it would let
//! two processes lock two different files of the same name.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use publish_hash::HashAlgorithm;

use crate::error::{IoContext, StorageError};
use crate::{DatasetClaim, Manifest, ProjectArea, PublishOptions, StagingWrite};

/// Lock files held by this process, by canonical path.
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn held() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An exclusive lock on one project area, and the only way to stage or publish in it: the
/// lock owns the area it locks ([`crate::ProjectArea::lock`]), so an operation can neither run
/// unlocked nor under another area's lock. Released when the last of this guard and the
/// [`crate::StagingWrite`]s begun under it is dropped (or when the process dies). A clone is
/// the same lock, held until every clone is dropped.
#[derive(Clone)]
pub struct ProjectLock {
    pub(crate) inner: Arc<LockInner>,
    pub(crate) area: ProjectArea,
}

impl fmt::Debug for ProjectLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectLock")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl ProjectLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The locked area.
    pub fn area(&self) -> &ProjectArea {
        &self.area
    }

    /// Starts staging one dataset of the project in a fresh hidden folder on the staging volume
    /// (`<mount>/staging/<project>/.<start>.tmp-<uuid>/`). Writers put files under
    /// [`StagingWrite::dir`]; nothing is visible at [`ProjectArea::staging_dir`] until
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
        self.area.begin_dataset(self, claim, algorithm)
    }

    /// Publishes the staged result to production and returns its manifest.
    ///
    /// If something is staged, exactly the files its package record lists ([`RECORD_FILE`];
    /// every dataset of the project) are put into a hidden temporary folder on the production
    /// volume, in path order: hard-linked when both containers share a filesystem (no byte is
    /// copied; unlike a rename, this leaves staging intact until production is complete) and
    /// then read once to hash them, or, across filesystems or with [`PublishOptions::force_copy`],
    /// copied while hashing so each byte is read exactly once. Each file's digest and size must
    /// equal what its package recorded: a file missing, changed or of another kind, or a file no
    /// package wrote, refuses the publish naming it ([`StorageError::StagedFileChanged`],
    /// [`StorageError::UnexpectedStagedFile`], [`StorageError::UnsupportedEntry`]); a staged
    /// result without a record is [`StorageError::MissingRecord`]. Each file is synced and its
    /// landed size checked against the bytes hashed; then the folders are synced, the manifest
    /// is recorded atomically in `<mount>/production/<project>/.<start>.manifest.json` (with
    /// which dataset staged what), the folder is swapped into
    /// `<mount>/production/<project>/<start>` in one rename (replacing a previous result), and
    /// staging is removed. A failure before that rename leaves production as it was and staging
    /// intact. The record itself is not published.
    ///
    /// If nothing is staged but a result was published, returns the recorded manifest without
    /// reading the files, provided it matches the published folder and its file sizes and was
    /// made with the same algorithm; otherwise the published files are hashed again. If neither:
    /// [`StorageError::NothingToPublish`].
    ///
    /// Blocking: call it from a blocking thread.
    pub fn publish(&self, options: &PublishOptions) -> Result<Manifest, StorageError> {
        self.area.publish(self, options)
    }
}

pub(crate) struct LockInner {
    /// The lock file as the area names it; identifies the area.
    pub(crate) path: PathBuf,
    /// The canonical path, the key in [`HELD`].
    key: PathBuf,
    file: File,
    /// Leftovers of interrupted operations repaired when the lock was taken.
    pub(crate) recovered: usize,
}

impl Drop for LockInner {
    fn drop(&mut self) {
        // Release the OS lock before the in-process entry, so a thread that gets past the
        // in-process check never meets our own flock.
        if let Err(error) = self.file.unlock() {
            tracing::warn!(path = %self.path.display(), %error, "could not unlock; the lock is released when the file is closed");
        }
        held().remove(&self.key);
    }
}

/// Takes the lock on `path` (whose folder must exist) without waiting; `busy` builds the error
/// for a lock already held.
pub(crate) fn try_lock(
    path: PathBuf,
    busy: impl Fn() -> StorageError,
) -> Result<LockInner, StorageError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default();
    let key = parent
        .canonicalize()
        .at("resolve the project folder", parent)?
        .join(name);
    if !held().insert(key.clone()) {
        return Err(busy());
    }
    let release = |key: &PathBuf| {
        held().remove(key);
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) => {
            release(&key);
            return Err(e).at("open the lock file", &path);
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(LockInner {
            path,
            key,
            file,
            recovered: 0,
        }),
        Err(TryLockError::WouldBlock) => {
            release(&key);
            Err(busy())
        }
        Err(TryLockError::Error(e)) => {
            release(&key);
            Err(e).at("lock", &path)
        }
    }
}
