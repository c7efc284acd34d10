//! `opal-emulator`: serves an empty Opal on loopback, for tests. Prints
//! `listening on http(s)://ADDR` first, then serves until SIGINT/SIGTERM. Its `/emulator/…`
//! routes answer anyone: never expose it beyond loopback.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use opal_emulator::{OpalEmulator, OpalEmulatorConfig, SeedUser, TlsIdentity};

/// A local OBiBa Opal emulator (projects, users and groups, DataSHIELD and resource
/// permissions, resource references).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// The administrator's name.
    #[arg(long, default_value = "administrator")]
    admin_user: String,
    /// The administrator's password.
    #[arg(long)]
    admin_password: String,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A user that exists from the start, NAME:PASSWORD[:GROUP,GROUP…] (repeatable); group
    /// `admin` makes it an administrator.
    #[arg(long = "user", value_name = "NAME:PASSWORD[:GROUPS]")]
    users: Vec<String>,
    /// Switch off the login ban (three failed sign-ins of a name ban it for 300 s).
    #[arg(long)]
    no_login_ban: bool,
    /// Seconds a session may be old when it creates or changes a user; 0 switches it off.
    #[arg(long, default_value_t = 300)]
    reauth_timeout_secs: u64,
}

fn seed_user(spec: &str) -> Result<SeedUser, String> {
    let mut parts = spec.splitn(3, ':');
    let (Some(name), Some(password)) = (parts.next(), parts.next()) else {
        return Err(format!("--user wants NAME:PASSWORD[:GROUPS], got `{spec}`"));
    };
    let groups = parts
        .next()
        .map(|g| {
            g.split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(SeedUser {
        name: name.to_owned(),
        password: password.to_owned(),
        groups,
    })
}

fn config(args: Args) -> Result<OpalEmulatorConfig, String> {
    let mut config = OpalEmulatorConfig::new(args.admin_password);
    config.bind = args.bind;
    config.admin_user = args.admin_user;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        config.tls = Some(TlsIdentity {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        });
    }
    config.users = args
        .users
        .iter()
        .map(|u| seed_user(u))
        .collect::<Result<_, _>>()?;
    if args.no_login_ban {
        config.login_ban = None;
    }
    config.reauth_timeout =
        (args.reauth_timeout_secs > 0).then(|| Duration::from_secs(args.reauth_timeout_secs));
    Ok(config)
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
    let config = match config(args) {
        Ok(config) => config,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "opal-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let emulator = match OpalEmulator::start(config).await {
        Ok(emulator) => emulator,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "opal-emulator: {e}");
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
