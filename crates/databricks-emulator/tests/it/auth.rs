//! OAuth M2M token endpoint, discovery documents and bearer checks.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{Env, into_json};

async fn token_call(
    env: &Env,
    basic: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, Value) {
    let mut request = env
        .http
        .post(env.url("/oidc/v1/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(pair) = basic {
        let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
        request = request.header("Authorization", format!("Basic {b64}"));
    }
    let response = request.send().await.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = into_json(response).await;
    (status, content_type, body)
}

#[tokio::test]
async fn token_success_with_basic_auth() {
    let env = Env::start().await;
    let (status, content_type, body) = token_call(
        &env,
        Some("emulator-client-id:emulator-client-secret"),
        "grant_type=client_credentials&scope=all-apis",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "all-apis");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert!(
        token.len() >= 32 && !token.contains('.'),
        "opaque, not a JWT: {token}"
    );
}

#[tokio::test]
async fn token_success_with_form_credentials() {
    let env = Env::start().await;
    let (status, _, body) = token_call(
        &env,
        None,
        "grant_type=client_credentials&client_id=emulator-client-id&client_secret=emulator-client-secret",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "all-apis");
}

#[tokio::test]
async fn token_failures() {
    let env = Env::start().await;
    let (status, content_type, body) = token_call(
        &env,
        Some("emulator-client-id:wrong"),
        "grant_type=client_credentials&scope=all-apis",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_client", "error_description": "Client authentication failed"})
    );
    let (status, _, body) = token_call(&env, None, "grant_type=client_credentials").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let (status, content_type, body) = token_call(
        &env,
        Some("emulator-client-id:emulator-client-secret"),
        "grant_type=password",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn apis_need_a_live_token_it_issued() {
    let env = Env::start_with(|c| c.token_ttl = std::time::Duration::from_millis(300)).await;
    let path = "/api/2.1/unity-catalog/tables/tre.cohort_a.admissions";
    let (status, _) = env.get(path).await;
    assert_eq!(status, StatusCode::OK);
    for auth in [None, Some("Bearer not-a-token"), Some("Basic abc")] {
        let mut request = env.http.get(env.url(path));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let (status, body) = into_json(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(body["error_code"], "UNAUTHENTICATED");
        assert!(body["message"].is_string());
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (status, body) = env.get(path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired token: {body}");
}

#[tokio::test]
async fn discovery_documents() {
    let env = Env::start().await;
    let (status, config) = into_json(
        env.http
            .get(env.url("/.well-known/databricks-config"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let oidc = config["oidc_endpoint"].as_str().unwrap();
    assert_eq!(oidc, format!("{}/oidc", env.emu.url()));
    let (status, server) = into_json(
        env.http
            .get(format!("{oidc}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server["token_endpoint"],
        format!("{}/oidc/v1/token", env.emu.url())
    );
    assert!(server["authorization_endpoint"].is_string());
}

/// The Entra ID stand-in: the tenant's v2.0 endpoint, the Entra ID secret (not the Databricks
/// one), the Azure Databricks scope; its tokens work on the workspace API.
#[tokio::test]
async fn entra_id_client_credentials() {
    let env = Env::start().await;
    let tenant = "11111111-2222-3333-4444-555555555555";
    let scope = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d%2F.default";
    let call = |tenant: &str, secret: &str, scope: &str| {
        let url = env.url(&format!("/{tenant}/oauth2/v2.0/token"));
        let body = format!(
            "grant_type=client_credentials&client_id=emulator-client-id&client_secret={secret}&scope={scope}"
        );
        let http = env.http.clone();
        async move {
            into_json(
                http.post(url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, body) = call(tenant, "emulator-entra-secret", scope).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let response = env
        .http
        .get(env.url("/api/2.1/unity-catalog/tables/tre.cohort_a.admissions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for (tenant, secret, scope, status, error, code) in [
        (
            tenant,
            "emulator-client-secret",
            scope,
            401,
            "invalid_client",
            "AADSTS7000215",
        ),
        (
            tenant,
            "emulator-entra-secret",
            "all-apis",
            400,
            "invalid_scope",
            "AADSTS1002012",
        ),
        (
            "other-tenant",
            "emulator-entra-secret",
            scope,
            400,
            "invalid_request",
            "AADSTS90002",
        ),
    ] {
        let (got, body) = call(tenant, secret, scope).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_eq!(body["error"], error, "{body}");
        let description: &Value = &body["error_description"];
        assert!(
            description.as_str().unwrap().starts_with(code),
            "{description}"
        );
    }
}
