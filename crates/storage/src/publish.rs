//! Publishing: promoting the staged result to production, with a manifest of hashes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use publish_hash::{FileDigest, HashAlgorithm};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::bag::{self, BagInfo};
use crate::error::{IoContext, StorageError};
use crate::failpoints;
use crate::fsops::{
    self, Digests, Landed, RemoveOnDrop, Swap, Tree, copy_file, hash_in_place, names,
};
use crate::locked::ProjectLock;
use crate::manifest::{SIDECAR_FORMAT, Sidecar};
use crate::paths::{Container, ProjectArea};
use crate::record::{PackageRecord, RECORD_FILE, StagedFile};

/// How to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOptions {
    /// The digest recorded in the manifest; SHA-512 unless asked otherwise.
    pub algorithm: HashAlgorithm,
    /// Copy every byte even when staging and production share a filesystem (tests and
    /// benchmarks use this to exercise the cross-filesystem path on one disk).
    pub force_copy: bool,
    /// Publish the result as a BagIt bag (`bag.rs`): its tag files beside `data/`, written in
    /// the same commit as the data. `None`: the data alone. Default: a bag.
    pub bag: Option<BagInfo>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            algorithm: HashAlgorithm::default(),
            force_copy: false,
            bag: Some(BagInfo::default()),
        }
    }
}

/// What a publish produced: one entry per published file, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The published files.
    pub files: Vec<PublishedFile>,
}

/// One published file, as reported to the caller (the response contract's type).
pub use publish_types::PublishedFile;

impl ProjectLock {
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
        self.area.publish(options)
    }
}

impl ProjectArea {
    /// [`ProjectLock::publish`]; only the lock's holder calls it.
    fn publish(&self, options: &PublishOptions) -> Result<Manifest, StorageError> {
        // The containers were checked when the lock was taken.
        self.refuse_links()?;
        let outcome = if fsops::is_real_dir(&self.staging_dir())? {
            self.promote(options)
        } else if fsops::is_real_dir(&self.production_dir())? {
            self.already_published(options)
        } else {
            Err(self.nothing_to_publish())
        };
        self.tidy();
        outcome
    }

    fn promote(&self, options: &PublishOptions) -> Result<Manifest, StorageError> {
        let staging = self.staging_dir();
        let start = self.start.as_str();
        let record = PackageRecord::read(&staging)?.ok_or_else(|| StorageError::MissingRecord {
            project: self.project.to_string(),
            start: start.to_owned(),
        })?;
        let tree = fsops::walk(&staging)?;
        check_against_record(&tree, &record)?;
        let total: u64 = record.files.iter().map(|f| f.total_bytes).sum();
        tracing::info!(
            destination = %self.destination.name(), project = %self.project, start,
            files = record.files.len(), datasets = record.datasets.len(), bytes = total,
            algorithm = %options.algorithm,
            "publishing the staged result"
        );
        let began = Instant::now();

        let parent = self.production_parent();
        if !fsops::exists(&parent)? {
            fs::create_dir_all(&parent).at("create the project's production folder", &parent)?;
            fsops::sync_dir(&self.destination.production_root())?;
        }
        self.ensure_work(Container::Staging)?;
        self.ensure_work(Container::Production)?;
        if !options.force_copy && self.one_filesystem()? {
            match self.promote_by_move(&record, options)? {
                Some(manifest) => {
                    self.log_promoted(&manifest, total, began);
                    return Ok(manifest);
                }
                None => tracing::debug!("the containers share a device but not a mount; copying"),
            }
        }
        let manifest = self.promote_by_copy(record, &tree, options)?;
        self.log_promoted(&manifest, total, began);
        Ok(manifest)
    }

    /// Copies the staged files, each read once to hash it and checked against the record, into
    /// a temporary folder on the production volume, writes the bag's tag files beside them,
    /// makes it durable, records its manifest and swaps it in; then removes the staged result
    /// and, last, the previous published one.
    fn promote_by_copy(
        &self,
        record: PackageRecord,
        tree: &fsops::Tree,
        options: &PublishOptions,
    ) -> Result<Manifest, StorageError> {
        let staging = self.staging_dir();
        let parent = self.production_parent();
        let work = self.work_dir(Container::Production);
        let tmp = work.join(names::fresh(names::TMP));
        let guard = RemoveOnDrop(Some(tmp.clone()));
        fs::create_dir(&tmp).at("create a temporary production folder", &tmp)?;
        for dir in &tree.dirs {
            let path = tmp.join(dir);
            fs::create_dir(&path).at("create a production folder", &path)?;
        }

        let files = record
            .files
            .iter()
            .map(|entry| copy_checked(&staging, &tmp, entry, record.algorithm, options.algorithm))
            .collect::<Result<Vec<_>, _>>()?;
        fsops::sync_tree(&tmp, tree, true)?;
        failpoints::hit(failpoints::PUBLISH_COPY_COPIED);
        self.write_bag(&tmp, &files, options)?;
        failpoints::hit(failpoints::PUBLISH_COPY_BAGGED);

        let inode = fs::metadata(&tmp).at("inspect", &tmp)?.ino();
        self.write_sidecar(&Sidecar {
            format: SIDECAR_FORMAT,
            algorithm: options.algorithm,
            directory_inode: inode,
            files: files.clone(),
            datasets: record.datasets,
            package_id: record.package_id,
        })?;
        failpoints::hit(failpoints::PUBLISH_COPY_SIDECAR);
        let aside = work.join(names::fresh(names::OLD));
        let superseded = fsops::replace_dir(
            &tmp,
            &self.production_dir(),
            &parent,
            &aside,
            Swap::Exchange,
        )?;
        guard.disarm();
        failpoints::hit(failpoints::PUBLISH_COPY_SWAPPED);

        self.remove_staging();
        if let Some(old) = superseded {
            fsops::discard(&old);
        }
        Ok(Manifest { files })
    }

    /// Writes the bag's tag files into `dir`, if the options ask for a bag.
    fn write_bag(
        &self,
        dir: &Path,
        files: &[PublishedFile],
        options: &PublishOptions,
    ) -> Result<(), StorageError> {
        let Some(info) = &options.bag else {
            return Ok(());
        };
        let identifier = format!("{}/{}", self.project, self.start);
        bag::write(dir, files, options.algorithm, info, &identifier)
    }

    /// At debug: the caller (the workflow) logs the publish at info, also when a retry found it
    /// already done.
    fn log_promoted(&self, manifest: &Manifest, bytes: u64, began: Instant) {
        tracing::debug!(
            destination = %self.destination.name(), project = %self.project, start = %self.start,
            files = manifest.files.len(), bytes, seconds = began.elapsed().as_secs_f64(),
            "files promoted"
        );
    }

    /// True when both containers are on one device, so the staged result can be moved.
    fn one_filesystem(&self) -> Result<bool, StorageError> {
        let dev = |path: &Path| fs::metadata(path).at("inspect", path).map(|m| m.dev());
        Ok(dev(&self.destination.staging_root())? == dev(&self.destination.production_root())?)
    }

    /// Publishes on one filesystem by moving the staged result rather than copying or linking
    /// it: every file is first read once in place and checked against the record (the
    /// manifest's digests), then the staged folder, with its record, is renamed into the
    /// area's production work folder (`incoming-*`), checked again to hold exactly the recorded
    /// files, given the bag's tag files and swapped into place; the record, which says until
    /// then that the folder is a staged result on its way in, is removed from the published
    /// folder right after the swap (the commit). Production never shares an inode with
    /// staging. Until the swap, a failure renames it back into staging; a crash is repaired the
    /// same way by the next operation (`recover.rs`). `None` when the rename finds two mounts
    /// after all.
    fn promote_by_move(
        &self,
        record: &PackageRecord,
        options: &PublishOptions,
    ) -> Result<Option<Manifest>, StorageError> {
        let staging = self.staging_dir();
        let mut files = Vec::with_capacity(record.files.len());
        let digests = Digests {
            answer: options.algorithm,
            record: record.algorithm,
        };
        for entry in &record.files {
            // One read gives the answer and the check against the record.
            let Landed {
                digest,
                recorded,
                size,
            } = hash_in_place(&staging, &entry.file_path, digests, false)?;
            check_digest(entry, &recorded)?;
            files.push(PublishedFile {
                file_path: entry.file_path.clone(),
                hash_value: digest.hex,
                total_bytes: size,
            });
        }
        let work = self.work_dir(Container::Production);
        let incoming = work.join(names::fresh(names::INCOMING));
        match fs::rename(&staging, &incoming) {
            Ok(()) => {}
            Err(e) if Errno::from_io_error(&e) == Some(Errno::XDEV) => return Ok(None),
            Err(e) => return Err(e).at("move the staged result into production at", &incoming),
        }
        let put_back = PutBack {
            from: incoming.clone(),
            to: staging.clone(),
            armed: true,
        };
        fsops::sync_dir(&self.staging_parent())?;
        failpoints::hit(failpoints::PUBLISH_MOVE_MOVED);
        let tree = fsops::walk(&incoming)?;
        check_against_record(&tree, record)?;
        self.write_bag(&incoming, &files, options)?;
        failpoints::hit(failpoints::PUBLISH_MOVE_BAGGED);
        fsops::sync_tree(&incoming, &tree, true)?;
        let inode = fs::metadata(&incoming).at("inspect", &incoming)?.ino();
        self.write_sidecar(&Sidecar {
            format: SIDECAR_FORMAT,
            algorithm: options.algorithm,
            directory_inode: inode,
            files: files.clone(),
            datasets: record.datasets.clone(),
            package_id: record.package_id.clone(),
        })?;
        failpoints::hit(failpoints::PUBLISH_MOVE_SIDECAR);
        let published = self.production_dir();
        let aside = work.join(names::fresh(names::OLD));
        let superseded = fsops::replace_dir(
            &incoming,
            &published,
            &self.production_parent(),
            &aside,
            Swap::Exchange,
        )?;
        put_back.disarm();
        failpoints::hit(failpoints::PUBLISH_MOVE_SWAPPED);
        // Committed: the record has said what the folder was until now.
        let record_path = published.join(RECORD_FILE);
        fs::remove_file(&record_path).at("remove the package record from", &record_path)?;
        fsops::sync_dir(&published)?;
        failpoints::hit(failpoints::PUBLISH_MOVE_RECORD_STRIPPED);
        if let Some(old) = superseded {
            fsops::discard(&old);
        }
        for file in &files {
            tracing::info!(file = %file.file_path, bytes = file.total_bytes, method = "moved", "published file");
        }
        Ok(Some(Manifest { files }))
    }

    fn already_published(&self, options: &PublishOptions) -> Result<Manifest, StorageError> {
        let dir = self.production_dir();
        let recorded = self.read_sidecar();
        if let Some(sidecar) = &recorded {
            if sidecar.algorithm == options.algorithm && self.sidecar_matches_production(sidecar)? {
                tracing::info!(project = %self.project, start = %self.start, "already published; returning the recorded manifest");
                return Ok(Manifest {
                    files: recorded.map(|s| s.files).unwrap_or_default(),
                });
            }
            tracing::warn!(project = %self.project, start = %self.start, "the recorded manifest does not match the published files; hashing them again");
        }
        let tree = fsops::walk(&dir)?;
        let inode = fs::metadata(&dir).at("inspect", &dir)?.ino();
        let mut files = Vec::with_capacity(tree.files.len());
        for entry in tree.files.iter().filter(|f| bag::is_payload(&f.rel)) {
            let Landed { digest, size, .. } =
                hash_in_place(&dir, &entry.rel, Digests::only(options.algorithm), false)?;
            files.push(PublishedFile {
                file_path: entry.rel.clone(),
                hash_value: digest.hex,
                total_bytes: size,
            });
        }
        let (datasets, package_id) = recorded
            .map(|s| (s.datasets, s.package_id))
            .unwrap_or_default();
        let sidecar = Sidecar {
            format: SIDECAR_FORMAT,
            algorithm: options.algorithm,
            directory_inode: inode,
            files,
            // Which dataset staged what is still true of a result re-hashed in place.
            datasets,
            package_id,
        };
        if let Err(error) = self.write_sidecar(&sidecar) {
            tracing::warn!(%error, "could not record the manifest; a retry will hash the files again");
        }
        Ok(Manifest {
            files: sidecar.files,
        })
    }
}

/// Refuses a staged tree that differs from its package record: a file the record lists that
/// is missing or of another size, or a file it does not list.
fn check_against_record(tree: &Tree, record: &PackageRecord) -> Result<(), StorageError> {
    for found in &tree.files {
        if found.rel != RECORD_FILE && record.file(&found.rel).is_none() {
            return Err(StorageError::UnexpectedStagedFile {
                file: found.rel.clone(),
            });
        }
    }
    for recorded in &record.files {
        match tree.files.iter().find(|f| f.rel == recorded.file_path) {
            None => {
                return Err(StorageError::StagedFileChanged {
                    file: recorded.file_path.clone(),
                    reason: "is missing".into(),
                });
            }
            Some(found) if found.len != recorded.total_bytes => {
                return Err(StorageError::StagedFileChanged {
                    file: recorded.file_path.clone(),
                    reason: format!(
                        "is {} bytes, but its package recorded {}",
                        found.len, recorded.total_bytes
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Copies one staged file to `tmp`, hashing it on the way, and checks it against its record
/// entry (digest and size): the answer's digest and the record's come from the one read.
fn copy_checked(
    staging: &Path,
    tmp: &Path,
    entry: &StagedFile,
    recorded: HashAlgorithm,
    algorithm: HashAlgorithm,
) -> Result<PublishedFile, StorageError> {
    let dst = tmp.join(&entry.file_path);
    let file_began = Instant::now();
    let reader = fsops::open_beneath(staging, &entry.file_path)?;
    let digests = Digests {
        answer: algorithm,
        record: recorded,
    };
    let Landed {
        digest,
        recorded,
        size,
    } = copy_file(reader, &dst, entry.total_bytes, digests)?;
    check_digest(entry, &recorded)?;
    if digest.total_bytes != entry.total_bytes || size != digest.total_bytes {
        return Err(StorageError::SizeMismatch {
            file: entry.file_path.clone(),
            expected: entry.total_bytes,
            hashed: digest.total_bytes,
            landed: size,
        });
    }
    let secs = file_began.elapsed().as_secs_f64();
    tracing::info!(
        file = %entry.file_path, bytes = size, method = "copied", seconds = secs,
        mib_per_s = size as f64 / (1 << 20) as f64 / secs.max(1e-9),
        "published file"
    );
    Ok(PublishedFile {
        file_path: entry.file_path.clone(),
        hash_value: digest.hex,
        total_bytes: size,
    })
}

/// Refuses a file whose digest differs from the recorded one.
fn check_digest(recorded: &StagedFile, digest: &FileDigest) -> Result<(), StorageError> {
    if digest.hex != recorded.hash_value || digest.total_bytes != recorded.total_bytes {
        return Err(StorageError::StagedFileChanged {
            file: recorded.file_path.clone(),
            reason: "differs from what its package recorded (its digest changed)".into(),
        });
    }
    Ok(())
}

/// Renames a staged result moved into the production work folder back into staging (without
/// the bag's tag files written into it), unless disarmed.
struct PutBack {
    from: std::path::PathBuf,
    to: std::path::PathBuf,
    armed: bool,
}

impl PutBack {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for PutBack {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(error) = bag::remove(&self.from) {
            tracing::error!(%error, "could not remove the bag's tag files from the staged result; the next operation on this project will");
            return;
        }
        if let Err(error) = fs::rename(&self.from, &self.to) {
            tracing::error!(from = %self.from.display(), %error, "could not put the staged result back into staging; the next operation on this project will");
        }
    }
}
