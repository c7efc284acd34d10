//! Integration tests of the publish server: one binary, one module per scenario.

mod auth;
mod blob;
mod cr8tor;
mod crash;
mod edge;
mod errors;
mod full;
mod governed;
mod metrics;
mod mysql;
mod openapi;
mod package;
mod pg_destination;
mod postgres;
mod publish;
mod startup;
mod support;
