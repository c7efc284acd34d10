//! The manifest a publish answered, recorded beside the published folder (never inside it):
//! `<mount>/production/<project>/.<start>.manifest.json`, so that a retried publish answers
//! the same digests without reading the files, and an interrupted one is recognised
//! (`recover.rs`).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;

use publish_hash::HashAlgorithm;
use serde::{Deserialize, Serialize};

use crate::bag;
use crate::error::{IoContext, StorageError};
use crate::fsops::{self, RemoveOnDrop, names};
use crate::paths::{Container, ProjectArea};
use crate::record::DatasetRecord;
use publish_types::PublishedFile;

/// The manifest as recorded next to the published result (never inside it).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Sidecar {
    pub(crate) format: u32,
    pub(crate) algorithm: HashAlgorithm,
    /// The inode of the published folder, which a rename keeps; a folder replaced by other means
    /// no longer matches, and is then rehashed.
    pub(crate) directory_inode: u64,
    /// The payload files (`data/…`), as answered.
    pub(crate) files: Vec<PublishedFile>,
    /// Which dataset staged which tables and files (from the package record), for provenance.
    #[serde(default)]
    pub(crate) datasets: Vec<DatasetRecord>,
    /// The package record's id of the staged result published
    /// ([`PackageRecord::package_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) package_id: Option<String>,
}

/// The sidecar's layout version.
pub(crate) const SIDECAR_FORMAT: u32 = 1;

impl ProjectArea {
    /// True when the published folder is the one `sidecar` describes: the same folder (inode)
    /// with exactly its payload files at their sizes.
    pub(crate) fn sidecar_matches_production(
        &self,
        sidecar: &Sidecar,
    ) -> Result<bool, StorageError> {
        let dir = self.production_dir();
        let tree = fsops::walk(&dir)?;
        let inode = fs::metadata(&dir).at("inspect", &dir)?.ino();
        let payload: Vec<_> = tree
            .files
            .iter()
            .filter(|f| bag::is_payload(&f.rel))
            .collect();
        Ok(sidecar.format == SIDECAR_FORMAT
            && sidecar.directory_inode == inode
            && sidecar.files.len() == payload.len()
            && sidecar.files.iter().zip(payload).all(|(recorded, found)| {
                recorded.file_path == found.rel
                    && recorded.total_bytes == found.len
                    && recorded.hash_value.len() == 128
                    && recorded
                        .hash_value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            }))
    }

    fn sidecar_path(&self) -> std::path::PathBuf {
        self.production_parent()
            .join(format!(".{}.manifest.json", self.start.as_str()))
    }

    /// Missing, unreadable or malformed sidecars are all "no record": rehashing is always safe.
    pub(crate) fn read_sidecar(&self) -> Option<Sidecar> {
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
    pub(crate) fn write_sidecar(&self, sidecar: &Sidecar) -> Result<(), StorageError> {
        let parent = self.production_parent();
        let path = self.sidecar_path();
        let tmp = self
            .ensure_work(Container::Production)?
            .join(format!("{}.manifest.json", names::fresh(names::TMP)));
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
