//! File-system steps shared by staging and publishing: walking a result, making it durable, and
//! swapping a finished folder into place.
//!
//! Every result is built in a hidden sibling folder and then swapped in with one rename, so a
//! reader of the final path sees the complete old result or the complete new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use publish_hash::{FileDigest, HashAlgorithm, copy_hashing_with, hash_reader_with};
use rustix::io::Errno;

use crate::error::{IoContext, StorageError};

/// A regular file of a result.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    /// Relative path, `/`-separated.
    pub(crate) rel: String,
    /// Size when listed.
    pub(crate) len: u64,
}

/// The content of a result folder: sub-folders (parents before children) and regular files,
/// both sorted by relative path.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) dirs: Vec<String>,
    pub(crate) files: Vec<FileEntry>,
}

/// Lists `root` recursively without following symbolic links, refusing anything that is not a
/// folder or a regular file with a UTF-8 name.
pub(crate) fn walk(root: &Path) -> Result<Tree, StorageError> {
    settle(|| walk_once(root), root)
}

fn walk_once(root: &Path) -> Result<Tree, StorageError> {
    let mut tree = Tree::default();
    walk_into(root, "", &mut tree)?;
    tree.dirs.sort();
    tree.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(tree)
}

fn walk_into(dir: &Path, prefix: &str, tree: &mut Tree) -> Result<(), StorageError> {
    for entry in fs::read_dir(dir).at("list", dir)? {
        let entry = entry.at("list", dir)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(StorageError::UnsupportedEntry {
                path,
                kind: "file with a non-UTF-8 name",
            });
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = entry.file_type().at("inspect", &path)?;
        if file_type.is_dir() {
            walk_into(&path, &rel, tree)?;
            tree.dirs.push(rel);
        } else if file_type.is_file() {
            let len = entry.metadata().at("inspect", &path)?.len();
            tree.files.push(FileEntry { rel, len });
        } else if file_type.is_symlink() {
            return Err(StorageError::UnsupportedEntry {
                path,
                kind: "symbolic link",
            });
        } else {
            return Err(StorageError::UnsupportedEntry {
                path,
                kind: "special file",
            });
        }
    }
    Ok(())
}

/// Opens the regular file `rel` (`/`-separated) under the folder `dir` for reading, never
/// following a symbolic link: not at `dir` itself, not at any folder on the way, not at the
/// file (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; where the kernel lacks it,
/// `openat` with `O_NOFOLLOW` one component at a time). A link or a special file is
/// [`StorageError::UnsupportedEntry`] naming it.
pub(crate) fn open_beneath(dir: &Path, rel: &str) -> Result<File, StorageError> {
    settle(|| open_beneath_once(dir, rel), &dir.join(rel))
}

/// How long an `EIO` is retried ([`settle`]).
const SETTLE_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `op`, retrying while it fails with `EIO`, for up to [`SETTLE_FOR`].
///
/// FUSE mounts of blob storage answer `EIO` for a file in a folder that was just renamed until
/// the file's upload has finished (rclone's VFS cache; seen on the test rig), though the file
/// is complete. Only there is `EIO` retried: on other filesystems it is a genuine fault,
/// reported at once.
pub(crate) fn settle<T>(
    mut op: impl FnMut() -> Result<T, StorageError>,
    path: &Path,
) -> Result<T, StorageError> {
    let began = std::time::Instant::now();
    let mut wait = std::time::Duration::from_millis(50);
    let mut on_fuse = None;
    loop {
        match op() {
            Err(StorageError::Io { source, .. })
                if source.raw_os_error() == Some(Errno::IO.raw_os_error())
                    && began.elapsed() < SETTLE_FOR
                    && *on_fuse.get_or_insert_with(|| is_fuse(path)) =>
            {
                tracing::debug!(path = %path.display(), "EIO; waiting for the volume to settle");
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// True when `path` (or the nearest existing folder above it) is on a FUSE filesystem.
fn is_fuse(path: &Path) -> bool {
    path.ancestors()
        .find_map(|p| crate::VolumeFacts::of(p).ok())
        .is_some_and(|facts| facts.kind == crate::FsKind::Fuse)
}

fn open_beneath_once(dir: &Path, rel: &str) -> Result<File, StorageError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let path = dir.join(rel);
    let refused = |kind| StorageError::UnsupportedEntry {
        path: path.clone(),
        kind,
    };
    let classify = |e: Errno| match e {
        Errno::LOOP | Errno::XDEV | Errno::NOTDIR => refused("symbolic link"),
        e => StorageError::Io {
            action: "open the staged file",
            path: path.clone(),
            source: e.into(),
        },
    };
    let folder = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = rustix::fs::open(dir, folder, Mode::empty()).map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => StorageError::UnsupportedEntry {
            path: dir.to_path_buf(),
            kind: "symbolic link",
        },
        e => StorageError::Io {
            action: "open the folder",
            path: dir.to_path_buf(),
            source: e.into(),
        },
    })?;
    let file_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat2(
        &root,
        rel,
        file_flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOSYS | Errno::PERM) => {
            // No openat2 (old kernel, or filtered by seccomp): one component at a time.
            let mut parts: Vec<&str> = rel.split('/').collect();
            let name = parts.pop().unwrap_or_default();
            let mut current = root;
            for part in parts {
                if part.is_empty() || part == "." || part == ".." {
                    return Err(refused("path outside the folder"));
                }
                current =
                    rustix::fs::openat(&current, part, folder, Mode::empty()).map_err(classify)?;
            }
            rustix::fs::openat(&current, name, file_flags, Mode::empty()).map_err(classify)?
        }
        Err(e) => return Err(classify(e)),
    };
    let file = File::from(fd);
    if !file.metadata().at("inspect", &path)?.is_file() {
        return Err(refused("special file"));
    }
    Ok(file)
}

/// Refuses a symbolic link (or anything but a folder) at any of `paths` that exists: the
/// folders below a container that this crate works in must be real folders, so nothing is
/// ever read, written or deleted through a link.
pub(crate) fn refuse_links(paths: &[&Path]) -> Result<(), StorageError> {
    for path in paths {
        is_real_dir(path)?;
    }
    Ok(())
}

/// True when `path` exists (without following a final symbolic link).
pub(crate) fn exists(path: &Path) -> Result<bool, StorageError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at("inspect", path),
    }
}

/// True when `path` is a folder (not a link to one).
pub(crate) fn is_real_dir(path: &Path) -> Result<bool, StorageError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(true),
        Ok(meta) if meta.file_type().is_symlink() => Err(StorageError::UnsupportedEntry {
            path: path.to_path_buf(),
            kind: "symbolic link",
        }),
        Ok(_) => Err(StorageError::UnsupportedEntry {
            path: path.to_path_buf(),
            kind: "special file",
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at("inspect", path),
    }
}

/// Flushes a folder's entries to stable storage ([`publish_fs::sync_dir`]).
pub(crate) fn sync_dir(path: &Path) -> Result<(), StorageError> {
    publish_fs::sync_dir(path).at("sync the folder", path)
}

/// Makes a finished result durable: every file, then every folder from the deepest up.
pub(crate) fn sync_tree(root: &Path, tree: &Tree, files_synced: bool) -> Result<(), StorageError> {
    if !files_synced {
        for file in &tree.files {
            let path = root.join(&file.rel);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .at("sync", &path)?;
        }
    }
    for dir in tree.dirs.iter().rev() {
        sync_dir(&root.join(dir))?;
    }
    sync_dir(root)
}

pub(crate) use publish_fs::remove_any;

/// Removes what is left of a superseded result; failure only leaves garbage that the next
/// operation on the same project cleans up, so it is logged, not returned.
pub(crate) fn discard(path: &Path) {
    if let Err(error) = remove_any(path) {
        tracing::warn!(path = %path.display(), %error, "could not remove a superseded folder; it will be removed by the next operation on this project");
    }
}

/// How [`replace_dir`] swaps a result in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swap {
    /// `renameat2(RENAME_EXCHANGE)`, falling back to [`Swap::AsideThenIn`] when the filesystem
    /// does not support it.
    Exchange,
    /// Rename the old result aside, then the new one in. Between the two renames the final path
    /// does not exist (two metadata operations apart); a crash there leaves the old result under
    /// its aside name, which [`clean_leftovers`] renames back.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "chosen by the filesystem at run time; only unit tests force it"
        )
    )]
    AsideThenIn,
}

/// Puts the folder `new` at `target` (in `parent`; `new` on the same filesystem, usually in the
/// area's work folder): a plain rename when `target` does not exist, else an atomic exchange.
/// `aside` (beside `new`) is the name to use for the previous result if the exchange is
/// unsupported.
///
/// Returns where the superseded previous result now is (`new`'s path after an exchange, or
/// `aside`), for the caller to [`discard`] once the rest of its commit is done; `None` when
/// there was none. Either path is in the work folder, where the next locked operation knows it
/// for an old result on its way out.
pub(crate) fn replace_dir(
    new: &Path,
    target: &Path,
    parent: &Path,
    aside: &Path,
    swap: Swap,
) -> Result<Option<PathBuf>, StorageError> {
    if !exists(target)? {
        fs::rename(new, target).at("rename the finished result into place at", target)?;
        sync_dir(parent)?;
        return Ok(None);
    }
    if swap == Swap::Exchange {
        match exchange(new, target) {
            Ok(()) => {
                sync_dir(parent)?;
                // `new` now holds the previous result.
                return Ok(Some(new.to_path_buf()));
            }
            Err(e) if matches!(e, Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                tracing::debug!(path = %target.display(), errno = %e, "RENAME_EXCHANGE unsupported here; renaming aside instead");
            }
            Err(e) => {
                return Err(io::Error::from(e))
                    .at("swap the finished result into place at", target);
            }
        }
    }
    fs::rename(target, aside).at("move the previous result aside from", target)?;
    crate::failpoints::hit(crate::failpoints::SWAP_ASIDE);
    if let Err(e) = fs::rename(new, target) {
        // Put the previous result back; if even that fails, the next operation will.
        let _ = fs::rename(aside, target);
        return Err(e).at("rename the finished result into place at", target);
    }
    sync_dir(parent)?;
    Ok(Some(aside.to_path_buf()))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> Result<(), Errno> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_: &Path, _: &Path) -> Result<(), Errno> {
    Err(Errno::NOSYS)
}

/// The names of temporary folders in an area's work folder (see `ProjectArea::work_dir`).
pub(crate) mod names {
    /// A result being built: `tmp-<uuid>`. Always garbage when no lock is held.
    pub(crate) const TMP: &str = "tmp-";
    /// A previous result set aside by [`super::Swap::AsideThenIn`]: `old-<uuid>`.
    pub(crate) const OLD: &str = "old-";
    /// A result being deleted: `trash-<uuid>`.
    pub(crate) const TRASH: &str = "trash-";
    /// A staged result moved onto the production volume by a publish on one filesystem:
    /// `incoming-<uuid>`. It holds its package record until it is swapped into production, so
    /// its content says what it is: with a record, a staged result on its way in (put back into
    /// staging if the publish was interrupted); without, after the swap, the previous
    /// published result on its way out.
    pub(crate) const INCOMING: &str = "incoming-";

    /// `<kind><uuid>`.
    pub(crate) fn fresh(kind: &str) -> String {
        format!("{kind}{}", uuid::Uuid::new_v4().simple())
    }
}

/// Where an interrupted operation's leftovers are, and what to do with them.
pub(crate) struct Leftovers<'a> {
    /// The folder holding them.
    pub(crate) dir: &'a Path,
    /// The prefix their names start with before the kind (`""` in a work folder; `.<start>.`
    /// beside a result, where versions before the work folders put them).
    pub(crate) prefix: &'a str,
    /// The result they belong to: a previous result set aside is renamed back there when it is
    /// missing.
    pub(crate) target: &'a Path,
}

/// Removes what an interrupted operation left behind as `tmp-*`, `old-*` and `trash-*`, or
/// restores a previous result set aside (`old-*`) when the result itself is missing. Must only
/// be called with the project lock held; `incoming-*` folders are the caller's
/// (`ProjectArea::recover`). Returns how many entries it removed or restored.
pub(crate) fn clean_leftovers(spec: &Leftovers<'_>) -> Result<usize, StorageError> {
    let leftovers = list_kinds(
        spec.dir,
        spec.prefix,
        &[names::TMP, names::OLD, names::TRASH],
    )?;
    if leftovers.is_empty() {
        return Ok(0);
    }
    let mut restored = exists(spec.target)?;
    let count = leftovers.len();
    for (kind, path) in leftovers {
        if !restored && kind.starts_with(names::OLD) {
            tracing::warn!(path = %path.display(), target = %spec.target.display(), "restoring a previous result set aside by an interrupted operation");
            fs::rename(&path, spec.target).at("restore the previous result from", &path)?;
            restored = true;
            continue;
        }
        tracing::info!(path = %path.display(), "removing what an interrupted operation left behind");
        remove_any(&path).at("remove the leftover", &path)?;
    }
    sync_dir(spec.dir)?;
    Ok(count)
}

/// The entries of `dir` named `<prefix><kind>…` for one of `kinds`, as (name after the prefix,
/// path), sorted by name; none when `dir` does not exist.
pub(crate) fn list_kinds(
    dir: &Path,
    prefix: &str,
    kinds: &[&str],
) -> Result<Vec<(String, PathBuf)>, StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at("list", dir),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.at("list", dir)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(kind) = name.strip_prefix(prefix)
            && kinds.iter().any(|k| kind.starts_with(k))
        {
            found.push((kind.to_owned(), entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// A file as it landed in production.
pub(crate) struct Landed {
    /// In the algorithm asked for ([`Digests::answer`]).
    pub(crate) digest: FileDigest,
    /// In the package record's algorithm ([`Digests::record`]), to check the file against it.
    pub(crate) recorded: FileDigest,
    /// Its size on disk after syncing.
    pub(crate) size: u64,
}

/// The digests one read of a staged file gives: the one to answer and the package record's,
/// computed in the same pass (once when they are the same algorithm: `publish-hash` hashes an
/// algorithm named twice once).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Digests {
    pub(crate) answer: HashAlgorithm,
    pub(crate) record: HashAlgorithm,
}

impl Digests {
    /// One algorithm for both.
    pub(crate) fn only(algorithm: HashAlgorithm) -> Digests {
        Digests {
            answer: algorithm,
            record: algorithm,
        }
    }

    fn copy<R: Read, W: Write>(self, reader: R, writer: W) -> io::Result<[FileDigest; 2]> {
        copy_hashing_with(reader, writer, [self.answer, self.record])
    }

    fn read<R: Read>(self, reader: R) -> io::Result<[FileDigest; 2]> {
        hash_reader_with(reader, [self.answer, self.record])
    }
}

/// Copies `src` to the new file `dst` while hashing, then syncs it.
///
/// For large files a helper thread flushes what has been written every [`SYNC_EVERY`] bytes, so
/// the write-back to the production volume overlaps the copy instead of all waiting for the
/// final sync (and dirty pages stay bounded).
pub(crate) fn copy_file(
    reader: File,
    dst: &Path,
    len: u64,
    digests: Digests,
) -> Result<Landed, StorageError> {
    let writer = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .at("create", dst)?;
    let [digest, recorded] = if len > SYNC_EVERY {
        let syncing = writer.try_clone().at("open", dst)?;
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        std::thread::scope(|scope| {
            let syncer = scope.spawn(move || -> io::Result<()> {
                for () in kicked {
                    syncing.sync_data()?;
                }
                Ok(())
            });
            let copied = digests.copy(
                &reader,
                KickingWriter {
                    file: &writer,
                    unsynced: 0,
                    kick,
                },
            );
            // The copy consumed the writer, so the channel is closed and the syncer ends.
            // Its error must be reported here: the kernel reports a write-back error to one
            // sync only, which may have been the syncer's.
            let synced = syncer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            synced.and(copied)
        })
    } else {
        digests.copy(&reader, &writer)
    }
    .at("copy into production", dst)?;
    writer.sync_all().at("sync", dst)?;
    let size = writer.metadata().at("inspect", dst)?.len();
    Ok(Landed {
        digest,
        recorded,
        size,
    })
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

/// Hashes the file `rel` under `dir` where it is (opened without following links), optionally
/// syncing it too.
pub(crate) fn hash_in_place(
    dir: &Path,
    rel: &str,
    digests: Digests,
    sync: bool,
) -> Result<Landed, StorageError> {
    let path = dir.join(rel);
    let path = path.as_path();
    let file = open_beneath(dir, rel)?;
    let [digest, recorded] = digests.read(&file).at("read", path)?;
    if sync {
        file.sync_all().at("sync", path)?;
    }
    let size = file.metadata().at("inspect", path)?.len();
    Ok(Landed {
        digest,
        recorded,
        size,
    })
}

/// Errors of `link(2)` that mean "copy instead": another filesystem, or one without hard links
/// (FUSE mounts of blob storage answer `EIO`; a copy then fails too if the volume is broken).
pub(crate) fn cannot_link(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(
            Errno::XDEV | Errno::PERM | Errno::OPNOTSUPP | Errno::MLINK | Errno::IO | Errno::NOSYS
        )
    )
}

/// Removes a temporary file or folder unless disarmed.
pub(crate) struct RemoveOnDrop(pub(crate) Option<std::path::PathBuf>);

impl RemoveOnDrop {
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            discard(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_result(dir: &Path, marker: &str) {
        fs::create_dir_all(dir.join("data/outputs")).unwrap();
        fs::write(dir.join("data/outputs/marker"), marker).unwrap();
    }

    fn marker(dir: &Path) -> String {
        fs::read_to_string(dir.join("data/outputs/marker")).unwrap()
    }

    /// Both swap strategies replace an existing result and leave nothing else behind.
    #[test]
    fn both_swaps_replace_and_clean_up() {
        for swap in [Swap::Exchange, Swap::AsideThenIn] {
            let tmp = tempfile::tempdir().unwrap();
            let parent = tmp.path();
            let target = parent.join("20250205_010101");
            let new = parent.join(".20250205_010101.tmp-x");
            let aside = parent.join(".20250205_010101.old-x");
            make_result(&target, "old");
            make_result(&new, "new");
            let old = replace_dir(&new, &target, parent, &aside, swap)
                .unwrap()
                .unwrap();
            assert_eq!(marker(&old), "old", "{swap:?}");
            discard(&old);
            assert_eq!(marker(&target), "new", "{swap:?}");
            let left: Vec<_> = fs::read_dir(parent)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                left,
                vec![std::ffi::OsString::from("20250205_010101")],
                "{swap:?}"
            );
        }
    }

    /// A crash between the two renames of the fallback is repaired by the next operation.
    #[test]
    fn result_set_aside_is_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path();
        let start = "20250205_010101";
        make_result(&parent.join(format!(".{start}.old-abc")), "previous");
        make_result(&parent.join(format!(".{start}.tmp-def")), "half");
        make_result(
            &parent.join(".20250205_020202.tmp-other"),
            "another start time",
        );
        fs::write(parent.join(format!(".{start}.lock")), "").unwrap();
        let prefix = format!(".{start}.");
        let target = parent.join(start);
        clean_leftovers(&Leftovers {
            dir: parent,
            prefix: &prefix,
            target: &target,
        })
        .unwrap();
        assert_eq!(marker(&parent.join(start)), "previous");
        let mut left: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".20250205_010101.lock", ".20250205_020202.tmp-other", start]
        );
    }
}
