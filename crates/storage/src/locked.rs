//! The lock of one project run, and the only way to stage or publish in it: a
//! [`ProjectLock`] owns the [`ProjectArea`] it locks, so an operation can neither run unlocked
//! nor under another area's lock. Taking it checks the containers (once per operation) and
//! brings the area back to a committed state if an earlier operation was interrupted
//! (`recover.rs`). Its staging methods are in `staging.rs`, its publish methods in
//! `publish.rs`; the start-up sweep is here.

use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use publish_types::{ProjectName, StartTime};

use crate::destinations::Destination;
use crate::error::{IoContext, StorageError};
use crate::fsops;
use crate::lock::{self, LockInner};
use crate::paths::{ProjectArea, SERVICE_DIR};

/// An exclusive lock on one project area, and the only way to stage or publish in it: the
/// lock owns the area it locks ([`crate::ProjectArea::lock`]), so an operation can neither run
/// unlocked nor under another area's lock. Released when the last of this guard and the
/// [`crate::StagingWrite`]s begun under it is dropped (or when the process dies). A clone is
/// the same lock, held until every clone is dropped.
#[derive(Clone)]
pub struct ProjectLock {
    pub(crate) inner: Arc<LockInner>,
    pub(crate) area: ProjectArea,
}

impl fmt::Debug for ProjectLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectLock")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl ProjectLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The locked area.
    pub fn area(&self) -> &ProjectArea {
        &self.area
    }
}

impl ProjectArea {
    /// Takes the exclusive lock for this `(destination, project, start time)` without waiting.
    ///
    /// It excludes other threads and tasks of this process and other processes sharing the
    /// staging volume where its filesystem's locks reach them (an OS file lock on
    /// `<mount>/staging/.publish-service/locks/.<project>.<start>.lock`, the project in lower
    /// case), and is held until the returned guard and every [`StagingWrite`](crate::StagingWrite) begun under it are
    /// dropped. If it is held elsewhere: [`StorageError::Busy`]. Both containers must exist
    /// ([`StorageError::ContainerMissing`]): they are checked here, once per operation.
    ///
    /// Once held, it first brings the area back to a committed state if an earlier operation
    /// was interrupted (see `recover.rs`): no operation ever starts on a half-finished one.
    pub fn lock(&self) -> Result<ProjectLock, StorageError> {
        self.destination.check_containers()?;
        let root = self.destination.staging_root();
        self.refuse_links()?;
        let locks = root.join(SERVICE_DIR).join("locks");
        fsops::refuse_links(&[&root.join(SERVICE_DIR), &locks])?;
        fs::create_dir_all(&locks).at("create the service's lock folder", &locks)?;
        let mut held = lock::try_lock(self.lock_path(), || StorageError::Busy {
            destination: self.destination.name().to_string(),
            project: self.project.to_string(),
            start: self.start.to_string(),
        })?;
        held.recovered = self.recover()?;
        let recovered = held.recovered;
        if recovered > 0 {
            tracing::warn!(
                destination = %self.destination.name(), project = %self.project, start = %self.start,
                repaired = recovered, "repaired what an interrupted operation left"
            );
        }
        Ok(ProjectLock {
            inner: Arc::new(held),
            area: self.clone(),
        })
    }
}

impl ProjectLock {
    /// Repairs what interrupted operations left in both work folders (done when the lock was
    /// taken) and removes the emptied folders; returns how many leftovers were repaired.
    pub(crate) fn repair(&self) -> usize {
        let repaired = self.inner.recovered;
        self.area.tidy();
        repaired
    }
}

impl Destination {
    /// Repairs what crashed operations left in this destination's work folders
    /// (`<container>/.publish-service/work/<project>/<start>/`): for every area found there
    /// whose lock can be taken now (one that a live operation holds is skipped), the same repair
    /// as its next operation would do — partial copies and superseded results removed, a
    /// previous result set aside or a staged result moved by an interrupted publish put back.
    /// Returns how many leftovers it repaired. Called at start-up.
    pub fn sweep(&self) -> Result<usize, StorageError> {
        let mut repaired = 0;
        for root in [self.staging_root(), self.production_root()] {
            let work = root.join(SERVICE_DIR).join("work");
            for (project, start) in list_areas(&work)? {
                let area = self.project(&project, &start);
                let lock = match area.lock() {
                    Ok(lock) => lock,
                    Err(StorageError::Busy { .. }) => continue,
                    Err(e) => return Err(e),
                };
                repaired += lock.repair();
            }
        }
        if repaired > 0 {
            tracing::info!(destination = %self.name(), repaired, "start-up sweep repaired what interrupted operations left");
        }
        Ok(repaired)
    }
}

/// The `(project, start)` folders under a work folder whose names are valid; others are not
/// ours and are left alone.
fn list_areas(work: &Path) -> Result<Vec<(ProjectName, StartTime)>, StorageError> {
    let mut out = Vec::new();
    let projects = match fs::read_dir(work) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).at("list", work),
    };
    for project in projects {
        let project = project.at("list", work)?;
        let Some(name) = project
            .file_name()
            .to_str()
            .and_then(|n| ProjectName::parse(n).ok())
        else {
            continue;
        };
        if !project.file_type().at("inspect", project.path())?.is_dir() {
            continue;
        }
        for start in fs::read_dir(project.path()).at("list", project.path())? {
            let start = start.at("list", project.path())?;
            if let Some(start) = start
                .file_name()
                .to_str()
                .and_then(|s| StartTime::parse(s).ok())
            {
                out.push((name.clone(), start));
            }
        }
    }
    Ok(out)
}
