//! Unity Catalog: get schema (`cr8tor validate` checks the schema exists before listing it).

use std::collections::BTreeMap;

use databricks_emulator::fixtures::{SchemaSidecar, write_schema};
use databricks_emulator::{Fault, Operation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Env, into_json};

fn is_uuid(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

#[tokio::test]
async fn get_schema_describes_the_schema() {
    let env = Env::start().await;
    let sidecar = SchemaSidecar {
        comment: Some("cohort A of the study".into()),
        properties: BTreeMap::from([("project".into(), "tre-42".into())]),
    };
    // Written after start: schemas are read at request time.
    write_schema(env.dir.path(), "tre", "cohort_a", Some(&sidecar)).unwrap();
    let (status, schema) = env.get("/api/2.1/unity-catalog/schemas/tre.cohort_a").await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    assert_eq!(schema["name"], "cohort_a");
    assert_eq!(schema["catalog_name"], "tre");
    assert_eq!(schema["full_name"], "tre.cohort_a");
    assert_eq!(schema["catalog_type"], "MANAGED_CATALOG");
    assert_eq!(schema["comment"], "cohort A of the study");
    assert_eq!(schema["properties"], json!({"project": "tre-42"}));
    assert_eq!(schema["owner"], "emulator-owner@example.com");
    assert_eq!(schema["browse_only"], false);
    assert!(is_uuid(&schema["schema_id"]), "{schema}");
    assert!(is_uuid(&schema["metastore_id"]), "{schema}");
    let created = schema["created_at"].as_i64().unwrap();
    assert!(created > 1_600_000_000_000, "epoch ms: {created}");
    assert!(schema["updated_at"].as_i64().unwrap() >= created);

    // The id is stable, and the metastore is the one tables report.
    let (_, again) = env.get("/api/2.1/unity-catalog/schemas/tre.cohort_a").await;
    assert_eq!(again["schema_id"], schema["schema_id"]);
    let (_, table) = env
        .get("/api/2.1/unity-catalog/tables/tre.cohort_a.admissions")
        .await;
    assert_eq!(table["metastore_id"], schema["metastore_id"]);
}

#[tokio::test]
async fn get_schema_without_sidecar_or_tables() {
    let env = Env::start().await;
    write_schema(env.dir.path(), "tre", "bare", None).unwrap();
    let (status, schema) = env.get("/api/2.1/unity-catalog/schemas/tre.bare").await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    assert_eq!(schema["full_name"], "tre.bare");
    assert!(schema.get("comment").is_none(), "{schema}");
    assert!(schema.get("properties").is_none(), "{schema}");
    // An empty schema lists no tables and no token.
    let (status, page) = env
        .get("/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=bare&max_results=0")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!({}));
}

#[tokio::test]
async fn get_schema_is_case_insensitive_and_percent_decoded() {
    let env = Env::start().await;
    for path in ["TRE.Cohort_A", "tre%2Ecohort_a", "tre.%63ohort_a"] {
        let (status, schema) = env
            .get(&format!("/api/2.1/unity-catalog/schemas/{path}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {schema}");
        assert_eq!(schema["full_name"], "tre.cohort_a", "{path}");
    }
}

#[tokio::test]
async fn get_schema_errors() {
    let env = Env::start().await;
    let cases = [
        (
            "nope.cohort_a",
            StatusCode::NOT_FOUND,
            "CATALOG_DOES_NOT_EXIST",
            "Catalog 'nope' does not exist.",
        ),
        (
            "tre.nope",
            StatusCode::NOT_FOUND,
            "SCHEMA_DOES_NOT_EXIST",
            "Schema 'tre.nope' does not exist.",
        ),
        (
            "tre",
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "Invalid schema full name 'tre': expected <catalog>.<schema>.",
        ),
        (
            "tre.cohort_a.admissions",
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "Invalid schema full name 'tre.cohort_a.admissions': expected <catalog>.<schema>.",
        ),
        (
            "tre.",
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "Invalid schema full name 'tre.': expected <catalog>.<schema>.",
        ),
    ];
    for (name, expected_status, code, message) in cases {
        let (status, body) = env
            .get(&format!("/api/2.1/unity-catalog/schemas/{name}"))
            .await;
        assert_eq!(status, expected_status, "{name}: {body}");
        assert_eq!(
            body,
            json!({"error_code": code, "message": message}),
            "{name}"
        );
    }
    let (status, body) = env
        .get("/api/2.1/unity-catalog/schemas/tre.cohort_a?include_browse=maybe")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    let (status, _) = env
        .get("/api/2.1/unity-catalog/schemas/tre.cohort_a?include_browse=true")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn get_schema_needs_a_token() {
    let env = Env::start().await;
    let url = env.url("/api/2.1/unity-catalog/schemas/tre.cohort_a");
    for auth in [None, Some("Bearer not-a-token")] {
        let mut request = env.http.get(&url);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let (status, body) = into_json(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(body["error_code"], "UNAUTHENTICATED");
    }
    // Unauthenticated requests are journaled under the operation, like every API route.
    let journal = env.emu.journal();
    let last = journal.last().unwrap();
    assert_eq!(last.operation, Some(Operation::GetSchema));
    assert_eq!(last.status, 401);
}

#[tokio::test]
async fn get_schema_takes_queued_faults() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::GetSchema,
        Fault::TooManyRequests {
            retry_after_secs: 2,
        },
    );
    let response = env
        .http
        .get(env.url("/api/2.1/unity-catalog/schemas/tre.cohort_a"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(env.emu.faults().pending(Operation::GetSchema), 0);
    let (status, _) = env.get("/api/2.1/unity-catalog/schemas/tre.cohort_a").await;
    assert_eq!(status, StatusCode::OK);
}
