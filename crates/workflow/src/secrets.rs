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
}

impl SecretStore {
    /// A store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads `<root>/<name>`, trimmed. `SecretName` cannot contain a path separator, so this
    /// never reads outside the folder.
    pub fn read(&self, name: &SecretName) -> Result<SecretString, SecretError> {
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
