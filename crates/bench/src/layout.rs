//! Where the bench puts things: the destination mount with staging and production on different
//! filesystems when `/dev/shm` has room (staging is a symbolic link into it), the secrets the
//! server reads, its scratch folder, and the server's environment.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::api::{DESTINATION, START_TIME};

/// The emulator's default OAuth client id and secret, which the request's secret files hold.
const CLIENT_ID: &str = "emulator-client-id";
const CLIENT_SECRET: &str = "emulator-client-secret";
const SHM: &str = "/dev/shm";
/// Records the `/dev/shm` folder of a run, so that the next run removes it if this one was
/// killed before it could.
const SHM_RECORD: &str = "shm-folder";

/// The folders of one bench run.
#[derive(Debug)]
pub(crate) struct Layout {
    root: PathBuf,
    mount: PathBuf,
    secrets: PathBuf,
    scratch: PathBuf,
    /// The folder on the staging filesystem that holds the staging container.
    staging_side: PathBuf,
    /// A `/dev/shm` folder this run created and removes.
    shm: Option<PathBuf>,
    /// The API key the server accepts.
    pub(crate) api_key: String,
}

impl Layout {
    /// Creates a fresh layout under `work/run`, with staging on `/dev/shm` if `want_shm` and it
    /// has `need_bytes` free.
    pub(crate) fn create(work: &Path, want_shm: bool, need_bytes: u64) -> Result<Layout> {
        let root = work.join("run");
        if let Ok(previous) = fs::read_to_string(root.join(SHM_RECORD)) {
            let previous = PathBuf::from(previous.trim());
            if previous.starts_with(SHM) {
                let _ = fs::remove_dir_all(previous);
            }
        }
        if root.exists() {
            fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        }
        let mount = root.join("mount");
        let secrets = root.join("secrets");
        let scratch = root.join("scratch");
        for dir in [&mount.join("production"), &secrets, &scratch] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let free = shm_free_bytes();
        let shm = (want_shm && free.is_some_and(|free| free >= need_bytes))
            .then(|| PathBuf::from(SHM).join(format!("publish-bench-{}", std::process::id())));
        let staging_side = match &shm {
            Some(dir) => {
                fs::create_dir_all(dir.join("staging"))
                    .with_context(|| format!("creating {}", dir.display()))?;
                fs::write(root.join(SHM_RECORD), dir.display().to_string())?;
                std::os::unix::fs::symlink(dir.join("staging"), mount.join("staging"))?;
                dir.clone()
            }
            None => {
                eprintln!(
                    "layout: /dev/shm has {} MB free, {} MB wanted; staging stays on the same \
                     disk (PUBLISH_FORCE_COPY=true still forces the copy path)",
                    free.unwrap_or(0) / 1_000_000,
                    need_bytes / 1_000_000
                );
                let side = root.join("staging-side");
                fs::create_dir_all(mount.join("staging"))?;
                fs::create_dir_all(&side)?;
                side
            }
        };
        let api_key = format!("publish-bench-key-{:010}", std::process::id());
        fs::write(secrets.join("publishserviceapikey"), &api_key)?;
        fs::write(secrets.join("databricksspnclientid"), CLIENT_ID)?;
        fs::write(secrets.join("databricksspnsecret"), CLIENT_SECRET)?;
        Ok(Layout {
            root,
            mount,
            secrets,
            scratch,
            staging_side,
            shm,
            api_key,
        })
    }

    /// The secrets folder the server reads.
    pub(crate) fn secrets(&self) -> &Path {
        &self.secrets
    }

    /// Whether staging is on `/dev/shm`.
    pub(crate) fn staging_on_shm(&self) -> bool {
        self.shm.is_some()
    }

    /// The server's whole environment; `extra` (`KEY=VALUE`) is added last and wins.
    pub(crate) fn server_env(&self, extra: &[(String, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("PUBLISH_BIND_ADDR", "127.0.0.1:0".to_owned()),
            ("SECRETS_MNT_PATH", self.secrets.display().to_string()),
            (
                "TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH",
                self.mount.display().to_string(),
            ),
            (
                "DLTHUB_PIPELINE_WORKING_DIR",
                self.scratch.display().to_string(),
            ),
            (
                "PUBLISH_ALLOWED_SOURCE_HOSTS",
                "http://127.0.0.1:*".to_owned(),
            ),
            ("PUBLISH_FORCE_COPY", "true".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().cloned());
        env
    }

    /// The staged database of `project`.
    pub(crate) fn staged_file(&self, project: &str) -> PathBuf {
        self.mount
            .join("staging")
            .join(project)
            .join(START_TIME)
            .join("data/outputs/database.duckdb")
    }

    /// The published database of `project`.
    pub(crate) fn published_file(&self, project: &str) -> PathBuf {
        self.mount
            .join("production")
            .join(project)
            .join(START_TIME)
            .join("data/outputs/database.duckdb")
    }

    /// Removes everything of `project` in staging and production.
    pub(crate) fn remove_project(&self, project: &str) -> Result<()> {
        for container in ["staging", "production"] {
            let dir = self.mount.join(container).join(project);
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", dir.display()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Where DuckDB's own ingest writes: the staging filesystem, like the service's output.
    pub(crate) fn ingest_file(&self) -> PathBuf {
        self.staging_side.join("reference-ingest.duckdb")
    }

    /// Where `cp` copies the staged file: the production filesystem, like publish.
    pub(crate) fn copy_target(&self) -> PathBuf {
        self.root.join("reference-copy.duckdb")
    }

    /// Which destination the requests name (for the log line).
    pub(crate) fn describe(&self) -> String {
        format!(
            "destination {DESTINATION}: mount {}, staging on {}",
            self.mount.display(),
            if self.staging_on_shm() {
                SHM
            } else {
                "the same disk"
            }
        )
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        if let Some(dir) = &self.shm {
            let _ = fs::remove_dir_all(dir);
            let _ = fs::remove_file(self.root.join(SHM_RECORD));
        }
    }
}

/// Free bytes on `/dev/shm`, if it is there.
pub(crate) fn shm_free_bytes() -> Option<u64> {
    let stat = rustix::fs::statvfs(SHM).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}
