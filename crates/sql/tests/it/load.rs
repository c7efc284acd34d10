//! Loads the conformance suite's fixture tables into PostgreSQL: `CREATE TABLE` with the
//! PostgreSQL type of each Unity Catalog type, comments, the primary key, then the rows as
//! text parameters cast in SQL (so the server parses every value itself).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use publish_source::conformance::Fixture;
use publish_types::UcType;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn pg_type(t: &UcType) -> String {
    match t {
        UcType::Boolean => "boolean".into(),
        UcType::SmallInt => "smallint".into(),
        UcType::Int => "integer".into(),
        UcType::BigInt => "bigint".into(),
        UcType::Float => "real".into(),
        UcType::Double => "double precision".into(),
        UcType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
        UcType::String => "text".into(),
        UcType::Binary => "bytea".into(),
        UcType::Date => "date".into(),
        UcType::Timestamp => "timestamptz".into(),
        UcType::TimestampNtz => "timestamp".into(),
        UcType::Array(item) => format!("{}[]", pg_type(item)),
        other => panic!("no PostgreSQL type for {other} in the fixtures"),
    }
}

/// One cell as PostgreSQL text input.
fn text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int16 => array
            .as_primitive::<arrow::datatypes::Int16Type>()
            .value(row)
            .to_string(),
        DataType::Int32 => array
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(row)
            .to_string(),
        DataType::Int64 => array
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(row)
            .to_string(),
        // Rust's Display of a float is the shortest text that reads back as the same value.
        DataType::Float32 => array
            .as_primitive::<arrow::datatypes::Float32Type>()
            .value(row)
            .to_string(),
        DataType::Float64 => array
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(row)
            .to_string(),
        DataType::Decimal128(..) => array
            .as_primitive::<arrow::datatypes::Decimal128Type>()
            .value_as_string(row),
        DataType::Utf8 => array.as_string::<i32>().value(row).to_owned(),
        DataType::Binary => {
            let bytes = array.as_binary::<i32>().value(row);
            format!(
                "\\x{}",
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )
        }
        DataType::Date32 => {
            let days = array
                .as_primitive::<arrow::datatypes::Date32Type>()
                .value(row);
            arrow::temporal_conversions::date32_to_datetime(days)
                .unwrap_or_else(|| panic!("date {days}"))
                .date()
                .to_string()
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let us = array
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(row);
            let t = arrow::temporal_conversions::timestamp_us_to_datetime(us)
                .unwrap_or_else(|| panic!("timestamp {us}"))
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string();
            if zone.is_some() { format!("{t}+00") } else { t }
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            let items: Vec<String> = (0..list.len())
                .map(|i| match text(&list, i) {
                    None => "NULL".to_owned(),
                    Some(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        other => panic!("no text form for {other} in the fixtures"),
    })
}

/// Creates `fixture`'s table in `schema` (which must exist unless `create_schema`) and loads
/// its rows.
pub(crate) async fn load(client: &Client, schema: &str, fixture: &Fixture) {
    let d = &fixture.definition;
    let table = format!("{}.{}", quote(schema), quote(d.table.as_str()));
    let mut columns: Vec<String> = d
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                quote(c.name.as_str()),
                pg_type(&c.data_type),
                if c.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect();
    if !d.primary_key.is_empty() {
        let key: Vec<String> = d.primary_key.iter().map(|k| quote(k.as_str())).collect();
        columns.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    let mut sql = format!("CREATE TABLE {table} ({});", columns.join(", "));
    if let Some(comment) = &d.comment {
        sql.push_str(&format!(
            "COMMENT ON TABLE {table} IS {};",
            literal(comment)
        ));
    }
    for c in &d.columns {
        if let Some(comment) = &c.comment {
            sql.push_str(&format!(
                "COMMENT ON COLUMN {table}.{} IS {};",
                quote(c.name.as_str()),
                literal(comment)
            ));
        }
    }
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let placeholders: Vec<String> = d
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::text::{}", i + 1, pg_type(&c.data_type)))
        .collect();
    let insert = client
        .prepare(&format!(
            "INSERT INTO {table} VALUES ({})",
            placeholders.join(", ")
        ))
        .await
        .unwrap_or_else(|e| panic!("prepare insert: {e}"));
    for batch in &fixture.batches {
        insert_batch(client, &insert, batch).await;
    }
}

async fn insert_batch(client: &Client, insert: &tokio_postgres::Statement, batch: &RecordBatch) {
    for row in 0..batch.num_rows() {
        let values: Vec<Option<String>> = batch
            .columns()
            .iter()
            .map(|c| text(c.as_ref(), row))
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        client
            .execute(insert, &params)
            .await
            .unwrap_or_else(|e| panic!("insert row {row}: {e}"));
    }
}
