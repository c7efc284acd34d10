//! Why an emulator could not start.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors of [`crate::Emulator::start`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory does not exist or is not a directory.
    #[error("data directory {} is not a directory; create it or pass --data DIR", path.display())]
    DataDir {
        /// The configured path.
        path: PathBuf,
    },
    /// The scratch folder for derived tables (histories, data file lists) could not be made.
    #[error("cannot create a scratch folder for derived tables: {source}")]
    Scratch {
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}
