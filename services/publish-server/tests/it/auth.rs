//! The API key guards every operation; `/health` is public.

use serde_json::json;

use crate::support::{API_KEY, Deployment, fixture, oneshot};

#[tokio::test]
async fn missing_or_wrong_key_is_403_and_touches_nothing() {
    let d = Deployment::new();
    d.stage_file(
        "lsc",
        "Pr004",
        "20250205_010101",
        "database.duckdb",
        b"staged",
    );
    let before = d.snapshot();
    let body = fixture("publish-shape-a.json").to_string();
    for key in [
        None,
        Some("wrong"),
        Some(""),
        Some("test-api-key-012345678"),
        Some("test-api-key-0123456789x"),
    ] {
        for path in [
            "/data-publish/publish",
            "/data-publish/package",
            "/data-publish/validate",
        ] {
            let (status, json) = oneshot(d.state(), "POST", path, key, body.clone()).await;
            assert_eq!(status, 403, "{path} with {key:?}");
            insta::assert_json_snapshot!("forbidden", json);
        }
    }
    assert_eq!(d.snapshot(), before);
}

#[tokio::test]
async fn key_is_checked_before_the_body() {
    let d = Deployment::new();
    let (status, _) = oneshot(
        d.state(),
        "POST",
        "/data-publish/publish",
        Some("nope"),
        "{not json",
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn health_is_public() {
    let d = Deployment::new();
    let (status, json) = oneshot(d.state(), "GET", "/health", None, "").await;
    assert_eq!(status, 200);
    assert_eq!(json["status"], json!("success"));
}

#[tokio::test]
async fn right_key_with_surrounding_whitespace_in_the_file_is_accepted() {
    let d = Deployment::new();
    std::fs::write(
        d.path().join("secrets/publishserviceapikey"),
        format!("  {API_KEY}\r\n"),
    )
    .unwrap();
    let (status, json) = oneshot(
        d.state(),
        "POST",
        "/data-publish/publish",
        Some(API_KEY),
        fixture("publish-shape-a.json").to_string(),
    )
    .await;
    // Authenticated; nothing staged, so the publish itself is a 409.
    assert_eq!(status, 409, "{json}");
}
