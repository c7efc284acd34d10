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
