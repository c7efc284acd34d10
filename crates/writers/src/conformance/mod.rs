//! The formats' conformance suite: the same package written in every output format, checked by
//! reading back what is on disk (feature `test-util`), beside `publish_sink`'s protocol suite.
//!
//! Each scenario takes the format and a function opening the sink under test in a directory,
//! so a wrapper around a sink (a fault injector, a progress reporter) can run the suite too.
//! Scenarios panic with a message naming what differs, like `assert!`.
//!
//! What is read back, and with what:
//! * DuckDB: the file opened read-only with the `duckdb` crate; `duckdb_tables()`,
//!   `duckdb_columns()` (types, NOT NULL, comments with the primary key) and every value.
//! * Parquet: the `parquet` crate (exact Arrow types, nullability, values) and DuckDB's
//!   `read_parquet` (rows and types as DuckDB users see them).
//! * CSV: the file's bytes (header and quoting, literally, for the table with hostile names),
//!   arrow-csv (every value) and DuckDB's `read_csv` (column names and rows).
//!
//! Values are compared through one rendering: each cell as JSON text (arrow-json), after
//! normalising what legitimately differs between readers (zones to UTC, all intervals to
//! month-day-nano, large/view string types, map keys as strings, nested field names).
//!
//! The suite uses nothing of the writers it checks: where the files should be (`layout`) and
//! the SQL it sends DuckDB (`query`: values bound as parameters, identifiers quoted there) are
//! its own. `fixtures` builds the tables, `read_duckdb`, `read_parquet` and `read_csv` read each
//! format back, `compare` renders and compares cells.

use std::collections::BTreeSet;
use std::path::Path;

use publish_hash::FileDigest;
use publish_sink::conformance::OpenSink;
use publish_types::OutputFormat;

mod compare;
mod fixtures;
mod layout;
mod query;
mod read_csv;
mod read_duckdb;
mod read_parquet;

pub use fixtures::{Fixture, SCHEMA, all_types, big, empty, hostile};

/// Runs every scenario: the round trip of this suite, then `publish_sink`'s protocol suite.
pub async fn run_all(format: OutputFormat, open: OpenSink<'_>) {
    package_round_trip(format, open).await;
    publish_sink::conformance::run_all(open).await;
}

/// A package of four tables (every type with nulls over several batches, hostile names, no
/// rows, one batch of 5000 rows with nested columns) is written and read back exactly.
pub async fn package_round_trip(format: OutputFormat, open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let tables = [all_types(), hostile(), empty(), big()];
    let files = write_package(format, open, root, &tables).await;
    assert_eq!(
        files,
        expected_files(format, &tables),
        "files returned by finish"
    );
    assert_eq!(
        layout::files_under(root),
        files.iter().cloned().collect::<BTreeSet<_>>(),
        "files on disk after finish (nothing else may be left in the root)"
    );

    match format {
        OutputFormat::Duckdb => read_duckdb::check_duckdb(root, &tables),
        OutputFormat::Parquet => read_parquet::check_parquet(root, &tables),
        OutputFormat::Csv => read_csv::check_csv(root, &tables),
        OutputFormat::Sql => unreachable!("refused above"),
    }
}

/// Writes `tables` into a sink opened under `root`, checking each table's stats and the
/// digests of the files written; returns the files `finish` names.
async fn write_package(
    format: OutputFormat,
    open: OpenSink<'_>,
    root: &Path,
    tables: &[Fixture],
) -> Vec<String> {
    let mut sink = open(root).expect("open sink");
    for fixture in tables {
        let mut table = sink
            .begin_table(&fixture.table, fixture.input_schema())
            .await
            .unwrap_or_else(|e| panic!("begin_table {}: {e}", fixture.table.table));
        for batch in &fixture.batches {
            table
                .write_batch(batch.clone())
                .await
                .unwrap_or_else(|e| panic!("write_batch {}: {e}", fixture.table.table));
        }
        let stats = table
            .finish()
            .await
            .unwrap_or_else(|e| panic!("finish_table {}: {e}", fixture.table.table));
        assert_eq!(stats, fixture.stats(), "stats of {}", fixture.table.table);
    }
    let written = sink.finish().await.expect("finish");
    // CSV and Parquet files come with the digest of what was written; DuckDB's is taken later.
    for file in &written {
        check_digest(format, root, &file.path, file.digest.as_ref());
    }
    written.into_iter().map(|f| f.path).collect()
}

/// A CSV or Parquet file's digest is that of its bytes on disk; a DuckDB file has none yet.
fn check_digest(format: OutputFormat, root: &Path, path: &str, digest: Option<&FileDigest>) {
    let bytes = std::fs::read(root.join(path)).expect("read a written file");
    match (format, digest) {
        (OutputFormat::Duckdb, None) => {}
        (OutputFormat::Csv | OutputFormat::Parquet, Some(digest)) => {
            let on_disk = publish_hash::hash_reader(bytes.as_slice(), digest.algorithm)
                .expect("hash in memory");
            assert_eq!(digest, &on_disk, "digest of {path} taken while writing");
        }
        (format, digest) => panic!("{format:?} gave {path}: digest {digest:?}"),
    }
}

/// The files a sink of `format` should name for `tables`, sorted.
fn expected_files(format: OutputFormat, tables: &[Fixture]) -> Vec<String> {
    match format {
        OutputFormat::Duckdb => vec![layout::duckdb_file()],
        OutputFormat::Csv | OutputFormat::Parquet => {
            let ext = if format == OutputFormat::Csv {
                "csv"
            } else {
                "parquet"
            };
            let mut files: Vec<String> = tables
                .iter()
                .map(|t| layout::table_file(&t.table, ext))
                .collect();
            files.sort();
            files
        }
        OutputFormat::Sql => panic!("the formats' suite writes files; sql is not a file format"),
    }
}
