//! The conformance suite every [`Source`] implementation runs: the same fixture tables, the same
//! requests, the same expected schemas and values, whatever the backend.
//!
//! A harness loads [`Suite::fixtures`] into its backend (the in-memory source directly, the
//! Databricks emulator as Parquet files plus sidecars), then calls [`Suite::run_all`] or the
//! single checks. Checks panic with a message naming what differed, like any test.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampMicrosecondArray,
};
use arrow::array::{Int32Builder, MapBuilder, MapFieldNames, StructArray};
use arrow::buffer::NullBuffer;
use arrow::compute::concat_batches;
use arrow::datatypes::DataType;
use futures::StreamExt;
use publish_types::{ColumnSchema, Identifier, ObjectName, TableSchema, UcType};

use publish_columns::arrow_schema;

use crate::{Source, SourceError, SourceExt, TableRequest};

/// One table to load: its definition as the catalog declares it, and its rows (batches of
/// exactly [`arrow_schema`] of the definition).
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Every column in catalog order, the primary key and comments.
    pub definition: TableSchema,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

/// The suite, for fixture tables in one catalog and schema.
#[derive(Debug, Clone)]
pub struct Suite {
    catalog: ObjectName,
    schema: ObjectName,
    hostile_schema: ObjectName,
    /// Columns of `people` left out, for a backend that cannot declare their types.
    left_out: Vec<String>,
}

/// Rows of the `people` table; more than one emulator chunk when chunks are small.
pub const PEOPLE_ROWS: usize = 250;
/// Rows per fixture batch.
const BATCH_ROWS: usize = 100;

/// The `Address` column: a struct with a null street now and then, null every 9th row.
fn address(rows: &[usize]) -> StructArray {
    let DataType::Struct(fields) = publish_columns::arrow_type(
        &UcType::parse("struct<street:string,zip:int>").unwrap_or_else(|e| panic!("{e}")),
    ) else {
        unreachable!("a struct type maps to a struct")
    };
    let street: ArrayRef = Arc::new(StringArray::from_iter(
        rows.iter()
            .map(|&i| (i % 4 != 0).then(|| format!("{i} High St"))),
    ));
    let zip: ArrayRef = Arc::new(Int32Array::from_iter_values(
        rows.iter().map(|&i| 10_000 + i as i32),
    ));
    let nulls = NullBuffer::from_iter(rows.iter().map(|&i| i % 9 != 2));
    StructArray::try_new(fields, vec![street, zip], Some(nulls)).unwrap_or_else(|e| panic!("{e}"))
}

fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap_or_else(|e| panic!("fixture identifier {s:?}: {e}"))
}

fn obj(s: &str) -> ObjectName {
    ObjectName::parse(s).unwrap_or_else(|e| panic!("fixture name {s:?}: {e}"))
}

fn col(name: &str, ty: &str, nullable: bool, comment: Option<&str>) -> ColumnSchema {
    ColumnSchema {
        name: id(name),
        data_type: UcType::parse(ty).unwrap_or_else(|e| panic!("fixture type {ty}: {e}")),
        nullable,
        comment: comment.map(str::to_owned),
    }
}

impl Suite {
    /// A suite whose tables live in `catalog.schema` (and one more schema with a hostile name
    /// in the same catalog). Unity Catalog names are lower-case; use lower-case names.
    pub fn new(catalog: &str, schema: &str) -> Self {
        Suite {
            catalog: obj(catalog),
            schema: obj(schema),
            hostile_schema: obj("odd`sch\"ema"),
            left_out: Vec::new(),
        }
    }

    /// The same suite without these columns of `people` (for a backend with no such type:
    /// PostgreSQL has no TINYINT, MAP or STRUCT, so it runs without `Level`, `Attrs` and
    /// `Address`; MySQL has no arrays either, so also without `Tags`). The key and the columns
    /// the other checks use cannot be left out.
    pub fn leaving_out(mut self, columns: &[&str]) -> Self {
        for c in columns {
            assert!(
                !["Id", "Name", "Score", "Seen", "LocalSeen"].contains(c),
                "the checks need column {c}"
            );
        }
        self.left_out = columns.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// The `people` table: every scalar type, a list, a map, a struct, nulls, a primary key and
    /// comments; mixed-case column names.
    pub fn people(&self) -> Fixture {
        let definition = TableSchema {
            catalog: self.catalog.clone(),
            schema: self.schema.clone(),
            table: obj("people"),
            columns: vec![
                col("Id", "bigint", false, Some("person key")),
                col("Name", "string", true, None),
                col("Age", "int", true, Some("age in years")),
                col("Score", "decimal(6,2)", true, None),
                col("Born", "date", true, None),
                col("Seen", "timestamp", true, None),
                col("LocalSeen", "timestamp_ntz", true, None),
                col("Tags", "array<string>", true, None),
                col("Active", "boolean", true, None),
                col("Ratio", "double", true, None),
                col("Weight", "float", true, None),
                col("Rank", "smallint", true, None),
                col("Level", "tinyint", true, None),
                col("Photo", "binary", true, None),
                col("Attrs", "map<string,int>", true, None),
                col(
                    "Address",
                    "struct<street:string,zip:int>",
                    true,
                    Some("postal"),
                ),
            ],
            primary_key: vec![id("Id")],
            comment: Some("one row per person".into()),
        };
        let schema = arrow_schema(&definition);
        let mut batches = Vec::new();
        let mut start = 0;
        while start < PEOPLE_ROWS {
            let rows: Vec<usize> = (start..(start + BATCH_ROWS).min(PEOPLE_ROWS)).collect();
            let opt = |i: usize| i % 7 != 3;
            let mut tags = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
                arrow::datatypes::Field::new("element", arrow::datatypes::DataType::Utf8, true),
            ));
            for &i in &rows {
                match i % 5 {
                    0 => tags.append_null(),
                    1 => tags.append(true),
                    _ => {
                        tags.values().append_value(format!("t{i}"));
                        tags.values().append_null();
                        tags.values().append_value("x`y\"z");
                        tags.append(true);
                    }
                }
            }
            let mut attrs = MapBuilder::new(
                Some(MapFieldNames {
                    entry: "entries".into(),
                    key: "key".into(),
                    value: "value".into(),
                }),
                StringBuilder::new(),
                Int32Builder::new(),
            );
            for &i in &rows {
                if i % 6 == 1 {
                    attrs.append(false).unwrap_or_else(|e| panic!("{e}"));
                    continue;
                }
                for k in 0..(i % 3) {
                    attrs.keys().append_value(format!("k{k}"));
                    if k == 1 {
                        attrs.values().append_null();
                    } else {
                        attrs.values().append_value((i * 10 + k) as i32);
                    }
                }
                attrs.append(true).unwrap_or_else(|e| panic!("{e}"));
            }
            let i64s = |f: fn(usize) -> i64| rows.iter().map(move |&i| f(i));
            let columns: Vec<ArrayRef> =
                vec![
                    Arc::new(Int64Array::from_iter_values(i64s(|i| {
                        i as i64 * 1_000_003 - 7
                    }))),
                    Arc::new(StringArray::from_iter(
                        rows.iter()
                            .map(|&i| opt(i).then(|| format!("name-{i} ünï \"q\" `b`"))),
                    )),
                    Arc::new(Int32Array::from_iter(
                        rows.iter().map(|&i| opt(i + 1).then_some(i as i32 % 100)),
                    )),
                    Arc::new(
                        Decimal128Array::from_iter(rows.iter().map(|&i| {
                            opt(i + 2).then_some((i as i128 * 3_989) % 1_999_999 - 999_999)
                        }))
                        .with_precision_and_scale(6, 2)
                        .unwrap_or_else(|e| panic!("{e}")),
                    ),
                    Arc::new(Date32Array::from_iter(
                        rows.iter()
                            .map(|&i| opt(i + 3).then_some(i as i32 * 37 - 3_000)),
                    )),
                    Arc::new(
                        TimestampMicrosecondArray::from_iter(rows.iter().map(|&i| {
                            opt(i + 4).then_some(1_700_000_000_000_000 + i as i64 * 3_600_000_123)
                        }))
                        .with_timezone(publish_columns::UTC),
                    ),
                    Arc::new(TimestampMicrosecondArray::from_iter(rows.iter().map(
                        |&i| opt(i + 5).then_some(-86_400_000_000 + i as i64 * 1_000_001),
                    ))),
                    Arc::new(tags.finish()),
                    Arc::new(BooleanArray::from_iter(
                        rows.iter().map(|&i| opt(i + 6).then_some(i % 2 == 0)),
                    )),
                    Arc::new(Float64Array::from_iter(
                        rows.iter().map(|&i| opt(i).then_some(i as f64 / 7.0)),
                    )),
                    Arc::new(Float32Array::from_iter(
                        rows.iter().map(|&i| opt(i + 1).then_some(i as f32 * 0.5)),
                    )),
                    Arc::new(Int16Array::from_iter(
                        rows.iter().map(|&i| opt(i + 2).then_some(i as i16 - 100)),
                    )),
                    Arc::new(Int8Array::from_iter(
                        rows.iter().map(|&i| opt(i + 3).then_some((i % 200) as i8)),
                    )),
                    Arc::new(BinaryArray::from_iter(rows.iter().map(|&i| {
                        opt(i + 4).then(|| vec![i as u8, 0, 255, (i / 3) as u8])
                    }))),
                    Arc::new(attrs.finish()),
                    Arc::new(address(&rows)),
                ];
            batches.push(
                RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|e| panic!("{e}")),
            );
            start += BATCH_ROWS;
        }
        let kept: Vec<usize> = (0..definition.columns.len())
            .filter(|&i| {
                !self
                    .left_out
                    .iter()
                    .any(|c| c == definition.columns[i].name.as_str())
            })
            .collect();
        let mut definition = definition;
        definition.columns = kept
            .iter()
            .map(|&i| definition.columns[i].clone())
            .collect();
        let batches = batches.iter().map(|b| project(b, &kept)).collect();
        Fixture {
            definition,
            batches,
        }
    }

    /// A table whose schema, table and column names need quoting: back-quotes, double quotes,
    /// spaces, dots, keywords and comment markers.
    pub fn hostile(&self) -> Fixture {
        let definition = TableSchema {
            catalog: self.catalog.clone(),
            schema: self.hostile_schema.clone(),
            table: obj("we\"ird`tab;le--"),
            columns: vec![
                col("a`b", "int", true, None),
                col("quo\"te", "string", true, None),
                col("with space.and dot", "string", true, None),
                col("SELECT", "bigint", true, None),
                col("x`); DROP TABLE t; --", "string", true, None),
            ],
            primary_key: vec![],
            comment: None,
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec![Some("a"), Some("\"b\""), None])),
            Arc::new(StringArray::from(vec![Some("c d"), None, Some("e.f")])),
            Arc::new(Int64Array::from(vec![Some(10), Some(20), None])),
            Arc::new(StringArray::from(vec![None, Some("`"), Some("--")])),
        ];
        let batch = RecordBatch::try_new(arrow_schema(&definition), columns)
            .unwrap_or_else(|e| panic!("{e}"));
        Fixture {
            definition,
            batches: vec![batch],
        }
    }

    /// Every fixture table, to load before running the checks.
    pub fn fixtures(&self) -> Vec<Fixture> {
        vec![self.people(), self.hostile()]
    }

    /// A request for `table` of the suite's schema, of `columns` (all when `None`).
    pub fn request(&self, table: &str, columns: Option<&[&str]>) -> TableRequest {
        TableRequest {
            catalog: self.catalog.clone(),
            schema: self.schema.clone(),
            table: obj(table),
            columns: columns.map(|c| c.iter().map(|n| id(n)).collect()),
        }
    }

    /// Runs every check.
    pub async fn run_all(&self, source: &dyn Source) {
        self.describe_known_table(source).await;
        self.describe_unknown_objects(source).await;
        self.describe_unknown_column(source).await;
        self.all_columns_in_catalog_order(source).await;
        self.column_order_and_projection(source).await;
        self.case_insensitive_columns(source).await;
        self.duplicate_and_empty_columns(source).await;
        self.hostile_identifiers(source).await;
        self.drop_stream_midway(source).await;
        self.read_of_what_was_never_described(source).await;
    }

    /// `describe` of all columns returns the definition exactly: types, nullability, comments,
    /// primary key, table comment.
    pub async fn describe_known_table(&self, source: &dyn Source) {
        let want = self.people().definition;
        let got = source
            .describe(&self.request("people", None))
            .await
            .unwrap_or_else(|e| panic!("describe people: {e}"));
        assert_eq!(got, want, "describe of all columns of people");
    }

    /// Unknown table, schema and catalog each name the missing object.
    pub async fn describe_unknown_objects(&self, source: &dyn Source) {
        let full = format!("{}.{}.no_such_table", self.catalog, self.schema);
        match source.describe(&self.request("no_such_table", None)).await {
            Err(SourceError::UnknownTable { table }) => assert_eq!(table, full),
            other => panic!("describe of a missing table: {other:?}"),
        }
        let mut request = self.request("people", None);
        request.schema = obj("no_such_schema");
        match source.describe(&request).await {
            Err(SourceError::UnknownSchema { schema }) => {
                assert_eq!(schema, format!("{}.no_such_schema", self.catalog));
            }
            other => panic!("describe in a missing schema: {other:?}"),
        }
        let mut request = self.request("people", None);
        request.catalog = obj("no_such_catalog");
        match source.describe(&request).await {
            Err(SourceError::UnknownCatalog { catalog }) => assert_eq!(catalog, "no_such_catalog"),
            other => panic!("describe in a missing catalog: {other:?}"),
        }
    }

    /// An unknown column is named, with the available columns listed in catalog order.
    pub async fn describe_unknown_column(&self, source: &dyn Source) {
        let request = self.request("people", Some(&["Id", "agee"]));
        match source.describe(&request).await {
            Err(e @ SourceError::UnknownColumn { .. }) => {
                let SourceError::UnknownColumn {
                    table,
                    column,
                    available,
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(table, &format!("{}.{}.people", self.catalog, self.schema));
                assert_eq!(column, "agee");
                let want: Vec<String> = self
                    .people()
                    .definition
                    .columns
                    .iter()
                    .map(|c| c.name.to_string())
                    .collect();
                assert_eq!(available, &want);
                assert!(e.to_string().contains("`agee`"), "{e}");
            }
            other => panic!("describe with an unknown column: {other:?}"),
        }
    }

    /// Reading all columns returns every row and value, in order.
    pub async fn all_columns_in_catalog_order(&self, source: &dyn Source) {
        let fixture = self.people();
        let (schema, stream) = source
            .open(&self.request("people", None))
            .await
            .unwrap_or_else(|e| panic!("open people: {e}"));
        assert_eq!(stream.schema, arrow_schema(&schema));
        let got = collect(stream).await;
        let want = concat(&fixture.batches);
        assert_batches_eq(&got, &want, "all columns of people");
    }

    /// Requested columns come back in the requested order, and only those; the primary key is
    /// dropped when a key column is not requested.
    pub async fn column_order_and_projection(&self, source: &dyn Source) {
        let fixture = self.people();
        let order: Vec<&str> = ["Tags", "Score", "Id", "Seen"]
            .into_iter()
            .filter(|c| !self.left_out.iter().any(|l| l == c))
            .collect();
        let (schema, stream) = source
            .open(&self.request("people", Some(&order)))
            .await
            .unwrap_or_else(|e| panic!("open people projection: {e}"));
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, order);
        assert_eq!(schema.primary_key, [id("Id")]);
        let got = collect(stream).await;
        let want = project_names(&concat(&fixture.batches), &order);
        assert_batches_eq(&got, &want, "projection of people");

        let schema = source
            .describe(&self.request("people", Some(&["Name", "Age"])))
            .await
            .unwrap_or_else(|e| panic!("describe people projection: {e}"));
        assert!(
            schema.primary_key.is_empty(),
            "Id was not requested: {schema:?}"
        );
    }

    /// Column names match case-insensitively and come back as the catalog spells them.
    pub async fn case_insensitive_columns(&self, source: &dyn Source) {
        let fixture = self.people();
        let (schema, stream) = source
            .open(&self.request("people", Some(&["nAME", "ID", "localseen"])))
            .await
            .unwrap_or_else(|e| panic!("open people with other case: {e}"));
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Name", "Id", "LocalSeen"]);
        let got = collect(stream).await;
        let want = project_names(&concat(&fixture.batches), &["Name", "Id", "LocalSeen"]);
        assert_batches_eq(&got, &want, "case-insensitive columns");
    }

    /// The same column twice (in any case) and an empty column list are refused.
    pub async fn duplicate_and_empty_columns(&self, source: &dyn Source) {
        match source
            .describe(&self.request("people", Some(&["Age", "age"])))
            .await
        {
            Err(SourceError::DuplicateColumn { column, .. }) => assert_eq!(column, "Age"),
            other => panic!("describe with a duplicate column: {other:?}"),
        }
        match source.describe(&self.request("people", Some(&[]))).await {
            Err(SourceError::NoColumns { .. }) => {}
            other => panic!("describe with no columns: {other:?}"),
        }
    }

    /// Names with back-quotes, quotes, spaces, dots and SQL are read, never interpreted.
    pub async fn hostile_identifiers(&self, source: &dyn Source) {
        let fixture = self.hostile();
        let want_schema = fixture.definition.clone();
        let mut request = self.request("we\"ird`tab;le--", None);
        request.schema = self.hostile_schema.clone();
        let (schema, stream) = source
            .open(&request)
            .await
            .unwrap_or_else(|e| panic!("open the hostile table: {e}"));
        assert_eq!(schema, want_schema);
        let got = collect(stream).await;
        assert_batches_eq(&got, &concat(&fixture.batches), "hostile table");

        request.columns = Some(vec![id("x`); DROP TABLE t; --"), id("A`B")]);
        let (schema, stream) = source
            .open(&request)
            .await
            .unwrap_or_else(|e| panic!("open hostile columns: {e}"));
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["x`); DROP TABLE t; --", "a`b"]);
        let got = collect(stream).await;
        assert_batches_eq(
            &got,
            &project(&concat(&fixture.batches), &[4, 0]),
            "hostile columns",
        );
    }

    /// Reading out of order — a schema that was never described, of a table or a column the
    /// catalog does not have — is an error naming no cell value (at the start of the read or
    /// as the stream's only item), never an empty or a made-up table, and it is final.
    pub async fn read_of_what_was_never_described(&self, source: &dyn Source) {
        let described = source
            .describe(&self.request("people", Some(&["Id"])))
            .await
            .unwrap_or_else(|e| panic!("describe people: {e}"));
        let mut missing_table = described.clone();
        missing_table.table = obj("no_such_table");
        let mut missing_column = described;
        missing_column.columns[0].name = id("no_such_column");
        for (what, schema) in [("table", missing_table), ("column", missing_column)] {
            let error = match source.read(&schema).await {
                Err(e) => e,
                Ok(stream) => {
                    let mut batches = stream.batches;
                    match batches.next().await {
                        Some(Err(e)) => {
                            assert!(batches.next().await.is_none(), "nothing follows an error");
                            e
                        }
                        other => panic!("read of a missing {what} gave {other:?}"),
                    }
                }
            };
            assert!(
                matches!(
                    error,
                    SourceError::UnknownTable { .. }
                        | SourceError::UnknownColumn { .. }
                        | SourceError::Statement { .. }
                ),
                "read of a missing {what}: {error:?}"
            );
            assert!(
                !error.is_transient(),
                "read of a missing {what} is final: {error:?}"
            );
        }
    }

    /// Dropping a stream after its first batch leaves the source usable: a new read of the
    /// same table returns everything.
    pub async fn drop_stream_midway(&self, source: &dyn Source) {
        let request = self.request("people", Some(&["Id", "Name"]));
        let (schema, mut stream) = source
            .open(&request)
            .await
            .unwrap_or_else(|e| panic!("open people: {e}"));
        let first = stream.batches.next().await;
        assert!(matches!(first, Some(Ok(_))), "first batch: {first:?}");
        drop(stream);
        let again = source
            .read_to_vec(&schema)
            .await
            .unwrap_or_else(|e| panic!("read again after a drop: {e}"));
        let rows: usize = again.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, PEOPLE_ROWS);
    }
}

/// Reads a stream to its end, failing the test on an error.
pub async fn collect(stream: crate::TableStream) -> RecordBatch {
    let schema = stream.schema.clone();
    let batches: Vec<RecordBatch> = stream
        .batches
        .map(|b| b.unwrap_or_else(|e| panic!("reading: {e}")))
        .collect()
        .await;
    for b in &batches {
        assert_eq!(b.schema(), schema, "every batch has the stream's schema");
    }
    concat_batches(&schema, &batches).unwrap_or_else(|e| panic!("{e}"))
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .unwrap_or_else(|| panic!("no batches"));
    concat_batches(&schema, batches).unwrap_or_else(|e| panic!("{e}"))
}

fn project_names(batch: &RecordBatch, names: &[&str]) -> RecordBatch {
    let schema = batch.schema();
    let indices: Vec<usize> = names
        .iter()
        .map(|n| {
            schema
                .index_of(n)
                .unwrap_or_else(|_| panic!("fixture has no column {n}"))
        })
        .collect();
    project(batch, &indices)
}

fn project(batch: &RecordBatch, indices: &[usize]) -> RecordBatch {
    batch.project(indices).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts equal schemas and values, naming the first column that differs.
pub fn assert_batches_eq(got: &RecordBatch, want: &RecordBatch, what: &str) {
    assert_eq!(got.schema(), want.schema(), "{what}: schema");
    assert_eq!(got.num_rows(), want.num_rows(), "{what}: rows");
    for (i, field) in want.schema().fields().iter().enumerate() {
        assert_eq!(
            got.column(i).to_data(),
            want.column(i).to_data(),
            "{what}: column `{}`",
            field.name()
        );
    }
}
