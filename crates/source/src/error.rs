//! Why a source could not describe or read a table, in the caller's terms.

use std::time::Duration;

/// Every failure of a [`Source`](crate::Source).
///
/// Variants say what the caller can act on: a name that does not exist (`Unknown*`), credentials
/// or permissions to fix, a statement the warehouse refused, or a source that is down
/// ([`SourceError::is_transient`]). No message ever carries a secret, a token, a presigned link
/// or a row of data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source configuration cannot work (for example an `http_path` without a warehouse id).
    #[error("invalid source configuration: {message}")]
    InvalidConfig {
        /// What is wrong and what to do.
        message: String,
    },
    /// The credentials were refused.
    #[error("the source refused the credentials: {message}")]
    Authentication {
        /// The source's reason (never the secret).
        message: String,
    },
    /// The credentials are valid but lack a privilege.
    #[error("permission denied on {object}: {message}")]
    PermissionDenied {
        /// What was being accessed, e.g. `tre.cohort_a.person`.
        object: String,
        /// The source's message.
        message: String,
    },
    /// The catalog does not exist (or is invisible to these credentials).
    #[error("catalog `{catalog}` does not exist")]
    UnknownCatalog {
        /// The catalog name.
        catalog: String,
    },
    /// The schema does not exist in its catalog.
    #[error("schema `{schema}` does not exist")]
    UnknownSchema {
        /// `catalog.schema`.
        schema: String,
    },
    /// The table does not exist in its schema.
    #[error("table `{table}` does not exist")]
    UnknownTable {
        /// `catalog.schema.table`.
        table: String,
    },
    /// A requested column does not exist in the table.
    #[error("table `{table}` has no column `{column}`; available: {}", available.join(", "))]
    UnknownColumn {
        /// `catalog.schema.table`.
        table: String,
        /// The column as requested.
        column: String,
        /// The table's columns, in catalog order.
        available: Vec<String>,
    },
    /// Two requested names are the same column (column names are case-insensitive).
    #[error("column `{column}` of table `{table}` is requested more than once")]
    DuplicateColumn {
        /// `catalog.schema.table`.
        table: String,
        /// The column, as the catalog spells it.
        column: String,
    },
    /// A read of no columns was asked for; there is nothing to select.
    #[error(
        "no columns were requested for table `{table}`; omit the column list to read all of them"
    )]
    NoColumns {
        /// `catalog.schema.table`.
        table: String,
    },
    /// The SQL warehouse (or other compute) named in the configuration does not exist.
    #[error("SQL warehouse `{warehouse}` does not exist or cannot be used: {message}")]
    UnknownWarehouse {
        /// The warehouse id.
        warehouse: String,
        /// The source's message.
        message: String,
    },
    /// The query ran and failed, or was cancelled by the source.
    #[error("the source failed the query ({error_code}{}): {message}",
        sql_state.as_deref().map(|s| format!(", SQLSTATE {s}")).unwrap_or_default())]
    Statement {
        /// The source's error code, e.g. `BAD_REQUEST`, or `CANCELED` / `CLOSED` for a statement
        /// that ended without an error of its own.
        error_code: String,
        /// The source's message.
        message: String,
        /// SQLSTATE, when given.
        sql_state: Option<String>,
    },
    /// The source was unreachable or kept answering "busy" / server errors after every retry.
    #[error("the source is unavailable ({operation}): {message}")]
    Unavailable {
        /// What was being done, e.g. `downloading chunk 3`.
        operation: String,
        /// The last failure seen.
        message: String,
    },
    /// An operation did not finish within its configured time.
    #[error("{operation} did not finish within {}s", after.as_secs())]
    Timeout {
        /// What was being done.
        operation: String,
        /// The limit that was reached.
        after: Duration,
    },
    /// The source refused a request in a way this client does not expect (a 4xx other than the
    /// ones above): a bug here, or an API change.
    #[error("the source rejected {operation} with HTTP {status}{}: {message}",
        error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Rejected {
        /// What was being done.
        operation: String,
        /// HTTP status.
        status: u16,
        /// The source's error code, if any.
        error_code: Option<String>,
        /// The source's message.
        message: String,
    },
    /// The table is larger than one result of the source, so it can only be read in parts, and
    /// parts must come from one snapshot; but the source refuses to pin one for this table (a
    /// governed table, a view).
    #[error(
        "table `{table}` is larger than the warehouse returns in one query, and it cannot be \
         read in parts, which must all come from one version: {reason}; request fewer columns, \
         or ask the data owner for a table that can be read at one version"
    )]
    TooLargeUnpinned {
        /// `catalog.schema.table`.
        table: String,
        /// Why no snapshot can be pinned (the source's refusal, by its error class).
        reason: String,
    },
    /// The source answered something this client cannot read (malformed JSON, a garbled Arrow
    /// chunk after every retry, a result that does not match its manifest or declared types).
    #[error("unexpected answer from the source: {message}")]
    Protocol {
        /// What did not match.
        message: String,
    },
}

impl SourceError {
    /// True when retrying the whole operation later may succeed (the source was down, busy or
    /// slow); false when something must be changed first.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    /// True for the `Unknown*` variants: a named object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::UnknownCatalog { .. }
                | Self::UnknownSchema { .. }
                | Self::UnknownTable { .. }
                | Self::UnknownColumn { .. }
                | Self::UnknownWarehouse { .. }
        )
    }

    /// A [`SourceError::Protocol`]: the source answered something unexpected.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol {
            message: message.into(),
        }
    }
}
