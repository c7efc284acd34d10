//! CR8TOR's SQL-database body with `"type": "mysql"`, pointed at a real MariaDB server (the
//! SQL rig): every table packaged with exact DuckDB types and every value as the server holds
//! it, all tables from one snapshot.

use mysql_async::prelude::Queryable;
use publish_sql::test_rig::SqlRig;
use serde_json::{Value, json};

use crate::package::{col, describe_duckdb};
use crate::support::{API_KEY, Deployment, Server};

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `(MySQL expression, DuckDB expression)` giving the same text for the same value.
const VALUES: &[(&str, &str)] = &[
    ("CAST(id AS CHAR)", "id::VARCHAR"),
    ("CAST(ti AS CHAR)", "ti::VARCHAR"),
    ("CAST(iu AS CHAR)", "iu::VARCHAR"),
    ("CAST(bu AS CHAR)", "bu::VARCHAR"),
    ("CAST(n AS CHAR)", "n::VARCHAR"),
    ("v", "v"),
    ("t", "t"),
    ("LOWER(HEX(bl))", "lower(hex(bl))"),
    ("CAST(dt AS CHAR)", "dt::VARCHAR"),
    (
        "DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')",
        "strftime(ts, '%Y-%m-%d %H:%M:%S.%f')",
    ),
    (
        "DATE_FORMAT(tz, '%Y-%m-%d %H:%i:%s.%f')",
        "strftime(tz::TIMESTAMP, '%Y-%m-%d %H:%M:%S.%f')",
    ),
    ("e", "e"),
];

#[tokio::test]
async fn cr8tor_mysql_body_packages_every_table_with_exact_types() {
    let Some(rig) = SqlRig::get() else { return };
    let database = rig.my_schema("server").await;
    let d = quote(database.name());
    let mut admin = rig.my_admin().await;
    admin
        .query_drop(format!(
            "SET time_zone = '+00:00';
             CREATE TABLE {d}.person (id BIGINT PRIMARY KEY, ti TINYINT, iu INT UNSIGNED,
               bu BIGINT UNSIGNED, n DECIMAL(6,2), v VARCHAR(20), t TEXT, bl BLOB, dt DATE,
               ts DATETIME(6), tz TIMESTAMP(6) NULL, e ENUM('sad', 'ok'), f DOUBLE NOT NULL);
             INSERT INTO {d}.person
               SELECT seq, CAST(seq % 100 AS SIGNED) - 50, seq * 1000, seq * 100000000000, (seq % 9999) / 100,
                 CONCAT('v', seq), CONCAT('name ', seq, ' ünï `b`'), UNHEX(MD5(seq)),
                 DATE '1969-07-20' + INTERVAL seq DAY,
                 TIMESTAMP '1999-12-31 23:59:59.999999' + INTERVAL seq SECOND,
                 TIMESTAMP '2024-03-10 10:30:00' + INTERVAL seq MINUTE,
                 IF(seq % 2 = 0, 'ok', 'sad'), seq / 7
               FROM {d}.seq_1_to_300;
             INSERT INTO {d}.person (id, f) VALUES (0, 0);
             CREATE TABLE {d}.visit AS SELECT seq AS id, MD5(seq) AS h FROM {d}.seq_1_to_30000;"
        ))
        .await
        .unwrap();
    let mut deployment = Deployment::new();
    let secrets = deployment.path().join("secrets");
    std::fs::write(secrets.join("myusername"), rig.var("MYSQL_USER")).unwrap();
    std::fs::write(secrets.join("mypassword"), rig.var("MYSQL_PASSWORD")).unwrap();
    deployment.extra_env.push((
        "PUBLISH_ALLOWED_SOURCE_HOSTS".into(),
        format!("mysql://{}:*", rig.var("MYSQL_HOST")),
    ));
    deployment.extra_env.push((
        "PUBLISH_SQL_CA_FILE".into(),
        rig.ca_file().to_string_lossy().into_owned(),
    ));
    let server = Server::start(&deployment);
    let path = format!(
        "{}/../../fixtures/requests/cr8tor/package-postgresql-source.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    body["source"]["type"] = json!("mysql");
    body["source"]["host_url"] = json!(rig.var("MYSQL_HOST"));
    body["source"]["port"] = json!(rig.var("MYSQL_PORT").parse::<u16>().unwrap());
    body["source"]["database"] = json!(rig.var("MYSQL_DATABASE"));
    body["source"]["credentials"] = json!({"provider": "AzureKeyVault", "username_key": "myusername", "password_key": "mypassword"});
    body["dataset"]["schema_name"] = json!(database.name());
    body["dataset"]["tables"] = json!([{"name": "person"}, {"name": "visit"}]);
    let response = reqwest::Client::new()
        .post(format!("{}/data-publish/package", server.url))
        .header("x-api-key", API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");

    let staged = deployment
        .mount("lsc")
        .join("staging/Pr005/20261201_200849");
    let db = staged.join("data/outputs/database.duckdb");
    let tables = describe_duckdb(&db);
    let person = format!("{}.person", database.name());
    let (_, columns, rows) = tables.iter().find(|(t, ..)| *t == person).unwrap();
    assert_eq!(*rows, 301);
    assert_eq!(
        columns,
        &vec![
            col("id", "BIGINT", false),
            col("ti", "TINYINT", true),
            col("iu", "BIGINT", true),
            col("bu", "DECIMAL(20,0)", true),
            col("n", "DECIMAL(6,2)", true),
            col("v", "VARCHAR", true),
            col("t", "VARCHAR", true),
            col("bl", "BLOB", true),
            col("dt", "DATE", true),
            col("ts", "TIMESTAMP", true),
            col("tz", "TIMESTAMP WITH TIME ZONE", true),
            col("e", "VARCHAR", true),
            col("f", "DOUBLE", false),
        ]
    );
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    let duck = duckdb::Connection::open_with_flags(&db, config).unwrap();
    let duck_table = format!("\"{}\".person", database.name());
    for (my_expr, duck_expr) in VALUES {
        let mine: Vec<Option<String>> = admin
            .query(format!(
                "SELECT {my_expr} FROM {d}.person ORDER BY person.id"
            ))
            .await
            .unwrap();
        let mut stmt = duck
            .prepare(&format!(
                "SELECT {duck_expr} FROM {duck_table} ORDER BY person.id"
            ))
            .unwrap();
        let got: Vec<Option<String>> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, mine, "{my_expr}");
    }
    let mine: Vec<f64> = admin
        .query(format!("SELECT f FROM {d}.person ORDER BY id"))
        .await
        .unwrap();
    let mut stmt = duck
        .prepare(&format!("SELECT f FROM {duck_table} ORDER BY id"))
        .unwrap();
    let got: Vec<f64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, mine);
    admin
        .query_drop("SET SESSION group_concat_max_len = 100000000")
        .await
        .unwrap();
    let my_digest: Option<String> = admin
        .query_first(format!(
            "SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(h ORDER BY id SEPARATOR ','))) \
             FROM {d}.visit"
        ))
        .await
        .unwrap();
    let duck_digest: String = duck
        .query_row(
            &format!(
                "SELECT count(*) || ':' || md5(string_agg(h, ',' ORDER BY id)) FROM \"{}\".visit",
                database.name()
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(Some(duck_digest), my_digest);

    let record: Value =
        serde_json::from_slice(&std::fs::read(staged.join("package-record.json")).unwrap())
            .unwrap();
    let snapshots: Vec<&str> = record["datasets"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(snapshots.len(), 2);
    assert!(
        snapshots[0].starts_with("mariadb consistent snapshot"),
        "{record}"
    );
    assert_eq!(snapshots[0], snapshots[1]);
    let logs = server.stop();
    assert!(
        !logs.contains(rig.var("MYSQL_PASSWORD")),
        "no password in the logs"
    );
    drop(duck);
    let _ = admin.disconnect().await;
    database.remove().await;
}
