//! How many chunks download at once: more while the consumer waits for a slow network, never
//! past `max_parallel_downloads` nor the `download_budget`, the values exact whatever the order
//! the downloads end in.

use std::time::Duration;

use publish_source::SourceExt;
use publish_source::conformance::{PEOPLE_ROWS, assert_batches_eq, collect};

use crate::common::{Env, request};

/// 250 rows in chunks of 5: 50 chunks, each paced to 20 kB/s (a slow link per download).
async fn paced_env() -> Env {
    Env::start_with(|c| {
        c.chunk_rows = 5;
        c.download_bandwidth = Some(20_000);
    })
    .await
}

/// Reads the people table with `configure`d options; returns the most downloads the
/// emulator saw in progress at once.
async fn read_people(
    env: &Env,
    configure: impl FnOnce(&mut publish_databricks::DatabricksOptions),
) -> u64 {
    let source = env.source_with(|c| {
        c.options.request_timeout = Duration::from_secs(30);
        configure(&mut c.options);
    });
    let (_, stream) = source.open(&request("people", None)).await.expect("open");
    let got = collect(stream).await;
    let want = env.suite.people().batches;
    let want = arrow::compute::concat_batches(&want[0].schema(), &want).expect("concat");
    assert_batches_eq(&got, &want, "people");
    assert_eq!(got.num_rows(), PEOPLE_ROWS);
    env.emulator.downloads_in_flight_max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_waiting_on_the_network_gets_more_downloads_at_once() {
    let env = paced_env().await;
    let most = read_people(&env, |o| o.max_parallel_downloads = 12).await;
    assert!(
        (4..=12).contains(&most),
        "a read starts with 3 downloads and adds one whenever the consumer waited: {most} at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_parallel_downloads_is_a_ceiling() {
    let env = paced_env().await;
    let most = read_people(&env, |o| o.max_parallel_downloads = 2).await;
    assert!(most <= 2, "{most} downloads at once past a ceiling of 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_download_budget_bounds_the_chunks_in_flight() {
    let env = paced_env().await;
    // Less than one chunk: one download at a time, as one always may run.
    let most = read_people(&env, |o| {
        o.download_budget = publish_databricks::DownloadBudget::new(1)
    })
    .await;
    assert_eq!(most, 1);
}
