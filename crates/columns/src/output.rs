//! From the canonical Arrow types ([`crate::arrow_type`]) to what each output format writes, and
//! the conversion of each batch on the way.
//!
//! A sink receives batches already of [`crate::arrow_schema`] (the [`Source`] contract); the
//! plan checks that promise once, at the start of a table ([`OutputPlan::new`]), and then only
//! converts what a format cannot hold as it is:
//!
//! | canonical Arrow | DuckDB | Parquet | CSV |
//! |---|---|---|---|
//! | Interval(YearMonth), Duration(µs) (also nested) | Interval(MonthDayNano) | as is | YearMonth as ISO 8601 text (`P1Y2M`); Duration as is |
//! | List, Map, Struct | as is, children of NULL structs made NULL | as is | JSON text (arrow-json; map keys as strings) |
//! | everything else | as is | as is | as is |
//!
//! Conversions use Arrow's kernels (`cast` with `safe: false`, arrow-json); values are never
//! touched one by one on the path of ordinary columns.
//!
//! [`Source`]: https://docs.rs/publish-source

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, RecordBatch, RecordBatchOptions, StringArray,
    StringBuilder, StructArray, make_array,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Field, FieldRef, IntervalUnit, IntervalYearMonthType, Schema, SchemaRef,
};
use arrow::error::ArrowError;
use arrow::json::writer::{EncoderOptions, make_encoder};
use publish_types::{OutputFormat, TableSchema};

use crate::arrow_schema;
use crate::conform::cast;

/// Why a table or a batch cannot be written. Never holds a cell value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The Arrow schema announced or carried by a batch is not the canonical one of the
    /// declared table (or the table declares no columns).
    SchemaMismatch(String),
    /// A value of `column` cannot be converted for the format.
    InvalidValue {
        /// Column name.
        column: String,
        /// What is wrong, without the value.
        detail: String,
    },
    /// A column declared NOT NULL holds a null.
    NullInNotNull {
        /// Column name.
        column: String,
    },
}

/// How one canonical column becomes the column written.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Written as it arrives.
    Keep,
    /// Arrow `cast` to this type.
    Cast(DataType),
    /// Encoded as JSON text, after an optional cast (map keys to strings).
    ToJson(Option<DataType>),
    /// A year-month interval as ISO 8601 text (`P1Y2M`, `-P0Y1M`).
    YearMonthText,
}

/// The conversion of one table's batches for one format, decided at the start of the table.
#[derive(Debug)]
pub struct OutputPlan {
    table: TableSchema,
    input: SchemaRef,
    output: SchemaRef,
    steps: Vec<Step>,
    /// Per column: make the children of NULL structs NULL too (DuckDB expects that).
    struct_nulls: Vec<bool>,
}

impl OutputPlan {
    /// Plans writing `table` in `format` from batches of `input`, which must be the canonical
    /// schema of `table` ([`crate::arrow_schema`]: same names and Arrow types, in order; the
    /// nullability of the Arrow fields is not relied on, the declared one is checked per batch).
    pub fn new(
        table: &TableSchema,
        input: SchemaRef,
        format: OutputFormat,
    ) -> Result<Self, PlanError> {
        if !format.is_file() {
            return Err(PlanError::SchemaMismatch(format!(
                "{format:?} is not a file format; a database destination plans its columns with \
                 PostgresPlan"
            )));
        }
        let canonical = check_canonical(table, &input)?;
        let mut steps = Vec::with_capacity(table.columns.len());
        let mut fields = Vec::with_capacity(table.columns.len());
        for (column, want) in table.columns.iter().zip(canonical.fields()) {
            let (step, written) = plan_column(want.data_type(), format);
            steps.push(step);
            fields.push(Field::new(want.name(), written, column.nullable));
        }
        let struct_nulls = fields
            .iter()
            .map(|f| format == OutputFormat::Duckdb && has_struct(f.data_type()))
            .collect();
        Ok(Self {
            table: table.clone(),
            input,
            output: Arc::new(Schema::new(fields)),
            steps,
            struct_nulls,
        })
    }

    /// The declared table.
    pub fn table(&self) -> &TableSchema {
        &self.table
    }

    /// The schema of the batches written: Unity Catalog names and declared nullability.
    pub fn output(&self) -> &SchemaRef {
        &self.output
    }

    /// Checks that `batch` has the Arrow schema the plan was made for.
    pub fn check(&self, batch: &RecordBatch) -> Result<(), PlanError> {
        check_batch(&self.input, batch)
    }

    /// Converts a batch (already [checked](Self::check)) into the output schema.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, PlanError> {
        let mut columns = Vec::with_capacity(self.steps.len());
        for (((step, array), field), struct_nulls) in self
            .steps
            .iter()
            .zip(batch.columns())
            .zip(self.output.fields())
            .zip(&self.struct_nulls)
        {
            let invalid = |detail: String| PlanError::InvalidValue {
                column: field.name().clone(),
                detail,
            };
            let array = apply_step(step, array).map_err(invalid)?;
            let array = if *struct_nulls {
                push_struct_nulls(&array).map_err(|e| invalid(without_values(&e)))?
            } else {
                array
            };
            if !field.is_nullable() && array.null_count() > 0 {
                return Err(PlanError::NullInNotNull {
                    column: field.name().clone(),
                });
            }
            columns.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(Arc::clone(&self.output), columns, &options)
            .map_err(|e| PlanError::SchemaMismatch(format!("converted batch does not fit: {e}")))
    }
}

/// Checks that `input` is the canonical schema of `table` ([`crate::arrow_schema`]: same
/// names and Arrow types, in order; nullability is checked per batch, not here) and returns
/// that canonical schema. Every plan (each file format's, PostgreSQL's) starts here.
pub(crate) fn check_canonical(
    table: &TableSchema,
    input: &SchemaRef,
) -> Result<SchemaRef, PlanError> {
    if table.columns.is_empty() {
        return Err(PlanError::SchemaMismatch("no columns were declared".into()));
    }
    let canonical = arrow_schema(table);
    if input.fields().len() != canonical.fields().len() {
        return Err(PlanError::SchemaMismatch(format!(
            "{} columns were declared but the Arrow schema has {}",
            canonical.fields().len(),
            input.fields().len()
        )));
    }
    for ((column, want), have) in table
        .columns
        .iter()
        .zip(canonical.fields())
        .zip(input.fields())
    {
        if want.name() != have.name() {
            return Err(PlanError::SchemaMismatch(format!(
                "declared column `{}` arrives as Arrow field `{}`; columns must come in the declared order, named as declared",
                want.name(),
                have.name()
            )));
        }
        if want.data_type() != have.data_type() {
            return Err(PlanError::SchemaMismatch(format!(
                "column `{}` of type {} arrives as Arrow {}, but a source delivers it as {} (publish_columns::arrow_type)",
                want.name(),
                column.data_type,
                have.data_type(),
                want.data_type()
            )));
        }
    }
    Ok(canonical)
}

/// Checks that `batch` has the Arrow types of `input`, the schema a table was begun with.
pub(crate) fn check_batch(input: &SchemaRef, batch: &RecordBatch) -> Result<(), PlanError> {
    let got = batch.schema();
    let detail = if got.fields().len() != input.fields().len() {
        format!(
            "a batch has {} columns, but the table was begun with {}",
            got.fields().len(),
            input.fields().len()
        )
    } else if let Some((want, have)) = input
        .fields()
        .iter()
        .zip(got.fields())
        .find(|(want, have)| want.data_type() != have.data_type())
    {
        format!(
            "column `{}` arrives as {} in a batch, but the table was begun with {}",
            want.name(),
            have.data_type(),
            want.data_type()
        )
    } else {
        return Ok(());
    };
    Err(PlanError::SchemaMismatch(detail))
}

/// What went wrong, without Arrow's message where it may quote the offending value.
pub(crate) fn without_values(e: &ArrowError) -> String {
    match e {
        ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::JsonError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::ComputeError(_)
        | ArrowError::ArithmeticOverflow(_) => {
            "a value cannot be converted for the output (values are never shown)".to_owned()
        }
        other => other.to_string(),
    }
}

/// Converts one column as its step says; an error's text never holds a value. The one place
/// a planned conversion is carried out, for the file formats and the PostgreSQL destination.
pub(crate) fn apply_step(step: &Step, array: &ArrayRef) -> Result<ArrayRef, String> {
    Ok(match step {
        Step::Keep => Arc::clone(array),
        Step::Cast(to) => cast(array, to)?,
        Step::ToJson(pre) => {
            let array = match pre {
                Some(to) => cast(array, to)?,
                None => Arc::clone(array),
            };
            to_json(&array).map_err(|e| without_values(&e))?
        }
        Step::YearMonthText => year_month_text(array),
    })
}

/// The step and the written type of a canonical column in `format`.
fn plan_column(canonical: &DataType, format: OutputFormat) -> (Step, DataType) {
    match format {
        OutputFormat::Duckdb => {
            let to = month_day_nano(canonical);
            if to == *canonical {
                (Step::Keep, to)
            } else {
                (Step::Cast(to.clone()), to)
            }
        }
        // `OutputPlan::new` refuses `Sql` (the database destination plans with `PostgresPlan`).
        OutputFormat::Parquet | OutputFormat::Sql => (Step::Keep, canonical.clone()),
        OutputFormat::Csv => match canonical {
            DataType::List(_) | DataType::Map(..) | DataType::Struct(_) => {
                let to = json_friendly(canonical);
                let pre = (to != *canonical).then_some(to);
                (Step::ToJson(pre), DataType::Utf8)
            }
            // Arrow displays -1 month as "-1 years 11 mons"; CSV gets ISO 8601 instead.
            DataType::Interval(IntervalUnit::YearMonth) => (Step::YearMonthText, DataType::Utf8),
            _ => (Step::Keep, canonical.clone()),
        },
    }
}

/// `t` with every interval (at any depth) as DuckDB's month-day-micros interval.
fn month_day_nano(t: &DataType) -> DataType {
    map_fields(t, &|t| match t {
        DataType::Interval(_) | DataType::Duration(_) => {
            Some(DataType::Interval(IntervalUnit::MonthDayNano))
        }
        _ => None,
    })
}

/// `t` with every map key turned into a string, which JSON objects need.
pub(crate) fn json_friendly(t: &DataType) -> DataType {
    match t {
        DataType::Map(entries, sorted) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                let key = match kv[0].data_type() {
                    DataType::Utf8 => Arc::clone(&kv[0]),
                    _ => Arc::new(Field::new(kv[0].name(), DataType::Utf8, false)),
                };
                let value = with_type(&kv[1], json_friendly(kv[1].data_type()));
                DataType::Map(
                    Arc::new(Field::new(
                        entries.name(),
                        DataType::Struct(vec![key, value].into()),
                        false,
                    )),
                    *sorted,
                )
            }
            _ => t.clone(),
        },
        _ => map_fields(t, &|t| {
            matches!(t, DataType::Map(..)).then(|| json_friendly(t))
        }),
    }
}

/// `t` rebuilt with `leaf` applied to every type below (and including) it; `leaf` returns
/// `Some` to replace a type, `None` to keep descending.
fn map_fields(t: &DataType, leaf: &dyn Fn(&DataType) -> Option<DataType>) -> DataType {
    if let Some(replaced) = leaf(t) {
        return replaced;
    }
    let child = |f: &FieldRef| with_type(f, map_fields(f.data_type(), leaf));
    match t {
        DataType::List(f) => DataType::List(child(f)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(child).collect()),
        DataType::Map(entries, sorted) => DataType::Map(child(entries), *sorted),
        _ => t.clone(),
    }
}

fn with_type(field: &FieldRef, to: DataType) -> FieldRef {
    if to == *field.data_type() {
        Arc::clone(field)
    } else {
        Arc::new(Field::new(field.name(), to, field.is_nullable()))
    }
}

fn has_struct(t: &DataType) -> bool {
    match t {
        DataType::Struct(_) => true,
        DataType::List(f) => has_struct(f.data_type()),
        DataType::Map(entries, _) => has_struct(entries.data_type()),
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
pub(crate) fn to_json(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform_columns;
    use publish_types::UcType;

    #[test]
    fn json_text_round_trips_through_the_canonical_type() {
        let to = crate::arrow_type(&UcType::parse("struct<a:int,b:array<string>>").unwrap());
        let schema = Arc::new(Schema::new(vec![Field::new("v", to, true)]));
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some(r#"{"a": 1, "b": ["x", null]}"#),
            None,
            Some(r#"{"a": null, "b": []}"#),
        ]));
        let parsed = conform_columns(&[text], 3, &schema).unwrap();
        let back = to_json(parsed.column(0)).unwrap();
        let back = back.as_string::<i32>();
        assert_eq!(back.value(0), r#"{"a":1,"b":["x",null]}"#);
        assert!(back.is_null(1));
        assert_eq!(back.value(2), r#"{"a":null,"b":[]}"#);
    }
}
