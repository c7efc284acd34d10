//! The journal: every API request the emulator answered, and the body of every statement
//! submitted, in order, for tests to assert on.

use std::sync::Mutex;

use serde::Serialize;

use crate::faults::Operation;

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    /// The operation, `None` for a path the emulator does not know.
    pub operation: Option<Operation>,
    /// HTTP method, upper-case.
    pub method: String,
    /// Path as the client sent it, without the query string.
    pub path: String,
    /// Status code of the answer.
    pub status: u16,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Journal {
    entries: Mutex<Vec<JournalEntry>>,
    submitted: Mutex<Vec<serde_json::Value>>,
}

impl Journal {
    pub(crate) fn record(&self, entry: JournalEntry) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(entry);
    }

    pub(crate) fn snapshot(&self) -> Vec<JournalEntry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn record_submitted(&self, body: serde_json::Value) {
        self.submitted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(body);
    }

    /// How many statements were submitted.
    pub(crate) fn submitted_count(&self) -> usize {
        self.submitted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub(crate) fn submitted(&self) -> Vec<serde_json::Value> {
        self.submitted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
