//! Injectable faults, queued FIFO per operation: each request of an operation takes the oldest
//! fault queued for it, if any, and suffers it once. Faults are applied before authentication,
//! as a proxy or a failing server would answer (docs/OPAL-WIRE.md §13).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The REST calls the emulator tells apart, for faults and the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// `GET /ws/system/subject-profile/_current` (how a client signs in).
    SignIn,
    /// `GET /ws/project/{name}`.
    GetProject,
    /// `POST /ws/projects`.
    CreateProject,
    /// `GET /ws/system/group/{name}`.
    GetGroup,
    /// `GET /ws/system/subject-credential/{name}`.
    GetSubjectCredential,
    /// `POST /ws/system/subject-credentials`.
    CreateSubjectCredential,
    /// `PUT /ws/system/subject-credential/{name}`.
    UpdateSubjectCredential,
    /// `GET /ws/system/permissions/datashield`.
    ListDataShieldPermissions,
    /// `POST /ws/system/permissions/datashield`.
    AddDataShieldPermission,
    /// `GET /ws/project/{project}/resources`.
    ListResources,
    /// `POST /ws/project/{project}/resources`.
    CreateResource,
    /// `GET /ws/project/{project}/resource/{name}`.
    GetResource,
    /// `PUT /ws/project/{project}/resource/{name}`.
    UpdateResource,
    /// `GET /ws/project/{project}/permissions/resources`.
    ListResourcePermissions,
    /// `POST /ws/project/{project}/permissions/resources`.
    AddResourcePermission,
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers `status` with Opal's error body, a `ClientErrorDto`:
    /// `{"code": status, "status": error_status, "arguments": [...]}` (docs/OPAL-WIRE.md §3).
    Error {
        /// HTTP status code.
        status: u16,
        /// The one-word `status` of the body, e.g. `UnhandledException`.
        error_status: String,
        /// The `arguments` of the body.
        arguments: Vec<String>,
    },
    /// Answers `status` with an empty body, as a proxy in front of Opal may (`502`, `503`).
    Status {
        /// HTTP status code.
        status: u16,
    },
    /// Answers `status` with a `ClientErrorDto` whose arguments repeat the request: its body and
    /// its `Authorization` header. Opal's `UnhandledException` answers carry the root cause's
    /// message, which can quote what was sent; this lets a client prove it never repeats such a
    /// message unfiltered. The journal still records neither.
    EchoRequest {
        /// HTTP status code.
        status: u16,
    },
    /// Waits this long, then handles the request normally.
    Delay {
        /// How long to wait before handling the request.
        delay: Duration,
    },
    /// Never answers (until the emulator stops): a hung server.
    Hang,
    /// Closes the connection without an answer.
    DropConnection,
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
/// `{"operation": "create_resource", "fault": {"kind": "error", "status": 500}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct FaultRequest {
    pub(crate) operation: Operation,
    pub(crate) fault: FaultSpec,
}

/// A fault as JSON; durations in milliseconds.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum FaultSpec {
    Error {
        status: u16,
        #[serde(default = "unhandled")]
        error_status: String,
        #[serde(default)]
        arguments: Vec<String>,
    },
    Status {
        status: u16,
    },
    EchoRequest {
        status: u16,
    },
    Delay {
        millis: u64,
    },
    Hang,
    DropConnection,
}

fn unhandled() -> String {
    "UnhandledException".into()
}

impl From<FaultSpec> for Fault {
    fn from(spec: FaultSpec) -> Fault {
        match spec {
            FaultSpec::Error {
                status,
                error_status,
                arguments,
            } => Fault::Error {
                status,
                error_status,
                arguments,
            },
            FaultSpec::Status { status } => Fault::Status { status },
            FaultSpec::EchoRequest { status } => Fault::EchoRequest { status },
            FaultSpec::Delay { millis } => Fault::Delay {
                delay: Duration::from_millis(millis),
            },
            FaultSpec::Hang => Fault::Hang,
            FaultSpec::DropConnection => Fault::DropConnection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_per_operation() {
        let faults = Faults::default();
        faults.push(Operation::CreateProject, Fault::Hang);
        faults.push(Operation::CreateProject, Fault::DropConnection);
        faults.push(Operation::GetProject, Fault::Hang);
        assert_eq!(faults.pop(Operation::CreateProject), Some(Fault::Hang));
        assert_eq!(faults.pending(Operation::CreateProject), 1);
        assert_eq!(faults.pending(Operation::GetProject), 1);
        faults.clear();
        assert_eq!(faults.pop(Operation::CreateProject), None);
    }

    #[test]
    fn json_spec() {
        let req: FaultRequest = serde_json::from_str(
            r#"{"operation":"update_resource","fault":{"kind":"delay","millis":250}}"#,
        )
        .expect("valid fault request");
        assert_eq!(req.operation, Operation::UpdateResource);
        assert_eq!(
            Fault::from(req.fault),
            Fault::Delay {
                delay: Duration::from_millis(250)
            }
        );
        let req: FaultRequest = serde_json::from_str(
            r#"{"operation":"create_project","fault":{"kind":"error","status":500}}"#,
        )
        .expect("valid fault request");
        assert_eq!(
            Fault::from(req.fault),
            Fault::Error {
                status: 500,
                error_status: "UnhandledException".into(),
                arguments: vec![]
            }
        );
    }
}
