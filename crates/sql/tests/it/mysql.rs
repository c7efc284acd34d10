use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Decimal128Type, Int32Type};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use publish_source::conformance::{Suite, collect};
use publish_source::{Source, SourceError, SourceExt, TableRequest};
use publish_sql::test_rig::SqlRig;
use publish_sql::{MysqlSource, SqlOptions, SqlTls};
use publish_types::{HostAllowList, ObjectName};

use crate::load_my::{load, quote};

fn obj(s: &str) -> ObjectName {
    ObjectName::parse(s).unwrap()
}

fn request(rig: &SqlRig, schema: &str, table: &str) -> TableRequest {
    TableRequest {
        catalog: rig.my_database(),
        schema: obj(schema),
        table: obj(table),
        columns: None,
    }
}

async fn source(rig: &SqlRig) -> MysqlSource {
    MysqlSource::connect(rig.my_config(rig.tls_options()), &rig.my_allow_list())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// The suite every source runs, over TLS verified against the rig's CA. MySQL has no ARRAY,
/// MAP or STRUCT: those columns of `people` are left out.
#[tokio::test]
async fn the_conformance_suite() {
    let Some(rig) = SqlRig::get() else { return };
    let mut databases = rig.my_schema("conformance").await;
    let suite = Suite::new(rig.my_database().as_str(), databases.name())
        .leaving_out(&["Tags", "Attrs", "Address"]);
    let hostile = suite.hostile();
    let hostile_schema = hostile.definition.schema.to_string();
    databases.create(&hostile_schema).await;
    let mut admin = rig.my_admin().await;
    load(&mut admin, databases.name(), &suite.people()).await;
    load(&mut admin, &hostile_schema, &hostile).await;
    suite.run_all(&source(&rig).await).await;
    databases.remove().await;
}

/// Every mapped type, NULLs and extremes: the Arrow type and every value.
#[tokio::test]
async fn every_mapped_type_and_value() {
    let Some(rig) = SqlRig::get() else { return };
    let databases = rig.my_schema("types").await;
    let d = quote(databases.name());
    let mut admin = rig.my_admin().await;
    admin
        .query_drop(format!(
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
        ))
        .await
        .unwrap();
    let source = source(&rig).await;
    let request = request(&rig, databases.name(), "t");
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
        ]
    );
    assert_eq!(described.comment.as_deref(), Some("all the types"));
    let (_, stream) = source.open(&request).await.unwrap();
    let batch = collect(stream).await;
    assert_eq!(batch.num_rows(), 2);
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
    for (i, field) in batch.schema().fields().iter().enumerate() {
        let nullable = !["id", "i"].contains(&field.name().as_str());
        assert_eq!(batch.column(i).is_null(1), nullable, "{}", field.name());
    }
    drop(source);
    databases.remove().await;
}

/// Every table of a package comes from the snapshot taken when the source opened: a change
/// committed after the first table was read is not in the second; a new package sees it.
#[tokio::test]
async fn all_tables_of_a_package_come_from_one_snapshot() {
    let Some(rig) = SqlRig::get() else { return };
    let databases = rig.my_schema("snapshot").await;
    let d = quote(databases.name());
    let mut writer = rig.my_admin().await;
    writer
        .query_drop(format!(
            "CREATE TABLE {d}.a (k INT PRIMARY KEY, v INT) ENGINE = InnoDB;
             CREATE TABLE {d}.b (k INT PRIMARY KEY, v INT) ENGINE = InnoDB;
             INSERT INTO {d}.a SELECT seq, 1 FROM {d}.seq_1_to_1000;
             INSERT INTO {d}.b SELECT seq, 1 FROM {d}.seq_1_to_1000;"
        ))
        .await
        .unwrap();
    let package = source(&rig).await;
    let a = package
        .describe(&request(&rig, databases.name(), "a"))
        .await
        .unwrap();
    let b = package
        .describe(&request(&rig, databases.name(), "b"))
        .await
        .unwrap();
    let sum = |batch: &RecordBatch| -> i64 {
        batch
            .column(1)
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|v| i64::from(*v))
            .sum()
    };
    let first = package.read(&a).await.unwrap();
    let snapshot = first.snapshot.clone().unwrap();
    assert!(
        snapshot.starts_with("mariadb consistent snapshot"),
        "{snapshot}"
    );
    assert_eq!(sum(&collect(first).await), 1000);
    writer
        .query_drop(format!(
            "START TRANSACTION; UPDATE {d}.a SET v = 2; UPDATE {d}.b SET v = 2;
             INSERT INTO {d}.b VALUES (5000, 2); COMMIT;"
        ))
        .await
        .unwrap();
    let second = package.read(&b).await.unwrap();
    assert_eq!(second.snapshot.as_deref(), Some(snapshot.as_str()));
    let second = collect(second).await;
    assert_eq!((second.num_rows(), sum(&second)), (1000, 1000));

    let next = source(&rig).await;
    let (_, now) = next
        .open(&request(&rig, databases.name(), "b"))
        .await
        .unwrap();
    let now = collect(now).await;
    assert_eq!((now.num_rows(), sum(&now)), (1001, 2002));
    drop((package, next));
    databases.remove().await;
}

/// A table of many batches arrives whole and in order; a read dropped midway is stopped and
/// leaves the package's connection, and its snapshot, to the next read.
#[tokio::test]
async fn a_large_table_in_batches_and_a_dropped_read() {
    let Some(rig) = SqlRig::get() else { return };
    let databases = rig.my_schema("large").await;
    let d = quote(databases.name());
    let mut admin = rig.my_admin().await;
    admin
        .query_drop(format!(
            "CREATE TABLE {d}.big (id BIGINT PRIMARY KEY, h CHAR(32));
             INSERT INTO {d}.big SELECT seq, MD5(seq) FROM {d}.seq_1_to_50000;"
        ))
        .await
        .unwrap();
    let options = SqlOptions {
        batch_rows: 4096,
        ..rig.tls_options()
    };
    let source = MysqlSource::connect(rig.my_config(options), &rig.my_allow_list())
        .await
        .unwrap();
    let (schema, mut stream) = source
        .open(&request(&rig, databases.name(), "big"))
        .await
        .unwrap();
    assert!(matches!(stream.batches.next().await, Some(Ok(_))));
    drop(stream);
    // The dropped read's statement is stopped, not its transaction: a change committed now is
    // still not seen by the package's next read.
    admin
        .query_drop(format!("UPDATE {d}.big SET h = 'changed'"))
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = source.read_to_vec(&schema).await.unwrap();
    assert!(
        batches.iter().all(|b| b
            .column(1)
            .as_string::<i32>()
            .iter()
            .all(|h| h != Some("changed"))),
        "the snapshot survived the stopped read"
    );
    assert_eq!(batches.len(), 13);
    assert!(batches.iter().all(|b| b.num_rows() <= 4096));
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, (1..=50_000).collect::<Vec<i64>>());
    drop(source);
    databases.remove().await;
}

/// A zero date fails the read naming its column, never the value; connection failures say
/// what to fix.
#[tokio::test]
async fn errors_name_their_cause() {
    let Some(rig) = SqlRig::get() else { return };
    let databases = rig.my_schema("bad").await;
    let d = quote(databases.name());
    let mut admin = rig.my_admin().await;
    admin
        .query_drop(format!(
            "SET SESSION sql_mode = '';
             CREATE TABLE {d}.z (`The day` DATE); INSERT INTO {d}.z VALUES ('2020-01-01'), ('0000-00-00');"
        ))
        .await
        .unwrap();
    let source = source(&rig).await;
    let (_, stream) = source
        .open(&request(&rig, databases.name(), "z"))
        .await
        .unwrap();
    let items: Vec<_> = stream.batches.collect().await;
    let Some(Err(e)) = items.last() else {
        panic!("{items:?}")
    };
    let text = e.to_string();
    assert!(
        text.contains("column `The day`") && text.contains("zero date"),
        "{text}"
    );
    assert!(!text.contains("2020"), "{text}");
    drop(source);

    let allowed = rig.my_allow_list();
    let untrusted = SqlOptions {
        ca_file: None,
        ..rig.tls_options()
    };
    let e = MysqlSource::connect(rig.my_config(untrusted), &allowed)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, SourceError::InvalidConfig { message } if message.contains("TLS to mysql://127.0.0.1:")),
        "{e}"
    );
    let plain = SqlOptions {
        tls: SqlTls::Disable,
        ca_file: None,
        ..SqlOptions::default()
    };
    MysqlSource::connect(rig.my_config(plain), &allowed)
        .await
        .unwrap()
        .check()
        .await
        .unwrap();
    let mut wrong = rig.my_config(rig.tls_options());
    wrong.password = "not-the-password".to_owned().into();
    let e = MysqlSource::connect(wrong, &allowed).await.err().unwrap();
    assert!(matches!(e, SourceError::Authentication { .. }), "{e:?}");
    assert!(!e.to_string().contains(rig.var("MYSQL_USER")), "{e}");
    let mut missing = rig.my_config(rig.tls_options());
    missing.database = obj("no_such_database");
    let e = MysqlSource::connect(missing, &allowed).await.err().unwrap();
    assert!(
        matches!(
            e,
            SourceError::UnknownCatalog { .. } | SourceError::PermissionDenied { .. }
        ),
        "{e:?}"
    );
    assert!(!e.to_string().contains(rig.var("MYSQL_USER")), "{e}");
    let e = MysqlSource::connect(
        rig.my_config(rig.tls_options()),
        &HostAllowList::parse("mysql://db.example").unwrap(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, SourceError::HostNotAllowed { .. }), "{e:?}");
    databases.remove().await;
}
