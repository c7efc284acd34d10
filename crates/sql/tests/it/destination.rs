//! The PostgreSQL destination against a real PostgreSQL (the SQL rig): every type read back
//! over a plain connection, the columns' types, streaming, replacement, datasets side by side,
//! claims, the lock across replicas, atomicity when PostgreSQL refuses or the connection
//! dies, leftovers, what the read-only role can and cannot do, errors without secrets.
//!
//! Each test has a database, a writer and a reader of its own (`SqlRig::pg_destination`).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DurationMicrosecondArray,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array,
    IntervalYearMonthArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Field, Schema};
use publish_columns::{UTC, arrow_schema, arrow_type, conform_columns};
use publish_sink::{
    DatabaseDestination, DatasetLoad, LoadedTable, LockedProject, SinkError, TableStats,
};
use publish_sql::test_rig::{PgDestinationRig, SqlRig};
use publish_sql::{PostgresDestination, PostgresDestinationConfig, SqlOptions, SqlTls};
use publish_types::{
    ColumnSchema, Identifier, ObjectName, ProjectName, StartTime, TableRef, TableSchema, UcType,
};
use secrecy::SecretString;
use tokio_postgres::{Client, SimpleQueryMessage};

const START: &str = "20250205_010101";
/// Table names with a double quote, which must be quoted right everywhere.
const ALL_TYPES: &str = "All\"Types";
const SECOND: &str = "Second\"Table";

/// `"schema"."table"`, quoted.
fn qualified(schema: &str, table: &str) -> String {
    format!(
        "\"{}\".\"{}\"",
        schema.replace('"', "\"\""),
        table.replace('"', "\"\"")
    )
}

fn project() -> ProjectName {
    ProjectName::parse("PR004").unwrap()
}

fn start() -> StartTime {
    StartTime::parse(START).unwrap()
}

/// The schema the reference names for `PR004`, `START` and `schema`.
fn schema_of(schema: &str) -> String {
    format!("pr004_{START}_{schema}").to_lowercase()
}

fn dataset(id: &str, schema: &str, tables: &[&str]) -> DatasetLoad {
    DatasetLoad {
        id: id.into(),
        schema_name: ObjectName::parse(schema).unwrap(),
        tables: tables
            .iter()
            .map(|t| TableRef {
                schema: ObjectName::parse(schema).unwrap(),
                table: ObjectName::parse(t).unwrap(),
            })
            .collect(),
    }
}

/// A table of `(name, Unity Catalog type, nullable)` columns and a primary key.
fn table(schema: &str, name: &str, columns: &[(&str, &str, bool)], key: &[&str]) -> TableSchema {
    TableSchema {
        catalog: ObjectName::parse("c").unwrap(),
        schema: ObjectName::parse(schema).unwrap(),
        table: ObjectName::parse(name).unwrap(),
        columns: columns
            .iter()
            .map(|(n, t, nullable)| ColumnSchema {
                name: Identifier::parse(n).unwrap(),
                data_type: UcType::parse(t).unwrap(),
                nullable: *nullable,
                comment: None,
            })
            .collect(),
        primary_key: key.iter().map(|k| Identifier::parse(k).unwrap()).collect(),
        comment: None,
    }
}

/// `kv(id BIGINT NOT NULL PRIMARY KEY, v STRING)`.
fn kv(schema: &str, name: &str) -> TableSchema {
    table(
        schema,
        name,
        &[("id", "bigint", false), ("v", "string", true)],
        &["id"],
    )
}

/// A batch of `kv` with ids `ids`, each value `<tag><id>`.
fn kv_batch(t: &TableSchema, ids: impl Iterator<Item = i64>, tag: &str) -> RecordBatch {
    let ids: Vec<i64> = ids.collect();
    let values: Vec<String> = ids.iter().map(|i| format!("{tag}{i}")).collect();
    RecordBatch::try_new(
        arrow_schema(t),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(values)),
        ],
    )
    .unwrap()
}

fn destination(rig: &PgDestinationRig) -> PostgresDestination {
    PostgresDestination::new(rig.config(rig.rig().tls_options())).unwrap()
}

/// Locks the run, retrying while a holder that was just dropped lets go.
async fn lock(dest: &PostgresDestination) -> Box<dyn LockedProject> {
    for _ in 0..20 {
        match dest.lock(&project(), &start()).await {
            Ok(l) => return l,
            Err(SinkError::Busy { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("lock: {e}"),
        }
    }
    panic!("the run stayed locked")
}

/// Loads `tables` (each with its batches) as `dataset` into `locked` and commits.
async fn load_into(
    locked: &mut dyn LockedProject,
    dataset: &DatasetLoad,
    tables: &[(&TableSchema, Vec<RecordBatch>)],
) -> Result<Vec<LoadedTable>, SinkError> {
    let mut sink = locked.load(dataset).await?;
    for (t, batches) in tables {
        let mut table = sink.begin_table(t, arrow_schema(t)).await?;
        let mut want = TableStats::default();
        for b in batches {
            want.add(b);
            table.write_batch(b.clone()).await?;
        }
        assert_eq!(table.finish().await?, want);
    }
    assert!(
        sink.finish().await?.is_empty(),
        "a database writes no files"
    );
    locked.commit().await
}

/// Locks, loads and commits one dataset.
async fn package(
    dest: &PostgresDestination,
    dataset: &DatasetLoad,
    tables: &[(&TableSchema, Vec<RecordBatch>)],
) -> Result<Vec<LoadedTable>, SinkError> {
    let mut locked = lock(dest).await;
    load_into(locked.as_mut(), dataset, tables).await
}

/// A table's rows as PostgreSQL's text, NULL as `None`.
type Rows = Vec<Vec<Option<String>>>;

/// Every row of `schema.table` as PostgreSQL's text, ordered by the first column.
async fn rows(client: &Client, schema: &str, table: &str) -> Rows {
    let sql = format!(
        "SET TimeZone = 'UTC'; SET IntervalStyle = postgres; \
         SELECT * FROM {} ORDER BY 1",
        qualified(schema, table)
    );
    client
        .simple_query(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

async fn strings(client: &Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// The relations (tables, views, sequences…) in `schema`.
async fn relations(client: &Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind NOT IN ('i') ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn load_schemas(client: &Client) -> Vec<String> {
    strings(
        client,
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE '\\_publish\\_load\\_%' ORDER BY 1",
    )
    .await
}

/// Waits (up to 10 s) until no private load schema is left: background work.
async fn no_load_schemas_left(client: &Client, what: &str) {
    for _ in 0..100 {
        if load_schemas(client).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{what}: private schemas left after 10 s: {:?}",
        load_schemas(client).await
    );
}

/// Asserts that `a` and `b` of `schema` hold exactly `before`, and nothing else is there.
async fn assert_unchanged(admin: &Client, schema: &str, before: &(Rows, Rows)) {
    assert_eq!(
        (
            rows(admin, schema, "a").await,
            rows(admin, schema, "b").await
        ),
        *before,
        "the previous tables, row for row"
    );
    assert_eq!(relations(admin, schema).await, ["a", "b"]);
}

fn nested(uc: &str, json: &[Option<&str>]) -> ArrayRef {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "x",
        arrow_type(&UcType::parse(uc).unwrap()),
        true,
    )]));
    let text: ArrayRef = Arc::new(StringArray::from(json.to_vec()));
    Arc::clone(
        conform_columns(&[text], json.len(), &schema)
            .unwrap()
            .column(0),
    )
}

/// Every Unity Catalog type: the column types exactly as the type table says, NOT NULL and
/// the primary key present, and every value — NaN, ±infinity, −0.0, the largest decimals,
/// dates and timestamps before 2000 and at PostgreSQL's ends, NULLs, nested values as jsonb —
/// read back over a plain connection.
#[tokio::test]
async fn every_type_and_value_round_trips() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_types").await;
    let dest = destination(&rig);
    let columns: &[(&str, &str, bool)] = &[
        ("id", "bigint", false),
        ("b", "boolean", true),
        ("ti", "tinyint", true),
        ("si", "smallint", true),
        ("i", "int", false),
        ("f", "float", true),
        ("d", "double", true),
        ("dec", "decimal(38,10)", true),
        ("dec0", "decimal(38,0)", true),
        ("dec2", "decimal(5,2)", true),
        ("s", "string", true),
        ("c", "char(3)", true),
        ("v", "varchar(10)", true),
        ("bin", "binary", true),
        ("dt", "date", true),
        ("ts", "timestamp", true),
        ("tsn", "timestamp_ntz", true),
        ("arr", "array<int>", true),
        ("m", "map<string,int>", true),
        ("st", "struct<a:int,b:string>", true),
        ("iym", "interval year to month", true),
        ("ids", "interval day to second", true),
        ("var", "variant", true),
        ("geo", "geography(4326)", true),
        ("Mixed Case \"q\"", "string", true),
    ];
    let mut t = table("Cohort", ALL_TYPES, columns, &["id", "i"]);
    // Comments are kept, quoted (a NUL, which no text can hold, dropped).
    t.comment = Some("it's a \"table\" \\ with\0 nul".into());
    t.columns[10].comment = Some("a 'string'".into());
    let max = 10i128.pow(38) - 1;
    let batch = RecordBatch::try_new(
        arrow_schema(&t),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
            ])),
            Arc::new(Int8Array::from(vec![Some(127), Some(-128), None, Some(0)])),
            Arc::new(Int16Array::from(vec![
                Some(32767),
                Some(-32768),
                None,
                Some(0),
            ])),
            Arc::new(Int32Array::from(vec![i32::MAX, i32::MIN, 0, 7])),
            Arc::new(Float32Array::from(vec![
                Some(f32::NAN),
                Some(-0.0),
                None,
                Some(1.5),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY),
                None,
                Some(0.1),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(max), Some(-max), None, Some(1)])
                    .with_precision_and_scale(38, 10)
                    .unwrap(),
            ),
            Arc::new(
                Decimal128Array::from(vec![Some(-max), Some(0), None, Some(12345)])
                    .with_precision_and_scale(38, 0)
                    .unwrap(),
            ),
            Arc::new(
                Decimal128Array::from(vec![Some(99999), Some(-1), None, Some(0)])
                    .with_precision_and_scale(5, 2)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec![
                Some("ünï \"q\" 'x' \\ tab\t"),
                Some(""),
                None,
                Some("plain"),
            ])),
            Arc::new(StringArray::from(vec![
                Some("ab "),
                Some(""),
                None,
                Some("c"),
            ])),
            Arc::new(StringArray::from(vec![
                Some("varchar"),
                Some(""),
                None,
                Some("v"),
            ])),
            Arc::new(BinaryArray::from(vec![
                Some(&[0u8, 255, 16][..]),
                Some(&[][..]),
                None,
                Some(&b"\\x"[..]),
            ])),
            // 0001-01-01, 9999-12-31, NULL, 1969-07-20.
            Arc::new(Date32Array::from(vec![
                Some(-719_162),
                Some(2_932_896),
                None,
                Some(-165),
            ])),
            // 1900-01-01 00:00 UTC, 9999-12-31 23:59:59.999999 UTC, NULL, 2000-01-01 UTC.
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(-2_208_988_800_000_000),
                    Some(253_402_300_799_999_999),
                    None,
                    Some(946_684_800_000_000),
                ])
                .with_timezone(UTC),
            ),
            // 1999-12-31 23:59:59.999999, 0001-01-01 00:00, NULL, 4713-11-24 BC.
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(946_684_799_999_999),
                Some(-62_135_596_800_000_000),
                None,
                Some(-211_813_488_000_000_000 + 946_684_800_000_000),
            ])),
            nested(
                "array<int>",
                &[Some("[1,null,3]"), Some("[]"), None, Some("[7]")],
            ),
            nested(
                "map<string,int>",
                &[
                    Some(r#"{"a":1,"b":null}"#),
                    Some("{}"),
                    None,
                    Some(r#"{"é":2}"#),
                ],
            ),
            nested(
                "struct<a:int,b:string>",
                &[
                    Some(r#"{"a":1,"b":"x"}"#),
                    Some(r#"{"a":null,"b":null}"#),
                    None,
                    Some(r#"{"a":-1,"b":"\"q\""}"#),
                ],
            ),
            Arc::new(IntervalYearMonthArray::from(vec![
                Some(14),
                Some(-1),
                None,
                Some(0),
            ])),
            Arc::new(DurationMicrosecondArray::from(vec![
                Some(93_784_000_005),
                Some(-1),
                None,
                Some(-90_000_000_000),
            ])),
            Arc::new(StringArray::from(vec![
                Some(r#"{"v": 1}"#),
                Some("null"),
                None,
                Some("[]"),
            ])),
            Arc::new(StringArray::from(vec![
                Some("POINT(1 2)"),
                Some(""),
                None,
                Some("x"),
            ])),
            Arc::new(StringArray::from(vec![Some("m"), None, None, Some("n")])),
        ],
    )
    .unwrap();
    let ds = dataset("cohort", "Cohort", &[ALL_TYPES]);
    let schema = dest.plan(&project(), &start(), &ds).unwrap();
    assert_eq!(schema, "pr004_20250205_010101_cohort");
    let loaded = package(&dest, &ds, &[(&t, vec![batch])]).await.unwrap();
    assert_eq!(
        loaded,
        [LoadedTable {
            schema: schema.clone(),
            table: ALL_TYPES.into(),
            dataset: "cohort".into(),
            rows: 4,
        }]
    );

    let admin = rig.admin().await;
    let types: Vec<String> = admin
        .query(
            "SELECT a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod) || \
               CASE WHEN a.attnotnull THEN ' not null' ELSE '' END \
             FROM pg_attribute a WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass \
               AND a.attnum > 0 ORDER BY a.attnum",
            &[&schema, &ALL_TYPES],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        types,
        [
            "id bigint not null",
            "b boolean",
            "ti smallint",
            "si smallint",
            "i integer not null",
            "f real",
            "d double precision",
            "dec numeric(38,10)",
            "dec0 numeric(38,0)",
            "dec2 numeric(5,2)",
            "s text",
            "c text",
            "v text",
            "bin bytea",
            "dt date",
            "ts timestamp with time zone",
            "tsn timestamp without time zone",
            "arr jsonb",
            "m jsonb",
            "st jsonb",
            "iym interval",
            "ids interval",
            "var text",
            "geo text",
            "Mixed Case \"q\" text",
        ]
    );
    // The same strings publish-columns' table gives (the one owner of the mapping).
    for (column, want) in t.columns.iter().zip(&types) {
        let pg = publish_columns::PgType::of(&column.data_type).sql();
        assert!(want.starts_with(&format!("{} {pg}", column.name)), "{want}");
    }
    let key = strings(
        &admin,
        &format!(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = format('%I.%I', '{schema}', '{}')::regclass AND i.indisprimary \
             ORDER BY k.ord",
            ALL_TYPES.replace('\'', "''")
        ),
    )
    .await;
    assert_eq!(key, ["id", "i"]);

    let got = rows(&admin, &schema, ALL_TYPES).await;
    let s = |v: &str| Some(v.to_owned());
    let want: Vec<Vec<Option<String>>> = vec![
        vec![
            s("1"),
            s("t"),
            s("127"),
            s("32767"),
            s("2147483647"),
            s("NaN"),
            s("Infinity"),
            s("9999999999999999999999999999.9999999999"),
            s("-99999999999999999999999999999999999999"),
            s("999.99"),
            s("ünï \"q\" 'x' \\ tab\t"),
            s("ab "),
            s("varchar"),
            s("\\x00ff10"),
            s("0001-01-01"),
            s("1900-01-01 00:00:00+00"),
            s("1999-12-31 23:59:59.999999"),
            s("[1, null, 3]"),
            s(r#"{"a": 1, "b": null}"#),
            s(r#"{"a": 1, "b": "x"}"#),
            s("1 year 2 mons"),
            s("1 day 02:03:04.000005"),
            s(r#"{"v": 1}"#),
            s("POINT(1 2)"),
            s("m"),
        ],
        vec![
            s("2"),
            s("f"),
            s("-128"),
            s("-32768"),
            s("-2147483648"),
            s("-0"),
            s("-Infinity"),
            s("-9999999999999999999999999999.9999999999"),
            s("0"),
            s("-0.01"),
            s(""),
            s(""),
            s(""),
            s("\\x"),
            s("9999-12-31"),
            s("9999-12-31 23:59:59.999999+00"),
            s("0001-01-01 00:00:00"),
            s("[]"),
            s("{}"),
            s(r#"{"a": null, "b": null}"#),
            s("-1 mons"),
            s("-00:00:00.000001"),
            s("null"),
            s(""),
            None,
        ],
        vec![
            s("3"),
            None,
            None,
            None,
            s("0"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ],
        vec![
            s("4"),
            s("t"),
            s("0"),
            s("0"),
            s("7"),
            s("1.5"),
            s("0.1"),
            s("0.0000000001"),
            s("12345"),
            s("0.00"),
            s("plain"),
            s("c"),
            s("v"),
            s("\\x5c78"),
            s("1969-07-20"),
            s("2000-01-01 00:00:00+00"),
            s("4714-11-24 00:00:00 BC"),
            s("[7]"),
            s(r#"{"é": 2}"#),
            s(r#"{"a": -1, "b": "\"q\""}"#),
            s("00:00:00"),
            s("-1 days -01:00:00"),
            s("[]"),
            s("x"),
            s("n"),
        ],
    ];
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        for (c, ((gv, wv), (name, _, _))) in g.iter().zip(w).zip(columns).enumerate() {
            assert_eq!(gv, wv, "row {i}, column {c} `{name}`");
        }
    }
    assert_eq!(got.len(), want.len());
    // Floats bit for bit: −0.0 keeps its sign, NaN is NaN.
    let bits: (f32, f32) = {
        let row = admin
            .query_one(
                &format!(
                    "SELECT (SELECT f FROM {t} WHERE id = 2), (SELECT f FROM {t} WHERE id = 1)",
                    t = qualified(&schema, ALL_TYPES)
                ),
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(bits.0 == 0.0 && bits.0.is_sign_negative());
    assert!(bits.1.is_nan());
    let comments = admin
        .query_one(
            "SELECT obj_description(c.oid, 'pg_class'), col_description(c.oid, 11) \
             FROM pg_class c WHERE c.oid = format('%I.%I', $1::text, $2::text)::regclass",
            &[&schema, &ALL_TYPES],
        )
        .await
        .unwrap();
    assert_eq!(
        (comments.get::<_, String>(0), comments.get::<_, String>(1)),
        (
            "it's a \"table\" \\ with nul".to_owned(),
            "a 'string'".to_owned()
        )
    );
    // Nothing else in the researchers' schema.
    assert_eq!(relations(&admin, &schema).await, [ALL_TYPES]);
    drop(admin);
    rig.remove().await;
}

/// A table of many batches, and one of 300 000 rows, arrive whole and in order: the load is
/// streamed (bounded batches in, a bounded buffer to the connection), never gathered.
#[tokio::test]
async fn many_batches_and_a_large_table_stream() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_large").await;
    let dest = destination(&rig);
    let big = table(
        "s",
        "big",
        &[
            ("id", "bigint", false),
            ("h", "string", true),
            ("x", "double", true),
        ],
        &["id"],
    );
    let batches: Vec<RecordBatch> = (0..30)
        .map(|b| {
            let ids: Vec<i64> = (b * 10_000..(b + 1) * 10_000).collect();
            RecordBatch::try_new(
                arrow_schema(&big),
                vec![
                    Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
                    Arc::new(StringArray::from(
                        ids.iter()
                            .map(|i| format!("row {i} {}", "x".repeat((i % 50) as usize)))
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(Float64Array::from(
                        ids.iter().map(|i| *i as f64 * 0.5).collect::<Vec<_>>(),
                    )),
                ],
            )
            .unwrap()
        })
        .collect();
    let small = kv("s", "small");
    let pieces = vec![
        kv_batch(&small, 0..1, "a"),
        kv_batch(&small, 1..1, "a"),
        kv_batch(&small, 1..500, "b"),
        kv_batch(&small, 500..501, "c"),
    ];
    let loaded = package(
        &dest,
        &dataset("d", "s", &["big", "small"]),
        &[(&big, batches), (&small, pieces)],
    )
    .await
    .unwrap();
    assert_eq!(
        loaded.iter().map(|t| t.rows).collect::<Vec<_>>(),
        [300_000, 501]
    );
    let admin = rig.admin().await;
    let schema = schema_of("s");
    let row = admin
        .query_one(
            &format!(
                "SELECT count(*), sum(id)::bigint, sum(length(h))::bigint, sum(x), \
                   bool_and(h = 'row ' || id || ' ' || repeat('x', (id % 50)::int)) \
                 FROM \"{schema}\".big"
            ),
            &[],
        )
        .await
        .unwrap();
    let n: i64 = 300_000;
    assert_eq!(row.get::<_, i64>(0), n);
    assert_eq!(row.get::<_, i64>(1), n * (n - 1) / 2);
    assert_eq!(row.get::<_, f64>(3), (n * (n - 1) / 2) as f64 * 0.5);
    assert!(row.get::<_, bool>(4), "every value in its row");
    let small_rows = rows(&admin, &schema, "small").await;
    assert_eq!(small_rows.len(), 501);
    assert_eq!(small_rows[500][1].as_deref(), Some("c500"));
    drop(admin);
    rig.remove().await;
}

/// Packaging a dataset again replaces its tables: a table it no longer loads is dropped, a
/// table it loads again has only the new rows; `tables` lists what is there.
#[tokio::test]
async fn packaging_again_replaces_the_dataset() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_replace").await;
    let dest = destination(&rig);
    let (a, b) = (kv("s", "a"), kv("s", "b"));
    package(
        &dest,
        &dataset("d", "s", &["a", "b"]),
        &[
            (&a, vec![kv_batch(&a, 0..10, "old")]),
            (&b, vec![kv_batch(&b, 0..5, "old")]),
        ],
    )
    .await
    .unwrap();
    package(
        &dest,
        &dataset("d", "s", &["a"]),
        &[(&a, vec![kv_batch(&a, 100..103, "new")])],
    )
    .await
    .unwrap();
    let admin = rig.admin().await;
    let schema = schema_of("s");
    assert_eq!(relations(&admin, &schema).await, ["a"]);
    // Autovacuum, off while the table was private, is on again once it is committed.
    let options: Option<Vec<String>> = admin
        .query_one(
            "SELECT c.reloptions FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'a'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        options, None,
        "no storage option is left on a committed table"
    );
    assert_eq!(
        rows(&admin, &schema, "a").await,
        (100..103)
            .map(|i| vec![Some(i.to_string()), Some(format!("new{i}"))])
            .collect::<Vec<_>>()
    );
    let mut locked = lock(&dest).await;
    assert_eq!(
        locked.tables().await.unwrap(),
        [LoadedTable {
            schema: schema.clone(),
            table: "a".into(),
            dataset: "d".into(),
            rows: 3
        }]
    );
    drop(locked);
    drop(admin);
    rig.remove().await;
}

/// Datasets of one run coexist, each in its schema; two sharing a schema each replace only
/// their own tables; a table another dataset loaded is refused before anything is written;
/// `tables` lists every dataset's tables, sorted.
#[tokio::test]
async fn datasets_of_one_run_coexist_and_claim_their_tables() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_datasets").await;
    let dest = destination(&rig);
    let (t1, t2, t3, other) = (kv("s", "t1"), kv("s", "t2"), kv("s", "t3"), kv("s2", "t1"));
    package(
        &dest,
        &dataset("first", "s", &["t1", "t2"]),
        &[
            (&t1, vec![kv_batch(&t1, 0..3, "f")]),
            (&t2, vec![kv_batch(&t2, 0..3, "f")]),
        ],
    )
    .await
    .unwrap();
    package(
        &dest,
        &dataset("second", "s2", &["t1"]),
        &[(&other, vec![kv_batch(&other, 0..4, "s")])],
    )
    .await
    .unwrap();
    package(
        &dest,
        &dataset("third", "s", &["t3"]),
        &[(&t3, vec![kv_batch(&t3, 0..5, "t")])],
    )
    .await
    .unwrap();
    // A fourth wants t1 of schema s (in another case): the first dataset's.
    let mut locked = lock(&dest).await;
    let claim = match locked.load(&dataset("fourth", "s", &["t9", "T1"])).await {
        Ok(_) => panic!("a claimed table was accepted"),
        Err(e) => e,
    };
    match &claim {
        SinkError::TableClaimed {
            table,
            dataset,
            claimed_by,
        } => {
            assert_eq!(
                (table.as_str(), dataset.as_str(), claimed_by.as_str()),
                ("s.T1", "fourth", "first")
            );
        }
        other => panic!("{other:?}"),
    }
    // The first packaged again with t1 only: t2 goes, the third's t3 in the same schema stays.
    load_into(
        locked.as_mut(),
        &dataset("first", "s", &["t1"]),
        &[(&t1, vec![kv_batch(&t1, 0..1, "g")])],
    )
    .await
    .unwrap();
    let names: Vec<String> = locked
        .tables()
        .await
        .unwrap()
        .iter()
        .map(|t| format!("{} {} {}", t.qualified_name(), t.dataset, t.rows))
        .collect();
    assert_eq!(
        names,
        [
            format!("{}.t1 first 1", schema_of("s")),
            format!("{}.t3 third 5", schema_of("s")),
            format!("{}.t1 second 4", schema_of("s2")),
        ]
    );
    drop(locked);
    let admin = rig.admin().await;
    assert_eq!(relations(&admin, &schema_of("s")).await, ["t1", "t3"]);
    assert_eq!(relations(&admin, &schema_of("s2")).await, ["t1"]);
    assert!(load_schemas(&admin).await.is_empty());
    drop(admin);
    rig.remove().await;
}

/// The run's lock is held in the database: a second destination (another replica) gets
/// `Busy`, another run is not held up, and the lock is free again once the holder is dropped.
#[tokio::test]
async fn the_lock_reaches_every_replica() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_lock").await;
    let (one, two) = (destination(&rig), destination(&rig));
    let held = lock(&one).await;
    let started = std::time::Instant::now();
    match two.lock(&project(), &start()).await {
        Err(SinkError::Busy { project, start }) => {
            assert_eq!((project.as_str(), start.as_str()), ("PR004", START));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("two replicas held one run's lock"),
    }
    assert!(started.elapsed() >= PostgresDestination::LOCK_GRACE);
    assert!(matches!(
        one.lock(&project(), &start()).await,
        Err(SinkError::Busy { .. })
    ));
    let other = two
        .lock(&project(), &StartTime::parse("20250205_010102").unwrap())
        .await
        .unwrap();
    drop(held);
    // Released when the connection closes, which the grace covers.
    let again = two.lock(&project(), &start()).await.unwrap();
    drop((other, again));
    rig.remove().await;
}

/// A load PostgreSQL refuses halfway (a duplicate primary key, a value jsonb refuses), or
/// whose connection is killed, or whose commit fails, leaves every visible table as it was,
/// row for row; the next lock of the run removes what the killed one left.
#[tokio::test]
async fn a_failed_load_leaves_the_previous_tables() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_atomic").await;
    let dest = destination(&rig);
    let (a, b) = (kv("s", "a"), kv("s", "b"));
    let ds = dataset("d", "s", &["a", "b"]);
    package(
        &dest,
        &ds,
        &[
            (&a, vec![kv_batch(&a, 0..1000, "v1-")]),
            (&b, vec![kv_batch(&b, 0..10, "v1-")]),
        ],
    )
    .await
    .unwrap();
    let admin = rig.admin().await;
    let schema = schema_of("s");
    let before = (
        rows(&admin, &schema, "a").await,
        rows(&admin, &schema, "b").await,
    );

    // 1. b's key is duplicated: PostgreSQL refuses its primary key once its rows are in.
    let mut locked = lock(&dest).await;
    let e = load_into(
        locked.as_mut(),
        &ds,
        &[
            (&a, vec![kv_batch(&a, 0..5000, "v2-")]),
            (&b, vec![kv_batch(&b, [1, 2, 2, 3].into_iter(), "v2-")]),
        ],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, SinkError::Database { operation, message }
            if operation.contains("primary key of `b`") && message.contains("23505")
                && !message.contains("(id)=")),
        "{e:?}"
    );
    assert!(matches!(locked.commit().await, Err(SinkError::Failed)));
    drop(locked);
    assert_unchanged(&admin, &schema, &before).await;

    // 2. A value jsonb refuses (a NUL escape) in the middle of a COPY: the column is named.
    let j = table(
        "s",
        "b",
        &[("id", "bigint", false), ("doc", "struct<t:string>", true)],
        &[],
    );
    let docs = RecordBatch::try_new(
        arrow_schema(&j),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            nested(
                "struct<t:string>",
                &[Some(r#"{"t":"fine"}"#), Some(r#"{"t":"nul \u0000 here"}"#)],
            ),
        ],
    )
    .unwrap();
    let mut locked = lock(&dest).await;
    let e = load_into(locked.as_mut(), &ds, &[(&j, vec![docs])])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Database { message, .. }
            if message.contains("column `doc`") && !message.contains("nul ")),
        "{e:?}"
    );
    drop(locked);
    assert_unchanged(&admin, &schema, &before).await;

    // 3. The connection is killed in the middle of a table.
    let mut locked = lock(&dest).await;
    {
        let mut sink = locked.load(&ds).await.unwrap();
        let mut t = sink.begin_table(&a, arrow_schema(&a)).await.unwrap();
        t.write_batch(kv_batch(&a, 0..20_000, "v3-")).await.unwrap();
        let killed: bool = admin
            .query_one(
                "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE usename = $1 AND pid <> pg_backend_pid()",
                &[&rig.writer],
            )
            .await
            .unwrap()
            .get(0);
        assert!(killed);
        let mut result = Ok(());
        for i in 0..50 {
            result = t
                .write_batch(kv_batch(
                    &a,
                    20_000 + i * 1000..20_000 + (i + 1) * 1000,
                    "v3-",
                ))
                .await;
            if result.is_err() {
                break;
            }
        }
        let e = match result {
            Err(e) => e,
            Ok(()) => t.finish().await.unwrap_err(),
        };
        assert!(matches!(e, SinkError::Database { .. }), "{e:?}");
    }
    drop(locked);
    assert_unchanged(&admin, &schema, &before).await;
    // Its private schema outlived it (the connection was gone); the next lock removes it.
    assert_eq!(load_schemas(&admin).await.len(), 1);
    let locked = lock(&dest).await;
    assert!(load_schemas(&admin).await.is_empty());
    drop(locked);

    // 4. The commit itself fails (a view of a researcher's depends on b): rolled back whole,
    //    although a was already replaced inside the transaction.
    admin
        .batch_execute(&format!(
            "CREATE VIEW \"{schema}\".bv AS SELECT * FROM \"{schema}\".b"
        ))
        .await
        .unwrap();
    let e = package(
        &dest,
        &ds,
        &[
            (&a, vec![kv_batch(&a, 0..7, "v4-")]),
            (&b, vec![kv_batch(&b, 0..7, "v4-")]),
        ],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, SinkError::Database { operation, .. } if operation.contains("committing")),
        "{e:?}"
    );
    admin
        .batch_execute(&format!("DROP VIEW \"{schema}\".bv"))
        .await
        .unwrap();
    assert_unchanged(&admin, &schema, &before).await;
    no_load_schemas_left(&admin, "the failed commit").await;
    let mut locked = lock(&dest).await;
    assert_eq!(
        locked
            .tables()
            .await
            .unwrap()
            .iter()
            .map(|t| (t.table.as_str(), t.rows))
            .collect::<Vec<_>>(),
        [("a", 1000), ("b", 10)]
    );
    drop(locked);
    drop(admin);
    rig.remove().await;
}

/// What interrupted loads leave — a private schema of a killed process, one made by hand with
/// the run's prefix — is removed by the next lock of the run, and only that run's; a sink or
/// locked project dropped mid-load removes its own at once.
#[tokio::test]
async fn leftovers_are_removed_and_dropped_loads_discarded() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_leftovers").await;
    let dest = destination(&rig);
    let admin = rig.admin().await;
    let a = kv("s", "a");
    let ds = dataset("d", "s", &["a"]);

    // A sink dropped mid-table: its schema goes at once, the lock still held.
    let mut locked = lock(&dest).await;
    let prefix = {
        let mut sink = locked.load(&ds).await.unwrap();
        let mut t = sink.begin_table(&a, arrow_schema(&a)).await.unwrap();
        t.write_batch(kv_batch(&a, 0..100, "x")).await.unwrap();
        let names = load_schemas(&admin).await;
        assert_eq!(names.len(), 1, "{names:?}");
        let name = &names[0];
        name[..name.rfind('_').unwrap() + 1].to_owned()
    };
    no_load_schemas_left(&admin, "the dropped sink").await;
    // A locked project dropped with a finished load it did not commit.
    {
        let mut sink = locked.load(&ds).await.unwrap();
        let t = sink.begin_table(&a, arrow_schema(&a)).await.unwrap();
        t.finish().await.unwrap();
        sink.finish().await.unwrap();
    }
    assert_eq!(load_schemas(&admin).await.len(), 1);
    drop(locked);
    no_load_schemas_left(&admin, "the dropped locked project").await;

    // Leftovers: made as the writer, as a killed load would have; one of another run.
    let writer = rig.connect_as(&rig.writer, &rig.writer_password).await;
    let other_run = "_publish_load_0000000000000000_abc";
    writer
        .batch_execute(&format!(
            "CREATE SCHEMA \"{prefix}deadbeef\"; CREATE TABLE \"{prefix}deadbeef\".a (i int); \
             CREATE SCHEMA \"{prefix}handmade\"; CREATE SCHEMA \"{other_run}\";"
        ))
        .await
        .unwrap();
    assert_eq!(load_schemas(&admin).await.len(), 3);
    let locked = lock(&dest).await;
    assert_eq!(load_schemas(&admin).await, [other_run]);
    drop((locked, writer, admin));
    rig.remove().await;
}

/// The read-only role can read every committed table and do nothing else: no other table,
/// not the bookkeeping, no writing, no creating; nothing but the requested tables is in the
/// researchers' schemas. When the reader is the writer, nothing is granted.
#[tokio::test]
async fn the_reader_reads_exactly_the_loaded_tables() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_reader").await;
    let dest = destination(&rig);
    let (t1, t2, t3) = (kv("s", "t1"), kv("s", SECOND), kv("s2", "t3"));
    package(
        &dest,
        &dataset("one", "s", &["t1", SECOND]),
        &[
            (&t1, vec![kv_batch(&t1, 0..3, "x")]),
            (&t2, vec![kv_batch(&t2, 0..4, "y")]),
        ],
    )
    .await
    .unwrap();
    package(
        &dest,
        &dataset("two", "s2", &["t3"]),
        &[(&t3, vec![kv_batch(&t3, 0..5, "z")])],
    )
    .await
    .unwrap();
    let admin = rig.admin().await;
    // A table the writer made itself in the schema: not granted.
    admin
        .batch_execute(&format!(
            "CREATE TABLE \"{}\".private (i int); ALTER TABLE \"{}\".private OWNER TO \"{}\"",
            schema_of("s"),
            schema_of("s"),
            rig.writer
        ))
        .await
        .unwrap();
    let reader = rig.connect_as(&rig.reader, &rig.reader_password).await;
    for (schema, table, n) in [
        (schema_of("s"), "t1", 3i64),
        (schema_of("s"), SECOND, 4),
        (schema_of("s2"), "t3", 5),
    ] {
        let count: i64 = reader
            .query_one(
                &format!("SELECT count(*) FROM {}", qualified(&schema, table)),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("reading {schema}.{table}: {e}"))
            .get(0);
        assert_eq!(count, n);
    }
    let s = schema_of("s");
    for sql in [
        format!("SELECT * FROM \"{s}\".private"),
        format!("INSERT INTO \"{s}\".t1 VALUES (99, 'no')"),
        format!("DELETE FROM \"{s}\".t1"),
        format!("CREATE TABLE \"{s}\".mine (i int)"),
        format!("DROP TABLE \"{s}\".t1"),
        "SELECT * FROM publish_service.loaded_tables".to_owned(),
        "CREATE SCHEMA mine".to_owned(),
    ] {
        let e = reader
            .batch_execute(&sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("the reader could: {sql}"));
        let code = e.as_db_error().map(|d| d.code().code().to_owned());
        assert!(
            matches!(code.as_deref(), Some("42501" | "42P01")),
            "{sql}: {e}"
        );
    }
    // The reader has USAGE on exactly the researchers' schemas.
    let usable = strings(
        &reader,
        "SELECT nspname::text FROM pg_namespace WHERE has_schema_privilege(oid, 'USAGE') \
         AND nspname NOT IN ('pg_catalog', 'information_schema', 'public') \
         AND nspname NOT LIKE 'pg\\_%' ORDER BY 1",
    )
    .await;
    assert_eq!(usable, [schema_of("s"), schema_of("s2")]);
    admin
        .batch_execute(&format!("DROP TABLE \"{s}\".private"))
        .await
        .unwrap();
    assert_eq!(relations(&admin, &s).await, [SECOND, "t1"]);
    drop(reader);

    // The reader is the writer: the commit grants nothing.
    let mut config = rig.config(rig.rig().tls_options());
    config.reader_role = rig.writer.clone();
    let same = PostgresDestination::new(config).unwrap();
    let t4 = kv("s3", "t4");
    package(
        &same,
        &dataset("three", "s3", &["t4"]),
        &[(&t4, vec![kv_batch(&t4, 0..1, "w")])],
    )
    .await
    .unwrap();
    let acl: Option<String> = admin
        .query_one(
            &format!(
                "SELECT relacl::text FROM pg_class WHERE oid = '\"{}\".t4'::regclass",
                schema_of("s3")
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(acl, None, "nothing granted");
    drop(admin);
    rig.remove().await;
}

/// The sink's protocol: a schema other than the canonical one, a NULL in a NOT NULL column, a
/// table twice, a table the dataset did not declare, a column name over 63 bytes and an
/// abandoned table each fail the load (and the sink after them); a load not finished, or none,
/// cannot be committed, nor one twice.
#[tokio::test]
async fn the_sink_protocol() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_protocol").await;
    let dest = destination(&rig);
    let a = kv("s", "a");
    let ds = dataset("d", "s", &["a", "b"]);
    let mut locked = lock(&dest).await;
    assert!(matches!(locked.commit().await, Err(SinkError::Failed)));

    // A column of another Arrow type.
    {
        let mut sink = locked.load(&ds).await.unwrap();
        let wrong = Arc::new(Schema::new(vec![
            Field::new("id", arrow::datatypes::DataType::Int32, false),
            Field::new("v", arrow::datatypes::DataType::Utf8, true),
        ]));
        let e = sink.begin_table(&a, wrong).await.err().unwrap();
        assert!(
            matches!(&e, SinkError::SchemaMismatch { detail, .. } if detail.contains("`id`")),
            "{e:?}"
        );
        assert!(matches!(
            sink.begin_table(&a, arrow_schema(&a)).await.err(),
            Some(SinkError::Failed)
        ));
    }
    // A NULL in a NOT NULL column.
    {
        let mut sink = locked.load(&ds).await.unwrap();
        let mut t = sink.begin_table(&a, arrow_schema(&a)).await.unwrap();
        let nullable = Arc::new(Schema::new(
            arrow_schema(&a)
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let bad = RecordBatch::try_new(
            nullable,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .unwrap();
        let e = t.write_batch(bad).await.unwrap_err();
        assert!(
            matches!(&e, SinkError::NullInNotNull { column, .. } if column == "id"),
            "{e:?}"
        );
        assert!(matches!(t.finish().await, Err(SinkError::Failed)));
        assert!(matches!(sink.finish().await, Err(SinkError::Failed)));
    }
    assert!(matches!(locked.commit().await, Err(SinkError::Failed)));
    // A table twice; a table not declared; a column name PostgreSQL would cut short.
    {
        let mut sink = locked.load(&ds).await.unwrap();
        sink.begin_table(&a, arrow_schema(&a))
            .await
            .unwrap()
            .finish()
            .await
            .unwrap();
        let again = kv("s", "A");
        assert!(matches!(
            sink.begin_table(&again, arrow_schema(&again)).await.err(),
            Some(SinkError::TableExists { .. })
        ));
    }
    {
        let mut sink = locked.load(&ds).await.unwrap();
        let c = kv("s", "c");
        assert!(matches!(
            sink.begin_table(&c, arrow_schema(&c)).await.err(),
            Some(SinkError::SchemaMismatch { .. })
        ));
    }
    {
        let mut sink = locked.load(&ds).await.unwrap();
        let long = "c".repeat(64);
        let b = table("s", "b", &[(&long, "int", true)], &[]);
        let e = sink.begin_table(&b, arrow_schema(&b)).await.err().unwrap();
        assert!(
            matches!(&e, SinkError::InvalidName { what: "column", name, detail }
                if *name == long && detail.contains("63 bytes")),
            "{e:?}"
        );
    }
    // An abandoned table.
    {
        let mut sink = locked.load(&ds).await.unwrap();
        let mut t = sink.begin_table(&a, arrow_schema(&a)).await.unwrap();
        t.write_batch(kv_batch(&a, 0..10, "x")).await.unwrap();
        t.abandon();
        let b = kv("s", "b");
        assert!(matches!(
            sink.begin_table(&b, arrow_schema(&b)).await.err(),
            Some(SinkError::Failed)
        ));
        assert!(matches!(sink.finish().await, Err(SinkError::Failed)));
    }
    assert!(matches!(locked.commit().await, Err(SinkError::Failed)));
    // A good one commits once.
    load_into(locked.as_mut(), &ds, &[(&a, vec![kv_batch(&a, 0..2, "x")])])
        .await
        .unwrap();
    assert!(matches!(locked.commit().await, Err(SinkError::Failed)));
    drop(locked);
    let admin = rig.admin().await;
    assert_eq!(relations(&admin, &schema_of("s")).await, ["a"]);
    no_load_schemas_left(&admin, "the discarded loads").await;
    drop(admin);
    rig.remove().await;
}

/// Values a PostgreSQL type cannot hold fail naming the column, never the value.
#[tokio::test]
async fn values_postgresql_cannot_hold_name_their_column() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_values").await;
    let dest = destination(&rig);
    let cases: Vec<(&str, &str, ArrayRef, &str)> = vec![
        (
            "string",
            "Secret Text",
            Arc::new(StringArray::from(vec!["visible", "nul\0hidden"])),
            "NUL",
        ),
        (
            "decimal(5,2)",
            "amount",
            Arc::new(
                Decimal128Array::from(vec![1, 123_456_789])
                    .with_precision_and_scale(5, 2)
                    .unwrap(),
            ),
            "numeric(5,2)",
        ),
        (
            "date",
            "day",
            Arc::new(Date32Array::from(vec![0, i32::MIN])),
            "date outside",
        ),
        (
            "timestamp",
            "at",
            Arc::new(TimestampMicrosecondArray::from(vec![0, i64::MIN]).with_timezone(UTC)),
            "timestamp outside",
        ),
        (
            "timestamp_ntz",
            "at",
            // A microsecond before 4713-11-24 BC, PostgreSQL's first.
            Arc::new(TimestampMicrosecondArray::from(vec![
                0,
                -211_813_488_000_000_000 + 946_684_800_000_000 - 1,
            ])),
            "timestamp outside",
        ),
    ];
    let mut locked = lock(&dest).await;
    for (uc, column, array, want) in cases {
        let t = table("s", "t", &[(column, uc, true)], &[]);
        let batch = RecordBatch::try_new(arrow_schema(&t), vec![array]).unwrap();
        let e = match load_into(
            locked.as_mut(),
            &dataset("d", "s", &["t"]),
            &[(&t, vec![batch])],
        )
        .await
        {
            Err(e) => e,
            Ok(_) => panic!("{uc}: a value PostgreSQL cannot hold was loaded"),
        };
        let text = e.to_string();
        assert!(
            matches!(&e, SinkError::InvalidValue { column: c, .. } if c == column),
            "{uc}: {e:?}"
        );
        assert!(text.contains(want), "{uc}: {text}");
        for value in [
            "hidden",
            "123456789",
            "1234567.89",
            "2147483648",
            "922337203685477",
        ] {
            assert!(!text.contains(value), "{uc}: a value in {text}");
        }
    }
    drop(locked);
    rig.remove().await;
}

/// Errors never carry a password (nor the user name, which comes from a secret); `check`
/// asks what validate needs — sign-in, CREATE on the database, the reader role — and creates
/// nothing.
#[tokio::test]
async fn check_and_errors_without_secrets() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_check").await;
    let admin = rig.admin().await;
    destination(&rig).check().await.unwrap();
    let none: Vec<String> = strings(
        &admin,
        "SELECT nspname::text FROM pg_namespace WHERE nspname = 'publish_service'",
    )
    .await;
    assert!(none.is_empty(), "check changed nothing");

    let mut wrong = rig.config(rig.rig().tls_options());
    wrong.writer_password = SecretString::from("Wrong-Pa55word!".to_owned());
    let wrong = PostgresDestination::new(wrong).unwrap();
    for e in [
        wrong.check().await.unwrap_err(),
        wrong.lock(&project(), &start()).await.err().unwrap(),
    ] {
        let text = e.to_string();
        assert!(text.contains("SQLSTATE 28P01"), "{text}");
        assert!(!text.contains("Wrong-Pa55word!"), "{text}");
        assert!(!text.contains(&rig.writer), "{text}");
        assert!(!format!("{e:?}").contains("Wrong-Pa55word!"));
    }

    let mut no_reader = rig.config(rig.rig().tls_options());
    no_reader.reader_role = "nobody_here".into();
    let e = PostgresDestination::new(no_reader)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read-only role"), "{e}");

    admin
        .batch_execute(&format!(
            "REVOKE CREATE ON DATABASE \"{}\" FROM \"{}\"",
            rig.database, rig.writer
        ))
        .await
        .unwrap();
    let e = destination(&rig).check().await.unwrap_err();
    assert!(e.to_string().contains("grant it CREATE"), "{e}");
    drop(admin);
    rig.remove().await;
}

/// TLS modes: verify-full against the rig's CA (and refused without it), prefer encrypting
/// without checking the certificate (libpq's default), disable in plain text; a CA file with
/// prefer is refused rather than ignored.
#[tokio::test]
async fn tls_modes() {
    let Some(rig) = SqlRig::get() else { return };
    let rig = rig.pg_destination("dest_tls").await;
    let admin = rig.admin().await;
    let (admin_ref, writer) = (&admin, &rig.writer);
    let ssl = move || async move {
        admin_ref
            .query_one(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.usename = $1",
                &[writer],
            )
            .await
            .unwrap()
            .get::<_, Option<bool>>(0)
    };
    let with = |tls, ca| {
        PostgresDestination::new(rig.config(SqlOptions {
            tls,
            ca_file: ca,
            ..SqlOptions::default()
        }))
    };
    let locked = lock(&with(SqlTls::VerifyFull, Some(rig.rig().ca_file())).unwrap()).await;
    assert_eq!(ssl().await, Some(true));
    drop(locked);
    let locked = lock(&with(SqlTls::Prefer, None).unwrap()).await;
    assert_eq!(
        ssl().await,
        Some(true),
        "prefer encrypts when the server offers TLS"
    );
    drop(locked);
    let locked = lock(&with(SqlTls::Disable, None).unwrap()).await;
    assert_eq!(ssl().await, Some(false));
    drop(locked);
    let e = with(SqlTls::VerifyFull, None)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TLS to postgresql://"), "{e}");
    let e = with(SqlTls::Prefer, Some(rig.rig().ca_file())).unwrap_err();
    assert!(
        e.to_string().contains("prefer checks no certificate"),
        "{e}"
    );
    drop(admin);
    rig.remove().await;
}

/// `plan` is pure: it names the schema and refuses names PostgreSQL cannot hold with no
/// database anywhere.
#[tokio::test]
async fn plan_needs_no_database() {
    let dest = PostgresDestination::new(PostgresDestinationConfig {
        host: "db.invalid".into(),
        port: PostgresDestinationConfig::DEFAULT_PORT,
        database: "opal-resource-db".into(),
        writer_user: "w".into(),
        writer_password: SecretString::from("p".to_owned()),
        reader_role: "r".into(),
        options: SqlOptions::default(),
    })
    .unwrap();
    assert_eq!(
        dest.plan(&project(), &start(), &dataset("d", "Omop", &["Person"]))
            .unwrap(),
        "pr004_20250205_010101_omop"
    );
    let long = "t".repeat(64);
    let e = dest
        .plan(&project(), &start(), &dataset("d", "s", &[&long]))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::InvalidName { what: "table", name, detail }
            if *name == long && detail.contains("63 bytes")),
        "{e:?}"
    );
    let e = dest
        .plan(&project(), &start(), &dataset("d", &"s".repeat(50), &["t"]))
        .unwrap_err();
    assert!(
        matches!(e, SinkError::InvalidName { what: "schema", .. }),
        "{e:?}"
    );
}
