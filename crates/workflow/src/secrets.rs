//! Secrets read from files under `SECRETS_MNT_PATH`, by validated name only.

use std::io;
use std::path::{Path, PathBuf};

use publish_types::SecretName;
use secrecy::SecretString;

/// Why a secret could not be read. Never carries the secret's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No file of that name under the secrets folder.
    #[error("secret `{name}` was not found in the secrets folder")]
    Missing {
        /// The secret's name.
        name: String,
    },
    /// The file is empty (after trimming whitespace).
    #[error("secret `{name}` is empty")]
    Empty {
        /// The secret's name.
        name: String,
    },
    /// The name is one of the service's own secrets (its API key), which no request may use.
    #[error(
        "secret `{name}` is reserved for the service itself and cannot be used as a credential"
    )]
    Reserved {
        /// The secret's name.
        name: String,
    },
    /// The file could not be read.
    #[error("secret `{name}` could not be read: {kind}")]
    Unreadable {
        /// The secret's name.
        name: String,
        /// What went wrong (an I/O error kind; no content).
        kind: io::ErrorKind,
    },
}

/// The folder of secret files (a Key Vault mount in production).
#[derive(Debug, Clone)]
pub struct SecretStore {
    root: PathBuf,
    reserved: Vec<SecretName>,
}

impl SecretStore {
    /// A store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            reserved: Vec::new(),
        }
    }

    /// The same store, refusing to hand out `names` ([`SecretError::Reserved`]): the service's
    /// own secrets, such as its API key, which a request must never name as a credential.
    pub fn reserving(mut self, names: impl IntoIterator<Item = SecretName>) -> Self {
        self.reserved.extend(names);
        self
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads `<root>/<name>`, trimmed. `SecretName` cannot contain a path separator, so this
    /// never reads outside the folder.
    pub fn read(&self, name: &SecretName) -> Result<SecretString, SecretError> {
        if self
            .reserved
            .iter()
            .any(|r| r.as_str().eq_ignore_ascii_case(name.as_str()))
        {
            return Err(SecretError::Reserved {
                name: name.to_string(),
            });
        }
        let path = self.root.join(name.as_str());
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SecretError::Missing {
                name: name.to_string(),
            },
            kind => SecretError::Unreadable {
                name: name.to_string(),
                kind,
            },
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(SecretError::Empty {
                name: name.to_string(),
            });
        }
        Ok(SecretString::from(trimmed.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Kubernetes mounts secrets as a symlink farm: `<name>` → `..data/<name>`, `..data` →
    /// `..<timestamp>/`, swapped on rotation. Links are followed here (and only here).
    #[test]
    fn the_kubernetes_symlink_layout_is_read_and_rotation_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (version, value) in [("..2026_12_01_1", "first\n"), ("..2026_12_01_2", "second")] {
            std::fs::create_dir(root.join(version)).unwrap();
            std::fs::write(root.join(version).join("spnsecret"), value).unwrap();
        }
        symlink("..2026_12_01_1", root.join("..data")).unwrap();
        symlink("..data/spnsecret", root.join("spnsecret")).unwrap();
        let store = SecretStore::new(root);
        let name = SecretName::parse("spnsecret").unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(store.read(&name).unwrap().expose_secret(), "first");
        // Rotation: a new `..data` link renamed over the old one.
        symlink("..2026_12_01_2", root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        assert_eq!(store.read(&name).unwrap().expose_secret(), "second");
        assert!(
            SecretName::parse("..data").is_err(),
            "the farm's own entries cannot be named"
        );
    }
}
