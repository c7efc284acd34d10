//! Destinations from environment variables, lookups and container checks.

use std::path::Path;

use publish_storage::{Destinations, StorageError};
use publish_types::DestinationName;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `Ok` is the sorted `(name, mount)` list; `Err` is the variable named in the error.
fn check(input: &[(&str, &str)], expected: Result<&[(&str, &str)], &str>) {
    let got = Destinations::from_env_vars(vars(input));
    match (got, expected) {
        (Ok(dests), Ok(want)) => {
            let got: Vec<(String, String)> = dests
                .iter()
                .map(|d| (d.name().to_string(), d.mount().display().to_string()))
                .collect();
            assert_eq!(got, vars(want), "input {input:?}");
        }
        (Err(StorageError::InvalidDestinationVariable { variable, .. }), Err(want)) => {
            assert_eq!(variable, want, "input {input:?}");
        }
        (got, want) => panic!("input {input:?}: got {got:?}, expected {want:?}"),
    }
}

#[test]
fn destinations_from_variables() {
    let defaults: &[(&str, &str)] = &[("LSC", "./outputs/lsc-sde"), ("NW", "./outputs/nw-sde")];
    check(&[], Ok(defaults));
    check(
        &[("HOME", "/root"), ("TARGET_STORAGE_ACCOUNT_LSC_KEY", "x")],
        Ok(defaults),
    );
    check(
        &[("TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH", "/mnt/lsc")],
        Ok(&[("LSC", "/mnt/lsc"), ("NW", "./outputs/nw-sde")]),
    );
    check(
        &[
            ("TARGET_STORAGE_ACCOUNT_NW_SDE_MNT_PATH", "/mnt/nw"),
            ("TARGET_STORAGE_ACCOUNT_SW_SDE_MNT_PATH", "/mnt/sw"),
            ("TARGET_STORAGE_ACCOUNT_dev_2_SDE_MNT_PATH", "/mnt/dev"),
        ],
        Ok(&[
            ("DEV_2", "/mnt/dev"),
            ("LSC", "./outputs/lsc-sde"),
            ("NW", "/mnt/nw"),
            ("SW", "/mnt/sw"),
        ]),
    );
    for bad in [
        "TARGET_STORAGE_ACCOUNT_L-SC_SDE_MNT_PATH",
        "TARGET_STORAGE_ACCOUNT__SDE_MNT_PATH",
        "TARGET_STORAGE_ACCOUNT_SDE_MNT_PATH",
        "TARGET_STORAGE_ACCOUNT_A.B_SDE_MNT_PATH",
    ] {
        check(&[(bad, "/mnt/x")], Err(bad));
    }
    check(
        &[("TARGET_STORAGE_ACCOUNT_SW_SDE_MNT_PATH", " ")],
        Err("TARGET_STORAGE_ACCOUNT_SW_SDE_MNT_PATH"),
    );
    check(
        &[
            ("TARGET_STORAGE_ACCOUNT_SW_SDE_MNT_PATH", "/a"),
            ("TARGET_STORAGE_ACCOUNT_sw_SDE_MNT_PATH", "/b"),
        ],
        Err("TARGET_STORAGE_ACCOUNT_sw_SDE_MNT_PATH"),
    );
}

#[test]
fn unknown_destination_lists_the_known_ones() {
    let dests = Destinations::from_env_vars(vars(&[(
        "TARGET_STORAGE_ACCOUNT_SW_SDE_MNT_PATH",
        "/mnt/sw",
    )]))
    .unwrap();
    let lsc = dests.get(&DestinationName::parse("lsc").unwrap()).unwrap();
    assert_eq!(lsc.staging_root(), Path::new("./outputs/lsc-sde/staging"));
    assert_eq!(
        lsc.production_root(),
        Path::new("./outputs/lsc-sde/production")
    );
    match dests.get(&DestinationName::parse("XX").unwrap()) {
        Err(StorageError::UnknownDestination { name, known }) => {
            assert_eq!(name, "XX");
            assert_eq!(known, ["LSC", "NW", "SW"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn containers_are_checked_and_created() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("lsc");
    let dests = Destinations::from_env_vars(vars(&[(
        "TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH",
        mount.to_str().unwrap(),
    )]))
    .unwrap();
    let lsc = dests.get(&DestinationName::parse("LSC").unwrap()).unwrap();
    match lsc.check_containers() {
        Err(StorageError::ContainerMissing {
            destination,
            container,
            path,
        }) => {
            assert_eq!(
                (destination.as_str(), container.as_str()),
                ("LSC", "staging")
            );
            assert_eq!(path, mount.join("staging"));
        }
        other => panic!("{other:?}"),
    }
    std::fs::create_dir_all(mount.join("staging")).unwrap();
    std::fs::write(mount.join("production"), "not a folder").unwrap();
    assert!(matches!(
        lsc.check_containers(),
        Err(StorageError::ContainerMissing {
            container: publish_storage::Container::Production,
            ..
        })
    ));
    std::fs::remove_file(mount.join("production")).unwrap();
    lsc.ensure_containers().unwrap();
    lsc.check_containers().unwrap();
}
