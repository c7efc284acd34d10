//! HTTP server of the CR8TOR Publish Service: HTTP, authentication and configuration only.
//! Every operation is delegated to [`publish_workflow::Workflow`]; this crate holds no business
//! logic. [`app`] builds the router so tests can drive it without a socket. The public
//! surface is what the binary, the demo and the tests need: [`config::Settings`],
//! [`build_state`], [`app`], [`AppState`] and [`telemetry::init`]; everything else is private.

mod auth;
pub mod config;
mod destinations;
mod error;
mod extract;
mod metrics;
mod routes;
mod sources;
mod state;
pub mod telemetry;

use std::sync::Arc;

use publish_types::SecretName;
use publish_workflow::{SecretStore, Workflow};
use publish_writers::{SinkOptions, Writers};

pub use routes::app;
pub use state::AppState;

use crate::auth::KeyFile;
use crate::config::Settings;
use crate::sources::Sources;

/// Name of the secret file holding the API key.
pub const API_KEY_SECRET: &str = "publishserviceapikey";

/// Builds the application state from settings: reads the API key (failing if it is missing or
/// empty) and wires the sources (Databricks, PostgreSQL) into the workflow.
pub fn build_state(settings: &Settings) -> Result<AppState, String> {
    let key_name = SecretName::parse(API_KEY_SECRET).map_err(|e| e.to_string())?;
    // Requests name secret files as credentials; the API key's is never one of them.
    let key =
        KeyFile::open(SecretStore::new(&settings.secrets_dir), key_name.clone()).map_err(|e| {
            format!("{e}; set SECRETS_MNT_PATH to the folder holding `{API_KEY_SECRET}`")
        })?;
    let secrets = SecretStore::new(&settings.secrets_dir).reserving([key_name]);
    let retries = settings.source.retries.clone();
    let sources = Sources {
        databricks: settings.source.clone(),
        sql: settings.sql.clone(),
    };
    let database = destinations::database(settings, &secrets)?;
    let workflow = Workflow::new(
        settings.destinations.clone(),
        secrets,
        settings.allowed_hosts.clone(),
        Arc::new(sources),
        Arc::new(Writers::new(sink_options(settings)?)),
        settings.workflow.clone(),
    )
    .with_database(database);
    let workflow = Arc::new(workflow);
    let operations = Arc::new(tokio::sync::Semaphore::new(
        settings.http.max_concurrent_operations,
    ));
    let metrics = metrics::Metrics::new(
        Arc::clone(&workflow),
        Arc::clone(&operations),
        settings.http.max_concurrent_operations,
        retries,
    );
    Ok(AppState {
        workflow,
        api_key: Arc::new(key),
        operations,
        stop: Arc::new(tokio::sync::watch::Sender::new(false)),
        metrics: Arc::new(metrics),
        operation_timeout: settings.http.operation_timeout,
        max_body_bytes: settings.http.max_body_bytes,
    })
}

/// The sink settings: one DuckDB instance for all packages of this process, so that
/// `PUBLISH_DUCKDB_MEMORY_LIMIT` and `PUBLISH_DUCKDB_THREADS` bound them together, spilling
/// under the working folder.
fn sink_options(settings: &Settings) -> Result<SinkOptions, String> {
    let mut options = settings.sink.clone();
    let shared = publish_writers::SharedDuckDb::open(&options).map_err(|e| {
        format!(
            "cannot start DuckDB with PUBLISH_DUCKDB_MEMORY_LIMIT / PUBLISH_DUCKDB_THREADS: {e}"
        )
    })?;
    options.shared_duckdb = Some(shared);
    Ok(options)
}
