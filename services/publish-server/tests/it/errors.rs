//! Every refusal answers the documented envelope with the right status, names what was wrong,
//! and leaves storage as it was. Cases go through one `check` helper; bodies are snapshotted.

use serde_json::{Value, json};

use crate::support::{API_KEY, Deployment, fixture, oneshot};

/// Sends `body` to `path` with the right key and expects `status` and a detail containing
/// `needle`; storage must be unchanged.
async fn check(
    d: &Deployment,
    path: &str,
    body: impl Into<axum::body::Body>,
    status: u16,
    needle: &str,
) -> Value {
    let before = d.snapshot();
    let (got, json) = oneshot(d.state(), "POST", path, Some(API_KEY), body).await;
    assert_eq!(got.as_u16(), status, "{path}: {json}");
    assert_eq!(json["status"], json!("error"), "{json}");
    let detail = json["payload"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "{detail:?} does not contain {needle:?}"
    );
    assert_eq!(d.snapshot(), before, "storage changed");
    json
}

fn edit(name: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut v = fixture(name);
    f(&mut v);
    v.to_string()
}

#[tokio::test]
async fn malformed_bodies_are_422() {
    let d = Deployment::new();
    d.stage_file("lsc", "Pr004", "20250205_010101", "database.duckdb", b"x");
    for path in [
        "/data-publish/package",
        "/data-publish/publish",
        "/data-publish/validate",
    ] {
        let json = check(&d, path, "{\"project_name\": ", 422, "not valid JSON").await;
        insta::assert_json_snapshot!("malformed_json", json);
        check(&d, path, "[]", 422, "must be a JSON object").await;
        check(&d, path, "", 422, "not valid JSON").await;
        check(
            &d,
            path,
            r#"{"project_name": 4}"#,
            422,
            "project_name: invalid type: integer",
        )
        .await;
    }
}

#[tokio::test]
async fn rule_violations_are_422_naming_the_field() {
    let d = Deployment::new();
    d.stage_file("lsc", "Pr004", "20250205_010101", "database.duckdb", b"x");
    let traversal = edit("publish-shape-a.json", |v| {
        v["project_name"] = json!("../x")
    });
    let json = check(&d, "/data-publish/publish", traversal, 422, "project_name").await;
    insta::assert_json_snapshot!("traversal", json);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/data-publish/publish",
            edit("publish-shape-b.json", |v| {
                v["project_start_time"] = json!("20251301_000000")
            }),
            "project_start_time: \"20251301_000000\" is not a real date",
        ),
        (
            "/data-publish/publish",
            edit("publish-shape-b.json", |v| {
                v["destination"]["name"] = json!("a/b")
            }),
            "destination.name",
        ),
        (
            "/data-publish/package",
            edit("package-shape-b.json", |v| {
                v["dataset"]["tables"][0]["columns"][0]["name"] = json!("")
            }),
            "dataset.tables[0].columns[0].name: must not be empty",
        ),
        (
            "/data-publish/package",
            edit("package-shape-a.json", |v| {
                v["credentials"]["spn_secret"] = json!("../publishserviceapikey")
            }),
            "credentials.spn_secret",
        ),
        (
            "/data-publish/package",
            edit("package-shape-b.json", |v| {
                v["source"]["type"] = json!("oracle")
            }),
            "is not supported; supported source types: DatabricksSQL",
        ),
        (
            "/data-publish/validate",
            edit("validate-shape-b.json", |v| {
                v["source"]["host_url"] = json!("ftp://x")
            }),
            "source.host_url",
        ),
    ];
    for (path, body, needle) in cases {
        check(&d, path, body, 422, needle).await;
    }
}

#[tokio::test]
async fn host_outside_the_allow_list_is_422_and_no_secret_is_read() {
    let d = Deployment::new();
    // The secrets named by the request do not even exist: the host check comes first.
    let body = edit("package-shape-a.json", |v| {
        v["source"]["host_url"] = json!("https://evil.example.com")
    });
    let json = check(
        &d,
        "/data-publish/package",
        body,
        422,
        "https://evil.example.com is not an allowed source host",
    )
    .await;
    insta::assert_json_snapshot!("host_not_allowed", json);
}

#[tokio::test]
async fn missing_secret_is_422_naming_the_field_not_the_content() {
    let d = Deployment::new();
    let body = fixture("validate-shape-b.json").to_string();
    check(
        &d,
        "/data-publish/validate",
        body,
        422,
        "source.credentials.spn_clientid: secret `databricksspnclientid` was not found",
    )
    .await;
}

#[tokio::test]
async fn unknown_destination_is_404() {
    let d = Deployment::new();
    let body = edit("publish-shape-b.json", |v| {
        v["destination"]["name"] = json!("XYZ")
    });
    let json = check(&d, "/data-publish/publish", body, 404, "XYZ").await;
    insta::assert_json_snapshot!("unknown_destination", json);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let d = Deployment::new();
    let big = edit("package-shape-b.json", |v| {
        v["padding"] = json!("x".repeat(1024 * 1024))
    });
    let json = check(
        &d,
        "/data-publish/package",
        big,
        413,
        "larger than the limit",
    )
    .await;
    insta::assert_json_snapshot!("too_large", json);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let d = Deployment::new();
    let (status, json) =
        oneshot(d.state(), "POST", "/data-publish/nope", Some(API_KEY), "{}").await;
    assert_eq!(status, 404);
    insta::assert_json_snapshot!("no_route", json);
    let (status, json) =
        oneshot(d.state(), "GET", "/data-publish/publish", Some(API_KEY), "").await;
    assert_eq!(status, 405);
    insta::assert_json_snapshot!("method_not_allowed", json);
}

#[tokio::test]
async fn nothing_to_publish_is_409() {
    let d = Deployment::new();
    let json = check(
        &d,
        "/data-publish/publish",
        fixture("publish-shape-a.json").to_string(),
        409,
        "Pr004",
    )
    .await;
    insta::assert_json_snapshot!("nothing_to_publish", json);
}

#[tokio::test]
async fn validate_reports_missing_containers_as_404() {
    let d = Deployment::new();
    std::fs::remove_dir(d.mount("nw").join("production")).unwrap();
    let body = edit("validate-shape-b.json", |v| {
        v["destination"]["name"] = json!("NW")
    });
    check(&d, "/data-publish/validate", body, 404, "production").await;
}
