//! What the workspace's tests share, in one place so each rule is decided once: how a test
//! finds a test rig ([`rig_env`]), what a test does when a prerequisite is missing
//! ([`missing_prerequisite`]: skip with a message locally, fail in CI), how large inputs are
//! made without fixture files ([`deterministic_bytes`]), and the digest a file must have
//! ([`sha512sum`]: coreutils' own, so no test checks the hash code against itself).
//!
//! A crate of its own, with no dependencies, so that a crate's tests need not link another
//! crate of the service (the SQL sources' tests used to link the storage crate for the rig
//! finder). Only ever a dev-dependency, or an optional dependency behind a crate's `test-util`
//! feature where that crate's public `test_rig` module uses it.

#![allow(
    clippy::missing_panics_doc,
    reason = "test helpers panic on a broken environment"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Deterministic pseudo-random bytes (xorshift64*), so large inputs need no fixture files:
/// the same `len` and `seed` give the same bytes on every machine.
pub fn deterministic_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What coreutils' `sha512sum` prints for `path`: the lower-case hex digest.
pub fn sha512sum(path: &Path) -> String {
    let out = Command::new("sha512sum")
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("the sha512sum command (coreutils) must be installed to run this test: {e}")
        });
    assert!(out.status.success(), "sha512sum failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap_or_else(|e| panic!("sha512sum printed no text: {e}"))
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("sha512sum printed nothing for {}", path.display()))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator is fixed: its first bytes for seed 1, and a prefix of a longer run equals
    /// a shorter run, so tests that compare sizes compare the same data.
    #[test]
    fn deterministic_bytes_are_fixed() {
        let short = deterministic_bytes(5, 1);
        let long = deterministic_bytes(4096, 1);
        assert_eq!(short, long[..5]);
        assert_eq!(deterministic_bytes(4096, 1), long);
        assert_ne!(deterministic_bytes(4096, 2), long);
        assert_eq!(deterministic_bytes(0, 7), Vec::<u8>::new());
    }

    /// `sha512sum` of a known input: the empty file's SHA-512.
    #[test]
    fn sha512sum_of_an_empty_file() {
        let path =
            std::env::temp_dir().join(format!("publish-test-support-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let digest = sha512sum(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            digest,
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
    }
}
