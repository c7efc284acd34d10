//! The CSV files read back: their bytes (header and quoting, literally, for the table with
//! hostile names), arrow-csv (every value) and DuckDB's `read_csv` (column names and rows).

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use duckdb::Connection;

use super::compare::{cells_of_text, csv_cells};
use super::fixtures::Fixture;
use super::layout::table_path;
use super::query::{in_memory_duckdb, query_strings};

/// The cells of a CSV file as text, row by row; `None` for an empty field.
type Cells = Vec<Vec<Option<String>>>;

pub(super) fn check_csv(root: &Path, tables: &[Fixture]) {
    let duck = in_memory_duckdb();
    for fixture in tables {
        let t = &fixture.table;
        let path = table_path(root, t, "csv");
        let text = std::fs::read_to_string(&path).expect("CSV file is UTF-8");
        let header: Vec<String> = t.columns.iter().map(|c| c.name.to_string()).collect();
        let got = check_csv_values(&path, fixture, &header);
        check_read_csv(&duck, &path, fixture, &header);
        check_csv_text(fixture, &text, &got, &header);
    }
}

/// Every value as arrow-csv reads it; returns the cells read.
fn check_csv_values(path: &Path, fixture: &Fixture, header: &[String]) -> Cells {
    let t = &fixture.table;
    let schema = Arc::new(Schema::new(
        header
            .iter()
            .map(|h| Field::new(h, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = arrow::csv::ReaderBuilder::new(Arc::clone(&schema))
        .with_header(true)
        .build(std::fs::File::open(path).expect("CSV file"))
        .expect("CSV reader");
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("CSV rows");
    let read = concat_batches(&schema, &batches).expect("concat");
    let got = cells_of_text(&read);
    let want = csv_cells(&fixture.expected_csv);
    assert_eq!(got.len(), want.len(), "CSV rows of {}", t.table);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "CSV row {i} of {}", t.table);
    }
    got
}

/// The column names and the rows DuckDB's `read_csv` finds (in a file with rows).
fn check_read_csv(duck: &Connection, path: &Path, fixture: &Fixture, header: &[String]) {
    let t = &fixture.table;
    if fixture.expected.num_rows() == 0 {
        return;
    }
    let path = path.to_string_lossy();
    let names = query_strings(
        duck,
        "SELECT column_name FROM (DESCRIBE SELECT * FROM read_csv(?, header = true, all_varchar = true))",
        &[&path],
    );
    let names: Vec<String> = names
        .into_iter()
        .map(|r| r[0].clone().expect("name"))
        .collect();
    assert_eq!(
        names, header,
        "column names DuckDB's read_csv finds in {}",
        t.table
    );
    let count = query_strings(
        duck,
        "SELECT count(*)::VARCHAR FROM read_csv(?, header = true, all_varchar = true)",
        &[&path],
    );
    assert_eq!(
        count,
        vec![vec![Some(fixture.expected.num_rows().to_string())]],
        "DuckDB read_csv of {}",
        t.table
    );
}

/// What each table's file says literally: the empty table's header, the table with every
/// type's values as text, the table with hostile names byte for byte.
fn check_csv_text(fixture: &Fixture, text: &str, got: &Cells, header: &[String]) {
    match fixture.table.table.as_str() {
        "empty" => assert_eq!(text, "id,note,tags\n"),
        "all_types" => {
            let first = &got[0];
            let column = |name: &str| header.iter().position(|h| h == name).expect("column");
            for (name, want) in [
                ("c_dec_38", "12345678901234567890123456.7890123456"),
                ("c_dec_small", "1234.56"),
                ("c_ts", "2024-02-29T12:34:56.789012Z"),
                ("c_ts_zoned", "2024-02-29T12:34:56.789012Z"),
                ("c_ts_ntz", "2024-02-29T12:34:56.789012"),
                ("c_date", "2024-02-29"),
                ("c_binary", "deadbeef"),
                ("c_struct", r#"{"a":1,"b":"x","c d":[1.5,null]}"#),
                ("c_map2", r#"{"1":["a","b"]}"#),
                ("c_map", r#"{"a":1,"b":null}"#),
                ("c_json_struct", r#"{"x":1,"y":"a"}"#),
                ("c_variant", r#"{"k":[1,2]}"#),
                ("c_iv_ym", "P1Y2M"),
                ("c_iv_ds", "PT93784.000005S"),
            ] {
                assert_eq!(
                    first[column(name)].as_deref(),
                    Some(want),
                    "CSV {name} of row 1"
                );
            }
            assert_eq!(got[3][column("c_iv_ym")].as_deref(), Some("-P0Y1M"));
            assert_eq!(got[3][column("c_iv_ds")].as_deref(), Some("-PT0.000001S"));
            assert_eq!(got[3][column("c_float")].as_deref(), Some("3.4028235e38"));
            assert!(
                got[1][1..].iter().all(Option::is_none),
                "row 2 is NULL but for its key"
            );
        }
        "big" => {}
        _ => assert_eq!(
            text,
            "a b,\"q\"\"uote\",back`tick,\u{fc}n\u{ef},\"comma,name\"\n\
             x,1,,0.5,plain\n\
             \"y,z\",,,,\"with,comma\"\n\
             \"\"\"q\"\"\",-3,\"a\"\"b\",-2.0,\n\
             \"line1\r\nline2\",4,\u{fc},1e-7, spaced \n",
            "the CSV file of the table with hostile names, byte for byte"
        ),
    }
}
