//! Hostile staging (issue 9): planted files, links to secrets and symbolically linked folders
//! are never published, and nothing is read or deleted through a link.

use std::fs;
use std::os::unix::fs::symlink;

use publish_storage::{PublishOptions, StorageError};

use crate::{PROJECT, START, TestDestination, names_in, sample_files, stage};

fn publish(area: &publish_storage::ProjectArea) -> Result<publish_storage::Manifest, StorageError> {
    let options = PublishOptions {
        force_copy: true,
        ..PublishOptions::default()
    };
    area.lock()?.publish(&options)
}

/// A folder outside the destination holding a "secret", which must stay intact.
fn secrets() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("publishserviceapikey");
    fs::write(&secret, b"the-api-key").unwrap();
    (dir, secret)
}

fn assert_refused_link(err: &StorageError) {
    assert!(
        matches!(
            err,
            StorageError::UnsupportedEntry {
                kind: "symbolic link",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_link_to_a_secret_planted_in_staging_is_never_published() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let (_dir, secret) = secrets();
    stage(&area, &sample_files(1));
    symlink(&secret, area.staging_dir().join("data/outputs/key.csv")).unwrap();
    assert_refused_link(&publish(&area).unwrap_err());
    assert!(!area.production_dir().exists());
    assert_eq!(fs::read(&secret).unwrap(), b"the-api-key");
}

#[test]
fn a_data_folder_swapped_for_a_link_is_refused() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let (dir, secret) = secrets();
    stage(
        &area,
        &[("data/outputs/publishserviceapikey", b"x".repeat(11))],
    );
    // The staged `data/outputs` replaced by a link to the secrets folder: same names, same
    // sizes as the record says, but the bytes are the secret's.
    let outputs = area.staging_dir().join("data/outputs");
    fs::remove_dir_all(&outputs).unwrap();
    symlink(dir.path(), &outputs).unwrap();
    assert_refused_link(&publish(&area).unwrap_err());
    assert!(!area.production_dir().exists());
    assert_eq!(fs::read(&secret).unwrap(), b"the-api-key");
}

#[test]
fn a_project_folder_that_is_a_link_is_refused_and_its_target_kept() {
    let dest = TestDestination::one_filesystem();
    let outside = tempfile::tempdir().unwrap();
    let result = outside.path().join(START).join("data/outputs");
    fs::create_dir_all(&result).unwrap();
    fs::write(result.join("database.duckdb"), b"not ours").unwrap();
    symlink(
        outside.path(),
        dest.destination.staging_root().join(PROJECT),
    )
    .unwrap();
    let area = dest.area();
    assert_refused_link(&area.lock().unwrap_err());
    assert_eq!(
        fs::read(result.join("database.duckdb")).unwrap(),
        b"not ours",
        "the link's target is intact"
    );
    assert_eq!(names_in(outside.path()), [START]);

    // A production project folder that is a link is refused too, before anything is copied.
    let other = dest.area_for("Pr005", START);
    stage(&other, &sample_files(2));
    symlink(
        outside.path(),
        dest.destination.production_root().join("Pr005"),
    )
    .unwrap();
    assert_refused_link(&publish(&other).unwrap_err());
    assert_eq!(names_in(outside.path()), [START]);
    assert_eq!(other.staged_files().unwrap().len(), 3, "staging is intact");
}

#[test]
fn a_fifo_planted_in_staging_is_refused_without_blocking() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    stage(&area, &sample_files(3));
    let fifo = area.staging_dir().join("data/outputs/empty.txt");
    fs::remove_file(&fifo).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success());
    let err = publish(&area).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::UnsupportedEntry {
                kind: "special file",
                ..
            }
        ),
        "{err:?}"
    );
}
