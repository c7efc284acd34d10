use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, Int64Type};
use futures::StreamExt;
use publish_source::conformance::{Suite, collect};
use publish_source::{Source, SourceError, SourceExt, TableRequest};
use publish_sql::test_rig::SqlRig;
use publish_sql::{PostgresSource, SqlOptions, SqlTls};
use publish_types::{HostAllowList, Identifier, ObjectName};

use crate::load::{load, quote};

fn obj(s: &str) -> ObjectName {
    ObjectName::parse(s).unwrap()
}

fn request(rig: &SqlRig, schema: &str, table: &str, columns: Option<&[&str]>) -> TableRequest {
    TableRequest {
        catalog: rig.pg_database(),
        schema: obj(schema),
        table: obj(table),
        columns: columns.map(|c| c.iter().map(|n| Identifier::parse(n).unwrap()).collect()),
    }
}

async fn source(rig: &SqlRig) -> PostgresSource {
    PostgresSource::connect(rig.pg_config(rig.tls_options()), &rig.pg_allow_list())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn read_all(source: &PostgresSource, request: &TableRequest) -> RecordBatch {
    let (_, stream) = source.open(request).await.unwrap_or_else(|e| panic!("{e}"));
    collect(stream).await
}

/// The suite every source runs, over TLS verified against the rig's CA. PostgreSQL has no
/// TINYINT, MAP or STRUCT: those columns of `people` are left out.
#[tokio::test]
async fn the_conformance_suite() {
    let Some(rig) = SqlRig::get() else { return };
    let mut schema = rig.pg_schema("conformance").await;
    let suite = Suite::new(rig.pg_database().as_str(), schema.name())
        .leaving_out(&["Level", "Attrs", "Address"]);
    let client = rig.pg_client().await;
    let hostile = suite.hostile();
    let hostile_schema = hostile.definition.schema.to_string();
    client
        .batch_execute(&format!("CREATE SCHEMA {}", quote(&hostile_schema)))
        .await
        .unwrap();
    schema.also_drop(&hostile_schema);
    load(&client, schema.name(), &suite.people()).await;
    load(&client, &hostile_schema, &hostile).await;
    suite.run_all(&source(&rig).await).await;
    schema.remove().await;
}

/// Every mapped type, NULLs, extreme and pre-2000 values: the Arrow type and every value.
#[tokio::test]
async fn every_mapped_type_and_value() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("types").await;
    let s = quote(schema.name());
    let client = rig.pg_client().await;
    client
        .batch_execute(&format!(
            "CREATE TYPE {s}.mood AS ENUM ('sad', 'ok');
             CREATE DOMAIN {s}.positive AS integer CHECK (VALUE > 0);
             CREATE TABLE {s}.t (
               id int8 PRIMARY KEY, b bool, i2 int2, i4 int4 NOT NULL, f4 real, f8 float8,
               n numeric(6,2), big numeric(38,10), free numeric, huge numeric(50,2),
               t text, v varchar(10), c char(3), nm name, by bytea, d date,
               ts timestamp, tz timestamptz, u uuid, j json, jb jsonb, tm time, tmz timetz,
               iv interval, e {s}.mood, dom {s}.positive, ai int4[], au uuid[], at text[],
               an numeric(4,1)[], money money, inet inet);
             INSERT INTO {s}.t VALUES
              (1, true, -32768, 2147483647, 1.5, 0.1, -9999.99,
               '1234567890123456789012345678.0123456789', 12345678901234567890.123456789,
               1.5, 'ünï \"q\"', 'abc', 'ab', 'pg_name', '\\x00ff10', '1969-07-20',
               '1999-12-31 23:59:59.999999', '2024-03-10 02:30:00-08', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
               '{{\"a\": [1, 2]}}', '{{\"b\":  null, \"a\": 1}}', '13:45:00.5', '13:45:00+02',
               '1 year 2 months 3 days 04:05:06', 'ok', 7, '{{1,NULL,3}}',
               '{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}}', '{{\"x,y\",NULL}}', '{{1.5,-2.0}}', 12.34, '10.0.0.1/8'),
              (2, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{{}}', NULL, NULL, NULL, NULL, NULL);"
        ))
        .await
        .unwrap();
    let source = source(&rig).await;
    let request = request(&rig, schema.name(), "t", None);
    let described = source.describe(&request).await.unwrap();
    let types: Vec<String> = described
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c.name,
                c.data_type,
                if c.nullable { "" } else { " not null" }
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            "id bigint not null",
            "b boolean",
            "i2 smallint",
            "i4 int not null",
            "f4 float",
            "f8 double",
            "n decimal(6,2)",
            "big decimal(38,10)",
            "free string",
            "huge string",
            "t string",
            "v varchar(10)",
            "c char(3)",
            "nm string",
            "by binary",
            "d date",
            "ts timestamp_ntz",
            "tz timestamp",
            "u string",
            "j string",
            "jb string",
            "tm string",
            "tmz string",
            "iv string",
            "e string",
            "dom int",
            "ai array<int>",
            "au array<string>",
            "at array<string>",
            "an array<decimal(4,1)>",
            "money string",
            "inet string",
        ]
    );
    assert_eq!(described.primary_key, [Identifier::parse("id").unwrap()]);
    let batch = read_all(&source, &request).await;
    assert_eq!(batch.num_rows(), 2);
    let col = |name: &str| batch.column_by_name(name).unwrap().clone();
    let string = |name: &str| col(name).as_string::<i32>().value(0).to_owned();
    assert_eq!(
        col("i2")
            .as_primitive::<arrow::datatypes::Int16Type>()
            .value(0),
        -32768
    );
    assert_eq!(col("i4").as_primitive::<Int32Type>().value(0), i32::MAX);
    assert_eq!(col("f8").as_primitive::<Float64Type>().value(0), 0.1);
    assert_eq!(
        col("n").as_primitive::<Decimal128Type>().value_as_string(0),
        "-9999.99"
    );
    assert_eq!(
        col("big")
            .as_primitive::<Decimal128Type>()
            .value_as_string(0),
        "1234567890123456789012345678.0123456789"
    );
    assert_eq!(string("free"), "12345678901234567890.123456789");
    assert_eq!(string("huge"), "1.50");
    assert_eq!(string("t"), "ünï \"q\"");
    assert_eq!(string("c"), "ab ", "char(n) keeps PostgreSQL's padding");
    assert_eq!(col("by").as_binary::<i32>().value(0), [0, 255, 16]);
    assert_eq!(
        col("d")
            .as_primitive::<arrow::datatypes::Date32Type>()
            .value(0),
        -165
    );
    assert_eq!(
        col("ts")
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .value(0),
        946_684_799_999_999
    );
    // 2024-03-10 02:30:00-08 is 10:30 UTC.
    assert_eq!(
        col("tz")
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .value(0),
        1_710_066_600_000_000
    );
    assert_eq!(
        col("tz").data_type().to_string(),
        "Timestamp(µs, \"+00:00\")"
    );
    assert_eq!(string("u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(string("j"), "{\"a\": [1, 2]}");
    assert_eq!(string("jb"), "{\"a\": 1, \"b\": null}");
    assert_eq!(string("tm"), "13:45:00.5");
    assert_eq!(string("tmz"), "13:45:00+02");
    assert_eq!(string("iv"), "P1Y2M3DT4H5M6S");
    assert_eq!(string("e"), "ok");
    assert_eq!(col("dom").as_primitive::<Int32Type>().value(0), 7);
    let ai = col("ai");
    let ai = ai.as_list::<i32>();
    assert_eq!(
        ai.value(0).as_primitive::<Int32Type>(),
        &arrow::array::Int32Array::from(vec![Some(1), None, Some(3)])
    );
    assert_eq!(ai.value(1).len(), 0, "an empty array is an empty list");
    assert!(!ai.is_null(1));
    let at = col("at");
    let at = at.as_list::<i32>().value(0);
    assert_eq!(at.as_string::<i32>().value(0), "x,y");
    assert!(at.is_null(1));
    let an = col("an");
    assert_eq!(
        an.as_list::<i32>()
            .value(0)
            .as_primitive::<Decimal128Type>()
            .value_as_string(1),
        "-2.0"
    );
    let au = col("au");
    assert_eq!(
        au.as_list::<i32>().value(0).as_string::<i32>().value(0),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(string("inet"), "10.0.0.1/8");
    // Row 2: NULL everywhere it may be.
    for (i, field) in batch.schema().fields().iter().enumerate() {
        let nullable = !["id", "i4", "ai"].contains(&field.name().as_str());
        assert_eq!(batch.column(i).is_null(1), nullable, "{}", field.name());
    }
    drop(source);
    schema.remove().await;
}

/// A table of many batches arrives whole and in order, with bounded batch sizes.
#[tokio::test]
async fn a_large_table_in_many_batches() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("large").await;
    let s = quote(schema.name());
    rig.pg_client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {s}.big AS SELECT g::int8 AS id, md5(g::text) AS h, g * 0.5 AS x \
             FROM generate_series(1, 120000) g"
        ))
        .await
        .unwrap();
    let options = SqlOptions {
        batch_rows: 10_000,
        ..rig.tls_options()
    };
    let source = PostgresSource::connect(rig.pg_config(options), &rig.pg_allow_list())
        .await
        .unwrap();
    let (_, stream) = source
        .open(&request(&rig, schema.name(), "big", Some(&["id", "h"])))
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = stream.batches.map(|b| b.unwrap()).collect().await;
    assert_eq!(batches.len(), 12);
    assert!(batches.iter().all(|b| b.num_rows() == 10_000));
    let mut expected = 1;
    for b in &batches {
        for id in b.column(0).as_primitive::<Int64Type>().values() {
            assert_eq!(*id, expected);
            expected += 1;
        }
    }
    drop(source);
    schema.remove().await;
}

/// Every table of a package comes from the snapshot taken when the source opened: a change
/// committed by another connection after the first table was read is not in the second, nor
/// in a table read at the same time; a new package sees it. Every table records the same
/// snapshot.
#[tokio::test]
async fn all_tables_of_a_package_come_from_one_snapshot() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("snapshot").await;
    let s = quote(schema.name());
    let writer = rig.pg_client().await;
    writer
        .batch_execute(&format!(
            "CREATE TABLE {s}.a (k int PRIMARY KEY, v int);
             CREATE TABLE {s}.b (k int PRIMARY KEY, v int);
             INSERT INTO {s}.a SELECT g, 1 FROM generate_series(1, 1000) g;
             INSERT INTO {s}.b SELECT g, 1 FROM generate_series(1, 1000) g;"
        ))
        .await
        .unwrap();
    let package = source(&rig).await;
    let a = package
        .describe(&request(&rig, schema.name(), "a", None))
        .await
        .unwrap();
    let b = package
        .describe(&request(&rig, schema.name(), "b", None))
        .await
        .unwrap();
    let first = package.read(&a).await.unwrap();
    let snapshot = first.snapshot.clone().unwrap();
    assert!(snapshot.starts_with("postgresql snapshot "), "{snapshot}");
    assert!(snapshot.contains(" at WAL "), "{snapshot}");
    let sum = |batch: &RecordBatch| -> i64 {
        batch
            .column(1)
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|v| i64::from(*v))
            .sum()
    };
    assert_eq!(sum(&collect(first).await), 1000);
    // Another connection moves every row of both tables on, and adds rows.
    writer
        .batch_execute(&format!(
            "BEGIN; UPDATE {s}.a SET v = 2; UPDATE {s}.b SET v = 2;
             INSERT INTO {s}.b VALUES (5000, 2); COMMIT;"
        ))
        .await
        .unwrap();
    let second = package.read(&b).await.unwrap();
    assert_eq!(second.snapshot.as_deref(), Some(snapshot.as_str()));
    // Two reads at once, each on a connection of its own, same snapshot.
    let again = package.read(&a).await.unwrap();
    let (second, again) = tokio::join!(collect(second), collect(again));
    assert_eq!((second.num_rows(), sum(&second)), (1000, 1000));
    assert_eq!(sum(&again), 1000);

    let next = source(&rig).await;
    assert_ne!(next.snapshot(), snapshot);
    let b_now = read_all(&next, &request(&rig, schema.name(), "b", None)).await;
    assert_eq!((b_now.num_rows(), sum(&b_now)), (1001, 2002));
    drop((package, next));
    schema.remove().await;
}

/// Dropping a read midway closes its connection (the server stops its COPY) and leaves the
/// package's snapshot usable; dropping the source ends its transaction.
#[tokio::test]
async fn dropping_a_read_closes_its_connection() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("drop").await;
    let s = quote(schema.name());
    let client = rig.pg_client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {s}.big AS SELECT g AS id FROM generate_series(1, 300000) g"
        ))
        .await
        .unwrap();
    let sessions = || async {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'publish-sql drop test'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    let mut config = rig.pg_config(SqlOptions {
        batch_rows: 1000,
        ..rig.tls_options()
    });
    config.application_name = "publish-sql drop test".into();
    let package = PostgresSource::connect(config, &rig.pg_allow_list())
        .await
        .unwrap();
    let (described, mut stream) = package
        .open(&request(&rig, schema.name(), "big", None))
        .await
        .unwrap();
    assert!(matches!(stream.batches.next().await, Some(Ok(_))));
    assert_eq!(
        sessions().await,
        2,
        "the package's connection and the read's"
    );
    drop(stream);
    let mut waited = 0;
    while sessions().await != 1 {
        waited += 1;
        assert!(waited < 100, "the dropped read's connection is still open");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rows: usize = package
        .read_to_vec(&described)
        .await
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 300_000);
    drop(package);
    let mut waited = 0;
    while sessions().await != 0 {
        waited += 1;
        assert!(waited < 100, "the package's connection is still open");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    schema.remove().await;
}

/// Values a mapped type cannot hold fail the read naming the column, never quoting the value.
#[tokio::test]
async fn values_a_type_cannot_hold_name_their_column() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("bad").await;
    let s = quote(schema.name());
    rig.pg_client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {s}.inf (\"When it was\" timestamptz);
             INSERT INTO {s}.inf VALUES ('2020-01-01'), ('infinity');
             CREATE TABLE {s}.nan (n numeric(6,2)); INSERT INTO {s}.nan VALUES ('NaN');
             CREATE TABLE {s}.grid (g int4[]); INSERT INTO {s}.grid VALUES ('{{{{1,2}},{{3,4}}}}');
             CREATE TABLE {s}.day (d date); INSERT INTO {s}.day VALUES ('-infinity');"
        ))
        .await
        .unwrap();
    let source = source(&rig).await;
    for (table, column, want) in [
        (
            "inf",
            "When it was",
            "infinity, which TIMESTAMP cannot hold",
        ),
        ("nan", "n", "NaN, which DECIMAL cannot hold"),
        ("grid", "g", "an array value of 2 dimensions"),
        ("day", "d", "infinity, which DATE cannot hold"),
    ] {
        let (_, stream) = source
            .open(&request(&rig, schema.name(), table, None))
            .await
            .unwrap();
        let items: Vec<_> = stream.batches.collect().await;
        let Some(Err(e)) = items.last() else {
            panic!("{table}: {items:?}")
        };
        assert!(matches!(e, SourceError::Protocol { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&format!("column `{column}`")), "{text}");
        assert!(text.contains(want), "{text}");
        assert!(!text.contains("2020"), "no value in {text}");
    }
    drop(source);
    schema.remove().await;
}

/// Connection failures say what to fix: a certificate the service does not trust, a server
/// without TLS, a refused password (without the user name), an unknown database, a host not
/// on the allow-list (refused before connecting).
#[tokio::test]
async fn connection_errors_name_their_cause() {
    let Some(rig) = SqlRig::get() else { return };
    let allowed = rig.pg_allow_list();
    // No rig CA: the system's roots do not sign the rig's certificate.
    let untrusted = SqlOptions {
        ca_file: None,
        ..rig.tls_options()
    };
    let e = PostgresSource::connect(rig.pg_config(untrusted), &allowed)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, SourceError::InvalidConfig { message } if message.contains("TLS to postgresql://127.0.0.1:")
            && message.contains("PUBLISH_SQL_CA_FILE")),
        "{e}"
    );
    // Plain connections when configured.
    let plain = SqlOptions {
        tls: SqlTls::Disable,
        ca_file: None,
        ..SqlOptions::default()
    };
    let source = PostgresSource::connect(rig.pg_config(plain), &allowed)
        .await
        .unwrap();
    source.check().await.unwrap();
    let ssl: bool = rig
        .pg_client()
        .await
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'publish-sql tests' AND a.usename = current_user",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!ssl, "TLS was disabled");
    drop(source);

    let mut wrong = rig.pg_config(rig.tls_options());
    wrong.password = "not-the-password".to_owned().into();
    let e = PostgresSource::connect(wrong, &allowed)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, SourceError::Authentication { .. }), "{e:?}");
    assert!(!e.to_string().contains(rig.var("PG_USER")), "{e}");
    assert!(e.to_string().contains("SQLSTATE 28P01"), "{e}");

    let mut missing = rig.pg_config(rig.tls_options());
    missing.database = obj("no_such_database");
    let e = PostgresSource::connect(missing, &allowed)
        .await
        .err()
        .unwrap();
    assert_eq!(
        e,
        SourceError::UnknownCatalog {
            catalog: "no_such_database".into()
        }
    );

    let e = PostgresSource::connect(
        rig.pg_config(rig.tls_options()),
        &HostAllowList::parse("postgresql://db.example").unwrap(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, SourceError::HostNotAllowed { .. }), "{e:?}");

    let e = PostgresSource::connect(
        rig.pg_config(SqlOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..rig.tls_options()
        }),
        &allowed,
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}
