//! Where each format's files should be, as the crate documentation lays them out — spelled here,
//! not taken from the writers — and what is on disk.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use publish_sink::OUTPUT_DIR;
use publish_types::TableSchema;

/// The DuckDB format's one file, below the root.
pub(super) fn duckdb_file() -> String {
    format!("{OUTPUT_DIR}/database.duckdb")
}

/// The CSV or Parquet file (`ext`) of table `t`, below the root.
pub(super) fn table_file(t: &TableSchema, ext: &str) -> String {
    format!("{OUTPUT_DIR}/{}/{}.{ext}", t.schema, t.table)
}

/// [`table_file`] under `root`.
pub(super) fn table_path(root: &Path, t: &TableSchema, ext: &str) -> PathBuf {
    root.join(OUTPUT_DIR)
        .join(t.schema.as_str())
        .join(format!("{}.{ext}", t.table))
}

/// Every file below `root`, as `/`-separated paths relative to it.
pub(super) fn files_under(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).expect("inside root");
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(parts.join("/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}
