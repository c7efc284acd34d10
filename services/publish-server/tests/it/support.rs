//! Shared test scaffolding: a temp deployment (secrets, mounts), the router for `oneshot`, and
//! the real binary on 127.0.0.1:0.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use publish_server::config::Settings;
use publish_server::{AppState, app, build_state};
pub(crate) use publish_test_support::sha512sum;
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const API_KEY: &str = "test-api-key-0123456789";

/// A temp deployment: `secrets/`, and destination LSC at `lsc/` (plus NW at `nw/`).
pub(crate) struct Deployment {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) extra_env: Vec<(String, String)>,
}

impl Deployment {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        std::fs::write(
            dir.path().join("secrets/publishserviceapikey"),
            format!("{API_KEY}\n"),
        )
        .unwrap();
        for d in ["lsc", "nw"] {
            std::fs::create_dir_all(dir.path().join(d).join("staging")).unwrap();
            std::fs::create_dir_all(dir.path().join(d).join("production")).unwrap();
        }
        Self {
            dir,
            extra_env: Vec::new(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn mount(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn env(&self) -> HashMap<String, String> {
        let p = |s: &str| self.dir.path().join(s).to_string_lossy().into_owned();
        let mut env: HashMap<String, String> = [
            ("SECRETS_MNT_PATH", p("secrets")),
            ("TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH", p("lsc")),
            ("TARGET_STORAGE_ACCOUNT_NW_SDE_MNT_PATH", p("nw")),
            ("DLTHUB_PIPELINE_WORKING_DIR", p("work")),
            ("PUBLISH_BIND_ADDR", "127.0.0.1:0".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(self.extra_env.iter().cloned());
        env
    }

    pub(crate) fn state(&self) -> AppState {
        let settings = Settings::load(self.env()).unwrap();
        build_state(&settings).unwrap()
    }

    /// Stages `content` as `data/outputs/<name>` of a project, as if package had run: through
    /// the storage crate, as a dataset of its own (named `name`), so the package record lists it
    /// beside what earlier calls staged. Returns the staged file's path.
    pub(crate) fn stage_file(
        &self,
        mount: &str,
        project: &str,
        start: &str,
        name: &str,
        content: &[u8],
    ) -> PathBuf {
        use publish_hash::HashAlgorithm;
        use publish_storage::{DatasetClaim, Destination};
        use publish_types::{DestinationName, ObjectName, OutputFormat, ProjectName, StartTime};
        let destination = Destination::new(
            DestinationName::parse(&mount.to_ascii_uppercase()).unwrap(),
            self.mount(mount),
        );
        let area = destination.project(
            &ProjectName::parse(project).unwrap(),
            &StartTime::parse(start).unwrap(),
        );
        let lock = area.lock().unwrap();
        let claim = DatasetClaim {
            id: name.to_owned(),
            name: Some(name.to_owned()),
            schema_name: ObjectName::parse("test").unwrap(),
            tables: Vec::new(),
            format: OutputFormat::Csv,
            shared_files: Vec::new(),
        };
        let write = lock.begin_dataset(claim, HashAlgorithm::Sha512).unwrap();
        let rel = format!("data/outputs/{name}");
        let path = write.dir().join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        write.commit().unwrap();
        area.staging_dir().join(rel)
    }

    /// Every file under the deployment's mounts, for "nothing changed" checks. The per-project
    /// lock files (empty, hidden, next to the staging folder) are what replicas lock, and
    /// folders carry no data; neither counts.
    pub(crate) fn snapshot(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for m in ["lsc", "nw"] {
            walk(&self.mount(m), self.dir.path(), &mut out);
        }
        out.sort();
        out
    }
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if meta.is_dir() {
            walk(&path, base, out);
        } else if rel.ends_with(".lock") && e.file_name().to_string_lossy().starts_with('.') {
            continue;
        } else {
            out.push((rel, meta.len()));
        }
    }
}

/// Sends one request through the router without a socket.
pub(crate) async fn oneshot(
    state: AppState,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let response = app(state)
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, json)
}

pub(crate) fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/requests/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The real `publish-server` binary, listening on a port the OS chose.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    pub(crate) fn start(deployment: &Deployment) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_publish-server"))
            .env_clear()
            .envs(deployment.env())
            .current_dir(deployment.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stderr =
            std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            stderr: Some(stderr),
        }
    }

    /// Waits for the server to exit on its own; its exit status and everything it logged.
    pub(crate) fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let logs = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, logs)
    }

    /// Stops the server and returns everything it logged.
    pub(crate) fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs JSON over real HTTP.
pub(crate) async fn post(
    url: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut req = client.post(format!("{url}{path}")).json(body);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let json = resp.json::<Value>().await.unwrap();
    (status, json)
}

/// POSTs JSON over real HTTP, expects 200 and returns the answer.
pub(crate) async fn post_ok(url: &str, path: &str, body: &Value) -> Value {
    let (status, answer) = post(url, path, Some(API_KEY), body).await;
    assert_eq!(status, 200, "POST {path}: {answer}");
    answer
}

/// A tmpfs of a few hundred KiB mounted over a folder, to fill a volume on purpose; unmounted on
/// drop. Mounting needs root: elsewhere the test is skipped with a message, except in CI
/// (`CI` set), where a missing prerequisite fails the test.
pub(crate) struct SmallTmpfs {
    path: PathBuf,
}

impl SmallTmpfs {
    pub(crate) fn mount(path: &Path, bytes: u64) -> Option<Self> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self {
                path: path.to_path_buf(),
            }),
            other => {
                let why = format!(
                    "cannot mount a small tmpfs at {}: {other:?}",
                    path.display()
                );
                publish_test_support::missing_prerequisite(&format!("{why} (needs root)"));
                None
            }
        }
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
