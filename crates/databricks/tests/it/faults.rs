//! Recoverable faults: throttling, unavailability, expired links, truncated and slow chunks —
//! each read still returns exactly the table.

use std::time::{Duration, Instant};

use databricks_emulator::{Fault, Operation};
use futures::StreamExt;
use publish_databricks::DatabricksSource;
use publish_source::conformance::{assert_batches_eq, collect};
use publish_source::{Source, SourceError};
use publish_types::TableSchema;

use crate::common::{Env, request};

async fn read_people(env: &Env, source: &DatabricksSource, schema: &TableSchema) {
    let got = collect(source.read(schema).await.expect("read")).await;
    let fixture = env.suite.people();
    let want = arrow::compute::concat_batches(&fixture.batches[0].schema(), &fixture.batches)
        .expect("concat");
    assert_batches_eq(&got, &want, "people");
}

async fn described(source: &DatabricksSource) -> TableSchema {
    source
        .describe(&request("people", None))
        .await
        .expect("describe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_for_retry_after_then_succeeds() {
    let env = Env::start().await;
    let source = env.source();
    let faults = env.emulator.faults();
    faults.push(
        Operation::GetTable,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    let started = Instant::now();
    let schema = described(&source).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    // Execute is retried on 429 too (the request was not accepted), as are chunk calls.
    faults.push(
        Operation::ExecuteStatement,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    faults.push(
        Operation::GetChunk,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    faults.push(
        Operation::Download,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    read_people(&env, &source, &schema).await;
    for op in [
        Operation::GetTable,
        Operation::ExecuteStatement,
        Operation::GetChunk,
        Operation::Download,
    ] {
        assert_eq!(faults.pending(op), 0, "{op:?} fault consumed");
    }
    // The read's first statement (DESCRIBE HISTORY, to pin the version) is throttled once and
    // retried; then the SELECT.
    assert_eq!(env.count(Operation::ExecuteStatement), 3);
    let throttled = env.journal().iter().filter(|e| e.status == 429).count();
    assert_eq!(throttled, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_unavailable_is_retried_then_succeeds() {
    let env = Env::start().await;
    let source = env.source();
    let faults = env.emulator.faults();
    faults.push(
        Operation::Token,
        Fault::Unavailable {
            retry_after_secs: 1,
        },
    );
    faults.push(
        Operation::GetTable,
        Fault::Unavailable {
            retry_after_secs: 1,
        },
    );
    let schema = described(&source).await;
    faults.push(
        Operation::ExecuteStatement,
        Fault::Unavailable {
            retry_after_secs: 1,
        },
    );
    faults.push(
        Operation::Download,
        Fault::Unavailable {
            retry_after_secs: 1,
        },
    );
    read_people(&env, &source, &schema).await;
    assert_eq!(env.journal().iter().filter(|e| e.status == 503).count(), 4);
}

#[tokio::test]
async fn server_errors_are_retried_only_where_repeating_is_safe() {
    let env = Env::start().await;
    let source = env.source();
    let schema = described(&source).await;
    let internal = || Fault::Error {
        status: 500,
        error_code: "INTERNAL_ERROR".into(),
        message: "boom".into(),
    };
    // A chunk GET is idempotent: retried.
    env.emulator.faults().push(Operation::GetChunk, internal());
    read_people(&env, &source, &schema).await;
    // Execute is not: a 500 might have started the query, so it is reported, not repeated.
    env.emulator
        .faults()
        .push(Operation::ExecuteStatement, internal());
    let before = env.count(Operation::ExecuteStatement);
    let err = source.read(&schema).await.map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, SourceError::Rejected { status: 500, error_code: Some(c), .. } if c == "INTERNAL_ERROR"),
        "{err:?}"
    );
    assert_eq!(env.count(Operation::ExecuteStatement), before + 1);
}

#[tokio::test]
async fn throttling_that_never_ends_is_unavailable() {
    let env = Env::start().await;
    let source = env.source_with(|c| c.options.max_retries = 2);
    for _ in 0..3 {
        env.emulator.faults().push(
            Operation::GetTable,
            Fault::Unavailable {
                retry_after_secs: 0,
            },
        );
    }
    let err = source.describe(&request("people", None)).await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(env.count(Operation::GetTable), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_links_are_refreshed() {
    let env = Env::start().await;
    let source = env.source();
    let schema = described(&source).await;
    // Chunk 0's link comes expired with the statement, chunk 1's with its chunk answer. The
    // read's first statement is DESCRIBE HISTORY (inline, no links): it takes the first fault.
    for _ in 0..2 {
        env.emulator
            .faults()
            .push(Operation::ExecuteStatement, Fault::ExpiredLink);
    }
    env.emulator
        .faults()
        .push(Operation::GetChunk, Fault::ExpiredLink);
    read_people(&env, &source, &schema).await;
    // 3 chunk GETs for chunks 1-3, plus one fresh link for chunk 0 and one for chunk 1.
    assert_eq!(env.count(Operation::GetChunk), 5);
    assert_eq!(
        env.count(Operation::Download),
        4,
        "no download of an expired link"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_the_storage_refuses_is_replaced() {
    let env = Env::start().await;
    let source = env.source();
    let schema = described(&source).await;
    // What cloud storage answers for a link that expired in flight.
    env.emulator.faults().push(
        Operation::Download,
        Fault::Error {
            status: 403,
            error_code: "AuthenticationFailed".into(),
            message: "Signed expiry time has passed.".into(),
        },
    );
    read_people(&env, &source, &schema).await;
    assert_eq!(env.count(Operation::Download), 5);
    assert_eq!(env.count(Operation::GetChunk), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_chunk_is_downloaded_again() {
    let env = Env::start().await;
    let source = env.source();
    let schema = described(&source).await;
    env.emulator
        .faults()
        .push(Operation::Download, Fault::TruncatedChunk);
    read_people(&env, &source, &schema).await;
    assert_eq!(env.count(Operation::Download), 5);
}

#[tokio::test]
async fn a_chunk_that_stays_garbled_is_a_protocol_error() {
    let env = Env::start().await;
    let source = env.source_with(|c| c.options.max_parallel_downloads = 1);
    let schema = source
        .describe(&request("people", Some(&["Id"])))
        .await
        .expect("describe");
    for _ in 0..3 {
        env.emulator
            .faults()
            .push(Operation::Download, Fault::TruncatedChunk);
    }
    let stream = source.read(&schema).await.expect("read starts");
    let results: Vec<_> = futures::StreamExt::collect::<Vec<_>>(stream.batches).await;
    let err = results
        .last()
        .and_then(|r| r.as_ref().err())
        .unwrap_or_else(|| panic!("the read ended without an error"));
    assert!(matches!(err, SourceError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("chunk 0"), "{err}");
    assert!(err.to_string().contains("after 3 downloads"), "{err}");
    assert!(results[..results.len() - 1].iter().all(Result::is_ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_chunk_keeps_the_order() {
    let env = Env::start().await;
    let source = env.source();
    let schema = described(&source).await;
    // The first download (chunk 0 or 1) is slow; later chunks finish first but wait their turn.
    env.emulator.faults().push(
        Operation::Download,
        Fault::Slow {
            delay: Duration::from_millis(700),
        },
    );
    read_people(&env, &source, &schema).await;
    assert_eq!(env.count(Operation::Download), 4);
}

/// Issue 11: a firewall or private endpoint in front of the result storage refuses the download
/// (403 AuthorizationFailure): not an expired link. One fresh link is tried, then the error names
/// the chunk host and the network path, without the link's query string.
#[tokio::test]
async fn a_storage_firewall_is_named_after_one_fresh_link() {
    let env = Env::start().await;
    let source = env.source_with(|c| c.options.max_parallel_downloads = 1);
    let schema = source
        .describe(&request("people", Some(&["Id"])))
        .await
        .expect("describe");
    for _ in 0..10 {
        env.emulator
            .faults()
            .push(Operation::Download, Fault::StorageFirewall);
    }
    let stream = source.read(&schema).await.expect("read starts");
    let results: Vec<_> = futures::StreamExt::collect::<Vec<_>>(stream.batches).await;
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .unwrap_or_else(|| panic!("the read did not fail"));
    let text = err.to_string();
    assert!(
        text.contains("the result storage host 127.0.0.1 refused the download (HTTP 403 AuthorizationFailure) even with a fresh link"),
        "{text}"
    );
    assert!(text.contains("private endpoint"), "{text}");
    assert!(
        !text.contains("sig="),
        "a presigned query string leaked: {text}"
    );
    // One download, one fresh link, one more download: not three refreshes.
    assert_eq!(env.count(Operation::Download), 2);
}

/// Issue 11: a workspace IP access list refusal passes Databricks' own message through.
#[tokio::test]
async fn an_ip_access_list_refusal_passes_the_message_through() {
    let env = Env::start().await;
    let source = env.source();
    env.emulator.faults().push(
        Operation::GetTable,
        Fault::Error {
            status: 403,
            error_code: "403".into(),
            message: "Source IP address: 203.0.113.7 is blocked by Databricks IP ACL for workspace: 1234567890".into(),
        },
    );
    let err = source.describe(&request("people", None)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("is blocked by Databricks IP ACL for workspace: 1234567890"),
        "{err}"
    );
}

/// Databricks sends several external links in one response (each with its successor's
/// `next_chunk_index`): they are all downloaded, in order, and only the chunk after the last of
/// them is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_links_in_one_response_are_all_used() {
    let env = Env::start_with(|c| c.links_per_response = 3).await;
    let source = env.source();
    let schema = described(&source).await;
    read_people(&env, &source, &schema).await;
    // 250 rows in chunks of 64: the statement brings links 0-2, one chunk request brings 3.
    assert_eq!(env.count(Operation::GetChunk), 1);
    assert_eq!(env.count(Operation::Download), 4);
}

/// A result kept only a second (Databricks keeps one about an hour) expires while the first
/// chunk downloads: the statement is run again at the same Delta version and the read goes on
/// from where it was, every row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_expires_mid_read_is_read_again_at_the_same_version() {
    let env = Env::start_with(|c| c.result_ttl = Duration::from_secs(1)).await;
    let counts = publish_source::RetryCounts::default();
    let source = env.source_with(|c| {
        c.options.max_parallel_downloads = 1;
        c.options.retries = counts.clone();
    });
    let schema = described(&source).await;
    env.emulator.faults().push(
        Operation::Download,
        Fault::Slow {
            delay: Duration::from_millis(1500),
        },
    );
    read_people(&env, &source, &schema).await;
    let submitted: Vec<String> = env
        .emulator
        .submitted_statements()
        .iter()
        .map(|b| b["statement"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        submitted.len(),
        3,
        "DESCRIBE HISTORY, the SELECT, its re-run: {submitted:?}"
    );
    assert!(
        submitted[0].starts_with("DESCRIBE HISTORY"),
        "{submitted:?}"
    );
    assert_eq!(
        submitted[1], submitted[2],
        "the re-run is the same pinned SELECT"
    );
    assert!(submitted[2].ends_with("VERSION AS OF 0"), "{submitted:?}");
    let reruns = counts
        .snapshot()
        .iter()
        .find(|(cause, _)| *cause == publish_source::RetryCause::ExpiredResult)
        .map_or(0, |(_, n)| *n);
    assert_eq!(reruns, 1, "the re-run is counted for /metrics");
}

/// Without a pinned version a re-run could read another snapshot: the expired result is an
/// error saying so, not a mix of two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpinned_result_that_expires_is_an_error_not_a_mix() {
    let env = Env::start_with(|c| c.result_ttl = Duration::from_secs(1)).await;
    let source = env.source_with(|c| c.options.max_parallel_downloads = 1);
    let schema = described(&source).await;
    let faults = env.emulator.faults();
    faults.push(
        Operation::ExecuteStatement,
        Fault::FailStatement {
            error_code: "BAD_REQUEST".into(),
            message: "[DELTA_MISSING_DELTA_TABLE] `tre`.`cohort_a`.`people` is not a Delta table."
                .into(),
        },
    );
    faults.push(
        Operation::Download,
        Fault::Slow {
            delay: Duration::from_millis(1500),
        },
    );
    let stream = source.read(&schema).await.expect("read starts");
    assert_eq!(stream.snapshot, None, "unpinned");
    let mut batches = stream.batches;
    let mut error = None;
    while let Some(item) = batches.next().await {
        if let Err(e) = item {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("the expired result ends the read");
    assert!(
        error.to_string().contains("no pinned Delta version"),
        "{error}"
    );
}
