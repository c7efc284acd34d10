//! The PostgreSQL source's side of the shared suite ([`Pg`]): its setup SQL (with the table of
//! every type it maps and the values only its types show), its loader of the conformance
//! fixtures, its wording of errors; and the case only PostgreSQL has, a connection of its own
//! per read.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Float64Type, Int32Type, TimeUnit,
};
use futures::StreamExt;
use publish_source::conformance::Fixture;
use publish_source::{SourceError, SourceExt};
use publish_sql::test_rig::{Engine, SqlRig};
use publish_sql::{PostgresSource, SqlOptions};
use publish_types::{Identifier, TableSchema};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::sources::{self, Server, suite};

/// The rig's PostgreSQL.
pub(crate) struct Pg;

impl Server for Pg {
    const ENGINE: Engine = Engine::Postgresql;
    type Source = PostgresSource;

    async fn load(rig: &SqlRig, schema: &str, fixture: &Fixture) {
        load(&rig.pg_client().await, schema, fixture).await;
    }

    fn series(_schema: &str, rows: usize) -> String {
        format!("generate_series(1, {rows}) AS series(n)")
    }

    /// 12 batches of exactly 10 000 rows, `x` left out of the read.
    fn large_table(schema: &str) -> (String, usize, usize) {
        let sql = format!(
            "CREATE TABLE {}.big AS SELECT g::int8 AS id, md5(g::text) AS h, g * 0.5 AS x \
             FROM generate_series(1, 120000) g",
            Self::ENGINE.quote(schema)
        );
        (sql, 120_000, 10_000)
    }

    fn unholdable(s: &str) -> (String, Vec<(&'static str, &'static str, &'static str)>) {
        let setup = format!(
            "CREATE TABLE {s}.inf (\"When it was\" timestamptz);
             INSERT INTO {s}.inf VALUES ('2020-01-01'), ('infinity');
             CREATE TABLE {s}.nan (n numeric(6,2)); INSERT INTO {s}.nan VALUES ('NaN');
             CREATE TABLE {s}.grid (g int4[]); INSERT INTO {s}.grid VALUES ('{{{{1,2}},{{3,4}}}}');
             CREATE TABLE {s}.day (d date); INSERT INTO {s}.day VALUES ('-infinity');"
        );
        let cases = vec![
            (
                "inf",
                "When it was",
                "infinity, which TIMESTAMP cannot hold",
            ),
            ("nan", "n", "NaN, which DECIMAL cannot hold"),
            ("grid", "g", "an array value of 2 dimensions"),
            ("day", "d", "infinity, which DATE cannot hold"),
        ];
        (setup, cases)
    }

    fn every_type(s: &str) -> (String, Vec<&'static str>, &'static [&'static str]) {
        let setup = format!("CREATE TYPE {s}.mood AS ENUM ('sad', 'ok');
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
        );
        let types = vec![
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
        ];
        (setup, types, &["id", "i4", "ai"])
    }

    /// NULLs, extreme and pre-2000 values: the primary key, and every value of the first row.
    fn check_every_type(described: &TableSchema, batch: &RecordBatch) {
        assert_eq!(described.primary_key, [Identifier::parse("id").unwrap()]);
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
    }

    fn check_snapshot(snapshot: &str) {
        assert!(snapshot.starts_with("postgresql snapshot "), "{snapshot}");
        assert!(snapshot.contains(" at WAL "), "{snapshot}");
    }

    async fn check_unencrypted(rig: &SqlRig, application_name: &str) {
        let ssl: bool = rig
            .pg_client()
            .await
            .query_one(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = $1 AND a.usename = current_user",
                &[&application_name],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!ssl, "TLS was disabled");
    }

    fn check_refused_password(e: &SourceError) {
        assert!(e.to_string().contains("SQLSTATE 28P01"), "{e}");
    }

    fn check_unknown_database(e: &SourceError) {
        assert_eq!(
            e,
            &SourceError::UnknownCatalog {
                catalog: "no_such_database".into()
            }
        );
    }
}

suite!(Pg);

/// Dropping a read midway closes its connection (the server stops its COPY) and leaves the
/// package's snapshot usable; dropping the source ends its transaction.
#[tokio::test]
async fn dropping_a_read_closes_its_connection() {
    let Some(rig) = SqlRig::get() else { return };
    let schema = rig.pg_schema("drop").await;
    let s = Pg::ENGINE.quote(schema.name());
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
    // Waits (up to 5 s) until `left` sessions remain; `what` is still open otherwise.
    let settle = |left: i64, what: &'static str| {
        let sessions = &sessions;
        async move {
            let mut waited = 0;
            while sessions().await != left {
                waited += 1;
                assert!(waited < 100, "{what}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    let mut config = rig.config(
        Pg::ENGINE,
        SqlOptions {
            batch_rows: 1000,
            ..rig.tls_options()
        },
    );
    config.application_name = "publish-sql drop test".into();
    let package = PostgresSource::connect(config).await.unwrap();
    let (described, mut stream) = package
        .open(&sources::request::<Pg>(&rig, schema.name(), "big", None))
        .await
        .unwrap();
    assert!(matches!(stream.batches.next().await, Some(Ok(_))));
    assert_eq!(
        sessions().await,
        2,
        "the package's connection and the read's"
    );
    drop(stream);
    settle(1, "the dropped read's connection is still open").await;
    let rows: usize = package
        .read_to_vec(&described)
        .await
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 300_000);
    drop(package);
    settle(0, "the package's connection is still open").await;
    schema.remove().await;
}

/// Creates `fixture`'s table in `schema` (which must exist) with the PostgreSQL type of each
/// Unity Catalog type and its comments, then loads its rows as text parameters cast in SQL (so
/// the server parses every value itself).
async fn load(client: &Client, schema: &str, fixture: &Fixture) {
    let d = &fixture.definition;
    let (table, create) = sources::create_table(Pg::ENGINE, schema, fixture, |c| {
        format!(
            "{} {}{}",
            Pg::ENGINE.quote(c.name.as_str()),
            sources::type_of(Pg::ENGINE, &c.data_type),
            if c.nullable { "" } else { " NOT NULL" }
        )
    });
    let mut sql = format!("{create};");
    if let Some(comment) = &d.comment {
        sql.push_str(&format!(
            "COMMENT ON TABLE {table} IS {};",
            literal(comment)
        ));
    }
    for c in &d.columns {
        if let Some(comment) = &c.comment {
            sql.push_str(&format!(
                "COMMENT ON COLUMN {table}.{} IS {};",
                Pg::ENGINE.quote(c.name.as_str()),
                literal(comment)
            ));
        }
    }
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let placeholders: Vec<String> = d
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "${}::text::{}",
                i + 1,
                sources::type_of(Pg::ENGINE, &c.data_type)
            )
        })
        .collect();
    let insert = client
        .prepare(&format!(
            "INSERT INTO {table} VALUES ({})",
            placeholders.join(", ")
        ))
        .await
        .unwrap_or_else(|e| panic!("prepare insert: {e}"));
    for (row, values) in sources::fixture_rows(fixture, text).iter().enumerate() {
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        client
            .execute(&insert, &params)
            .await
            .unwrap_or_else(|e| panic!("insert row {row}: {e}"));
    }
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One cell as PostgreSQL text input.
fn text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int16 => number::<arrow::datatypes::Int16Type>(array, row),
        DataType::Int32 => number::<arrow::datatypes::Int32Type>(array, row),
        DataType::Int64 => number::<arrow::datatypes::Int64Type>(array, row),
        // Rust's Display of a float is the shortest text that reads back as the same value.
        DataType::Float32 => number::<arrow::datatypes::Float32Type>(array, row),
        DataType::Float64 => number::<arrow::datatypes::Float64Type>(array, row),
        DataType::Decimal128(..) => array
            .as_primitive::<arrow::datatypes::Decimal128Type>()
            .value_as_string(row),
        DataType::Utf8 => array.as_string::<i32>().value(row).to_owned(),
        DataType::Binary => {
            let bytes = array.as_binary::<i32>().value(row);
            format!(
                "\\x{}",
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )
        }
        DataType::Date32 => {
            let days = array
                .as_primitive::<arrow::datatypes::Date32Type>()
                .value(row);
            arrow::temporal_conversions::date32_to_datetime(days)
                .unwrap_or_else(|| panic!("date {days}"))
                .date()
                .to_string()
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let us = array
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(row);
            let t = arrow::temporal_conversions::timestamp_us_to_datetime(us)
                .unwrap_or_else(|| panic!("timestamp {us}"))
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string();
            if zone.is_some() { format!("{t}+00") } else { t }
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            let items: Vec<String> = (0..list.len())
                .map(|i| match text(&list, i) {
                    None => "NULL".to_owned(),
                    Some(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        other => panic!("no text form for {other} in the fixtures"),
    })
}

/// A number cell as Rust displays it.
fn number<T: ArrowPrimitiveType>(array: &dyn Array, row: usize) -> String
where
    T::Native: std::fmt::Display,
{
    array.as_primitive::<T>().value(row).to_string()
}
