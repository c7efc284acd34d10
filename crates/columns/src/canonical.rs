//! The one Unity Catalog → Arrow type mapping every source yields.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, IntervalUnit, Schema, SchemaRef, TimeUnit};
use publish_types::{TableSchema, UcType};

/// The time zone of every `TIMESTAMP` column, in every batch and every output: UTC spelled as
/// an offset, because Arrow built without `chrono-tz` cannot format or parse a zone name such as
/// "UTC" or "Etc/UTC". The one spelling of it in the workspace.
pub const UTC: &str = "+00:00";

/// The Arrow type a source yields for a Unity Catalog type.
///
/// | UC | Arrow |
/// |---|---|
/// | BOOLEAN, TINYINT, SMALLINT, INT, BIGINT | Boolean, Int8, Int16, Int32, Int64 |
/// | FLOAT, DOUBLE | Float32, Float64 |
/// | DECIMAL(p,s) | Decimal128(p,s) |
/// | STRING, CHAR(n), VARCHAR(n) | Utf8 |
/// | BINARY | Binary |
/// | DATE | Date32 |
/// | TIMESTAMP | Timestamp(Microsecond, "+00:00") |
/// | TIMESTAMP_NTZ | Timestamp(Microsecond, none) |
/// | ARRAY\<T> | List (item field `element`, nullable) |
/// | MAP\<K,V> | Map (`entries` struct of non-null `key` and nullable `value`, unsorted) |
/// | STRUCT\<...> | Struct (field names and nullability as declared) |
/// | INTERVAL YEAR / MONTH / YEAR TO MONTH | Interval(YearMonth) |
/// | other INTERVALs (DAY ... SECOND) | Duration(Microsecond) |
/// | VARIANT and anything else (GEOGRAPHY, VOID, ...) | Utf8 (JSON or text) |
pub fn arrow_type(t: &UcType) -> DataType {
    match t {
        UcType::Boolean => DataType::Boolean,
        UcType::TinyInt => DataType::Int8,
        UcType::SmallInt => DataType::Int16,
        UcType::Int => DataType::Int32,
        UcType::BigInt => DataType::Int64,
        UcType::Float => DataType::Float32,
        UcType::Double => DataType::Float64,
        UcType::Decimal { precision, scale } => {
            // `UcType` guarantees scale <= precision <= 38, so the scale fits an i8.
            DataType::Decimal128(*precision, i8::try_from(*scale).unwrap_or(i8::MAX))
        }
        UcType::String | UcType::Char(_) | UcType::Varchar(_) => DataType::Utf8,
        UcType::Binary => DataType::Binary,
        UcType::Date => DataType::Date32,
        UcType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        UcType::TimestampNtz => DataType::Timestamp(TimeUnit::Microsecond, None),
        UcType::Array(item) => {
            DataType::List(Arc::new(Field::new("element", arrow_type(item), true)))
        }
        UcType::Map(key, value) => DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", arrow_type(key), false),
                    Field::new("value", arrow_type(value), true),
                ])),
                false,
            )),
            false,
        ),
        UcType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(&f.name, arrow_type(&f.data_type), f.nullable))
                .collect(),
        ),
        UcType::Interval(qualifier) => {
            let q = qualifier.to_ascii_lowercase();
            if q.starts_with("year") || q.starts_with("month") {
                DataType::Interval(IntervalUnit::YearMonth)
            } else {
                DataType::Duration(TimeUnit::Microsecond)
            }
        }
        UcType::Variant | UcType::Other(_) => DataType::Utf8,
    }
}

/// The Arrow schema of a described table: one field per column, in order, named as the catalog
/// spells it, typed by [`arrow_type`], nullable as declared. No metadata.
pub fn arrow_schema(schema: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .columns
            .iter()
            .map(|c| Field::new(c.name.as_str(), arrow_type(&c.data_type), c.nullable))
            .collect::<Vec<_>>(),
    ))
}
