//! The in-memory sink runs the protocol conformance suite, and records what it received.

use publish_columns::arrow_schema;
use publish_hash::HashAlgorithm;
use publish_sink::conformance::{people, people_batch, run_all};
use publish_sink::memory::MemorySinks;
use publish_sink::{Output, SinkError, SinkFactory};
use publish_types::OutputFormat;

#[tokio::test]
async fn memory_sink_conforms() {
    let sinks = MemorySinks::new();
    run_all(&|root| {
        sinks.open(
            OutputFormat::Duckdb,
            root,
            Output::Fresh,
            HashAlgorithm::Sha512,
        )
    })
    .await;
}

#[tokio::test]
async fn memory_sink_records_tables_and_fails_an_armed_batch_as_a_full_volume() {
    let sinks = MemorySinks::new();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sinks
        .open(
            OutputFormat::Csv,
            dir.path(),
            Output::Fresh,
            HashAlgorithm::Sha512,
        )
        .unwrap();
    let t = people("p");
    let mut table = sink.begin_table(&t, arrow_schema(&t)).await.unwrap();
    table.write_batch(people_batch(&t, 0..5)).await.unwrap();
    table.finish().await.unwrap();
    let files = sink.finish().await.unwrap();
    assert_eq!(files[0].path, "data/outputs/s/p.jsonl");
    let text = std::fs::read_to_string(dir.path().join(&files[0].path)).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert_eq!(text.lines().next(), Some(r#"{"id":0}"#));
    assert_eq!(sinks.tables().len(), 1);
    assert_eq!(sinks.tables()[0].rows(), 5);

    sinks.fail_batch(1);
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sinks
        .open(
            OutputFormat::Csv,
            dir.path(),
            Output::Fresh,
            HashAlgorithm::Sha512,
        )
        .unwrap();
    let mut table = sink.begin_table(&t, arrow_schema(&t)).await.unwrap();
    table.write_batch(people_batch(&t, 0..5)).await.unwrap();
    let error = table.write_batch(people_batch(&t, 5..9)).await.unwrap_err();
    assert!(error.is_out_of_space(), "{error:?}");
    drop(table);
    assert!(matches!(sink.finish().await, Err(SinkError::Failed)));
}
