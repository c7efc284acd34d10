//! Integration tests of `publish-databricks`: the conformance suite against the in-memory source and
//! against the real Databricks client talking to the local emulator over real HTTP on
//! `127.0.0.1:0`, plus one module per Databricks scenario. Nothing mocks the HTTP layer.

mod auth;
mod cancel;
mod common;
mod conformance;
mod downloads;
mod errors;
mod faults;
mod governed;
mod happy_path;
mod split;
