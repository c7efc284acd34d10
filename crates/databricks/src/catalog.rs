//! Table metadata from the Unity Catalog REST API (docs/DATABRICKS-WIRE.md §3).

use publish_types::{ColumnSchema, Identifier, ObjectName, UcType};
use reqwest::StatusCode;

use crate::client::{ApiFailure, Call, Client, json_body};
use crate::wire;
use publish_source::columns::CatalogTable;
use publish_source::{SourceError, TableRequest};

/// Percent-encodes `text` as one URL path segment: everything but RFC 3986 unreserved bytes.
pub(crate) fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /api/2.1/unity-catalog/tables/{catalog.schema.table}`: every column, in catalog order.
pub(crate) async fn get_table(
    client: &Client,
    request: &TableRequest,
) -> Result<CatalogTable, SourceError> {
    // Object names cannot contain '.', so the dot-joined full name is unambiguous.
    let full_name = request.full_name();
    let url = client.url(&format!(
        "/api/2.1/unity-catalog/tables/{}",
        encode_segment(&full_name)
    ));
    let operation = format!("reading the metadata of table `{full_name}`");
    let response = client
        .send(&operation, Call::Idempotent, |http| http.get(&url))
        .await?;
    if !response.status().is_success() {
        let failure = ApiFailure::read(response).await;
        return Err(lookup_error(request, failure, &operation));
    }
    let info: wire::TableInfo = json_body(response, &operation).await?;
    if info.browse_only == Some(true) {
        return Err(SourceError::PermissionDenied {
            object: full_name,
            message: "the credentials may only browse this table; SELECT is needed to read it"
                .into(),
        });
    }
    table_from_info(request, info)
}

fn lookup_error(request: &TableRequest, failure: ApiFailure, operation: &str) -> SourceError {
    match (failure.status, failure.error_code.as_deref()) {
        (_, Some("CATALOG_DOES_NOT_EXIST")) => SourceError::UnknownCatalog {
            catalog: request.catalog.to_string(),
        },
        (_, Some("SCHEMA_DOES_NOT_EXIST")) => SourceError::UnknownSchema {
            schema: format!("{}.{}", request.catalog, request.schema),
        },
        (StatusCode::NOT_FOUND, _) | (_, Some("TABLE_DOES_NOT_EXIST")) => {
            SourceError::UnknownTable {
                table: request.full_name(),
            }
        }
        (StatusCode::FORBIDDEN, _) | (_, Some("PERMISSION_DENIED")) => {
            SourceError::PermissionDenied {
                object: request.full_name(),
                message: failure.message,
            }
        }
        _ => failure.rejected(operation),
    }
}

fn table_from_info(
    request: &TableRequest,
    info: wire::TableInfo,
) -> Result<CatalogTable, SourceError> {
    let full_name = request.full_name();
    let bad = |what: String| SourceError::protocol(format!("table `{full_name}`: {what}"));
    // The catalog's spelling of the names, falling back to the request's.
    let name_or = |given: Option<&String>, requested: &ObjectName| {
        given
            .and_then(|g| ObjectName::parse(g).ok())
            .filter(|g| g.as_str().eq_ignore_ascii_case(requested.as_str()))
            .unwrap_or_else(|| requested.clone())
    };
    let mut columns_info = info.columns.unwrap_or_default();
    if columns_info.is_empty() {
        return Err(bad("the catalog lists no columns".into()));
    }
    // `position` is 0-based catalog order; the list is normally already in it.
    columns_info.sort_by_key(|c| c.position.unwrap_or(u64::MAX));
    let mut columns = Vec::with_capacity(columns_info.len());
    for c in columns_info {
        let name =
            Identifier::parse(&c.name).map_err(|e| bad(format!("column name {:?} {e}", c.name)))?;
        let data_type = column_type(&c).map_err(|e| bad(format!("column `{}`: {e}", c.name)))?;
        columns.push(ColumnSchema {
            name,
            data_type,
            nullable: c.nullable.unwrap_or(true),
            comment: c.comment.filter(|s| !s.is_empty()),
        });
    }
    let primary_key = info
        .table_constraints
        .unwrap_or_default()
        .into_iter()
        .find_map(|c| c.primary_key_constraint)
        .map(|pk| pk.child_columns)
        .unwrap_or_default();
    Ok(CatalogTable {
        catalog: name_or(info.catalog_name.as_ref(), &request.catalog),
        schema: name_or(info.schema_name.as_ref(), &request.schema),
        table: name_or(info.name.as_ref(), &request.table),
        columns,
        primary_key,
        comment: info.comment.filter(|s| !s.is_empty()),
    })
}

/// The column type from `type_text`, else from `type_name` (+ precision/scale/interval type).
fn column_type(c: &wire::ColumnInfo) -> Result<UcType, String> {
    let from_text = c.type_text.as_deref().map(UcType::parse);
    match from_text {
        Some(Ok(t)) => Ok(t),
        other => {
            let text_error = match other {
                Some(Err(e)) => Some(e.to_string()),
                _ => None,
            };
            match c
                .type_name
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("BOOLEAN") => Ok(UcType::Boolean),
                Some("BYTE") => Ok(UcType::TinyInt),
                Some("SHORT") => Ok(UcType::SmallInt),
                Some("INT") => Ok(UcType::Int),
                Some("LONG") => Ok(UcType::BigInt),
                Some("FLOAT") => Ok(UcType::Float),
                Some("DOUBLE") => Ok(UcType::Double),
                Some("DECIMAL") => {
                    let precision = c.type_precision.unwrap_or(10);
                    let scale = c.type_scale.unwrap_or(0);
                    UcType::parse(&format!("decimal({precision},{scale})"))
                        .map_err(|e| e.to_string())
                }
                Some("STRING" | "CHAR") => Ok(UcType::String),
                Some("BINARY") => Ok(UcType::Binary),
                Some("DATE") => Ok(UcType::Date),
                Some("TIMESTAMP") => Ok(UcType::Timestamp),
                Some("TIMESTAMP_NTZ") => Ok(UcType::TimestampNtz),
                Some("VARIANT") => Ok(UcType::Variant),
                Some("INTERVAL") => Ok(UcType::Interval(
                    c.type_interval_type
                        .clone()
                        .unwrap_or_else(|| "day to second".into())
                        .to_ascii_lowercase(),
                )),
                Some(other) if text_error.is_none() => {
                    Ok(UcType::Other(other.to_ascii_lowercase()))
                }
                _ => Err(text_error.unwrap_or_else(|| "no type_text or type_name".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segment_encoding() {
        assert_eq!(
            encode_segment("tre.cohort_a.admissions"),
            "tre.cohort_a.admissions"
        );
        assert_eq!(encode_segment("a`b.c\"d.e%f"), "a%60b.c%22d.e%25f");
        assert_eq!(encode_segment("é/?#"), "%C3%A9%2F%3F%23");
    }

    #[test]
    fn column_types_fall_back_to_type_name() {
        let col = |text: Option<&str>, name: Option<&str>| wire::ColumnInfo {
            name: "c".into(),
            type_text: text.map(Into::into),
            type_name: name.map(Into::into),
            type_precision: Some(12),
            type_scale: Some(2),
            type_interval_type: None,
            position: None,
            nullable: None,
            comment: None,
        };
        assert_eq!(
            column_type(&col(Some("bigint"), Some("LONG"))),
            Ok(UcType::BigInt)
        );
        assert_eq!(
            column_type(&col(None, Some("DECIMAL"))),
            Ok(UcType::Decimal {
                precision: 12,
                scale: 2
            })
        );
        assert_eq!(
            column_type(&col(Some("garbled<"), Some("LONG"))),
            Ok(UcType::BigInt)
        );
        assert!(column_type(&col(Some("garbled<"), Some("NEWTYPE"))).is_err());
        assert!(column_type(&col(None, None)).is_err());
    }
}
