//! One suite of source cases, run against both servers of the rig: each case is generic over
//! [`Server`], which each server's module implements (how its setup SQL is spelled and the
//! fixtures loaded, what only its types show, its own wording of an error), and [`suite!`] makes
//! every case a test of that name in each server's module. What differs that is only data —
//! the type each server declares a fixture column with — stands here side by side
//! ([`column_type`]).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use futures::StreamExt;
use publish_source::conformance::{Fixture, Suite, collect};
use publish_source::{Source, SourceError, SourceExt, TableRequest};
use publish_sql::test_rig::{Engine, SqlRig, TestSource};
use publish_sql::{SqlOptions, SqlTls};
use publish_types::{ColumnSchema, HostAllowList, Identifier, ObjectName, TableSchema, UcType};

/// One server of the SQL rig, as the shared cases use it: what differs between PostgreSQL
/// and MariaDB is spelled here, once per server.
pub(crate) trait Server {
    /// Which of the rig's servers.
    const ENGINE: Engine;
    /// The source read from it.
    type Source: TestSource;

    /// Creates `fixture`'s table in `schema` and loads its rows.
    async fn load(rig: &SqlRig, schema: &str, fixture: &Fixture);
    /// A table expression of `rows` rows of one integer column `n`, 1 to `rows`, for tables in
    /// `schema`.
    fn series(schema: &str, rows: usize) -> String;
    /// SQL making the table `big` in `schema` (`id` 1 to `rows`, BIGINT, and a text `h`), its
    /// `rows`, and the rows per batch it is read in.
    fn large_table(schema: &str) -> (String, usize, usize);
    /// SQL making tables in the quoted schema `s` whose values the source cannot hold, and per
    /// table the column and what the error says.
    fn unholdable(s: &str) -> (String, Vec<(&'static str, &'static str, &'static str)>);
    /// SQL making the table `t` in the quoted schema `s`: a column of every mapped type, a row
    /// of extreme values and a row of NULLs wherever allowed; the types it is described with
    /// (`name type[ not null]`), and its NOT NULL columns.
    fn every_type(s: &str) -> (String, Vec<&'static str>, &'static [&'static str]);
    /// Checks what only the server's types show: of the described table, and every value of
    /// the first row.
    fn check_every_type(described: &TableSchema, batch: &RecordBatch);
    /// Checks a snapshot identity names the server's kind of snapshot.
    fn check_snapshot(snapshot: &str);
    /// Checks, as the server shows it, that the sessions named `application_name` are not
    /// encrypted.
    async fn check_unencrypted(rig: &SqlRig, application_name: &str);
    /// Checks the error of a refused password quotes the server's answer.
    fn check_refused_password(e: &SourceError);
    /// Checks the error of connecting to a database that does not exist.
    fn check_unknown_database(e: &SourceError);
}

/// `S`'s source over TLS verified against the rig's CA.
pub(crate) async fn source<S: Server>(rig: &SqlRig) -> S::Source {
    let config = rig.config(S::ENGINE, rig.tls_options());
    S::Source::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// A request for `schema`'s `table` in `S`'s database.
pub(crate) fn request<S: Server>(
    rig: &SqlRig,
    schema: &str,
    table: &str,
    columns: Option<&[&str]>,
) -> TableRequest {
    TableRequest {
        catalog: rig.database(S::ENGINE),
        schema: obj(schema),
        table: obj(table),
        columns: columns.map(|c| c.iter().map(|n| Identifier::parse(n).unwrap()).collect()),
    }
}

/// The shared cases as tests of one server: `suite!(Pg);` in its module makes each case below
/// a test of that name there.
macro_rules! suite {
    ($server:ty) => {
        $crate::sources::suite!(
            $server: the_conformance_suite,
            every_mapped_type_and_value,
            all_tables_of_a_package_come_from_one_snapshot,
            a_large_table_in_batches_and_a_dropped_read,
            values_a_type_cannot_hold_name_their_column,
            connection_errors_name_their_cause
        );
    };
    ($server:ty: $($case:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::sources::$case::<$server>().await;
            }
        )+
    };
}
pub(crate) use suite;

pub(crate) fn obj(s: &str) -> ObjectName {
    ObjectName::parse(s).unwrap()
}

/// Describes and reads `request` whole.
pub(crate) async fn read_all(source: &impl Source, request: &TableRequest) -> RecordBatch {
    let (_, stream) = source.open(request).await.unwrap_or_else(|e| panic!("{e}"));
    collect(stream).await
}

/// Each described column as `name type[ not null]`.
pub(crate) fn described_types(described: &TableSchema) -> Vec<String> {
    described
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
        .collect()
}

/// Row 2 (index 1) holds NULL in every column but `not_null`.
pub(crate) fn assert_null_everywhere_but(batch: &RecordBatch, not_null: &[&str]) {
    for (i, field) in batch.schema().fields().iter().enumerate() {
        let nullable = !not_null.contains(&field.name().as_str());
        assert_eq!(batch.column(i).is_null(1), nullable, "{}", field.name());
    }
}

/// The quoted `schema.table` of `fixture` and its `CREATE TABLE`: each column as `column`
/// spells it, then the primary key.
pub(crate) fn create_table(
    engine: Engine,
    schema: &str,
    fixture: &Fixture,
    column: impl Fn(&ColumnSchema) -> String,
) -> (String, String) {
    let d = &fixture.definition;
    let table = format!(
        "{}.{}",
        engine.quote(schema),
        engine.quote(d.table.as_str())
    );
    let mut columns: Vec<String> = d.columns.iter().map(column).collect();
    if !d.primary_key.is_empty() {
        let key: Vec<String> = d
            .primary_key
            .iter()
            .map(|k| engine.quote(k.as_str()))
            .collect();
        columns.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    let sql = format!("CREATE TABLE {table} ({})", columns.join(", "));
    (table, sql)
}

/// The type `engine` declares a fixture column of type `uc` with, the servers side by side;
/// `None` where it has none (the conformance suite leaves such columns out).
pub(crate) fn column_type(engine: Engine, uc: &UcType) -> Option<String> {
    let (postgresql, mariadb) = match uc {
        UcType::Boolean => ("boolean", "BIT(1)"),
        UcType::TinyInt => ("", "TINYINT"),
        UcType::SmallInt => ("smallint", "SMALLINT"),
        UcType::Int => ("integer", "INT"),
        UcType::BigInt => ("bigint", "BIGINT"),
        UcType::Float => ("real", "FLOAT"),
        UcType::Double => ("double precision", "DOUBLE"),
        UcType::String => ("text", "TEXT"),
        UcType::Binary => ("bytea", "BLOB"),
        UcType::Date => ("date", "DATE"),
        UcType::Timestamp => ("timestamptz", "TIMESTAMP(6)"),
        UcType::TimestampNtz => ("timestamp", "DATETIME(6)"),
        UcType::Decimal { precision, scale } => {
            return Some(match engine {
                Engine::Postgresql => format!("numeric({precision},{scale})"),
                Engine::Mariadb => format!("DECIMAL({precision},{scale})"),
            });
        }
        UcType::Array(item) if engine == Engine::Postgresql => {
            return Some(format!("{}[]", column_type(engine, item)?));
        }
        _ => return None,
    };
    let name = match engine {
        Engine::Postgresql => postgresql,
        Engine::Mariadb => mariadb,
    };
    (!name.is_empty()).then(|| name.to_owned())
}

/// [`column_type`], for a fixture the server can hold.
pub(crate) fn type_of(engine: Engine, uc: &UcType) -> String {
    column_type(engine, uc).unwrap_or_else(|| panic!("no {engine:?} type for {uc} in the fixtures"))
}

/// Every row of `fixture`, each value as `value` gives it.
pub(crate) fn fixture_rows<V>(
    fixture: &Fixture,
    value: impl Fn(&dyn Array, usize) -> V,
) -> Vec<Vec<V>> {
    fixture
        .batches
        .iter()
        .flat_map(|batch| {
            (0..batch.num_rows())
                .map(|row| {
                    batch
                        .columns()
                        .iter()
                        .map(|c| value(c.as_ref(), row))
                        .collect()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The sum of column 1 (INT) of a batch.
fn sum(batch: &RecordBatch) -> i64 {
    batch
        .column(1)
        .as_primitive::<Int32Type>()
        .values()
        .iter()
        .map(|v| i64::from(*v))
        .sum()
}

/// The suite every source runs, over TLS verified against the rig's CA; the columns of `people`
/// the server has no type for left out (PostgreSQL: TINYINT, MAP, STRUCT; MySQL: ARRAY, MAP,
/// STRUCT).
pub(crate) async fn the_conformance_suite<S: Server>() {
    let Some(rig) = SqlRig::get() else { return };
    let mut scratch = rig.scratch(S::ENGINE, "conformance").await;
    let suite = Suite::new(rig.database(S::ENGINE).as_str(), scratch.name());
    let people = suite.people().definition;
    let no_type: Vec<&str> = people
        .columns
        .iter()
        .filter(|c| column_type(S::ENGINE, &c.data_type).is_none())
        .map(|c| c.name.as_str())
        .collect();
    let suite = suite.leaving_out(&no_type);
    let hostile = suite.hostile();
    let hostile_schema = hostile.definition.schema.to_string();
    scratch.create(&hostile_schema).await;
    S::load(&rig, scratch.name(), &suite.people()).await;
    S::load(&rig, &hostile_schema, &hostile).await;
    suite.run_all(&source::<S>(&rig).await).await;
    scratch.remove().await;
}

/// Every mapped type, NULLs and extreme (and pre-2000) values: the Unity Catalog type each
/// column is described with, its Arrow type and every value; the second row NULL wherever the
/// table allows it.
pub(crate) async fn every_mapped_type_and_value<S: Server>() {
    let Some(rig) = SqlRig::get() else { return };
    let scratch = rig.scratch(S::ENGINE, "types").await;
    let (setup, types, not_null) = S::every_type(&S::ENGINE.quote(scratch.name()));
    rig.execute(S::ENGINE, &setup).await;
    let source = source::<S>(&rig).await;
    let request = request::<S>(&rig, scratch.name(), "t", None);
    let described = source.describe(&request).await.unwrap();
    assert_eq!(described_types(&described), types);
    let batch = read_all(&source, &request).await;
    assert_eq!(batch.num_rows(), 2);
    S::check_every_type(&described, &batch);
    // Row 2: NULL everywhere it may be.
    assert_null_everywhere_but(&batch, not_null);
    drop(source);
    scratch.remove().await;
}

/// Every table of a package comes from the snapshot taken when the source opened: a change
/// committed by another connection after the first table was read is not in the second, nor
/// in a table read at the same time; a new package sees it. Every table records the same
/// snapshot.
pub(crate) async fn all_tables_of_a_package_come_from_one_snapshot<S: Server>() {
    let Some(rig) = SqlRig::get() else { return };
    let scratch = rig.scratch(S::ENGINE, "snapshot").await;
    let s = S::ENGINE.quote(scratch.name());
    let series = S::series(scratch.name(), 1000);
    // MariaDB's consistent snapshot is InnoDB's (its default engine, named to be sure).
    let options = match S::ENGINE {
        Engine::Postgresql => "",
        Engine::Mariadb => " ENGINE = InnoDB",
    };
    let setup = format!(
        "CREATE TABLE {s}.a (k INT PRIMARY KEY, v INT){options};
         CREATE TABLE {s}.b (k INT PRIMARY KEY, v INT){options};
         INSERT INTO {s}.a SELECT n, 1 FROM {series};
         INSERT INTO {s}.b SELECT n, 1 FROM {series};"
    );
    rig.execute(S::ENGINE, &setup).await;
    let package = source::<S>(&rig).await;
    let a = package
        .describe(&request::<S>(&rig, scratch.name(), "a", None))
        .await
        .unwrap();
    let b = package
        .describe(&request::<S>(&rig, scratch.name(), "b", None))
        .await
        .unwrap();
    let first = package.read(&a).await.unwrap();
    let snapshot = first.snapshot.clone().unwrap();
    S::check_snapshot(&snapshot);
    assert_eq!(sum(&collect(first).await), 1000);
    // Another connection moves every row of both tables on, and adds rows.
    let change = format!(
        "START TRANSACTION; UPDATE {s}.a SET v = 2; UPDATE {s}.b SET v = 2;
         INSERT INTO {s}.b VALUES (5000, 2); COMMIT;"
    );
    rig.execute(S::ENGINE, &change).await;
    let second = package.read(&b).await.unwrap();
    assert_eq!(second.snapshot.as_deref(), Some(snapshot.as_str()));
    // Two reads under way at once (PostgreSQL: each on a connection of its own; MySQL: the
    // second waits for the first's connection), the same snapshot.
    let again = package.read(&a).await.unwrap();
    let (second, again) = tokio::join!(collect(second), collect(again));
    assert_eq!((second.num_rows(), sum(&second)), (1000, 1000));
    assert_eq!(sum(&again), 1000);

    let next = source::<S>(&rig).await;
    assert_ne!(next.snapshot(), snapshot);
    let b_now = read_all(&next, &request::<S>(&rig, scratch.name(), "b", None)).await;
    assert_eq!((b_now.num_rows(), sum(&b_now)), (1001, 2002));
    drop((package, next));
    scratch.remove().await;
}

/// A table of many batches arrives whole and in order, every batch full but the last; a read
/// dropped midway is stopped and leaves the package's snapshot to the next read.
pub(crate) async fn a_large_table_in_batches_and_a_dropped_read<S: Server>() {
    let Some(rig) = SqlRig::get() else { return };
    let scratch = rig.scratch(S::ENGINE, "large").await;
    let (big, rows, batch_rows) = S::large_table(scratch.name());
    rig.execute(S::ENGINE, &big).await;
    let options = SqlOptions {
        batch_rows,
        ..rig.tls_options()
    };
    let source = S::Source::connect(rig.config(S::ENGINE, options))
        .await
        .unwrap();
    let big = request::<S>(&rig, scratch.name(), "big", Some(&["id", "h"]));
    let (schema, mut stream) = source.open(&big).await.unwrap();
    assert!(matches!(stream.batches.next().await, Some(Ok(_))));
    drop(stream);
    // The dropped read's statement is stopped, not the package's transaction: a change
    // committed now is still not seen by the package's next read.
    let change = format!(
        "UPDATE {}.big SET h = 'changed'",
        S::ENGINE.quote(scratch.name())
    );
    rig.execute(S::ENGINE, &change).await;
    let batches: Vec<RecordBatch> = source.read_to_vec(&schema).await.unwrap();
    assert!(
        batches.iter().all(|b| b
            .column(1)
            .as_string::<i32>()
            .iter()
            .all(|h| h != Some("changed"))),
        "the snapshot survived the stopped read"
    );
    let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    let full: Vec<usize> = (0..rows)
        .step_by(batch_rows)
        .map(|start| batch_rows.min(rows - start))
        .collect();
    assert_eq!(sizes, full, "{rows} rows in batches of {batch_rows}");
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, (1..=rows as i64).collect::<Vec<i64>>());
    drop(source);
    scratch.remove().await;
}

/// Values a mapped type cannot hold fail the read naming the column, never quoting the value.
pub(crate) async fn values_a_type_cannot_hold_name_their_column<S: Server>() {
    let Some(rig) = SqlRig::get() else { return };
    let scratch = rig.scratch(S::ENGINE, "bad").await;
    let (setup, cases) = S::unholdable(&S::ENGINE.quote(scratch.name()));
    rig.execute(S::ENGINE, &setup).await;
    let source = source::<S>(&rig).await;
    for (table, column, want) in cases {
        let (_, stream) = source
            .open(&request::<S>(&rig, scratch.name(), table, None))
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
    scratch.remove().await;
}

/// Connection failures say what to fix: a certificate the service does not trust, a server
/// without TLS, a refused password (without the user name), an unknown database, a host not
/// on the allow-list (refused before connecting), a CA file that cannot be read.
pub(crate) async fn connection_errors_name_their_cause<S: Server>() {
    let Some(rig) = SqlRig::get() else { return };
    let connect = |options: SqlOptions| S::Source::connect(rig.config(S::ENGINE, options));
    // No rig CA: the system's roots do not sign the rig's certificate.
    let untrusted = SqlOptions {
        ca_file: None,
        ..rig.tls_options()
    };
    let e = connect(untrusted).await.err().unwrap();
    let tls_to = format!("TLS to {}://127.0.0.1:", S::ENGINE.scheme());
    assert!(
        matches!(&e, SourceError::InvalidConfig { message } if message.contains(&tls_to)
            && message.contains("PUBLISH_SQL_CA_FILE")),
        "{e}"
    );
    // Plain connections when configured.
    let mut plain = rig.config(
        S::ENGINE,
        SqlOptions {
            tls: SqlTls::Disable,
            ca_file: None,
            ..SqlOptions::default()
        },
    );
    plain.application_name = "publish-sql plain test".to_owned();
    let source = S::Source::connect(plain).await.unwrap();
    source.check().await.unwrap();
    S::check_unencrypted(&rig, "publish-sql plain test").await;
    drop(source);

    let user = rig.user(S::ENGINE);
    let mut wrong = rig.config(S::ENGINE, rig.tls_options());
    wrong.password = "not-the-password".to_owned().into();
    let e = S::Source::connect(wrong).await.err().unwrap();
    assert!(matches!(e, SourceError::Authentication { .. }), "{e:?}");
    assert!(!e.to_string().contains(user), "{e}");
    S::check_refused_password(&e);

    let mut missing = rig.config(S::ENGINE, rig.tls_options());
    missing.database = obj("no_such_database");
    let e = S::Source::connect(missing).await.err().unwrap();
    S::check_unknown_database(&e);
    assert!(!e.to_string().contains(user), "{e}");

    // A source is configured only with a host the allow-list admitted.
    let elsewhere = HostAllowList::parse(&format!("{}://db.example", S::ENGINE.scheme())).unwrap();
    let refused = elsewhere.admit(&rig.host(S::ENGINE)).unwrap_err();
    assert_eq!(refused.host, rig.host(S::ENGINE).origin());
    assert!(refused.allowed.contains("db.example"), "{refused}");

    let unreadable = SqlOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..rig.tls_options()
    };
    let e = connect(unreadable).await.err().unwrap();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}
