//! Staging writes: nothing is visible before commit, commit replaces atomically, and a dropped
//! or failed write leaves the previous result as it was.

use std::fs;

use publish_storage::StorageError;

use crate::{START, TestDestination, names_in, project_folder, stage};

#[test]
fn commit_publishes_the_written_files_and_replaces_the_previous_result() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    assert_eq!(area.staged_files().unwrap(), Vec::<String>::new());

    let first = stage(
        &area,
        &[
            ("data/outputs/database.duckdb", b"first".to_vec()),
            ("data/outputs/a/b.csv", b"x".to_vec()),
        ],
    );
    assert_eq!(
        first,
        ["data/outputs/a/b.csv", "data/outputs/database.duckdb"]
    );
    assert_eq!(area.staged_files().unwrap(), first);

    let second = stage(
        &area,
        &[("data/outputs/database.duckdb", b"second".to_vec())],
    );
    assert_eq!(second, ["data/outputs/database.duckdb"]);
    assert_eq!(
        area.staged_files().unwrap(),
        second,
        "files of the previous result are gone"
    );
    assert_eq!(
        fs::read(area.staging_dir().join("data/outputs/database.duckdb")).unwrap(),
        b"second"
    );

    // Only the result and the lock file remain in the project folder.
    assert_eq!(
        names_in(&project_folder(&area.staging_dir())),
        [format!(".{START}.lock"), START.to_owned()]
    );
}

#[test]
fn nothing_is_visible_before_commit_and_a_dropped_write_changes_nothing() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    stage(
        &area,
        &[("data/outputs/database.duckdb", b"previous".to_vec())],
    );

    let lock = area.lock().unwrap();
    let write = area.begin_staging(&lock).unwrap();
    let tmp = write.dir().to_path_buf();
    assert!(
        tmp.starts_with(project_folder(&area.staging_dir())),
        "the temporary folder is on the staging volume"
    );
    fs::create_dir_all(tmp.join("data/outputs")).unwrap();
    fs::write(tmp.join("data/outputs/database.duckdb"), b"half-writ").unwrap();
    assert_eq!(
        fs::read(area.staging_dir().join("data/outputs/database.duckdb")).unwrap(),
        b"previous"
    );
    drop(write);

    assert!(
        !tmp.exists(),
        "a dropped write removes its temporary folder"
    );
    assert_eq!(
        fs::read(area.staging_dir().join("data/outputs/database.duckdb")).unwrap(),
        b"previous"
    );
    assert_eq!(
        area.staged_files().unwrap(),
        ["data/outputs/database.duckdb"]
    );
}

#[test]
fn a_failed_commit_leaves_the_previous_result() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    stage(
        &area,
        &[("data/outputs/database.duckdb", b"previous".to_vec())],
    );

    let lock = area.lock().unwrap();
    let write = area.begin_staging(&lock).unwrap();
    let tmp = write.dir().to_path_buf();
    fs::write(tmp.join("real"), b"new").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tmp.join("link")).unwrap();
    match write.commit() {
        Err(StorageError::UnsupportedEntry {
            path,
            kind: "symbolic link",
        }) => assert_eq!(path, tmp.join("link")),
        other => panic!("{other:?}"),
    }
    assert!(!tmp.exists());
    assert_eq!(
        area.staged_files().unwrap(),
        ["data/outputs/database.duckdb"]
    );
    assert_eq!(
        fs::read(area.staging_dir().join("data/outputs/database.duckdb")).unwrap(),
        b"previous"
    );
}

#[test]
fn leftovers_of_an_interrupted_write_are_removed_by_the_next_one() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    stage(&area, &[("f", b"previous".to_vec())]);
    let folder = project_folder(&area.staging_dir());
    // What a process killed mid-write leaves behind.
    fs::create_dir_all(folder.join(format!(".{START}.tmp-crashed/data"))).unwrap();
    fs::write(
        folder.join(format!(".{START}.tmp-crashed/data/x")),
        b"partial",
    )
    .unwrap();

    stage(&area, &[("f", b"new".to_vec())]);
    assert_eq!(
        names_in(&folder),
        [format!(".{START}.lock"), START.to_owned()]
    );
    assert_eq!(fs::read(area.staging_dir().join("f")).unwrap(), b"new");
}
