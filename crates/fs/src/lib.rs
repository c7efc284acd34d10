//! File-system helpers shared by the storage crate and the sink writers, so both make files
//! durable and recognise a full volume the same way. Plain `std::io` errors: each caller adds
//! its own context.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use rustix::io::Errno;

/// Flushes a folder's entries (new files, renames) to stable storage. Filesystems that cannot
/// sync a folder (some network filesystems and FUSE mounts answer `EINVAL` or `EOPNOTSUPP`) are
/// tolerated: there the rename itself is what counts.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    match dir.sync_all() {
        Err(e)
            if matches!(
                Errno::from_io_error(&e),
                Some(Errno::INVAL | Errno::OPNOTSUPP)
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// True when an I/O error means the volume is full (`ENOSPC`) or a quota is exhausted
/// (`EDQUOT`).
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(Errno::from_io_error(e), Some(Errno::NOSPC | Errno::DQUOT))
        || e.kind() == io::ErrorKind::StorageFull
}

/// The same for an error known only by its text (DuckDB's, an encoder's), which carries the
/// operating system's message.
pub fn text_is_out_of_space(text: &str) -> bool {
    text.contains("No space left on device")
        || text.contains("os error 28")
        || text.contains("Disk quota exceeded")
}

/// Removes a file or a folder tree without following a symbolic link; a missing path is not an
/// error.
pub fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_volumes_are_recognised_by_code_and_by_text() {
        assert!(is_out_of_space(&io::Error::from_raw_os_error(28)));
        assert!(is_out_of_space(&io::Error::from_raw_os_error(122)));
        assert!(is_out_of_space(&io::Error::from(
            io::ErrorKind::StorageFull
        )));
        assert!(!is_out_of_space(&io::Error::from_raw_os_error(5)));
        assert!(text_is_out_of_space("IO Error: No space left on device"));
        assert!(!text_is_out_of_space("Constraint Error"));
    }

    #[test]
    fn folders_sync_and_trees_are_removed_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("keep");
        fs::create_dir(&keep).unwrap();
        fs::write(keep.join("f"), b"x").unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("a")).unwrap();
        std::os::unix::fs::symlink(&keep, tree.join("a/link")).unwrap();
        sync_dir(&tree).unwrap();
        remove_any(&tree).unwrap();
        assert!(!tree.exists());
        assert!(keep.join("f").exists(), "the link's target survives");
        remove_any(&tree).unwrap();
        assert!(sync_dir(&tree).is_err());
    }
}
