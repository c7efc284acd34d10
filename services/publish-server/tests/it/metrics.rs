//! `/metrics` (issue 12): requests by route and status, operation durations, rows and bytes
//! moved, operations admitted; never a project name, a path or a secret.

use serde_json::json;

use crate::package::setup;
use crate::support::{API_KEY, Server, fixture, post};

#[tokio::test]
async fn metrics_count_requests_operations_rows_and_bytes_without_names() {
    let (d, emulator) = setup().await;
    // One throttled call, retried.
    emulator.faults().push(
        databricks_emulator::Operation::ExecuteStatement,
        databricks_emulator::Fault::TooManyRequests {
            retry_after_secs: 0,
        },
    );
    let server = Server::start(&d);
    let mut body = fixture("package-shape-b.json");
    body["source"]["host_url"] = json!(emulator.url());
    let (status, _) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 200);
    let (status, published) = post(
        &server.url,
        "/data-publish/publish",
        Some(API_KEY),
        &fixture("publish-shape-b.json"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&server.url, "/data-publish/publish", Some("wrong"), &body).await;
    assert_eq!(status, 403);
    let bytes = published["payload"]["data_published"][0]["total_bytes"]
        .as_u64()
        .unwrap();

    let response = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for line in [
        "publish_http_requests_total{route=\"/data-publish/package\",method=\"POST\",status=\"200\"} 1"
            .to_owned(),
        "publish_http_requests_total{route=\"/data-publish/publish\",method=\"POST\",status=\"403\"} 1"
            .to_owned(),
        "publish_operation_duration_seconds_count{operation=\"package\",outcome=\"success\"} 1"
            .to_owned(),
        "publish_rows_packaged_total 500".to_owned(),
        format!("publish_bytes_published_total {bytes}"),
        "publish_operations_in_flight 0".to_owned(),
        "publish_source_retries_total{cause=\"throttled\"} 1".to_owned(),
        "publish_source_retries_total{cause=\"garbled_chunk\"} 0".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    for secret in ["Pr004", "example_schema_name", API_KEY, "outputs"] {
        assert!(!text.contains(secret), "{secret:?} in the metrics");
    }
    server.stop();
    emulator.shutdown().await;
}
