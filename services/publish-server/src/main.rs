//! The `publish-server` binary: configuration, then the API key, then the socket.

use std::io::Write;
use std::process::ExitCode;

use publish_server::config::Settings;
use publish_server::{app, build_state, telemetry};

/// The allocator of the whole process: jemalloc, built unprefixed, so that DuckDB's C++
/// allocations use it as well as ours. DuckDB's own Linux builds (its CLI, its Python wheel,
/// which the reference service runs) ship jemalloc for the same reason; the bundled build this
/// binary links does not. With glibc's allocator much of the service's CPU while packaging went
/// to page faults: DuckDB calls `malloc_trim` whenever it nears its memory limit and glibc
/// returns freed chunk buffers between chunks, so the next ones fault in again
/// (crates/bench/README.md, "The allocator, reused inflate buffers, one download budget").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("publish-server: cannot start: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run());
    // Work stopped at shutdown may still hold a blocking thread (a copy being abandoned);
    // what it leaves is in a work folder that the next start sweeps, so do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    // A package stopped at shutdown leaves its writer thread closing its file; exiting under
    // it would tear DuckDB down while it works.
    if !publish_writers::wait_for_writers(std::time::Duration::from_secs(5)) {
        eprintln!("publish-server: a writer thread was still running at exit");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("publish-server: cannot start: {reason}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let settings = Settings::from_environment().map_err(|e| e.to_string())?;
    // Logging first, so that what building the state says (e.g. what TLS the PostgreSQL
    // destination verifies) is logged.
    telemetry::init(&settings)?;
    let state = build_state(&settings)?;
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
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
    let listener = tokio::net::TcpListener::bind(settings.http.bind_addr)
        .await
        .map_err(|e| format!("PUBLISH_BIND_ADDR {}: {e}", settings.http.bind_addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "publish-server listening");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }
    serve(listener, state, &settings).await;
    Ok(())
}

/// Accepts connections until SIGTERM/SIGINT, each served by hyper with a header-read timeout
/// (which also closes idle keep-alive connections); then stops accepting, lets running
/// operations finish for the grace period, stops the rest (they answer 503), and returns.
async fn serve(
    listener: tokio::net::TcpListener,
    state: publish_server::AppState,
    settings: &Settings,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let stopper = state.clone();
    let router = app(state);
    let graceful = GracefulShutdown::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(settings.http.header_read_timeout)
            .keep_alive(true);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        grace_s = settings.http.shutdown_grace.as_secs(),
        "no longer accepting; letting running operations finish"
    );
    let all_done = graceful.shutdown();
    tokio::pin!(all_done);
    tokio::select! {
        () = &mut all_done => tracing::info!("every connection finished"),
        () = tokio::time::sleep(settings.http.shutdown_grace) => {
            tracing::warn!("grace period over: stopping the operations still running");
            stopper.stop_operations();
            if tokio::time::timeout(std::time::Duration::from_secs(5), all_done).await.is_err() {
                tracing::warn!("some connections did not close; exiting anyway");
            }
        }
    }
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
