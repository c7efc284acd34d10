//! Loads the conformance suite's fixture tables into MariaDB: `CREATE TABLE` with the MySQL
//! type of each Unity Catalog type, comments, the primary key, then the rows through a
//! prepared `INSERT` (text for what MySQL parses, numbers and bytes as they are).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit};
use mysql_async::Value;
use mysql_async::prelude::Queryable;
use publish_source::conformance::Fixture;
use publish_types::UcType;

pub(crate) fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn my_type(t: &UcType) -> String {
    match t {
        UcType::Boolean => "BIT(1)".into(),
        UcType::TinyInt => "TINYINT".into(),
        UcType::SmallInt => "SMALLINT".into(),
        UcType::Int => "INT".into(),
        UcType::BigInt => "BIGINT".into(),
        UcType::Float => "FLOAT".into(),
        UcType::Double => "DOUBLE".into(),
        UcType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        UcType::String => "TEXT".into(),
        UcType::Binary => "BLOB".into(),
        UcType::Date => "DATE".into(),
        UcType::Timestamp => "TIMESTAMP(6)".into(),
        UcType::TimestampNtz => "DATETIME(6)".into(),
        other => panic!("no MySQL type for {other} in the fixtures"),
    }
}

fn value(array: &dyn Array, row: usize) -> Value {
    use arrow::datatypes as t;
    if array.is_null(row) {
        return Value::NULL;
    }
    let text = |s: String| Value::Bytes(s.into_bytes());
    match array.data_type() {
        DataType::Boolean => Value::Int(i64::from(array.as_boolean().value(row))),
        DataType::Int8 => Value::Int(array.as_primitive::<t::Int8Type>().value(row).into()),
        DataType::Int16 => Value::Int(array.as_primitive::<t::Int16Type>().value(row).into()),
        DataType::Int32 => Value::Int(array.as_primitive::<t::Int32Type>().value(row).into()),
        DataType::Int64 => Value::Int(array.as_primitive::<t::Int64Type>().value(row)),
        DataType::Float32 => Value::Float(array.as_primitive::<t::Float32Type>().value(row)),
        DataType::Float64 => Value::Double(array.as_primitive::<t::Float64Type>().value(row)),
        DataType::Decimal128(..) => text(
            array
                .as_primitive::<t::Decimal128Type>()
                .value_as_string(row),
        ),
        DataType::Utf8 => text(array.as_string::<i32>().value(row).to_owned()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        DataType::Date32 => {
            let days = array.as_primitive::<t::Date32Type>().value(row);
            text(
                arrow::temporal_conversions::date32_to_datetime(days)
                    .unwrap_or_else(|| panic!("date {days}"))
                    .date()
                    .to_string(),
            )
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let us = array
                .as_primitive::<t::TimestampMicrosecondType>()
                .value(row);
            text(
                arrow::temporal_conversions::timestamp_us_to_datetime(us)
                    .unwrap_or_else(|| panic!("timestamp {us}"))
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string(),
            )
        }
        other => panic!("no MySQL value for {other} in the fixtures"),
    }
}

/// Creates `fixture`'s table in `database` (which must exist) and loads its rows.
pub(crate) async fn load(conn: &mut mysql_async::Conn, database: &str, fixture: &Fixture) {
    let d = &fixture.definition;
    let table = format!("{}.{}", quote(database), quote(d.table.as_str()));
    let mut columns: Vec<String> = d
        .columns
        .iter()
        .map(|c| {
            let mut ddl = format!(
                "{} {} {}",
                quote(c.name.as_str()),
                my_type(&c.data_type),
                if c.nullable { "NULL" } else { "NOT NULL" }
            );
            if let Some(comment) = &c.comment {
                ddl.push_str(&format!(" COMMENT {}", literal(comment)));
            }
            ddl
        })
        .collect();
    if !d.primary_key.is_empty() {
        let key: Vec<String> = d.primary_key.iter().map(|k| quote(k.as_str())).collect();
        columns.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    let mut sql = format!("CREATE TABLE {table} ({})", columns.join(", "));
    if let Some(comment) = &d.comment {
        sql.push_str(&format!(" COMMENT = {}", literal(comment)));
    }
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    conn.query_drop(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let marks = vec!["?"; d.columns.len()].join(", ");
    let insert = format!("INSERT INTO {table} VALUES ({marks})");
    for batch in &fixture.batches {
        for row in 0..batch.num_rows() {
            let values: Vec<Value> = batch
                .columns()
                .iter()
                .map(|c| value(c.as_ref(), row))
                .collect();
            conn.exec_drop(insert.as_str(), values)
                .await
                .unwrap_or_else(|e| panic!("insert row {row}: {e}"));
        }
    }
}
