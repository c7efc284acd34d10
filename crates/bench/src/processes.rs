//! The processes under test: building `publish-server` and `databricks-emulator` with cargo,
//! starting each as a separate process on `127.0.0.1:0`, reading its peak RSS from `/proc`, and
//! stopping it (only the children this bench started, by their pid).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// The two binaries, as cargo built them.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub(crate) server: PathBuf,
    pub(crate) emulator: PathBuf,
}

/// Builds both binaries with `$CARGO build --release` (or `--profile <profile>`) in the
/// workspace at `root`, inheriting this process's environment (`CARGO_TARGET_DIR` included), and
/// returns their paths as cargo reports them.
pub(crate) fn build(root: &Path, profile: &str) -> Result<Binaries> {
    #[allow(clippy::disallowed_methods)] // a bench must call the cargo that runs it
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--profile", profile])
        .args(["-p", "publish-server", "-p", "databricks-emulator"])
        .args(["--bins", "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!("build: {command:?}");
    let mut child = command.spawn().context("starting cargo build")?;
    let mut found = BTreeMap::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] == "compiler-artifact"
                && let Some(executable) = message["executable"].as_str()
                && let Some(name) = message["target"]["name"].as_str()
            {
                found.insert(name.to_owned(), PathBuf::from(executable));
            }
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    let mut take = |name: &str| {
        found
            .remove(name)
            .with_context(|| format!("cargo build did not report the `{name}` binary"))
    };
    Ok(Binaries {
        server: take("publish-server")?,
        emulator: take("databricks-emulator")?,
    })
}

/// A child process serving HTTP, killed when dropped.
#[derive(Debug)]
pub(crate) struct Service {
    name: &'static str,
    child: Child,
    /// `http://ADDR` as printed by the process.
    pub(crate) url: String,
    log: PathBuf,
}

impl Service {
    /// Starts the emulator on `data` with `chunk_rows` rows per result chunk, each download
    /// paced to `bandwidth_mbit` when given, and results capped at `result_byte_limit` bytes
    /// when given (by default Databricks' 100 GiB).
    pub(crate) fn emulator(
        bins: &Binaries,
        data: &Path,
        chunk_rows: u64,
        bandwidth_mbit: Option<u64>,
        result_byte_limit: Option<u64>,
        log: &Path,
    ) -> Result<Service> {
        let mut command = Command::new(&bins.emulator);
        command
            .env_clear()
            .env("RUST_LOG", "warn")
            .arg("--data")
            .arg(data)
            .args(["--bind", "127.0.0.1:0"])
            .args(["--chunk-rows", &chunk_rows.to_string()]);
        if let Some(mbit) = bandwidth_mbit {
            command.args(["--bandwidth-mbit", &mbit.to_string()]);
        }
        if let Some(limit) = result_byte_limit {
            command.args(["--result-byte-limit", &limit.to_string()]);
        }
        Service::start("databricks-emulator", command, log)
    }

    /// Starts the publish server with exactly `env` as its environment.
    pub(crate) fn server(bins: &Binaries, env: &[(String, String)], log: &Path) -> Result<Service> {
        let mut command = Command::new(&bins.server);
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        Service::start("publish-server", command, log)
    }

    /// Spawns `command` with stderr (and the rest of stdout) going to `log`, and waits for its
    /// first stdout line, `listening on http://ADDR`.
    fn start(name: &'static str, mut command: Command, log: &Path) -> Result<Service> {
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file.try_clone()?)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first)?;
        let Some(url) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{name} did not start (first line {first:?}); its log {}:\n{}",
                log.display(),
                tail(log)
            );
        };
        // Keep draining stdout so the child can never block on a full pipe.
        let mut rest = log_file;
        std::thread::spawn(move || std::io::copy(&mut reader, &mut rest));
        Ok(Service {
            name,
            url: url.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far (`VmHWM`), in bytes.
    pub(crate) fn peak_rss(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let mut text = String::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .with_context(|| format!("reading {path}"))?;
        text.lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .with_context(|| format!("no VmHWM in {path}"))
    }

    /// CPU seconds the process has used so far, user and system, all its threads
    /// (`/proc/<pid>/stat` fields 14 and 15, in Linux's fixed 100 ticks a second).
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid());
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        let fields: Vec<&str> = text
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        // Fields 14 and 15 are the 12th and 13th after the name (field 3 is the first).
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => Ok((user + system) as f64 / 100.0),
            _ => bail!("no utime/stime in {path}"),
        }
    }

    /// Where its stderr went.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Fails if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log)
            );
        }
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Our own child, by pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log, for error messages.
pub(crate) fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
