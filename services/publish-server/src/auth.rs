//! API-key authentication as an extractor: a handler that takes [`ApiKey`] cannot run
//! unauthenticated, and a route without it is visibly public (`GET /health`, `GET /ready`).
//!
//! The key is the content of `<SECRETS_MNT_PATH>/publishserviceapikey` ([`KeyFile`]), read again
//! whenever that file changes, so a key rotated the Kubernetes way (a `..data` symlink swapped to
//! a new folder) takes effect without a restart.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use publish_types::SecretName;
use publish_workflow::SecretStore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::state::AppState;

/// Header carrying the key.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// The shortest key accepted, in bytes.
pub(crate) const MIN_KEY_BYTES: usize = 16;

/// The API key's file, re-read when it changes (its resolved inode, size or modification time).
/// A key file that becomes unreadable, empty or too short fails closed: every authenticated
/// request is refused (503) and `/ready` answers 503, until a usable key is back.
pub(crate) struct KeyFile {
    secrets: SecretStore,
    name: SecretName,
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

/// What identifies one version of the key file: device, inode, size, modification time.
type Stamp = (u64, u64, u64, i64, i64);

struct Loaded {
    stamp: Option<Stamp>,
    key: Result<ExpectedKey, String>,
}

impl KeyFile {
    /// Reads the secret `name` of `secrets`; fails (for start-up) when it is missing, unreadable,
    /// empty, or shorter than [`MIN_KEY_BYTES`] after trimming. Warns when other users may read
    /// the file.
    pub(crate) fn open(secrets: SecretStore, name: SecretName) -> Result<Self, String> {
        let path = secrets.root().join(name.as_str());
        let mut file = Self {
            secrets,
            name,
            path,
            loaded: Mutex::new(Loaded {
                stamp: None,
                key: Err(String::new()),
            }),
        };
        let (stamp, key) = file.read();
        let key = key?;
        let path = file.path.clone();
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.mode() & 0o004 != 0
        {
            tracing::warn!(path = %path.display(), "the API key file is readable by every user of this machine; restrict it (chmod 600, or the secret volume's defaultMode)");
        }
        file.loaded = Mutex::new(Loaded {
            stamp,
            key: Ok(key),
        });
        Ok(file)
    }

    fn stamp(path: &std::path::Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some((m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
    }

    /// Reads the key through the secret store (trimmed; missing and empty named there), then
    /// checks its length.
    fn read(&self) -> (Option<Stamp>, Result<ExpectedKey, String>) {
        let stamp = Self::stamp(&self.path);
        let key = match self.secrets.read(&self.name) {
            Err(e) => Err(format!("{e} (looked for {})", self.path.display())),
            Ok(key) if key.expose_secret().len() < MIN_KEY_BYTES => Err(format!(
                "the API key in {} is {} bytes; it must be at least {MIN_KEY_BYTES}",
                self.path.display(),
                key.expose_secret().len()
            )),
            Ok(key) => Ok(ExpectedKey::new(&key)),
        };
        (stamp, key)
    }

    /// The key in force: the file is looked at (one `stat`) and read again if it changed.
    pub(crate) fn current(&self) -> Result<ExpectedKey, String> {
        let stamp = Self::stamp(&self.path);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if stamp != loaded.stamp {
            let (stamp, key) = self.read();
            match &key {
                Ok(_) => tracing::info!("the API key file changed; using the new key"),
                Err(reason) => {
                    tracing::error!(%reason, "the API key file changed and is unusable; refusing every request until it is fixed")
                }
            }
            *loaded = Loaded { stamp, key };
        }
        loaded.key.clone()
    }
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The expected key, kept as a digest so the comparison takes the same time whatever the
/// length or content of the presented key.
#[derive(Clone)]
pub(crate) struct ExpectedKey {
    digest: [u8; 64],
}

impl ExpectedKey {
    /// From the secret's content (already trimmed).
    pub(crate) fn new(key: &SecretString) -> Self {
        Self {
            digest: Sha512::digest(key.expose_secret().as_bytes()).into(),
        }
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 64] = Sha512::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for ExpectedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpectedKey(<redacted>)")
    }
}

/// Proof that the request carried the right `x-api-key`.
#[derive(Debug)]
pub(crate) struct ApiKey;

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let mut values = parts.headers.get_all(API_KEY_HEADER).iter();
        let presented = values.next().map(|v| v.as_bytes()).unwrap_or_default();
        if values.next().is_some() {
            return Err(AppError::forbidden_because(
                "several x-api-key headers were sent; send exactly one",
            ));
        }
        let expected = state.api_key.current().map_err(|_| {
            AppError::unavailable("the service cannot read its API key; see its log", 30)
        })?;
        if !presented.is_empty() && expected.matches(presented) {
            Ok(ApiKey)
        } else {
            Err(AppError::forbidden())
        }
    }
}
