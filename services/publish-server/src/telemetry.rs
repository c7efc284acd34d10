//! Logging: human lines or JSON (`PUBLISH_LOG_FORMAT=json`), filtered by `RUST_LOG`.
//!
//! What never to log: secrets (API key, client secret, tokens), external result links and their
//! headers, row data. See `docs/LOGGING.md`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber. Logs go to stderr; stdout carries only the
/// `listening on http://ADDR` line.
pub fn init(settings: &Settings) -> Result<(), String> {
    let filter = EnvFilter::try_new(&settings.log.filter).map_err(|e| format!("RUST_LOG: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match settings.log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
