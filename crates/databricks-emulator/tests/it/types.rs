//! Types beyond the admissions table: nested columns, natively and as JSON text (the
//! `complex_as_json_text` switch), and INTERVAL columns.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DurationMicrosecondArray, Int32Builder, Int64Array,
    IntervalYearMonthArray, ListBuilder, MapBuilder, RecordBatch, StringArray, StringBuilder,
    StructArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields, IntervalUnit, TimeUnit};
use databricks_emulator::fixtures::write_table;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Env, concat, decode};

const NESTED: &str = "SELECT * FROM tre.cohort_a.nested";

/// Three rows: values with nulls inside, empty values, and null values.
fn nested_batch() -> RecordBatch {
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("a");
    tags.values().append_null();
    tags.values().append_value("q\"uote");
    tags.append(true);
    tags.append(true);
    tags.append(false);
    let mut attrs = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    attrs.keys().append_value("k0");
    attrs.values().append_value(1);
    attrs.keys().append_value("k1");
    attrs.values().append_null();
    attrs.append(true).unwrap();
    attrs.append(true).unwrap();
    attrs.append(false).unwrap();
    let fields = Fields::from(vec![
        Field::new("street", DataType::Utf8, true),
        Field::new("zip", DataType::Int32, false),
    ]);
    let address = StructArray::try_new(
        fields,
        vec![
            Arc::new(StringArray::from(vec![Some("1 High St"), None, Some("x")])),
            Arc::new(arrow::array::Int32Array::from(vec![10_001, 2, 3])),
        ],
        Some(NullBuffer::from(vec![true, true, false])),
    )
    .unwrap();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 3])),
        Arc::new(tags.finish()),
        Arc::new(attrs.finish()),
        Arc::new(address),
    ];
    RecordBatch::try_from_iter_with_nullable(
        ["id", "tags", "attrs", "address"]
            .into_iter()
            .zip(columns)
            .map(|(name, column)| (name, column, true)),
    )
    .unwrap()
}

async fn arrow_result(env: &Env, sql: &str) -> (Value, RecordBatch) {
    let (status, response) = env.execute(sql, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["status"]["state"], "SUCCEEDED", "{response}");
    let mut batches = Vec::new();
    for body in env.fetch_all(&response).await {
        batches.extend(decode(&body).unwrap());
    }
    (response, concat(&batches))
}

async fn inline_rows(env: &Env, sql: &str) -> Value {
    let (status, response) = env
        .execute(
            sql,
            json!({"disposition": "INLINE", "format": "JSON_ARRAY"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    response["result"]["data_array"].clone()
}

#[tokio::test]
async fn nested_columns_are_native_by_default() {
    let env = Env::start().await;
    write_table(
        env.dir.path(),
        "tre",
        "cohort_a",
        "nested",
        &[nested_batch()],
        None,
    )
    .unwrap();
    let (_, batch) = arrow_result(&env, NESTED).await;
    let schema = batch.schema();
    assert!(matches!(schema.field(1).data_type(), DataType::List(_)));
    assert!(matches!(schema.field(2).data_type(), DataType::Map(..)));
    assert!(matches!(schema.field(3).data_type(), DataType::Struct(_)));
    assert_eq!(batch.column(2).as_map().value(0).len(), 2);
}

#[tokio::test]
async fn nested_columns_as_json_text() {
    let env = Env::start_with(|c| c.complex_as_json_text = true).await;
    write_table(
        env.dir.path(),
        "tre",
        "cohort_a",
        "nested",
        &[nested_batch()],
        None,
    )
    .unwrap();
    let (response, batch) = arrow_result(&env, NESTED).await;
    let schema = batch.schema();
    let sql_names: Vec<&str> = schema
        .fields()
        .iter()
        .map(|f| f.metadata()["Spark:DataType:SqlName"].as_str())
        .collect();
    assert_eq!(
        sql_names,
        [
            "BIGINT",
            "ARRAY<STRING>",
            "MAP<STRING, INT>",
            "STRUCT<street: STRING, zip: INT NOT NULL>"
        ]
    );
    let columns = response["manifest"]["schema"]["columns"]
        .as_array()
        .unwrap();
    assert_eq!(
        columns[1]["type_name"], "ARRAY",
        "the manifest is unchanged"
    );
    assert_eq!(columns[2]["type_text"], "MAP<STRING, INT>");
    let text = |i: usize| -> Vec<Option<String>> {
        assert_eq!(schema.field(i).data_type(), &DataType::Utf8);
        batch
            .column(i)
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    };
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(text(1), [s(r#"["a",null,"q\"uote"]"#), s("[]"), None]);
    assert_eq!(text(2), [s(r#"{"k0":1,"k1":null}"#), s("{}"), None]);
    assert_eq!(
        text(3),
        [
            s(r#"{"street":"1 High St","zip":10001}"#),
            s(r#"{"street":null,"zip":2}"#),
            None
        ]
    );

    // JSON_ARRAY carries nested values as JSON text either way.
    let native = Env::start().await;
    write_table(
        native.dir.path(),
        "tre",
        "cohort_a",
        "nested",
        &[nested_batch()],
        None,
    )
    .unwrap();
    assert_eq!(
        inline_rows(&env, NESTED).await,
        inline_rows(&native, NESTED).await
    );
}

#[tokio::test]
async fn interval_columns() {
    let env = Env::start().await;
    let batch = RecordBatch::try_from_iter(vec![
        (
            "ym",
            Arc::new(IntervalYearMonthArray::from(vec![Some(14), Some(-3), None])) as ArrayRef,
        ),
        (
            "ds",
            Arc::new(DurationMicrosecondArray::from(vec![
                Some(93_784_000_005),
                Some(-1_500_000),
                None,
            ])) as ArrayRef,
        ),
    ])
    .unwrap();
    write_table(
        env.dir.path(),
        "tre",
        "cohort_a",
        "spans",
        std::slice::from_ref(&batch),
        None,
    )
    .unwrap();

    let (status, table) = env
        .get("/api/2.1/unity-catalog/tables/tre.cohort_a.spans")
        .await;
    assert_eq!(status, StatusCode::OK, "{table}");
    let uc: Vec<(&str, &str, &str)> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type_name"].as_str().unwrap(),
                c["type_text"].as_str().unwrap(),
                c["type_interval_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        uc,
        [
            ("INTERVAL", "interval year to month", "YEAR TO MONTH"),
            ("INTERVAL", "interval day to second", "DAY TO SECOND")
        ]
    );
    assert_eq!(
        table["columns"][0]["type_json"],
        r#"{"name":"ym","type":"interval year to month","nullable":true,"metadata":{}}"#
    );

    let sql = "SELECT * FROM tre.cohort_a.spans";
    let (response, got) = arrow_result(&env, sql).await;
    let manifest = &response["manifest"]["schema"]["columns"];
    assert_eq!(manifest[0]["type_text"], "INTERVAL YEAR TO MONTH");
    assert_eq!(manifest[1]["type_interval_type"], "DAY TO SECOND");
    assert_eq!(
        got.schema().field(0).data_type(),
        &DataType::Interval(IntervalUnit::YearMonth)
    );
    assert_eq!(
        got.schema().field(1).data_type(),
        &DataType::Duration(TimeUnit::Microsecond)
    );
    assert_eq!(got.column(0).to_data(), batch.column(0).to_data());
    assert_eq!(got.column(1).to_data(), batch.column(1).to_data());
    assert!(got.column(1).is_null(2));

    assert_eq!(
        inline_rows(&env, sql).await,
        json!([
            ["1-2", "1 02:03:04.000005"],
            ["-0-3", "-0 00:00:01.500000"],
            [null, null]
        ])
    );
}
