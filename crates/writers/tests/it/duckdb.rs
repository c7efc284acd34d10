//! The DuckDB sink.

use publish_types::OutputFormat;

crate::conformance_tests!(OutputFormat::Duckdb);

/// Sinks attached to one shared DuckDB instance.
mod shared {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use publish_hash::HashAlgorithm;
    use publish_sink::{Output, Sink, SinkError, SinkFactory};
    use publish_types::OutputFormat;
    use publish_writers::{SharedDuckDb, SinkOptions, Writers, conformance};

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
        let writers = Writers::new(options);
        let open = move |root: &Path| {
            writers.open(
                OutputFormat::Duckdb,
                root,
                Output::Fresh,
                HashAlgorithm::Sha512,
            )
        };
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
            .join(publish_writers::DUCKDB_FILE);
        let fixture = conformance::big();
        let mut sink = open(root.path()).unwrap();
        let mut table = sink
            .begin_table(&fixture.table, fixture.input_schema())
            .await
            .unwrap();
        table.write_batch(fixture.batches[0].clone()).await.unwrap();
        assert!(open_handles_to(&file) > 0, "the file is open while written");
        drop(table);
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

/// A project's further datasets are added to the database its first dataset staged; a dataset
/// packaged again has its previous tables (and a schema they leave empty) dropped first.
mod adding {
    use std::path::Path;

    use publish_hash::HashAlgorithm;
    use publish_sink::{Output, Sink, SinkError, SinkFactory};
    use publish_types::{OutputFormat, TableRef};
    use publish_writers::{DUCKDB_FILE, SinkOptions, Writers, conformance};

    fn open_sink(
        format: OutputFormat,
        root: &Path,
        options: &SinkOptions,
    ) -> Result<Box<dyn Sink>, SinkError> {
        Writers::new(options.clone()).open(format, root, Output::Fresh, HashAlgorithm::Sha512)
    }

    fn open_sink_adding(
        format: OutputFormat,
        root: &Path,
        options: &SinkOptions,
        replace: &[TableRef],
    ) -> Result<Box<dyn Sink>, SinkError> {
        Writers::new(options.clone()).open(
            format,
            root,
            Output::Adding { replace },
            HashAlgorithm::Sha512,
        )
    }
    use publish_types::ObjectName;

    fn options() -> SinkOptions {
        SinkOptions {
            duckdb_threads: Some(1),
            duckdb_memory_limit: Some("256MB".into()),
            ..SinkOptions::default()
        }
    }

    /// A fixture moved to schema `schema`.
    fn in_schema(mut fixture: conformance::Fixture, schema: &str) -> conformance::Fixture {
        fixture.table.schema = ObjectName::parse(schema).unwrap();
        fixture
    }

    async fn write(mut sink: Box<dyn Sink>, fixtures: &[conformance::Fixture]) {
        for f in fixtures {
            let mut table = sink.begin_table(&f.table, f.input_schema()).await.unwrap();
            for b in &f.batches {
                table.write_batch(b.clone()).await.unwrap();
            }
            assert_eq!(table.finish().await.unwrap(), f.stats());
        }
        sink.finish().await.unwrap();
    }

    fn tables(root: &Path) -> Vec<(String, i64)> {
        let conn = duckdb::Connection::open(root.join(DUCKDB_FILE)).unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let schemas: Vec<String> = conn
            .prepare("SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() AND schema_name <> 'main' AND NOT internal ORDER BY 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut out: Vec<(String, i64)> = names
            .into_iter()
            .map(|t| {
                let (s, n) = t.split_once('.').unwrap();
                let rows = conn
                    .query_row(&format!("SELECT count(*) FROM \"{s}\".\"{n}\""), [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                (t, rows)
            })
            .collect();
        out.extend(schemas.into_iter().map(|s| (format!("schema {s}"), -1)));
        out
    }

    fn table_ref(schema: &str, table: &str) -> TableRef {
        TableRef {
            schema: ObjectName::parse(schema).unwrap(),
            table: ObjectName::parse(table).unwrap(),
        }
    }

    #[tokio::test]
    async fn datasets_are_added_beside_each_other_and_replaced_tables_dropped() {
        let first = tempfile::tempdir().unwrap();
        let opts = options();
        write(
            open_sink(OutputFormat::Duckdb, first.path(), &opts).unwrap(),
            &[
                in_schema(conformance::big(), "one"),
                in_schema(conformance::empty(), "one"),
            ],
        )
        .await;

        // Dataset two, on a copy (as the storage crate carries it).
        let second = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(second.path().join("data/outputs")).unwrap();
        std::fs::copy(
            first.path().join(DUCKDB_FILE),
            second.path().join(DUCKDB_FILE),
        )
        .unwrap();
        write(
            open_sink_adding(OutputFormat::Duckdb, second.path(), &opts, &[]).unwrap(),
            &[in_schema(conformance::big(), "two")],
        )
        .await;
        assert_eq!(
            tables(second.path()),
            [
                ("one.big".to_owned(), 5000),
                ("one.empty".to_owned(), 0),
                ("two.big".to_owned(), 5000),
                ("schema one".to_owned(), -1),
                ("schema two".to_owned(), -1),
            ]
        );

        // Dataset one again, with `empty` only: its `big` goes; dataset two's stays.
        write(
            open_sink_adding(
                OutputFormat::Duckdb,
                second.path(),
                &opts,
                &[table_ref("one", "big"), table_ref("one", "empty")],
            )
            .unwrap(),
            &[in_schema(conformance::empty(), "one")],
        )
        .await;
        assert_eq!(
            tables(second.path()),
            [
                ("one.empty".to_owned(), 0),
                ("two.big".to_owned(), 5000),
                ("schema one".to_owned(), -1),
                ("schema two".to_owned(), -1),
            ]
        );

        // Dataset two again in another schema: the schema it leaves empty is dropped.
        write(
            open_sink_adding(
                OutputFormat::Duckdb,
                second.path(),
                &opts,
                &[table_ref("two", "big")],
            )
            .unwrap(),
            &[in_schema(conformance::big(), "three")],
        )
        .await;
        assert_eq!(
            tables(second.path()),
            [
                ("one.empty".to_owned(), 0),
                ("three.big".to_owned(), 5000),
                ("schema one".to_owned(), -1),
                ("schema three".to_owned(), -1),
            ]
        );
    }

    #[tokio::test]
    async fn adding_needs_the_database_and_a_fresh_sink_refuses_one() {
        let root = tempfile::tempdir().unwrap();
        let opts = options();
        let err = open_sink_adding(OutputFormat::Duckdb, root.path(), &opts, &[])
            .err()
            .unwrap();
        assert!(matches!(err, SinkError::Io { .. }), "{err:?}");
        write(
            open_sink(OutputFormat::Duckdb, root.path(), &opts).unwrap(),
            &[conformance::empty()],
        )
        .await;
        let err = open_sink(OutputFormat::Duckdb, root.path(), &opts)
            .err()
            .unwrap();
        assert!(matches!(err, SinkError::OutputExists { .. }), "{err:?}");
    }
}

/// A sink dropped in the middle of a table still ends its writer thread (closing and detaching
/// its file), and the process can wait for that before it exits, as the server does.
#[tokio::test]
async fn the_writer_threads_of_dropped_sinks_end_and_can_be_waited_for() {
    use publish_hash::HashAlgorithm;
    use publish_sink::{Output, SinkFactory};
    use publish_writers::{SinkOptions, Writers, conformance, wait_for_writers};

    let root = tempfile::tempdir().unwrap();
    let writers = Writers::new(SinkOptions {
        duckdb_threads: Some(1),
        duckdb_memory_limit: Some("256MB".into()),
        ..SinkOptions::default()
    });
    let mut sink = writers
        .open(
            OutputFormat::Duckdb,
            root.path(),
            Output::Fresh,
            HashAlgorithm::Sha512,
        )
        .unwrap();
    let fixture = conformance::big();
    let mut table = sink
        .begin_table(&fixture.table, fixture.input_schema())
        .await
        .unwrap();
    table.write_batch(fixture.batches[0].clone()).await.unwrap();
    drop(table);
    drop(sink);
    // Other tests of this binary run sinks at the same time: they end within seconds too.
    assert!(
        wait_for_writers(std::time::Duration::from_secs(60)),
        "a writer thread did not end"
    );
}
