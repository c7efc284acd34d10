//! Integration tests of publish-sink: the conformance suite run by each format, and what only
//! one format has. One binary, one module per output format.

mod csv;
mod duckdb;
mod parquet;

use std::path::Path;

use publish_sink::{OutputFormat, Sink, SinkError, SinkOptions, open_sink};

/// Opens `format` with small DuckDB settings, as the tests run on two cores.
fn opener(format: OutputFormat) -> impl Fn(&Path) -> Result<Box<dyn Sink>, SinkError> {
    move |root: &Path| {
        let options = SinkOptions {
            duckdb_threads: Some(1),
            duckdb_memory_limit: Some("256MB".into()),
            queue_depth: 2,
            ..SinkOptions::default()
        };
        open_sink(format, root, &options)
    }
}

/// One test per conformance scenario, for `$format`.
macro_rules! conformance_tests {
    ($format:expr) => {
        use publish_sink::conformance;

        use crate::opener;

        #[tokio::test]
        async fn package_round_trip() {
            conformance::package_round_trip($format, &opener($format)).await;
        }

        #[tokio::test]
        async fn rejects_null_in_not_null() {
            conformance::rejects_null_in_not_null($format, &opener($format)).await;
        }

        #[tokio::test]
        async fn rejects_what_it_cannot_write() {
            conformance::rejects_what_it_cannot_write($format, &opener($format)).await;
        }

        #[tokio::test]
        async fn enforces_call_order() {
            conformance::enforces_call_order($format, &opener($format)).await;
        }

        #[tokio::test]
        async fn drop_mid_table_neither_hangs_nor_panics() {
            conformance::drop_mid_table_neither_hangs_nor_panics($format, &opener($format)).await;
        }
    };
}
use conformance_tests;
