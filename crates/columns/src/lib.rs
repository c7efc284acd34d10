//! The one owner of column types in the workspace: from a column's declared Unity Catalog type
//! to the Arrow type every source yields ([`arrow_type`], [`arrow_schema`]), from whatever a
//! wire delivered to that Arrow type ([`conform_columns`]), and from that Arrow type to what each
//! output format writes ([`OutputPlan`]), or what the PostgreSQL destination creates and loads
//! ([`postgres`]: [`PgType`], [`PostgresPlan`]).
//!
//! Sources call [`conform_columns`] on every batch they yield, so every batch downstream is of
//! [`arrow_schema`] of its table; sinks check that once per table ([`OutputPlan::new`]) and
//! convert only what a format cannot hold as it is. No other crate maps or converts types.
//!
//! # Type mapping
//!
//! | Unity Catalog | Arrow (canonical) | DuckDB | Parquet | CSV | PostgreSQL ([`postgres`]) |
//! |---|---|---|---|---|---|
//! | BOOLEAN | Boolean | BOOLEAN | BOOLEAN | `true` / `false` | boolean |
//! | TINYINT, SMALLINT, INT, BIGINT | Int8 … Int64 | TINYINT … BIGINT | INT32 / INT64 with int logical type | digits | smallint, smallint, integer, bigint |
//! | FLOAT, DOUBLE | Float32, Float64 | FLOAT, DOUBLE | FLOAT, DOUBLE | shortest round-trip text, `NaN`, `inf` | real, double precision (NaN, ±inf, −0.0 kept) |
//! | DECIMAL(p,s) | Decimal128(p,s) | DECIMAL(p,s) (p ≤ 38) | DECIMAL(p,s) | exact, with `s` digits after the point | numeric(p,s) |
//! | STRING, CHAR(n), VARCHAR(n) | Utf8 | VARCHAR | BYTE_ARRAY UTF8 | text | text |
//! | BINARY | Binary | BLOB | BYTE_ARRAY | lowercase hex, no prefix | bytea |
//! | DATE | Date32 | DATE | DATE | `2024-01-31` | date |
//! | TIMESTAMP | Timestamp(µs, "+00:00") | TIMESTAMPTZ | TIMESTAMP(MICROS, UTC-adjusted) | `2024-01-31T12:00:00.5Z` | timestamp with time zone |
//! | TIMESTAMP_NTZ | Timestamp(µs) | TIMESTAMP | TIMESTAMP(MICROS, not adjusted) | `2024-01-31T12:00:00.5` | timestamp without time zone |
//! | ARRAY\<T\> | List (item `element`) | `T[]` | LIST | JSON text | jsonb (the CSV JSON) |
//! | MAP\<K,V\> | Map (`entries`: `key`, `value`) | MAP(K, V) | MAP | JSON object text, keys as strings | jsonb (the CSV JSON) |
//! | STRUCT\<…\> | Struct | STRUCT(…) | group | JSON object text | jsonb (the CSV JSON) |
//! | INTERVAL YEAR TO MONTH | Interval(YearMonth) | INTERVAL | INTERVAL | ISO 8601, `P1Y2M`, `-P0Y1M` | interval |
//! | INTERVAL DAY TO SECOND | Duration(µs) | INTERVAL | INT64 (Arrow Duration in the embedded Arrow schema) | ISO 8601, `PT93784.000005S` | interval |
//! | VARIANT, anything else | Utf8 (JSON text) | VARCHAR | BYTE_ARRAY UTF8 | text | text |
//!
//! * TIMESTAMP values are instants: whatever zone a wire uses (Databricks sends its session
//!   zone, e.g. `Etc/UTC`), the batch holds the same instant in UTC, spelled [`UTC`].
//! * Nested values that arrive as JSON text (Databricks can send them so) are parsed into the
//!   native nested types by [`conform_columns`]; CSV writes every nested value as JSON text
//!   (arrow-json: binary as hex strings, timestamps as strings, map keys as strings).
//! * DuckDB: the children of a NULL struct are written as NULL (Arrow leaves them undefined).
//! * No error of this crate holds a cell value: Arrow's messages, which can quote one, are
//!   replaced by what went wrong.

mod canonical;
mod conform;
mod output;
pub mod postgres;

pub use canonical::{UTC, arrow_schema, arrow_type};
pub use conform::conform_columns;
pub use output::{OutputPlan, PlanError};
pub use postgres::{PgType, PostgresPlan};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Schema;
    use publish_types::{ColumnSchema, Identifier, ObjectName, OutputFormat, TableSchema, UcType};

    use super::*;

    fn table(types: &[&str]) -> TableSchema {
        TableSchema {
            catalog: ObjectName::parse("c").unwrap(),
            schema: ObjectName::parse("s").unwrap(),
            table: ObjectName::parse("t").unwrap(),
            columns: types
                .iter()
                .enumerate()
                .map(|(i, t)| ColumnSchema {
                    name: Identifier::parse(&format!("c{i}")).unwrap(),
                    data_type: UcType::parse(t).unwrap(),
                    nullable: true,
                    comment: None,
                })
                .collect(),
            primary_key: Vec::new(),
            comment: None,
        }
    }

    /// Every Unity Catalog type: its canonical Arrow type, and the Arrow type each format
    /// writes it as. The one table of the mapping; the crate documentation says the same.
    #[test]
    fn every_type_to_arrow_and_to_each_format() {
        let mdn = "Interval(MonthDayNano)";
        let utc = "Timestamp(µs, \"+00:00\")";
        let list_int = "List(Int32, field: 'element')";
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            // UC type, canonical, DuckDB, Parquet, CSV
            ("boolean", "Boolean", "Boolean", "Boolean", "Boolean"),
            ("tinyint", "Int8", "Int8", "Int8", "Int8"),
            ("smallint", "Int16", "Int16", "Int16", "Int16"),
            ("int", "Int32", "Int32", "Int32", "Int32"),
            ("bigint", "Int64", "Int64", "Int64", "Int64"),
            ("float", "Float32", "Float32", "Float32", "Float32"),
            ("double", "Float64", "Float64", "Float64", "Float64"),
            ("decimal(12,2)", "Decimal128(12, 2)", "Decimal128(12, 2)", "Decimal128(12, 2)", "Decimal128(12, 2)"),
            ("decimal(38,10)", "Decimal128(38, 10)", "Decimal128(38, 10)", "Decimal128(38, 10)", "Decimal128(38, 10)"),
            ("string", "Utf8", "Utf8", "Utf8", "Utf8"),
            ("char(3)", "Utf8", "Utf8", "Utf8", "Utf8"),
            ("varchar(9)", "Utf8", "Utf8", "Utf8", "Utf8"),
            ("binary", "Binary", "Binary", "Binary", "Binary"),
            ("date", "Date32", "Date32", "Date32", "Date32"),
            ("timestamp", utc, utc, utc, utc),
            ("timestamp_ntz", "Timestamp(µs)", "Timestamp(µs)", "Timestamp(µs)", "Timestamp(µs)"),
            ("interval year to month", "Interval(YearMonth)", mdn, "Interval(YearMonth)", "Utf8"),
            ("interval month", "Interval(YearMonth)", mdn, "Interval(YearMonth)", "Utf8"),
            ("interval day to second", "Duration(µs)", mdn, "Duration(µs)", "Duration(µs)"),
            ("interval hour", "Duration(µs)", mdn, "Duration(µs)", "Duration(µs)"),
            ("array<int>", list_int, list_int, list_int, "Utf8"),
            ("map<string,int>", "Map(\"entries\": non-null Struct(\"key\": non-null Utf8, \"value\": Int32), unsorted)", "Map(\"entries\": non-null Struct(\"key\": non-null Utf8, \"value\": Int32), unsorted)", "Map(\"entries\": non-null Struct(\"key\": non-null Utf8, \"value\": Int32), unsorted)", "Utf8"),
            ("struct<a:int not null,b:string>", "Struct(\"a\": non-null Int32, \"b\": Utf8)", "Struct(\"a\": non-null Int32, \"b\": Utf8)", "Struct(\"a\": non-null Int32, \"b\": Utf8)", "Utf8"),
            ("array<interval day to second>", "List(Duration(µs), field: 'element')", "List(Interval(MonthDayNano), field: 'element')", "List(Duration(µs), field: 'element')", "Utf8"),
            ("variant", "Utf8", "Utf8", "Utf8", "Utf8"),
            ("geography(4326)", "Utf8", "Utf8", "Utf8", "Utf8"),
        ];
        for (uc, canonical, duckdb, parquet, csv) in cases {
            let t = table(&[uc]);
            let schema = arrow_schema(&t);
            let got = schema.field(0).data_type().to_string();
            assert_eq!(got, *canonical, "canonical Arrow type of {uc}");
            for (format, want) in [
                (OutputFormat::Duckdb, duckdb),
                (OutputFormat::Parquet, parquet),
                (OutputFormat::Csv, csv),
            ] {
                let plan = OutputPlan::new(&t, Arc::clone(&schema), format)
                    .unwrap_or_else(|e| panic!("{uc} in {format:?}: {e:?}"));
                let written = plan.output().field(0).data_type().to_string();
                assert_eq!(written, *want, "{uc} written as {format:?}");
                // Every type converts: an empty batch goes through each plan.
                let empty = arrow::record_batch::RecordBatch::new_empty(Arc::clone(&schema));
                plan.apply(&empty)
                    .unwrap_or_else(|e| panic!("{uc} in {format:?}: {e:?}"));
            }
        }
    }

    /// A sink trusts the source's promise only after checking it once: a schema that is not
    /// the canonical one is refused at the start of the table, naming the column.
    #[test]
    fn a_schema_other_than_the_canonical_one_is_refused() {
        let t = table(&["timestamp", "array<int>"]);
        let mut fields: Vec<_> = arrow_schema(&t).fields().iter().cloned().collect();
        fields[0] = Arc::new(arrow::datatypes::Field::new(
            "c0",
            arrow::datatypes::DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                Some("Etc/UTC".into()),
            ),
            true,
        ));
        let err =
            OutputPlan::new(&t, Arc::new(Schema::new(fields)), OutputFormat::Parquet).unwrap_err();
        assert!(
            matches!(&err, PlanError::SchemaMismatch(d) if d.contains("`c0`")),
            "{err:?}"
        );
        let one = Arc::new(Schema::new(vec![arrow_schema(&t).field(0).clone()]));
        assert!(OutputPlan::new(&t, one, OutputFormat::Duckdb).is_err());
        assert!(
            OutputPlan::new(&table(&[]), arrow_schema(&table(&[])), OutputFormat::Csv).is_err()
        );
    }
}
