//! File locking: an exclusive, non-waiting lock on one lock file, across processes and within
//! this one. It knows nothing of projects; `locked.rs` builds the project lock on it.
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
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::error::{IoContext, StorageError};

/// Lock files held by this process, by canonical path.
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn held() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A held lock file, released when dropped.
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
