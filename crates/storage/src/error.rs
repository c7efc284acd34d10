//! The one error type of this crate, in the terms of the caller (a destination, a project, a
//! container), never in those of the system call that failed.

use std::io;
use std::path::{Path, PathBuf};

use crate::container::Container;

/// What went wrong with a destination's storage.
///
/// The server maps [`StorageError::Busy`], [`StorageError::NothingToPublish`], the dataset
/// conflicts and refused staged content to 409,
/// [`StorageError::UnknownDestination`] to 404, [`StorageError::ContainerMissing`] to a failed
/// validation, and the rest to 500 (they mean a broken volume or a bug).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A `TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH` variable cannot be used.
    #[error("environment variable {variable}: {reason}")]
    InvalidDestinationVariable {
        /// The variable's name.
        variable: String,
        /// Why it was refused.
        reason: String,
    },

    /// The request names a destination that is not configured.
    #[error(
        "destination {name:?} is not configured; known destinations: {}; add one with \
         TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH",
        known.join(", ")
    )]
    UnknownDestination {
        /// The name asked for.
        name: String,
        /// The configured names, sorted.
        known: Vec<String>,
    },

    /// A destination's `staging` or `production` container does not exist or is not a folder.
    #[error("destination {destination}: the {container} container {} does not exist or is not a folder", path.display())]
    ContainerMissing {
        /// The destination's name.
        destination: String,
        /// Which container.
        container: Container,
        /// Where it was expected.
        path: PathBuf,
    },

    /// Another operation on the same destination, project and start time is running, in this
    /// process or in another replica sharing the volume.
    #[error(
        "another package or publish for project {project} (start {start}) at destination \
         {destination} is in progress; retry when it has finished"
    )]
    Busy {
        /// The destination's name.
        destination: String,
        /// The project name.
        project: String,
        /// The project start time.
        start: String,
    },

    /// Publish found no staged result and nothing already published.
    #[error(
        "nothing to publish for project {project} (start {start}) at destination {destination}: \
         nothing is staged and nothing was published before; run package first"
    )]
    NothingToPublish {
        /// The destination's name.
        destination: String,
        /// The project name.
        project: String,
        /// The project start time.
        start: String,
    },

    /// A result holds something other than folders and regular files with UTF-8 names.
    #[error("{} is a {kind}; results may only hold folders and regular files with UTF-8 names", path.display())]
    UnsupportedEntry {
        /// The offending entry.
        path: PathBuf,
        /// What it is: `symbolic link`, `special file`, `file with a non-UTF-8 name`.
        kind: &'static str,
    },

    /// A copied file's size differs from the bytes that were read and hashed.
    #[error(
        "{file}: {hashed} bytes were read and hashed but {landed} bytes landed in production \
         (expected {expected} from staging); nothing was published"
    )]
    SizeMismatch {
        /// The file's path relative to the result.
        file: String,
        /// The staged size when publish started.
        expected: u64,
        /// The bytes read and hashed.
        hashed: u64,
        /// The size of the written copy.
        landed: u64,
    },

    /// A dataset asks for a table another dataset of the same project already staged.
    #[error(
        "table {table} of dataset {dataset:?} is already staged by dataset {claimed_by:?} of the \
         same project; a table can belong to one dataset only (rename one of them, or package \
         {claimed_by:?} again without it)"
    )]
    TableClaimed {
        /// `schema.table`.
        table: String,
        /// The dataset being packaged.
        dataset: String,
        /// The dataset that staged the table.
        claimed_by: String,
    },

    /// A dataset is packaged in another format than the project's other staged datasets.
    #[error(
        "dataset {dataset:?} asks for {requested:?} output, but the project's other staged \
         datasets ({}) are {staged:?}; one project run has one output format",
        others.join(", ")
    )]
    FormatConflict {
        /// The dataset being packaged.
        dataset: String,
        /// The format it asks for.
        requested: publish_types::OutputFormat,
        /// The format already staged.
        staged: publish_types::OutputFormat,
        /// The other datasets' ids.
        others: Vec<String>,
    },

    /// A staged file is missing, or differs from what its package recorded.
    #[error("staged file {file} {reason}; nothing was published — package the project again")]
    StagedFileChanged {
        /// The file's path relative to the staged result.
        file: String,
        /// What differs.
        reason: String,
    },

    /// Staging holds a file that no package wrote.
    #[error(
        "staging holds {file}, which no package wrote; nothing was published — remove it or \
         package the project again"
    )]
    UnexpectedStagedFile {
        /// The file's path relative to the staged result.
        file: String,
    },

    /// The staged result has no package record (staged by an older version, or tampered with).
    #[error(
        "the staged result of project {project} (start {start}) has no package record, so what \
         it holds cannot be checked; nothing was published — package the project again"
    )]
    MissingRecord {
        /// The project name.
        project: String,
        /// The project start time.
        start: String,
    },

    /// The package record cannot be read.
    #[error("the package record {} is unusable ({reason}); package the project again", path.display())]
    RecordInvalid {
        /// Where it is.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// An invariant of this crate does not hold (a bug).
    #[error("internal storage error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },

    /// A file-system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `create the staging folder`.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// True when the operation failed because a volume (or a quota) is full.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Self::Io { source, .. } => publish_fs::is_out_of_space(source),
            _ => false,
        }
    }
}

/// Adds the action and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Wraps the error in [`StorageError::Io`].
    fn at(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        })
    }
}
