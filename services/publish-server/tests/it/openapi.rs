//! `/openapi.json` (issue 12): generated from the wire and response types; every route, every
//! status and the error envelope are there, and every key of every body CR8TOR sends is a
//! property the document describes.

use axum::body::Body;
use serde_json::Value;

use crate::support::{Deployment, oneshot};

/// Resolves a `$ref` (and an `allOf`/`oneOf` wrapper of one) to the schema it names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema[key].as_array()
            && let Some(part) = parts.iter().find(|p| p["type"] != "null")
        {
            return resolve(doc, part);
        }
    }
    schema
}

/// Every key of `body` that the schema of an object names must be described; reports the
/// undescribed ones CR8TOR relies on. Keys a schema does not list are allowed by the contract
/// (unknown fields are ignored), so only the documented structure is walked.
fn check(doc: &Value, schema: &Value, body: &Value, path: &str, seen: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    match body {
        Value::Object(map) => {
            for (key, value) in map {
                if let Some(property) = schema["properties"].get(key) {
                    seen.push(format!("{path}.{key}"));
                    check(doc, property, value, &format!("{path}.{key}"), seen);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                check(doc, &schema["items"], item, &format!("{path}[]"), seen);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_route_status_and_the_bodies_cr8tor_sends() {
    let d = Deployment::new();
    let (status, doc) = oneshot(d.state(), "GET", "/openapi.json", None, Body::empty()).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for route in [
        "/data-publish/package",
        "/data-publish/publish",
        "/data-publish/validate",
    ] {
        let op = &doc["paths"][route]["post"];
        for code in [
            "200", "403", "404", "409", "413", "422", "502", "503", "504", "507", "500",
        ] {
            assert!(op["responses"].get(code).is_some(), "{route} lacks {code}");
        }
        assert_eq!(
            op["security"][0]["api_key"],
            serde_json::json!([]),
            "{route}"
        );
    }
    assert!(doc["paths"]["/health"]["get"].is_object());
    assert!(doc["paths"]["/ready"]["get"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "x-api-key"
    );
    let schemas = &doc["components"]["schemas"];
    let envelope = serde_json::to_string(schemas).unwrap();
    assert!(
        envelope.contains("detail"),
        "the error envelope is described"
    );

    // The SQL-database source shape (issue 13) is described beside Databricks'.
    let sql = &schemas["SqlSource"]["properties"];
    for key in ["type", "host_url", "database", "port", "credentials"] {
        assert!(sql.get(key).is_some(), "SqlSource lacks {key}: {sql}");
    }
    let sql_credentials = &schemas["SqlCredentials"]["properties"];
    assert!(
        sql_credentials.get("username_key").is_some()
            && sql_credentials.get("password_key").is_some()
    );
    let any = serde_json::to_string(&schemas["AnySource"]).unwrap();
    assert!(
        any.contains("SqlSource") && any.contains("#/components/schemas/Source"),
        "{any}"
    );

    let request = &doc["paths"]["/data-publish/package"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let dir = format!("{}/../../fixtures/requests", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for sub in ["", "cr8tor/"] {
        for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let body: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let mut seen = Vec::new();
            check(&doc, request, &body, "", &mut seen);
            for key in body.as_object().unwrap().keys() {
                if [
                    "project_name",
                    "project_start_time",
                    "destination",
                    "destination_type",
                    "destination_format",
                    "source",
                    "credentials",
                    "metadata",
                    "dataset",
                ]
                .contains(&key.as_str())
                {
                    assert!(
                        seen.contains(&format!(".{key}")),
                        "{path:?}: {key} undescribed"
                    );
                }
            }
            for nested in [
                ".source.host_url",
                ".source.catalog",
                ".destination.name",
                ".dataset.tables[].name",
            ] {
                if serde_json::to_string(&body)
                    .unwrap()
                    .contains(nested.rsplit('.').next().unwrap())
                    && body
                        .pointer(&nested.replace("[]", "/0").replace('.', "/"))
                        .is_some()
                {
                    assert!(
                        seen.iter().any(|s| s == nested),
                        "{path:?}: {nested} undescribed"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} fixture bodies checked");
}
