//! One project run at one destination: its lock, its staging result and its staging writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use publish_types::{ProjectName, StartTime};

use crate::destinations::Destination;
use crate::error::{IoContext, StorageError};
use crate::fsops::{self, Swap, names};
use crate::lock::{self, LockInner, ProjectLock};

/// The folders of one `(destination, project, start time)`:
/// `<mount>/staging/<project>/<start>` and `<mount>/production/<project>/<start>`.
///
/// Its hidden siblings inside `<mount>/{staging,production}/<project>/` belong to it too:
/// `.<start>.lock` (staging only), `.<start>.manifest.json` (production only), and the
/// temporary `.<start>.tmp-*`, `.<start>.old-*` and `.<start>.trash-*`, which are removed by the
/// next locked operation if an earlier one was interrupted.
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

    fn lock_path(&self) -> PathBuf {
        self.staging_parent()
            .join(format!(".{}.lock", self.start.as_str()))
    }

    /// Takes the exclusive lock for this `(destination, project, start time)` without waiting.
    ///
    /// It excludes other threads and tasks of this process and other processes sharing the
    /// staging volume (an OS file lock on `<mount>/staging/<project>/.<start>.lock`), and is held
    /// until the returned guard and every [`StagingWrite`] begun under it are dropped. If it is
    /// held elsewhere: [`StorageError::Busy`]. Needs the staging container to exist
    /// ([`StorageError::ContainerMissing`]); creates `<mount>/staging/<project>/`.
    pub fn lock(&self) -> Result<ProjectLock, StorageError> {
        let root = self.destination.staging_root();
        self.destination.check_container("staging", &root)?;
        let parent = self.staging_parent();
        fs::create_dir_all(&parent).at("create the project's staging folder", &parent)?;
        lock::try_lock(self.lock_path(), || StorageError::Busy {
            destination: self.destination.name().to_string(),
            project: self.project.to_string(),
            start: self.start.to_string(),
        })
    }

    pub(crate) fn check_lock(&self, lock: &ProjectLock) -> Result<(), StorageError> {
        let wanted = self.lock_path();
        if lock.inner.path == wanted {
            Ok(())
        } else {
            Err(StorageError::WrongLock {
                held: lock.inner.path.clone(),
                wanted,
            })
        }
    }

    /// Starts writing a new staging result in a fresh hidden folder on the staging volume
    /// (`<mount>/staging/<project>/.<start>.tmp-<uuid>/`). Writers put files under
    /// [`StagingWrite::dir`]; nothing is visible at [`ProjectArea::staging_dir`] until
    /// [`StagingWrite::commit`]. First removes what interrupted operations left behind.
    pub fn begin_staging(&self, lock: &ProjectLock) -> Result<StagingWrite, StorageError> {
        self.check_lock(lock)?;
        let parent = self.staging_parent();
        let start = self.start.as_str();
        fsops::clean_leftovers(&parent, start)?;
        let dir = parent.join(names::hidden(start, names::TMP, ""));
        fs::create_dir(&dir).at("create a temporary staging folder", &dir)?;
        Ok(StagingWrite {
            dir,
            target: self.staging_dir(),
            parent,
            start: start.to_owned(),
            _lock: Arc::clone(&lock.inner),
            done: false,
        })
    }

    /// The files of the staged result as relative `/`-separated paths, sorted; empty when
    /// nothing is staged.
    pub fn staged_files(&self) -> Result<Vec<String>, StorageError> {
        let dir = self.staging_dir();
        if !fsops::is_real_dir(&dir)? {
            return Ok(Vec::new());
        }
        Ok(fsops::walk(&dir)?
            .files
            .into_iter()
            .map(|f| f.rel)
            .collect())
    }

    pub(crate) fn nothing_to_publish(&self) -> StorageError {
        StorageError::NothingToPublish {
            destination: self.destination.name().to_string(),
            project: self.project.to_string(),
            start: self.start.to_string(),
        }
    }
}

/// A staging result being written. Dropping it without [`StagingWrite::commit`] removes what was
/// written and leaves the previous result untouched. It keeps the project lock held while it
/// exists.
pub struct StagingWrite {
    dir: PathBuf,
    target: PathBuf,
    parent: PathBuf,
    start: String,
    _lock: Arc<LockInner>,
    done: bool,
}

impl std::fmt::Debug for StagingWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagingWrite")
            .field("dir", &self.dir)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl StagingWrite {
    /// The folder to write the result into; its layout is the result's (e.g.
    /// `data/outputs/database.duckdb`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the written result the staged result, atomically.
    ///
    /// Every file and folder is synced to stable storage, then the folder is swapped with
    /// `<mount>/staging/<project>/<start>` in one rename (`RENAME_EXCHANGE`; where a filesystem
    /// lacks it, the previous result is renamed aside first, leaving the final path absent for
    /// the instant between two renames), and the previous result is deleted. At every instant
    /// the final path holds the complete previous result or the complete new one. Returns the
    /// result's files as relative `/`-separated paths, sorted. Symbolic links and special files
    /// are refused ([`StorageError::UnsupportedEntry`]), and then the previous result stays.
    pub fn commit(mut self) -> Result<Vec<String>, StorageError> {
        let tree = fsops::walk(&self.dir)?;
        fsops::sync_tree(&self.dir, &tree, false)?;
        let aside = self.parent.join(names::hidden(&self.start, names::OLD, ""));
        fsops::replace_dir(
            &self.dir,
            &self.target,
            &self.parent,
            &aside,
            Swap::Exchange,
        )?;
        self.done = true;
        Ok(tree.files.into_iter().map(|f| f.rel).collect())
    }
}

impl Drop for StagingWrite {
    fn drop(&mut self) {
        if !self.done {
            fsops::discard(&self.dir);
        }
    }
}
