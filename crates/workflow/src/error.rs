//! Errors of the workflow layer, in the caller's terms, each with the [`ErrorKind`] a server
//! maps to a status code.

use publish_sink::SinkError;
use publish_source::SourceError;
use publish_storage::StorageError;

use crate::secrets::SecretError;

/// What kind of failure, for callers that must pick a status code or a retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request breaks a rule (422).
    Invalid,
    /// A named table, column, destination or container does not exist (404).
    NotFound,
    /// Another operation on the same project is running, or there is nothing to publish (409).
    Conflict,
    /// The source failed or refused (502).
    SourceFailed,
    /// The source did not answer in time (504).
    SourceTimeout,
    /// The destination database or the publisher (Opal) refused or failed (502).
    DestinationFailed,
    /// The publisher (Opal) did not answer in time (504).
    DestinationTimeout,
    /// A volume is full (507); nothing was changed.
    InsufficientStorage,
    /// The operation ran out of time before its commit point (504); nothing was committed.
    Timeout,
    /// The service is shutting down and stopped the operation before its commit point (503);
    /// nothing was committed.
    Unavailable,
    /// A bug or an environment fault on our side (500); details are logged, not returned.
    Internal,
}

/// A failed package, publish or validate. `Display` is safe to show to the caller for every
/// kind except [`ErrorKind::Internal`], and never contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The request's destination is not configured.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The source host is not on the allow-list.
    #[error("source.host_url: {host} is not an allowed source host (allowed: {allowed})")]
    HostNotAllowed {
        /// The refused host.
        host: String,
        /// The allow-list.
        allowed: String,
    },
    /// A secret named in the request could not be read.
    #[error("{field}: {source}")]
    Secret {
        /// The request field naming the secret.
        field: &'static str,
        /// Why.
        #[source]
        source: SecretError,
    },
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing the output failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A destination's volume ran out of space; what was written was removed.
    #[error(
        "the {volume} volume of destination {destination} is full ({path}); nothing was \
         changed — free space on it (or enlarge it) and try again"
    )]
    VolumeFull {
        /// The destination's name.
        destination: String,
        /// Which container.
        volume: publish_storage::Container,
        /// The container's path.
        path: String,
    },
    /// The operation was stopped before its commit point ([`crate::Interrupt`]): nothing was
    /// committed and its temporary files are gone.
    #[error("{}", interrupted(.0))]
    Interrupted(crate::Cut),
    /// The request names a destination that this service's configuration lacks.
    #[error("destination: {message}")]
    DestinationNotConfigured {
        /// What configuring it takes.
        message: String,
    },
    /// Publish found nothing loaded into the database destination for this project run.
    #[error(
        "nothing to publish: no table of project {project} ({start}) was packaged into the \
         postgresql destination; run package first"
    )]
    NothingLoaded {
        /// The project.
        project: String,
        /// Its start time.
        start: String,
    },
    /// The publisher (OBiBa Opal) refused or failed.
    #[error(transparent)]
    Publisher(#[from] crate::PublisherError),
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

fn interrupted(cut: &crate::Cut) -> String {
    match cut {
        crate::Cut::Timeout(t) => format!(
            "the operation did not reach its commit point within {} s (the operation \
             timeout) and was stopped; nothing was committed",
            t.as_secs()
        ),
        crate::Cut::ShuttingDown => "the service is shutting down and stopped this operation \
             before its commit point; nothing half-written is kept — retry"
            .to_owned(),
    }
}

impl WorkflowError {
    /// True when a storage or sink error says a volume is full.
    pub(crate) fn is_out_of_space(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_out_of_space(),
            Self::Sink(e) => e.is_out_of_space(),
            _ => false,
        }
    }

    /// The kind, for status codes and retry decisions.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Storage(e) => storage_kind(e),
            Self::HostNotAllowed { .. } | Self::Secret { .. } => ErrorKind::Invalid,
            Self::Source(e) => source_kind(e),
            // The source delivered rows that contradict the schema it declared.
            Self::Sink(SinkError::NullInNotNull { .. } | SinkError::SchemaMismatch { .. }) => {
                ErrorKind::SourceFailed
            }
            Self::Sink(SinkError::Busy { .. } | SinkError::TableClaimed { .. })
            | Self::NothingLoaded { .. } => ErrorKind::Conflict,
            Self::Sink(SinkError::InvalidName { .. }) | Self::DestinationNotConfigured { .. } => {
                ErrorKind::Invalid
            }
            Self::Sink(SinkError::Database { .. }) => ErrorKind::DestinationFailed,
            Self::Publisher(e) => match e.failure {
                crate::PublisherFailure::Invalid => ErrorKind::Invalid,
                crate::PublisherFailure::Failed => ErrorKind::DestinationFailed,
                crate::PublisherFailure::Timeout => ErrorKind::DestinationTimeout,
            },
            Self::VolumeFull { .. } => ErrorKind::InsufficientStorage,
            Self::Interrupted(crate::Cut::Timeout(_)) => ErrorKind::Timeout,
            Self::Interrupted(crate::Cut::ShuttingDown) => ErrorKind::Unavailable,
            Self::Sink(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

fn storage_kind(e: &StorageError) -> ErrorKind {
    match e {
        StorageError::UnknownDestination { .. } | StorageError::ContainerMissing { .. } => {
            ErrorKind::NotFound
        }
        StorageError::Busy { .. }
        | StorageError::NothingToPublish { .. }
        | StorageError::TableClaimed { .. }
        | StorageError::FormatConflict { .. }
        | StorageError::StagedFileChanged { .. }
        | StorageError::UnexpectedStagedFile { .. }
        | StorageError::MissingRecord { .. }
        | StorageError::RecordInvalid { .. }
        | StorageError::UnsupportedEntry { .. } => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    }
}

fn source_kind(e: &SourceError) -> ErrorKind {
    match e {
        SourceError::UnknownTable { .. }
        | SourceError::UnknownColumn { .. }
        | SourceError::UnknownSchema { .. }
        | SourceError::UnknownCatalog { .. } => ErrorKind::NotFound,
        SourceError::InvalidConfig { .. }
        | SourceError::DuplicateColumn { .. }
        | SourceError::NoColumns { .. }
        | SourceError::TooLargeUnpinned { .. } => ErrorKind::Invalid,
        SourceError::Timeout { .. } => ErrorKind::SourceTimeout,
        _ => ErrorKind::SourceFailed,
    }
}
