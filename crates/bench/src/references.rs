//! The references the service is measured against, on the same data in the same run: DuckDB's
//! own ingest of the Parquet files (`CREATE TABLE … AS SELECT * FROM read_parquet(…)`, through
//! the same duckdb crate, into a fresh file), `cp` + `sha512sum` of the produced database, and
//! optionally the Python script a user would write instead of the service.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use duckdb::{Config, Connection};

use crate::dataset::{CATALOG, Dataset, SCHEMA};

/// DuckDB settings shared by the service and the reference, so both ingest under the same limits.
#[derive(Debug, Clone)]
pub(crate) struct DuckDbLimits {
    /// `memory_limit`, e.g. `1GB`.
    pub(crate) memory_limit: String,
    /// `threads`; `None` keeps DuckDB's default (the number of cores).
    pub(crate) threads: Option<i64>,
}

/// Times DuckDB's own ingest of every table of `dataset` into the fresh database `out`: open,
/// `CREATE TABLE … AS SELECT * FROM read_parquet(…)` per table, `CHECKPOINT`, close and fsync —
/// the same durability the service gives its file.
pub(crate) fn duckdb_ingest(
    dataset: &Dataset,
    out: &Path,
    limits: &DuckDbLimits,
) -> Result<Duration> {
    for path in [out.to_path_buf(), out.with_extension("duckdb.wal")] {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    let temp = out.with_extension("tmp");
    let started = Instant::now();
    let mut config = Config::default()
        // Nothing is ever downloaded: parquet is compiled in.
        .enable_autoload_extension(false)?
        .with("memory_limit", &limits.memory_limit)?
        .with("temp_directory", temp.to_string_lossy())?;
    if let Some(threads) = limits.threads {
        config = config.threads(threads)?;
    }
    let conn = Connection::open_with_flags(out, config)
        .with_context(|| format!("opening {}", out.display()))?;
    let mut sql = format!("CREATE SCHEMA {SCHEMA};\n");
    for table in &dataset.tables {
        sql.push_str(&format!(
            "CREATE TABLE {SCHEMA}.{} AS SELECT * FROM read_parquet('{}');\n",
            table.name,
            table.parquet.display().to_string().replace('\'', "''")
        ));
    }
    sql.push_str("CHECKPOINT;\n");
    conn.execute_batch(&sql)
        .or_else(|_| {
            // Older builds want the statically linked extension loaded by name.
            conn.execute_batch("LOAD parquet;")?;
            conn.execute_batch(&sql)
        })
        .context("DuckDB's own ingest")?;
    conn.close().map_err(|(_, e)| e)?;
    fs::File::open(out)?.sync_all()?;
    let elapsed = started.elapsed();
    let _ = fs::remove_dir_all(&temp);
    Ok(elapsed)
}

/// Writes every dirty page of every filesystem back (`sync`), untimed: what is left of an
/// earlier step would otherwise be written in the next timed step's fsync (on ext4 one file's
/// fsync commits the journal, and with it the data of every file written before).
pub(crate) fn settle_disk() -> Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

/// The `cp` + `sha512sum` reference for one file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyAndHash {
    /// `cp SRC DST`.
    pub(crate) cp: Duration,
    /// `sync DST` (fsync of the copy), which publish also does; reported apart.
    pub(crate) sync: Duration,
    /// `sha512sum DST`.
    pub(crate) sha512sum: Duration,
}

/// Times `cp src dst`, `sync dst` and `sha512sum dst` as external commands; returns the times
/// and the hex digest. `dst` is removed afterwards.
pub(crate) fn cp_and_sha512sum(src: &Path, dst: &Path) -> Result<(CopyAndHash, String)> {
    let _ = fs::remove_file(dst);
    let cp = time(Command::new("cp").arg(src).arg(dst))?.0;
    let sync = time(Command::new("sync").arg(dst))?.0;
    let (sha512sum, out) = time(Command::new("sha512sum").arg(dst))?;
    fs::remove_file(dst).with_context(|| format!("removing {}", dst.display()))?;
    let digest = out
        .split_whitespace()
        .next()
        .context("sha512sum printed nothing")?
        .to_owned();
    Ok((
        CopyAndHash {
            cp,
            sync,
            sha512sum,
        },
        digest,
    ))
}

fn time(command: &mut Command) -> Result<(Duration, String)> {
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// Row counts of every table of `dataset` in the database `db`, opened read-only: a check that
/// the published file holds what was asked for.
pub(crate) fn published_rows(db: &Path, dataset: &Dataset) -> Result<Vec<u64>> {
    let config = Config::default()
        .enable_autoload_extension(false)?
        .access_mode(duckdb::AccessMode::ReadOnly)?;
    let conn = Connection::open_with_flags(db, config)
        .with_context(|| format!("opening {}", db.display()))?;
    dataset
        .tables
        .iter()
        .map(|t| {
            let n: i64 = conn.query_row(
                &format!("SELECT count(*) FROM {SCHEMA}.{}", t.name),
                [],
                |row| row.get(0),
            )?;
            Ok(n as u64)
        })
        .collect()
}

/// DuckDB's floor for an Arrow-fed ingest, as `crates/bench/reference/arrow_to_duckdb.py`
/// measured it: every table already in memory as Arrow, handed over in whole row groups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrowFloor {
    /// Wall seconds from opening the database to closing it.
    pub(crate) seconds: f64,
    /// CPU seconds of that part, all threads.
    pub(crate) cpu_s: f64,
}

/// The Python references of one run: the SDK script and DuckDB's floor, on the same data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PythonRuns {
    pub(crate) sdk: ScriptRun,
    pub(crate) floor: ArrowFloor,
}

/// The folder of the reference scripts, under the workspace root.
pub(crate) const REFERENCE_DIR: &str = "crates/bench/reference";
const SDK_SCRIPT: &str = "sdk_to_duckdb.py";
const FLOOR_SCRIPT: &str = "arrow_to_duckdb.py";

/// Runs `arrow_to_duckdb.py` (in `dir`) with `python` on every table of `dataset`, writing
/// `out`.
pub(crate) fn arrow_floor(
    python: &Path,
    dir: &Path,
    dataset: &Dataset,
    out: &Path,
) -> Result<ArrowFloor> {
    let script = dir.join(FLOOR_SCRIPT);
    let mut command = Command::new(python);
    command.arg(&script).arg("--out").arg(out);
    for table in &dataset.tables {
        command
            .arg("--table")
            .arg(format!("{}={}", table.name, table.parquet.display()));
    }
    let stdout = run_script(&mut command, &script, out)?;
    Ok(ArrowFloor {
        seconds: printed(&stdout, "seconds")?,
        cpu_s: printed(&stdout, "cpu_s")?,
    })
}

/// Runs a reference script that writes `out` (removed before and after); its stdout, or why
/// it failed.
fn run_script(command: &mut Command, script: &Path, out: &Path) -> Result<String> {
    let _ = fs::remove_file(out);
    let output = command
        .output()
        .with_context(|| format!("running {}", script.display()));
    let _ = fs::remove_file(out);
    let output = output?;
    if !output.status.success() {
        bail!(
            "the reference script {} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The number a reference script printed as `name=<value>` on its last line.
fn printed(stdout: &str, name: &str) -> Result<f64> {
    stdout
        .lines()
        .last()
        .and_then(|line| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("the reference script printed no {name}: {stdout}"))
}

/// What the reference script (`crates/bench/reference/sdk_to_duckdb.py`) measured of itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScriptRun {
    /// From creating the SDK client to closing the database, as the script timed it.
    pub(crate) seconds: f64,
    /// The script's peak RSS (`ru_maxrss`), bytes.
    pub(crate) peak_rss: u64,
    /// CPU seconds the script used (`ru_utime` + `ru_stime`, all its threads).
    pub(crate) cpu_s: f64,
    /// CPU seconds the emulator used while the script ran.
    pub(crate) emulator_cpu_s: f64,
    /// What the emulator counted while the script ran (bytes on the wire, chunks produced).
    pub(crate) emulator: Option<crate::api::EmulatorStats>,
}

/// Runs the script a user would write instead of the service — Databricks' Python SDK, three
/// parallel downloads, DuckDB's `CREATE TABLE … AS SELECT` over a RecordBatchReader — with
/// `python` (which must have `databricks-sdk`, `duckdb` and `pyarrow`; the script is
/// `sdk_to_duckdb.py` in `dir`) against the emulator, writing every table of `dataset` to `out`.
pub(crate) fn python_sdk_script(
    python: &Path,
    dir: &Path,
    emulator: &str,
    dataset: &Dataset,
    out: &Path,
) -> Result<ScriptRun> {
    let script = dir.join(SDK_SCRIPT);
    let mut command = Command::new(python);
    command
        .arg(&script)
        .args([
            "--host",
            emulator,
            "--warehouse",
            "8f3c2a1b9d4e7f60",
            "--out",
        ])
        .arg(out);
    for table in &dataset.tables {
        command.args(["--table", &format!("{CATALOG}.{SCHEMA}.{}", table.name)]);
    }
    let stdout = run_script(&mut command, &script, out)?;
    let field = |name: &str| printed(&stdout, name);
    Ok(ScriptRun {
        seconds: field("seconds")?,
        peak_rss: (field("peak_rss_kib")? * 1024.0) as u64,
        cpu_s: field("cpu_s")?,
        emulator_cpu_s: 0.0,
        emulator: None,
    })
}

#[cfg(test)]
mod tests {
    use super::printed;

    #[test]
    fn a_printed_number_is_read_from_the_last_line_only() {
        let stdout = "seconds=1.0 noise\nseconds=6.730 cpu_s=13.08\n";
        assert_eq!(printed(stdout, "seconds").unwrap(), 6.73);
        assert_eq!(printed(stdout, "cpu_s").unwrap(), 13.08);
        // a name that is a prefix of another's is not taken for it
        assert!(printed("cpu_seconds=2\n", "cpu_s").is_err());
        let missing = printed("seconds=1\npeak_rss_kib=abc\n", "peak_rss_kib").unwrap_err();
        assert!(format!("{missing:#}").contains("printed no peak_rss_kib"));
    }
}
