//! The blob-volume test rig, as tests use it: `tools/blob-volumes` runs Azurite (Microsoft's
//! Azure Storage emulator) with its `staging` and `production` containers mounted through FUSE
//! by rclone, as CR8TOR mounts its volumes. `.ci/run` starts the rig and names its folder in
//! `PUBLISH_TEST_BLOB_RIG`; without it a test using [`Rig::get`] is skipped with a message,
//! except in CI (`CI` set), where it fails.
//!
//! Only for tests (feature `test-util`). What the rig does not model: it is rclone, not
//! BlobFuse, so its error codes and timing are rclone's; uploads finish after `close` returns
//! (rclone's write-back), so checks of the store poll ([`Rig::wait_for`]).

#![allow(
    clippy::missing_panics_doc,
    reason = "test helpers panic on a broken rig"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The running rig: its folder and what its `env` file says.
pub struct Rig {
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

/// A test's prerequisite is missing: in CI (`CI` set) that fails the test, loudly, because CI
/// must provide it; elsewhere the test is skipped with a message saying what it needs. The one
/// place this decision is made for the workspace's tests.
pub fn missing_prerequisite(what: &str) {
    #[allow(clippy::disallowed_methods)] // whether this runs in CI
    let ci = std::env::var_os("CI").is_some();
    assert!(!ci, "{what}; CI must provide it");
    eprintln!("SKIPPED: {what}");
}

/// A test rig's folder, named by the environment variable `var`, and what its `env` file
/// says: one `NAME=value` a line (an `export ` before it and quotes around the value are
/// allowed, so the file also works with `. DIR/env`). `None`, with a message naming `start`
/// (how `.ci/run` starts the rig), when the variable is not set: the one place the test rigs
/// (`tools/blob-volumes`, `tools/sql-servers`) are found.
pub fn rig_env(var: &str, start: &str) -> Option<(PathBuf, BTreeMap<String, String>)> {
    #[allow(clippy::disallowed_methods)] // test prerequisites come from the environment
    let dir = std::env::var_os(var);
    let Some(dir) = dir else {
        missing_prerequisite(&format!(
            "no test rig in {var}: .ci/run starts it (`{start}`, then {var}=DIR)"
        ));
        return None;
    };
    let dir = PathBuf::from(dir);
    let text = std::fs::read_to_string(dir.join("env"))
        .unwrap_or_else(|e| panic!("the test rig at {} has no env file: {e}", dir.display()));
    let env = text
        .lines()
        .map(|l| l.trim().trim_start_matches("export ").trim_start())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    Some((dir, env))
}

impl Rig {
    /// The rig named by `PUBLISH_TEST_BLOB_RIG`; `None` (with a message) outside CI.
    pub fn get() -> Option<Rig> {
        let (dir, env) = rig_env("PUBLISH_TEST_BLOB_RIG", "tools/blob-volumes up DIR")?;
        Some(Rig { dir, env })
    }

    /// `<rig>/mnt`, holding the `staging` and `production` mounts: a destination's mount.
    pub fn mount(&self) -> PathBuf {
        Path::new(&self.env["BLOB_RIG_STAGING"])
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn tool(&self, args: &[&str]) -> Vec<u8> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/blob-volumes");
        let out = Command::new(script)
            .args(args)
            .output()
            .expect("tools/blob-volumes runs");
        assert!(out.status.success(), "blob-volumes {args:?}: {out:?}");
        out.stdout
    }

    /// The objects the store holds in `container` under `prefix`, with their sizes.
    pub fn objects(&self, container: &str, prefix: &str) -> BTreeMap<String, u64> {
        let dir = self.dir.to_string_lossy();
        String::from_utf8(self.tool(&["ls", &dir, container]))
            .unwrap()
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let size = parts.next()?.parse().ok()?;
                let name = parts.nth(2)?.to_owned();
                name.starts_with(prefix).then_some((name, size))
            })
            .collect()
    }

    /// The objects of the BagIt tag files a publish writes beside `data/` (issue 21) in the
    /// published folder `<project>/<start>` of production, with their sizes as the mount shows
    /// them: what a check of the store's objects must expect besides the data files.
    pub fn bag_tag_objects(&self, project: &str, start: &str) -> BTreeMap<String, u64> {
        [
            "bagit.txt",
            "bag-info.txt",
            "manifest-sha512.txt",
            "tagmanifest-sha512.txt",
        ]
        .iter()
        .map(|name| {
            let rel = format!("{project}/{start}/{name}");
            let path = self.mount().join("production").join(&rel);
            let len = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("the published bag has no {name}: {e}"))
                .len();
            (rel, len)
        })
        .collect()
    }

    /// Waits (up to a minute: uploads finish after close) until the store holds exactly
    /// `expected` (object → size) under `prefix` in `container`.
    pub fn wait_for(&self, container: &str, prefix: &str, expected: &BTreeMap<String, u64>) {
        let began = Instant::now();
        loop {
            let found = self.objects(container, prefix);
            if &found == expected {
                return;
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "the store's {container}/{prefix} holds {found:?}, expected {expected:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SHA-512 of an object's bytes as the store holds them.
    pub fn sha512(&self, container: &str, object: &str) -> String {
        let dir = self.dir.to_string_lossy();
        let bytes = self.tool(&["cat", &dir, container, object]);
        publish_hash::hash_reader(bytes.as_slice(), publish_hash::HashAlgorithm::Sha512)
            .expect("hashing bytes in memory")
            .hex
    }
}

/// A project name no other test on the shared rig uses.
pub fn unique_project(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "blob-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
