//! The storage contract on the volumes CR8TOR really mounts (issue 9): Azure Blob containers
//! through FUSE, here Azurite mounted with rclone by `tools/blob-volumes` (see
//! [`publish_storage::test_rig`]). What lands is checked in the blob store itself, not only
//! through the mount: the bytes of every published object must hash to the manifest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use publish_storage::test_rig::{Rig, unique_project};
use publish_storage::{Destination, PublishOptions, StagedTable};
use publish_types::{DestinationName, ObjectName, OutputFormat, ProjectName, StartTime, TableRef};

use crate::{START, write_files};

#[test]
fn two_datasets_package_and_publish_on_blob_volumes_land_in_the_store() {
    let Some(rig) = Rig::get() else { return };
    let destination = Destination::new(DestinationName::parse("BLOB").unwrap(), rig.mount());
    destination.check_containers().unwrap();
    let project = unique_project("datasets");
    let area = destination.project(
        &ProjectName::parse(&project).unwrap(),
        &StartTime::parse(START).unwrap(),
    );
    let table = |t: &str| StagedTable {
        table: TableRef {
            schema: ObjectName::parse("cohort").unwrap(),
            table: ObjectName::parse(t).unwrap(),
        },
        rows: 1,
        snapshot: None,
        unpinned: None,
    };
    let big = crate::deterministic_bytes(3 << 20, 11);
    // Dataset 1 and 2 as CSV files; then dataset 1 again (carried files cannot be hard links
    // here: they are copied and checked).
    for (id, tables, content) in [
        ("one", vec!["person"], big.clone()),
        ("two", vec!["visit"], b"visit\n".to_vec()),
        ("one", vec!["person"], big.clone()),
    ] {
        let lock = area.lock().unwrap();
        let write = crate::begin_as(&lock, id, OutputFormat::Csv, &tables);
        let rel = format!("data/outputs/cohort/{}.csv", tables[0]);
        write_files(&write, &[(rel.as_str(), content)]);
        let mut write = write;
        for t in &tables {
            write.record_table(table(t));
        }
        write.commit().unwrap();
    }
    let options = PublishOptions::default();
    let manifest = area.lock().unwrap().publish(&options).unwrap();
    let again = area.lock().unwrap().publish(&options).unwrap();
    assert_eq!(
        again, manifest,
        "a retried publish answers the same manifest"
    );

    let mut expected: BTreeMap<String, u64> = manifest
        .files
        .iter()
        .map(|f| (format!("{project}/{START}/{}", f.file_path), f.total_bytes))
        .collect();
    let sidecar = format!("{project}/.{START}.manifest.json");
    let sidecar_len = std::fs::metadata(rig.mount().join("production").join(&sidecar))
        .unwrap()
        .len();
    expected.insert(sidecar, sidecar_len);
    expected.extend(rig.bag_tag_objects(&project, START));
    // Exactly the published files, the bag's tag files and the manifest: no temporary object
    // anywhere.
    rig.wait_for("production", &format!("{project}/"), &expected);
    rig.wait_for(
        "production",
        &format!(".publish-service/work/{project}/"),
        &BTreeMap::new(),
    );
    for f in &manifest.files {
        assert_eq!(
            rig.sha512("production", &format!("{project}/{START}/{}", f.file_path)),
            f.hash_value,
            "{}",
            f.file_path
        );
    }
    // Staging is gone from the store too.
    rig.wait_for("staging", &format!("{project}/"), &BTreeMap::new());
}

#[test]
fn a_failed_package_on_blob_volumes_leaves_staging_as_it_was() {
    let Some(rig) = Rig::get() else { return };
    let destination = Destination::new(DestinationName::parse("BLOB").unwrap(), rig.mount());
    let project = unique_project("failed");
    let area = destination.project(
        &ProjectName::parse(&project).unwrap(),
        &StartTime::parse(START).unwrap(),
    );
    let lock = area.lock().unwrap();
    let write = crate::begin_as(&lock, "one", OutputFormat::Csv, &["person"]);
    write_files(
        &write,
        &[("data/outputs/cohort/person.csv", b"first".to_vec())],
    );
    write.commit().unwrap();
    let write = crate::begin_as(&lock, "one", OutputFormat::Csv, &["person"]);
    write_files(
        &write,
        &[("data/outputs/cohort/person.csv", b"half".to_vec())],
    );
    drop(write);
    assert_eq!(
        std::fs::read(area.staging_dir().join("data/outputs/cohort/person.csv")).unwrap(),
        b"first"
    );
    drop(lock);
    let record = format!("{project}/{START}/package-record.json");
    let data = format!("{project}/{START}/data/outputs/cohort/person.csv");
    let began = Instant::now();
    loop {
        let found = rig.objects("staging", &format!("{project}/"));
        if found.contains_key(&record) && found.get(&data) == Some(&5) && found.len() == 2 {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "{found:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
