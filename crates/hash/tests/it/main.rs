//! Integration tests of `publish-hash`, gathered in one binary (one module per scenario).

mod algorithm;
mod copy;
mod sha512sum;
mod vectors;

pub(crate) use publish_test_support::deterministic_bytes;
