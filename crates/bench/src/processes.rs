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
        result_cache_mib: u64,
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
        command.args(["--result-cache-mib", &result_cache_mib.to_string()]);
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

    /// CPU seconds the process has used so far, user and system, all its threads.
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        Ok(ProcStat::read(&self.pid().to_string())?.cpu_s)
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

/// What `/proc/<pid>/stat` says of a process's CPU, in Linux's fixed 100 ticks a second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcStat {
    /// The parent's pid (field 4).
    pub(crate) ppid: u32,
    /// User and system seconds of the process itself, all its threads (fields 14 and 15).
    pub(crate) cpu_s: f64,
    /// User and system seconds of its children that exited and were waited for (16 and 17).
    pub(crate) reaped_children_s: f64,
}

impl ProcStat {
    /// Reads `/proc/<pid>/stat` (`pid` may be `self`).
    pub(crate) fn read(pid: &str) -> Result<ProcStat> {
        let path = format!("/proc/{pid}/stat");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        let fields: Vec<&str> = text
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // Field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        match (field(4), field(14), field(15), field(16), field(17)) {
            (Some(ppid), Some(user), Some(system), Some(c_user), Some(c_system)) => Ok(ProcStat {
                ppid: u32::try_from(ppid)?,
                cpu_s: (user + system) as f64 / 100.0,
                reaped_children_s: (c_user + c_system) as f64 / 100.0,
            }),
            _ => bail!("no ppid/utime/stime/cutime/cstime in {path}"),
        }
    }
}

/// CPU seconds of the process `root` and every child of it, living or exited (those it waited
/// for): e.g. a PostgreSQL server's postmaster, its background processes and every backend,
/// including those whose connection has closed since.
pub(crate) fn tree_cpu_seconds(root: u32) -> Result<f64> {
    let own = ProcStat::read(&root.to_string())?;
    let mut total = own.cpu_s + own.reaped_children_s;
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let name = entry?.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process may exit while the folder is read.
        if let Ok(stat) = ProcStat::read(pid)
            && stat.ppid == root
        {
            total += stat.cpu_s + stat.reaped_children_s;
        }
    }
    Ok(total)
}

/// CPU seconds every core of the machine has been busy so far (`/proc/stat`: all but idle and
/// iowait), whoever used them: set against the processes measured, what the rest of a shared
/// machine took meanwhile.
pub(crate) fn machine_busy_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let ticks: Vec<u64> = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = ticks[..] else {
        bail!("/proc/stat has no full `cpu` line");
    };
    Ok((user + nice + system + irq + softirq + steal) as f64 / 100.0)
}
