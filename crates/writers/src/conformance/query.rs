//! The checks' own way into DuckDB: read-only and in-memory connections, and queries whose
//! values (names, paths) are bound as parameters and whose identifiers are quoted here, so that
//! nothing the checks send DuckDB is spelled by the writer code they check.

use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::DataType;
use duckdb::{AccessMode, Config, Connection, params_from_iter};

pub(super) fn open_read_only(path: &Path) -> Connection {
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)
        .and_then(|c| c.enable_autoload_extension(false))
        .expect("config");
    Connection::open_with_flags(path, config).expect("open the DuckDB file read-only")
}

pub(super) fn in_memory_duckdb() -> Connection {
    let config = Config::default()
        .enable_autoload_extension(false)
        .expect("config");
    Connection::open_in_memory_with_flags(config).expect("in-memory DuckDB")
}

/// The rows `sql` answers with `params` bound to its `?`s, every value cast to text.
pub(super) fn query_strings(
    conn: &Connection,
    sql: &str,
    params: &[&str],
) -> Vec<Vec<Option<String>>> {
    let batch = query_batch(conn, sql, params);
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| cast(c, &DataType::Utf8).expect("as text"))
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    let s = c.as_string::<i32>();
                    (!s.is_null(row)).then(|| s.value(row).to_owned())
                })
                .collect()
        })
        .collect()
}

/// What `sql` answers with `params` bound to its `?`s, as one batch.
pub(super) fn query_batch(conn: &Connection, sql: &str, params: &[&str]) -> RecordBatch {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches: Vec<RecordBatch> = stmt
        .query_arrow(params_from_iter(params))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect();
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .unwrap_or_else(|| stmt.schema());
    concat_batches(&schema, &batches).expect("concat")
}

/// `name` as a DuckDB identifier: in double quotes, each double quote doubled.
pub(super) fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
