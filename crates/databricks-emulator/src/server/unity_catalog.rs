//! The Unity Catalog routes: a schema, a table, and the paged list of a schema's tables.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::blocking;
use crate::api_error::ApiError;
use crate::auth::Authenticated;
use crate::catalog::{InfoParts, LookupError};
use crate::state::AppState;

/// Largest page a table list returns.
const LIST_PAGE_CAP: usize = 50;

fn lookup_error(error: LookupError) -> ApiError {
    match error {
        LookupError::Catalog(name) => ApiError::new(
            StatusCode::NOT_FOUND,
            "CATALOG_DOES_NOT_EXIST",
            format!("Catalog '{name}' does not exist."),
        ),
        LookupError::Schema(name) => ApiError::new(
            StatusCode::NOT_FOUND,
            "SCHEMA_DOES_NOT_EXIST",
            format!("Schema '{name}' does not exist."),
        ),
        LookupError::Table(name) => ApiError::new(
            StatusCode::NOT_FOUND,
            "TABLE_DOES_NOT_EXIST",
            format!("Table '{name}' does not exist."),
        ),
        LookupError::Unreadable(detail) => {
            tracing::error!(%detail, "table files unreadable");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "The table's files could not be read.",
            )
        }
    }
}

/// Splits a dot-joined full name into exactly `N` non-empty parts (`what` names the shape in the
/// error, e.g. `<catalog>.<schema>`).
fn name_parts<const N: usize>(
    full_name: &str,
    kind: &str,
    what: &str,
) -> Result<[String; N], ApiError> {
    let parts: Vec<String> = full_name.split('.').map(str::to_owned).collect();
    match <[String; N]>::try_from(parts) {
        Ok(parts) if parts.iter().all(|p| !p.is_empty()) => Ok(parts),
        _ => Err(ApiError::invalid(format!(
            "Invalid {kind} full name '{full_name}': expected {what}."
        ))),
    }
}

/// A boolean query flag: absent is `false`; `true`/`false` in any case, anything else a 400.
fn flag(query: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match query.get(key) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::invalid(format!(
            "Invalid value '{v}' for {key}: expected true or false."
        ))),
    }
}

/// `GET /api/2.1/unity-catalog/schemas/{catalog.schema}`: a `SchemaInfo`.
pub(super) async fn get_schema(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(full_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let [c, s] = name_parts(&full_name, "schema", "<catalog>.<schema>")?;
    // No schema is browse-only, so the flag changes nothing; it is still checked.
    flag(&query, "include_browse")?;
    let st = state.clone();
    let schema = blocking(move || st.catalog.schema(&c, &s))
        .await?
        .map_err(lookup_error)?;
    Ok(Json(schema.info()).into_response())
}

pub(super) async fn get_table(
    State(state): State<AppState>,
    _auth: Authenticated,
    Path(full_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let [c, s, t] = name_parts(&full_name, "table", "<catalog>.<schema>.<table>")?;
    for key in [
        "include_browse",
        "include_delta_metadata",
        "include_manifest_capabilities",
    ] {
        flag(&query, key)?;
    }
    let st = state.clone();
    let table = blocking(move || st.catalog.table(&c, &s, &t))
        .await?
        .map_err(lookup_error)?;
    Ok(Json(table.info(InfoParts::DETAIL)).into_response())
}

pub(super) async fn list_tables(
    State(state): State<AppState>,
    _auth: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let required = |key: &str| {
        query
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| ApiError::invalid(format!("Missing required field: {key}")))
    };
    let catalog = required("catalog_name")?;
    let schema = required("schema_name")?;
    let page_size = page_size(&query)?;
    let offset = page_offset(&query)?;
    // No table is browse-only, so include_browse changes nothing; it is still checked.
    flag(&query, "include_browse")?;
    flag(&query, "include_manifest_capabilities")?;
    let parts = InfoParts {
        constraints: false,
        columns: !flag(&query, "omit_columns")?,
        properties: !flag(&query, "omit_properties")?,
        usernames: !flag(&query, "omit_username")?,
    };
    let st = state.clone();
    let (tables, more) = blocking(move || st.catalog.tables(&catalog, &schema, offset, page_size))
        .await?
        .map_err(lookup_error)?;
    let mut body = serde_json::Map::new();
    if !tables.is_empty() {
        let infos: Vec<Value> = tables.iter().map(|t| t.info(parts)).collect();
        body.insert("tables".into(), Value::Array(infos));
    }
    if more {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("offset:{}", offset + tables.len()));
        body.insert("next_page_token".into(), json!(token));
    }
    Ok(Json(Value::Object(body)).into_response())
}

/// `max_results`: omitted, the legacy unpaginated answer; 0, the server's page size; above,
/// capped.
fn page_size(query: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    let Some(v) = query.get("max_results") else {
        return Ok(None);
    };
    match v.parse::<i64>() {
        Ok(0) => Ok(Some(LIST_PAGE_CAP)),
        Ok(n) if n > 0 => Ok(Some(
            usize::try_from(n)
                .unwrap_or(LIST_PAGE_CAP)
                .min(LIST_PAGE_CAP),
        )),
        _ => Err(ApiError::invalid(format!(
            "Invalid max_results '{v}': must be an integer greater than or equal to 0."
        ))),
    }
}

/// Where the page a `page_token` asks for starts (0 without one).
fn page_offset(query: &HashMap<String, String>) -> Result<usize, ApiError> {
    match query.get("page_token").filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(token) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.strip_prefix("offset:")?.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid("Invalid page_token")),
    }
}
