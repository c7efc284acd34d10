//! The blob-volume test rig, as tests use it: `tools/blob-volumes` runs Azurite (Microsoft's
//! Azure Storage emulator) with its `staging` and `production` containers mounted through FUSE
//! by rclone, as CR8TOR mounts its volumes. `.ci/run` starts the rig and names its folder in
//! `PUBLISH_TEST_BLOB_RIG`; without it a test using [`Rig::get`] is skipped with a message,
//! except in CI (`CI` set), where it fails (`publish_test_support::rig_env` finds the rig and
//! makes that decision for every rig of the workspace).
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

use publish_test_support::rig_env;

/// The running rig: its folder and what its `env` file says.
pub struct Rig {
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

/// Re-exported for the storage crate's own tests, which name it from here; the rule itself
/// lives in `publish-test-support`, with the rig finder this module uses.
pub use publish_test_support::missing_prerequisite;

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
