//! OAuth M2M: the client-credentials token endpoint, the discovery documents, and the
//! [`Authenticated`] extractor every workspace API handler takes. It knows the shared state and
//! the error answer, never the routes (`server` uses it, not the other way round).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, body::Bytes};
use base64::Engine as _;
use serde_json::json;

use crate::api_error::ApiError;
use crate::state::AppState;

/// Proof that the request carried `Authorization: Bearer <token>` with a live token this
/// emulator issued. A handler without it is public.
#[derive(Debug)]
pub(crate) struct Authenticated;

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthenticated("Authorization header is missing."))?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| unauthenticated("Authorization header must use the Bearer scheme."))?;
        if state.tokens.is_valid(token) {
            Ok(Authenticated)
        } else {
            Err(unauthenticated("Invalid access token."))
        }
    }
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn form_fields(body: &[u8]) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = |b: u8| (b as char).to_digit(16);
                    match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        (Some(hi), Some(lo)) => {
                            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `POST /oidc/v1/token`: client credentials from HTTP Basic or form fields.
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    let credentials = basic.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let config = &state.config;
    let good = credentials
        .is_some_and(|(id, secret)| id == config.client_id && secret == config.client_secret);
    if !good {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only the client_credentials grant is supported",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant_type",
            );
        }
    }
    let scope = form
        .get("scope")
        .filter(|s| !s.is_empty())
        .map_or("all-apis", String::as_str);
    let access_token = state.tokens.issue(config.token_ttl);
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": config.token_ttl.as_secs(),
    }))
    .into_response()
}

/// The scope of an Entra ID token for Azure Databricks (its first-party application id).
const AZURE_DATABRICKS_SCOPE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default";

/// `POST /{tenant}/oauth2/v2.0/token`: Microsoft Entra ID's client-credentials endpoint for
/// an Azure service principal, standing in for `login.microsoftonline.com`. Credentials come in
/// the form (`client_secret_post`), the secret is [`crate::EmulatorConfig::entra_client_secret`]
/// (not the Databricks OAuth secret), the scope must be Azure Databricks'; errors carry the
/// AADSTS codes Entra ID sends. The tokens work on the workspace API like Databricks' own.
pub(crate) async fn entra_token(
    State(state): State<AppState>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    let config = &state.config;
    if tenant != config.entra_tenant {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the \
                 correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let id_ok = form.get("client_id") == Some(&config.client_id);
    if !id_ok {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application with identifier was not found in the directory.",
        );
    }
    if form.get("client_secret") != Some(&config.entra_client_secret) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the \
             request is the client secret value, not the client secret ID.",
        );
    }
    if form.get("scope").map(String::as_str) != Some(AZURE_DATABRICKS_SCOPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid. Client credential flows \
             must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    let access_token = state.tokens.issue(config.token_ttl);
    Json(json!({
        "token_type": "Bearer",
        "expires_in": config.token_ttl.as_secs(),
        "ext_expires_in": config.token_ttl.as_secs(),
        "access_token": access_token,
    }))
    .into_response()
}

/// `GET /.well-known/databricks-config`.
pub(crate) async fn databricks_config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let host = state.host_url(&headers);
    Json(json!({
        "oidc_endpoint": format!("{host}/oidc"),
        "workspace_id": "1234567890123456",
        "cloud": "aws",
    }))
    .into_response()
}

/// `GET /oidc/.well-known/oauth-authorization-server` (and `openid-configuration`).
pub(crate) async fn authorization_server(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let host = state.host_url(&headers);
    Json(json!({
        "issuer": format!("{host}/oidc"),
        "authorization_endpoint": format!("{host}/oidc/v1/authorize"),
        "token_endpoint": format!("{host}/oidc/v1/token"),
        "jwks_uri": format!("{host}/oidc/jwks.json"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code", "id_token"],
        "scopes_supported": ["all-apis", "offline_access", "openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let f =
            form_fields(b"grant_type=client_credentials&scope=all-apis&client_id=a%2Bb+c&x=%zz");
        assert_eq!(f["grant_type"], "client_credentials");
        assert_eq!(f["client_id"], "a+b c");
        assert_eq!(f["x"], "%zz");
    }
}
