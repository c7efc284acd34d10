//! The workflow without HTTP: the in-memory source and sink (as other CR8TOR services would use
//! them) and the real storage on disk. No DuckDB is linked here: what each format writes is
//! tested with the writers and, end to end, by the server's tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use publish_sink::memory::MemorySinks;
use publish_source::conformance::Suite;
use publish_source::memory::MemorySource;
use publish_source::{Source, SourceError};
use publish_storage::Destinations;
use publish_types::{HostAllowList, PackageRequest, PublishRequest, SourceSpec, ValidateRequest};
use publish_workflow::{
    ErrorKind, Interrupt, SecretStore, SourceCredentials, SourceFactory, Workflow, WorkflowError,
    WorkflowOptions,
};
use serde_json::{Value, json};

struct Memory(Arc<MemorySource>);

#[async_trait]
impl SourceFactory for Memory {
    async fn open(
        &self,
        _: &SourceSpec,
        _: publish_types::AllowedHost,
        _: SourceCredentials,
        _: &publish_types::ProjectRef,
    ) -> Result<Arc<dyn Source>, WorkflowError> {
        Ok(self.0.clone())
    }
}

struct Env {
    dir: tempfile::TempDir,
    source: Arc<MemorySource>,
    sinks: MemorySinks,
    workflow: Workflow,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("lsc");
    std::fs::create_dir_all(mount.join("staging")).unwrap();
    std::fs::create_dir_all(mount.join("production")).unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/id"), "client").unwrap();
    std::fs::write(dir.path().join("secrets/secret"), "s3cr3t").unwrap();
    let suite = Suite::new("cat", "sch");
    let source = Arc::new(MemorySource::new());
    for f in suite.fixtures() {
        source.add_table(f.definition, f.batches).unwrap();
    }
    let destinations = Destinations::from_env_vars([(
        "TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH".to_owned(),
        mount.to_string_lossy().into_owned(),
    )])
    .unwrap();
    let sinks = MemorySinks::new();
    let workflow = Workflow::new(
        destinations,
        SecretStore::new(dir.path().join("secrets")),
        HostAllowList::default(),
        Arc::new(Memory(source.clone())),
        Arc::new(sinks.clone()),
        WorkflowOptions::default(),
    );
    Env {
        dir,
        source,
        sinks,
        workflow,
    }
}

impl Env {
    fn staging(&self) -> PathBuf {
        self.dir.path().join("lsc/staging/P1/20250101_000000")
    }

    fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir.path().join("lsc"), &mut out);
        out.sort();
        out
    }
}

/// Every data file under `dir` with its size. The per-project lock files (empty, hidden, next
/// to the staging folder) are what replicas lock and do not count as data.
fn walk(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            walk(&p, out);
        } else if !(name.starts_with('.') && name.ends_with(".lock")) {
            out.push(format!(
                "{} {}",
                p.display(),
                std::fs::metadata(&p).unwrap().len()
            ));
        }
    }
}

fn package_json(format: &str, tables: Value) -> Value {
    json!({
        "project_name": "P1", "project_start_time": "20250101_000000",
        "destination": {"name": "LSC", "type": "filestore", "format": format},
        "source": {"type": "databrickssql", "host_url": "https://adb-1.azuredatabricks.net",
                   "http_path": "/sql/1.0/warehouses/abc", "catalog": "cat",
                   "credentials": {"spn_clientid": "id", "spn_secret": "secret"}},
        "dataset": {"schema_name": "sch", "tables": tables}
    })
}

fn package_req(format: &str, tables: Value) -> PackageRequest {
    PackageRequest::from_json(package_json(format, tables).to_string().as_bytes()).unwrap()
}

fn people_request() -> Value {
    json!([{"name": "people", "columns": [{"name": "age"}, {"name": "ID"}, {"name": "Tags"}, {"name": "Seen"}, {"name": "Score"}]}])
}

#[tokio::test]
async fn package_writes_exactly_the_requested_columns_then_publish_hashes_them() {
    let e = env();
    let files = e
        .workflow
        .package(package_req("duckdb", people_request()), Interrupt::none())
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].as_file().unwrap().file_path,
        "data/outputs/sch/people.jsonl"
    );
    let tables = e.sinks.tables();
    assert_eq!(tables.len(), 1, "exactly the requested table");
    let people = &tables[0];
    // Requested order, the catalog's spelling, UC types.
    let columns: Vec<(String, String)> = people
        .schema
        .columns
        .iter()
        .map(|c| (c.name.to_string(), c.data_type.to_string()))
        .collect();
    assert_eq!(
        columns,
        [
            ("Age", "int"),
            ("Id", "bigint"),
            ("Tags", "array<string>"),
            ("Seen", "timestamp"),
            ("Score", "decimal(6,2)")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(people.rows(), publish_source::conformance::PEOPLE_ROWS);
    for batch in &people.batches {
        assert_eq!(
            batch.schema(),
            publish_columns::arrow_schema(&people.schema)
        );
    }
    let staged =
        std::fs::read_to_string(e.staging().join(&files[0].as_file().unwrap().file_path)).unwrap();
    assert_eq!(
        staged.lines().count(),
        publish_source::conformance::PEOPLE_ROWS
    );
    let published = e
        .workflow
        .publish(PublishRequest::from_json(br#"{"project_name":"P1","project_start_time":"20250101_000000","destination_type":"lsc"}"#).unwrap(), Interrupt::none())
        .await
        .unwrap();
    assert_eq!(published.len(), 1);
    let prod = e
        .dir
        .path()
        .join("lsc/production/P1/20250101_000000/data/outputs/sch/people.jsonl");
    let bytes = std::fs::read(&prod).unwrap();
    assert_eq!(
        published[0].as_file().unwrap().total_bytes,
        bytes.len() as u64
    );
    assert_eq!(
        published[0].as_file().unwrap().hash_value,
        publish_hash::hash_reader(&bytes[..], publish_hash::HashAlgorithm::Sha512)
            .unwrap()
            .hex
    );
}

#[tokio::test]
async fn a_source_failure_mid_table_keeps_the_previous_staging_result() {
    let e = env();
    e.workflow
        .package(package_req("csv", people_request()), Interrupt::none())
        .await
        .unwrap();
    let before = e.tree();
    e.source.fail_read_after(
        "cat.sch.people",
        1,
        SourceError::Unavailable {
            operation: "downloading chunk 1".into(),
            message: "warehouse went away".into(),
        },
    );
    let err = e
        .workflow
        .package(package_req("duckdb", people_request()), Interrupt::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SourceFailed, "{err}");
    assert_eq!(
        e.tree(),
        before,
        "staging changed or a temp dir was left behind"
    );
}

#[tokio::test]
async fn a_full_staging_volume_is_named_and_keeps_the_previous_staging_result() {
    let e = env();
    e.workflow
        .package(package_req("csv", people_request()), Interrupt::none())
        .await
        .unwrap();
    let before = e.tree();
    e.sinks.fail_batch(1);
    let err = e
        .workflow
        .package(package_req("csv", people_request()), Interrupt::none())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            WorkflowError::VolumeFull {
                volume: publish_storage::Container::Staging,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        e.tree(),
        before,
        "staging changed or a temp dir was left behind"
    );
}

#[tokio::test]
async fn unknown_columns_fail_before_anything_is_written() {
    let e = env();
    let before = e.tree();
    let tables = json!([{"name": "people", "columns": [{"name": "Id"}]}, {"name": "people2"}]);
    let err = e
        .workflow
        .package(package_req("parquet", tables), Interrupt::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("people2"), "{err}");
    let tables = json!([{"name": "people", "columns": [{"name": "Id"}, {"name": "agee"}]}]);
    let err = e
        .workflow
        .package(package_req("parquet", tables), Interrupt::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("agee"), "{err}");
    assert_eq!(e.tree(), before);
    assert_eq!(e.source.reads_started(), 0, "no table was read");
}

#[tokio::test]
async fn refused_host_is_invalid_and_no_secret_is_read() {
    let e = env();
    std::fs::remove_dir_all(e.dir.path().join("secrets")).unwrap();
    let mut body = package_json("duckdb", people_request());
    body["source"]["host_url"] = json!("https://example.com");
    let err = e
        .workflow
        .package(
            PackageRequest::from_json(body.to_string().as_bytes()).unwrap(),
            Interrupt::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("https://example.com"), "{err}");
    // With an allowed host the missing secret is what fails, naming the field.
    let err = e
        .workflow
        .package(package_req("duckdb", people_request()), Interrupt::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(
        err.to_string()
            .starts_with("source.credentials.spn_clientid"),
        "{err}"
    );
}

#[tokio::test]
async fn validate_checks_containers_and_source() {
    let e = env();
    let body = package_json("duckdb", json!([]));
    let req = ValidateRequest::from_json(body.to_string().as_bytes()).unwrap();
    e.workflow
        .validate(req.clone(), Interrupt::none())
        .await
        .unwrap();
    e.source.fail_next_check(SourceError::Authentication {
        message: "invalid_client".into(),
    });
    let err = e
        .workflow
        .validate(req.clone(), Interrupt::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SourceFailed);
    std::fs::remove_dir(e.dir.path().join("lsc/production")).unwrap();
    let err = e
        .workflow
        .validate(req, Interrupt::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn two_packages_of_one_project_do_not_interleave() {
    let e = Arc::new(env());
    e.source
        .delay_batches("cat.sch.people", std::time::Duration::from_millis(200));
    let first = {
        let e = e.clone();
        tokio::spawn(async move {
            e.workflow
                .package(package_req("duckdb", people_request()), Interrupt::none())
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let err = e
        .workflow
        .package(package_req("csv", people_request()), Interrupt::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    first.await.unwrap().unwrap();
}
