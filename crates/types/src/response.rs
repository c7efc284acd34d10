//! Response bodies: `{"status": "success"|"error", "payload": {...}}`.

use serde::{Deserialize, Serialize};

/// `status` of every response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The operation did what was asked.
    Success,
    /// It did not; `payload.detail` says why.
    Error,
}

/// The envelope of every response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Envelope<T> {
    /// Success or error.
    pub status: Status,
    /// The operation's payload, or an [`ErrorPayload`].
    pub payload: T,
}

impl<T> Envelope<T> {
    /// A success envelope.
    pub fn success(payload: T) -> Self {
        Self {
            status: Status::Success,
            payload,
        }
    }
}

impl Envelope<ErrorPayload> {
    /// An error envelope with a human-readable detail that names what was wrong.
    pub fn error(detail: impl Into<String>) -> Self {
        Self {
            status: Status::Error,
            payload: ErrorPayload {
                detail: detail.into(),
            },
        }
    }
}

/// Payload of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorPayload {
    /// What was wrong; never contains a secret.
    pub detail: String,
}

/// One file written to staging by package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetrievedFile {
    /// Relative to `<project_name>/<project_start_time>/`, e.g. `data/outputs/database.duckdb`.
    pub file_path: String,
}

/// Payload of a successful package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagePayload {
    /// The staged files.
    pub data_retrieved: Vec<RetrievedFile>,
}

/// One file published to production.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishedFile {
    /// Relative to `<project_name>/<project_start_time>/`.
    pub file_path: String,
    /// Lower-case hex digest (SHA-512 unless configured otherwise): what BagIt's
    /// `manifest-sha512.txt` records.
    pub hash_value: String,
    /// Size in bytes.
    pub total_bytes: u64,
}

/// Payload of a successful publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishPayload {
    /// Every published file, sorted by path.
    pub data_published: Vec<PublishedFile>,
}

/// Payload of a successful validate: `{"validation_status": "success"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatePayload {
    /// Always `"success"` (failures are error envelopes).
    pub validation_status: String,
}

impl ValidatePayload {
    /// The success payload.
    pub fn success() -> Self {
        Self {
            validation_status: "success".to_owned(),
        }
    }
}
