//! Why a request body was refused.

use std::fmt;

/// A request that does not match the contract or breaks a rule of docs/CONTRACT.md §5.
///
/// `field` is the JSON path of the offending value (e.g. `dataset.tables[1].columns[0].name`),
/// empty when the body as a whole is wrong (not JSON, not an object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// JSON path of the offending field.
    pub field: String,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl RequestError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A value read from an already parsed JSON value: every error is about the data.
    pub(crate) fn from_serde_value(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            String::new()
        } else {
            path
        };
        Self {
            field,
            message: strip_position(&e.into_inner().to_string()),
        }
    }

    pub(crate) fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path == "?" {
            String::new()
        } else {
            path
        };
        let (field, message) = match inner.classify() {
            // A syntax error belongs to the body, not to the field being read when it was found.
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => (
                String::new(),
                format!("the body is not valid JSON ({inner})"),
            ),
            serde_json::error::Category::Io => (
                String::new(),
                format!("the body could not be read ({inner})"),
            ),
            serde_json::error::Category::Data => (field, strip_position(&inner.to_string())),
        };
        Self { field, message }
    }
}

/// serde_json appends " at line L column C"; the field path says more than that.
fn strip_position(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for RequestError {}

/// Why a value of the contract could not be parsed, by the parser that refused it (callers act
/// on the variant, never on the wording). The text says what is wrong and what to do, and
/// never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A source `type` the service does not read ([`crate::SourceKind::parse`]).
    #[error("{0}")]
    SourceType(String),
    /// A source address ([`crate::HostUrl::parse`], [`crate::HostUrl::parse_database`]).
    #[error("{0}")]
    HostUrl(String),
    /// An entry of a host allow-list ([`crate::HostAllowList::parse`]).
    #[error("{0}")]
    AllowList(String),
    /// A Unity Catalog type text ([`crate::UcType::parse`]).
    #[error("{0}")]
    TypeText(String),
}
