//! Bringing a project area back to a committed state after an interrupted operation: run by
//! every locked operation before it does anything else ([`ProjectArea::lock`]) and by the
//! start-up sweep. Each rule follows from what a work folder's name and content say it holds
//! (docs/CONTRACT.md §7.1):
//!
//! | found | holds | done |
//! |---|---|---|
//! | `tmp-*` (either volume) | a result being built, or after a swap the previous one | removed |
//! | `trash-*` | a result being deleted | removed |
//! | `old-*` | a previous result set aside for a swap | renamed back if the result is missing, else removed |
//! | `incoming-*` with a package record | a staged result moved toward production, not yet swapped in | put back into staging, the bag's tag files removed |
//! | `incoming-*` without one | after the swap, the previous published result | removed (before work folders recorded this, a result whose record was already stripped: put back) |
//! | a package record in the published result | a publish on one filesystem that swapped its result in | the record removed: the publish is complete |
//! | a staged result identical to the published one its manifest names | a publish by copy that swapped its result in | the staged result removed: the publish is complete |
//!
//! So an interrupted package leaves the previous staged result or the new one, and an
//! interrupted publish the old production and the staged result with its record, or the new
//! production with nothing staged; a retried publish then answers the same manifest.

use std::fs;

use publish_hash::hash_reader;

use crate::bag;
use crate::error::{IoContext, StorageError};
use crate::fsops::{self, Leftovers, names};
use crate::paths::{Container, ProjectArea};
use crate::record::{PackageRecord, RECORD_FILE};

impl ProjectArea {
    /// Repairs what interrupted operations left of this area on both volumes (the production
    /// one only where its container exists). Needs the lock. Returns how many leftovers it
    /// repaired.
    pub(crate) fn recover(&self) -> Result<usize, StorageError> {
        let mut repaired = 0;
        // Production first: a staged result on its way in goes back into staging before
        // anything in staging is looked at.
        if fsops::is_real_dir(&self.destination.production_root())? {
            repaired += self.recover_production()?;
        }
        repaired += self.recover_staging()?;
        Ok(repaired)
    }

    fn recover_staging(&self) -> Result<usize, StorageError> {
        self.refuse_service_links(Container::Staging)?;
        let legacy = format!(".{}.", self.start.as_str());
        let target = self.staging_dir();
        let mut repaired = 0;
        for (dir, prefix) in [
            (self.staging_parent(), legacy.as_str()),
            (self.work_dir(Container::Staging), ""),
        ] {
            repaired += fsops::clean_leftovers(&Leftovers {
                dir: &dir,
                prefix,
                target: &target,
            })?;
        }
        Ok(repaired)
    }

    fn recover_production(&self) -> Result<usize, StorageError> {
        self.refuse_service_links(Container::Production)?;
        let work = self.work_dir(Container::Production);
        let published = self.production_dir();
        let staging = self.staging_dir();
        let mut repaired = 0;
        // Judged before any old result is restored: a stripped incoming result of an older
        // version is a staged result only while production is missing.
        let published_before = fsops::exists(&published)?;
        for (_, incoming) in fsops::list_kinds(&work, "", &[names::INCOMING])? {
            let has_record = fsops::exists(&incoming.join(RECORD_FILE))?;
            if has_record || !published_before {
                if fsops::exists(&staging)? {
                    return Err(StorageError::Internal {
                        message: format!(
                            "a staged result interrupted on its way to production is at {}, \
                             and another is staged; move one away by hand",
                            incoming.display()
                        ),
                    });
                }
                tracing::warn!(path = %incoming.display(), staging = %staging.display(), "putting a staged result back into staging after an interrupted publish");
                bag::remove(&incoming)?;
                fs::create_dir_all(self.staging_parent())
                    .at("create the project's staging folder", self.staging_parent())?;
                fs::rename(&incoming, &staging).at("put the staged result back from", &incoming)?;
                fsops::sync_dir(&self.staging_parent())?;
                if !has_record {
                    tracing::error!(path = %staging.display(), "the staged result put back has no package record (stripped by an older version): package the project again");
                }
            } else {
                tracing::info!(path = %incoming.display(), "removing the previous published result an interrupted publish left");
                fsops::remove_any(&incoming).at("remove the leftover", &incoming)?;
            }
            repaired += 1;
        }
        let legacy = format!(".{}.", self.start.as_str());
        for (dir, prefix) in [
            (self.production_parent(), legacy.as_str()),
            (work.clone(), ""),
        ] {
            repaired += fsops::clean_leftovers(&Leftovers {
                dir: &dir,
                prefix,
                target: &published,
            })?;
        }
        if fsops::is_real_dir(&published)? {
            repaired += self.complete_move(&published)?;
            repaired += self.complete_copy()?;
        }
        Ok(repaired)
    }

    /// A package record inside the published result: a publish on one filesystem swapped it in
    /// and stopped before removing the record. The publish is complete once it is removed.
    fn complete_move(&self, published: &std::path::Path) -> Result<usize, StorageError> {
        let record = published.join(RECORD_FILE);
        match fs::symlink_metadata(&record) {
            Ok(meta) if meta.is_file() => {
                tracing::warn!(path = %record.display(), "completing an interrupted publish: removing the package record from the published result");
                fs::remove_file(&record).at("remove the package record from", &record)?;
                fsops::sync_dir(published)?;
                Ok(1)
            }
            Ok(_) => Err(StorageError::UnsupportedEntry {
                path: record,
                kind: "non-file with the package record's name",
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).at("inspect", &record),
        }
    }

    /// A staged result whose package the production manifest names, and which the published
    /// result matches: a publish by copy swapped it in and stopped before removing staging.
    /// The published files are hashed and compared with the record before staging is removed,
    /// so approved data is only ever removed when production holds exactly the same bytes.
    fn complete_copy(&self) -> Result<usize, StorageError> {
        let staging = self.staging_dir();
        if !fsops::is_real_dir(&staging)? {
            return Ok(0);
        }
        let Some(record) = PackageRecord::read(&staging)? else {
            return Ok(0);
        };
        let Some(sidecar) = self.read_sidecar() else {
            return Ok(0);
        };
        if record.package_id.is_none()
            || sidecar.package_id != record.package_id
            || !self.sidecar_matches_production(&sidecar)?
        {
            return Ok(0);
        }
        let published = self.production_dir();
        for file in &record.files {
            let reader = fsops::open_beneath(&published, &file.file_path)?;
            let digest = hash_reader(reader, record.algorithm)
                .at("read", published.join(&file.file_path))?;
            if digest.hex != file.hash_value || digest.total_bytes != file.total_bytes {
                return Ok(0);
            }
        }
        tracing::warn!(path = %staging.display(), "completing an interrupted publish: production holds the staged result, which is removed");
        self.remove_staging();
        Ok(1)
    }
}
