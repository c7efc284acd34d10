//! Publishing: across filesystems (the production case), on one filesystem, idempotent retries,
//! failures that leave production untouched, and the SHA3-512 option.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use publish_hash::{HashAlgorithm, hash_reader};
use publish_storage::{Manifest, ProjectArea, PublishOptions, StorageError};

use crate::{
    START, TestDestination, device, names_in, project_folder, sample_files, sha512sum, stage,
};

fn publish(area: &ProjectArea, options: PublishOptions) -> Result<Manifest, StorageError> {
    let lock = area.lock()?;
    lock.publish(&options)
}

/// Checks the manifest against the files in production: same list, `sha512sum`'s hashes, sizes.
fn assert_manifest_matches_production(
    area: &ProjectArea,
    manifest: &Manifest,
    files: &[(&str, Vec<u8>)],
) {
    let expected: BTreeMap<&str, &Vec<u8>> = files.iter().map(|(p, c)| (*p, c)).collect();
    let listed: Vec<&str> = manifest
        .files
        .iter()
        .map(|f| f.file_path.as_str())
        .collect();
    assert_eq!(
        listed,
        expected.keys().copied().collect::<Vec<_>>(),
        "manifest lists every file, sorted"
    );
    for file in &manifest.files {
        let path = area.production_dir().join(&file.file_path);
        assert!(
            fs::read(&path).unwrap() == *expected[file.file_path.as_str()],
            "{} content",
            file.file_path
        );
        assert_eq!(file.hash_value, sha512sum(&path), "{}", file.file_path);
        assert_eq!(
            file.total_bytes,
            expected[file.file_path.as_str()].len() as u64
        );
    }
}

fn sidecar_path(area: &ProjectArea) -> std::path::PathBuf {
    project_folder(&area.production_dir()).join(format!(".{START}.manifest.json"))
}

#[test]
fn publish_across_filesystems_copies_hashes_and_removes_staging() {
    let Some(dest) = TestDestination::two_filesystems() else {
        return;
    };
    let area = dest.area();
    let files = sample_files(1);
    stage(&area, &files);
    assert_ne!(
        device(&area.staging_dir()),
        device(&dest.destination.production_root())
    );

    let manifest = publish(&area, PublishOptions::default()).unwrap();
    assert_manifest_matches_production(&area, &manifest, &files);
    assert!(!area.staging_dir().exists(), "staging is removed");
    assert_eq!(area.staged_files().unwrap(), Vec::<String>::new());
    // No temporary folders remain; the manifest is recorded beside, not inside, the result.
    assert_eq!(
        names_in(&project_folder(&area.production_dir())),
        [format!(".{START}.manifest.json"), START.into()]
    );
    assert_eq!(
        names_in(&project_folder(&area.staging_dir())),
        Vec::<String>::new()
    );
    for container in ["staging", "production"] {
        assert_eq!(
            names_in(&crate::work_folder(&area, container)),
            Vec::<String>::new(),
            "{container}"
        );
    }
    assert_eq!(
        serde_json::to_value(&manifest.files[0])
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["file_path", "hash_value", "total_bytes"]
    );

    // A retry after success returns the identical manifest.
    assert_eq!(publish(&area, PublishOptions::default()).unwrap(), manifest);
}

#[test]
fn retry_uses_the_recorded_manifest_and_rehashes_when_it_does_not_match() {
    let Some(dest) = TestDestination::two_filesystems() else {
        return;
    };
    let area = dest.area();
    stage(&area, &sample_files(2));
    let manifest = publish(&area, PublishOptions::default()).unwrap();
    let db = area.production_dir().join("data/outputs/database.duckdb");

    // Flip a byte without changing the size: the recorded manifest is returned unread, which
    // proves the retry did not read the files again.
    let mut bytes = fs::read(&db).unwrap();
    bytes[0] ^= 0xff;
    let changed = bytes.clone();
    fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .unwrap();
    assert_eq!(publish(&area, PublishOptions::default()).unwrap(), manifest);

    // A size that differs from the record makes it hash again.
    bytes.push(0);
    fs::write(&db, &bytes).unwrap();
    let rehashed = publish(&area, PublishOptions::default()).unwrap();
    assert_eq!(rehashed.files[1].file_path, "data/outputs/database.duckdb");
    assert_eq!(rehashed.files[1].hash_value, sha512sum(&db));
    assert_eq!(rehashed.files[1].total_bytes, changed.len() as u64 + 1);

    // Without the record it hashes again, and records it for the next retry.
    fs::write(&db, &changed[..changed.len()]).unwrap();
    fs::remove_file(sidecar_path(&area)).unwrap();
    let again = publish(&area, PublishOptions::default()).unwrap();
    assert_eq!(again.files[1].hash_value, sha512sum(&db));
    assert!(sidecar_path(&area).exists());
}

#[test]
fn republishing_replaces_the_previous_production_result() {
    let Some(dest) = TestDestination::two_filesystems() else {
        return;
    };
    let area = dest.area();
    stage(&area, &sample_files(3));
    publish(&area, PublishOptions::default()).unwrap();

    let second = vec![(
        "data/outputs/database.duckdb",
        crate::deterministic_bytes(123_456, 9),
    )];
    stage(&area, &second);
    let manifest = publish(&area, PublishOptions::default()).unwrap();
    assert_manifest_matches_production(&area, &manifest, &second);
    assert_eq!(
        names_in(&area.production_dir().join("data/outputs")),
        ["database.duckdb"]
    );
    assert_eq!(
        names_in(&project_folder(&area.production_dir())),
        [format!(".{START}.manifest.json"), START.into()]
    );
}

#[test]
fn a_failure_before_the_final_rename_leaves_production_and_staging_as_they_were() {
    let Some(dest) = TestDestination::two_filesystems() else {
        return;
    };
    let area = dest.area();
    let first = sample_files(4);
    stage(&area, &first);
    let first_manifest = publish(&area, PublishOptions::default()).unwrap();

    let second = vec![(
        "data/outputs/database.duckdb",
        crate::deterministic_bytes(3 << 20, 5),
    )];
    stage(&area, &second);
    // Make recording the manifest fail: every file has been copied by then, and the new result
    // is complete in its temporary folder but not yet renamed into place.
    let sidecar = sidecar_path(&area);
    fs::remove_file(&sidecar).unwrap();
    fs::create_dir_all(sidecar.join("obstacle")).unwrap();
    let err = publish(&area, PublishOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Io {
                action: "record the manifest at",
                ..
            }
        ),
        "{err:?}"
    );

    // Production still holds exactly the first result; no temporary folder is left.
    assert_manifest_matches_production(&area, &first_manifest, &first);
    assert_eq!(
        names_in(&project_folder(&area.production_dir())),
        [format!(".{START}.manifest.json"), START.into()]
    );
    // Staging is intact.
    assert_eq!(
        area.staged_files().unwrap(),
        ["data/outputs/database.duckdb"]
    );
    assert!(
        fs::read(area.staging_dir().join("data/outputs/database.duckdb")).unwrap() == second[0].1
    );

    // Once the obstacle is gone, the retry publishes the second result.
    fs::remove_dir_all(&sidecar).unwrap();
    let manifest = publish(&area, PublishOptions::default()).unwrap();
    assert_manifest_matches_production(&area, &manifest, &second);
}

#[test]
fn symlinks_in_staging_are_refused_before_anything_is_written() {
    let Some(dest) = TestDestination::two_filesystems() else {
        return;
    };
    let area = dest.area();
    stage(&area, &sample_files(6));
    std::os::unix::fs::symlink(
        "/etc/passwd",
        area.staging_dir().join("data/outputs/passwd"),
    )
    .unwrap();
    let err = publish(&area, PublishOptions::default()).unwrap_err();
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
    assert!(!area.production_dir().exists());
    assert_eq!(
        names_in(&project_folder(&area.production_dir())),
        Vec::<String>::new()
    );
    assert!(
        area.staged_files()
            .unwrap_err()
            .to_string()
            .contains("symbolic link")
    );
}

#[test]
fn nothing_to_publish() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let err = publish(&area, PublishOptions::default()).unwrap_err();
    match &err {
        StorageError::NothingToPublish {
            destination,
            project,
            start,
        } => {
            assert_eq!(
                (destination.as_str(), project.as_str(), start.as_str()),
                ("LSC", crate::PROJECT, START)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("run package first"), "{err}");
}

/// Inode of each staged file, by relative path.
fn inodes(area: &ProjectArea) -> BTreeMap<String, u64> {
    area.staged_files()
        .unwrap()
        .into_iter()
        .map(|rel| {
            let ino = fs::metadata(area.staging_dir().join(&rel)).unwrap().ino();
            (rel, ino)
        })
        .collect()
}

#[test]
fn one_filesystem_moves_without_copying_or_linking_and_force_copy_copies() {
    for force_copy in [false, true] {
        let dest = TestDestination::one_filesystem();
        let area = dest.area();
        let files = sample_files(7);
        stage(&area, &files);
        let staged = inodes(&area);

        let manifest = publish(
            &area,
            PublishOptions {
                force_copy,
                ..PublishOptions::default()
            },
        )
        .unwrap();
        assert_manifest_matches_production(&area, &manifest, &files);
        assert!(!area.staging_dir().exists());
        for (rel, ino) in staged {
            let published = fs::metadata(area.production_dir().join(&rel)).unwrap();
            assert_eq!(
                published.ino() == ino,
                !force_copy,
                "{rel}: force_copy={force_copy}"
            );
            assert_eq!(
                published.nlink(),
                1,
                "{rel}: never an alias of a staged file"
            );
        }
    }
}

#[test]
fn sha3_512_option() {
    let Some(dest) = TestDestination::two_filesystems() else {
        return;
    };
    let area = dest.area();
    let files = sample_files(8);
    stage(&area, &files);
    let options = PublishOptions {
        algorithm: HashAlgorithm::Sha3_512,
        ..PublishOptions::default()
    };
    let manifest = publish(&area, options.clone()).unwrap();
    for (file, (rel, content)) in manifest.files.iter().zip({
        let mut sorted = files.clone();
        sorted.sort();
        sorted
    }) {
        assert_eq!(file.file_path, rel);
        let expected = hash_reader(&content[..], HashAlgorithm::Sha3_512).unwrap();
        assert_eq!(file.hash_value, expected.hex);
        assert_ne!(file.hash_value, sha512sum(&area.production_dir().join(rel)));
    }
    // Same algorithm: the record. Another algorithm: hashed again with that one.
    assert_eq!(publish(&area, options.clone()).unwrap(), manifest);
    let sha512 = publish(&area, PublishOptions::default()).unwrap();
    assert_manifest_matches_production(&area, &sha512, &files);
}

#[test]
fn a_large_file_is_flushed_while_it_is_copied() {
    let Some(dest) = TestDestination::two_filesystems() else {
        return;
    };
    let area = dest.area();
    // Larger than the 8 MiB flush interval, so the background flush runs.
    let files = vec![(
        "data/outputs/database.duckdb",
        crate::deterministic_bytes(12 << 20, 10),
    )];
    stage(&area, &files);
    let manifest = publish(&area, PublishOptions::default()).unwrap();
    assert_manifest_matches_production(&area, &manifest, &files);
}

/// A publish on one filesystem that fails after moving the staged result puts it back into
/// staging, record included; a crash at that point is repaired by the next operation.
#[test]
fn an_interrupted_move_puts_the_staged_result_back() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let files = sample_files(9);
    stage(&area, &files);
    let record = area.staged_record().unwrap();
    // Make recording the manifest fail once the result has been moved.
    let sidecar = sidecar_path(&area);
    fs::create_dir_all(sidecar.join("obstacle")).unwrap();
    let err = publish(&area, PublishOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
    assert_eq!(
        area.staged_record().unwrap(),
        record,
        "staging is back, record included"
    );
    assert!(!area.production_dir().exists());
    assert_eq!(
        names_in(&crate::work_folder(&area, "production")),
        Vec::<String>::new()
    );

    // What a crash right after the move leaves: the result in production's work folder.
    let incoming = crate::work_folder(&area, "production").join("incoming-crashed");
    fs::create_dir_all(incoming.parent().unwrap()).unwrap();
    fs::rename(area.staging_dir(), &incoming).unwrap();
    fs::remove_dir_all(&sidecar).unwrap();
    assert!(area.staged_record().unwrap().is_none());
    let manifest = publish(&area, PublishOptions::default()).unwrap();
    assert_manifest_matches_production(&area, &manifest, &files);
    assert!(!incoming.exists());
}
