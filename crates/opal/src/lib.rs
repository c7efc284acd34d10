//! Publishing PostgreSQL tables to OBiBa Opal for DataSHIELD.
//!
//! When a project's destination is a PostgreSQL database read through DataSHIELD, publishing
//! means making its tables visible in Opal: a project named after the CR8TOR project, a group
//! `<project>_group` allowed to use DataSHIELD, one `resourcer`/`sql` resource reference per
//! table (`tre_postgresql_<schema>_<table>`, carrying the read-only role's credentials), and the
//! group's permission to view those resources. [`OpalClient::publish`] does that idempotently;
//! [`OpalClient::check`] only signs in, which is what validate asks.
//!
//! The Opal calls, their answers and where each was found in Opal's source are in
//! `docs/OPAL-WIRE.md`; this crate is the only one that knows them. It is tested against
//! `crates/opal-emulator` over real HTTP and HTTPS.
//!
//! # Contract
//!
//! - **Idempotent**: each step reads before it writes, and writes only what is missing or
//!   different. Publishing twice answers the same and creates nothing twice; a publish that
//!   failed half-way is completed by publishing again. Nothing is deleted or undone.
//! - **Never weakens what exists**: a group that already has a DataSHIELD or resources
//!   permission keeps it (no downgrade from `…_ALL`); `dsuser_default` keeps its other groups
//!   and its enabled flag; a resource of the same name that reads another table is reported,
//!   not overwritten.
//! - **Secrets**: the Opal password, the read-only role's password and the placeholder user's
//!   generated password are sent only in the `Authorization` header and the bodies that need
//!   them, never logged, and never in an [`OpalError`] (its `Display` and `Debug`).
//! - **Retries**: only `GET`s, after a failed or dropped connection or a 503, three attempts in
//!   all; a timeout is not retried. Writes are never retried: publishing again is the retry.
//! - **Cancellation**: dropping the future stops after the current call; what was done stays
//!   done, as after a failure.
//! - **Concurrency**: calls on one client may run concurrently. Two publishes of the same
//!   project at once converge (a lost race to create the project or the user is read back),
//!   but the service should still serialise them per project.

mod client;
mod error;
mod names;
pub mod password;
mod publish;
mod redact;
mod settings;
mod wire;

pub use client::OpalClient;
pub use error::OpalError;
pub use names::{DEFAULT_USER, group_name, opal_project_name_allowed, resource_name};
pub use publish::{DatabaseLocation, OpalPublication, OpalPublishRequest, PgTable, ReadOnlyRole};
pub use settings::OpalSettings;
