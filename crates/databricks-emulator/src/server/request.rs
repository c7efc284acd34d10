//! The body of `POST /api/2.0/sql/statements` as a client sends it, and how each of its fields
//! is checked.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::result::Format;
use crate::statements::Disposition;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ExecuteRequest {
    pub(super) statement: Option<String>,
    pub(super) warehouse_id: Option<String>,
    pub(super) catalog: Option<String>,
    pub(super) schema: Option<String>,
    disposition: Option<String>,
    format: Option<String>,
    wait_timeout: Option<String>,
    on_wait_timeout: Option<String>,
    pub(super) row_limit: Option<i64>,
    pub(super) byte_limit: Option<i64>,
    pub(super) parameters: Option<Vec<Parameter>>,
    result_compression: Option<String>,
}

/// One named parameter of a statement (`:name` in the SQL).
#[derive(Debug, Deserialize)]
pub(super) struct Parameter {
    pub(super) name: String,
    pub(super) value: Option<String>,
    #[serde(rename = "type")]
    pub(super) ty: Option<String>,
}

impl ExecuteRequest {
    pub(super) fn parse(body: &[u8]) -> Result<ExecuteRequest, ApiError> {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("Malformed request: {e}"),
            )
        })
    }

    /// What, besides the table's data, decides a result's bytes: the statement's text, its
    /// parameters, `row_limit` and `byte_limit` (the result cache's query, docs/DATABRICKS-WIRE.md
    /// §6.6).
    pub(super) fn cache_query(&self, statement: &str) -> String {
        let parameters: Vec<(&str, Option<&str>, Option<&str>)> = self
            .parameters
            .iter()
            .flatten()
            .map(|p| (p.name.as_str(), p.value.as_deref(), p.ty.as_deref()))
            .collect();
        format!(
            "{statement:?} {parameters:?} {:?} {:?}",
            self.row_limit, self.byte_limit
        )
    }

    /// The statement's text; a missing or blank one is a 400.
    pub(super) fn statement(&self) -> Result<String, ApiError> {
        self.statement
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::invalid("statement is required."))
    }

    /// `disposition` (default `INLINE`).
    pub(super) fn disposition(&self) -> Result<Disposition, ApiError> {
        match self.disposition.as_deref().unwrap_or("INLINE") {
            "INLINE" => Ok(Disposition::Inline),
            "EXTERNAL_LINKS" | "INLINE_OR_EXTERNAL_LINKS" => Ok(Disposition::ExternalLinks),
            other => Err(ApiError::invalid(format!("Unknown disposition '{other}'."))),
        }
    }

    /// `format` (default `JSON_ARRAY`, the only one an INLINE `disposition` allows).
    pub(super) fn format(&self, disposition: Disposition) -> Result<Format, ApiError> {
        let format = match self.format.as_deref().unwrap_or("JSON_ARRAY") {
            "JSON_ARRAY" => Format::JsonArray,
            "ARROW_STREAM" => Format::ArrowStream,
            "CSV" => Format::Csv,
            other => return Err(ApiError::invalid(format!("Unknown format '{other}'."))),
        };
        if disposition == Disposition::Inline && format != Format::JsonArray {
            return Err(ApiError::invalid(
                "The format field must be JSON_ARRAY when the disposition field is INLINE.",
            ));
        }
        Ok(format)
    }

    /// `wait_timeout`: `0s`, or 5 to 50 seconds (default 10).
    pub(super) fn wait(&self) -> Result<Duration, ApiError> {
        parse_wait_timeout(self.wait_timeout.as_deref())
    }

    /// `on_wait_timeout`: whether a statement still running when the wait ends is cancelled.
    pub(super) fn cancel_on_timeout(&self) -> Result<bool, ApiError> {
        match self.on_wait_timeout.as_deref().unwrap_or("CONTINUE") {
            "CONTINUE" => Ok(false),
            "CANCEL" => Ok(true),
            other => Err(ApiError::invalid(format!(
                "on_wait_timeout must be CONTINUE or CANCEL, got '{other}'."
            ))),
        }
    }

    /// A negative `row_limit` is a 400.
    pub(super) fn check_row_limit(&self) -> Result<(), ApiError> {
        if self.row_limit.is_some_and(|n| n < 0) {
            return Err(ApiError::invalid("row_limit must not be negative."));
        }
        Ok(())
    }

    /// `result_compression`: whether results are LZ4-framed.
    pub(super) fn compress(&self) -> Result<bool, ApiError> {
        match self.result_compression.as_deref() {
            None | Some("NONE") => Ok(false),
            Some("LZ4_FRAME") => Ok(true),
            Some(other) => Err(ApiError::invalid(format!(
                "Unknown result_compression '{other}'."
            ))),
        }
    }
}

fn parse_wait_timeout(value: Option<&str>) -> Result<Duration, ApiError> {
    let text = value.unwrap_or("10s");
    let secs = text
        .strip_suffix('s')
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n == 0 || (5..=50).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "wait_timeout must be 0s or between 5s and 50s, got '{text}'."
            ))
        })?;
    Ok(Duration::from_secs(secs))
}
