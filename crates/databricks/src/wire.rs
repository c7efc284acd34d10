//! The JSON the Databricks REST APIs answer (docs/DATABRICKS-WIRE.md §1), read tolerantly: unknown fields
//! are ignored, absent optional fields take their defaults, and int64 fields may be numbers or
//! numeric strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An int64 field given as a number or a numeric string; anything else is treated as absent.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A string field that legacy endpoints sometimes send as a number: non-strings are absent.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

/// `POST /oidc/v1/token`, 200.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) expires_in: Option<u64>,
}

/// An OAuth error (RFC 6749 §5.2), or the `errorCode`/`errorSummary` spelling.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OAuthError {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) error: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) error_description: Option<String>,
    #[serde(default, rename = "errorCode", deserialize_with = "lenient_string")]
    pub(crate) error_code: Option<String>,
    #[serde(default, rename = "errorSummary", deserialize_with = "lenient_string")]
    pub(crate) error_summary: Option<String>,
}

/// The error body of any workspace API.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ApiError {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) error_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) message: Option<String>,
}

/// `GET /api/2.1/unity-catalog/tables/{full_name}`, 200 (the fields read here).
#[derive(Debug, Deserialize)]
pub(crate) struct TableInfo {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) catalog_name: Option<String>,
    #[serde(default)]
    pub(crate) schema_name: Option<String>,
    #[serde(default)]
    pub(crate) comment: Option<String>,
    #[serde(default)]
    pub(crate) columns: Option<Vec<ColumnInfo>>,
    #[serde(default)]
    pub(crate) table_constraints: Option<Vec<TableConstraint>>,
    #[serde(default)]
    pub(crate) browse_only: Option<bool>,
}

/// One `ColumnInfo`.
#[derive(Debug, Deserialize)]
pub(crate) struct ColumnInfo {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) type_text: Option<String>,
    #[serde(default)]
    pub(crate) type_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) type_precision: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) type_scale: Option<u64>,
    #[serde(default)]
    pub(crate) type_interval_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) position: Option<u64>,
    #[serde(default)]
    pub(crate) nullable: Option<bool>,
    #[serde(default)]
    pub(crate) comment: Option<String>,
}

/// One `table_constraints[]` element; only primary keys matter here.
#[derive(Debug, Deserialize)]
pub(crate) struct TableConstraint {
    #[serde(default)]
    pub(crate) primary_key_constraint: Option<PrimaryKeyConstraint>,
}

/// `primary_key_constraint`.
#[derive(Debug, Deserialize)]
pub(crate) struct PrimaryKeyConstraint {
    #[serde(default)]
    pub(crate) child_columns: Vec<String>,
}

/// `GET /api/2.0/sql/warehouses/{id}`, 200 (the field read here).
#[derive(Debug, Deserialize)]
pub(crate) struct Warehouse {
    #[serde(default)]
    pub(crate) state: Option<String>,
}

/// A StatementResponse (execute and `GET /api/2.0/sql/statements/{id}`).
#[derive(Deserialize)]
pub(crate) struct StatementResponse {
    pub(crate) statement_id: String,
    pub(crate) status: StatementStatus,
    #[serde(default)]
    pub(crate) manifest: Option<Manifest>,
    #[serde(default)]
    pub(crate) result: Option<ResultData>,
}

/// `status`.
#[derive(Debug, Deserialize)]
pub(crate) struct StatementStatus {
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) error: Option<ServiceError>,
    #[serde(default)]
    pub(crate) sql_state: Option<String>,
}

/// `status.error`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ServiceError {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) error_code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) sql_state: Option<String>,
}

/// `manifest`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Manifest {
    #[serde(default)]
    pub(crate) format: Option<String>,
    #[serde(default)]
    pub(crate) schema: Option<ResultSchema>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) total_chunk_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) total_row_count: Option<u64>,
    #[serde(default)]
    pub(crate) truncated: Option<bool>,
    #[serde(default)]
    pub(crate) result_compression: Option<String>,
    /// Uncompressed size of the whole result, as `chunks[].byte_count`.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) total_byte_count: Option<u64>,
    #[serde(default)]
    pub(crate) chunks: Option<Vec<ManifestChunk>>,
}

/// One `manifest.chunks[]` element. Its `byte_count` is the chunk's uncompressed (Arrow) size
/// even when the result is LZ4-compressed.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ManifestChunk {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) chunk_index: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) byte_count: Option<u64>,
}

impl Manifest {
    /// The position of the result column `name` (`manifest.schema.columns[].name`).
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.schema
            .as_ref()?
            .columns
            .iter()
            .position(|c| c.get("name").and_then(serde_json::Value::as_str) == Some(name))
    }
}

/// `manifest.schema`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResultSchema {
    #[serde(default)]
    pub(crate) columns: Vec<Value>,
}

/// `result` of a statement response, or the body of `GET …/result/chunks/{n}`.
#[derive(Default, Deserialize)]
pub(crate) struct ResultData {
    #[serde(default)]
    pub(crate) external_links: Option<Vec<ExternalLink>>,
    /// Rows of an `INLINE` + `JSON_ARRAY` result, each value as text (`null` for NULL).
    #[serde(default)]
    pub(crate) data_array: Option<Vec<Vec<Option<String>>>>,
    /// The next chunk of an `INLINE` result, when more follow.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) next_chunk_index: Option<u64>,
}

/// One presigned link to a result chunk. Deliberately not `Debug`: the URL and the headers are
/// credentials and must never reach a log.
///
/// Its `byte_count` is deliberately not read: with LZ4 it is the compressed length of the body,
/// while the manifest's `byte_count` for the same chunk is the uncompressed one, so neither can
/// be checked against the other or against the decoded size.
#[derive(Clone, Deserialize)]
pub(crate) struct ExternalLink {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) chunk_index: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) row_count: Option<u64>,
    pub(crate) external_link: String,
    #[serde(default)]
    pub(crate) expiration: Option<String>,
    #[serde(default)]
    pub(crate) http_headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) next_chunk_index: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_reading() {
        let link: ExternalLink = serde_json::from_str(
            r#"{"chunk_index":"3","row_count":10,"external_link":"https://x","new_field":{},
                "next_chunk_index":null}"#,
        )
        .unwrap();
        assert_eq!(link.chunk_index, Some(3));
        assert_eq!(link.row_count, Some(10));
        assert_eq!(link.next_chunk_index, None);
        let e: ApiError = serde_json::from_str(r#"{"error_code":1234,"message":"m"}"#).unwrap();
        assert_eq!(e.error_code, None);
        assert_eq!(e.message.as_deref(), Some("m"));
    }
}
