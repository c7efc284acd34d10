//! The configured destinations and their two containers.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use publish_types::DestinationName;

use crate::container::Container;
use crate::error::{IoContext, StorageError};

const VAR_PREFIX: &str = "TARGET_STORAGE_ACCOUNT_";
const VAR_SUFFIX: &str = "_SDE_MNT_PATH";

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

    /// `<mount>/<container>`.
    pub fn root(&self, container: Container) -> PathBuf {
        self.mount.join(container.as_str())
    }

    /// `<mount>/staging`.
    pub fn staging_root(&self) -> PathBuf {
        self.root(Container::Staging)
    }

    /// `<mount>/production`.
    pub fn production_root(&self) -> PathBuf {
        self.root(Container::Production)
    }

    /// Checks that both containers exist and are folders (following symbolic links, since a
    /// container may be a link to a volume). Creates nothing; used by `/validate`.
    pub fn check_containers(&self) -> Result<(), StorageError> {
        self.check_container(Container::Staging)?;
        self.check_container(Container::Production)
    }

    fn check_container(&self, container: Container) -> Result<(), StorageError> {
        let path = &self.root(container);
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(self.missing(container, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(self.missing(container, path))
            }
            Err(e) => Err(e).at("inspect the container", path),
        }
    }

    fn missing(&self, container: Container, path: &Path) -> StorageError {
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
}
