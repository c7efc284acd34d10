//! The DuckDB sink.

use publish_sink::OutputFormat;

crate::conformance_tests!(OutputFormat::Duckdb);

/// Sinks attached to one shared DuckDB instance.
mod shared {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use publish_sink::{
        OutputFormat, SharedDuckDb, Sink, SinkError, SinkOptions, conformance, open_sink,
    };

    fn shared_opener(
        scratch: &Path,
    ) -> (
        SharedDuckDb,
        impl Fn(&Path) -> Result<Box<dyn Sink>, SinkError> + use<>,
    ) {
        let mut options = SinkOptions {
            scratch_dir: Some(scratch.to_path_buf()),
            duckdb_threads: Some(2),
            duckdb_memory_limit: Some("256MB".into()),
            ..SinkOptions::default()
        };
        let shared = SharedDuckDb::open(&options).expect("open the shared instance");
        options.shared_duckdb = Some(shared.clone());
        let open = move |root: &Path| open_sink(OutputFormat::Duckdb, root, &options);
        (shared, open)
    }

    #[tokio::test]
    async fn the_conformance_suite_passes_on_a_shared_instance() {
        let scratch = tempfile::tempdir().unwrap();
        let (_shared, open) = shared_opener(scratch.path());
        conformance::run_all(OutputFormat::Duckdb, &open).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_packages_on_one_instance_are_each_complete() {
        let scratch = tempfile::tempdir().unwrap();
        let (_shared, open) = shared_opener(scratch.path());
        tokio::join!(
            conformance::package_round_trip(OutputFormat::Duckdb, &open),
            conformance::package_round_trip(OutputFormat::Duckdb, &open),
            conformance::package_round_trip(OutputFormat::Duckdb, &open),
        );
    }

    fn open_handles_to(path: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|target| target == path)
                    .count()
            })
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_dropped_sink_releases_its_file() {
        let scratch = tempfile::tempdir().unwrap();
        let (_shared, open) = shared_opener(scratch.path());
        let root = tempfile::tempdir().unwrap();
        let file = root
            .path()
            .canonicalize()
            .unwrap()
            .join(publish_sink::DUCKDB_FILE);
        let fixture = conformance::big();
        let mut sink = open(root.path()).unwrap();
        sink.begin_table(&fixture.table, fixture.input_schema())
            .await
            .unwrap();
        sink.write_batch(fixture.batches[0].clone()).await.unwrap();
        assert!(open_handles_to(&file) > 0, "the file is open while written");
        drop(sink);
        let deadline = Instant::now() + Duration::from_secs(20);
        while open_handles_to(&file) > 0 {
            assert!(
                Instant::now() < deadline,
                "the shared instance still holds {} after the sink was dropped",
                file.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
