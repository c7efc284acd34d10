//! From the declared Unity Catalog type and the Arrow type a column arrives as, to the Arrow type
//! a format writes — and the conversion of each batch on the way.
//!
//! The plan is made once per table ([`TablePlan::new`]), so that a column that cannot be
//! written fails `begin_table`, not the millionth row. Conversions use Arrow's kernels: `cast`
//! with `safe: false` (an overflow is an error, never a silent NULL), arrow-json to parse or
//! produce JSON text.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StringArray, StringBuilder, StructArray,
    make_array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, IntervalUnit, IntervalYearMonthType, Schema, SchemaRef,
    TimeUnit,
};
use arrow::error::ArrowError;
use arrow::json::ReaderBuilder;
use arrow::json::writer::{EncoderOptions, make_encoder};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use publish_types::{TableSchema, UcType};

use crate::SinkError;

/// The time zone every TIMESTAMP is written in: UTC, spelled as an offset because Arrow
/// (built without `chrono-tz`) cannot format or parse named zones such as "UTC" or "Etc/UTC".
pub(crate) const UTC: &str = "+00:00";

/// Which output a plan is for; they differ in what they can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// DuckDB: native nested types; all intervals as month-day-nanosecond.
    DuckDb,
    /// Parquet: native nested types; no month-day-nanosecond intervals.
    Parquet,
    /// CSV: text only; nested values as JSON text.
    Csv,
}

/// How one column of a batch becomes the column written.
#[derive(Debug, Clone)]
enum Step {
    /// Written as it arrives.
    Keep,
    /// Arrow `cast` to this type.
    Cast(DataType),
    /// JSON text parsed into this (nested) type.
    ParseJson(FieldRef),
    /// Encoded as JSON text, after an optional cast (map keys to strings).
    ToJson(Option<DataType>),
    /// A year-month interval as ISO 8601 text (`P1Y2M`, `-P0Y1M`).
    YearMonthText,
}

/// The conversion of one table's batches, decided at `begin_table`.
#[derive(Debug)]
pub(crate) struct TablePlan {
    /// The declared table.
    pub(crate) table: TableSchema,
    /// The Arrow schema every batch arrives with.
    input: SchemaRef,
    /// The schema of the batches written: Unity Catalog names and nullability.
    pub(crate) output: SchemaRef,
    steps: Vec<Step>,
    /// Per column: make the children of NULL structs NULL too (DuckDB expects that).
    struct_nulls: Vec<bool>,
}

impl TablePlan {
    /// Plans the conversion of `input` batches into a table of `flavor`.
    pub(crate) fn new(
        table: &TableSchema,
        input: SchemaRef,
        flavor: Flavor,
    ) -> Result<Self, SinkError> {
        let name = table.table.as_str();
        let mismatch = |detail: String| SinkError::SchemaMismatch {
            table: name.to_owned(),
            detail,
        };
        if table.columns.is_empty() {
            return Err(mismatch("no columns were declared".into()));
        }
        if input.fields().len() != table.columns.len() {
            return Err(mismatch(format!(
                "{} columns were declared but the Arrow schema has {}",
                table.columns.len(),
                input.fields().len()
            )));
        }
        let mut steps = Vec::with_capacity(table.columns.len());
        let mut fields = Vec::with_capacity(table.columns.len());
        for (column, field) in table.columns.iter().zip(input.fields()) {
            if !column.name.as_str().eq_ignore_ascii_case(field.name()) {
                return Err(mismatch(format!(
                    "declared column `{}` arrives as Arrow field `{}`; columns must come in the declared order",
                    column.name,
                    field.name()
                )));
            }
            let (step, data_type) = plan_column(&column.data_type, field.data_type(), flavor)
                .map_err(|detail| SinkError::UnsupportedType {
                    table: name.to_owned(),
                    column: column.name.to_string(),
                    type_text: column.data_type.to_string(),
                    detail,
                })?;
            steps.push(step);
            fields.push(Field::new(column.name.as_str(), data_type, column.nullable));
        }
        let struct_nulls = fields
            .iter()
            .map(|f| flavor == Flavor::DuckDb && has_struct(f.data_type()))
            .collect();
        Ok(Self {
            table: table.clone(),
            input,
            output: Arc::new(Schema::new(fields)),
            steps,
            struct_nulls,
        })
    }

    /// Checks that `batch` has the Arrow schema announced at `begin_table`.
    pub(crate) fn check(&self, batch: &RecordBatch) -> Result<(), SinkError> {
        let got = batch.schema();
        let detail = if got.fields().len() != self.input.fields().len() {
            format!(
                "a batch has {} columns, but begin_table announced {}",
                got.fields().len(),
                self.input.fields().len()
            )
        } else if let Some((want, have)) = self
            .input
            .fields()
            .iter()
            .zip(got.fields())
            .find(|(want, have)| want.data_type() != have.data_type())
        {
            format!(
                "column `{}` arrives as {} in a batch, but begin_table announced {}",
                want.name(),
                have.data_type(),
                want.data_type()
            )
        } else {
            return Ok(());
        };
        Err(SinkError::SchemaMismatch {
            table: self.table.table.to_string(),
            detail,
        })
    }

    /// Converts a batch (already [checked](Self::check)) into the output schema.
    pub(crate) fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, SinkError> {
        let mut columns = Vec::with_capacity(self.steps.len());
        for (((step, array), field), struct_nulls) in self
            .steps
            .iter()
            .zip(batch.columns())
            .zip(self.output.fields())
            .zip(&self.struct_nulls)
        {
            let invalid = |e: ArrowError| SinkError::InvalidValue {
                table: self.table.table.to_string(),
                column: field.name().clone(),
                detail: without_values(&e),
            };
            let array = match step {
                Step::Keep => Arc::clone(array),
                Step::Cast(to) => cast(array, to).map_err(invalid)?,
                Step::ParseJson(to) => parse_json(array, to).map_err(invalid)?,
                Step::ToJson(pre) => {
                    let array = match pre {
                        Some(to) => cast(array, to).map_err(invalid)?,
                        None => Arc::clone(array),
                    };
                    to_json(&array).map_err(invalid)?
                }
                Step::YearMonthText => year_month_text(array),
            };
            let array = if *struct_nulls {
                push_struct_nulls(&array).map_err(invalid)?
            } else {
                array
            };
            if !field.is_nullable() && array.null_count() > 0 {
                return Err(SinkError::NullInNotNull {
                    table: self.table.table.to_string(),
                    column: field.name().clone(),
                });
            }
            columns.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(Arc::clone(&self.output), columns, &options).map_err(
            |e| SinkError::Internal {
                message: format!("converted batch does not fit its schema: {e}"),
            },
        )
    }
}

/// What went wrong converting a column, without Arrow's message where it quotes the offending
/// value (casts, parsing, JSON): a cell value never reaches an error or a log.
fn without_values(e: &ArrowError) -> String {
    match e {
        ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::JsonError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::ComputeError(_)
        | ArrowError::ArithmeticOverflow(_) => {
            "a value cannot be converted to the declared type (values are never shown)".to_owned()
        }
        other => other.to_string(),
    }
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, to, &options)
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn plan_column(uc: &UcType, arrow: &DataType, flavor: Flavor) -> Result<(Step, DataType), String> {
    match uc {
        UcType::Array(_) | UcType::Map(..) | UcType::Struct(_) if is_text(arrow) => {
            if flavor == Flavor::Csv {
                Ok((Step::Keep, arrow.clone()))
            } else {
                let to = canonical(uc)?;
                Ok((
                    Step::ParseJson(Arc::new(Field::new("v", to.clone(), true))),
                    to,
                ))
            }
        }
        UcType::Array(_) | UcType::Map(..) | UcType::Struct(_) if flavor == Flavor::Csv => {
            let to = json_friendly(&target(uc, arrow, flavor)?);
            let pre = (to != *arrow).then(|| to.clone());
            if let Some(pre) = &pre
                && !can_cast_types(arrow, pre)
            {
                return Err(format!(
                    "it arrives as Arrow {arrow}, which cannot be converted to {pre}"
                ));
            }
            Ok((Step::ToJson(pre), DataType::Utf8))
        }
        // Arrow displays -1 month as "-1 years 11 mons"; CSV gets ISO 8601 instead.
        UcType::Interval(_)
            if flavor == Flavor::Csv && *arrow == DataType::Interval(IntervalUnit::YearMonth) =>
        {
            Ok((Step::YearMonthText, DataType::Utf8))
        }
        UcType::Variant | UcType::Other(_) => {
            if is_text(arrow) {
                Ok((Step::Keep, arrow.clone()))
            } else if *arrow == DataType::Null {
                Ok((Step::Cast(DataType::Utf8), DataType::Utf8))
            } else {
                let to = json_friendly(arrow);
                Ok((Step::ToJson((to != *arrow).then_some(to)), DataType::Utf8))
            }
        }
        _ => {
            let to = target(uc, arrow, flavor)?;
            if to == *arrow {
                Ok((Step::Keep, to))
            } else if can_cast_types(arrow, &to) {
                Ok((Step::Cast(to.clone()), to))
            } else {
                Err(format!(
                    "it arrives as Arrow {arrow}, which cannot be converted to {to}"
                ))
            }
        }
    }
}

/// The type a column of declared type `uc`, arriving as `arrow`, is written as. Nested types keep
/// the arriving field names, so that a batch already in shape is written untouched.
fn target(uc: &UcType, arrow: &DataType, flavor: Flavor) -> Result<DataType, String> {
    let arrives = || format!("it arrives as Arrow {arrow}");
    Ok(match uc {
        UcType::Boolean => DataType::Boolean,
        UcType::TinyInt => DataType::Int8,
        UcType::SmallInt => DataType::Int16,
        UcType::Int => DataType::Int32,
        UcType::BigInt => DataType::Int64,
        UcType::Float => DataType::Float32,
        UcType::Double => DataType::Float64,
        UcType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
        UcType::String | UcType::Char(_) | UcType::Varchar(_) if is_text(arrow) => arrow.clone(),
        UcType::String | UcType::Char(_) | UcType::Varchar(_) => DataType::Utf8,
        UcType::Binary => match arrow {
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => arrow.clone(),
            _ => DataType::Binary,
        },
        UcType::Date => DataType::Date32,
        UcType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        UcType::TimestampNtz => DataType::Timestamp(TimeUnit::Microsecond, None),
        UcType::Interval(_) => match (arrow, flavor) {
            (t, _) if is_text(t) => t.clone(),
            // DuckDB stores month-day-micros; Arrow's cast gets every interval there, with an
            // error (not a wrong value) where it cannot.
            (DataType::Interval(_) | DataType::Duration(_), Flavor::DuckDb) => {
                DataType::Interval(IntervalUnit::MonthDayNano)
            }
            (DataType::Interval(IntervalUnit::MonthDayNano), Flavor::Parquet) => {
                return Err(format!(
                    "{}; Parquet has no month-day-nanosecond interval",
                    arrives()
                ));
            }
            (DataType::Interval(_) | DataType::Duration(_), _) => arrow.clone(),
            _ => return Err(format!("{}, which is not an interval", arrives())),
        },
        UcType::Variant | UcType::Other(_) => match arrow {
            t if is_text(t) => t.clone(),
            DataType::Null => DataType::Utf8,
            _ => {
                return Err(format!(
                    "{}; inside a nested type only text is accepted for it",
                    arrives()
                ));
            }
        },
        UcType::Array(element) => match arrow {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                DataType::List(child(f, element, flavor)?)
            }
            _ => return Err(format!("{}, which is not a list", arrives())),
        },
        UcType::Map(key, value) => match arrow {
            DataType::Map(entries, sorted) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    let kv = Fields::from(vec![
                        child(&kv[0], key, flavor)?,
                        child(&kv[1], value, flavor)?,
                    ]);
                    DataType::Map(
                        Arc::new(Field::new(entries.name(), DataType::Struct(kv), false)),
                        *sorted,
                    )
                }
                _ => return Err(format!("{}, a map without key and value", arrives())),
            },
            _ => return Err(format!("{}, which is not a map", arrives())),
        },
        UcType::Struct(declared) => match arrow {
            DataType::Struct(fields) if fields.len() == declared.len() => {
                let mut out = Vec::with_capacity(fields.len());
                for (field, decl) in fields.iter().zip(declared) {
                    if !field.name().eq_ignore_ascii_case(&decl.name) {
                        return Err(format!(
                            "{}; its field `{}` should be `{}`",
                            arrives(),
                            field.name(),
                            decl.name
                        ));
                    }
                    out.push(child(field, &decl.data_type, flavor)?);
                }
                DataType::Struct(Fields::from(out))
            }
            _ => {
                return Err(format!(
                    "{}, which is not a struct of {} fields",
                    arrives(),
                    declared.len()
                ));
            }
        },
    })
}

/// A nested child as written: the arriving field itself when its type is already right.
fn child(field: &FieldRef, uc: &UcType, flavor: Flavor) -> Result<FieldRef, String> {
    let to = target(uc, field.data_type(), flavor)?;
    Ok(if to == *field.data_type() {
        Arc::clone(field)
    } else {
        Arc::new(Field::new(field.name(), to, field.is_nullable()))
    })
}

/// The type JSON text of declared type `uc` is parsed into.
fn canonical(uc: &UcType) -> Result<DataType, String> {
    Ok(match uc {
        UcType::Array(element) => {
            DataType::List(Arc::new(Field::new("element", canonical(element)?, true)))
        }
        UcType::Map(key, value) => DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", canonical(key)?, false),
                    Field::new("value", canonical(value)?, true),
                ])),
                false,
            )),
            false,
        ),
        UcType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Ok(Field::new(&f.name, canonical(&f.data_type)?, f.nullable)))
                .collect::<Result<Fields, String>>()?,
        ),
        UcType::Interval(_) => {
            return Err("an interval inside JSON text cannot be parsed".into());
        }
        UcType::Variant | UcType::Other(_) => DataType::Utf8,
        scalar => target(scalar, &DataType::Utf8, Flavor::Parquet)?,
    })
}

/// `t` with every map key turned into a string, which JSON objects need.
fn json_friendly(t: &DataType) -> DataType {
    let field = |f: &FieldRef| {
        let to = json_friendly(f.data_type());
        if to == *f.data_type() {
            Arc::clone(f)
        } else {
            Arc::new(Field::new(f.name(), to, f.is_nullable()))
        }
    };
    match t {
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::Map(entries, sorted) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                let key = if is_text(kv[0].data_type()) {
                    Arc::clone(&kv[0])
                } else {
                    Arc::new(Field::new(kv[0].name(), DataType::Utf8, false))
                };
                let kv = Fields::from(vec![key, field(&kv[1])]);
                DataType::Map(
                    Arc::new(Field::new(entries.name(), DataType::Struct(kv), false)),
                    *sorted,
                )
            }
            _ => t.clone(),
        },
        _ => t.clone(),
    }
}

fn has_struct(t: &DataType) -> bool {
    match t {
        DataType::Struct(_) => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            has_struct(f.data_type())
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => kv.iter().any(|f| has_struct(f.data_type())),
            _ => false,
        },
        _ => false,
    }
}

/// `array` with every child of a NULL struct NULL as well, at any depth. Arrow leaves such
/// children undefined; DuckDB assumes they are NULL and would otherwise show their values
/// through `s.field` on a NULL `s`.
fn push_struct_nulls(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    Ok(match array.data_type() {
        DataType::Struct(_) => {
            let (fields, children, nulls) = array.as_struct().clone().into_parts();
            let children = children
                .iter()
                .map(|child| {
                    let child = push_struct_nulls(child)?;
                    match &nulls {
                        Some(parent) if parent.null_count() > 0 => {
                            let merged = NullBuffer::union(child.nulls(), Some(parent));
                            Ok(make_array(
                                child.to_data().into_builder().nulls(merged).build()?,
                            ))
                        }
                        _ => Ok(child),
                    }
                })
                .collect::<Result<Vec<_>, ArrowError>>()?;
            Arc::new(StructArray::try_new(fields, children, nulls)?)
        }
        DataType::List(_) => {
            let (field, offsets, values, nulls) = array.as_list::<i32>().clone().into_parts();
            Arc::new(ListArray::try_new(
                field,
                offsets,
                push_struct_nulls(&values)?,
                nulls,
            )?)
        }
        DataType::Map(..) => {
            let (field, offsets, entries, nulls, sorted) = array.as_map().clone().into_parts();
            let entries: ArrayRef = Arc::new(entries);
            let entries = push_struct_nulls(&entries)?.as_struct().clone();
            Arc::new(MapArray::try_new(field, offsets, entries, nulls, sorted)?)
        }
        _ => Arc::clone(array),
    })
}

fn year_month_text(array: &ArrayRef) -> ArrayRef {
    let text: StringArray = array
        .as_primitive::<IntervalYearMonthType>()
        .iter()
        .map(|months| {
            months.map(|m| {
                let sign = if m < 0 { "-" } else { "" };
                let m = m.unsigned_abs();
                format!("{sign}P{}Y{}M", m / 12, m % 12)
            })
        })
        .collect();
    Arc::new(text)
}

/// Each value of `array` as JSON text (arrow-json's encoding), NULL staying NULL.
fn to_json(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let field = Arc::new(Field::new("v", array.data_type().clone(), true));
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let mut encoder = make_encoder(&field, array.as_ref(), &options)?;
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
    let mut buf = Vec::new();
    for row in 0..array.len() {
        if array.is_null(row) {
            out.append_null();
        } else {
            buf.clear();
            encoder.encode(row, &mut buf);
            let text = std::str::from_utf8(&buf).map_err(|e| {
                ArrowError::JsonError(format!("encoder produced invalid UTF-8: {e}"))
            })?;
            out.append_value(text);
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Parses each text value of `array` as one JSON value of type `to`.
fn parse_json(array: &ArrayRef, to: &FieldRef) -> Result<ArrayRef, ArrowError> {
    let text = cast(array, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let mut ndjson = Vec::with_capacity(text.value_data().len() + text.len() * 8);
    for value in text.iter() {
        ndjson.extend_from_slice(b"{\"v\":");
        ndjson.extend_from_slice(value.unwrap_or("null").as_bytes());
        ndjson.extend_from_slice(b"}\n");
    }
    let schema = Arc::new(Schema::new(vec![Arc::clone(to)]));
    let mut decoder = ReaderBuilder::new(schema)
        .with_batch_size(text.len().max(1))
        .build_decoder()?;
    let read = decoder.decode(&ndjson)?;
    let parsed = decoder.flush()?;
    let rows = parsed.as_ref().map_or(0, RecordBatch::num_rows);
    if read != ndjson.len() || rows != text.len() {
        return Err(ArrowError::JsonError(
            "a value is not exactly one JSON value of the declared type".into(),
        ));
    }
    match parsed {
        Some(batch) => Ok(Arc::clone(batch.column(0))),
        None => Ok(arrow::array::new_empty_array(to.data_type())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uc(text: &str) -> UcType {
        UcType::parse(text).unwrap()
    }

    #[test]
    fn canonical_types_need_no_conversion() {
        let utc = || Some(Arc::from(UTC));
        for (text, arrow) in [
            ("bigint", DataType::Int64),
            ("decimal(38,10)", DataType::Decimal128(38, 10)),
            (
                "timestamp",
                DataType::Timestamp(TimeUnit::Microsecond, utc()),
            ),
            (
                "timestamp_ntz",
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ),
            ("string", DataType::Utf8),
            ("binary", DataType::Binary),
        ] {
            for flavor in [Flavor::DuckDb, Flavor::Parquet, Flavor::Csv] {
                let (step, to) = plan_column(&uc(text), &arrow, flavor).unwrap();
                assert!(matches!(step, Step::Keep), "{text} {flavor:?}: {step:?}");
                assert_eq!(to, arrow);
            }
        }
    }

    #[test]
    fn other_zones_become_utc_and_units_microseconds() {
        let from = DataType::Timestamp(TimeUnit::Nanosecond, Some("Etc/UTC".into()));
        let (step, to) = plan_column(&uc("timestamp"), &from, Flavor::Parquet).unwrap();
        assert!(matches!(step, Step::Cast(_)));
        assert_eq!(
            to,
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        );
    }

    #[test]
    fn wrong_shapes_are_unsupported() {
        assert!(plan_column(&uc("array<int>"), &DataType::Int32, Flavor::DuckDb).is_err());
        assert!(plan_column(&uc("date"), &DataType::Binary, Flavor::DuckDb).is_err());
        let mdn = DataType::Interval(IntervalUnit::MonthDayNano);
        assert!(plan_column(&uc("interval day to second"), &mdn, Flavor::Parquet).is_err());
    }

    #[test]
    fn json_text_round_trips() {
        let to = canonical(&uc("struct<a:int,b:array<string>>")).unwrap();
        let field = Arc::new(Field::new("v", to, true));
        let text: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            Some(r#"{"a": 1, "b": ["x", null]}"#),
            None,
            Some(r#"{"a": null, "b": []}"#),
        ]));
        let parsed = parse_json(&text, &field).unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(parsed.is_null(1));
        let back = to_json(&parsed).unwrap();
        let back = back.as_string::<i32>();
        assert_eq!(back.value(0), r#"{"a":1,"b":["x",null]}"#);
        assert!(back.is_null(1));
        assert_eq!(back.value(2), r#"{"a":null,"b":[]}"#);
    }

    #[test]
    fn json_text_with_extra_values_is_rejected() {
        let field = Arc::new(Field::new(
            "v",
            DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
            true,
        ));
        let text: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["[1]}\n{\"v\":[2]"]));
        assert!(parse_json(&text, &field).is_err());
        let text: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![""]));
        assert!(parse_json(&text, &field).is_err());
    }
}
