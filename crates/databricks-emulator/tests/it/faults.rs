//! Every fault kind, observed over HTTP, plus the admin route that queues them.

use std::time::{Duration, Instant};

use databricks_emulator::{Fault, Operation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Env, decode};

const SELECT_ALL: &str = "SELECT * FROM tre.cohort_a.admissions";

async fn succeeded(env: &Env) -> Value {
    let (status, response) = env.execute(SELECT_ALL, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["status"]["state"], "SUCCEEDED", "{response}");
    response
}

fn chunk_path(response: &Value, n: usize) -> String {
    format!(
        "/api/2.0/sql/statements/{}/result/chunks/{n}",
        response["statement_id"].as_str().unwrap()
    )
}

#[tokio::test]
async fn too_many_requests_then_success() {
    let env = Env::start().await;
    let response = succeeded(&env).await;
    env.emu.faults().push(
        Operation::GetChunk,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    let first = env
        .http
        .get(env.url(&chunk_path(&response, 1)))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["retry-after"], "1");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error_code"], "REQUEST_LIMIT_EXCEEDED");
    let (status, _) = env.get(&chunk_path(&response, 1)).await;
    assert_eq!(status, StatusCode::OK, "a fault is used once");
    assert_eq!(env.emu.faults().pending(Operation::GetChunk), 0);
}

#[tokio::test]
async fn unavailable_on_execute() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::ExecuteStatement,
        Fault::Unavailable {
            retry_after_secs: 2,
        },
    );
    let response = env
        .http
        .post(env.url("/api/2.0/sql/statements"))
        .bearer_auth(&env.token)
        .json(&json!({"statement": SELECT_ALL, "warehouse_id": "w"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
    succeeded(&env).await;
}

#[tokio::test]
async fn expired_link_forces_a_chunk_refetch() {
    let env = Env::start().await;
    let response = succeeded(&env).await;
    env.emu
        .faults()
        .push(Operation::GetChunk, Fault::ExpiredLink);
    let (_, data) = env.get(&chunk_path(&response, 1)).await;
    let link = &data["external_links"][0];
    let expires =
        chrono::DateTime::parse_from_rfc3339(link["expiration"].as_str().unwrap()).unwrap();
    assert!(expires < chrono::Utc::now());
    let download = env.download(link).await;
    assert_eq!(download.status(), StatusCode::FORBIDDEN);
    assert!(
        download
            .text()
            .await
            .unwrap()
            .contains("<Code>AuthenticationFailed</Code>")
    );
    let (_, data) = env.get(&chunk_path(&response, 1)).await;
    let fresh = env.download(&data["external_links"][0]).await;
    assert_eq!(fresh.status(), StatusCode::OK);
}

#[tokio::test]
async fn short_link_ttl_expires() {
    let env = Env::start_with(|c| c.link_ttl = Duration::from_millis(200)).await;
    let response = succeeded(&env).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let link = &response["result"]["external_links"][0];
    assert_eq!(env.download(link).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn truncated_chunk_fails_to_decode() {
    let env = Env::start().await;
    let response = succeeded(&env).await;
    let link = &response["result"]["external_links"][0];
    env.emu
        .faults()
        .push(Operation::Download, Fault::TruncatedChunk);
    let cut = env.download(link).await;
    assert_eq!(cut.status(), StatusCode::OK);
    let cut = cut.bytes().await.unwrap();
    assert!(decode(&cut).is_err(), "a truncated stream must not decode");
    let whole = env.download(link).await.bytes().await.unwrap();
    assert_eq!(cut.len(), whole.len() / 2);
    decode(&whole).unwrap();
}

#[tokio::test]
async fn failed_statement() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::ExecuteStatement,
        Fault::FailStatement {
            error_code: "INTERNAL_ERROR".into(),
            message: "warehouse crashed".into(),
        },
    );
    let (status, response) = env.execute(SELECT_ALL, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["status"]["state"], "FAILED");
    assert_eq!(
        response["status"]["error"],
        json!({"error_code": "INTERNAL_ERROR", "message": "warehouse crashed"})
    );
}

#[tokio::test]
async fn slow_download() {
    let env = Env::start().await;
    let response = succeeded(&env).await;
    env.emu.faults().push(
        Operation::Download,
        Fault::Slow {
            delay: Duration::from_millis(300),
        },
    );
    let started = Instant::now();
    let body = env.download(&response["result"]["external_links"][0]).await;
    assert_eq!(body.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn stays_running_then_succeeds() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::ExecuteStatement,
        Fault::StayRunning {
            duration: Duration::from_millis(300),
        },
    );
    let (_, response) = env.execute(SELECT_ALL, json!({"wait_timeout": "0s"})).await;
    assert_eq!(response["status"]["state"], "RUNNING");
    let id = response["statement_id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(env.emu.statement_state(id).as_deref(), Some("SUCCEEDED"));
}

#[tokio::test]
async fn arbitrary_error_status() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::GetTable,
        Fault::Error {
            status: 401,
            error_code: "UNAUTHENTICATED".into(),
            message: "token revoked".into(),
        },
    );
    let (status, body) = env
        .get("/api/2.1/unity-catalog/tables/tre.cohort_a.admissions")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "token revoked");
}

#[tokio::test]
async fn faults_over_http_admin_route() {
    let env = Env::start().await;
    let response = succeeded(&env).await;
    let queued = env
        .http
        .post(env.url("/emulator/faults"))
        .json(&json!({"operation": "download", "fault": {"kind": "too_many_requests", "retry_after_secs": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), StatusCode::NO_CONTENT);
    let download = env.download(&response["result"]["external_links"][0]).await;
    assert_eq!(download.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(download.headers()["retry-after"], "3");
    let bad = env
        .http
        .post(env.url("/emulator/faults"))
        .json(&json!({"operation": "nope", "fault": {"kind": "slow", "millis": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let journal: Value = env
        .http
        .get(env.url("/emulator/journal"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = journal.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["operation"], "download");
    assert_eq!(last["status"], 429);
    assert_eq!(last["authorization"], false);
}

#[tokio::test]
async fn journal_records_operations() {
    let env = Env::start().await;
    succeeded(&env).await;
    let (status, _) = env.get("/api/2.0/no/such/route?x=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let journal = env.emu.journal();
    let summary: Vec<(Option<Operation>, &str, &str, u16, bool)> = journal
        .iter()
        .map(|e| {
            (
                e.operation,
                e.method.as_str(),
                e.path.as_str(),
                e.status,
                e.authorization,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some(Operation::Token), "POST", "/oidc/v1/token", 200, true),
            (
                Some(Operation::ExecuteStatement),
                "POST",
                "/api/2.0/sql/statements",
                200,
                true
            ),
            (None, "GET", "/api/2.0/no/such/route", 404, true),
        ]
    );
}
