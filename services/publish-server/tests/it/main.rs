//! Integration tests of the publish server: one binary, one module per scenario.

mod auth;
mod errors;
mod package;
mod publish;
mod startup;
mod support;
