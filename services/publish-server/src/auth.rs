//! API-key authentication as an extractor: a handler that takes [`ApiKey`] cannot run
//! unauthenticated, and a route without it is visibly public (only `GET /health`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::state::AppState;

/// Header carrying the key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The expected key, kept as a digest so the comparison takes the same time whatever the
/// length or content of the presented key.
#[derive(Clone)]
pub struct ExpectedKey {
    digest: [u8; 64],
}

impl ExpectedKey {
    /// From the secret's content (already trimmed).
    pub fn new(key: &SecretString) -> Self {
        Self {
            digest: Sha512::digest(key.expose_secret().as_bytes()).into(),
        }
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 64] = Sha512::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for ExpectedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpectedKey(<redacted>)")
    }
}

/// Proof that the request carried the right `x-api-key`.
#[derive(Debug)]
pub struct ApiKey;

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let presented = parts
            .headers
            .get(API_KEY_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !presented.is_empty() && state.api_key.matches(presented) {
            Ok(ApiKey)
        } else {
            Err(AppError::forbidden())
        }
    }
}
