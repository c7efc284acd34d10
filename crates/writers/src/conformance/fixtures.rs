//! The suite's four tables: every Unity Catalog type with nulls over several batches, hostile
//! names, no rows, and one batch of 5000 rows with nested columns — each with what should be
//! read back from DuckDB or Parquet and from CSV.

// Test-data builders take nested row literals; naming each shape would not make them clearer.
#![allow(clippy::type_complexity)]

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    DurationMicrosecondArray, Float32Array, Float64Array, Float64Builder, Int8Array, Int16Array,
    Int32Array, Int32Builder, Int64Array, Int64Builder, IntervalYearMonthArray, ListBuilder,
    MapBuilder, MapFieldNames, NullArray, RecordBatch, StringArray, StringBuilder, StructArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, IntervalUnit, Schema, SchemaRef, TimeUnit,
};
use publish_columns::UTC;
use publish_sink::TableStats;
use publish_types::{ColumnSchema, Identifier, ObjectName, TableSchema, UcType};

/// The schema every fixture table lives in: quotes, a back-quote and non-ASCII letters.
pub const SCHEMA: &str = "r\u{e9}\"s'earch`";

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
    let (shared, nested) = (scalar_columns(), nested_columns());
    let input = whole(delivered(shared.clone(), nested.clone()));
    let (expected, expected_csv) = read_back(shared, nested);
    Fixture {
        table: all_types_table(),
        input: input.schema(),
        batches: vec![input.slice(0, 2), input.slice(2, 0), input.slice(2, 3)],
        expected: whole(expected),
        expected_csv: whole(expected_csv),
    }
    .conformed()
}

/// The declared table of [`all_types`]: every type, comments on the table and two columns.
fn all_types_table() -> TableSchema {
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
    table
}

/// [`all_types`]' columns that arrive as they are read back: the scalar types but timestamps.
fn scalar_columns() -> Vec<(Field, ArrayRef)> {
    vec![
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
    ]
}

/// [`all_types`]' nested columns, intervals and variant, which arrive as they are read back.
fn nested_columns() -> Vec<(Field, ArrayRef)> {
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
}

/// The rows of `c_ts` and `c_ts_ntz`, in microseconds.
fn timestamps() -> Vec<Option<i64>> {
    vec![
        Some(LEAP_DAY_US),
        None,
        Some(0),
        Some(-1),
        Some(253_402_300_799_999_999),
    ]
}

/// The rows of `c_json_struct` as a warehouse sends them: JSON text.
fn json_struct_text() -> Vec<Option<&'static str>> {
    vec![
        Some(r#"{"x":1,"y":"a"}"#),
        None,
        Some(r#"{"x":null,"y":null}"#),
        Some(r#"{"y":"only y"}"#),
        Some(r#"{"x":-5,"y":"\"q\""}"#),
    ]
}

fn ts_field(tz: &str) -> Field {
    Field::new(
        "c_ts",
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into())),
        true,
    )
}

fn ts_utc(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone(UTC))
}

fn ntz_column() -> (Field, ArrayRef) {
    (
        Field::new(
            "c_ts_ntz",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Arc::new(TimestampMicrosecondArray::from(timestamps())),
    )
}

/// [`all_types`]' columns as delivered: zone Etc/UTC (Databricks' session zone), nanoseconds at
/// +02:00, void as Arrow Null, a struct as JSON text.
fn delivered(
    shared: Vec<(Field, ArrayRef)>,
    nested: Vec<(Field, ArrayRef)>,
) -> Vec<(Field, ArrayRef)> {
    let zoned_ns = vec![
        Some(LEAP_DAY_US * 1000),
        None,
        Some(0),
        Some(1_000),
        Some(5_000_000_000),
    ];
    let mut input = shared;
    input.push((
        ts_field("Etc/UTC"),
        Arc::new(TimestampMicrosecondArray::from(timestamps()).with_timezone("Etc/UTC")),
    ));
    input.push(ntz_column());
    input.push((
        Field::new(
            "c_ts_zoned",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
            true,
        ),
        Arc::new(TimestampNanosecondArray::from(zoned_ns).with_timezone("+02:00")),
    ));
    input.extend(nested);
    input.push((
        Field::new("c_void", DataType::Null, true),
        Arc::new(NullArray::new(5)),
    ));
    input.push((
        Field::new("c_json_struct", DataType::Utf8, true),
        Arc::new(StringArray::from(json_struct_text())),
    ));
    input
}

/// [`all_types`]' columns as they should be read back: from DuckDB or Parquet, and from CSV.
fn read_back(
    shared: Vec<(Field, ArrayRef)>,
    nested: Vec<(Field, ArrayRef)>,
) -> (Vec<(Field, ArrayRef)>, Vec<(Field, ArrayRef)>) {
    let zoned_us = vec![Some(LEAP_DAY_US), None, Some(0), Some(1), Some(5_000_000)];
    let xy = xy_struct(&[
        Some((Some(1), Some("a"))),
        None,
        Some((None, None)),
        Some((None, Some("only y"))),
        Some((Some(-5), Some("\"q\""))),
    ]);
    let mut expected = shared;
    expected.push((ts_field(UTC), ts_utc(timestamps())));
    expected.push(ntz_column());
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
    let mut csv_json = json_struct_text();
    csv_json[3] = Some(r#"{"x":null,"y":"only y"}"#);
    expected_csv.push((
        Field::new("c_json_struct", DataType::Utf8, true),
        Arc::new(StringArray::from(csv_json)),
    ));
    (expected, expected_csv)
}

/// One batch of `columns`.
fn whole(columns: Vec<(Field, ArrayRef)>) -> RecordBatch {
    let (fields, arrays): (Vec<_>, Vec<_>) = columns.into_iter().unzip();
    batch(fields, arrays)
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
