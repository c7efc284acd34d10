//! Cancellation: a stream dropped mid-way, a read abandoned while the query runs, and the
//! overall deadline.

use std::time::{Duration, Instant};

use databricks_emulator::{Fault, Operation};
use futures::StreamExt;
use publish_source::{Source, SourceError};

use crate::common::{Env, request};

/// Waits (at most 5 s) for `done` to hold.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_midway_cancels_the_statement() {
    let env = Env::start().await;
    let source = env.source_with(|c| {
        c.options.max_parallel_downloads = 1;
        c.options.prefetch_chunks = 1;
    });
    let schema = source
        .describe(&request("people", None))
        .await
        .expect("describe");
    let mut stream = source.read(&schema).await.expect("read");
    let first = stream.batches.next().await.expect("a batch").expect("ok");
    assert!(first.num_rows() > 0);
    drop(stream);
    eventually("the cancel call", || env.count(Operation::Cancel) == 1).await;
    let cancel = env
        .journal()
        .into_iter()
        .find(|e| e.operation == Some(Operation::Cancel))
        .expect("cancel in journal");
    let id = env.statement_ids()[0].clone();
    assert_eq!(cancel.path, format!("/api/2.0/sql/statements/{id}/cancel"));
    assert_eq!(cancel.status, 200);
    assert!(
        env.count(Operation::Download) < 4,
        "the rest was not downloaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoning_a_read_while_the_query_runs_cancels_it() {
    let env = Env::start().await;
    let source = env.source();
    let schema = source
        .describe(&request("people", None))
        .await
        .expect("describe");
    env.emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::StayRunning {
            duration: Duration::from_secs(60),
        },
    );
    let read = source.read(&schema);
    // The query is submitted and polled; then the caller gives up.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), read)
            .await
            .is_err()
    );
    eventually("the cancel call", || env.count(Operation::Cancel) == 1).await;
    let id = env.statement_ids()[0].clone();
    assert_eq!(
        env.emulator.statement_state(&id).as_deref(),
        Some("CANCELED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_overall_deadline_is_cancelled() {
    let env = Env::start().await;
    let source = env.source_with(|c| c.options.overall_timeout = Duration::from_millis(400));
    let schema = source
        .describe(&request("people", None))
        .await
        .expect("describe");
    env.emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::StayRunning {
            duration: Duration::from_secs(60),
        },
    );
    let err = source.read(&schema).await.map(|_| ()).unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    eventually("the cancel call", || env.count(Operation::Cancel) == 1).await;
    let id = env.statement_ids()[0].clone();
    assert_eq!(
        env.emulator.statement_state(&id).as_deref(),
        Some("CANCELED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_fails_midway_cancels_the_statement() {
    let env = Env::start().await;
    let source = env.source_with(|c| c.options.max_parallel_downloads = 1);
    let schema = source
        .describe(&request("people", None))
        .await
        .expect("describe");
    for _ in 0..3 {
        env.emulator
            .faults()
            .push(Operation::Download, Fault::TruncatedChunk);
    }
    let stream = source.read(&schema).await.expect("read");
    let results: Vec<_> = stream.batches.collect().await;
    assert!(results.last().is_some_and(Result::is_err));
    eventually("the cancel call", || env.count(Operation::Cancel) == 1).await;
}
