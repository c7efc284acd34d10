//! The Parquet files read back with the `parquet` crate (exact Arrow types, nullability,
//! values) and with DuckDB's `read_parquet` (rows, and types as DuckDB users see them).

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use duckdb::Connection;

use super::compare::{assert_same_rows, sketch};
use super::fixtures::Fixture;
use super::layout::table_path;
use super::query::{in_memory_duckdb, query_strings};

pub(super) fn check_parquet(root: &Path, tables: &[Fixture]) {
    let duck = in_memory_duckdb();
    for fixture in tables {
        let path = table_path(root, &fixture.table, "parquet");
        check_parquet_file(&path, fixture);
        check_read_parquet(&duck, &path, fixture);
    }
}

/// The file as the `parquet` crate reads it: names, nullability, type shapes and every value.
fn check_parquet_file(path: &Path, fixture: &Fixture) {
    let t = &fixture.table;
    let file = std::fs::File::open(path).expect("parquet file");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet reader");
    let schema = Arc::clone(reader.schema());
    let batches: Vec<RecordBatch> = reader
        .build()
        .expect("parquet reader")
        .collect::<Result<_, _>>()
        .expect("parquet batches");
    let read = concat_batches(&schema, &batches).expect("concat");
    for (got, (want, column)) in schema
        .fields()
        .iter()
        .zip(fixture.expected.schema().fields().iter().zip(&t.columns))
    {
        assert_eq!(
            got.name(),
            column.name.as_str(),
            "Parquet column names of {}",
            t.table
        );
        assert_eq!(
            got.is_nullable(),
            column.nullable,
            "Parquet nullability of {}.{}",
            t.table,
            column.name
        );
        assert_eq!(
            sketch(got.data_type()),
            sketch(want.data_type()),
            "Parquet type of {}.{}",
            t.table,
            column.name
        );
    }
    assert_same_rows(
        &read,
        &fixture.expected,
        &format!("Parquet table {}", t.table),
    );
}

/// The file as DuckDB's `read_parquet` reads it: its rows, and the types of the table with
/// every type.
fn check_read_parquet(duck: &Connection, path: &Path, fixture: &Fixture) {
    let t = &fixture.table;
    let path = path.to_string_lossy();
    let count = query_strings(
        duck,
        "SELECT count(*)::VARCHAR FROM read_parquet(?)",
        &[&path],
    );
    assert_eq!(
        count,
        vec![vec![Some(fixture.expected.num_rows().to_string())]],
        "DuckDB read_parquet of {}",
        t.table
    );
    if t.table.as_str() == "all_types" {
        let types = query_strings(
            duck,
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?)) WHERE column_name IN ('c_ts', 'c_ts_ntz', 'c_dec_38', 'c_struct') ORDER BY ALL",
            &[&path],
        );
        assert_eq!(
            types,
            vec![
                vec![Some("c_dec_38".into()), Some("DECIMAL(38,10)".into())],
                vec![
                    Some("c_struct".into()),
                    Some("STRUCT(a INTEGER, b VARCHAR, \"c d\" DOUBLE[])".into())
                ],
                vec![Some("c_ts".into()), Some("TIMESTAMP WITH TIME ZONE".into())],
                vec![Some("c_ts_ntz".into()), Some("TIMESTAMP".into())],
            ],
            "types DuckDB sees in the Parquet file"
        );
    }
}
