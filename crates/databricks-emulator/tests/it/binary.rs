//! The `databricks-emulator` binary: prints its address first, serves until killed.

use std::process::Stdio;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn prints_listening_line_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    databricks_emulator::fixtures::write_table(
        dir.path(),
        "tre",
        "cohort_a",
        "admissions",
        &[crate::admissions_batch(0, 10)],
        None,
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_databricks-emulator"))
        .arg("--data")
        .arg(dir.path())
        .args([
            "--bind",
            "127.0.0.1:0",
            "--chunk-rows",
            "4",
            "--client-secret",
            "s3cret",
            "--warehouse",
            "w",
            "--warehouse",
            "w2",
            "--complex-as-json",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line.strip_prefix("listening on ").unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    assert_ne!(url, "http://127.0.0.1:0");

    let http = reqwest::Client::new();
    let token = http
        .post(format!("{url}/oidc/v1/token"))
        .basic_auth("emulator-client-id", Some("s3cret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);
    let token: serde_json::Value = token.json().await.unwrap();
    let response: serde_json::Value = http
        .post(format!("{url}/api/2.0/sql/statements"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(
            &serde_json::json!({"statement": "SELECT * FROM tre.cohort_a.admissions",
            "warehouse_id": "w", "disposition": "EXTERNAL_LINKS", "format": "ARROW_STREAM"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["manifest"]["total_chunk_count"], 3);
    let bearer = token["access_token"].as_str().unwrap();
    for (id, want) in [
        ("w", StatusCode::OK),
        ("w2", StatusCode::OK),
        ("w3", StatusCode::NOT_FOUND),
    ] {
        let status = http
            .get(format!("{url}/api/2.0/sql/warehouses/{id}"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, want, "warehouse {id}");
    }
    let link = &response["result"]["external_links"][0];
    let body = http
        .get(link["external_link"].as_str().unwrap())
        .headers(
            link["http_headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    (
                        reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                        v.as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect(),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let batches = crate::decode(&body).unwrap();
    let codes = batches[0]
        .schema()
        .field_with_name("ward_codes")
        .unwrap()
        .clone();
    assert_eq!(
        codes.data_type(),
        &arrow::datatypes::DataType::Utf8,
        "--complex-as-json"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
