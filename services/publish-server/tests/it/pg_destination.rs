//! Issue 22 end to end: the real server with the PostgreSQL destination switched on, configured
//! by the reference service's variables, loading into a real PostgreSQL (the SQL rig, separate
//! writer and read-only roles) and publishing to the Opal emulator — CR8TOR's own two bodies,
//! every value and type against the same tables packaged into DuckDB, a load PostgreSQL refuses
//! half-way, and the published tables read as the read-only role with exactly the credentials
//! stored in Opal.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use databricks_emulator::Emulator;
use databricks_emulator::fixtures::{Sidecar, write_table};
use opal_emulator::{OpalEmulator, OpalEmulatorConfig};
use publish_sql::test_rig::{PgDestinationRig, SqlRig};
use serde_json::{Value, json};

use crate::package::{fixtures_dir, setup_with};
use crate::support::{API_KEY, Deployment, Server, post, post_ok};

const OPAL_PASSWORD: &str = "Opal-admin-pw1!";

/// A deployment with the destination configured as K8TRE configures it (plus TLS verified
/// against the rig's CA), an emulator serving `data`, and the Opal emulator.
struct Rigged {
    d: Deployment,
    emulator: Emulator,
    opal: OpalEmulator,
    pg: PgDestinationRig,
}

async fn rigged(data: std::path::PathBuf, prefix: &str) -> Option<Rigged> {
    let rig = SqlRig::get()?;
    let pg = rig.pg_destination(prefix).await;
    let opal = OpalEmulator::start(OpalEmulatorConfig::new(OPAL_PASSWORD))
        .await
        .unwrap();
    let (mut d, emulator) = setup_with(data).await;
    let secrets = d.path().join("secrets");
    std::fs::write(secrets.join("pgwriterpassword"), &pg.writer_password).unwrap();
    std::fs::write(secrets.join("pgreaderpassword"), &pg.reader_password).unwrap();
    std::fs::write(secrets.join("opaladminpassword"), OPAL_PASSWORD).unwrap();
    for (k, v) in [
        ("DESTINATION_POSTGRESQL_HOST", rig.var("PG_HOST").to_owned()),
        ("DESTINATION_POSTGRESQL_PORT", rig.var("PG_PORT").to_owned()),
        ("DESTINATION_POSTGRESQL_DATABASE", pg.database.clone()),
        ("DESTINATION_POSTGRESQL_USERNAME", pg.writer.clone()),
        (
            "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME",
            "pgwriterpassword".into(),
        ),
        (
            "DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME",
            pg.reader.clone(),
        ),
        (
            "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME",
            "pgreaderpassword".into(),
        ),
        ("DESTINATION_POSTGRESQL_TLS", "verify-full".into()),
        (
            "DESTINATION_POSTGRESQL_CA_FILE",
            rig.ca_file().to_string_lossy().into_owned(),
        ),
        ("DESTINATION_OPAL_HOST", opal.url()),
        ("DESTINATION_OPAL_USERNAME", "administrator".into()),
        (
            "DESTINATION_OPAL_PASSWORD_SECRET_NAME",
            "opaladminpassword".into(),
        ),
        ("DESTINATION_OPAL_NO_SSL_VERIFY", "false".into()),
    ] {
        d.extra_env.push((k.into(), v));
    }
    Some(Rigged {
        d,
        emulator,
        opal,
        pg,
    })
}

fn cr8tor(name: &str) -> Value {
    crate::support::fixture(&format!("cr8tor/{name}"))
}

/// CR8TOR's own bodies: package answers one `table_name` per table, publish the four strings
/// per table; a retried publish answers the same and creates nothing twice; the read-only role
/// reads every published table with exactly the credentials Opal stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cr8tors_bodies_package_into_postgresql_and_publish_to_opal() {
    let Some(r) = rigged(fixtures_dir(), "srvbodies").await else {
        return;
    };
    let server = Server::start(&r.d);
    let mut package = cr8tor("package-postgresql-destination.json");
    package["source"]["host_url"] = json!(r.emulator.url());
    // Validate checks the writer, the read-only role and Opal's credentials.
    post_ok(&server.url, "/data-publish/validate", &package).await;
    assert!(
        r.opal
            .journal()
            .iter()
            .any(|e| e.path.ends_with("/subject-profile/_current") && e.status == 200),
        "validate signed in to Opal"
    );
    let answer = post_ok(&server.url, "/data-publish/package", &package).await;
    let schema = "pr004_20261201_200849_example_schema_name";
    assert_eq!(
        answer["payload"]["data_retrieved"],
        json!([{"table_name": format!("{schema}.person")}, {"table_name": format!("{schema}.address")}])
    );

    let publish = cr8tor("publish-postgresql-destination.json");
    let first = post_ok(&server.url, "/data-publish/publish", &publish).await;
    let published = first["payload"]["data_published"].as_array().unwrap();
    assert_eq!(published.len(), 2, "{first}");
    for entry in published {
        let table = entry["postgresql_table_name"].as_str().unwrap();
        let (_, name) = table.split_once('.').unwrap();
        assert_eq!(
            entry,
            &json!({
                "postgresql_table_name": table,
                "opal_resource_name": format!("tre_postgresql_{schema}_{name}"),
                "opal_project_name": "Pr004",
                "opal_group_name": "Pr004_group",
            })
        );
    }
    let writes = |opal: &OpalEmulator| opal.journal().iter().filter(|e| e.method != "GET").count();
    let before = writes(&r.opal);
    let again = post_ok(&server.url, "/data-publish/publish", &publish).await;
    assert_eq!(again, first, "a retried publish answers the same");
    assert_eq!(writes(&r.opal), before, "and creates nothing twice");

    // The credentials Opal stores read every table, and nothing else is needed.
    let state = r.opal.state();
    for entry in published {
        let resource = state
            .resource("Pr004", entry["opal_resource_name"].as_str().unwrap())
            .unwrap();
        let credentials = resource.credentials_json().unwrap();
        let parameters = resource.parameters_json().unwrap();
        assert!(parameters["port"].is_number(), "{parameters}");
        assert_eq!(parameters["db"], json!(r.pg.database));
        let reader =
            r.pg.connect_as(
                credentials["username"].as_str().unwrap(),
                credentials["password"].as_str().unwrap(),
            )
            .await;
        let table = entry["postgresql_table_name"].as_str().unwrap();
        let (schema, name) = table.split_once('.').unwrap();
        let rows: i64 = reader
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".\"{name}\""),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("the read-only role reads {table}: {e}"))
            .get(0);
        assert!(rows > 0, "{table}");
        let denied = reader
            .batch_execute(&format!("CREATE TABLE \"{schema}\".x (a int)"))
            .await;
        assert!(denied.is_err(), "the read-only role cannot write");
    }
    server.stop();
    r.pg.remove().await;
}

/// `(column, DuckDB type)` of every column of a packaged DuckDB table, in order.
fn duckdb_columns(
    conn: &duckdb::Connection,
    schema: &str,
    table: &str,
) -> Vec<(String, String, bool)> {
    let mut stmt = conn
        .prepare(
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns \
             WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        )
        .unwrap();
    stmt.query_map([schema, table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The PostgreSQL type each DuckDB type of the fixtures must become: written out here, apart
/// from the code under test.
fn postgres_type_of(duckdb: &str) -> &'static str {
    match duckdb {
        "BIGINT" => "bigint",
        "INTEGER" => "integer",
        "VARCHAR" => "text",
        "DATE" => "date",
        "DOUBLE" => "double precision",
        "DECIMAL(6,2)" => "numeric(6,2)",
        "DECIMAL(9,6)" => "numeric(9,6)",
        "TIMESTAMP WITH TIME ZONE" => "timestamp with time zone",
        "TIMESTAMP" => "timestamp without time zone",
        "BOOLEAN" => "boolean",
        "VARCHAR[]" => "jsonb",
        other => panic!("the fixtures hold no {other} column"),
    }
}

/// A column's values as comparable text in each system: `(DuckDB expression, PostgreSQL
/// expression)`.
fn as_text(column: &str, duckdb_type: &str) -> (String, String) {
    let c = format!("\"{column}\"");
    match duckdb_type {
        "BOOLEAN" => (
            format!("CAST({c} AS VARCHAR)"),
            format!("CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"),
        ),
        "DATE" => (
            format!("CAST({c} - DATE '1970-01-01' AS VARCHAR)"),
            format!("({c} - DATE '1970-01-01')::text"),
        ),
        "TIMESTAMP WITH TIME ZONE" | "TIMESTAMP" => (
            format!("CAST(epoch_us({c}) AS VARCHAR)"),
            format!("(extract(epoch FROM {c}) * 1000000)::bigint::text"),
        ),
        // A list arrives whole (as DuckDB's value) and is compared as JSON.
        "VARCHAR[]" => (c.clone(), format!("{c}::text")),
        _ => (format!("CAST({c} AS VARCHAR)"), format!("{c}::text")),
    }
}

/// A DuckDB value of the fixtures as comparable text: lists as a JSON array of strings.
fn duck_text(value: duckdb::types::Value) -> Option<String> {
    use duckdb::types::Value as V;
    match value {
        V::Null => None,
        V::Text(text) => Some(text),
        V::List(items) => Some(
            serde_json::to_string(
                &items
                    .into_iter()
                    .map(duck_text)
                    .collect::<Vec<Option<String>>>(),
            )
            .unwrap(),
        ),
        other => panic!("unexpected DuckDB value {other:?}"),
    }
}

/// Every value and column type in PostgreSQL equals the same tables packaged into DuckDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_and_type_in_postgresql_equals_duckdb() {
    let Some(r) = rigged(fixtures_dir(), "srvvalues").await else {
        return;
    };
    let server = Server::start(&r.d);
    let mut files = crate::support::fixture("package-shape-b.json");
    files["source"]["host_url"] = json!(r.emulator.url());
    files["dataset"]["tables"] = json!([{"name": "person"}, {"name": "address"}]);
    let mut tables = files.clone();
    tables["destination"] = json!({"name": "", "type": "postgresql", "format": "sql"});
    for body in [&files, &tables] {
        post_ok(&server.url, "/data-publish/package", body).await;
    }
    let db =
        r.d.mount("lsc")
            .join("staging/Pr004/20250205_010101/data/outputs/database.duckdb");
    let duck = duckdb::Connection::open_with_flags(
        &db,
        duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap(),
    )
    .unwrap();
    let pg = r.pg.admin().await;
    let schema = "pr004_20250205_010101_example_schema_name";
    for table in ["person", "address"] {
        let columns = duckdb_columns(&duck, "example_schema_name", table);
        let pg_columns: Vec<(String, String, bool)> = pg
            .query(
                "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&schema, &table],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        let expected: Vec<(String, String, bool)> = columns
            .iter()
            .map(|(name, ty, nullable)| (name.clone(), postgres_type_of(ty).to_owned(), *nullable))
            .collect();
        assert_eq!(pg_columns, expected, "{table}: columns, types and NOT NULL");

        let order = &columns[0].0;
        let (duck_exprs, pg_exprs): (Vec<String>, Vec<String>) = columns
            .iter()
            .map(|(name, ty, _)| as_text(name, ty))
            .unzip();
        let mut stmt = duck
            .prepare(&format!(
                "SELECT {} FROM \"example_schema_name\".\"{table}\" ORDER BY \"{order}\"",
                duck_exprs.join(", ")
            ))
            .unwrap();
        let n = columns.len();
        let duck_rows: Vec<Vec<Option<String>>> = stmt
            .query_map([], |row| {
                (0..n)
                    .map(|i| row.get::<_, duckdb::types::Value>(i).map(duck_text))
                    .collect()
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let pg_rows: Vec<Vec<Option<String>>> = pg
            .query(
                &format!(
                    "SELECT {} FROM \"{schema}\".\"{table}\" ORDER BY \"{order}\"",
                    pg_exprs.join(", ")
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (0..n).map(|i| row.get(i)).collect())
            .collect();
        assert_eq!(duck_rows.len(), pg_rows.len(), "{table}: rows");
        assert!(!duck_rows.is_empty());
        for (d_row, p_row) in duck_rows.iter().zip(&pg_rows) {
            for ((d, p), (name, ty, _)) in d_row.iter().zip(p_row).zip(&columns) {
                let same = match (ty.as_str(), d, p) {
                    ("DOUBLE", Some(d), Some(p)) => {
                        d.parse::<f64>().unwrap().to_bits() == p.parse::<f64>().unwrap().to_bits()
                    }
                    ("VARCHAR[]", Some(d), Some(p)) => {
                        serde_json::from_str::<Value>(d).unwrap()
                            == serde_json::from_str::<Value>(p).unwrap()
                    }
                    _ => d == p,
                };
                assert!(same, "{table}.{name}: DuckDB {d:?}, PostgreSQL {p:?}");
            }
        }
    }
    drop(duck);
    server.stop();
    r.pg.remove().await;
}

fn visits(rows: i64, duplicate_key: bool) -> RecordBatch {
    let ids: Vec<i64> = (0..rows)
        .map(|i| if duplicate_key && i == rows - 1 { 0 } else { i })
        .collect();
    let notes: Vec<String> = ids.iter().map(|i| format!("visit {i}")).collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("visit_id", DataType::Int64, false),
            Field::new("note", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(notes)),
        ],
    )
    .unwrap()
}

/// Every row of the two visit tables, as the researchers' schema holds them.
async fn visit_rows(
    pg: &tokio_postgres::Client,
) -> BTreeMap<&'static str, Vec<(i64, Option<String>)>> {
    let mut out = BTreeMap::new();
    for table in ["visits", "visits_b"] {
        let rows = pg
            .query(
                &format!(
                    "SELECT visit_id, note FROM pr004_20250205_010101_cohort.{table} ORDER BY 1"
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        out.insert(table, rows);
    }
    out
}

/// A load that PostgreSQL refuses half-way (the second table's declared primary key holds a
/// duplicate) fails the package and leaves the previous tables exactly as they were; nothing
/// half-loaded is visible, and nothing of ours is in the researchers' schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_refused_half_way_leaves_the_previous_tables() {
    let data = tempfile::tempdir().unwrap();
    let keyed = Sidecar {
        primary_key: Some(vec!["visit_id".into()]),
        ..Sidecar::default()
    };
    for table in ["visits", "visits_b"] {
        write_table(
            data.path(),
            "tre",
            "cohort",
            table,
            &[visits(500, false)],
            Some(&keyed),
        )
        .unwrap();
    }
    let Some(r) = rigged(data.path().to_path_buf(), "srvrefused").await else {
        return;
    };
    let server = Server::start(&r.d);
    let mut body = crate::support::fixture("package-shape-b.json");
    body["source"]["host_url"] = json!(r.emulator.url());
    body["source"]["catalog"] = json!("tre");
    body["destination"] = json!({"name": "", "type": "postgresql", "format": "sql"});
    body["dataset"] = json!({"name": "visits", "schema_name": "cohort",
                             "tables": [{"name": "visits"}, {"name": "visits_b"}]});
    post_ok(&server.url, "/data-publish/package", &body).await;
    let pg = r.pg.admin().await;
    let before = visit_rows(&pg).await;

    // Version 2: the first table changes, the second now breaks its primary key.
    write_table(
        data.path(),
        "tre",
        "cohort",
        "visits",
        &[visits(700, false)],
        Some(&keyed),
    )
    .unwrap();
    write_table(
        data.path(),
        "tre",
        "cohort",
        "visits_b",
        &[visits(700, true)],
        Some(&keyed),
    )
    .unwrap();
    let (status, answer) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 502, "{answer}");
    let detail = answer["payload"]["detail"].as_str().unwrap();
    assert!(detail.contains("destination database"), "{detail}");
    assert!(
        !detail.contains(&r.pg.writer_password),
        "no password in {detail}"
    );
    assert_eq!(
        visit_rows(&pg).await,
        before,
        "the previous tables, row for row"
    );
    let schemas: Vec<String> = pg
        .query(
            "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname LIKE '\\_publish\\_load\\_%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(schemas, Vec::<String>::new(), "no private load schema left");
    let in_schema: Vec<String> = pg
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'pr004_20250205_010101_cohort' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        in_schema,
        ["visits", "visits_b"],
        "only the researchers' tables"
    );
    server.stop();
    r.pg.remove().await;
}

/// Without the configuration, a request for the destination is a 422 naming the variables; a
/// project name Opal would refuse is a 422 before any data moves; nothing packaged is a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_is_wrong() {
    let (d, emulator) = setup_with(fixtures_dir()).await;
    let server = Server::start(&d);
    let mut package = cr8tor("package-postgresql-destination.json");
    package["source"]["host_url"] = json!(emulator.url());
    let (status, answer) = post(
        &server.url,
        "/data-publish/package",
        Some(API_KEY),
        &package,
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["payload"]["detail"]
            .as_str()
            .unwrap()
            .contains("DESTINATION_POSTGRESQL_HOST"),
        "{answer}"
    );
    server.stop();

    let Some(r) = rigged(fixtures_dir(), "srvrefusals").await else {
        return;
    };
    let server = Server::start(&r.d);
    let mut package = cr8tor("package-postgresql-destination.json");
    package["source"]["host_url"] = json!(r.emulator.url());
    package["project_name"] = json!("Pr.004");
    let (status, answer) = post(
        &server.url,
        "/data-publish/package",
        Some(API_KEY),
        &package,
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["payload"]["detail"]
            .as_str()
            .unwrap()
            .contains("Opal"),
        "{answer}"
    );
    assert_eq!(
        r.emulator
            .journal()
            .iter()
            .filter(|e| e.path.contains("/statements"))
            .count(),
        0,
        "nothing was read"
    );
    let mut publish = cr8tor("publish-postgresql-destination.json");
    publish["project_start_time"] = json!("20990101_000000");
    let (status, answer) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &publish,
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    server.stop();
    r.pg.remove().await;
}
