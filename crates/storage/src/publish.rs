//! Publishing: promoting the staged result to production, with a manifest of hashes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use publish_hash::{FileDigest, HashAlgorithm, copy_hashing, hash_reader};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::area::ProjectArea;
use crate::error::{IoContext, StorageError};
use crate::fsops::{self, Swap, Tree, names};
use crate::lock::ProjectLock;

/// How to publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The digest recorded in the manifest; SHA-512 unless asked otherwise.
    pub algorithm: HashAlgorithm,
    /// Copy every byte even when staging and production share a filesystem (tests and
    /// benchmarks use this to exercise the cross-filesystem path on one disk).
    pub force_copy: bool,
}

/// What a publish produced: one entry per published file, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The published files.
    pub files: Vec<PublishedFile>,
}

/// One published file, as reported to the caller (the response contract's type).
pub use publish_types::PublishedFile;

/// The manifest as recorded next to the published result (never inside it).
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    format: u32,
    algorithm: HashAlgorithm,
    /// The inode of the published folder, which a rename keeps; a folder replaced by other means
    /// no longer matches, and is then rehashed.
    directory_inode: u64,
    files: Vec<PublishedFile>,
}

const SIDECAR_FORMAT: u32 = 1;

impl ProjectArea {
    /// Publishes the staged result to production and returns its manifest.
    ///
    /// If something is staged, every regular file under `<mount>/staging/<project>/<start>` (in
    /// path order; symbolic links are refused) is put into a hidden temporary folder on the
    /// production volume: hard-linked when both containers share a filesystem (no byte is copied;
    /// unlike a rename, this leaves staging intact until production is complete) and then read
    /// once to hash it, or, across filesystems or with [`PublishOptions::force_copy`], copied
    /// while hashing so each byte is read exactly once. Each file is synced and its landed size
    /// checked against the bytes hashed; then the folders are synced, the manifest is recorded
    /// atomically in `<mount>/production/<project>/.<start>.manifest.json`, the folder is
    /// swapped into `<mount>/production/<project>/<start>` in one rename (replacing a previous
    /// result), and staging is removed. A failure before that rename leaves production as it
    /// was and staging intact.
    ///
    /// If nothing is staged but a result was published, returns the recorded manifest without
    /// reading the files, provided it matches the published folder and its file sizes and was
    /// made with the same algorithm; otherwise the published files are hashed again. If neither:
    /// [`StorageError::NothingToPublish`].
    ///
    /// Blocking: call it from a blocking thread.
    pub fn publish(
        &self,
        lock: &ProjectLock,
        options: &PublishOptions,
    ) -> Result<Manifest, StorageError> {
        self.check_lock(lock)?;
        let destination = &self.destination;
        destination.check_containers()?;
        let start = self.start.as_str();
        fsops::clean_leftovers(&self.staging_parent(), start)?;
        fsops::clean_leftovers(&self.production_parent(), start)?;
        if fsops::is_real_dir(&self.staging_dir())? {
            self.promote(options)
        } else if fsops::is_real_dir(&self.production_dir())? {
            self.already_published(options)
        } else {
            Err(self.nothing_to_publish())
        }
    }

    fn promote(&self, options: &PublishOptions) -> Result<Manifest, StorageError> {
        let staging = self.staging_dir();
        let start = self.start.as_str();
        let tree = fsops::walk(&staging)?;
        let total: u64 = tree.files.iter().map(|f| f.len).sum();
        tracing::info!(
            destination = %self.destination.name(), project = %self.project, start,
            files = tree.files.len(), bytes = total, algorithm = %options.algorithm,
            "publishing the staged result"
        );
        let began = Instant::now();

        let parent = self.production_parent();
        if !fsops::exists(&parent)? {
            fs::create_dir_all(&parent).at("create the project's production folder", &parent)?;
            fsops::sync_dir(&self.destination.production_root())?;
        }
        let tmp = parent.join(names::hidden(start, names::TMP, ""));
        let guard = RemoveOnDrop(Some(tmp.clone()));
        fs::create_dir(&tmp).at("create a temporary production folder", &tmp)?;
        for dir in &tree.dirs {
            let path = tmp.join(dir);
            fs::create_dir(&path).at("create a production folder", &path)?;
        }

        let mut files = Vec::with_capacity(tree.files.len());
        for entry in &tree.files {
            let src = staging.join(&entry.rel);
            let dst = tmp.join(&entry.rel);
            let file_began = Instant::now();
            let (landed, method) = if options.force_copy {
                (
                    copy_file(&src, &dst, entry.len, options.algorithm)?,
                    "copied",
                )
            } else {
                match fs::hard_link(&src, &dst) {
                    Ok(()) => (hash_in_place(&dst, options.algorithm, true)?, "linked"),
                    Err(e) if cannot_link(&e) => (
                        copy_file(&src, &dst, entry.len, options.algorithm)?,
                        "copied",
                    ),
                    Err(e) => return Err(e).at("link the staged file into production at", &dst),
                }
            };
            let Landed { digest, size } = landed;
            if digest.total_bytes != entry.len || size != digest.total_bytes {
                return Err(StorageError::SizeMismatch {
                    file: entry.rel.clone(),
                    expected: entry.len,
                    hashed: digest.total_bytes,
                    landed: size,
                });
            }
            let secs = file_began.elapsed().as_secs_f64();
            tracing::info!(
                file = %entry.rel, bytes = size, method, seconds = secs,
                mib_per_s = size as f64 / (1 << 20) as f64 / secs.max(1e-9),
                "published file"
            );
            files.push(PublishedFile {
                file_path: entry.rel.clone(),
                hash_value: digest.hex,
                total_bytes: size,
            });
        }
        fsops::sync_tree(&tmp, &tree, true)?;

        let inode = fs::metadata(&tmp).at("inspect", &tmp)?.ino();
        self.write_sidecar(&Sidecar {
            format: SIDECAR_FORMAT,
            algorithm: options.algorithm,
            directory_inode: inode,
            files: files.clone(),
        })?;
        let aside = parent.join(names::hidden(start, names::OLD, ""));
        fsops::replace_dir(
            &tmp,
            &self.production_dir(),
            &parent,
            &aside,
            Swap::Exchange,
        )?;
        guard.disarm();

        self.remove_staging();
        // At debug: the caller (the workflow) logs the publish at info, also when a retry
        // found it already done.
        tracing::debug!(
            destination = %self.destination.name(), project = %self.project, start,
            files = files.len(), bytes = total, seconds = began.elapsed().as_secs_f64(),
            "files promoted"
        );
        Ok(Manifest { files })
    }

    /// Removes the staged result now that it is published: renamed to a trash name first, so
    /// the staging path never shows a half-deleted result. A failure is logged, not returned:
    /// the publish has happened, and a retry would republish the same files.
    fn remove_staging(&self) {
        let staging = self.staging_dir();
        let parent = self.staging_parent();
        let trash = parent.join(names::hidden(self.start.as_str(), names::TRASH, ""));
        if let Err(error) = fs::rename(&staging, &trash) {
            tracing::error!(path = %staging.display(), %error, "published, but could not remove the staged result");
            return;
        }
        if let Err(error) = fsops::sync_dir(&parent) {
            tracing::warn!(%error, "published, but could not sync the staging folder");
        }
        fsops::discard(&trash);
    }

    fn already_published(&self, options: &PublishOptions) -> Result<Manifest, StorageError> {
        let dir = self.production_dir();
        let tree = fsops::walk(&dir)?;
        let inode = fs::metadata(&dir).at("inspect", &dir)?.ino();
        if let Some(sidecar) = self.read_sidecar() {
            if sidecar_matches(&sidecar, &tree, inode, options.algorithm) {
                tracing::info!(project = %self.project, start = %self.start, "already published; returning the recorded manifest");
                return Ok(Manifest {
                    files: sidecar.files,
                });
            }
            tracing::warn!(project = %self.project, start = %self.start, "the recorded manifest does not match the published files; hashing them again");
        }
        let mut files = Vec::with_capacity(tree.files.len());
        for entry in &tree.files {
            let Landed { digest, size } =
                hash_in_place(&dir.join(&entry.rel), options.algorithm, false)?;
            files.push(PublishedFile {
                file_path: entry.rel.clone(),
                hash_value: digest.hex,
                total_bytes: size,
            });
        }
        let sidecar = Sidecar {
            format: SIDECAR_FORMAT,
            algorithm: options.algorithm,
            directory_inode: inode,
            files,
        };
        if let Err(error) = self.write_sidecar(&sidecar) {
            tracing::warn!(%error, "could not record the manifest; a retry will hash the files again");
        }
        Ok(Manifest {
            files: sidecar.files,
        })
    }

    fn sidecar_path(&self) -> std::path::PathBuf {
        self.production_parent()
            .join(format!(".{}.manifest.json", self.start.as_str()))
    }

    /// Missing, unreadable or malformed sidecars are all "no record": rehashing is always safe.
    fn read_sidecar(&self) -> Option<Sidecar> {
        let path = self.sidecar_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "could not read the recorded manifest");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(sidecar) => Some(sidecar),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "the recorded manifest is malformed");
                None
            }
        }
    }

    /// Writes the sidecar under a temporary name, syncs it, and renames it into place.
    fn write_sidecar(&self, sidecar: &Sidecar) -> Result<(), StorageError> {
        let parent = self.production_parent();
        let path = self.sidecar_path();
        let tmp = parent.join(names::hidden(
            self.start.as_str(),
            names::TMP,
            ".manifest.json",
        ));
        let guard = RemoveOnDrop(Some(tmp.clone()));
        let json = serde_json::to_vec_pretty(sidecar)
            .map_err(io::Error::other)
            .at("encode", &path)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .at("create", &tmp)?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .at("write", &tmp)?;
        fs::rename(&tmp, &path).at("record the manifest at", &path)?;
        guard.disarm();
        fsops::sync_dir(&parent)
    }
}

fn sidecar_matches(sidecar: &Sidecar, tree: &Tree, inode: u64, algorithm: HashAlgorithm) -> bool {
    sidecar.format == SIDECAR_FORMAT
        && sidecar.algorithm == algorithm
        && sidecar.directory_inode == inode
        && sidecar.files.len() == tree.files.len()
        && sidecar
            .files
            .iter()
            .zip(&tree.files)
            .all(|(recorded, found)| {
                recorded.file_path == found.rel
                    && recorded.total_bytes == found.len
                    && recorded.hash_value.len() == 128
                    && recorded
                        .hash_value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
}

/// A file as it landed in production.
struct Landed {
    digest: FileDigest,
    /// Its size on disk after syncing.
    size: u64,
}

/// Copies `src` to the new file `dst` while hashing, then syncs it.
///
/// For large files a helper thread flushes what has been written every [`SYNC_EVERY`] bytes, so
/// the write-back to the production volume overlaps the copy instead of all waiting for the
/// final sync (and dirty pages stay bounded).
fn copy_file(
    src: &Path,
    dst: &Path,
    len: u64,
    algorithm: HashAlgorithm,
) -> Result<Landed, StorageError> {
    let reader = File::open(src).at("open the staged file", src)?;
    let writer = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .at("create", dst)?;
    let digest = if len > SYNC_EVERY {
        let syncing = writer.try_clone().at("open", dst)?;
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        std::thread::scope(|scope| {
            let syncer = scope.spawn(move || -> io::Result<()> {
                for () in kicked {
                    syncing.sync_data()?;
                }
                Ok(())
            });
            let copied = copy_hashing(
                &reader,
                KickingWriter {
                    file: &writer,
                    unsynced: 0,
                    kick,
                },
                algorithm,
            );
            // `copy_hashing` consumed the writer, so the channel is closed and the syncer ends.
            // Its error must be reported here: the kernel reports a write-back error to one
            // sync only, which may have been the syncer's.
            let synced = syncer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            synced.and(copied)
        })
    } else {
        copy_hashing(&reader, &writer, algorithm)
    }
    .at("copy into production", dst)?;
    writer.sync_all().at("sync", dst)?;
    let size = writer.metadata().at("inspect", dst)?.len();
    Ok(Landed { digest, size })
}

/// Bytes written between two background flushes in [`copy_file`].
const SYNC_EVERY: u64 = 8 << 20;

/// Writes to a file and asks the syncer to flush every [`SYNC_EVERY`] bytes, without waiting.
struct KickingWriter<'a> {
    file: &'a File,
    unsynced: u64,
    kick: mpsc::SyncSender<()>,
}

impl Write for KickingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY {
            self.unsynced = 0;
            // Full means a flush is already pending, which will cover these bytes too.
            let _ = self.kick.try_send(());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes a file where it is, optionally syncing it too.
fn hash_in_place(
    path: &Path,
    algorithm: HashAlgorithm,
    sync: bool,
) -> Result<Landed, StorageError> {
    let file = File::open(path).at("open", path)?;
    let digest = hash_reader(&file, algorithm).at("read", path)?;
    if sync {
        file.sync_all().at("sync", path)?;
    }
    let size = file.metadata().at("inspect", path)?.len();
    Ok(Landed { digest, size })
}

/// Errors of `link(2)` that mean "copy instead": another filesystem, or one without hard links.
fn cannot_link(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(Errno::XDEV | Errno::PERM | Errno::OPNOTSUPP | Errno::MLINK)
    )
}

/// Removes a temporary file or folder unless disarmed.
struct RemoveOnDrop(Option<std::path::PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            fsops::discard(&path);
        }
    }
}
