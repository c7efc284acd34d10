//! The journal: every request the emulator answered under `/ws`, in order, for tests to assert
//! on. It never holds a request body or the `Authorization` header.

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
    /// The raw query string, if any (the calls this emulator knows put no secret there).
    pub query: Option<String>,
    /// Status code of the answer; `0` when none was sent (a hang or a dropped connection).
    pub status: u16,
    /// The user the request was authenticated as, if any.
    pub user: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Journal {
    entries: Mutex<Vec<JournalEntry>>,
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
}
