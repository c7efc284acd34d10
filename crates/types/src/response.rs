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

/// One table loaded into the PostgreSQL destination by package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetrievedTable {
    /// `<schema>.<table>` in the destination database, e.g.
    /// `pr004_20250205_010101_example_schema_name.person`.
    pub table_name: String,
}

/// What one package produced: files of a file destination, or tables of the PostgreSQL one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Retrieved {
    /// A file written to staging.
    File(RetrievedFile),
    /// A table loaded into the PostgreSQL destination.
    Table(RetrievedTable),
}

impl Retrieved {
    /// The file, for a file destination's answer.
    pub fn as_file(&self) -> Option<&RetrievedFile> {
        match self {
            Self::File(file) => Some(file),
            Self::Table(_) => None,
        }
    }
}

/// Payload of a successful package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagePayload {
    /// The staged files (a file destination) or the loaded tables (the PostgreSQL one).
    pub data_retrieved: Vec<Retrieved>,
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

/// One table of the PostgreSQL destination published to researchers through OBiBa Opal: the
/// four strings CR8TOR reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishedTable {
    /// `<schema>.<table>` in the destination database.
    pub postgresql_table_name: String,
    /// The Opal resource that reads it, `tre_postgresql_<schema>_<table>`.
    pub opal_resource_name: String,
    /// The Opal project, named as the CR8TOR project.
    pub opal_project_name: String,
    /// The Opal group granted DataSHIELD use and the resource, `<project>_group`.
    pub opal_group_name: String,
}

/// What one publish produced: files with their digests, or tables registered in Opal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Published {
    /// A file published to production.
    File(PublishedFile),
    /// A table of the PostgreSQL destination registered in Opal.
    Table(PublishedTable),
}

impl Published {
    /// The file with its digest, for a file destination's answer.
    pub fn as_file(&self) -> Option<&PublishedFile> {
        match self {
            Self::File(file) => Some(file),
            Self::Table(_) => None,
        }
    }
}

/// Payload of a successful publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishPayload {
    /// Every published file, sorted by path; or every table registered in Opal, sorted.
    pub data_published: Vec<Published>,
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
