//! The configured destinations and their two containers.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use publish_types::{DestinationName, ProjectName, StartTime};

use crate::area::ProjectArea;
use crate::error::{IoContext, StorageError};

const VAR_PREFIX: &str = "TARGET_STORAGE_ACCOUNT_";
const VAR_SUFFIX: &str = "_SDE_MNT_PATH";
const STAGING: &str = "staging";
const PRODUCTION: &str = "production";

/// The destinations every deployment has, with their default mounts (docs/CONTRACT.md §11).
const DEFAULTS: [(&str, &str); 2] = [("LSC", "./outputs/lsc-sde"), ("NW", "./outputs/nw-sde")];

/// Every configured destination, by name.
#[derive(Debug, Clone)]
pub struct Destinations {
    by_name: BTreeMap<DestinationName, Destination>,
}

impl Destinations {
    /// From environment variables given as pairs (the server passes `std::env::vars()`).
    ///
    /// `LSC` defaults to `./outputs/lsc-sde` and `NW` to `./outputs/nw-sde`; any
    /// `TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH` adds or overrides `NAME`. Other variables are
    /// ignored. A `NAME` that is not a valid [`DestinationName`], an empty path, or two
    /// variables naming the same destination (`lsc` and `LSC`) are refused with
    /// [`StorageError::InvalidDestinationVariable`]. Relative mounts are relative to the
    /// process's working directory.
    pub fn from_env_vars<I: IntoIterator<Item = (String, String)>>(
        vars: I,
    ) -> Result<Self, StorageError> {
        let mut by_name = BTreeMap::new();
        for (name, mount) in DEFAULTS {
            let name = DestinationName::parse(name).map_err(|e| {
                StorageError::InvalidDestinationVariable {
                    variable: format!("{VAR_PREFIX}{name}{VAR_SUFFIX}"),
                    reason: e.to_string(),
                }
            })?;
            by_name.insert(name.clone(), Destination::new(name, PathBuf::from(mount)));
        }
        let mut set_by: BTreeMap<DestinationName, String> = BTreeMap::new();
        for (variable, value) in vars {
            let Some(rest) = variable.strip_prefix(VAR_PREFIX) else {
                continue;
            };
            let raw_name = if rest == &VAR_SUFFIX[1..] {
                ""
            } else if let Some(raw_name) = rest.strip_suffix(VAR_SUFFIX) {
                raw_name
            } else {
                continue;
            };
            let invalid = |reason: String| StorageError::InvalidDestinationVariable {
                variable: variable.clone(),
                reason,
            };
            let name = DestinationName::parse(raw_name)
                .map_err(|e| invalid(format!("destination name {raw_name:?}: {e}")))?;
            if value.trim().is_empty() {
                return Err(invalid(
                    "is empty; set it to the mount path of the destination's storage".into(),
                ));
            }
            if let Some(other) = set_by.get(&name) {
                return Err(invalid(format!(
                    "names the same destination {name} as {other}; keep one"
                )));
            }
            set_by.insert(name.clone(), variable.clone());
            by_name.insert(name.clone(), Destination::new(name, PathBuf::from(value)));
        }
        Ok(Self { by_name })
    }

    /// The destination called `name`, or [`StorageError::UnknownDestination`] listing the
    /// configured ones.
    pub fn get(&self, name: &DestinationName) -> Result<&Destination, StorageError> {
        self.by_name
            .get(name)
            .ok_or_else(|| StorageError::UnknownDestination {
                name: name.to_string(),
                known: self.by_name.keys().map(ToString::to_string).collect(),
            })
    }

    /// All destinations, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Destination> {
        self.by_name.values()
    }
}

/// One destination: a mount holding a `staging` and a `production` container, which may be
/// separate filesystems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    name: DestinationName,
    mount: PathBuf,
}

impl Destination {
    /// A destination mounted at `mount`. Tests and tools may build one directly; the server
    /// uses [`Destinations::from_env_vars`].
    pub fn new(name: DestinationName, mount: PathBuf) -> Self {
        Self { name, mount }
    }

    /// The destination's name, e.g. `LSC`.
    pub fn name(&self) -> &DestinationName {
        &self.name
    }

    /// Where its storage is mounted.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// `<mount>/staging`.
    pub fn staging_root(&self) -> PathBuf {
        self.mount.join(STAGING)
    }

    /// `<mount>/production`.
    pub fn production_root(&self) -> PathBuf {
        self.mount.join(PRODUCTION)
    }

    /// Checks that both containers exist and are folders (following symbolic links, since a
    /// container may be a link to a volume). Creates nothing; used by `/validate`.
    pub fn check_containers(&self) -> Result<(), StorageError> {
        self.check_container(STAGING, &self.staging_root())?;
        self.check_container(PRODUCTION, &self.production_root())
    }

    pub(crate) fn check_container(
        &self,
        container: &'static str,
        path: &Path,
    ) -> Result<(), StorageError> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(self.missing(container, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(self.missing(container, path))
            }
            Err(e) => Err(e).at("inspect the container", path),
        }
    }

    fn missing(&self, container: &'static str, path: &Path) -> StorageError {
        StorageError::ContainerMissing {
            destination: self.name.to_string(),
            container,
            path: path.to_path_buf(),
        }
    }

    /// Creates both containers (and the mount) if missing. For development set-ups; in a real
    /// deployment they are volumes and [`Destination::check_containers`] is what to call.
    pub fn ensure_containers(&self) -> Result<(), StorageError> {
        for root in [self.staging_root(), self.production_root()] {
            fs::create_dir_all(&root).at("create the container", &root)?;
        }
        Ok(())
    }

    /// What the `staging` and `production` containers' filesystems guarantee (see
    /// [`crate::VolumeFacts`]); an error for a container that cannot be inspected.
    pub fn volume_facts(
        &self,
    ) -> (
        std::io::Result<crate::VolumeFacts>,
        std::io::Result<crate::VolumeFacts>,
    ) {
        (
            crate::VolumeFacts::of(&self.staging_root()),
            crate::VolumeFacts::of(&self.production_root()),
        )
    }

    /// Repairs what crashed operations left in this destination's work folders
    /// (`<container>/.publish-service/work/<project>/<start>/`): for every area found there
    /// whose lock can be taken now (one that a live operation holds is skipped), the same repair
    /// as its next operation would do — partial copies and superseded results removed, a
    /// previous result set aside or a staged result moved by an interrupted publish put back.
    /// Returns how many leftovers it repaired. Called at start-up.
    pub fn sweep(&self) -> Result<usize, StorageError> {
        let mut repaired = 0;
        for root in [self.staging_root(), self.production_root()] {
            let work = root.join(crate::area::SERVICE_DIR).join("work");
            for (project, start) in list_areas(&work)? {
                let area = self.project(&project, &start);
                let lock = match area.lock() {
                    Ok(lock) => lock,
                    Err(StorageError::Busy { .. }) => continue,
                    Err(e) => return Err(e),
                };
                repaired += area.repair(&lock);
            }
        }
        if repaired > 0 {
            tracing::info!(destination = %self.name, repaired, "start-up sweep repaired what interrupted operations left");
        }
        Ok(repaired)
    }

    /// The area of one project run at this destination.
    pub fn project(&self, project: &ProjectName, start: &StartTime) -> ProjectArea {
        ProjectArea::new(self.clone(), project.clone(), start.clone())
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
