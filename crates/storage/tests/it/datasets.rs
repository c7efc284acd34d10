//! Several datasets per project (issue 8): each package keeps what the project's other datasets
//! staged, replaces what the same dataset staged before, and refuses a table another dataset
//! staged; the package record binds what publish copies (issue 9).

use std::fs;
use std::os::unix::fs::MetadataExt;

use publish_hash::HashAlgorithm;
use publish_storage::{PublishOptions, StagedTable, StorageError};
use publish_types::{ObjectName, OutputFormat, TableRef};

use crate::{TestDestination, claim, sha512sum, write_files};

fn table(name: &str) -> StagedTable {
    StagedTable {
        table: TableRef {
            schema: ObjectName::parse("cohort").unwrap(),
            table: ObjectName::parse(name).unwrap(),
        },
        rows: 3,
        snapshot: Some("delta version 3".into()),
        unpinned: None,
    }
}

/// Commits `write` with a record of `tables` (schema `cohort`).
pub(crate) fn commit_with(
    mut write: publish_storage::StagingWrite,
    tables: &[&str],
) -> Result<Vec<String>, publish_storage::StorageError> {
    for t in tables {
        write.record_table(table(t));
    }
    write.commit()
}

/// Stages dataset `id` with one CSV file per table and returns what commit reported.
fn stage_csv(
    area: &publish_storage::ProjectArea,
    id: &str,
    tables: &[&str],
) -> Result<Vec<String>, StorageError> {
    stage_csv_with(area, id, tables, HashAlgorithm::Sha512)
}

/// [`stage_csv`], the record made with `algorithm`.
fn stage_csv_with(
    area: &publish_storage::ProjectArea,
    id: &str,
    tables: &[&str],
    algorithm: HashAlgorithm,
) -> Result<Vec<String>, StorageError> {
    let lock = area.lock()?;
    let write = lock.begin_dataset(claim(id, OutputFormat::Csv, tables), algorithm)?;
    let files: Vec<(String, Vec<u8>)> = tables
        .iter()
        .map(|t| {
            (
                format!("data/outputs/cohort/{t}.csv"),
                format!("{id}:{t}\n").into_bytes(),
            )
        })
        .collect();
    let borrowed: Vec<(&str, Vec<u8>)> =
        files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    write_files(&write, &borrowed);
    commit_with(write, tables)
}

#[test]
fn a_second_dataset_keeps_the_first_and_a_repackage_replaces_only_its_own_files() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    assert_eq!(
        stage_csv(&area, "one", &["person", "address"]).unwrap(),
        [
            "data/outputs/cohort/address.csv",
            "data/outputs/cohort/person.csv"
        ]
    );
    assert_eq!(
        stage_csv(&area, "two", &["visit"]).unwrap(),
        ["data/outputs/cohort/visit.csv"]
    );
    assert_eq!(
        area.staged_files().unwrap(),
        [
            "data/outputs/cohort/address.csv",
            "data/outputs/cohort/person.csv",
            "data/outputs/cohort/visit.csv",
        ]
    );
    // Dataset one again, with one table fewer: its old table is gone, dataset two's stays.
    stage_csv(&area, "one", &["person"]).unwrap();
    assert_eq!(
        area.staged_files().unwrap(),
        [
            "data/outputs/cohort/person.csv",
            "data/outputs/cohort/visit.csv"
        ]
    );
    let record = area.staged_record().unwrap().unwrap();
    let ids: Vec<&str> = record.datasets.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["one", "two"]);
    assert_eq!(record.datasets[0].files, ["data/outputs/cohort/person.csv"]);
    assert_eq!(record.datasets[1].files, ["data/outputs/cohort/visit.csv"]);
    for file in &record.files {
        let path = area.staging_dir().join(&file.file_path);
        assert_eq!(file.hash_value, sha512sum(&path), "{}", file.file_path);
        assert_eq!(file.total_bytes, fs::metadata(&path).unwrap().len());
    }

    // Publish publishes the union, each file checked against the record.
    let manifest = area
        .lock()
        .unwrap()
        .publish(&PublishOptions::default())
        .unwrap();
    let published: Vec<&str> = manifest
        .files
        .iter()
        .map(|f| f.file_path.as_str())
        .collect();
    assert_eq!(
        published,
        [
            "data/outputs/cohort/person.csv",
            "data/outputs/cohort/visit.csv"
        ]
    );
    assert_eq!(
        fs::read(area.production_dir().join("data/outputs/cohort/visit.csv")).unwrap(),
        b"two:visit\n"
    );
    assert!(
        !area.production_dir().join("package-record.json").exists(),
        "the record is not published"
    );
}

/// A record made in SHA-512 (by a server before the record's BLAKE3) and a further dataset
/// staged in BLAKE3: the carried files are checked against their SHA-512 and recorded in BLAKE3,
/// so the whole record is in one algorithm; publish checks it and answers SHA-512, in the same
/// read, on one filesystem (published by move) and on two (published by copy).
#[test]
fn files_carried_from_a_record_in_another_algorithm_are_recorded_in_the_new_one() {
    let mut destinations = vec![TestDestination::one_filesystem()];
    destinations.extend(TestDestination::two_filesystems());
    for dest in destinations {
        let area = dest.area();
        stage_csv_with(&area, "one", &["person"], HashAlgorithm::Sha512).unwrap();
        stage_csv_with(&area, "two", &["visit"], HashAlgorithm::Blake3).unwrap();
        let record = area.staged_record().unwrap().unwrap();
        assert_eq!(record.algorithm, HashAlgorithm::Blake3);
        for file in &record.files {
            let bytes = fs::read(area.staging_dir().join(&file.file_path)).unwrap();
            let blake3 = publish_hash::hash_reader(&bytes[..], HashAlgorithm::Blake3).unwrap();
            assert_eq!(file.hash_value, blake3.hex, "{}", file.file_path);
        }
        let manifest = area
            .lock()
            .unwrap()
            .publish(&PublishOptions::default())
            .unwrap();
        assert_eq!(manifest.files.len(), 2);
        for file in &manifest.files {
            let path = area.production_dir().join(&file.file_path);
            assert_eq!(file.hash_value, sha512sum(&path), "{}", file.file_path);
        }
    }
}

#[test]
fn a_table_claimed_by_another_dataset_is_refused_naming_both() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    stage_csv(&area, "one", &["person"]).unwrap();
    let before = area.staged_record().unwrap();
    let err = stage_csv(&area, "two", &["visit", "PERSON"]).unwrap_err();
    match &err {
        StorageError::TableClaimed {
            table,
            dataset,
            claimed_by,
        } => {
            assert_eq!(table, "cohort.PERSON");
            assert_eq!(dataset, "two");
            assert_eq!(claimed_by, "one");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains("already staged by dataset \"one\"")
    );
    assert_eq!(area.staged_record().unwrap(), before, "nothing changed");
}

#[test]
fn another_format_than_the_other_datasets_is_refused_but_a_lone_dataset_may_change_it() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    stage_csv(&area, "one", &["person"]).unwrap();
    let lock = area.lock().unwrap();
    let err = lock
        .begin_dataset(
            claim("two", OutputFormat::Parquet, &["visit"]),
            HashAlgorithm::Sha512,
        )
        .unwrap_err();
    assert!(
        matches!(err, StorageError::FormatConflict { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("one project run has one output format")
    );
    // The only dataset may switch format: its old files are replaced whole.
    let write = crate::begin_as(&lock, "one", OutputFormat::Parquet, &["person"]);
    write_files(
        &write,
        &[("data/outputs/cohort/person.parquet", b"pq".to_vec())],
    );
    commit_with(write, &["person"]).unwrap();
    assert_eq!(
        area.staged_files().unwrap(),
        ["data/outputs/cohort/person.parquet"]
    );
}

#[test]
fn a_shared_file_is_carried_as_a_private_copy_and_a_failed_package_leaves_it_untouched() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let db = "data/outputs/database.duckdb";
    let lock = area.lock().unwrap();
    let write = crate::begin_as(&lock, "one", OutputFormat::Duckdb, &["person"]);
    assert!(!write.carries_shared_files(), "nothing to carry yet");
    write_files(&write, &[(db, b"dataset one".to_vec())]);
    commit_with(write, &["person"]).unwrap();
    let staged = area.staging_dir().join(db);
    let inode = fs::metadata(&staged).unwrap().ino();

    // Dataset two is begun on a copy of the database, which it may change freely.
    let write = crate::begin_as(&lock, "two", OutputFormat::Duckdb, &["visit"]);
    assert!(write.carries_shared_files());
    assert!(write.replaced_tables().is_empty());
    let copy = write.dir().join(db);
    assert_ne!(
        fs::metadata(&copy).unwrap().ino(),
        inode,
        "never a hard link"
    );
    assert_eq!(fs::read(&copy).unwrap(), b"dataset one");
    fs::write(&copy, b"dataset one + half of two").unwrap();
    drop(write); // the package failed half-way
    assert_eq!(fs::read(&staged).unwrap(), b"dataset one");
    assert_eq!(fs::metadata(&staged).unwrap().ino(), inode);

    // Committed, the database belongs to both datasets.
    let write = crate::begin_as(&lock, "two", OutputFormat::Duckdb, &["visit"]);
    fs::write(write.dir().join(db), b"dataset one + two").unwrap();
    assert_eq!(commit_with(write, &["visit"]).unwrap(), [db]);
    let record = area.staged_record().unwrap().unwrap();
    assert!(record.datasets.iter().all(|d| d.files == [db]));
    assert_eq!(record.files[0].hash_value, sha512sum(&staged));

    // Dataset one again: the copy it gets still holds its old table, which the writer drops.
    let write = crate::begin_as(&lock, "one", OutputFormat::Duckdb, &["person"]);
    assert!(write.carries_shared_files());
    let replaced: Vec<String> = write
        .replaced_tables()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(replaced, ["cohort.person"]);
}

#[test]
fn a_carried_file_that_changed_since_its_package_refuses_the_next_package() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let db = "data/outputs/database.duckdb";
    let lock = area.lock().unwrap();
    let write = crate::begin_as(&lock, "one", OutputFormat::Duckdb, &["person"]);
    write_files(&write, &[(db, b"dataset one".to_vec())]);
    commit_with(write, &["person"]).unwrap();
    fs::write(area.staging_dir().join(db), b"dataset 1!!").unwrap(); // same size
    let err = lock
        .begin_dataset(
            claim("two", OutputFormat::Duckdb, &["visit"]),
            HashAlgorithm::Sha512,
        )
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::StagedFileChanged { file, .. } if file == db),
        "{err:?}"
    );
}

#[test]
fn publish_refuses_planted_missing_and_changed_files_naming_them() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let options = PublishOptions {
        force_copy: true,
        ..PublishOptions::default()
    };
    let publish = || area.lock().unwrap().publish(&options);
    let staged = |rel: &str| area.staging_dir().join(rel);

    stage_csv(&area, "one", &["person", "address"]).unwrap();
    fs::write(staged("data/outputs/cohort/planted.csv"), b"x").unwrap();
    let err = publish().unwrap_err();
    assert!(
        matches!(&err, StorageError::UnexpectedStagedFile { file } if file == "data/outputs/cohort/planted.csv"),
        "{err:?}"
    );
    fs::remove_file(staged("data/outputs/cohort/planted.csv")).unwrap();

    let person = staged("data/outputs/cohort/person.csv");
    let original = fs::read(&person).unwrap();
    let mut changed = original.clone();
    changed[0] ^= 1;
    fs::write(&person, &changed).unwrap();
    let err = publish().unwrap_err();
    assert!(
        matches!(&err, StorageError::StagedFileChanged { file, .. } if file == "data/outputs/cohort/person.csv"),
        "{err:?}"
    );
    assert!(err.to_string().contains("digest changed"), "{err}");

    fs::remove_file(&person).unwrap();
    let err = publish().unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
    assert!(!area.production_dir().exists(), "nothing was published");
    assert_eq!(
        crate::names_in(&crate::project_folder(&area.production_dir())),
        Vec::<String>::new(),
        "no temporary folder is left in production"
    );

    fs::write(&person, &original).unwrap();
    fs::remove_file(staged("package-record.json")).unwrap();
    let err = publish().unwrap_err();
    assert!(matches!(err, StorageError::MissingRecord { .. }), "{err:?}");
}
