//! The formats' conformance suite: the same package written in every output format, checked by
//! reading back what is on disk (feature `test-util`), beside `publish_sink`'s protocol suite.
//!
//! Each scenario takes the format and a function opening the sink under test in a directory,
//! so a wrapper around a sink (a fault injector, a progress reporter) can run the suite too.
//! Scenarios panic with a message naming what differs, like `assert!`.
//!
//! What is read back, and with what:
//! * DuckDB: the file opened read-only with the `duckdb` crate; `duckdb_tables()`,
//!   `duckdb_columns()` (types, NOT NULL, comments with the primary key) and every value.
//! * Parquet: the `parquet` crate (exact Arrow types, nullability, values) and DuckDB's
//!   `read_parquet` (rows and types as DuckDB users see them).
//! * CSV: the file's bytes (header and quoting, literally, for the table with hostile names),
//!   arrow-csv (every value) and DuckDB's `read_csv` (column names and rows).
//!
//! Values are compared through one rendering: each cell as JSON text (arrow-json), after
//! normalising what legitimately differs between readers (zones to UTC, all intervals to
//! month-day-nano, large/view string types, map keys as strings, nested field names).

// Test-data builders take nested row literals; naming each shape would not make them clearer.
#![allow(clippy::type_complexity)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    DurationMicrosecondArray, Float32Array, Float64Array, Float64Builder, Int8Array, Int16Array,
    Int32Array, Int32Builder, Int64Array, Int64Builder, IntervalYearMonthArray, ListBuilder,
    MapBuilder, MapFieldNames, NullArray, RecordBatch, StringArray, StringBuilder, StructArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, IntervalUnit, Schema, SchemaRef, TimeUnit,
};
use arrow::json::writer::{EncoderOptions, make_encoder};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use duckdb::{AccessMode, Config, Connection};
use publish_types::{ColumnSchema, Identifier, ObjectName, OutputFormat, TableSchema, UcType};

use publish_sink::conformance::OpenSink;
use publish_sink::{OUTPUT_DIR, TableStats};

use crate::DUCKDB_FILE;
use crate::database::literal;

use publish_columns::UTC;

/// The schema every fixture table lives in: quotes, a back-quote and non-ASCII letters.
pub const SCHEMA: &str = "r\u{e9}\"s'earch`";

/// Runs every scenario: the round trip of this suite, then `publish_sink`'s protocol suite.
pub async fn run_all(format: OutputFormat, open: OpenSink<'_>) {
    package_round_trip(format, open).await;
    publish_sink::conformance::run_all(open).await;
}

/// A package of four tables (every type with nulls over several batches, hostile names, no
/// rows, one batch of 5000 rows with nested columns) is written and read back exactly.
pub async fn package_round_trip(format: OutputFormat, open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let tables = [all_types(), hostile(), empty(), big()];
    let mut sink = open(root).expect("open sink");
    for fixture in &tables {
        let mut table = sink
            .begin_table(&fixture.table, fixture.input_schema())
            .await
            .unwrap_or_else(|e| panic!("begin_table {}: {e}", fixture.table.table));
        for batch in &fixture.batches {
            table
                .write_batch(batch.clone())
                .await
                .unwrap_or_else(|e| panic!("write_batch {}: {e}", fixture.table.table));
        }
        let stats = table
            .finish()
            .await
            .unwrap_or_else(|e| panic!("finish_table {}: {e}", fixture.table.table));
        assert_eq!(stats, fixture.stats(), "stats of {}", fixture.table.table);
    }
    let written = sink.finish().await.expect("finish");
    // CSV and Parquet files come with the digest of what was written; DuckDB's is taken later.
    for file in &written {
        let bytes = std::fs::read(root.join(&file.path)).expect("read a written file");
        match (format, &file.digest) {
            (OutputFormat::Duckdb, None) => {}
            (OutputFormat::Csv | OutputFormat::Parquet, Some(digest)) => {
                let on_disk = publish_hash::hash_reader(bytes.as_slice(), digest.algorithm)
                    .expect("hash in memory");
                assert_eq!(
                    digest, &on_disk,
                    "digest of {} taken while writing",
                    file.path
                );
            }
            (format, digest) => panic!("{format:?} gave {}: digest {digest:?}", file.path),
        }
    }
    let files: Vec<String> = written.into_iter().map(|f| f.path).collect();

    let expected_files: Vec<String> = match format {
        OutputFormat::Duckdb => vec![DUCKDB_FILE.to_owned()],
        OutputFormat::Csv | OutputFormat::Parquet => {
            let ext = if format == OutputFormat::Csv {
                "csv"
            } else {
                "parquet"
            };
            let mut files: Vec<String> = tables
                .iter()
                .map(|t| format!("{OUTPUT_DIR}/{SCHEMA}/{}.{ext}", t.table.table))
                .collect();
            files.sort();
            files
        }
        OutputFormat::Sql => panic!("the formats' suite writes files; sql is not a file format"),
    };
    assert_eq!(files, expected_files, "files returned by finish");
    assert_eq!(
        files_under(root),
        files.iter().cloned().collect::<BTreeSet<_>>(),
        "files on disk after finish (nothing else may be left in the root)"
    );

    match format {
        OutputFormat::Duckdb => check_duckdb(root, &tables),
        OutputFormat::Parquet => check_parquet(root, &tables),
        OutputFormat::Csv => check_csv(root, &tables),
        OutputFormat::Sql => unreachable!("refused above"),
    }
}

// ---- fixtures -------------------------------------------------------------------------------

/// One table to write: its declared schema, the batches as a source delivers them, and what
/// should be read back.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The declared table.
    pub table: TableSchema,
    /// The Arrow schema the batches have, announced to `begin_table`: the canonical one.
    pub input: SchemaRef,
    /// Batches as a source yields them (built as Databricks delivers them, then conformed).
    pub batches: Vec<RecordBatch>,
    /// All rows as they should be read back from DuckDB or Parquet.
    pub expected: RecordBatch,
    /// All rows as they should be read back from CSV (nested values as JSON text).
    pub expected_csv: RecordBatch,
}

impl Fixture {
    /// The Arrow schema of the batches.
    pub fn input_schema(&self) -> SchemaRef {
        Arc::clone(&self.input)
    }

    /// What finishing the table should report.
    pub fn stats(&self) -> TableStats {
        let mut stats = TableStats::default();
        for b in &self.batches {
            stats.add(b);
        }
        stats
    }

    /// The fixture as a source yields it: the batches, built as a warehouse delivers them
    /// (zones, units, JSON text), converted into the canonical Arrow types by
    /// `publish_columns::conform_columns`, as every source does before a sink sees them.
    fn conformed(mut self) -> Self {
        let target = publish_columns::arrow_schema(&self.table);
        self.batches = self
            .batches
            .iter()
            .map(|b| {
                publish_columns::conform_columns(b.columns(), b.num_rows(), &target)
                    .unwrap_or_else(|e| panic!("fixture {}: {e}", self.table.table))
            })
            .collect();
        self.input = target;
        self
    }
}

fn table_schema(name: &str, columns: &[(&str, &str, bool)], key: &[&str]) -> TableSchema {
    TableSchema {
        catalog: ObjectName::parse("catalog").expect("name"),
        schema: ObjectName::parse(SCHEMA).expect("name"),
        table: ObjectName::parse(name).expect("name"),
        columns: columns
            .iter()
            .map(|(name, ty, nullable)| ColumnSchema {
                name: Identifier::parse(name).expect("name"),
                data_type: UcType::parse(ty).expect("type"),
                nullable: *nullable,
                comment: None,
            })
            .collect(),
        primary_key: key
            .iter()
            .map(|k| Identifier::parse(k).expect("name"))
            .collect(),
        comment: None,
    }
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("fixture batch")
}

fn element(t: DataType) -> FieldRef {
    Arc::new(Field::new("element", t, true))
}

fn map_names() -> Option<MapFieldNames> {
    Some(MapFieldNames {
        entry: "entries".into(),
        key: "key".into(),
        value: "value".into(),
    })
}

fn int_list(rows: &[Option<Vec<Option<i32>>>]) -> ArrayRef {
    let mut b = ListBuilder::new(Int32Builder::new()).with_field(element(DataType::Int32));
    for row in rows {
        match row {
            Some(items) => {
                for item in items {
                    b.values().append_option(*item);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

fn string_int64_map(rows: &[Option<Vec<(&str, Option<i64>)>>]) -> ArrayRef {
    let mut b = MapBuilder::new(map_names(), StringBuilder::new(), Int64Builder::new());
    for row in rows {
        match row {
            Some(entries) => {
                for (k, v) in entries {
                    b.keys().append_value(k);
                    b.values().append_option(*v);
                }
                b.append(true).expect("map");
            }
            None => b.append(false).expect("map"),
        }
    }
    Arc::new(b.finish())
}

fn int_strings_map(rows: &[Option<Vec<(i32, Option<Vec<&str>>)>>]) -> ArrayRef {
    let values = ListBuilder::new(StringBuilder::new()).with_field(element(DataType::Utf8));
    let mut b = MapBuilder::new(map_names(), Int32Builder::new(), values);
    for row in rows {
        match row {
            Some(entries) => {
                for (k, v) in entries {
                    b.keys().append_value(*k);
                    match v {
                        Some(items) => {
                            for item in items {
                                b.values().values().append_value(item);
                            }
                            b.values().append(true);
                        }
                        None => b.values().append(false),
                    }
                }
                b.append(true).expect("map");
            }
            None => b.append(false).expect("map"),
        }
    }
    Arc::new(b.finish())
}

/// `struct<a:int,b:string,`c d`:array<double>>`.
fn abc_struct(rows: &[Option<(Option<i32>, Option<&str>, Option<Vec<Option<f64>>>)>]) -> ArrayRef {
    let a: Int32Array = rows.iter().map(|r| r.as_ref().and_then(|r| r.0)).collect();
    let b: StringArray = rows.iter().map(|r| r.as_ref().and_then(|r| r.1)).collect();
    let mut c = ListBuilder::new(Float64Builder::new()).with_field(element(DataType::Float64));
    for row in rows {
        match row.as_ref().and_then(|r| r.2.as_ref()) {
            Some(items) => {
                for item in items {
                    c.values().append_option(*item);
                }
                c.append(true);
            }
            None => c.append(false),
        }
    }
    let c = c.finish();
    let fields = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("c d", c.data_type().clone(), true),
    ]);
    let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<_>>());
    Arc::new(
        StructArray::try_new(
            fields,
            vec![Arc::new(a) as ArrayRef, Arc::new(b), Arc::new(c)],
            Some(nulls),
        )
        .expect("struct"),
    )
}

/// `struct<x:int,y:string>`.
fn xy_struct(rows: &[Option<(Option<i32>, Option<&str>)>]) -> ArrayRef {
    let x: Int32Array = rows.iter().map(|r| r.as_ref().and_then(|r| r.0)).collect();
    let y: StringArray = rows.iter().map(|r| r.as_ref().and_then(|r| r.1)).collect();
    let fields = Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("y", DataType::Utf8, true),
    ]);
    let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<_>>());
    Arc::new(
        StructArray::try_new(
            fields,
            vec![Arc::new(x) as ArrayRef, Arc::new(y)],
            Some(nulls),
        )
        .expect("struct"),
    )
}

fn decimal(values: Vec<Option<i128>>, precision: u8, scale: i8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(precision, scale)
            .expect("decimal"),
    )
}

/// 2024-02-29T12:34:56.789012Z in microseconds.
const LEAP_DAY_US: i64 = 1_709_210_096_789_012;

/// Every Unity Catalog type, with nulls, in three batches (2 rows, none, 3 rows). Row 2 (`id`
/// 2) is NULL in every nullable column. The declared key is `id`.
pub fn all_types() -> Fixture {
    let columns: &[(&str, &str, bool)] = &[
        ("id", "bigint", false),
        ("c_bool", "boolean", true),
        ("c_tinyint", "tinyint", true),
        ("c_smallint", "smallint", true),
        ("c_int", "int", true),
        ("c_bigint", "bigint", true),
        ("c_float", "float", true),
        ("c_double", "double", true),
        ("c_dec_small", "decimal(6,2)", true),
        ("c_dec_18", "decimal(18,4)", true),
        ("c_dec_38", "decimal(38,10)", true),
        ("c_string", "string", true),
        ("c_char", "char(10)", true),
        ("c_varchar", "varchar(20)", true),
        ("c_binary", "binary", true),
        ("c_date", "date", true),
        ("c_ts", "timestamp", true),
        ("c_ts_ntz", "timestamp_ntz", true),
        ("c_ts_zoned", "timestamp", true),
        ("c_array", "array<int>", true),
        ("c_map", "map<string,bigint>", true),
        (
            "c_struct",
            "struct<a:int,b:string,`c d`:array<double>>",
            true,
        ),
        ("c_map2", "map<int,array<string>>", true),
        ("c_iv_ym", "interval year to month", true),
        ("c_iv_ds", "interval day to second", true),
        ("c_variant", "variant", true),
        ("c_void", "void", true),
        ("c_json_struct", "struct<x:int,y:string>", true),
    ];
    let mut table = table_schema("all_types", columns, &["id"]);
    table.comment = Some("Every type.".into());
    table.columns[1].comment = Some("a flag".into());
    table.columns[12].comment = Some("fixed width".into());

    let ts = vec![
        Some(LEAP_DAY_US),
        None,
        Some(0),
        Some(-1),
        Some(253_402_300_799_999_999),
    ];
    let json_text = vec![
        Some(r#"{"x":1,"y":"a"}"#),
        None,
        Some(r#"{"x":null,"y":null}"#),
        Some(r#"{"y":"only y"}"#),
        Some(r#"{"x":-5,"y":"\"q\""}"#),
    ];
    let shared: Vec<(Field, ArrayRef)> = vec![
        (
            Field::new("id", DataType::Int64, false),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
        ),
        (
            Field::new("c_bool", DataType::Boolean, true),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
                Some(false),
            ])),
        ),
        (
            Field::new("c_tinyint", DataType::Int8, true),
            Arc::new(Int8Array::from(vec![
                Some(-128),
                None,
                Some(127),
                Some(0),
                Some(1),
            ])),
        ),
        (
            Field::new("c_smallint", DataType::Int16, true),
            Arc::new(Int16Array::from(vec![
                Some(i16::MIN),
                None,
                Some(i16::MAX),
                Some(0),
                Some(2),
            ])),
        ),
        (
            Field::new("c_int", DataType::Int32, true),
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                None,
                Some(i32::MAX),
                Some(0),
                Some(3),
            ])),
        ),
        (
            Field::new("c_bigint", DataType::Int64, true),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                None,
                Some(i64::MAX),
                Some(0),
                Some(4),
            ])),
        ),
        (
            Field::new("c_float", DataType::Float32, true),
            Arc::new(Float32Array::from(vec![
                Some(1.5),
                None,
                Some(-0.25),
                Some(f32::MAX),
                Some(0.1),
            ])),
        ),
        (
            Field::new("c_double", DataType::Float64, true),
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                None,
                Some(-1e300),
                Some(2.5),
                Some(1.0 / 3.0),
            ])),
        ),
        (
            Field::new("c_dec_small", DataType::Decimal128(6, 2), true),
            decimal(
                vec![Some(123_456), None, Some(-99_999), Some(0), Some(1)],
                6,
                2,
            ),
        ),
        (
            Field::new("c_dec_18", DataType::Decimal128(18, 4), true),
            decimal(
                vec![
                    Some(999_999_999_999_999_999),
                    None,
                    Some(-1),
                    Some(0),
                    Some(123_456_789),
                ],
                18,
                4,
            ),
        ),
        (
            Field::new("c_dec_38", DataType::Decimal128(38, 10), true),
            decimal(
                vec![
                    Some(123_456_789_012_345_678_901_234_567_890_123_456),
                    None,
                    Some(-99_999_999_999_999_999_999_999_999_999_999_999_999),
                    Some(0),
                    Some(1),
                ],
                38,
                10,
            ),
        ),
        (
            Field::new("c_string", DataType::Utf8, true),
            Arc::new(StringArray::from(vec![
                Some("hello"),
                None,
                Some(""),
                Some("comma, \"quote\"\nnew line"),
                Some("\u{fc}n\u{ef}c\u{f6}d\u{e9} \u{2713}"),
            ])),
        ),
        (
            Field::new("c_char", DataType::Utf8, true),
            Arc::new(StringArray::from(vec![
                Some("abc"),
                None,
                Some("x"),
                Some(""),
                Some("tenchars10"),
            ])),
        ),
        (
            Field::new("c_varchar", DataType::Utf8, true),
            Arc::new(StringArray::from(vec![
                Some("v"),
                None,
                Some("w"),
                Some(""),
                Some("x"),
            ])),
        ),
        (
            Field::new("c_binary", DataType::Binary, true),
            Arc::new(BinaryArray::from(vec![
                Some(&b"\xde\xad\xbe\xef"[..]),
                None,
                Some(&b""[..]),
                Some(&b"\x00\x01"[..]),
                Some(&b"abc"[..]),
            ])),
        ),
        (
            Field::new("c_date", DataType::Date32, true),
            Arc::new(Date32Array::from(vec![
                Some(19_782),
                None,
                Some(0),
                Some(-1),
                Some(2_932_896),
            ])),
        ),
    ];
    let ts_utc = |values: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(values).with_timezone(UTC))
    };
    let ts_fields = |tz: &str| {
        Field::new(
            "c_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into())),
            true,
        )
    };
    let ntz: (Field, ArrayRef) = (
        Field::new(
            "c_ts_ntz",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Arc::new(TimestampMicrosecondArray::from(ts.clone())),
    );
    let zoned_ns = vec![
        Some(LEAP_DAY_US * 1000),
        None,
        Some(0),
        Some(1_000),
        Some(5_000_000_000),
    ];
    let zoned_us = vec![Some(LEAP_DAY_US), None, Some(0), Some(1), Some(5_000_000)];
    let nested: Vec<(Field, ArrayRef)> = {
        let array = int_list(&[
            Some(vec![Some(1), Some(2), Some(3)]),
            None,
            Some(vec![]),
            Some(vec![None, Some(5)]),
            Some(vec![Some(7)]),
        ]);
        let map = string_int64_map(&[
            Some(vec![("a", Some(1)), ("b", None)]),
            None,
            Some(vec![]),
            Some(vec![("k", Some(-1))]),
            Some(vec![("\u{fc}", Some(2))]),
        ]);
        // Row 2 is a NULL struct whose children hold values, which Arrow allows.
        let st = abc_struct(&[
            Some((Some(1), Some("x"), Some(vec![Some(1.5), None]))),
            Some((Some(7), Some("hidden"), Some(vec![Some(9.0)]))),
            Some((None, None, None)),
            Some((Some(-1), Some(""), Some(vec![]))),
            Some((Some(2), Some("y"), Some(vec![Some(0.5)]))),
        ]);
        let (fields, children, _) = st.as_struct().clone().into_parts();
        let nulls = NullBuffer::from(vec![true, false, true, true, true]);
        let st: ArrayRef =
            Arc::new(StructArray::try_new(fields, children, Some(nulls)).expect("struct"));
        let map2 = int_strings_map(&[
            Some(vec![(1, Some(vec!["a", "b"]))]),
            None,
            Some(vec![]),
            Some(vec![(2, None), (3, Some(vec![]))]),
            Some(vec![(-4, Some(vec!["x"]))]),
        ]);
        vec![
            (
                Field::new("c_array", array.data_type().clone(), true),
                array,
            ),
            (Field::new("c_map", map.data_type().clone(), true), map),
            (Field::new("c_struct", st.data_type().clone(), true), st),
            (Field::new("c_map2", map2.data_type().clone(), true), map2),
            (
                Field::new("c_iv_ym", DataType::Interval(IntervalUnit::YearMonth), true),
                Arc::new(IntervalYearMonthArray::from(vec![
                    Some(14),
                    None,
                    Some(0),
                    Some(-1),
                    Some(1200),
                ])),
            ),
            (
                Field::new("c_iv_ds", DataType::Duration(TimeUnit::Microsecond), true),
                Arc::new(DurationMicrosecondArray::from(vec![
                    Some(93_784_000_005),
                    None,
                    Some(0),
                    Some(-1),
                    Some(1),
                ])),
            ),
            (
                Field::new("c_variant", DataType::Utf8, true),
                Arc::new(StringArray::from(vec![
                    Some(r#"{"k":[1,2]}"#),
                    None,
                    Some(r#""text""#),
                    Some("42"),
                    Some("true"),
                ])),
            ),
        ]
    };
    let xy = xy_struct(&[
        Some((Some(1), Some("a"))),
        None,
        Some((None, None)),
        Some((None, Some("only y"))),
        Some((Some(-5), Some("\"q\""))),
    ]);

    // As delivered: zone Etc/UTC (Databricks' session zone), nanoseconds at +02:00, void as
    // Arrow Null, a struct as JSON text.
    let mut input = shared.clone();
    input.push((
        ts_fields("Etc/UTC"),
        Arc::new(TimestampMicrosecondArray::from(ts.clone()).with_timezone("Etc/UTC")),
    ));
    input.push(ntz.clone());
    input.push((
        Field::new(
            "c_ts_zoned",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
            true,
        ),
        Arc::new(TimestampNanosecondArray::from(zoned_ns).with_timezone("+02:00")),
    ));
    input.extend(nested.clone());
    input.push((
        Field::new("c_void", DataType::Null, true),
        Arc::new(NullArray::new(5)),
    ));
    input.push((
        Field::new("c_json_struct", DataType::Utf8, true),
        Arc::new(StringArray::from(json_text.clone())),
    ));

    let mut expected = shared;
    expected.push((ts_fields(UTC), ts_utc(ts)));
    expected.push(ntz);
    expected.push((
        Field::new(
            "c_ts_zoned",
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            true,
        ),
        ts_utc(zoned_us),
    ));
    expected.extend(nested);
    expected.push((
        Field::new("c_void", DataType::Utf8, true),
        Arc::new(StringArray::from(vec![None::<&str>; 5])),
    ));
    let mut expected_csv = expected.clone();
    expected.push((
        Field::new("c_json_struct", xy.data_type().clone(), true),
        xy,
    ));
    // Parsed by the source into the declared STRUCT, then written by CSV as arrow-json encodes
    // it: every field present, absent ones as null.
    let mut csv_json = json_text;
    csv_json[3] = Some(r#"{"x":null,"y":"only y"}"#);
    expected_csv.push((
        Field::new("c_json_struct", DataType::Utf8, true),
        Arc::new(StringArray::from(csv_json)),
    ));

    let whole = |cols: Vec<(Field, ArrayRef)>| {
        let (fields, arrays): (Vec<_>, Vec<_>) = cols.into_iter().unzip();
        batch(fields, arrays)
    };
    let input = whole(input);
    Fixture {
        table,
        input: input.schema(),
        batches: vec![input.slice(0, 2), input.slice(2, 0), input.slice(2, 3)],
        expected: whole(expected),
        expected_csv: whole(expected_csv),
    }
    .conformed()
}

/// Hostile names: quotes, a back-quote, a space, a comma and non-ASCII letters in table and
/// column names; values needing CSV quoting; a two-column key; comments with quotes.
pub fn hostile() -> Fixture {
    let mut table = table_schema(
        "we\"ird`tab'le",
        &[
            ("a b", "string", false),
            ("q\"uote", "int", true),
            ("back`tick", "string", true),
            ("\u{fc}n\u{ef}", "double", true),
            ("comma,name", "string", true),
        ],
        &["q\"uote", "a b"],
    );
    table.comment = Some("It's a \"weird\" table".into());
    table.columns[0].comment = Some("first; 'quoted'".into());
    let fields = vec![
        Field::new("a b", DataType::Utf8, false),
        Field::new("q\"uote", DataType::Int32, true),
        Field::new("back`tick", DataType::Utf8, true),
        Field::new("\u{fc}n\u{ef}", DataType::Float64, true),
        Field::new("comma,name", DataType::Utf8, true),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![
            "x",
            "y,z",
            "\"q\"",
            "line1\r\nline2",
        ])),
        Arc::new(Int32Array::from(vec![Some(1), None, Some(-3), Some(4)])),
        Arc::new(StringArray::from(vec![
            Some(""),
            None,
            Some("a\"b"),
            Some("\u{fc}"),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(0.5),
            None,
            Some(-2.0),
            Some(1e-7),
        ])),
        Arc::new(StringArray::from(vec![
            Some("plain"),
            Some("with,comma"),
            None,
            Some(" spaced "),
        ])),
    ];
    let b = batch(fields, columns);
    Fixture {
        table,
        input: b.schema(),
        batches: vec![b.clone()],
        expected: b.clone(),
        expected_csv: b,
    }
    .conformed()
}

/// A table without rows (no batch at all), with a NOT NULL and a nested column.
pub fn empty() -> Fixture {
    let table = table_schema(
        "empty",
        &[
            ("id", "bigint", false),
            ("note", "string", true),
            ("tags", "array<string>", true),
        ],
        &[],
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("note", DataType::Utf8, true),
        Field::new("tags", DataType::List(element(DataType::Utf8)), true),
    ]));
    let b = RecordBatch::new_empty(Arc::clone(&schema));
    let csv = RecordBatch::new_empty(Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("note", DataType::Utf8, true),
        Field::new("tags", DataType::Utf8, true),
    ])));
    Fixture {
        table,
        input: schema,
        batches: vec![],
        expected: b,
        expected_csv: csv,
    }
    .conformed()
}

/// One batch of 5000 rows, more than a DuckDB vector, with a list and a map column.
pub fn big() -> Fixture {
    const ROWS: usize = 5000;
    let table = table_schema(
        "big",
        &[
            ("id", "bigint", false),
            ("tags", "array<string>", true),
            ("m", "map<string,int>", true),
        ],
        &["id"],
    );
    let id = Int64Array::from_iter_values(0..ROWS as i64);
    let mut tags = ListBuilder::new(StringBuilder::new()).with_field(element(DataType::Utf8));
    let mut m = MapBuilder::new(map_names(), StringBuilder::new(), Int32Builder::new());
    for i in 0..ROWS {
        if i % 7 == 3 {
            tags.append(false);
        } else {
            for j in 0..i % 4 {
                tags.values().append_value(format!("t{i}.{j}"));
            }
            tags.append(true);
        }
        if i % 3 == 0 {
            m.keys().append_value("k");
            m.values().append_value(i as i32);
            m.append(true).expect("map");
        } else {
            m.append(false).expect("map");
        }
    }
    let tags = tags.finish();
    let m = m.finish();
    let b = batch(
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tags", tags.data_type().clone(), true),
            Field::new("m", m.data_type().clone(), true),
        ],
        vec![Arc::new(id), Arc::new(tags), Arc::new(m)],
    );
    Fixture {
        table,
        input: b.schema(),
        batches: vec![b.clone()],
        expected: b.clone(),
        expected_csv: b,
    }
    .conformed()
}

// ---- reading back ---------------------------------------------------------------------------

fn files_under(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).expect("inside root");
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(parts.join("/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn qualified(t: &TableSchema) -> String {
    format!("{}.{}", t.schema.quoted_double(), t.table.quoted_double())
}

fn open_read_only(path: &Path) -> Connection {
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)
        .and_then(|c| c.enable_autoload_extension(false))
        .expect("config");
    Connection::open_with_flags(path, config).expect("open the DuckDB file read-only")
}

fn in_memory_duckdb() -> Connection {
    let config = Config::default()
        .enable_autoload_extension(false)
        .expect("config");
    Connection::open_in_memory_with_flags(config).expect("in-memory DuckDB")
}

fn query_strings(conn: &Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    let batch = query_batch(conn, sql);
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| cast(c, &DataType::Utf8).expect("as text"))
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    let s = c.as_string::<i32>();
                    (!s.is_null(row)).then(|| s.value(row).to_owned())
                })
                .collect()
        })
        .collect()
}

fn query_batch(conn: &Connection, sql: &str) -> RecordBatch {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches: Vec<RecordBatch> = stmt
        .query_arrow([])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect();
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .unwrap_or_else(|| stmt.schema());
    concat_batches(&schema, &batches).expect("concat")
}

fn check_duckdb(root: &Path, tables: &[Fixture]) {
    let conn = open_read_only(&root.join(DUCKDB_FILE));

    let listed = query_strings(
        &conn,
        "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL",
    );
    let mut want: Vec<Vec<Option<String>>> = tables
        .iter()
        .map(|t| vec![Some(SCHEMA.to_owned()), Some(t.table.table.to_string())])
        .collect();
    want.sort();
    assert_eq!(listed, want, "the tables in the DuckDB file (nothing else)");
    let views = query_strings(
        &conn,
        "SELECT view_name FROM duckdb_views() WHERE NOT internal",
    );
    assert!(views.is_empty(), "views in the DuckDB file: {views:?}");

    for fixture in tables {
        let t = &fixture.table;
        let columns = query_strings(
            &conn,
            &format!(
                "SELECT column_name, data_type, CAST(is_nullable AS VARCHAR), comment FROM duckdb_columns() \
                 WHERE schema_name = {} AND table_name = {} ORDER BY column_index",
                literal(t.schema.as_str()),
                literal(t.table.as_str())
            ),
        );
        let names: Vec<String> = columns
            .iter()
            .map(|c| c[0].clone().expect("name"))
            .collect();
        let declared: Vec<String> = t.columns.iter().map(|c| c.name.to_string()).collect();
        assert_eq!(names, declared, "columns of {}", t.table);
        for (column, row) in t.columns.iter().zip(&columns) {
            let nullable = row[2].as_deref() == Some("true");
            assert_eq!(
                nullable, column.nullable,
                "NOT NULL of {}.{}",
                t.table, column.name
            );
        }
        let types: Vec<(String, String)> = columns
            .iter()
            .map(|c| (c[0].clone().expect("name"), c[1].clone().expect("type")))
            .collect();
        assert_eq!(types, duckdb_types(fixture), "DuckDB types of {}", t.table);

        let comments: Vec<(String, String)> = columns
            .iter()
            .filter_map(|c| Some((c[0].clone()?, c[3].clone()?)))
            .collect();
        let table_comment = query_strings(
            &conn,
            &format!(
                "SELECT comment FROM duckdb_tables() WHERE schema_name = {} AND table_name = {}",
                literal(t.schema.as_str()),
                literal(t.table.as_str())
            ),
        );
        let (want_table, want_columns) = duckdb_comments(fixture);
        assert_eq!(
            table_comment,
            vec![vec![want_table]],
            "table comment of {}",
            t.table
        );
        assert_eq!(comments, want_columns, "column comments of {}", t.table);

        let read = query_batch(
            &conn,
            &format!("SELECT * FROM {} ORDER BY rowid", qualified(t)),
        );
        assert_same_rows(
            &read,
            &fixture.expected,
            &format!("DuckDB table {}", t.table),
        );
    }

    // A few values as DuckDB itself prints them.
    let all = qualified(&tables[0].table);
    let printed = query_strings(
        &conn,
        &format!(
            "SELECT c_dec_38::VARCHAR, c_ts::VARCHAR, c_ts_zoned::VARCHAR, c_struct::VARCHAR, c_iv_ds::VARCHAR, \
             c_map2::VARCHAR FROM {all} WHERE id = 1"
        ),
    );
    assert_eq!(
        printed,
        vec![vec![
            Some("12345678901234567890123456.7890123456".to_owned()),
            Some("2024-02-29 12:34:56.789012+00".to_owned()),
            Some("2024-02-29 12:34:56.789012+00".to_owned()),
            Some("{'a': 1, 'b': x, 'c d': [1.5, NULL]}".to_owned()),
            Some("26:03:04.000005".to_owned()),
            Some("{1=[a, b]}".to_owned()),
        ]],
        "values as DuckDB prints them"
    );
    let null_struct = query_strings(
        &conn,
        &format!(
            "SELECT (c_struct IS NULL)::VARCHAR, (c_struct.a IS NULL)::VARCHAR, (c_struct['c d'] IS NULL)::VARCHAR FROM {all} WHERE id = 2"
        ),
    );
    assert_eq!(
        null_struct,
        vec![vec![
            Some("true".to_owned()),
            Some("true".to_owned()),
            Some("true".to_owned())
        ]],
        "the fields of a NULL struct are NULL"
    );
}

/// The DuckDB type of each column, as `duckdb_columns()` prints it.
fn duckdb_types(fixture: &Fixture) -> Vec<(String, String)> {
    fixture
        .table
        .columns
        .iter()
        .map(|c| {
            let ty = match c.name.as_str() {
                "c_struct" => "STRUCT(a INTEGER, b VARCHAR, \"c d\" DOUBLE[])".to_owned(),
                "c_json_struct" => "STRUCT(x INTEGER, y VARCHAR)".to_owned(),
                "c_map" => "MAP(VARCHAR, BIGINT)".to_owned(),
                "c_map2" => "MAP(INTEGER, VARCHAR[])".to_owned(),
                "m" => "MAP(VARCHAR, INTEGER)".to_owned(),
                _ => uc_to_duckdb(&c.data_type),
            };
            (c.name.to_string(), ty)
        })
        .collect()
}

fn uc_to_duckdb(t: &UcType) -> String {
    match t {
        UcType::Boolean => "BOOLEAN".into(),
        UcType::TinyInt => "TINYINT".into(),
        UcType::SmallInt => "SMALLINT".into(),
        UcType::Int => "INTEGER".into(),
        UcType::BigInt => "BIGINT".into(),
        UcType::Float => "FLOAT".into(),
        UcType::Double => "DOUBLE".into(),
        UcType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        UcType::String
        | UcType::Char(_)
        | UcType::Varchar(_)
        | UcType::Variant
        | UcType::Other(_) => "VARCHAR".into(),
        UcType::Binary => "BLOB".into(),
        UcType::Date => "DATE".into(),
        UcType::Timestamp => "TIMESTAMP WITH TIME ZONE".into(),
        UcType::TimestampNtz => "TIMESTAMP".into(),
        UcType::Interval(_) => "INTERVAL".into(),
        UcType::Array(e) => format!("{}[]", uc_to_duckdb(e)),
        UcType::Map(..) | UcType::Struct(_) => unreachable!("spelled out in duckdb_types"),
    }
}

/// Table comment and `(column, comment)` pairs the DuckDB file should hold.
fn duckdb_comments(fixture: &Fixture) -> (Option<String>, Vec<(String, String)>) {
    let name = fixture.table.table.as_str();
    match name {
        "all_types" => (
            Some("Every type.\nprimary key: (id)".into()),
            vec![
                ("c_bool".into(), "a flag".into()),
                (
                    "c_char".into(),
                    "fixed width\ndeclared type: char(10)".into(),
                ),
                ("c_varchar".into(), "declared type: varchar(20)".into()),
            ],
        ),
        "big" => (Some("primary key: (id)".into()), vec![]),
        "empty" => (None, vec![]),
        _ => (
            Some("It's a \"weird\" table\nprimary key: (\"q\"\"uote\", \"a b\")".into()),
            vec![("a b".into(), "first; 'quoted'".into())],
        ),
    }
}

fn table_path(root: &Path, t: &TableSchema, ext: &str) -> PathBuf {
    root.join(OUTPUT_DIR)
        .join(t.schema.as_str())
        .join(format!("{}.{ext}", t.table))
}

fn check_parquet(root: &Path, tables: &[Fixture]) {
    let duck = in_memory_duckdb();
    for fixture in tables {
        let t = &fixture.table;
        let path = table_path(root, t, "parquet");
        let file = std::fs::File::open(&path).expect("parquet file");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet reader");
        let schema = Arc::clone(reader.schema());
        let batches: Vec<RecordBatch> = reader
            .build()
            .expect("parquet reader")
            .collect::<Result<_, _>>()
            .expect("parquet batches");
        let read = concat_batches(&schema, &batches).expect("concat");
        for (got, (want, column)) in schema
            .fields()
            .iter()
            .zip(fixture.expected.schema().fields().iter().zip(&t.columns))
        {
            assert_eq!(
                got.name(),
                column.name.as_str(),
                "Parquet column names of {}",
                t.table
            );
            assert_eq!(
                got.is_nullable(),
                column.nullable,
                "Parquet nullability of {}.{}",
                t.table,
                column.name
            );
            assert_eq!(
                sketch(got.data_type()),
                sketch(want.data_type()),
                "Parquet type of {}.{}",
                t.table,
                column.name
            );
        }
        assert_same_rows(
            &read,
            &fixture.expected,
            &format!("Parquet table {}", t.table),
        );

        let source = format!("read_parquet({})", literal(&path.to_string_lossy()));
        let count = query_strings(&duck, &format!("SELECT count(*)::VARCHAR FROM {source}"));
        assert_eq!(
            count,
            vec![vec![Some(fixture.expected.num_rows().to_string())]],
            "DuckDB read_parquet of {}",
            t.table
        );
        if t.table.as_str() == "all_types" {
            let types = query_strings(
                &duck,
                &format!(
                    "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {source}) WHERE column_name IN ('c_ts', 'c_ts_ntz', 'c_dec_38', 'c_struct') ORDER BY ALL"
                ),
            );
            assert_eq!(
                types,
                vec![
                    vec![Some("c_dec_38".into()), Some("DECIMAL(38,10)".into())],
                    vec![
                        Some("c_struct".into()),
                        Some("STRUCT(a INTEGER, b VARCHAR, \"c d\" DOUBLE[])".into())
                    ],
                    vec![Some("c_ts".into()), Some("TIMESTAMP WITH TIME ZONE".into())],
                    vec![Some("c_ts_ntz".into()), Some("TIMESTAMP".into())],
                ],
                "types DuckDB sees in the Parquet file"
            );
        }
    }
}

fn check_csv(root: &Path, tables: &[Fixture]) {
    let duck = in_memory_duckdb();
    for fixture in tables {
        let t = &fixture.table;
        let path = table_path(root, t, "csv");
        let text = std::fs::read_to_string(&path).expect("CSV file is UTF-8");
        let header: Vec<String> = t.columns.iter().map(|c| c.name.to_string()).collect();

        let schema = Arc::new(Schema::new(
            header
                .iter()
                .map(|h| Field::new(h, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let reader = arrow::csv::ReaderBuilder::new(Arc::clone(&schema))
            .with_header(true)
            .build(std::fs::File::open(&path).expect("CSV file"))
            .expect("CSV reader");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("CSV rows");
        let read = concat_batches(&schema, &batches).expect("concat");
        let got = cells_of_text(&read);
        let want = csv_cells(&fixture.expected_csv);
        assert_eq!(got.len(), want.len(), "CSV rows of {}", t.table);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "CSV row {i} of {}", t.table);
        }

        let source = format!(
            "read_csv({}, header = true, all_varchar = true)",
            literal(&path.to_string_lossy())
        );
        if fixture.expected.num_rows() > 0 {
            let names = query_strings(
                &duck,
                &format!("SELECT column_name FROM (DESCRIBE SELECT * FROM {source})"),
            );
            let names: Vec<String> = names
                .into_iter()
                .map(|r| r[0].clone().expect("name"))
                .collect();
            assert_eq!(
                names, header,
                "column names DuckDB's read_csv finds in {}",
                t.table
            );
            let count = query_strings(&duck, &format!("SELECT count(*)::VARCHAR FROM {source}"));
            assert_eq!(
                count,
                vec![vec![Some(fixture.expected.num_rows().to_string())]],
                "DuckDB read_csv of {}",
                t.table
            );
        }

        match t.table.as_str() {
            "empty" => assert_eq!(text, "id,note,tags\n"),
            "all_types" => {
                let first = &got[0];
                let column = |name: &str| header.iter().position(|h| h == name).expect("column");
                for (name, want) in [
                    ("c_dec_38", "12345678901234567890123456.7890123456"),
                    ("c_dec_small", "1234.56"),
                    ("c_ts", "2024-02-29T12:34:56.789012Z"),
                    ("c_ts_zoned", "2024-02-29T12:34:56.789012Z"),
                    ("c_ts_ntz", "2024-02-29T12:34:56.789012"),
                    ("c_date", "2024-02-29"),
                    ("c_binary", "deadbeef"),
                    ("c_struct", r#"{"a":1,"b":"x","c d":[1.5,null]}"#),
                    ("c_map2", r#"{"1":["a","b"]}"#),
                    ("c_map", r#"{"a":1,"b":null}"#),
                    ("c_json_struct", r#"{"x":1,"y":"a"}"#),
                    ("c_variant", r#"{"k":[1,2]}"#),
                    ("c_iv_ym", "P1Y2M"),
                    ("c_iv_ds", "PT93784.000005S"),
                ] {
                    assert_eq!(
                        first[column(name)].as_deref(),
                        Some(want),
                        "CSV {name} of row 1"
                    );
                }
                assert_eq!(got[3][column("c_iv_ym")].as_deref(), Some("-P0Y1M"));
                assert_eq!(got[3][column("c_iv_ds")].as_deref(), Some("-PT0.000001S"));
                assert_eq!(got[3][column("c_float")].as_deref(), Some("3.4028235e38"));
                assert!(
                    got[1][1..].iter().all(Option::is_none),
                    "row 2 is NULL but for its key"
                );
            }
            "big" => {}
            _ => assert_eq!(
                text,
                "a b,\"q\"\"uote\",back`tick,\u{fc}n\u{ef},\"comma,name\"\n\
                 x,1,,0.5,plain\n\
                 \"y,z\",,,,\"with,comma\"\n\
                 \"\"\"q\"\"\",-3,\"a\"\"b\",-2.0,\n\
                 \"line1\r\nline2\",4,\u{fc},1e-7, spaced \n",
                "the CSV file of the table with hostile names, byte for byte"
            ),
        }
    }
}

// ---- comparing ------------------------------------------------------------------------------

fn assert_same_rows(got: &RecordBatch, want: &RecordBatch, what: &str) {
    assert_eq!(got.num_columns(), want.num_columns(), "{what}: columns");
    assert_eq!(got.num_rows(), want.num_rows(), "{what}: rows");
    let (g, w) = (cells(got), cells(want));
    for (i, (gr, wr)) in g.iter().zip(&w).enumerate() {
        assert_eq!(gr, wr, "{what}: row {i}");
    }
}

/// Each cell as JSON text after [`normal_type`]; `None` for NULL.
fn cells(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| cast(c, &normal_type(c.data_type())).expect("normalise for comparison"))
        .collect();
    json_cells(&columns, batch.num_rows())
}

fn json_cells(columns: &[ArrayRef], rows: usize) -> Vec<Vec<Option<String>>> {
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let fields: Vec<FieldRef> = columns
        .iter()
        .map(|c| Arc::new(Field::new("v", c.data_type().clone(), true)))
        .collect();
    let mut encoders: Vec<_> = columns
        .iter()
        .zip(&fields)
        .map(|(c, f)| make_encoder(f, c.as_ref(), &options).expect("encoder"))
        .collect();
    (0..rows)
        .map(|row| {
            columns
                .iter()
                .zip(&mut encoders)
                .map(|(c, e)| {
                    (!c.is_null(row)).then(|| {
                        let mut buf = Vec::new();
                        e.encode(row, &mut buf);
                        String::from_utf8(buf).expect("UTF-8")
                    })
                })
                .collect()
        })
        .collect()
}

/// What may legitimately differ between writers and readers, made equal.
fn normal_type(t: &DataType) -> DataType {
    let item = |f: &FieldRef| Arc::new(Field::new("item", normal_type(f.data_type()), true));
    match t {
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Interval(_) | DataType::Duration(_) => {
            DataType::Interval(IntervalUnit::MonthDayNano)
        }
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            DataType::List(item(f))
        }
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name(), normal_type(f.data_type()), true))
                .collect(),
        ),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", normal_type(kv[1].data_type()), true),
                    ])),
                    false,
                )),
                false,
            ),
            _ => t.clone(),
        },
        _ => t.clone(),
    }
}

/// A type without nested field names or nullability, for comparing shapes.
fn sketch(t: &DataType) -> String {
    match t {
        DataType::List(f) => format!("List<{}>", sketch(f.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!(
                    "Map<{},{}>",
                    sketch(kv[0].data_type()),
                    sketch(kv[1].data_type())
                )
            }
            other => format!("Map<{other}>"),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), sketch(f.data_type())))
                .collect();
            format!("Struct<{}>", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// Cells of an all-text batch; empty text counts as NULL (CSV cannot tell them apart).
fn cells_of_text(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|c| {
                    let s = c.as_string::<i32>();
                    (!s.is_null(row) && !s.value(row).is_empty()).then(|| s.value(row).to_owned())
                })
                .collect()
        })
        .collect()
}

/// The text each cell of `batch` should have in CSV: Arrow's display of scalars (but ISO 8601
/// for year-month intervals), JSON of nested values (map keys as strings); empty text as NULL.
fn csv_cells(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
    let options = FormatOptions::default();
    let columns: Vec<Vec<Option<String>>> = batch
        .columns()
        .iter()
        .map(|c| {
            if *c.data_type() == DataType::Interval(IntervalUnit::YearMonth) {
                c.as_primitive::<arrow::datatypes::IntervalYearMonthType>()
                    .iter()
                    .map(|m| {
                        m.map(|m| {
                            let sign = if m < 0 { "-" } else { "" };
                            format!("{sign}P{}Y{}M", m.abs() / 12, m.abs() % 12)
                        })
                    })
                    .collect()
            } else if c.data_type().is_nested() {
                let keys_as_text = cast(c, &map_keys_as_text(c.data_type())).expect("map keys");
                json_cells(&[keys_as_text], c.len())
                    .into_iter()
                    .map(|mut r| r.remove(0))
                    .collect()
            } else {
                let f = ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter");
                (0..c.len())
                    .map(|row| (!c.is_null(row)).then(|| f.value(row).to_string()))
                    .collect()
            }
        })
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .map(|c| c[row].clone().filter(|s| !s.is_empty()))
                .collect()
        })
        .collect()
}

fn map_keys_as_text(t: &DataType) -> DataType {
    match t {
        DataType::List(f) => DataType::List(Arc::new(Field::new(
            f.name(),
            map_keys_as_text(f.data_type()),
            f.is_nullable(),
        ))),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name(), map_keys_as_text(f.data_type()), f.is_nullable()))
                .collect(),
        ),
        DataType::Map(entries, sorted) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => DataType::Map(
                Arc::new(Field::new(
                    entries.name(),
                    DataType::Struct(Fields::from(vec![
                        Field::new(kv[0].name(), DataType::Utf8, false),
                        Field::new(
                            kv[1].name(),
                            map_keys_as_text(kv[1].data_type()),
                            kv[1].is_nullable(),
                        ),
                    ])),
                    false,
                )),
                *sorted,
            ),
            _ => t.clone(),
        },
        _ => t.clone(),
    }
}
