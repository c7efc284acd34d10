//! `GET /api/2.0/sql/warehouses/{id}`, and which warehouse ids exist for execute and sessions.

use databricks_emulator::{Fault, Operation};
use reqwest::StatusCode;
use serde_json::json;

use crate::Env;

const SELECT_ALL: &str = "SELECT * FROM tre.cohort_a.admissions";

#[tokio::test]
async fn any_warehouse_exists_by_default() {
    let env = Env::start().await;
    for path in [
        "/api/2.0/sql/warehouses/8f3c2a1b9d4e7f60",
        "/api/2.0/sql/warehouses/8f3c2a1b9d4e7f60/",
    ] {
        let (status, body) = env.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["id"], "8f3c2a1b9d4e7f60");
        assert_eq!(body["state"], "RUNNING");
        assert_eq!(body["enable_serverless_compute"], true);
        assert_eq!(body["num_clusters"], 1);
        assert!(body["name"].is_string() && body["cluster_size"].is_string());
        assert!(body["warehouse_type"].is_string());
        assert_eq!(
            body["odbc_params"]["path"],
            "/sql/1.0/warehouses/8f3c2a1b9d4e7f60"
        );
    }
    let anonymous = env
        .http
        .get(env.url("/api/2.0/sql/warehouses/8f3c2a1b9d4e7f60"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let journal = env.emu.journal();
    assert!(
        journal
            .iter()
            .filter(|e| e.operation == Some(Operation::GetWarehouse))
            .count()
            == 3,
        "{journal:?}"
    );
}

#[tokio::test]
async fn only_configured_warehouses_exist_when_listed() {
    let env = Env::start_with(|c| c.warehouses = Some(vec!["8f3c2a1b9d4e7f60".into()])).await;
    let (status, _) = env.get("/api/2.0/sql/warehouses/8f3c2a1b9d4e7f60").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = env.get("/api/2.0/sql/warehouses/0000000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error_code": "RESOURCE_DOES_NOT_EXIST",
               "message": "Warehouse 0000000000000000 does not exist."})
    );

    let (status, response) = env.execute(SELECT_ALL, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let (status, body) = env
        .execute(SELECT_ALL, json!({"warehouse_id": "0000000000000000"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");

    let (status, _) = env
        .post(
            "/api/2.0/sql/sessions",
            json!({"warehouse_id": "0000000000000000"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env
        .post(
            "/api/2.0/sql/sessions",
            json!({"warehouse_id": "8f3c2a1b9d4e7f60"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn faults_apply_to_get_warehouse() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::GetWarehouse,
        Fault::Unavailable {
            retry_after_secs: 1,
        },
    );
    let (status, body) = env.get("/api/2.0/sql/warehouses/w").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
    let (status, _) = env.get("/api/2.0/sql/warehouses/w").await;
    assert_eq!(status, StatusCode::OK);
}
