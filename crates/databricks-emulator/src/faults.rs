//! Injectable faults, queued FIFO per operation: each request of an operation takes the oldest
//! fault queued for it, if any, and suffers it once.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The API operations the emulator tells apart, for faults and the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// `POST /oidc/v1/token`.
    Token,
    /// The discovery documents (`/.well-known/databricks-config`, `/oidc/.well-known/...`).
    Discovery,
    /// `GET /api/2.1/unity-catalog/schemas/{full_name}`.
    GetSchema,
    /// `GET /api/2.1/unity-catalog/tables/{full_name}`.
    GetTable,
    /// `GET /api/2.1/unity-catalog/tables`.
    ListTables,
    /// `POST /api/2.0/sql/statements`.
    ExecuteStatement,
    /// `GET /api/2.0/sql/statements/{id}`.
    GetStatement,
    /// `GET /api/2.0/sql/statements/{id}/result/chunks/{n}`.
    GetChunk,
    /// `GET` of an external link (the emulator's stand-in for cloud storage).
    Download,
    /// `POST /api/2.0/sql/statements/{id}/cancel`.
    Cancel,
    /// `DELETE /api/2.0/sql/statements/{id}`.
    CloseStatement,
    /// `POST /api/2.0/sql/sessions`.
    CreateSession,
    /// `DELETE /api/2.0/sql/sessions/{id}`.
    DeleteSession,
    /// `GET /api/2.0/sql/warehouses/{id}`.
    GetWarehouse,
}

/// One fault. Faults that make no sense for the operation they were queued on (a truncated
/// chunk queued on `GetTable`) are consumed without effect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Any operation: `429` with `Retry-After` and `REQUEST_LIMIT_EXCEEDED`.
    TooManyRequests {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// Any operation: `503` with `Retry-After` and `TEMPORARILY_UNAVAILABLE`.
    Unavailable {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// Any operation: an arbitrary error status with a Databricks error body (for example `401
    /// UNAUTHENTICATED` to exercise a token refresh, or `500 INTERNAL_ERROR`).
    Error {
        /// HTTP status code.
        status: u16,
        /// `error_code` of the body.
        error_code: String,
        /// `message` of the body.
        message: String,
    },
    /// `ExecuteStatement`, `GetStatement`, `GetChunk`: the link handed out in this response is
    /// already expired, so downloading it gets `403 AuthenticationFailed`.
    ExpiredLink,
    /// `Download`: the body stops in the middle of an Arrow message (a short but otherwise
    /// well-formed HTTP response, so only the decoder can notice).
    TruncatedChunk,
    /// `Download`: `403 AuthorizationFailure`, as Azure storage answers when a firewall or a
    /// private endpoint in front of the workspace's storage account refuses the caller's
    /// network (a fresh link does not help). One per download it refuses.
    StorageFirewall,
    /// `ExecuteStatement`: the statement ends `FAILED` with this error.
    FailStatement {
        /// `status.error.error_code`, e.g. `INTERNAL_ERROR`.
        error_code: String,
        /// `status.error.message`.
        message: String,
    },
    /// Any operation: the response is delayed (for `Download`: a slow chunk).
    Slow {
        /// How long to wait before answering.
        delay: Duration,
    },
    /// `ExecuteStatement`: the statement stays `RUNNING` this much longer than it otherwise would.
    StayRunning {
        /// Extra running time.
        duration: Duration,
    },
}

/// The fault queues of one emulator. Cheap to share; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Faults {
    queues: Mutex<HashMap<Operation, VecDeque<Fault>>>,
}

impl Faults {
    /// Queues `fault` behind any already queued for `operation`.
    pub fn push(&self, operation: Operation, fault: Fault) {
        self.lock().entry(operation).or_default().push_back(fault);
    }

    /// Drops every queued fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many faults are still queued for `operation` (a test can assert one was consumed).
    pub fn pending(&self, operation: Operation) -> usize {
        self.lock().get(&operation).map_or(0, VecDeque::len)
    }

    pub(crate) fn pop(&self, operation: Operation) -> Option<Fault> {
        self.lock().get_mut(&operation)?.pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Operation, VecDeque<Fault>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The JSON shape of `POST /emulator/faults`:
/// `{"operation": "download", "fault": {"kind": "slow", "millis": 500}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct FaultRequest {
    pub(crate) operation: Operation,
    pub(crate) fault: FaultSpec,
}

/// A fault as JSON; durations in milliseconds.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum FaultSpec {
    TooManyRequests {
        #[serde(default = "one")]
        retry_after_secs: u64,
    },
    Unavailable {
        #[serde(default = "one")]
        retry_after_secs: u64,
    },
    Error {
        status: u16,
        error_code: String,
        #[serde(default)]
        message: String,
    },
    ExpiredLink,
    TruncatedChunk,
    StorageFirewall,
    FailStatement {
        error_code: String,
        #[serde(default)]
        message: String,
    },
    Slow {
        millis: u64,
    },
    StayRunning {
        millis: u64,
    },
}

fn one() -> u64 {
    1
}

impl From<FaultSpec> for Fault {
    fn from(spec: FaultSpec) -> Fault {
        match spec {
            FaultSpec::TooManyRequests { retry_after_secs } => {
                Fault::TooManyRequests { retry_after_secs }
            }
            FaultSpec::Unavailable { retry_after_secs } => Fault::Unavailable { retry_after_secs },
            FaultSpec::Error {
                status,
                error_code,
                message,
            } => Fault::Error {
                status,
                error_code,
                message,
            },
            FaultSpec::ExpiredLink => Fault::ExpiredLink,
            FaultSpec::TruncatedChunk => Fault::TruncatedChunk,
            FaultSpec::StorageFirewall => Fault::StorageFirewall,
            FaultSpec::FailStatement {
                error_code,
                message,
            } => Fault::FailStatement {
                error_code,
                message,
            },
            FaultSpec::Slow { millis } => Fault::Slow {
                delay: Duration::from_millis(millis),
            },
            FaultSpec::StayRunning { millis } => Fault::StayRunning {
                duration: Duration::from_millis(millis),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_per_operation() {
        let faults = Faults::default();
        faults.push(Operation::GetChunk, Fault::ExpiredLink);
        faults.push(Operation::GetChunk, Fault::TruncatedChunk);
        faults.push(Operation::Download, Fault::TruncatedChunk);
        assert_eq!(faults.pop(Operation::GetChunk), Some(Fault::ExpiredLink));
        assert_eq!(faults.pending(Operation::GetChunk), 1);
        faults.clear();
        assert_eq!(faults.pop(Operation::Download), None);
    }

    #[test]
    fn json_spec() {
        let req: FaultRequest = serde_json::from_str(
            r#"{"operation":"download","fault":{"kind":"slow","millis":500}}"#,
        )
        .expect("valid fault request");
        assert_eq!(req.operation, Operation::Download);
        assert_eq!(
            Fault::from(req.fault),
            Fault::Slow {
                delay: Duration::from_millis(500)
            }
        );
    }
}
