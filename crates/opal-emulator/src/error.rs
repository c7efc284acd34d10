//! Why an emulator could not start, or a seeded user could not be added.

use std::io;
use std::net::SocketAddr;

/// Errors of [`crate::OpalEmulator::start`] and [`crate::OpalEmulator::add_user`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("cannot use the TLS certificate and key: {message}")]
    Tls {
        /// What was wrong with them.
        message: String,
    },
    /// A seeded user's name is empty, `*`, the administrator's, or already taken.
    #[error("cannot add user `{name}`: {reason}")]
    User {
        /// The user's name.
        name: String,
        /// Why not.
        reason: &'static str,
    },
}
