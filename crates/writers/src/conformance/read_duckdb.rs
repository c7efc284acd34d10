//! The DuckDB file read back with the `duckdb` crate, read-only: the tables and nothing else,
//! each column's name, type, NOT NULL and comment, the table comments with the primary key,
//! every value, and a few values as DuckDB itself prints them.

use std::path::Path;

use duckdb::Connection;
use publish_types::{TableSchema, UcType};

use super::compare::assert_same_rows;
use super::fixtures::{Fixture, SCHEMA};
use super::layout::duckdb_file;
use super::query::{identifier, open_read_only, query_batch, query_strings};

pub(super) fn check_duckdb(root: &Path, tables: &[Fixture]) {
    let conn = open_read_only(&root.join(duckdb_file()));
    check_listing(&conn, tables);
    for fixture in tables {
        check_table(&conn, fixture);
    }
    check_printed(&conn, &tables[0].table);
}

/// The file holds the fixtures' tables and nothing else.
fn check_listing(conn: &Connection, tables: &[Fixture]) {
    let listed = query_strings(
        conn,
        "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL",
        &[],
    );
    let mut want: Vec<Vec<Option<String>>> = tables
        .iter()
        .map(|t| vec![Some(SCHEMA.to_owned()), Some(t.table.table.to_string())])
        .collect();
    want.sort();
    assert_eq!(listed, want, "the tables in the DuckDB file (nothing else)");
    let views = query_strings(
        conn,
        "SELECT view_name FROM duckdb_views() WHERE NOT internal",
        &[],
    );
    assert!(views.is_empty(), "views in the DuckDB file: {views:?}");
}

/// One table's columns (names, NOT NULL, types), comments and rows.
fn check_table(conn: &Connection, fixture: &Fixture) {
    let t = &fixture.table;
    let columns = query_strings(
        conn,
        "SELECT column_name, data_type, CAST(is_nullable AS VARCHAR), comment FROM duckdb_columns() \
         WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        &[t.schema.as_str(), t.table.as_str()],
    );
    let names: Vec<String> = columns
        .iter()
        .map(|c| c[0].clone().expect("name"))
        .collect();
    let declared: Vec<String> = t.columns.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(names, declared, "columns of {}", t.table);
    for (column, row) in t.columns.iter().zip(&columns) {
        let nullable = row[2].as_deref() == Some("true");
        assert_eq!(
            nullable, column.nullable,
            "NOT NULL of {}.{}",
            t.table, column.name
        );
    }
    let types: Vec<(String, String)> = columns
        .iter()
        .map(|c| (c[0].clone().expect("name"), c[1].clone().expect("type")))
        .collect();
    assert_eq!(types, duckdb_types(fixture), "DuckDB types of {}", t.table);
    check_comments(conn, fixture, &columns);

    let read = query_batch(
        conn,
        &format!("SELECT * FROM {} ORDER BY rowid", qualified(t)),
        &[],
    );
    assert_same_rows(
        &read,
        &fixture.expected,
        &format!("DuckDB table {}", t.table),
    );
}

/// The table comment and the column comments (`columns` as [`check_table`] listed them).
fn check_comments(conn: &Connection, fixture: &Fixture, columns: &[Vec<Option<String>>]) {
    let t = &fixture.table;
    let comments: Vec<(String, String)> = columns
        .iter()
        .filter_map(|c| Some((c[0].clone()?, c[3].clone()?)))
        .collect();
    let table_comment = query_strings(
        conn,
        "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        &[t.schema.as_str(), t.table.as_str()],
    );
    let (want_table, want_columns) = duckdb_comments(fixture);
    assert_eq!(
        table_comment,
        vec![vec![want_table]],
        "table comment of {}",
        t.table
    );
    assert_eq!(comments, want_columns, "column comments of {}", t.table);
}

/// A few values of the table with every type (`all`) as DuckDB itself prints them.
fn check_printed(conn: &Connection, all: &TableSchema) {
    let all = qualified(all);
    let row = |columns: &str, id: u8| {
        query_strings(
            conn,
            &format!("SELECT {columns} FROM {all} WHERE id = {id}"),
            &[],
        )
    };
    let printed = row(
        "c_dec_38::VARCHAR, c_ts::VARCHAR, c_ts_zoned::VARCHAR, c_struct::VARCHAR, c_iv_ds::VARCHAR, \
         c_map2::VARCHAR",
        1,
    );
    assert_eq!(
        printed,
        vec![vec![
            Some("12345678901234567890123456.7890123456".to_owned()),
            Some("2024-02-29 12:34:56.789012+00".to_owned()),
            Some("2024-02-29 12:34:56.789012+00".to_owned()),
            Some("{'a': 1, 'b': x, 'c d': [1.5, NULL]}".to_owned()),
            Some("26:03:04.000005".to_owned()),
            Some("{1=[a, b]}".to_owned()),
        ]],
        "values as DuckDB prints them"
    );
    let null_struct = row(
        "(c_struct IS NULL)::VARCHAR, (c_struct.a IS NULL)::VARCHAR, (c_struct['c d'] IS NULL)::VARCHAR",
        2,
    );
    assert_eq!(
        null_struct,
        vec![vec![
            Some("true".to_owned()),
            Some("true".to_owned()),
            Some("true".to_owned())
        ]],
        "the fields of a NULL struct are NULL"
    );
}

fn qualified(t: &TableSchema) -> String {
    format!(
        "{}.{}",
        identifier(t.schema.as_str()),
        identifier(t.table.as_str())
    )
}

/// The DuckDB type of each column, as `duckdb_columns()` prints it.
fn duckdb_types(fixture: &Fixture) -> Vec<(String, String)> {
    fixture
        .table
        .columns
        .iter()
        .map(|c| {
            let ty = match c.name.as_str() {
                "c_struct" => "STRUCT(a INTEGER, b VARCHAR, \"c d\" DOUBLE[])".to_owned(),
                "c_json_struct" => "STRUCT(x INTEGER, y VARCHAR)".to_owned(),
                "c_map" => "MAP(VARCHAR, BIGINT)".to_owned(),
                "c_map2" => "MAP(INTEGER, VARCHAR[])".to_owned(),
                "m" => "MAP(VARCHAR, INTEGER)".to_owned(),
                _ => uc_to_duckdb(&c.data_type),
            };
            (c.name.to_string(), ty)
        })
        .collect()
}

fn uc_to_duckdb(t: &UcType) -> String {
    match t {
        UcType::Boolean => "BOOLEAN".into(),
        UcType::TinyInt => "TINYINT".into(),
        UcType::SmallInt => "SMALLINT".into(),
        UcType::Int => "INTEGER".into(),
        UcType::BigInt => "BIGINT".into(),
        UcType::Float => "FLOAT".into(),
        UcType::Double => "DOUBLE".into(),
        UcType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        UcType::String
        | UcType::Char(_)
        | UcType::Varchar(_)
        | UcType::Variant
        | UcType::Other(_) => "VARCHAR".into(),
        UcType::Binary => "BLOB".into(),
        UcType::Date => "DATE".into(),
        UcType::Timestamp => "TIMESTAMP WITH TIME ZONE".into(),
        UcType::TimestampNtz => "TIMESTAMP".into(),
        UcType::Interval(_) => "INTERVAL".into(),
        UcType::Array(e) => format!("{}[]", uc_to_duckdb(e)),
        UcType::Map(..) | UcType::Struct(_) => unreachable!("spelled out in duckdb_types"),
    }
}

/// Table comment and `(column, comment)` pairs the DuckDB file should hold.
fn duckdb_comments(fixture: &Fixture) -> (Option<String>, Vec<(String, String)>) {
    let name = fixture.table.table.as_str();
    match name {
        "all_types" => (
            Some("Every type.\nprimary key: (id)".into()),
            vec![
                ("c_bool".into(), "a flag".into()),
                (
                    "c_char".into(),
                    "fixed width\ndeclared type: char(10)".into(),
                ),
                ("c_varchar".into(), "declared type: varchar(20)".into()),
            ],
        ),
        "big" => (Some("primary key: (id)".into()), vec![]),
        "empty" => (None, vec![]),
        _ => (
            Some("It's a \"weird\" table\nprimary key: (\"q\"\"uote\", \"a b\")".into()),
            vec![("a b".into(), "first; 'quoted'".into())],
        ),
    }
}
