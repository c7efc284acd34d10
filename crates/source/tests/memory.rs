//! The in-memory source's fault injection, as workflow tests use it.

use std::time::{Duration, Instant};

use futures::StreamExt;
use publish_source::memory::MemorySource;
use publish_source::{Source, SourceError, SourceExt};

use publish_source::TableRequest;
use publish_source::conformance::Suite;

fn suite() -> Suite {
    Suite::new("tre", "cohort_a")
}

fn request(table: &str, columns: Option<&[&str]>) -> TableRequest {
    suite().request(table, columns)
}

fn loaded() -> MemorySource {
    let source = MemorySource::new();
    for fixture in suite().fixtures() {
        source
            .add_table(fixture.definition, fixture.batches)
            .expect("add fixture");
    }
    source
}

fn unavailable() -> SourceError {
    SourceError::Unavailable {
        operation: "reading".into(),
        message: "injected".into(),
    }
}

#[tokio::test]
async fn a_read_fails_after_the_given_batches_once() {
    let source = loaded();
    source.fail_read_after("TRE.cohort_a.people", 2, unavailable());
    let (schema, stream) = source.open(&request("people", None)).await.expect("open");
    let items: Vec<_> = stream.batches.collect().await;
    assert_eq!(items.len(), 3, "two batches, then the error, then nothing");
    assert!(items[..2].iter().all(Result::is_ok));
    assert_eq!(items[2].as_ref().unwrap_err(), &unavailable());
    // The fault was consumed: the next read is whole.
    let rows: usize = source
        .read_to_vec(&schema)
        .await
        .expect("second read")
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, publish_source::conformance::PEOPLE_ROWS);
    assert_eq!(source.reads_started(), 2);
    assert_eq!(source.open_streams(), 0);
}

#[tokio::test]
async fn a_fault_past_the_end_fails_the_read_at_its_end() {
    let source = loaded();
    source.fail_read_after("tre.cohort_a.people", 99, unavailable());
    let (_, stream) = source.open(&request("people", None)).await.expect("open");
    let items: Vec<_> = stream.batches.collect().await;
    assert!(items.last().is_some_and(Result::is_err));
}

#[tokio::test]
async fn batches_can_be_delayed_and_checks_failed() {
    let source = loaded();
    source.delay_batches("tre.cohort_a.people", Duration::from_millis(50));
    let started = Instant::now();
    let schema = source
        .describe(&request("people", Some(&["Id"])))
        .await
        .expect("describe");
    let batches = source.read_to_vec(&schema).await.expect("read");
    assert_eq!(batches.len(), 3);
    assert!(started.elapsed() >= Duration::from_millis(150));

    source.fail_next_check(SourceError::Authentication {
        message: "injected".into(),
    });
    assert!(matches!(
        source.check().await,
        Err(SourceError::Authentication { .. })
    ));
    source.check().await.expect("only the next check fails");
}

#[tokio::test]
async fn tables_whose_batches_lack_a_column_are_refused() {
    let source = MemorySource::new();
    let mut fixture = suite().people();
    fixture
        .definition
        .columns
        .push(publish_types::ColumnSchema {
            name: publish_types::Identifier::parse("missing").expect("id"),
            data_type: publish_types::UcType::Int,
            nullable: true,
            comment: None,
        });
    let err = source
        .add_table(fixture.definition, fixture.batches)
        .unwrap_err();
    assert!(err.to_string().contains("lack column `missing`"), "{err}");
}
