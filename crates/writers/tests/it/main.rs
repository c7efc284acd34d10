//! Integration tests of publish-writers: the conformance suites run by each format, and what
//! only one format has. One binary, one module per output format.

mod csv;
mod duckdb;
mod parquet;

use std::path::Path;

use publish_hash::HashAlgorithm;
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
        Writers::new(options).open(format, root, Output::Fresh, HashAlgorithm::Sha512)
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

/// CSV and Parquet files are hashed while written with the algorithm the sink is opened with,
/// the one the workflow configures: SHA3-512 here, not the SHA-512 default.
#[tokio::test]
async fn files_are_hashed_with_the_algorithm_the_sink_is_opened_with() {
    use publish_sink::conformance::{people, people_batch};
    for format in [OutputFormat::Csv, OutputFormat::Parquet] {
        let root = tempfile::tempdir().unwrap();
        let mut sink = Writers::default()
            .open(format, root.path(), Output::Fresh, HashAlgorithm::Sha3_512)
            .unwrap();
        let t = people("p");
        let mut table = sink
            .begin_table(&t, publish_columns::arrow_schema(&t))
            .await
            .unwrap();
        table.write_batch(people_batch(&t, 0..50)).await.unwrap();
        table.finish().await.unwrap();
        let files = sink.finish().await.unwrap();
        assert_eq!(files.len(), 1, "{format:?}");
        let digest = files[0].digest.clone().expect("hashed while written");
        let bytes = std::fs::read(root.path().join(&files[0].path)).unwrap();
        let on_disk = publish_hash::hash_reader(bytes.as_slice(), HashAlgorithm::Sha3_512).unwrap();
        assert_eq!(digest, on_disk, "{format:?}");
    }
}
