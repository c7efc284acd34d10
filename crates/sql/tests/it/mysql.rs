//! The MySQL / MariaDB source's side of the shared suite ([`My`]): its setup SQL (with the
//! table of every type it maps and the values only its types show), its loader of the
//! conformance fixtures, its wording of errors. Every case of the suite runs against it; none
//! is its alone.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Int32Type, TimeUnit};
use mysql_async::Value;
use mysql_async::prelude::Queryable;
use publish_source::SourceError;
use publish_source::conformance::Fixture;
use publish_sql::MysqlSource;
use publish_sql::test_rig::{Engine, SqlRig};
use publish_types::TableSchema;

use crate::sources::{self, Server, suite};

/// The rig's MariaDB.
pub(crate) struct My;

impl Server for My {
    const ENGINE: Engine = Engine::Mariadb;
    type Source = MysqlSource;

    /// As the rig's administrator: the test user may only read.
    async fn load(rig: &SqlRig, schema: &str, fixture: &Fixture) {
        let mut admin = rig.my_admin().await;
        load(&mut admin, schema, fixture).await;
        let _ = admin.disconnect().await;
    }

    /// MariaDB's sequence engine.
    fn series(schema: &str, rows: usize) -> String {
        format!(
            "(SELECT seq AS n FROM {}.seq_1_to_{rows}) AS series",
            Self::ENGINE.quote(schema)
        )
    }

    /// 12 batches of 4096 rows and a last of 848.
    fn large_table(schema: &str) -> (String, usize, usize) {
        let d = Self::ENGINE.quote(schema);
        let sql = format!(
            "CREATE TABLE {d}.big (id BIGINT PRIMARY KEY, h CHAR(32));
             INSERT INTO {d}.big SELECT seq, MD5(seq) FROM {d}.seq_1_to_50000;"
        );
        (sql, 50_000, 4096)
    }

    /// A zero date, which strict modes refuse to store: allowed for this session.
    fn unholdable(d: &str) -> (String, Vec<(&'static str, &'static str, &'static str)>) {
        let setup = format!(
            "SET SESSION sql_mode = '';
             CREATE TABLE {d}.z (`The day` DATE); INSERT INTO {d}.z VALUES ('2020-01-01'), ('0000-00-00');"
        );
        (setup, vec![("z", "The day", "zero date")])
    }

    fn every_type(d: &str) -> (String, Vec<&'static str>, &'static [&'static str]) {
        let setup = format!(
            "SET time_zone = '+00:00';
             CREATE TABLE {d}.t (
               id BIGINT PRIMARY KEY, b BIT(1), ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT,
               mi MEDIUMINT, i INT NOT NULL, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
               f FLOAT, db DOUBLE, n DECIMAL(6,2), big DECIMAL(38,10), huge DECIMAL(65,2),
               c CHAR(3), v VARCHAR(10), t TEXT, bin VARBINARY(8), bl BLOB, dt DATE,
               ts DATETIME(6), tz TIMESTAMP(6) NULL, tm TIME(3), y YEAR, e ENUM('sad', 'ok'),
               j JSON, bits BIT(9)) COMMENT = 'all the types';
             INSERT INTO {d}.t VALUES
              (1, 1, -128, 255, -32768, 8388607, 2147483647, 4294967295,
               -9223372036854775808, 18446744073709551615, 1.5, 0.1, -9999.99,
               '1234567890123456789012345678.0123456789', 1.5, 'ab', 'abc', 'ünï \"q\" `b`',
               X'00ff10', X'0102', '1969-07-20', '1999-12-31 23:59:59.999999',
               '2024-03-10 10:30:00', '13:45:00.5', 2024, 'ok', '{{\"a\": [1, 2]}}', b'100000001'),
              (2, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        );
        let types = vec![
            "id bigint not null",
            "b boolean",
            "ti tinyint",
            "tu smallint",
            "si smallint",
            "mi int",
            "i int not null",
            "iu bigint",
            "bi bigint",
            "bu decimal(20,0)",
            "f float",
            "db double",
            "n decimal(6,2)",
            "big decimal(38,10)",
            "huge string",
            "c char(3)",
            "v varchar(10)",
            "t string",
            "bin binary",
            "bl binary",
            "dt date",
            "ts timestamp_ntz",
            "tz timestamp",
            "tm string",
            "y smallint",
            "e string",
            "j string",
            "bits binary",
        ];
        (setup, types, &["id", "i"])
    }

    /// NULLs and extremes: the table comment, and every value of the first row.
    fn check_every_type(described: &TableSchema, batch: &RecordBatch) {
        assert_eq!(described.comment.as_deref(), Some("all the types"));
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        let display = |name: &str| {
            arrow::util::display::ArrayFormatter::try_new(
                col(name).as_ref(),
                &arrow::util::display::FormatOptions::default(),
            )
            .unwrap()
            .value(0)
            .to_string()
        };
        for (name, want) in [
            ("b", "true"),
            ("ti", "-128"),
            ("tu", "255"),
            ("si", "-32768"),
            ("mi", "8388607"),
            ("iu", "4294967295"),
            ("bi", "-9223372036854775808"),
            ("bu", "18446744073709551615"),
            ("f", "1.5"),
            ("db", "0.1"),
            ("n", "-9999.99"),
            ("big", "1234567890123456789012345678.0123456789"),
            ("huge", "1.50"),
            ("c", "ab"),
            ("t", "ünï \"q\" `b`"),
            ("bin", "00ff10"),
            ("dt", "1969-07-20"),
            ("ts", "1999-12-31T23:59:59.999999"),
            ("tz", "2024-03-10T10:30:00Z"),
            ("tm", "13:45:00.500"),
            ("y", "2024"),
            ("e", "ok"),
            ("bits", "0101"),
        ] {
            assert_eq!(display(name), want, "{name}");
        }
        assert_eq!(col("i").as_primitive::<Int32Type>().value(0), i32::MAX);
        assert_eq!(col("n").as_primitive::<Decimal128Type>().value(0), -999_999);
        let j = display("j");
        assert!(j.contains("\"a\""), "{j}");
    }

    fn check_snapshot(snapshot: &str) {
        assert!(
            snapshot.starts_with("mariadb consistent snapshot"),
            "{snapshot}"
        );
    }

    /// MariaDB shows no other session's TLS state (without `performance_schema`): that the
    /// plain connection worked at all is the check.
    async fn check_unencrypted(_rig: &SqlRig, _application_name: &str) {}

    /// MariaDB refuses a database the user has no grant on before saying whether it exists.
    fn check_refused_password(e: &SourceError) {
        assert!(e.to_string().contains("error 1045"), "{e}");
    }

    fn check_unknown_database(e: &SourceError) {
        assert!(
            matches!(
                e,
                SourceError::UnknownCatalog { .. } | SourceError::PermissionDenied { .. }
            ),
            "{e:?}"
        );
    }
}

suite!(My);

/// Creates `fixture`'s table in `database` (which must exist) with the MySQL type of each Unity
/// Catalog type and its comments, then loads its rows through a prepared `INSERT` (text for
/// what MySQL parses, numbers and bytes as they are).
async fn load(conn: &mut mysql_async::Conn, database: &str, fixture: &Fixture) {
    let d = &fixture.definition;
    let (table, mut sql) = sources::create_table(My::ENGINE, database, fixture, |c| {
        let mut ddl = format!(
            "{} {} {}",
            My::ENGINE.quote(c.name.as_str()),
            sources::type_of(My::ENGINE, &c.data_type),
            if c.nullable { "NULL" } else { "NOT NULL" }
        );
        if let Some(comment) = &c.comment {
            ddl.push_str(&format!(" COMMENT {}", literal(comment)));
        }
        ddl
    });
    if let Some(comment) = &d.comment {
        sql.push_str(&format!(" COMMENT = {}", literal(comment)));
    }
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    conn.query_drop(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let marks = vec!["?"; d.columns.len()].join(", ");
    let insert = format!("INSERT INTO {table} VALUES ({marks})");
    for (row, values) in sources::fixture_rows(fixture, value)
        .into_iter()
        .enumerate()
    {
        conn.exec_drop(insert.as_str(), values)
            .await
            .unwrap_or_else(|e| panic!("insert row {row}: {e}"));
    }
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn value(array: &dyn Array, row: usize) -> Value {
    use arrow::datatypes as t;
    if array.is_null(row) {
        return Value::NULL;
    }
    let text = |s: String| Value::Bytes(s.into_bytes());
    match array.data_type() {
        DataType::Boolean => Value::Int(i64::from(array.as_boolean().value(row))),
        DataType::Int8 => Value::Int(array.as_primitive::<t::Int8Type>().value(row).into()),
        DataType::Int16 => Value::Int(array.as_primitive::<t::Int16Type>().value(row).into()),
        DataType::Int32 => Value::Int(array.as_primitive::<t::Int32Type>().value(row).into()),
        DataType::Int64 => Value::Int(array.as_primitive::<t::Int64Type>().value(row)),
        DataType::Float32 => Value::Float(array.as_primitive::<t::Float32Type>().value(row)),
        DataType::Float64 => Value::Double(array.as_primitive::<t::Float64Type>().value(row)),
        DataType::Decimal128(..) => text(
            array
                .as_primitive::<t::Decimal128Type>()
                .value_as_string(row),
        ),
        DataType::Utf8 => text(array.as_string::<i32>().value(row).to_owned()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        DataType::Date32 => {
            let days = array.as_primitive::<t::Date32Type>().value(row);
            text(
                arrow::temporal_conversions::date32_to_datetime(days)
                    .unwrap_or_else(|| panic!("date {days}"))
                    .date()
                    .to_string(),
            )
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let us = array
                .as_primitive::<t::TimestampMicrosecondType>()
                .value(row);
            text(
                arrow::temporal_conversions::timestamp_us_to_datetime(us)
                    .unwrap_or_else(|| panic!("timestamp {us}"))
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string(),
            )
        }
        other => panic!("no MySQL value for {other} in the fixtures"),
    }
}
