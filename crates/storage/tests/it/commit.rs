//! Staging writes: nothing is visible before commit, commit replaces atomically, and a dropped
//! or failed write leaves the previous result as it was.

use std::fs;

use publish_storage::StorageError;

use crate::{START, TestDestination, names_in, project_folder, stage, work_folder};

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

    // Only the result remains in the project folder, and no temporary folder is left.
    assert_eq!(
        names_in(&project_folder(&area.staging_dir())),
        [START.to_owned()]
    );
    assert_eq!(
        names_in(&work_folder(&area, "staging")),
        Vec::<String>::new()
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
    let write = crate::begin(&lock).unwrap();
    let tmp = write.dir().to_path_buf();
    assert!(
        tmp.starts_with(work_folder(&area, "staging")),
        "the temporary folder is in the service's work folder on the staging volume"
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
    let write = crate::begin(&lock).unwrap();
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
    let work = work_folder(&area, "staging");
    // What a process killed mid-write leaves behind, and what versions before the work
    // folders left beside the result.
    fs::create_dir_all(work.join("tmp-crashed/data")).unwrap();
    fs::write(work.join("tmp-crashed/data/x"), b"partial").unwrap();
    fs::create_dir_all(folder.join(format!(".{START}.tmp-old-version/data"))).unwrap();

    stage(&area, &[("f", b"new".to_vec())]);
    assert_eq!(names_in(&folder), [START.to_owned()]);
    assert_eq!(names_in(&work), Vec::<String>::new());
    assert_eq!(fs::read(area.staging_dir().join("f")).unwrap(), b"new");
}

/// The start-up sweep repairs every area that crashed operations left leftovers in, except one
/// a live operation holds, and keeps no empty work folder.
#[test]
fn the_start_up_sweep_repairs_crashed_operations_but_not_live_ones() {
    let dest = TestDestination::one_filesystem();
    let crashed = dest.area();
    let live = dest.area_for("Pr005", START);
    stage(&crashed, &[("data/outputs/x.csv", b"staged".to_vec())]);
    // The live operation took its lock before its work began (taking a lock repairs the area).
    let held = live.lock().unwrap();
    for area in [&crashed, &live] {
        for container in ["staging", "production"] {
            let partial = work_folder(area, container).join("tmp-crashed/data/outputs");
            fs::create_dir_all(&partial).unwrap();
            fs::write(partial.join("database.duckdb"), b"partial copy").unwrap();
        }
    }
    assert_eq!(dest.destination.sweep().unwrap(), 2);
    for container in ["staging", "production"] {
        assert!(!work_folder(&crashed, container).exists(), "{container}");
        assert_eq!(names_in(&work_folder(&live, container)), ["tmp-crashed"]);
    }
    assert_eq!(crashed.staged_files().unwrap(), ["data/outputs/x.csv"]);
    drop(held);
    assert_eq!(dest.destination.sweep().unwrap(), 2);
    assert!(!work_folder(&live, "production").exists());
}

/// Project names that differ only in case are one project for locking.
#[test]
fn project_names_differing_in_case_share_one_lock() {
    let dest = TestDestination::one_filesystem();
    let _held = dest.area_for("Cohort.A", START).lock().unwrap();
    assert!(matches!(
        dest.area_for("cohort.a", START).lock(),
        Err(StorageError::Busy { .. })
    ));
    dest.area_for("cohort.a", "20250205_020202").lock().unwrap();
}
