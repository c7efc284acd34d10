//! Integration tests of publish-writers: the conformance suites run by each format, and what
//! only one format has. One binary, one module per output format.

mod csv;
mod duckdb;
mod parquet;

use std::path::Path;

use publish_sink::{Output, Sink, SinkError, SinkFactory};
use publish_types::OutputFormat;
use publish_writers::{SinkOptions, Writers};

/// Opens `format` with small DuckDB settings, as the tests run on two cores.
fn opener(format: OutputFormat) -> impl Fn(&Path) -> Result<Box<dyn Sink>, SinkError> {
    move |root: &Path| {
        let options = SinkOptions {
            duckdb_threads: Some(1),
            duckdb_memory_limit: Some("256MB".into()),
            queue_depth: 2,
            ..SinkOptions::default()
        };
        Writers::new(options).open(format, root, Output::Fresh)
    }
}

/// One test per conformance scenario, for `$format`.
macro_rules! conformance_tests {
    ($format:expr) => {
        use publish_writers::conformance;

        use crate::opener;

        #[tokio::test]
        async fn package_round_trip() {
            conformance::package_round_trip($format, &opener($format)).await;
        }

        #[tokio::test]
        async fn follows_the_sink_protocol() {
            publish_sink::conformance::run_all(&opener($format)).await;
        }
    };
}
use conformance_tests;
