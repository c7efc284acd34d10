//! Opal's JSON on the wire: error bodies (`ClientErrorDto`), the DTOs the emulator writes, and
//! reading request bodies the way protobuf-java-format's `JsonFormat.merge` does (unknown fields
//! and `null`s ignored, a single value accepted for a repeated field, required fields checked
//! when the message is built). docs/OPAL-WIRE.md §3, §4.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// The media type of Opal's error bodies (`ErrorDtoExceptionMapper`).
pub(crate) const PROTOBUF_JSON: &str = "application/x-protobuf+json";

/// `ClientErrorDto`: `{"code", "status", "arguments"}`, `arguments` left out when empty (an
/// empty repeated field is not printed).
pub(crate) fn client_error(status: StatusCode, error_status: &str, arguments: &[&str]) -> Response {
    client_error_owned(
        status,
        error_status,
        arguments.iter().map(|a| (*a).to_owned()).collect(),
    )
}

pub(crate) fn client_error_owned(
    status: StatusCode,
    error_status: &str,
    arguments: Vec<String>,
) -> Response {
    let mut body = json!({"code": status.as_u16(), "status": error_status});
    if !arguments.is_empty() {
        body["arguments"] = Value::from(arguments);
    }
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF_JSON))],
        body.to_string(),
    )
        .into_response()
}

/// `UnhandledExceptionMapper`: 500, `UnhandledException`, the root cause's simple class name
/// and message.
pub(crate) fn unhandled(exception: &str, message: &str) -> Response {
    client_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UnhandledException",
        &[exception, message],
    )
}

/// `IllegalArgumentExceptionMapper` and `BadRequestExceptionMapper`: 400, `IllegalArgument`.
pub(crate) fn illegal_argument(message: &str) -> Response {
    client_error(StatusCode::BAD_REQUEST, "IllegalArgument", &[message])
}

/// A refusal: the answer to send instead of going on (boxed, since a `Response` is large).
#[derive(Debug)]
pub(crate) struct Reject(Box<Response>);

impl From<Response> for Reject {
    fn from(response: Response) -> Reject {
        Reject(Box::new(response))
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A status with no body (`Response.status(...).build()`).
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// A DTO or a list of DTOs, as Opal's `ProtobufJsonWriterProvider` writes it for
/// `Accept: application/json`.
pub(crate) fn dto(value: Value) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        value.to_string(),
    )
        .into_response()
}

/// RESTEasy's answer when a query parameter cannot be converted (JAX-RS: 404), through Opal's
/// `NotFoundExceptionMapper` (the message as a plain body).
pub(crate) fn bad_param(param: &str, value: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "RESTEASY003870: Unable to extract parameter from http request: \
             jakarta.ws.rs.QueryParam(\"{param}\") value is '{value}'"
        ),
    )
        .into_response()
}

/// Now, at the millisecond precision of a `java.util.Date`.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound as _;
    Utc::now().trunc_subsecs(3)
}

/// A `java.util.Date` through `Instant.toString()`: ISO-8601 UTC, milliseconds when not zero.
pub(crate) fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Opal's `SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSSZ")` (profiles).
pub(crate) fn iso_8601(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// A request body read as one protobuf message.
#[derive(Debug)]
pub(crate) struct Message {
    fields: Map<String, Value>,
}

/// Reads `bytes` as the JSON of message `message` with `required` fields.
///
/// - a content type other than JSON: 415, as RESTEasy finds no reader;
/// - not a JSON object: 400 (`JsonFormat.ParseException`; the exact answer is not verified);
/// - a required field absent: 500 `UninitializedMessageException` from `Builder.build()`.
pub(crate) fn read_message(
    headers: &HeaderMap,
    bytes: &[u8],
    message: &str,
    required: &[&str],
) -> Result<Message, Reject> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" && media != PROTOBUF_JSON {
        return Err(empty(StatusCode::UNSUPPORTED_MEDIA_TYPE).into());
    }
    let parsed: Value = serde_json::from_slice(bytes).map_err(|e| parse_error(&e.to_string()))?;
    let Value::Object(mut fields) = parsed else {
        return Err(parse_error("Expected \"{\"."));
    };
    fields.retain(|_, v| !v.is_null());
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| !fields.contains_key(*f))
        .collect();
    if !missing.is_empty() {
        return Err(Reject::from(unhandled(
            "UninitializedMessageException",
            &format!(
                "Message missing required fields: {} ({message})",
                missing.join(", ")
            ),
        )));
    }
    Ok(Message { fields })
}

fn parse_error(detail: &str) -> Reject {
    client_error(StatusCode::BAD_REQUEST, "BadRequest", &[detail]).into()
}

impl Message {
    /// A string field; absent → `None`.
    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, Reject> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(parse_error(&format!(
                "Expected string for field {key}, got {other}"
            ))),
        }
    }

    /// A string field, `""` when absent (protobuf's default).
    pub(crate) fn string_or_default(&self, key: &str) -> Result<String, Reject> {
        Ok(self.string(key)?.unwrap_or_default())
    }

    /// A boolean field; absent → `None`.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, Reject> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(parse_error(&format!(
                "Expected boolean for field {key}, got {other}"
            ))),
        }
    }

    /// A repeated string field: an array, or one value.
    pub(crate) fn strings(&self, key: &str) -> Result<Vec<String>, Reject> {
        match self.fields.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(parse_error(&format!(
                        "Expected string in field {key}, got {other}"
                    ))),
                })
                .collect(),
            Some(other) => Err(parse_error(&format!(
                "Expected strings for field {key}, got {other}"
            ))),
        }
    }

    /// An enum field given by name or number, checked against `values` (name, number).
    pub(crate) fn enumeration(
        &self,
        key: &str,
        type_name: &str,
        values: &[(&str, i64)],
    ) -> Result<Option<String>, Reject> {
        let found = match self.fields.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => values.iter().find(|(n, _)| n == s),
            Some(Value::Number(n)) => values.iter().find(|(_, v)| Some(*v) == n.as_i64()),
            Some(_) => None,
        };
        match found {
            Some((name, _)) => Ok(Some((*name).to_owned())),
            None => Err(parse_error(&format!(
                "Enum type \"{type_name}\" has no value {}.",
                self.fields
                    .get(key)
                    .map(Value::to_string)
                    .unwrap_or_default()
            ))),
        }
    }
}
