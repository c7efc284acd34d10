//! What a destination's volumes guarantee: the filesystem each container is on, found with
//! `statfs`, and what that means for renames, locks, links and durability.
//!
//! CR8TOR mounts staging and production as Azure Blob containers through the blob CSI driver's
//! FUSE mode (BlobFuse); older deployments used Azure Files (SMB). There hard links and
//! symbolic links fail or do not exist, a folder rename may be a copy of every object and is not
//! atomic, and `flock` holds on one node only. The code paths of this crate do not depend on
//! what a filesystem lacks (hard links fall back to copies, `RENAME_EXCHANGE` to two renames,
//! an unsupported directory fsync is tolerated); this module says what is guaranteed where, so
//! an operator can see it in the start-up log.

use std::fmt;
use std::path::Path;

/// The kind of filesystem a container is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsKind {
    /// A local disk filesystem (ext4, XFS, Btrfs, overlay, …).
    Local,
    /// tmpfs (memory).
    Tmpfs,
    /// NFS.
    Nfs,
    /// SMB/CIFS (Azure Files).
    Smb,
    /// A FUSE filesystem (BlobFuse, rclone, …: Azure Blob containers).
    Fuse,
    /// Anything else; the magic number is kept.
    Other(u64),
}

impl FsKind {
    fn from_magic(magic: u64) -> Self {
        match magic {
            0xEF53 | 0x5846_5342 | 0x9123_683E | 0x794C_7630 | 0x2FC1_2FC1 | 0xF2F5_2010 => {
                Self::Local
            }
            0x0102_1994 | 0x8584_58F6 => Self::Tmpfs,
            0x6969 => Self::Nfs,
            0xFF53_4D42 | 0xFE53_4D42 | 0x517B => Self::Smb,
            0x6573_5546 => Self::Fuse,
            other => Self::Other(other),
        }
    }

    fn name(self) -> String {
        match self {
            Self::Local => "local".into(),
            Self::Tmpfs => "tmpfs".into(),
            Self::Nfs => "nfs".into(),
            Self::Smb => "smb/cifs".into(),
            Self::Fuse => "fuse".into(),
            Self::Other(magic) => format!("other (magic {magic:#x})"),
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What one container's filesystem guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeFacts {
    /// The filesystem kind.
    pub kind: FsKind,
    /// A folder rename is one atomic metadata operation.
    pub atomic_rename: bool,
    /// `flock` excludes processes on other nodes too, so several replicas may share the volume.
    pub cross_node_locks: bool,
    /// Hard links can be made (publish never uses them; staging may, to carry files).
    pub hard_links: bool,
    /// Symbolic links can be made (never followed on these volumes anyway).
    pub symlinks: bool,
}

impl VolumeFacts {
    /// The facts of the filesystem holding `path`.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let stat = rustix::fs::statfs(path)?;
        #[allow(
            clippy::unnecessary_cast,
            reason = "f_type's width differs between targets"
        )]
        let kind = FsKind::from_magic(stat.f_type as u64);
        Ok(Self::for_kind(kind))
    }

    fn for_kind(kind: FsKind) -> Self {
        match kind {
            FsKind::Local | FsKind::Tmpfs => Self {
                kind,
                atomic_rename: true,
                cross_node_locks: false,
                hard_links: true,
                symlinks: true,
            },
            // NFSv4 locks reach the server; renames are atomic on the server.
            FsKind::Nfs => Self {
                kind,
                atomic_rename: true,
                cross_node_locks: true,
                hard_links: true,
                symlinks: true,
            },
            // Azure Files: renames are atomic on the share, but `flock` is not forwarded as a
            // share-wide lock; no hard links or symbolic links without special mount options.
            FsKind::Smb => Self {
                kind,
                atomic_rename: true,
                cross_node_locks: false,
                hard_links: false,
                symlinks: false,
            },
            // Blob storage behind FUSE: a folder rename copies every object.
            FsKind::Fuse | FsKind::Other(_) => Self {
                kind,
                atomic_rename: false,
                cross_node_locks: false,
                hard_links: false,
                symlinks: false,
            },
        }
    }
}

impl fmt::Display for VolumeFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "{} (atomic folder rename: {}, locks across nodes: {}, hard links: {}, symbolic links: {})",
            self.kind,
            yes(self.atomic_rename),
            yes(self.cross_node_locks),
            yes(self.hard_links),
            yes(self.symlinks)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_magic_numbers() {
        assert_eq!(FsKind::from_magic(0xEF53), FsKind::Local);
        assert_eq!(FsKind::from_magic(0x0102_1994), FsKind::Tmpfs);
        assert_eq!(FsKind::from_magic(0x6573_5546), FsKind::Fuse);
        assert_eq!(FsKind::from_magic(0xFE53_4D42), FsKind::Smb);
        assert_eq!(FsKind::from_magic(0x6969), FsKind::Nfs);
        assert_eq!(FsKind::from_magic(7), FsKind::Other(7));
        let fuse = VolumeFacts::for_kind(FsKind::Fuse);
        assert!(!fuse.atomic_rename && !fuse.cross_node_locks && !fuse.hard_links);
        assert_eq!(
            fuse.to_string(),
            "fuse (atomic folder rename: no, locks across nodes: no, hard links: no, symbolic links: no)"
        );
    }

    #[test]
    fn the_temporary_folder_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let facts = VolumeFacts::of(dir.path()).unwrap();
        assert!(facts.atomic_rename, "{facts}");
        if Path::new("/dev/shm").is_dir() {
            assert_eq!(
                VolumeFacts::of(Path::new("/dev/shm")).unwrap().kind,
                FsKind::Tmpfs
            );
        }
    }
}
