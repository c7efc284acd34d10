//! The paths of one project run at one destination — its results, its work folders, its lock
//! file — and the file operations on them that need no lock (reading what is staged); the
//! bottom layer of the crate above the destinations and the file operations.

use std::fs;
use std::path::{Path, PathBuf};

use publish_types::{ProjectName, StartTime};

pub(crate) use crate::container::Container;
use crate::destinations::Destination;
use crate::error::{IoContext, StorageError};
use crate::failpoints;
use crate::fsops::{self, names};
use crate::record::{PackageRecord, RECORD_FILE};

/// The service's own folder in each container, hidden from researchers' project folders.
pub(crate) const SERVICE_DIR: &str = ".publish-service";

/// The work folders inside [`SERVICE_DIR`].
const WORK_DIR: &str = "work";

/// The folders of one `(destination, project, start time)`:
/// `<mount>/staging/<project>/<start>` and `<mount>/production/<project>/<start>`.
///
/// Its temporary folders are in the service's work folder on each volume,
/// `<container>/.publish-service/work/<project>/<start>/` (`tmp-*`, `old-*`, `trash-*`,
/// `incoming-*`), repaired by the next locked operation or the start-up sweep if an earlier
/// operation was interrupted; its lock is in `<mount>/staging/.publish-service/locks/`, and the
/// manifest of its published result is `<mount>/production/<project>/.<start>.manifest.json`.
#[derive(Debug, Clone)]
pub struct ProjectArea {
    pub(crate) destination: Destination,
    pub(crate) project: ProjectName,
    pub(crate) start: StartTime,
}

impl ProjectArea {
    /// The area of `project`'s run `start` at `destination` ([`Destination::project`]).
    pub fn new(destination: Destination, project: ProjectName, start: StartTime) -> Self {
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

    /// `<container>/.publish-service/locks/.<project, lower case>.<start>.lock`: project names
    /// that differ only in case are one project for locking (Azure Files ignores case).
    pub(crate) fn lock_path(&self) -> PathBuf {
        self.destination
            .staging_root()
            .join(SERVICE_DIR)
            .join("locks")
            .join(format!(
                ".{}.{}.lock",
                self.project.as_str().to_lowercase(),
                self.start.as_str()
            ))
    }

    /// The container's root.
    pub(crate) fn root(&self, container: Container) -> PathBuf {
        self.destination.root(container)
    }

    /// `<container>/.publish-service/work/<project>/<start>`: where this area's temporary
    /// folders live on that volume (results being built, previous results set aside or being
    /// deleted), never inside a project folder a researcher can see.
    pub(crate) fn work_dir(&self, container: Container) -> PathBuf {
        self.root(container)
            .join(SERVICE_DIR)
            .join(WORK_DIR)
            .join(self.project.as_str())
            .join(self.start.as_str())
    }

    /// Refuses a symbolic link where the service's own folders on `container` lead to this
    /// area's work folder.
    pub(crate) fn refuse_service_links(&self, container: Container) -> Result<(), StorageError> {
        let service = self.root(container).join(SERVICE_DIR);
        fsops::refuse_links(&[
            &service,
            &service.join(WORK_DIR),
            &service.join(WORK_DIR).join(self.project.as_str()),
            &self.work_dir(container),
        ])
    }

    /// Creates the area's work folder on `container` (what interrupted operations left there
    /// was repaired when the lock was taken). Needs the lock.
    pub(crate) fn ensure_work(&self, container: Container) -> Result<PathBuf, StorageError> {
        self.refuse_service_links(container)?;
        let work = self.work_dir(container);
        fs::create_dir_all(&work).at("create the service's work folder", &work)?;
        Ok(work)
    }

    /// Removes the area's work folders where they are empty (best effort: one in use is not
    /// empty and stays), so that no folder of a finished operation is left.
    pub(crate) fn tidy(&self) {
        for container in [Container::Production, Container::Staging] {
            remove_if_empty(&self.work_dir(container));
        }
    }

    /// Refuses a project or result folder that is a symbolic link (or not a folder), in staging
    /// or production: nothing is ever read, written or deleted through a link on these
    /// volumes. (The containers themselves are the operator's configuration and may be links.)
    pub(crate) fn refuse_links(&self) -> Result<(), StorageError> {
        fsops::refuse_links(&[
            &self.staging_parent(),
            &self.staging_dir(),
            &self.production_parent(),
            &self.production_dir(),
        ])
    }

    /// The files of the staged result as relative `/`-separated paths, sorted, without its
    /// package record; empty when nothing is staged.
    pub fn staged_files(&self) -> Result<Vec<String>, StorageError> {
        let dir = self.staging_dir();
        if !fsops::is_real_dir(&dir)? {
            return Ok(Vec::new());
        }
        Ok(fsops::walk(&dir)?
            .files
            .into_iter()
            .map(|f| f.rel)
            .filter(|rel| rel != RECORD_FILE)
            .collect())
    }

    /// The package record of the staged result: which dataset staged which tables and files;
    /// `None` when nothing is staged (or it was staged without a record).
    pub fn staged_record(&self) -> Result<Option<PackageRecord>, StorageError> {
        let dir = self.staging_dir();
        if !fsops::is_real_dir(&dir)? {
            return Ok(None);
        }
        PackageRecord::read(&dir)
    }

    pub(crate) fn nothing_to_publish(&self) -> StorageError {
        StorageError::NothingToPublish {
            destination: self.destination.name().to_string(),
            project: self.project.to_string(),
            start: self.start.to_string(),
        }
    }

    /// Removes the staged result now that it is published: renamed to a trash name first, so
    /// the staging path never shows a half-deleted result. A failure is logged, not returned:
    /// the publish has happened, and a retry would republish the same files.
    pub(crate) fn remove_staging(&self) {
        let staging = self.staging_dir();
        let parent = self.staging_parent();
        let trash = match self.ensure_work(Container::Staging) {
            Ok(work) => work.join(names::fresh(names::TRASH)),
            Err(error) => {
                tracing::error!(%error, "published, but could not prepare to remove the staged result");
                return;
            }
        };
        if let Err(error) = fs::rename(&staging, &trash) {
            tracing::error!(path = %staging.display(), %error, "published, but could not remove the staged result");
            return;
        }
        if let Err(error) = fsops::sync_dir(&parent) {
            tracing::warn!(%error, "published, but could not sync the staging folder");
        }
        failpoints::hit(failpoints::PUBLISH_COPY_STAGING_TRASHED);
        fsops::discard(&trash);
    }
}

/// Removes an area's work folder, and its project's, where they are empty (best effort).
pub(crate) fn remove_if_empty(work: &Path) {
    if fs::remove_dir(work).is_ok()
        && let Some(project) = work.parent()
    {
        let _ = fs::remove_dir(project);
    }
}

impl Destination {
    /// The area of one project run at this destination.
    pub fn project(&self, project: &ProjectName, start: &StartTime) -> ProjectArea {
        ProjectArea::new(self.clone(), project.clone(), start.clone())
    }
}
