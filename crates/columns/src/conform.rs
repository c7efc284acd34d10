//! Whatever a wire delivered, converted into the canonical Arrow types ([`crate::arrow_type`]):
//! units and zones of timestamps, decimals and numbers sent as text, nested values sent as JSON
//! text, differently named nested children. Every source calls this; nothing downstream
//! converts again.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, MapArray, RecordBatch, RecordBatchOptions,
    StructArray, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use arrow::util::display::FormatOptions;

/// Converts `columns` (positionally the target's fields) into a batch of exactly `target`.
/// `Err` says which column could not be converted and why.
pub fn conform_columns(
    columns: &[ArrayRef],
    num_rows: usize,
    target: &SchemaRef,
) -> Result<RecordBatch, String> {
    if columns.len() != target.fields().len() {
        return Err(format!(
            "expected {} columns, got {}",
            target.fields().len(),
            columns.len()
        ));
    }
    let converted = columns
        .iter()
        .zip(target.fields())
        .map(|(array, field)| {
            conform_array(array, field.data_type())
                .map_err(|e| format!("column `{}`: {e}", field.name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        target.clone(),
        converted,
        &RecordBatchOptions::new().with_row_count(Some(num_rows)),
    )
    .map_err(|e| e.to_string())
}

/// Converts one array to `target`, recursing into nested types so that differently named or
/// typed children (Spark's `element` vs `item`, `Etc/UTC` vs `UTC`) are rebuilt as declared.
fn conform_array(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    let source = array.data_type();
    if source == target {
        return Ok(array.clone());
    }
    match (source, target) {
        (DataType::Null, _) => Ok(new_null_array(target, array.len())),
        (
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View,
            DataType::List(_) | DataType::Map(..) | DataType::Struct(_),
        ) => parse_json_text(array, target),
        (DataType::List(_) | DataType::LargeList(_), DataType::List(item)) => {
            let list = if matches!(source, DataType::LargeList(_)) {
                let large = array.as_list::<i64>();
                let offsets = large
                    .offsets()
                    .iter()
                    .map(|o| i32::try_from(*o).map_err(|_| "list too long".to_owned()))
                    .collect::<Result<Vec<_>, _>>()?;
                (
                    arrow::buffer::OffsetBuffer::new(offsets.into()),
                    large.values().clone(),
                    large.nulls().cloned(),
                )
            } else {
                let small = array.as_list::<i32>();
                (
                    small.offsets().clone(),
                    small.values().clone(),
                    small.nulls().cloned(),
                )
            };
            let values = conform_array(&list.1, item.data_type())?;
            let list = GenericListArray::<i32>::try_new(item.clone(), list.0, values, list.2)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(list))
        }
        (DataType::Map(..), DataType::Map(entries, sorted)) => {
            let map = array.as_map();
            let entries_array: ArrayRef = Arc::new(map.entries().clone());
            let converted = conform_array(&entries_array, entries.data_type())?;
            let map = MapArray::try_new(
                entries.clone(),
                map.offsets().clone(),
                converted.as_struct().clone(),
                map.nulls().cloned(),
                *sorted,
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(map))
        }
        (DataType::Struct(from), DataType::Struct(to)) => {
            if from.len() != to.len() {
                return Err(format!(
                    "struct has {} fields, {} declared",
                    from.len(),
                    to.len()
                ));
            }
            let s = array.as_struct();
            let children = s
                .columns()
                .iter()
                .zip(to.iter())
                .map(|(child, field)| {
                    conform_array(child, field.data_type())
                        .map_err(|e| format!("field `{}`: {e}", field.name()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let s = StructArray::try_new(to.clone(), children, s.nulls().cloned())
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(s))
        }
        (DataType::Timestamp(unit, _), DataType::Timestamp(to_unit, Some(tz))) => {
            // Arrow timestamps with a zone are UTC instants; a timestamp without a zone arriving
            // for a TIMESTAMP column is read as UTC too. Only the unit needs converting.
            // Drop the zone first so that no zone name (e.g. `Etc/UTC`) needs to be understood.
            let naive = arrow::array::make_array(
                array
                    .to_data()
                    .into_builder()
                    .data_type(DataType::Timestamp(*unit, None))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
            let same_unit = cast(&naive, &DataType::Timestamp(*to_unit, None))?;
            let values = same_unit
                .as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>()
                .ok_or_else(|| format!("cannot convert {source} to {target}"))?;
            Ok(Arc::new(values.clone().with_timezone(tz.clone())))
        }
        _ => cast(array, target),
    }
}

pub(crate) fn cast(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    // Arrow's message quotes the offending value: a cell value never reaches an error or a log.
    cast_with_options(array, target, &options).map_err(|_| {
        format!(
            "cannot convert {} to {target}: a value does not fit (not shown: values never \
             appear in errors)",
            array.data_type()
        )
    })
}

/// Parses nested values sent as JSON text (one JSON value per row, null for SQL NULL), in one
/// pass: each row goes to the decoder as it is, and must add exactly one complete value (a row
/// holding "1\n2", nothing, or half an object is an error, never a shifted column).
fn parse_json_text(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    let text = cast(array, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let field: FieldRef = Arc::new(Field::new("value", target.clone(), true));
    let mut decoder = arrow::json::ReaderBuilder::new_with_field(field)
        .with_batch_size(text.len().max(1))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    for (row, value) in text.iter().enumerate() {
        for bytes in [value.map_or(&b"null"[..], str::as_bytes), b"\n"] {
            // arrow-json's message can quote the value: only the row is named.
            let consumed = decoder.decode(bytes).map_err(|_| {
                format!("row {row} is not JSON of the declared type (the value is not shown)")
            })?;
            if consumed != bytes.len() {
                return Err("JSON values could not all be decoded".into());
            }
        }
        if decoder.has_partial_record() || decoder.len() != row + 1 {
            return Err(format!("row {row} does not hold exactly one JSON value"));
        }
    }
    let batch = decoder
        .flush()
        .map_err(|_| "JSON values do not match the declared type (not shown)".to_owned())?;
    let column = match batch {
        Some(batch) if batch.num_rows() == text.len() => batch.column(0).clone(),
        None if text.is_empty() => new_null_array(target, 0),
        _ => return Err("JSON values did not decode one per row".into()),
    };
    Ok(column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow_type;
    use arrow::datatypes::Schema;
    use publish_types::UcType;

    /// Issue 11: Arrow quotes the offending value in its cast errors; ours never do.
    #[test]
    fn conversion_errors_never_carry_a_cell_value() {
        let values: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["secret-cell-7"]));
        let err = cast(&values, &DataType::Int32).unwrap_err();
        assert!(!err.contains("secret-cell-7"), "{err}");
        assert!(err.contains("Utf8 to Int32"), "{err}");
        let bad: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            "{\"a\": \"secret-cell-8\"",
        ]));
        let err = parse_json_text(&bad, &DataType::Int64).unwrap_err();
        assert!(!err.contains("secret-cell-8"), "{err}");
    }
    use arrow::array::{
        Decimal128Array, Int32Array, ListArray, StringArray, TimestampMicrosecondArray,
        TimestampMillisecondArray,
    };
    use arrow::datatypes::Int32Type;

    fn t(text: &str) -> DataType {
        arrow_type(&UcType::parse(text).unwrap())
    }

    fn one(array: ArrayRef, target: DataType) -> Result<ArrayRef, String> {
        let schema = Arc::new(Schema::new(vec![Field::new("c", target, true)]));
        conform_columns(std::slice::from_ref(&array), array.len(), &schema)
            .map(|b| b.column(0).clone())
    }

    #[test]
    fn decimal_from_text_and_timestamp_zones() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("12.30"), None]));
        let d = one(text, t("decimal(6,2)")).unwrap();
        let want = Decimal128Array::from(vec![Some(1230), None])
            .with_precision_and_scale(6, 2)
            .unwrap();
        assert_eq!(d.as_primitive(), &want);

        let etc: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![1_000]).with_timezone("Etc/UTC"));
        let ts = one(etc, t("timestamp")).unwrap();
        assert_eq!(
            ts.as_primitive(),
            &TimestampMicrosecondArray::from(vec![1_000_000]).with_timezone("+00:00")
        );
        // A session in another zone (issue 11 item 6): Arrow's zoned timestamps are UTC instants,
        // so the same instant is kept, whatever the zone's name.
        let la: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![1_700_000_000_000_000])
                .with_timezone("America/Los_Angeles"),
        );
        let ts = one(la, t("timestamp")).unwrap();
        assert_eq!(
            ts.as_primitive(),
            &TimestampMicrosecondArray::from(vec![1_700_000_000_000_000]).with_timezone("+00:00")
        );
    }

    #[test]
    fn nested_from_json_text() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("[1,null,3]"), None]));
        let l = one(text, t("array<int>")).unwrap();
        let want = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            None,
        ]);
        assert_eq!(
            l.as_list::<i32>().value(0).as_primitive::<Int32Type>(),
            want.value(0).as_primitive::<Int32Type>()
        );
        assert!(l.is_null(1));

        let bad: ArrayRef = Arc::new(StringArray::from(vec!["1\n2"]));
        assert!(one(bad, t("array<int>")).is_err());
        // Each row holds exactly one value: not two, not none, not half of one.
        for rows in [vec!["[1]\n[2]"], vec!["[1] [2]"], vec![""], vec!["[1", "]"]] {
            let bad: ArrayRef = Arc::new(StringArray::from(rows.clone()));
            assert!(one(bad, t("array<int>")).is_err(), "{rows:?}");
        }

        let m: ArrayRef = Arc::new(StringArray::from(vec![r#"{"a":1,"b":2}"#]));
        assert_eq!(
            one(m, t("map<string,int>"))
                .unwrap()
                .as_map()
                .value(0)
                .len(),
            2
        );
        let s: ArrayRef = Arc::new(StringArray::from(vec![r#"{"x":5}"#]));
        let s = one(s, t("struct<x:int>")).unwrap();
        assert_eq!(
            s.as_struct().column(0).as_primitive::<Int32Type>().value(0),
            5
        );
    }

    #[test]
    fn renamed_list_items_are_rebuilt() {
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1)]),
        ]));
        // `from_iter_primitive` names the item field "item"; the mapping says "element".
        let out = one(list, t("array<int>")).unwrap();
        assert_eq!(out.data_type(), &t("array<int>"));
    }

    #[test]
    fn null_in_not_null_column_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("c", DataType::Int32, false)]));
        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
        assert!(conform_columns(&[a], 2, &schema).is_err());
    }
}
