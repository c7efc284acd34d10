//! The one error type of this crate.
//!
//! Hashing itself only fails with the `io::Error` of the reader or writer, which the functions
//! return unchanged; this enum covers what a caller configures.

/// A hashing option that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The algorithm name is not one this crate offers.
    #[error("unknown hash algorithm {given:?}; use \"sha512\" (the default) or \"sha3-512\"")]
    UnknownAlgorithm {
        /// The name as given.
        given: String,
    },
}
