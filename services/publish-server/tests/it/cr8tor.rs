//! The real CR8TOR client chain (issue 8): every body it sends, replayed byte for byte over real
//! HTTP (only `host_url` pointed at the emulator), gets the answer `fixtures/requests/cr8tor/`'s
//! README describes; and a project of several datasets publishes all of them.

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use databricks_emulator::{Fault, Operation};
use serde_json::{Value, json};

use crate::package::{col, describe_duckdb, fixtures_dir, setup, setup_with};
use crate::support::{API_KEY, Deployment, Server, post, sha512sum};

/// The workspace host the recorded bodies name.
const RECORDED_HOST: &str = "https://adb-123.7.azuredatabricks.net";

/// A recorded body, byte for byte, with its workspace host replaced by `host`.
fn recorded(name: &str, host: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../fixtures/requests/cr8tor/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.replace(RECORDED_HOST, host).into_bytes()
}

/// POSTs raw bytes as the Approval Service does: `x-api-key` and `Content-Type` only.
async fn post_raw(url: &str, route: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/data-publish/{route}"))
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.json().await.unwrap())
}

fn staged(d: &Deployment, project: &str, start: &str) -> PathBuf {
    d.mount("lsc").join("staging").join(project).join(start)
}

fn published(d: &Deployment, project: &str, start: &str) -> PathBuf {
    d.mount("lsc").join("production").join(project).join(start)
}

/// What the client keeps of a publish answer: `data_published[0]`, checked against the file.
fn check_published(body: &Value, dir: &Path, file_path: &str) {
    let first = &body["payload"]["data_published"][0];
    assert_eq!(first["file_path"], json!(file_path), "{body}");
    let path = dir.join(file_path);
    assert_eq!(first["hash_value"], json!(sha512sum(&path)));
    assert_eq!(
        first["total_bytes"],
        json!(std::fs::metadata(&path).unwrap().len())
    );
}

#[tokio::test]
async fn every_body_cr8tor_sends_gets_the_answer_its_readme_describes() {
    let (d, emulator) = setup().await;
    let server = Server::start(&d);
    let host = emulator.url();
    let (project, start) = ("Pr004", "20261201_200849");

    let (status, body) = post_raw(&server.url, "validate", recorded("validate.json", &host)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "payload": {"validation_status": "success"}})
    );

    let (status, body) =
        post_raw(&server.url, "package", recorded("package-csv.json", &host)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["payload"]["data_retrieved"],
        json!([
            {"file_path": "data/outputs/example_schema_name/address.csv"},
            {"file_path": "data/outputs/example_schema_name/person.csv"},
        ])
    );
    let csv = staged(&d, project, start).join("data/outputs/example_schema_name/person.csv");
    let header = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(header.lines().next(), Some("person_key,age"));

    // The same dataset again, now as DuckDB: the lone dataset is replaced whole.
    for name in ["package.json", "package-rerun.json"] {
        let (status, body) = post_raw(&server.url, "package", recorded(name, &host)).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            body,
            json!({"status": "success", "payload": {"data_retrieved": [{"file_path": "data/outputs/database.duckdb"}]}}),
            "{name}"
        );
    }
    let db = "data/outputs/database.duckdb";
    let expected = vec![
        (
            "example_schema_name.address".to_owned(),
            vec![col("address_key", "BIGINT", false)],
            300,
        ),
        (
            "example_schema_name.person".to_owned(),
            vec![
                col("person_key", "BIGINT", false),
                col("age", "INTEGER", true),
            ],
            200,
        ),
    ];
    assert_eq!(
        describe_duckdb(&staged(&d, project, start).join(db)),
        expected
    );
    assert!(
        !staged(&d, project, start)
            .join("data/outputs/example_schema_name")
            .exists(),
        "the CSV files of the replaced package are gone"
    );

    let (status, body) = post_raw(&server.url, "publish", recorded("publish.json", &host)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["payload"]["data_published"].as_array().unwrap().len(),
        1
    );
    check_published(&body, &published(&d, project, start), db);
    assert_eq!(
        describe_duckdb(&published(&d, project, start).join(db)),
        expected
    );
    // A retried publish answers the same manifest.
    let (status, again) = post_raw(&server.url, "publish", recorded("publish.json", &host)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, body);

    // The client before June 2025: the brief's flat shape, upper-case DUCKDB.
    let (status, body) = post_raw(
        &server.url,
        "package",
        recorded("legacy-package-shape-a.json", &host),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["payload"]["data_retrieved"],
        json!([{"file_path": db}])
    );
    let (status, body) = post_raw(
        &server.url,
        "publish",
        recorded("legacy-publish-shape-a.json", &host),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    check_published(&body, &published(&d, "Pr002", "20250201_010101"), db);

    // A SQL-database source whose server is not on the allow-list (here only the emulator
    // is): refused before any secret is read or anything written, naming the host and the
    // allow-list. `postgres.rs` packages this body from a real PostgreSQL server.
    let before = d.snapshot();
    let (status, body) = post_raw(
        &server.url,
        "package",
        recorded("package-postgresql-source.json", &host),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body,
        json!({"status": "error", "payload": {"detail":
            "source.host_url: postgresql://db.internal.example is not an allowed source host \
             (allowed: http://127.0.0.1:*); set PUBLISH_ALLOWED_SOURCE_HOSTS to change this"}})
    );
    assert_eq!(d.snapshot(), before);
    server.stop();
    emulator.shutdown().await;
}

/// A catalog with the fixture schema and a second one, `cohort_two`, holding `person` (the
/// same name as in the first schema) and `visit` (a copy of `address`).
fn two_schema_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = fixtures_dir().join("catalog_name/example_schema_name");
    let first = dir.path().join("catalog_name/example_schema_name");
    let second = dir.path().join("catalog_name/cohort_two");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    for table in ["person", "address"] {
        for ext in ["json", "parquet"] {
            let name = format!("{table}.{ext}");
            std::fs::copy(from.join(&name), first.join(&name)).unwrap();
        }
    }
    for (table, copy) in [("person", "person"), ("address", "visit")] {
        for ext in ["json", "parquet"] {
            std::fs::copy(
                from.join(format!("{table}.{ext}")),
                second.join(format!("{copy}.{ext}")),
            )
            .unwrap();
        }
    }
    dir
}

/// The recorded package body, as dataset `name` of schema `schema` with `tables` (all columns).
fn dataset_body(host: &str, name: &str, schema: &str, tables: &[&str]) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&recorded("package.json", host)).unwrap();
    body["dataset"]["name"] = json!(name);
    body["dataset"]["schema_name"] = json!(schema);
    body["dataset"]["tables"] = tables
        .iter()
        .map(|t| json!({"name": t, "columns": null, "description": null}))
        .collect();
    body.to_string().into_bytes()
}

fn tables_of(path: &Path) -> Vec<(String, i64)> {
    describe_duckdb(path)
        .into_iter()
        .map(|(t, _, rows)| (t, rows))
        .collect()
}

#[tokio::test]
async fn a_project_of_several_datasets_publishes_every_datasets_current_tables() {
    let catalog = two_schema_catalog();
    let (d, emulator) = setup_with(catalog.path().to_path_buf()).await;
    let server = Server::start(&d);
    let host = emulator.url();
    let (project, start) = ("Pr004", "20261201_200849");
    let db = "data/outputs/database.duckdb";
    let staged_db = staged(&d, project, start).join(db);
    let package = |body: Vec<u8>| post_raw(&server.url, "package", body);

    let (status, body) = post_raw(&server.url, "validate", recorded("validate.json", &host)).await;
    assert_eq!(status, 200, "{body}");
    let one = dataset_body(
        &host,
        "dataset_1",
        "example_schema_name",
        &["person", "address"],
    );
    let (status, body) = package(one).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["data_retrieved"][0]["file_path"], json!(db));

    let two = dataset_body(&host, "dataset_2", "cohort_two", &["person", "visit"]);
    let (status, body) = package(two.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["data_retrieved"][0]["file_path"], json!(db));
    let both = vec![
        ("cohort_two.person".to_owned(), 200),
        ("cohort_two.visit".to_owned(), 300),
        ("example_schema_name.address".to_owned(), 300),
        ("example_schema_name.person".to_owned(), 200),
    ];
    assert_eq!(tables_of(&staged_db), both);

    // Dataset 2 failing half-way (its second table's statement fails) leaves the staged
    // result, dataset 1 and dataset 2 included, exactly as it was.
    let before = d.snapshot();
    let digest = sha512sum(&staged_db);
    emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::Slow {
            delay: std::time::Duration::ZERO,
        },
    );
    emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::FailStatement {
            error_code: "INTERNAL_ERROR".into(),
            message: "[INTERNAL_ERROR] warehouse exploded SQLSTATE: XX000".into(),
        },
    );
    let (status, body) = package(two).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(d.snapshot(), before, "staging changed");
    assert_eq!(sha512sum(&staged_db), digest);

    // A table of dataset 1 claimed by a third dataset: 409 naming both; nothing written.
    let three = dataset_body(&host, "dataset_3", "example_schema_name", &["address"]);
    let (status, body) = package(three).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["payload"]["detail"],
        json!(
            "table example_schema_name.address of dataset \"dataset_3\" is already staged by \
             dataset \"dataset_1\" of the same project; a table can belong to one dataset only \
             (rename one of them, or package \"dataset_1\" again without it)"
        )
    );
    assert_eq!(d.snapshot(), before);

    // Dataset 1 again with one table fewer: its old table is gone, dataset 2 is kept.
    let one_again = dataset_body(&host, "dataset_1", "example_schema_name", &["person"]);
    let (status, body) = package(one_again).await;
    assert_eq!(status, 200, "{body}");
    let current = vec![
        ("cohort_two.person".to_owned(), 200),
        ("cohort_two.visit".to_owned(), 300),
        ("example_schema_name.person".to_owned(), 200),
    ];
    assert_eq!(tables_of(&staged_db), current);
    let record: Value = serde_json::from_slice(
        &std::fs::read(staged(&d, project, start).join("package-record.json")).unwrap(),
    )
    .unwrap();
    let datasets: Vec<(&str, usize)> = record["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap(),
                d["tables"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(datasets, [("dataset_1", 1), ("dataset_2", 2)]);
    // Every table names the Delta version it was read at (the emulator's tables are at 0).
    for dataset in record["datasets"].as_array().unwrap() {
        for table in dataset["tables"].as_array().unwrap() {
            assert_eq!(table["snapshot"], json!("delta version 0"), "{table}");
        }
    }
    // The record binds the staged file with BLAKE3; a publish answers SHA-512.
    assert_eq!(record["algorithm"], "blake3");
    let bytes = std::fs::read(&staged_db).unwrap();
    assert_eq!(
        record["files"][0]["hash_value"],
        json!(
            publish_hash::hash_reader(&bytes[..], publish_hash::HashAlgorithm::Blake3)
                .unwrap()
                .hex
        )
    );

    let (status, body) = post_raw(&server.url, "publish", recorded("publish.json", &host)).await;
    assert_eq!(status, 200, "{body}");
    check_published(&body, &published(&d, project, start), db);
    assert_eq!(tables_of(&published(&d, project, start).join(db)), current);
    assert!(
        !published(&d, project, start)
            .join("package-record.json")
            .exists()
    );
    server.stop();
    emulator.shutdown().await;
}

#[tokio::test]
async fn csv_datasets_keep_their_files_under_their_schema_folders() {
    let catalog = two_schema_catalog();
    let (d, emulator) = setup_with(catalog.path().to_path_buf()).await;
    let server = Server::start(&d);
    let host = emulator.url();
    let (project, start) = ("Pr004", "20261201_200849");
    let csv = |name: &str, schema: &str, tables: &[&str]| {
        let mut body: Value =
            serde_json::from_slice(&dataset_body(&host, name, schema, tables)).unwrap();
        body["destination"]["format"] = json!("csv");
        body.to_string().into_bytes()
    };
    for (name, schema, tables) in [
        (
            "dataset_1",
            "example_schema_name",
            &["person", "address"][..],
        ),
        ("dataset_2", "cohort_two", &["person"][..]),
    ] {
        let (status, body) = post_raw(&server.url, "package", csv(name, schema, tables)).await;
        assert_eq!(status, 200, "{body}");
    }
    // Another format than the staged datasets': 409, nothing written.
    let before = d.snapshot();
    let (status, body) = post_raw(
        &server.url,
        "package",
        dataset_body(&host, "dataset_3", "cohort_two", &["visit"]),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["payload"]["detail"]
            .as_str()
            .unwrap()
            .contains("one project run has one output format"),
        "{body}"
    );
    assert_eq!(d.snapshot(), before);

    let mut publish: Value = serde_json::from_slice(&recorded("publish.json", &host)).unwrap();
    publish["destination"]["format"] = json!("csv");
    let (status, body) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &publish,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let files: Vec<&str> = body["payload"]["data_published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "data/outputs/cohort_two/person.csv",
            "data/outputs/example_schema_name/address.csv",
            "data/outputs/example_schema_name/person.csv",
        ]
    );
    for file in body["payload"]["data_published"].as_array().unwrap() {
        let path = published(&d, project, start).join(file["file_path"].as_str().unwrap());
        assert_eq!(file["hash_value"], json!(sha512sum(&path)));
    }
    server.stop();
    emulator.shutdown().await;
}
