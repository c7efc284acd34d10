//! Package (and validate) end to end: the real server binary, the Databricks client inside it,
//! and the emulator serving the fixture tables, all over real HTTP on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use databricks_emulator::{Emulator, EmulatorConfig, Fault, Operation};
use serde_json::{Value, json};

use crate::support::{API_KEY, Deployment, Server, fixture, post, sha512sum};

pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/databricks")
}

/// A deployment whose secrets match the emulator's credentials and whose allow-list admits it.
pub(crate) async fn setup() -> (Deployment, Emulator) {
    setup_with(fixtures_dir()).await
}

/// [`setup`] with the emulator serving the catalogs under `data_dir`.
pub(crate) async fn setup_with(data_dir: PathBuf) -> (Deployment, Emulator) {
    setup_configured(data_dir, |_| {}).await
}

/// [`setup_with`], the emulator's configuration changed by `configure`.
pub(crate) async fn setup_configured(
    data_dir: PathBuf,
    configure: impl FnOnce(&mut EmulatorConfig),
) -> (Deployment, Emulator) {
    let mut d = Deployment::new();
    let mut config = EmulatorConfig::new(data_dir);
    configure(&mut config);
    std::fs::write(
        d.path().join("secrets/databricksspnclientid"),
        &config.client_id,
    )
    .unwrap();
    std::fs::write(
        d.path().join("secrets/databricksspnsecret"),
        &config.client_secret,
    )
    .unwrap();
    d.extra_env.push((
        "PUBLISH_ALLOWED_SOURCE_HOSTS".into(),
        "http://127.0.0.1:*".into(),
    ));
    let emulator = Emulator::start(config).await.unwrap();
    (d, emulator)
}

fn package_body(shape: &str, emulator: &Emulator, format: &str) -> Value {
    let mut body = fixture(&format!("package-shape-{shape}.json"));
    body["source"]["host_url"] = json!(emulator.url());
    if shape == "a" {
        body["destination_format"] = json!(format);
    } else {
        body["destination"]["format"] = json!(format);
    }
    body
}

/// (column, type, nullable).
pub(crate) type Column = (String, String, bool);

/// (table, columns, rows) of every table in a DuckDB file.
pub(crate) fn describe_duckdb(path: &Path) -> Vec<(String, Vec<Column>, i64)> {
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    let conn = duckdb::Connection::open_with_flags(path, config).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1",
        )
        .unwrap();
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let (schema, table) = t.split_once('.').unwrap();
            let mut stmt = conn
                .prepare("SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position")
                .unwrap();
            let cols = stmt
                .query_map([schema, table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let rows: i64 = conn
                .query_row(&format!("SELECT count(*) FROM \"{schema}\".\"{table}\""), [], |r| r.get(0))
                .unwrap();
            (t, cols, rows)
        })
        .collect()
}

pub(crate) fn col(name: &str, ty: &str, nullable: bool) -> Column {
    (name.to_owned(), ty.to_owned(), nullable)
}

#[tokio::test]
async fn brief_package_then_publish_duckdb_in_both_shapes() {
    let (d, emulator) = setup().await;
    let server = Server::start(&d);
    let expected = vec![
        (
            "example_schema_name.address".to_owned(),
            vec![
                col("address_key", "BIGINT", false),
                col("address", "VARCHAR", true),
            ],
            300,
        ),
        (
            "example_schema_name.person".to_owned(),
            vec![
                col("person_key", "BIGINT", false),
                col("person_id", "VARCHAR", false),
                col("age", "INTEGER", true),
            ],
            200,
        ),
    ];
    let staged = d
        .mount("lsc")
        .join("staging/Pr004/20250205_010101/data/outputs/database.duckdb");
    let published = d
        .mount("lsc")
        .join("production/Pr004/20250205_010101/data/outputs/database.duckdb");
    let mut digests = Vec::new();
    for shape in ["a", "b"] {
        let (status, body) = post(
            &server.url,
            "/data-publish/package",
            Some(API_KEY),
            &package_body(shape, &emulator, "duckdb"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"status": "success", "payload": {"data_retrieved": [{"file_path": "data/outputs/database.duckdb"}]}})
        );
        assert_eq!(describe_duckdb(&staged), expected, "shape {shape}");

        let (status, body) = post(
            &server.url,
            "/data-publish/publish",
            Some(API_KEY),
            &fixture(&format!("publish-shape-{shape}.json")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let file = &body["payload"]["data_published"][0];
        assert_eq!(file["file_path"], json!("data/outputs/database.duckdb"));
        assert_eq!(file["hash_value"], json!(sha512sum(&published)));
        assert_eq!(
            file["total_bytes"],
            json!(std::fs::metadata(&published).unwrap().len())
        );
        assert_eq!(describe_duckdb(&published), expected);
        digests.push(file["hash_value"].clone());
    }
    let logs = server.stop();
    assert!(logs.contains("table copied"), "progress is logged: {logs}");
    assert!(
        !logs.contains(API_KEY) && !logs.contains("emulator-client-secret"),
        "secret in logs"
    );
    assert!(!logs.contains("/external/"), "an external link was logged");
    emulator.shutdown().await;
}

/// A table larger than one statement's result (the emulator's cap set to 64 KiB, Databricks'
/// is 100 GiB) is packaged completely: read in parts by data file over one Delta version, every
/// row in the staged database, the version in the package record.
#[tokio::test]
async fn a_table_over_the_result_cap_is_packaged_completely() {
    const ROWS: i64 = 40_000;
    let data = tempfile::tempdir().unwrap();
    let schema_dir = data.path().join("catalog_name/example_schema_name");
    std::fs::create_dir_all(&schema_dir).unwrap();
    for file in ["address.parquet", "address.json", "person.json"] {
        std::fs::copy(
            fixtures_dir()
                .join("catalog_name/example_schema_name")
                .join(file),
            schema_dir.join(file),
        )
        .unwrap();
    }
    // 40 000 people in row groups (the emulator's Delta data files) of 2 048 rows.
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "SET autoinstall_known_extensions=false; SET autoload_known_extensions=false;
         COPY (SELECT i::BIGINT AS person_key, 'p' || i AS person_id, (i % 90)::INTEGER AS age
               FROM range({ROWS}) t(i))
         TO '{}' (FORMAT parquet, ROW_GROUP_SIZE 2048);",
        schema_dir.join("person.parquet").display()
    ))
    .unwrap();
    let (d, emulator) = setup_configured(data.path().to_path_buf(), |c| {
        c.result_byte_limit = 64 << 10;
    })
    .await;
    let server = Server::start(&d);
    let (status, body) = post(
        &server.url,
        "/data-publish/package",
        Some(API_KEY),
        &package_body("a", &emulator, "duckdb"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let staged = d
        .mount("lsc")
        .join("staging/Pr004/20250205_010101/data/outputs");
    let db = duckdb::Connection::open_with_flags(
        staged.join("database.duckdb"),
        duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap(),
    )
    .unwrap();
    let (rows, distinct, sum): (i64, i64, i64) = db
        .query_row(
            "SELECT count(*), count(DISTINCT person_key), sum(person_key)::BIGINT \
             FROM example_schema_name.person",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (rows, distinct, sum),
        (ROWS, ROWS, ROWS * (ROWS - 1) / 2),
        "every row once"
    );
    let record: Value = serde_json::from_slice(
        &std::fs::read(
            d.mount("lsc")
                .join("staging/Pr004/20250205_010101/package-record.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let person = record["datasets"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "person")
        .cloned()
        .unwrap_or_else(|| panic!("no person in {record}"));
    assert_eq!(person["snapshot"], json!("delta version 0"), "{person}");
    assert_eq!(person["rows"], json!(ROWS), "{person}");
    let parts = emulator
        .submitted_statements()
        .iter()
        .filter(|s| {
            s["statement"]
                .as_str()
                .is_some_and(|t| t.contains("WHERE _metadata.file_path IN"))
        })
        .count();
    assert!(parts >= 2, "read in {parts} parts");
    let logs = server.stop();
    assert!(logs.contains("reading it in parts"), "{logs}");
    assert!(!logs.contains("abfss://"), "a data file path was logged");
    emulator.shutdown().await;
}

#[tokio::test]
async fn csv_and_parquet_packages() {
    let (d, emulator) = setup().await;
    let server = Server::start(&d);
    for format in ["csv", "parquet"] {
        let (status, body) = post(
            &server.url,
            "/data-publish/package",
            Some(API_KEY),
            &package_body("b", &emulator, format),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["payload"]["data_retrieved"],
            json!([
                {"file_path": format!("data/outputs/example_schema_name/address.{format}")},
                {"file_path": format!("data/outputs/example_schema_name/person.{format}")},
            ])
        );
        let dir = d
            .mount("lsc")
            .join("staging/Pr004/20250205_010101/data/outputs/example_schema_name");
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "SET autoinstall_known_extensions=false; SET autoload_known_extensions=false;",
        )
        .unwrap();
        let reader = if format == "csv" {
            "read_csv"
        } else {
            "read_parquet"
        };
        for (table, rows, cols) in [("person", 200, 3), ("address", 300, 2)] {
            let path = dir.join(format!("{table}.{format}"));
            let sql = format!(
                "SELECT count(*), (SELECT count(*) FROM (DESCRIBE SELECT * FROM {reader}('{}'))) FROM {reader}('{}')",
                path.display(),
                path.display()
            );
            let (n, c): (i64, i64) = conn
                .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            assert_eq!((n, c), (rows, cols), "{format} {table}");
        }
    }
    server.stop();
    emulator.shutdown().await;
}

#[tokio::test]
async fn unknown_table_or_column_is_404_and_keeps_the_previous_staging_result() {
    let (d, emulator) = setup().await;
    let server = Server::start(&d);
    let (status, _) = post(
        &server.url,
        "/data-publish/package",
        Some(API_KEY),
        &package_body("a", &emulator, "duckdb"),
    )
    .await;
    assert_eq!(status, 200);
    let before = d.snapshot();
    let staged = d
        .mount("lsc")
        .join("staging/Pr004/20250205_010101/data/outputs/database.duckdb");
    let digest = sha512sum(&staged);

    let mut body = package_body("a", &emulator, "duckdb");
    body["metadata"]["tables"][0]["columns"][2]["name"] = json!("agee");
    let (status, json) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 404, "{json}");
    let detail = json["payload"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("agee") && detail.contains("person"),
        "{detail}"
    );

    let mut body = package_body("b", &emulator, "duckdb");
    body["dataset"]["tables"][1]["name"] = json!("addresses");
    let (status, json) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 404, "{json}");
    assert!(
        json["payload"]["detail"]
            .as_str()
            .unwrap()
            .contains("addresses"),
        "{json}"
    );

    // Hostile identifiers are quoted, reach Unity Catalog, and are simply not found.
    let mut body = package_body("b", &emulator, "duckdb");
    body["dataset"]["tables"][0]["columns"][0]["name"] = json!("x` FROM t; DROP TABLE y; --\"'");
    let (status, json) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 404, "{json}");

    assert_eq!(d.snapshot(), before, "staging changed");
    assert_eq!(sha512sum(&staged), digest);
    server.stop();
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_failing_statement_is_502_and_staging_is_untouched() {
    let (d, emulator) = setup().await;
    let server = Server::start(&d);
    let before = d.snapshot();
    emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::FailStatement {
            error_code: "INTERNAL_ERROR".into(),
            message: "[INTERNAL_ERROR] warehouse exploded SQLSTATE: XX000".into(),
        },
    );
    let (status, json) = post(
        &server.url,
        "/data-publish/package",
        Some(API_KEY),
        &package_body("a", &emulator, "duckdb"),
    )
    .await;
    assert_eq!(status, 502, "{json}");
    assert!(
        json["payload"]["detail"]
            .as_str()
            .unwrap()
            .contains("INTERNAL_ERROR"),
        "{json}"
    );
    assert_eq!(d.snapshot(), before);
    server.stop();
    emulator.shutdown().await;
}

#[tokio::test]
async fn second_package_of_the_same_project_while_one_runs_is_409() {
    let (d, emulator) = setup().await;
    let server = Server::start(&d);
    emulator.faults().push(
        Operation::Download,
        Fault::Slow {
            delay: Duration::from_secs(3),
        },
    );
    let body = package_body("a", &emulator, "duckdb");
    let url = server.url.clone();
    let first = tokio::spawn({
        let body = body.clone();
        async move { post(&url, "/data-publish/package", Some(API_KEY), &body).await }
    });
    // Wait until the first one has started its statement (it holds the lock by then); its
    // first download then takes 3 s. The journal records a request when it is answered.
    for _ in 0..200 {
        if emulator
            .journal()
            .iter()
            .any(|e| e.operation == Some(Operation::ExecuteStatement))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, json) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 409, "{json}");
    let (status, json) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &fixture("publish-shape-a.json"),
    )
    .await;
    assert_eq!(status, 409, "{json}");
    let (status, json) = first.await.unwrap();
    assert_eq!(status, 200, "{json}");
    server.stop();
    emulator.shutdown().await;
}

#[tokio::test]
async fn validate_checks_credentials_and_containers() {
    let (d, emulator) = setup().await;
    let server = Server::start(&d);
    let mut body = fixture("validate-shape-b.json");
    body["source"]["host_url"] = json!(emulator.url());
    let (status, json) = post(&server.url, "/data-publish/validate", Some(API_KEY), &body).await;
    assert_eq!(
        (status.as_u16(), json),
        (
            200,
            json!({"status": "success", "payload": {"validation_status": "success"}})
        )
    );

    std::fs::write(d.path().join("secrets/databricksspnsecret"), "wrong-secret").unwrap();
    let (status, json) = post(&server.url, "/data-publish/validate", Some(API_KEY), &body).await;
    assert_eq!(status, 502, "{json}");
    let detail = json["payload"]["detail"].as_str().unwrap();
    assert!(!detail.contains("wrong-secret"), "{detail}");
    server.stop();
    emulator.shutdown().await;
}
