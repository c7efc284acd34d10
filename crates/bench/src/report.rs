//! The printed report: medians over the runs of each size, the reference times, the memory
//! ratio between sizes and the concurrency check. A report, not a test: nothing here fails on a
//! number.

use std::fmt::Write as _;

use crate::references::{CopyAndHash, PythonRuns};

/// One measured run: a fresh server, one package, one publish.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    /// Package request, wall seconds.
    pub(crate) package_s: f64,
    /// Publish request, wall seconds.
    pub(crate) publish_s: f64,
    /// DuckDB's own ingest of the same Parquet files, seconds.
    pub(crate) ingest_s: f64,
    /// `cp`, `sync`, `sha512sum` of the produced file.
    pub(crate) refs: CopyAndHash,
    /// The server's `VmHWM` after package and publish, bytes.
    pub(crate) peak_rss: u64,
    /// Bytes published (the database file).
    pub(crate) bytes: u64,
    /// CPU used while packaging.
    pub(crate) cpu: Cpu,
    /// What the emulator counted while packaging.
    pub(crate) emulator: crate::api::EmulatorStats,
    /// The Python references' runs on the same data (the SDK script, DuckDB's floor), if they
    /// ran.
    pub(crate) python: Option<PythonRuns>,
}

/// CPU seconds (user and system, all threads) used during one package.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu {
    /// By the server, from its start to the package's end (a fresh server per run).
    pub(crate) server_s: f64,
    /// By the emulator, during the package request.
    pub(crate) emulator_s: f64,
}

impl Run {
    fn cp_sha_s(&self) -> f64 {
        self.refs.cp.as_secs_f64() + self.refs.sha512sum.as_secs_f64()
    }
}

/// All runs at one size.
#[derive(Debug, Clone)]
pub(crate) struct SizeResult {
    /// Rows of every table.
    pub(crate) rows_per_table: u64,
    /// Tables packaged per request.
    pub(crate) tables: usize,
    /// Rows per result chunk the emulator served.
    pub(crate) chunk_rows: u64,
    /// Size of the source Parquet files.
    pub(crate) parquet_bytes: u64,
    /// The runs.
    pub(crate) runs: Vec<Run>,
}

/// The same packages run one after another, then all at once.
#[derive(Debug, Clone)]
pub(crate) struct Concurrency {
    /// How many packages (different projects).
    pub(crate) packages: usize,
    /// Rows per table.
    pub(crate) rows_per_table: u64,
    /// Wall seconds, one after another (`None` if one failed).
    pub(crate) sequential_s: Option<f64>,
    /// Wall seconds, all started together (`None` if one failed).
    pub(crate) concurrent_s: Option<f64>,
    /// Server peak RSS in the concurrent configuration, bytes.
    pub(crate) concurrent_peak_rss: u64,
    /// Every request succeeded.
    pub(crate) all_succeeded: bool,
}

/// Bytes the emulator sent to the SDK script (`NaN` if not counted).
fn script_wire(python: &PythonRuns) -> f64 {
    python
        .sdk
        .emulator
        .map_or(f64::NAN, |e| e.download_bytes as f64)
}

/// Median; for an even count the mean of the middle two.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(runs.iter().map(f).collect())
}

const MIB: f64 = (1 << 20) as f64;

/// Renders the whole report.
pub(crate) fn render(sizes: &[SizeResult], concurrency: Option<&Concurrency>, shm: bool) -> String {
    let mut out = String::new();
    let runs = sizes.first().map_or(0, |s| s.runs.len());
    let _ = writeln!(
        out,
        "\npublish-bench: medians of {runs} runs; package = both tables through the HTTP API into DuckDB; \
         publish = staging ({}) -> production (disk), copy path forced",
        if shm {
            "/dev/shm, another filesystem"
        } else {
            "same disk"
        }
    );
    let _ = writeln!(
        out,
        "| rows (per table x tables) | bytes (database) | package s | rows/s | MB/s | server peak RSS MiB | publish s | package/ingest | publish/(cp+sha512sum) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for s in sizes {
        let package = med(&s.runs, |r| r.package_s);
        let bytes = med(&s.runs, |r| r.bytes as f64);
        let rows = (s.rows_per_table * s.tables as u64) as f64;
        let _ = writeln!(
            out,
            "| {} ({} x {}) | {:.0} | {:.2} | {:.0} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} |",
            rows,
            s.rows_per_table,
            s.tables,
            bytes,
            package,
            med(&s.runs, |r| rows / r.package_s),
            med(&s.runs, |r| r.bytes as f64 / 1e6 / r.package_s),
            med(&s.runs, |r| r.peak_rss as f64 / MIB),
            med(&s.runs, |r| r.publish_s),
            med(&s.runs, |r| r.package_s / r.ingest_s),
            med(&s.runs, |r| r.publish_s / r.cp_sha_s()),
        );
    }
    if sizes
        .iter()
        .any(|s| s.runs.iter().all(|r| r.python.is_some()))
    {
        let _ = writeln!(
            out,
            "\nthe Python SDK script (crates/bench/reference/sdk_to_duckdb.py; medians, same data, same run): | rows per table | script s | script peak RSS MiB | package s | server peak RSS MiB | package / script time | server / script peak RSS | CPU s: script + emulator | CPU s: server + emulator | DuckDB from Arrow in memory s (CPU s; arrow_to_duckdb.py) | server CPU / floor CPU | MB on the wire: script, service (LZ4 ratio) | chunks the emulator produced: script, service |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for s in sizes
            .iter()
            .filter(|s| s.runs.iter().all(|r| r.python.is_some()))
        {
            let python =
                |f: fn(&PythonRuns) -> f64| move |r: &Run| r.python.as_ref().map_or(f64::NAN, f);
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} + {:.1} | {:.1} + {:.1} | {:.2} ({:.1}) | {:.2} | {:.0}, {:.0} ({:.2}) | {:.0}, {:.0} |",
                s.rows_per_table,
                med(&s.runs, python(|x| x.sdk.seconds)),
                med(&s.runs, python(|x| x.sdk.peak_rss as f64 / MIB)),
                med(&s.runs, |r| r.package_s),
                med(&s.runs, |r| r.peak_rss as f64 / MIB),
                med(&s.runs, |r| r.package_s
                    / r.python.as_ref().map_or(f64::NAN, |x| x.sdk.seconds)),
                med(&s.runs, |r| r.peak_rss as f64
                    / r.python
                        .as_ref()
                        .map_or(f64::NAN, |x| x.sdk.peak_rss as f64)),
                med(&s.runs, python(|x| x.sdk.cpu_s)),
                med(&s.runs, python(|x| x.sdk.emulator_cpu_s)),
                med(&s.runs, |r| r.cpu.server_s),
                med(&s.runs, |r| r.cpu.emulator_s),
                med(&s.runs, python(|x| x.floor.seconds)),
                med(&s.runs, python(|x| x.floor.cpu_s)),
                med(&s.runs, |r| r.cpu.server_s
                    / r.python.as_ref().map_or(f64::NAN, |x| x.floor.cpu_s)),
                med(&s.runs, python(|x| script_wire(x) / 1e6)),
                med(&s.runs, |r| r.emulator.download_bytes as f64 / 1e6),
                med(&s.runs, |r| r.python.as_ref().map_or(f64::NAN, script_wire)
                    / r.emulator.download_bytes as f64),
                med(
                    &s.runs,
                    python(|x| x
                        .sdk
                        .emulator
                        .map_or(f64::NAN, |e| e.chunks_produced as f64))
                ),
                med(&s.runs, |r| r.emulator.chunks_produced as f64),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nreferences (medians, same data, same run): | rows per table | chunk rows | parquet MB | DuckDB ingest s | cp s | sync s | sha512sum s | publish/(cp+sync+sha512sum) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for s in sizes {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            s.rows_per_table,
            s.chunk_rows,
            s.parquet_bytes as f64 / 1e6,
            med(&s.runs, |r| r.ingest_s),
            med(&s.runs, |r| r.refs.cp.as_secs_f64()),
            med(&s.runs, |r| r.refs.sync.as_secs_f64()),
            med(&s.runs, |r| r.refs.sha512sum.as_secs_f64()),
            med(&s.runs, |r| r.publish_s
                / (r.cp_sha_s() + r.refs.sync.as_secs_f64())),
        );
    }
    if let (Some(small), Some(large)) = (sizes.first(), sizes.last())
        && sizes.len() > 1
    {
        let a = med(&small.runs, |r| r.peak_rss as f64 / MIB);
        let b = med(&large.runs, |r| r.peak_rss as f64 / MIB);
        let _ = writeln!(
            out,
            "\nserver peak RSS: {a:.0} MiB at {} rows, {b:.0} MiB at {} rows; ratio {:.2}",
            small.rows_per_table,
            large.rows_per_table,
            b / a
        );
    }
    if let Some(c) = concurrency {
        let show = |s: Option<f64>| s.map_or("failed".to_owned(), |s| format!("{s:.2} s"));
        let ratio = match (c.concurrent_s, c.sequential_s) {
            (Some(a), Some(b)) => format!("{:.2}", a / b),
            _ => "n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "\n{} packages of different projects ({} rows per table): sequential {}, concurrent {} \
             (concurrent/sequential {ratio}), concurrent server peak RSS {:.0} MiB, all succeeded: {}",
            c.packages,
            c.rows_per_table,
            show(c.sequential_s),
            show(c.concurrent_s),
            c.concurrent_peak_rss as f64 / MIB,
            if c.all_succeeded { "yes" } else { "NO" },
        );
    }
    out
}

/// What a project's second dataset cost (issue 8).
#[derive(Debug, Clone)]
pub(crate) struct Datasets {
    /// Rows of each table.
    pub(crate) rows_per_table: u64,
    /// The narrow table packaged alone into a fresh project.
    pub(crate) alone_s: f64,
    /// The wide table packaged as dataset 1.
    pub(crate) first_s: f64,
    /// The narrow table packaged as dataset 2 beside it.
    pub(crate) second_s: f64,
    /// Size of the database after dataset 1.
    pub(crate) first_bytes: u64,
}

/// The second-dataset table, in Markdown.
pub(crate) fn render_datasets(d: &Datasets) -> String {
    let mut out = String::new();
    out.push_str(
        "\n| rows per table | dataset 1 (wide) s | its database bytes | narrow alone s | \
         narrow as dataset 2 s | extra s | dataset 2 / alone |\n|---|---|---|---|---|---|---|\n",
    );
    out.push_str(&format!(
        "| {} | {:.2} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
        d.rows_per_table,
        d.first_s,
        d.first_bytes,
        d.alone_s,
        d.second_s,
        d.second_s - d.alone_s,
        d.second_s / d.alone_s.max(1e-9)
    ));
    out
}

/// One package of both tables with LZ4 results on or off (issue 11).
#[derive(Debug, Clone)]
pub(crate) struct Lz4Run {
    /// Rows of each table.
    pub(crate) rows_per_table: u64,
    /// The emulator's pace per download, if any.
    pub(crate) bandwidth_mbit: Option<u64>,
    /// Whether the server asked for LZ4 results.
    pub(crate) lz4: bool,
    /// The package.
    pub(crate) measured: Packaged,
}

/// One package of both tables by a fresh server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packaged {
    /// The package request, wall seconds.
    pub(crate) package_s: f64,
    /// Bytes the chunk downloads carried.
    pub(crate) wire_bytes: u64,
    /// Statements the server submitted.
    pub(crate) statements: u64,
    /// The server's peak RSS.
    pub(crate) rss_mib: u64,
}

/// The LZ4 table: each run, and on/off ratios of time and bytes.
pub(crate) fn render_lz4(runs: &[Lz4Run]) -> String {
    let mut out = String::from(
        "\n| rows per table | bandwidth per download | LZ4 | package s | bytes on the wire | server peak RSS MiB |\n|---|---|---|---|---|---|\n",
    );
    for r in runs {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {} |\n",
            r.rows_per_table,
            r.bandwidth_mbit
                .map_or_else(|| "uncapped".to_owned(), |m| format!("{m} Mbit/s")),
            if r.lz4 { "on" } else { "off" },
            r.measured.package_s,
            r.measured.wire_bytes,
            r.measured.rss_mib
        ));
    }
    if let (Some(on), Some(off)) = (runs.iter().find(|r| r.lz4), runs.iter().find(|r| !r.lz4)) {
        out.push_str(&format!(
            "\nLZ4 on / off: package time {:.2}, bytes on the wire {:.2}\n",
            on.measured.package_s / off.measured.package_s.max(1e-9),
            on.measured.wire_bytes as f64 / (off.measured.wire_bytes as f64).max(1.0)
        ));
    }
    out
}

/// One package of both tables read whole, or from an emulator whose result cap splits them
/// (issue 11).
#[derive(Debug, Clone)]
pub(crate) struct SplitRun {
    /// Rows of each table.
    pub(crate) rows_per_table: u64,
    /// The emulator's result cap, bytes; `None`: Databricks' 100 GiB (read whole).
    pub(crate) result_cap: Option<u64>,
    /// The package.
    pub(crate) measured: Packaged,
}

/// The split table: each run, and split / whole ratios.
pub(crate) fn render_split(runs: &[SplitRun]) -> String {
    let mut out = String::from(
        "\n| rows per table | result cap | statements | package s | bytes on the wire | server peak RSS MiB |\n|---|---|---|---|---|---|\n",
    );
    for r in runs {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {} |\n",
            r.rows_per_table,
            r.result_cap.map_or_else(
                || "100 GiB (whole)".to_owned(),
                |c| format!("{} MiB (parts)", c >> 20)
            ),
            r.measured.statements,
            r.measured.package_s,
            r.measured.wire_bytes,
            r.measured.rss_mib
        ));
    }
    if let (Some(split), Some(whole)) = (
        runs.iter().find(|r| r.result_cap.is_some()),
        runs.iter().find(|r| r.result_cap.is_none()),
    ) {
        out.push_str(&format!(
            "\nsplit / whole: package time {:.2}, server peak RSS {:.2}\n",
            split.measured.package_s / whole.measured.package_s.max(1e-9),
            split.measured.rss_mib as f64 / (whole.measured.rss_mib as f64).max(1.0)
        ));
    }
    out
}
