//! Unity Catalog type → PostgreSQL column type, for the PostgreSQL destination that DataSHIELD
//! reads through OBiBa Opal. The destination (in `publish-sql`) creates each column with
//! [`PgType::sql`] and encodes the values of [`PostgresPlan::apply`]'s batches in the type's
//! binary send format; it decides no type itself, so this table is the only place where a
//! PostgreSQL column type is chosen — and this crate stays free of any PostgreSQL dependency.
//!
//! | Unity Catalog | PostgreSQL column | values handed to the encoder (Arrow) |
//! |---|---|---|
//! | BOOLEAN | `boolean` | Boolean |
//! | TINYINT, SMALLINT | `smallint` | Int16 (TINYINT widened: PostgreSQL has no one-byte integer) |
//! | INT | `integer` | Int32 |
//! | BIGINT | `bigint` | Int64 |
//! | FLOAT | `real` | Float32 (NaN, ±infinity and −0.0 kept) |
//! | DOUBLE | `double precision` | Float64 (the same) |
//! | DECIMAL(p,s) | `numeric(p,s)` | Decimal128(p,s) |
//! | STRING, CHAR(n), VARCHAR(n) | `text` | Utf8 |
//! | BINARY | `bytea` | Binary |
//! | DATE | `date` | Date32 |
//! | TIMESTAMP | `timestamp with time zone` (the UTC instant) | Timestamp(µs, "+00:00") |
//! | TIMESTAMP_NTZ | `timestamp without time zone` | Timestamp(µs) |
//! | ARRAY, MAP, STRUCT | `jsonb` | Utf8: JSON text, exactly as the CSV writer encodes nested values |
//! | INTERVAL YEAR TO MONTH (YEAR, MONTH) | `interval` | Interval(YearMonth): months |
//! | INTERVAL DAY TO SECOND (and the other day-time qualifiers) | `interval` | Duration(µs) |
//! | VARIANT, anything else (GEOGRAPHY, VOID, …) | `text` | Utf8 (the text the source sent) |
//!
//! * CHAR(n) and VARCHAR(n) become `text`, not `char(n)`/`varchar(n)`: PostgreSQL's `char(n)`
//!   pads and ignores trailing blanks in comparisons, unlike Unity Catalog's, and a length
//!   limit would only add a way for a load to fail; the DuckDB output drops the length too.
//! * VARIANT stays `text` rather than `jsonb`: its text is whatever the source sent, and
//!   `jsonb` would refuse (or normalise) text that is not strict JSON.
//! * `NOT NULL` is kept, and a declared primary key becomes a `PRIMARY KEY` constraint (the
//!   destination adds it after loading, and reports a key the data violates).
//! * Nested values are JSON text of the native nested types (arrow-json: map keys as strings,
//!   binary as hex, timestamps as text), the very encoding of the CSV writer, so a researcher
//!   sees the same value in every format; `jsonb` normalises the spacing and key order.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use publish_types::{TableSchema, UcType};

use crate::output::{PlanError, Step, apply_step, check_batch, check_canonical, json_friendly};

/// A PostgreSQL column type the destination creates (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    /// `boolean`.
    Boolean,
    /// `smallint` (`int2`).
    SmallInt,
    /// `integer` (`int4`).
    Integer,
    /// `bigint` (`int8`).
    BigInt,
    /// `real` (`float4`).
    Real,
    /// `double precision` (`float8`).
    DoublePrecision,
    /// `numeric(precision, scale)`.
    Numeric {
        /// Total digits, 1..=38.
        precision: u8,
        /// Digits after the point, 0..=precision.
        scale: u8,
    },
    /// `text`.
    Text,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `timestamp without time zone`.
    Timestamp,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `jsonb`.
    Jsonb,
    /// `interval`.
    Interval,
}

impl PgType {
    /// The PostgreSQL type of a Unity Catalog type.
    pub fn of(t: &UcType) -> Self {
        match t {
            UcType::Boolean => Self::Boolean,
            UcType::TinyInt | UcType::SmallInt => Self::SmallInt,
            UcType::Int => Self::Integer,
            UcType::BigInt => Self::BigInt,
            UcType::Float => Self::Real,
            UcType::Double => Self::DoublePrecision,
            UcType::Decimal { precision, scale } => Self::Numeric {
                precision: *precision,
                scale: *scale,
            },
            UcType::String | UcType::Char(_) | UcType::Varchar(_) => Self::Text,
            UcType::Binary => Self::Bytea,
            UcType::Date => Self::Date,
            UcType::Timestamp => Self::Timestamptz,
            UcType::TimestampNtz => Self::Timestamp,
            UcType::Array(_) | UcType::Map(..) | UcType::Struct(_) => Self::Jsonb,
            UcType::Interval(_) => Self::Interval,
            UcType::Variant | UcType::Other(_) => Self::Text,
        }
    }

    /// The type as `CREATE TABLE` takes it, spelled as PostgreSQL's `format_type` shows it
    /// back (e.g. `numeric(12,2)`, `timestamp with time zone`).
    pub fn sql(&self) -> String {
        match self {
            Self::Boolean => "boolean".into(),
            Self::SmallInt => "smallint".into(),
            Self::Integer => "integer".into(),
            Self::BigInt => "bigint".into(),
            Self::Real => "real".into(),
            Self::DoublePrecision => "double precision".into(),
            Self::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            Self::Text => "text".into(),
            Self::Bytea => "bytea".into(),
            Self::Date => "date".into(),
            Self::Timestamp => "timestamp without time zone".into(),
            Self::Timestamptz => "timestamp with time zone".into(),
            Self::Jsonb => "jsonb".into(),
            Self::Interval => "interval".into(),
        }
    }
}

/// The conversion of one table's batches for the PostgreSQL destination, decided at the start
/// of the table: the canonical schema checked once ([`crate::arrow_schema`], as every
/// [`crate::OutputPlan`] does), then per batch only TINYINT widened and nested values turned
/// into JSON text. The batches it returns hold, column by column, the Arrow type listed for
/// its [`PgType`] in the module documentation.
#[derive(Debug)]
pub struct PostgresPlan {
    input: SchemaRef,
    output: SchemaRef,
    types: Vec<PgType>,
    steps: Vec<Step>,
}

impl PostgresPlan {
    /// Plans loading `table` from batches of `input`, which must be its canonical schema.
    pub fn new(table: &TableSchema, input: SchemaRef) -> Result<Self, PlanError> {
        let canonical = check_canonical(table, &input)?;
        let mut steps = Vec::with_capacity(table.columns.len());
        let mut types = Vec::with_capacity(table.columns.len());
        let mut fields = Vec::with_capacity(table.columns.len());
        for (column, field) in table.columns.iter().zip(canonical.fields()) {
            let pg = PgType::of(&column.data_type);
            let canonical = field.data_type();
            let (step, written) = match (pg, canonical) {
                (PgType::Jsonb, _) => {
                    let to = json_friendly(canonical);
                    let pre = (to != *canonical).then_some(to);
                    (Step::ToJson(pre), DataType::Utf8)
                }
                (PgType::SmallInt, DataType::Int8) => {
                    (Step::Cast(DataType::Int16), DataType::Int16)
                }
                _ => (Step::Keep, canonical.clone()),
            };
            steps.push(step);
            types.push(pg);
            fields.push(Field::new(field.name(), written, column.nullable));
        }
        Ok(Self {
            input,
            output: Arc::new(Schema::new(fields)),
            types,
            steps,
        })
    }

    /// The PostgreSQL type of each column, in order.
    pub fn types(&self) -> &[PgType] {
        &self.types
    }

    /// The schema of the batches [`apply`](Self::apply) returns: the declared names and
    /// nullability, the Arrow types the encoder reads.
    pub fn output(&self) -> &SchemaRef {
        &self.output
    }

    /// Checks that `batch` has the Arrow schema the plan was made for.
    pub fn check(&self, batch: &RecordBatch) -> Result<(), PlanError> {
        check_batch(&self.input, batch)
    }

    /// Converts a batch (already [checked](Self::check)) for the encoder; a null in a NOT NULL
    /// column is [`PlanError::NullInNotNull`].
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, PlanError> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.steps.len());
        for ((step, array), field) in self
            .steps
            .iter()
            .zip(batch.columns())
            .zip(self.output.fields())
        {
            let invalid = |detail: String| PlanError::InvalidValue {
                column: field.name().clone(),
                detail,
            };
            let array = apply_step(step, array).map_err(invalid)?;
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

#[cfg(test)]
mod tests {
    use arrow::array::{
        Array, AsArray, Int8Array, Int32Array, ListArray, MapArray, StringArray, StructArray,
    };
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::Int32Type;
    use publish_types::{ColumnSchema, Identifier, ObjectName, OutputFormat};

    use super::*;
    use crate::{OutputPlan, arrow_schema};

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
                    nullable: i != 0,
                    comment: None,
                })
                .collect(),
            primary_key: Vec::new(),
            comment: None,
        }
    }

    /// Every Unity Catalog type: the PostgreSQL column type, and the Arrow type its values
    /// reach the encoder as. The one table of the mapping; the module documentation says the
    /// same.
    #[test]
    fn every_type_to_postgres() {
        let utc = "Timestamp(µs, \"+00:00\")";
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            // UC type, PostgreSQL column, Arrow handed to the encoder
            ("boolean", "boolean", "Boolean"),
            ("tinyint", "smallint", "Int16"),
            ("smallint", "smallint", "Int16"),
            ("int", "integer", "Int32"),
            ("bigint", "bigint", "Int64"),
            ("float", "real", "Float32"),
            ("double", "double precision", "Float64"),
            ("decimal(12,2)", "numeric(12,2)", "Decimal128(12, 2)"),
            ("decimal(38,38)", "numeric(38,38)", "Decimal128(38, 38)"),
            ("decimal(1,0)", "numeric(1,0)", "Decimal128(1, 0)"),
            ("string", "text", "Utf8"),
            ("char(3)", "text", "Utf8"),
            ("varchar(9)", "text", "Utf8"),
            ("binary", "bytea", "Binary"),
            ("date", "date", "Date32"),
            ("timestamp", "timestamp with time zone", utc),
            ("timestamp_ntz", "timestamp without time zone", "Timestamp(µs)"),
            ("array<int>", "jsonb", "Utf8"),
            ("map<string,int>", "jsonb", "Utf8"),
            ("map<int,array<string>>", "jsonb", "Utf8"),
            ("struct<a:int not null,b:string>", "jsonb", "Utf8"),
            ("array<interval day to second>", "jsonb", "Utf8"),
            ("interval year to month", "interval", "Interval(YearMonth)"),
            ("interval month", "interval", "Interval(YearMonth)"),
            ("interval day to second", "interval", "Duration(µs)"),
            ("interval hour", "interval", "Duration(µs)"),
            ("variant", "text", "Utf8"),
            ("geography(4326)", "text", "Utf8"),
        ];
        for (uc, pg, arrow) in cases {
            let t = table(&[uc]);
            let plan =
                PostgresPlan::new(&t, arrow_schema(&t)).unwrap_or_else(|e| panic!("{uc}: {e:?}"));
            assert_eq!(plan.types()[0].sql(), *pg, "PostgreSQL type of {uc}");
            assert_eq!(
                plan.output().field(0).data_type().to_string(),
                *arrow,
                "Arrow type of {uc} for the encoder"
            );
            assert!(!plan.output().field(0).is_nullable(), "NOT NULL kept");
            let empty = RecordBatch::new_empty(arrow_schema(&t));
            plan.apply(&empty).unwrap_or_else(|e| panic!("{uc}: {e:?}"));
        }
    }

    /// Nested values become exactly the JSON text the CSV writer writes; TINYINT is widened;
    /// NOT NULL is enforced; a schema other than the canonical one is refused, naming the
    /// column.
    #[test]
    fn values_as_the_encoder_receives_them() {
        let t = table(&[
            "tinyint",
            "array<int>",
            "map<int,string>",
            "struct<a:int,b:string>",
        ]);
        let schema = arrow_schema(&t);
        let tiny: ArrayRef = Arc::new(Int8Array::from(vec![-128, 127, 0]));
        let DataType::List(item) = schema.field(1).data_type().clone() else {
            panic!("list")
        };
        let (_, offsets, values, nulls) = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ])
        .into_parts();
        let list: ArrayRef = Arc::new(ListArray::new(item, offsets, values, nulls));
        let DataType::Map(entries, _) = schema.field(2).data_type().clone() else {
            panic!("map")
        };
        let DataType::Struct(kv) = entries.data_type().clone() else {
            panic!("entries")
        };
        let map: ArrayRef = Arc::new(
            MapArray::try_new(
                entries,
                OffsetBuffer::new(vec![0, 1, 1, 2].into()),
                StructArray::new(
                    kv,
                    vec![
                        Arc::new(Int32Array::from(vec![7, 8])) as ArrayRef,
                        Arc::new(StringArray::from(vec![Some("x\"y"), None])),
                    ],
                    None,
                ),
                Some(vec![true, false, true].into()),
                false,
            )
            .unwrap(),
        );
        let DataType::Struct(fields) = schema.field(3).data_type().clone() else {
            panic!("struct")
        };
        let strukt: ArrayRef = Arc::new(StructArray::new(
            fields,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("é"), Some("b"), None])),
            ],
            Some(vec![true, true, false].into()),
        ));
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![tiny, list, map, strukt]).unwrap();
        let plan = PostgresPlan::new(&t, Arc::clone(&schema)).unwrap();
        plan.check(&batch).unwrap();
        let out = plan.apply(&batch).unwrap();
        assert_eq!(
            out.column(0)
                .as_primitive::<arrow::datatypes::Int16Type>()
                .values()
                .to_vec(),
            [-128, 127, 0]
        );
        let csv = OutputPlan::new(&t, Arc::clone(&schema), OutputFormat::Csv)
            .unwrap()
            .apply(&batch)
            .unwrap();
        for c in 1..4 {
            assert_eq!(
                out.column(c).as_string::<i32>(),
                csv.column(c).as_string::<i32>(),
                "column {c}: the CSV writer's JSON"
            );
        }
        let text = |c: usize, r: usize| out.column(c).as_string::<i32>().value(r).to_owned();
        assert_eq!(text(1, 0), "[1,null]");
        assert!(out.column(1).is_null(1));
        assert_eq!(text(1, 2), "[]");
        assert_eq!(text(2, 0), r#"{"7":"x\"y"}"#);
        assert_eq!(text(3, 1), r#"{"a":null,"b":"b"}"#);
        assert!(out.column(3).is_null(2));

        // A null in the NOT NULL column c0.
        let nullable = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let mut columns = batch.columns().to_vec();
        columns[0] = Arc::new(Int8Array::from(vec![Some(1), None, Some(2)]));
        let bad = RecordBatch::try_new(nullable, columns).unwrap();
        assert_eq!(
            plan.apply(&bad).unwrap_err(),
            PlanError::NullInNotNull {
                column: "c0".into()
            }
        );

        // INT where TINYINT was declared.
        let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
        fields[0] = Arc::new(Field::new("c0", DataType::Int32, false));
        let err = PostgresPlan::new(&t, Arc::new(Schema::new(fields))).unwrap_err();
        assert!(
            matches!(&err, PlanError::SchemaMismatch(d) if d.contains("`c0`")),
            "{err:?}"
        );
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("c0", DataType::Int32, false)])),
            vec![Arc::new(Int32Array::from(vec![1])) as ArrayRef],
        )
        .unwrap();
        assert!(matches!(
            plan.check(&other),
            Err(PlanError::SchemaMismatch(_))
        ));
    }
}
