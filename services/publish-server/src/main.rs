//! The `publish-server` binary: configuration, then the API key, then the socket.

use std::io::Write;
use std::process::ExitCode;

use publish_server::config::Settings;
use publish_server::{app, build_state, telemetry};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("publish-server: cannot start: {reason}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run() -> Result<(), String> {
    let settings = Settings::from_environment().map_err(|e| e.to_string())?;
    let state = build_state(&settings)?;
    telemetry::init(&settings)?;
    if let Err(e) = std::fs::create_dir_all(&settings.working_dir) {
        tracing::warn!(path = %settings.working_dir.display(), error = %e, "cannot create the working directory; DuckDB will spill to its default location");
    }
    for d in settings.destinations.iter() {
        if let Err(e) = d.check_containers() {
            tracing::warn!(destination = %d.name(), error = %e, "destination containers missing: package and publish to it fail until its staging and production folders exist");
            continue;
        }
        log_volumes(d);
        if let Err(e) = d.sweep() {
            tracing::warn!(destination = %d.name(), error = %e, "start-up sweep of interrupted operations failed; each project is repaired by its next operation instead");
        }
    }
    let listener = tokio::net::TcpListener::bind(settings.bind_addr)
        .await
        .map_err(|e| format!("PUBLISH_BIND_ADDR {}: {e}", settings.bind_addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "publish-server listening");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// One line per destination: what its volumes guarantee, and whether several replicas may
/// share them.
fn log_volumes(d: &publish_storage::Destination) {
    match d.volume_facts() {
        (Ok(staging), Ok(production)) => {
            if staging.cross_node_locks {
                tracing::info!(destination = %d.name(), staging = %staging, production = %production, "volumes: project locks reach every node sharing the staging volume");
            } else {
                tracing::warn!(destination = %d.name(), staging = %staging, production = %production, "volumes: project locks hold on this node only; run one replica per destination");
            }
        }
        (staging, production) => {
            tracing::warn!(destination = %d.name(), staging = ?staging.err(), production = ?production.err(), "volumes: cannot inspect the containers' filesystems");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
