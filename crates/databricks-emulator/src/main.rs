//! `databricks-emulator`: serves a data directory as a Databricks workspace on loopback, for
//! tests and benchmarks. Prints `listening on http://ADDR` first, then serves until SIGINT/SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use databricks_emulator::{Emulator, EmulatorConfig};

/// A local Databricks emulator (OAuth M2M, Unity Catalog tables, SQL Statement Execution).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Data directory laid out as <catalog>/<schema>/<table>.parquet (+ optional <table>.json).
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// OAuth client id to accept.
    #[arg(long, default_value = "emulator-client-id")]
    client_id: String,
    /// OAuth client secret to accept.
    #[arg(long, default_value = "emulator-client-secret")]
    client_secret: String,
    /// Rows per result chunk.
    #[arg(long, default_value_t = 500_000)]
    chunk_rows: usize,
    /// Lifetime of external links, in seconds.
    #[arg(long, default_value_t = 900)]
    link_ttl_secs: u64,
    /// How long statements stay PENDING then RUNNING, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pending_delay_ms: u64,
    /// A SQL warehouse id that exists (repeatable). Without any, every id exists.
    #[arg(long = "warehouse", value_name = "ID")]
    warehouses: Vec<String>,
    /// Send ARRAY/MAP/STRUCT columns of ARROW_STREAM results as JSON text (Utf8).
    #[arg(long = "complex-as-json")]
    complex_as_json: bool,
    /// Pace each chunk download to this many megabits per second (a stand-in for the network).
    #[arg(long = "bandwidth-mbit")]
    bandwidth_mbit: Option<u64>,
    /// The most bytes (estimated, uncompressed) one statement's result holds before it is
    /// truncated; Databricks' cap is 100 GiB.
    #[arg(long, default_value_t = 100 << 30)]
    result_byte_limit: u64,
    /// Keep up to this many MiB of chunk bodies in the query result cache and answer a repeated
    /// statement over unchanged data from it (0: off, the default).
    #[arg(long, default_value_t = 0)]
    result_cache_mib: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = EmulatorConfig::new(args.data);
    config.bind = args.bind;
    config.client_id = args.client_id;
    config.client_secret = args.client_secret;
    config.chunk_rows = args.chunk_rows.max(1);
    config.link_ttl = Duration::from_secs(args.link_ttl_secs);
    config.pending_delay = Duration::from_millis(args.pending_delay_ms);
    config.warehouses = (!args.warehouses.is_empty()).then_some(args.warehouses);
    config.complex_as_json_text = args.complex_as_json;
    config.download_bandwidth = args.bandwidth_mbit.map(|m| m * 1_000_000 / 8);
    config.result_byte_limit = args.result_byte_limit;
    config.result_cache_bytes = args.result_cache_mib << 20;
    let emulator = match Emulator::start(config).await {
        Ok(emulator) => emulator,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "databricks-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on {}", emulator.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    wait_for_signal().await;
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
