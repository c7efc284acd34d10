//! CR8TOR's PostgreSQL body (`package-postgresql-source.json`) pointed at a real PostgreSQL
//! server (the SQL rig): every table packaged with exact types, every value as the server
//! holds it, every table from one snapshot while another connection keeps writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use publish_sql::test_rig::SqlRig;
use serde_json::{Value, json};

use crate::package::{col, describe_duckdb};
use crate::support::{API_KEY, Deployment, Server};

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// CR8TOR's recorded body, byte for byte but for where the server is and which schema and
/// tables to read.
fn body(rig: &SqlRig, schema: &str, tables: &[&str]) -> Value {
    let path = format!(
        "{}/../../fixtures/requests/cr8tor/package-postgresql-source.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    body["source"]["host_url"] = json!(rig.var("PG_HOST"));
    body["source"]["port"] = json!(rig.var("PG_PORT").parse::<u16>().unwrap());
    body["source"]["database"] = json!(rig.var("PG_DATABASE"));
    body["dataset"]["schema_name"] = json!(schema);
    body["dataset"]["tables"] = tables
        .iter()
        .map(|t| json!({"name": t, "columns": null, "description": null}))
        .collect();
    body
}

fn deployment(rig: &SqlRig) -> Deployment {
    let mut d = Deployment::new();
    std::fs::write(d.path().join("secrets/pgusername"), rig.var("PG_USER")).unwrap();
    std::fs::write(d.path().join("secrets/pgpassword"), rig.var("PG_PASSWORD")).unwrap();
    d.extra_env.push((
        "PUBLISH_ALLOWED_SOURCE_HOSTS".into(),
        format!("postgresql://{}:*", rig.var("PG_HOST")),
    ));
    d.extra_env.push((
        "PUBLISH_SQL_CA_FILE".into(),
        rig.ca_file().to_string_lossy().into_owned(),
    ));
    d.extra_env
        .push(("PUBLISH_SQL_BATCH_ROWS".into(), "5000".into()));
    d
}

async fn package(server: &Server, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/data-publish/package", server.url))
        .header("x-api-key", API_KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// `pg_expr` of every row of `table` in PostgreSQL, and `duck_expr` in DuckDB, in key order.
async fn both<T>(
    client: &tokio_postgres::Client,
    duck: &duckdb::Connection,
    table: &str,
    pg_expr: &str,
    duck_expr: &str,
) -> (Vec<Option<T>>, Vec<Option<T>>)
where
    T: for<'a> tokio_postgres::types::FromSql<'a> + duckdb::types::FromSql,
{
    // Qualified: both would order by an output column named `id` (a cast) first.
    let pg = client
        .query(
            &format!("SELECT {pg_expr} FROM {table} ORDER BY person.id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut stmt = duck
        .prepare(&format!(
            "SELECT {duck_expr} FROM {table} ORDER BY person.id"
        ))
        .unwrap();
    let got = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (pg, got)
}

/// `(PostgreSQL expression, DuckDB expression)` giving the same text for the same value.
const VALUES: &[(&str, &str)] = &[
    ("id::text", "id::VARCHAR"),
    ("b::text", "b::VARCHAR"),
    ("i2::text", "i2::VARCHAR"),
    ("i4::text", "i4::VARCHAR"),
    ("i8::text", "i8::VARCHAR"),
    ("n::text", "n::VARCHAR"),
    ("big::text", "big::VARCHAR"),
    ("free::text", "free"),
    ("t", "t"),
    ("v::text", "v"),
    // char(n) as PostgreSQL outputs it, padded (its cast to text trims).
    ("c", "c"),
    // `by` is a keyword to DuckDB (not to PostgreSQL): the writer quotes every name.
    ("encode(\"by\", 'hex')", "lower(hex(\"by\"))"),
    ("d::text", "d::VARCHAR"),
    (
        "to_char(ts, 'YYYY-MM-DD HH24:MI:SS.US')",
        "strftime(ts, '%Y-%m-%d %H:%M:%S.%f')",
    ),
    (
        "to_char(tz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
        "strftime(tz::TIMESTAMP, '%Y-%m-%d %H:%M:%S.%f')",
    ),
    ("u::text", "u"),
    ("jb::text", "jb"),
    ("iv::text", "iv"),
    (
        "array_to_string(ai, ',', 'null')",
        "array_to_string(list_transform(ai, lambda x: coalesce(x::VARCHAR, 'null')), ',')",
    ),
    (
        "array_to_string(\"at\", '|', 'null')",
        "array_to_string(list_transform(\"at\", lambda x: coalesce(x, 'null')), '|')",
    ),
];

/// The recorded body, pointed at the rig: every table, exact DuckDB types, every value as
/// PostgreSQL holds it; a table of many batches whole; the same snapshot recorded for every
/// table.
#[tokio::test]
async fn cr8tor_postgresql_body_packages_every_table_with_exact_types() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("server").await;
    let s = quote(schema.name());
    let client = rig.pg_client().await;
    client
        .batch_execute(&format!(
            // The service spells intervals in ISO 8601 (the crate's type table).
            "SET IntervalStyle = iso_8601;
             CREATE TABLE {s}.person (
               id int8 PRIMARY KEY, b bool, i2 int2, i4 int4 NOT NULL, i8 int8, f4 real,
               f8 float8, n numeric(6,2), big numeric(38,10), free numeric, t text,
               v varchar(10), c char(3), by bytea, d date, ts timestamp, tz timestamptz,
               u uuid, jb jsonb, iv interval, ai int4[], at text[]);
             COMMENT ON TABLE {s}.person IS 'one row per person';
             INSERT INTO {s}.person
             SELECT g, g % 2 = 0, (g % 30000)::int2, g, g * 1000003, g / 7.0, g / 3.0,
                    (g % 9999) / 100.0, g * 1234567.0123456789, g / 9.0,
                    'name ' || g || ' ünï \"q\" `b`', left('v' || g, 10), 'c' || (g % 10),
                    decode(md5(g::text), 'hex'), date '1969-07-20' + g,
                    timestamp '1999-12-31 23:59:59.999999' + g * interval '1 hour 1 second',
                    timestamptz '2024-03-10 02:30:00-08' + g * interval '1 minute',
                    md5(g::text)::uuid, jsonb_build_object('k', g, 'l', jsonb_build_array(g, null)),
                    g * interval '1 day 1 second', ARRAY[g, NULL, -g], ARRAY['x,' || g, NULL]
             FROM generate_series(1, 300) g;
             INSERT INTO {s}.person (id, i4) VALUES (0, 0);
             CREATE TABLE {s}.visit AS SELECT g::int8 AS id, md5(g::text) AS h
               FROM generate_series(1, 40000) g;"
        ))
        .await
        .unwrap();
    let d = deployment(&rig);
    let server = Server::start(&d);
    let (status, answer) = package(&server, &body(&rig, schema.name(), &["person", "visit"])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["payload"]["data_retrieved"],
        json!([{"file_path": "data/outputs/database.duckdb"}])
    );
    let db = d
        .mount("lsc")
        .join("staging/Pr005/20261201_200849/data/outputs/database.duckdb");
    let tables = describe_duckdb(&db);
    let person = format!("{}.person", schema.name());
    let (_, columns, rows) = tables.iter().find(|(t, ..)| *t == person).unwrap();
    assert_eq!(*rows, 301);
    assert_eq!(
        columns,
        &vec![
            col("id", "BIGINT", false),
            col("b", "BOOLEAN", true),
            col("i2", "SMALLINT", true),
            col("i4", "INTEGER", false),
            col("i8", "BIGINT", true),
            col("f4", "FLOAT", true),
            col("f8", "DOUBLE", true),
            col("n", "DECIMAL(6,2)", true),
            col("big", "DECIMAL(38,10)", true),
            col("free", "VARCHAR", true),
            col("t", "VARCHAR", true),
            col("v", "VARCHAR", true),
            col("c", "VARCHAR", true),
            col("by", "BLOB", true),
            col("d", "DATE", true),
            col("ts", "TIMESTAMP", true),
            col("tz", "TIMESTAMP WITH TIME ZONE", true),
            col("u", "VARCHAR", true),
            col("jb", "VARCHAR", true),
            col("iv", "VARCHAR", true),
            col("ai", "INTEGER[]", true),
            col("at", "VARCHAR[]", true),
        ]
    );

    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    let duck = duckdb::Connection::open_with_flags(&db, config).unwrap();
    let table = format!("{}.person", quote(schema.name()));
    for (pg_expr, duck_expr) in VALUES {
        let (pg, got) = both::<String>(&client, &duck, &table, pg_expr, duck_expr).await;
        assert_eq!(got.len(), 301);
        assert_eq!(got, pg, "{pg_expr}");
    }
    // Floats as numbers (the two spell 1 as `1` and `1.0`), exactly.
    for column in ["f4", "f8"] {
        let (pg, got) = both::<f64>(
            &client,
            &duck,
            &table,
            &format!("{column}::float8"),
            &format!("{column}::DOUBLE"),
        )
        .await;
        assert_eq!(got, pg, "{column}");
    }
    let pg_digest: String = client
        .query_one(
            &format!(
                "SELECT count(*) || ':' || md5(string_agg(h, ',' ORDER BY id)) FROM {s}.visit"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let duck_digest: String = duck
        .query_row(
            &format!(
                "SELECT count(*) || ':' || md5(string_agg(h, ',' ORDER BY id)) FROM {}.visit",
                quote(schema.name())
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(duck_digest, pg_digest);

    let record: Value = serde_json::from_slice(
        &std::fs::read(
            d.mount("lsc")
                .join("staging/Pr005/20261201_200849/package-record.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let tables = record["datasets"][0]["tables"].as_array().unwrap();
    let snapshots: Vec<&str> = tables
        .iter()
        .map(|t| t["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(snapshots.len(), 2);
    assert!(snapshots[0].starts_with("postgresql snapshot "), "{record}");
    assert_eq!(snapshots[0], snapshots[1], "one snapshot for the package");
    let logs = server.stop();
    assert!(
        !logs.contains(rig.var("PG_PASSWORD")),
        "no password in the logs"
    );
    drop(duck);
    schema.remove().await;
}

/// Another connection keeps moving two tables on together (each transaction updates every
/// row of both) while a package reads them: the package's tables are mutually consistent —
/// every row of both carries the same counter.
#[tokio::test]
async fn a_package_is_one_snapshot_while_another_connection_writes() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("consistent").await;
    let s = quote(schema.name());
    let client = rig.pg_client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {s}.ledger_a AS SELECT g AS k, 0 AS v, md5(g::text) AS pad FROM generate_series(1, 60000) g;
             CREATE TABLE {s}.ledger_b AS SELECT g AS k, 0 AS v, md5(g::text) AS pad FROM generate_series(1, 60000) g;"
        ))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let writer = rig.pg_client().await;
        let sql = format!(
            "BEGIN; UPDATE {s}.ledger_a SET v = v + 1; UPDATE {s}.ledger_b SET v = v + 1; COMMIT;"
        );
        tokio::spawn(async move {
            let mut commits = 0u64;
            while !stop.load(Ordering::Relaxed) {
                writer.batch_execute(&sql).await.unwrap();
                commits += 1;
            }
            commits
        })
    };
    let d = deployment(&rig);
    let server = Server::start(&d);
    let (status, answer) = package(
        &server,
        &body(&rig, schema.name(), &["ledger_a", "ledger_b"]),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let commits = writer.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let db = d
        .mount("lsc")
        .join("staging/Pr005/20261201_200849/data/outputs/database.duckdb");
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    let duck = duckdb::Connection::open_with_flags(&db, config).unwrap();
    let (rows, counters): (i64, i64) = duck
        .query_row(
            &format!(
                "SELECT count(*), count(DISTINCT v) FROM (SELECT v FROM {0}.ledger_a \
                 UNION ALL SELECT v FROM {0}.ledger_b)",
                quote(schema.name())
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(rows, 120_000);
    assert_eq!(
        counters, 1,
        "both tables from one moment ({commits} commits ran meanwhile)"
    );
    assert!(commits > 0, "the writer ran");
    server.stop();
    drop(duck);
    schema.remove().await;
}
