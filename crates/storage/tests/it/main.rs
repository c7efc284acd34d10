//! Integration tests of `publish-storage`, gathered in one binary (one module per scenario).

mod blob;
mod commit;
#[cfg(feature = "failpoints")]
mod crash;
mod datasets;
mod destinations;
mod hostile;
mod lock;
mod publish;

use std::fs;
use std::path::{Path, PathBuf};

use publish_hash::HashAlgorithm;
use publish_storage::{
    DatasetClaim, Destination, ProjectArea, ProjectLock, StagingWrite, StorageError,
};
use publish_test_support::missing_prerequisite;
// Shared with every crate's tests (`publish-test-support`); the scenarios name them from here.
pub(crate) use publish_test_support::{deterministic_bytes, sha512sum};
use publish_types::{DestinationName, ObjectName, OutputFormat, ProjectName, StartTime, TableRef};

/// The crash tests need the process-stopping failpoints, which `cargo test --workspace` turns
/// on through the server's dev-dependency; alone, run `cargo test -p publish-storage
/// --features test-util,failpoints`.
#[cfg(not(feature = "failpoints"))]
#[test]
fn crash_tests_need_the_failpoints_feature() {
    missing_prerequisite("the crash tests need publish-storage's `failpoints` feature");
}

pub(crate) const PROJECT: &str = "Pr004";
pub(crate) const START: &str = "20250205_010101";

/// A destination in a temporary folder, with both containers created.
pub(crate) struct TestDestination {
    pub(crate) destination: Destination,
    /// Keeps the folders alive.
    _dirs: Vec<tempfile::TempDir>,
}

impl TestDestination {
    /// Staging and production on the same filesystem.
    pub(crate) fn one_filesystem() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::new(
            DestinationName::parse("LSC").unwrap(),
            dir.path().to_path_buf(),
        );
        destination.ensure_containers().unwrap();
        Self {
            destination,
            _dirs: vec![dir],
        }
    }

    /// `<mount>/staging` is a link to a folder in `/dev/shm` (tmpfs) while `<mount>/production`
    /// is on the disk holding the system temporary folder: two filesystems, as in production.
    /// `None` (with a message) only when `/dev/shm` is missing.
    pub(crate) fn two_filesystems() -> Option<Self> {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            missing_prerequisite(
                "/dev/shm is missing, so no second filesystem is available for the cross-filesystem test",
            );
            return None;
        }
        let disk = tempfile::tempdir().unwrap();
        let volume = tempfile::tempdir_in(shm).unwrap();
        std::os::unix::fs::symlink(volume.path(), disk.path().join("staging")).unwrap();
        fs::create_dir(disk.path().join("production")).unwrap();
        let destination = Destination::new(
            DestinationName::parse("LSC").unwrap(),
            disk.path().to_path_buf(),
        );
        destination.check_containers().unwrap();
        assert_ne!(
            device(&destination.staging_root()),
            device(&destination.production_root()),
            "/dev/shm and the temporary folder must be different filesystems for this test"
        );
        Some(Self {
            destination,
            _dirs: vec![disk, volume],
        })
    }

    pub(crate) fn area(&self) -> ProjectArea {
        self.area_for(PROJECT, START)
    }

    pub(crate) fn area_for(&self, project: &str, start: &str) -> ProjectArea {
        self.destination.project(
            &ProjectName::parse(project).unwrap(),
            &StartTime::parse(start).unwrap(),
        )
    }
}

/// The device a path (followed through links) lives on.
pub(crate) fn device(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().dev()
}

/// A claim of dataset `id` in schema `cohort` on `tables`, in `format` (DuckDB output shares
/// `data/outputs/database.duckdb`).
pub(crate) fn claim(id: &str, format: OutputFormat, tables: &[&str]) -> DatasetClaim {
    let schema = ObjectName::parse("cohort").unwrap();
    DatasetClaim {
        id: id.to_owned(),
        name: Some(id.to_owned()),
        schema_name: schema.clone(),
        tables: tables
            .iter()
            .map(|t| TableRef {
                schema: schema.clone(),
                table: ObjectName::parse(t).unwrap(),
            })
            .collect(),
        format,
        shared_files: match format {
            OutputFormat::Duckdb => vec!["data/outputs/database.duckdb".to_owned()],
            _ => Vec::new(),
        },
    }
}

/// Begins staging the project's only dataset (`dataset_1`, CSV).
pub(crate) fn begin(lock: &ProjectLock) -> Result<StagingWrite, StorageError> {
    lock.begin_dataset(
        claim("dataset_1", OutputFormat::Csv, &[]),
        HashAlgorithm::Sha512,
    )
}

/// Begins staging dataset `id` of the locked area on `tables` in `format` ([`claim`]), SHA-512.
pub(crate) fn begin_as(
    lock: &ProjectLock,
    id: &str,
    format: OutputFormat,
    tables: &[&str],
) -> StagingWrite {
    lock.begin_dataset(claim(id, format, tables), HashAlgorithm::Sha512)
        .unwrap()
}

/// Writes `files` (relative path, content) into a staging write's folder.
pub(crate) fn write_files(write: &StagingWrite, files: &[(&str, Vec<u8>)]) {
    for (rel, content) in files {
        let path = write.dir().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

/// Stages `files` (relative path, content) for `area` and returns what commit reported.
pub(crate) fn stage(area: &ProjectArea, files: &[(&str, Vec<u8>)]) -> Vec<String> {
    let lock = area.lock().unwrap();
    let write = begin(&lock).unwrap();
    for (rel, content) in files {
        let path = write.dir().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    write.commit().unwrap()
}

/// A typical result: a multi-megabyte database, a nested CSV and an empty file.
pub(crate) fn sample_files(seed: u64) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "data/outputs/database.duckdb",
            deterministic_bytes(2 * (1 << 20) + 333, seed),
        ),
        (
            "data/outputs/cohort/person.csv",
            deterministic_bytes(70_001, seed + 1),
        ),
        ("data/outputs/empty.txt", Vec::new()),
    ]
}

/// The names in a folder, sorted (empty if it does not exist).
pub(crate) fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The parent folder of a result, i.e. `<container>/<project>`.
pub(crate) fn project_folder(result_dir: &Path) -> PathBuf {
    result_dir.parent().unwrap().to_path_buf()
}

/// The area's work folder on `container` (`staging` or `production`), where temporary folders
/// live: `<container>/.publish-service/work/<project>/<start>`.
pub(crate) fn work_folder(area: &ProjectArea, container: &str) -> PathBuf {
    let root = project_folder(&match container {
        "staging" => area.staging_dir(),
        _ => area.production_dir(),
    })
    .parent()
    .unwrap()
    .to_path_buf();
    root.join(".publish-service/work")
        .join(area.project().as_str())
        .join(area.start().as_str())
}
