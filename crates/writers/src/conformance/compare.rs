//! How the suite compares what it reads back with what it wrote: every cell as JSON text after
//! normalising what legitimately differs between readers, type shapes without field names, and
//! the text each cell should have in CSV.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, IntervalUnit, TimeUnit};
use arrow::json::writer::{EncoderOptions, make_encoder};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use publish_columns::UTC;

pub(super) fn assert_same_rows(got: &RecordBatch, want: &RecordBatch, what: &str) {
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
pub(super) fn sketch(t: &DataType) -> String {
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
pub(super) fn cells_of_text(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
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
pub(super) fn csv_cells(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
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
