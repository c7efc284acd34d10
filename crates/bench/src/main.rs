//! `publish-bench`: measures package and publish of the CR8TOR Publish Service against DuckDB's
//! own ingest and `cp` + `sha512sum`, side by side in one run (issue 4). A report, not a test:
//! it exits non-zero only when a request or a step fails, never on a number.
//!
//! ```text
//! cargo run --release -p publish-bench -- --rows 10000000
//! cargo run --release -p publish-bench -- --rows-list 1000000,10000000 --runs 3
//! cargo run --release -p publish-bench -- --destination postgresql --sql-rig DIR --rows 1000000
//! ```
//!
//! Glue only: `dataset` generates the tables, `processes` builds and runs the emulator and the
//! server, `layout` places staging and production, `api` sends the requests, `references`
//! times DuckDB, `cp` and `sha512sum`, `report` prints the table; `sql` is `--source
//! postgresql|mysql` (issue 13): the same tables from the SQL rig's servers;
//! `pg_destination` is `--destination postgresql` (issue 22): the tables packaged into the SQL
//! rig's PostgreSQL against PostgreSQL's own `COPY … FROM` a binary file.

mod api;
mod dataset;
mod layout;
mod pg_destination;
mod processes;
mod references;
mod report;
mod sql;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;

use crate::api::{Api, EmulatorStats};
use crate::dataset::Dataset;
use crate::layout::Layout;
use crate::processes::{Binaries, Service};
use crate::references::DuckDbLimits;
use crate::report::{Concurrency, Cpu, Run, SizeResult};

/// Benchmark of package (Databricks -> DuckDB) and publish (staging -> production).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Rows of each table (the wide and the narrow one).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Several sizes in one run, e.g. `1000000,10000000` (overrides --rows); the report adds
    /// the ratio of the server's peak RSS between the first and the last.
    #[arg(long, value_delimiter = ',')]
    rows_list: Vec<u64>,
    /// Measured runs per size (a fresh server each); the report shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 20_250_205)]
    seed: u64,
    /// How the generated values are drawn: `clinical` (shaped like a clinical warehouse:
    /// vocabularies with skewed frequencies, ranges, templated notes; result chunks compress as
    /// real ones do) or `random` (the near-random values of the earlier reports).
    #[arg(long, value_enum, default_value_t = dataset::Shape::Clinical)]
    data: dataset::Shape,
    /// Rows per result chunk; by default about --chunk-mib of Arrow of the wide table.
    #[arg(long)]
    chunk_rows: Option<u64>,
    /// Target chunk size in MiB of Arrow data, as Databricks' own chunks are ~20-30 MB.
    #[arg(long, default_value_t = 24)]
    chunk_mib: u64,
    /// Packages of different projects for the concurrency check (0 skips it).
    #[arg(long, default_value_t = 4)]
    concurrent: usize,
    /// Rows per table for the concurrency check; by default the largest size.
    #[arg(long)]
    concurrent_rows: Option<u64>,
    /// Skip the check of what a project's second dataset costs (issue 8), run at the largest
    /// size: the narrow table packaged as a second dataset beside the wide one, against the
    /// narrow table packaged alone.
    #[arg(long)]
    no_datasets_check: bool,
    /// Pace every chunk download of the emulator to this many megabits per second, a stand-in
    /// for the network between the warehouse's storage and the service (issue 11).
    #[arg(long)]
    bandwidth_mbit: Option<u64>,
    /// At the largest size, also package both tables with LZ4 results on and off and report
    /// time and bytes on the wire of each (issue 11); best with --bandwidth-mbit.
    #[arg(long)]
    lz4_check: bool,
    /// At the largest size, also package both tables from an emulator whose result cap makes
    /// the wide table about this many times larger than one result, so that it is read in parts
    /// (docs/DATABRICKS-WIRE.md §6.4), and report that against the same tables read whole
    /// (issue 11). 0 skips it. A data file (a row group of 128 Ki rows here) larger than the cap
    /// cannot be split and fails the package, so keep N well below rows / 131072.
    #[arg(long, default_value_t = 0)]
    split_check: u64,
    /// MiB of chunk bodies the emulator keeps in its query result cache (docs/DATABRICKS-WIRE.md
    /// §6.6), as Databricks SQL answers a repeated query from its result cache: each size is
    /// first run once untimed (the service and the scripts), so that in the measured runs the
    /// emulator only sends stored bytes and its encoding and LZ4 work — the warehouse's, not the
    /// client's — is not charged to either side. 0: off, every chunk produced during the run.
    #[arg(long, default_value_t = 8192)]
    emulator_cache_mib: u64,
    /// A Python interpreter with `databricks-sdk`, `duckdb` and `pyarrow` (e.g. a venv's
    /// `bin/python`): each measured run also runs the script a user would write instead of the
    /// service (`crates/bench/reference/sdk_to_duckdb.py`) against the same emulator, then
    /// DuckDB's floor for any Arrow-fed writer (`arrow_to_duckdb.py`: the same tables from
    /// memory), and the report sets the service's package time, peak RSS and CPU against them
    /// (issue 11).
    #[arg(long, value_name = "PYTHON")]
    python_reference: Option<PathBuf>,
    /// Where the tables are read from: `databricks` (the emulator), `postgresql` or `mysql`
    /// (the SQL rig's PostgreSQL or MariaDB: `tools/sql-servers up DIR`, then --sql-rig DIR),
    /// for the report of issue 13 (package against the source's own dump and DuckDB's ingest).
    #[arg(long, value_enum, default_value_t = SourceArg::Databricks)]
    source: SourceArg,
    /// Where the tables are written: `duckdb` (the filestore destination: package and
    /// publish), or `postgresql` (issue 22: packaged from the emulator into the SQL rig's
    /// PostgreSQL — `tools/sql-servers up DIR`, then --sql-rig DIR — in a database and writer
    /// and reader roles made for the run and dropped afterwards, against PostgreSQL's own
    /// `COPY … FROM` of the same rows from a binary file; with --source databricks only).
    #[arg(long, value_enum, default_value_t = DestinationArg::Duckdb)]
    destination: DestinationArg,
    /// The SQL rig's folder for --source postgresql|mysql and --destination postgresql; by
    /// default $PUBLISH_TEST_SQL_RIG.
    #[arg(long, value_name = "DIR")]
    sql_rig: Option<PathBuf>,
    /// Where datasets, logs and the destination go; by default `<target dir>/publish-bench`.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Cargo profile the server and the emulator are built with.
    #[arg(long, default_value = "release")]
    profile: String,
    /// Keep staging on the same disk as production, even if /dev/shm has room.
    #[arg(long)]
    no_shm: bool,
    /// Extra server environment, `KEY=VALUE` (repeatable), e.g.
    /// `PUBLISH_DUCKDB_MEMORY_LIMIT=512MB`; DuckDB limits apply to the reference ingest too.
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    server_env: Vec<String>,
}

/// Where the benchmark reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SourceArg {
    /// The Databricks emulator.
    Databricks,
    /// A PostgreSQL server (the SQL rig).
    Postgresql,
    /// A MariaDB server (the SQL rig).
    Mysql,
}

/// Where the benchmark writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DestinationArg {
    /// A DuckDB file on the filestore destination, then published.
    Duckdb,
    /// A PostgreSQL database (the SQL rig).
    Postgresql,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("publish-bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("publish-bench: some concurrent package failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("publish-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything one size's runs share.
struct Setup<'a> {
    bins: &'a Binaries,
    /// The interpreter and the folder of the Python references, if they run.
    python: Option<(PathBuf, PathBuf)>,
    fixtures: PathBuf,
    logs: PathBuf,
    server_env: Vec<(String, String)>,
    limits: DuckDbLimits,
}

/// Runs the whole bench; `Ok(false)` when the concurrency check had a failed request.
async fn bench(args: Args) -> Result<bool> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => default_work_dir()?,
    };
    let sizes = if args.rows_list.is_empty() {
        vec![args.rows]
    } else {
        args.rows_list.clone()
    };
    ensure!(sizes.iter().all(|&r| r > 0), "row counts must be positive");
    let mut server_env = args
        .server_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--server-env {kv:?} is not KEY=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let lookup = |key: &str| {
        server_env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    // The DuckDB limits both the server and the reference ingest run under, passed to the
    // server explicitly rather than assumed to be its defaults. 256MB is the server's default.
    let threads = match lookup("PUBLISH_DUCKDB_THREADS") {
        None => None,
        Some(t) => Some(
            t.parse()
                .with_context(|| format!("PUBLISH_DUCKDB_THREADS={t:?} is not a number"))?,
        ),
    };
    let limits = DuckDbLimits {
        memory_limit: lookup("PUBLISH_DUCKDB_MEMORY_LIMIT").unwrap_or_else(|| "256MB".into()),
        threads,
    };
    server_env.push((
        "PUBLISH_DUCKDB_MEMORY_LIMIT".into(),
        limits.memory_limit.clone(),
    ));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    let bins = processes::build(&root, &args.profile)?;
    let setup = Setup {
        bins: &bins,
        python: args
            .python_reference
            .clone()
            .map(|python| (python, root.join(references::REFERENCE_DIR))),
        fixtures: root.join("fixtures/requests"),
        logs,
        server_env,
        limits,
    };

    let engine = match args.source {
        SourceArg::Databricks => None,
        SourceArg::Postgresql => Some(sql::Engine::Postgresql),
        SourceArg::Mysql => Some(sql::Engine::Mysql),
    };
    if args.destination == DestinationArg::Postgresql {
        ensure!(
            engine.is_none(),
            "--destination postgresql reads from the Databricks emulator: drop --source"
        );
        let rig = sql::SqlRig::open(
            &sql::rig_dir(args.sql_rig.as_ref())?,
            sql::Engine::Postgresql,
        )?;
        return pg_destination_bench(&setup, &rig, &work, &sizes, &args).await;
    }
    if let Some(engine) = engine {
        let rig = sql::SqlRig::open(&sql::rig_dir(args.sql_rig.as_ref())?, engine)?;
        return sql_bench(&setup, &rig, &work, &sizes, &args).await;
    }

    let mut results = Vec::new();
    let mut shm = false;
    let mut all_ok = true;
    let mut concurrency = None;
    let mut datasets = None;
    let mut lz4_runs = Vec::new();
    let mut split_runs = Vec::new();
    let concurrent_rows = args
        .concurrent_rows
        .unwrap_or_else(|| sizes.iter().copied().max().unwrap_or(args.rows));
    let mut all_sizes = sizes.clone();
    if args.concurrent > 0 && !all_sizes.contains(&concurrent_rows) {
        all_sizes.push(concurrent_rows);
    }
    for &rows in &all_sizes {
        let dataset = dataset::prepare(&work.join("datasets"), args.data, rows, args.seed)?;
        let chunk_rows = chunk_rows(&args, &dataset);
        // Room for the staged databases (at most one per concurrent package) and the reference.
        let need = dataset.parquet_bytes() * 3 * (args.concurrent.max(1) as u64 + 1) + (1 << 30);
        let layout = Layout::create(&work, !args.no_shm, need)?;
        shm = layout.staging_on_shm();
        eprintln!("layout: {}", layout.describe());
        let emulator = Service::emulator(
            &bins,
            &dataset.dir,
            chunk_rows,
            args.bandwidth_mbit,
            None,
            args.emulator_cache_mib,
            &setup.logs.join(format!("emulator-{rows}.log")),
        )?;
        eprintln!(
            "emulator: {} (pid {}, {chunk_rows} rows per chunk)",
            emulator.url,
            emulator.pid()
        );
        if sizes.contains(&rows) {
            if args.emulator_cache_mib > 0 {
                eprintln!("warm-up at {rows} rows (untimed): fills the emulator's result cache");
                measure(&setup, &layout, &emulator, &dataset, 0).await?;
            }
            let mut runs = Vec::new();
            for run in 1..=args.runs.max(1) {
                runs.push(measure(&setup, &layout, &emulator, &dataset, run).await?);
            }
            results.push(SizeResult {
                rows_per_table: rows,
                tables: dataset.tables.len(),
                chunk_rows,
                parquet_bytes: dataset.parquet_bytes(),
                runs,
            });
        }
        if args.concurrent > 0 && rows == concurrent_rows {
            let c = concurrent(&setup, &layout, &emulator, &dataset, args.concurrent).await?;
            all_ok = c.all_succeeded;
            concurrency = Some(c);
        }
        if !args.no_datasets_check && Some(&rows) == sizes.iter().max() {
            datasets = Some(second_dataset(&setup, &layout, &emulator, &dataset).await?);
        }
        if args.split_check > 0 && Some(&rows) == sizes.iter().max() {
            split_runs =
                split_check(&setup, &layout, &emulator, &dataset, &args, chunk_rows).await?;
        }
        if args.lz4_check && Some(&rows) == sizes.iter().max() {
            for lz4 in [true, false] {
                lz4_runs.push(lz4_run(&setup, &layout, &emulator, &dataset, lz4, &args).await?);
            }
        }
    }
    print!("{}", report::render(&results, concurrency.as_ref(), shm));
    if !split_runs.is_empty() {
        print!("{}", report::render_split(&split_runs));
    }
    if let Some(d) = &datasets {
        print!("{}", report::render_datasets(d));
    }
    if !lz4_runs.is_empty() {
        print!("{}", report::render_lz4(&lz4_runs));
    }
    eprintln!("logs: {}", setup.logs.display());
    Ok(all_ok)
}

/// Rows per result chunk: `--chunk-rows`, else about `--chunk-mib` of the wide table's Arrow.
fn chunk_rows(args: &Args, dataset: &Dataset) -> u64 {
    let rows = args.chunk_rows.unwrap_or_else(|| {
        ((args.chunk_mib << 20) as f64 / dataset.wide().arrow_bytes_per_row).round() as u64
    });
    rows.max(1)
}

/// `--destination postgresql` (issue 22): per size, an emulator; per run, a fresh server
/// packaging both tables into the run's PostgreSQL database (the answer and the rows checked),
/// then PostgreSQL's own loads of the same rows from binary files written once per size from
/// the service's tables (`pg_destination`).
async fn pg_destination_bench(
    setup: &Setup<'_>,
    rig: &sql::SqlRig,
    work: &Path,
    sizes: &[u64],
    args: &Args,
) -> Result<bool> {
    let db = pg_destination::BenchDatabase::create(rig)?;
    eprintln!("postgresql: database {} and its roles made", db.name);
    let mut results = Vec::new();
    for &rows in sizes {
        let dataset = dataset::prepare(&work.join("datasets"), args.data, rows, args.seed)?;
        let chunk_rows = chunk_rows(args, &dataset);
        // Nothing is staged: the layout only gives the server its mount and secrets.
        let layout = Layout::create(work, !args.no_shm, 1 << 20)?;
        let emulator = Service::emulator(
            setup.bins,
            &dataset.dir,
            chunk_rows,
            args.bandwidth_mbit,
            None,
            0,
            &setup.logs.join(format!("emulator-pgdest-{rows}.log")),
        )?;
        eprintln!(
            "emulator: {} (pid {}, {chunk_rows} rows per chunk)",
            emulator.url,
            emulator.pid()
        );
        let mut env = setup.server_env.clone();
        env.extend(db.server_env(layout.secrets())?);
        let files =
            pg_destination::CopyFiles::create(pg_destination::file_bytes_estimate(&dataset))?;
        let mut reference = None;
        let mut runs = Vec::new();
        for run in 1..=args.runs.max(1) {
            let project = format!("bench_pgdest_{rows}_run{run}");
            let schema = pg_destination::target_schema(&project);
            db.drop_schema(&schema)?;
            db.checkpoint()?;
            let mut server = Service::server(
                setup.bins,
                &layout.server_env(&env),
                &setup
                    .logs
                    .join(format!("server-pgdest-{rows}-run{run}.log")),
            )?;
            let base_rss = server.peak_rss()?;
            let api = Api::new(&server.url, &layout.api_key, &setup.fixtures)?;
            let body =
                pg_destination::package_body(&setup.fixtures, &project, &emulator.url, &dataset)?;
            let (emulator_before, pg_before, server_before, busy_before) = (
                emulator.cpu_seconds()?,
                db.cpu_seconds(),
                server.cpu_seconds()?,
                processes::machine_busy_seconds()?,
            );
            let (package, answer) = api
                .package_body(&body)
                .await
                .with_context(|| format!("package (server log {})", server.log().display()))?;
            server.check_alive()?;
            let emulator_s = emulator.cpu_seconds()? - emulator_before;
            let server_s = server.cpu_seconds()?;
            let package_cpu = pg_destination::Cpu::measured(
                server_s,
                server_s - server_before,
                pg_before.zip(db.cpu_seconds()).map(|(a, b)| b - a),
                processes::machine_busy_seconds()? - busy_before - emulator_s,
            );
            let peak_rss = server.peak_rss()?;
            drop(server);
            pg_destination::check_answer(&answer, &schema, &dataset)?;
            db.check_rows(&schema, &dataset)?;
            if reference.is_none() {
                reference = Some(db.prepare_reference(&schema, &dataset, &files)?);
            }
            db.drop_schema(&schema)?;
            let Some(reference) = &reference else {
                bail!("no reference files");
            };
            let copy = db.copy_from(reference, rows)?;
            let result = pg_destination::PgRun {
                package_s: package.as_secs_f64(),
                package_cpu,
                emulator_s,
                base_rss,
                peak_rss,
                copy,
            };
            eprintln!(
                "run {run} at {rows} rows: package {:.2} s, COPY FROM by \\copy {:.2} s + primary \
                 keys {:.2} s, server-side COPY FROM {:.2} s, server peak RSS {} MiB (base {} \
                 MiB), CPU s while packaging: server {:.1}, emulator {:.1}, PostgreSQL {}, the \
                 rest of the machine {}",
                result.package_s,
                copy.client_s,
                copy.keys_s,
                copy.server_side_s,
                peak_rss >> 20,
                base_rss >> 20,
                package_cpu.client_s,
                emulator_s,
                package_cpu
                    .postgresql_s
                    .map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}")),
                package_cpu
                    .others_s
                    .map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}")),
            );
            runs.push(result);
        }
        db.drop_reference()?;
        results.push(pg_destination::PgSize {
            rows,
            file_bytes: reference
                .as_ref()
                .map_or(0, pg_destination::Reference::bytes),
            runs,
        });
    }
    print!("{}", pg_destination::render(&results, &db));
    eprintln!("logs: {}", setup.logs.display());
    Ok(true)
}

/// `--source postgresql` / `mysql`: per size, the tables loaded into the rig's server once,
/// then per run DuckDB's own ingest, the source's own dump into /dev/null, and a fresh server
/// packaging both tables (rows checked in the staged file).
async fn sql_bench(
    setup: &Setup<'_>,
    rig: &sql::SqlRig,
    work: &Path,
    sizes: &[u64],
    args: &Args,
) -> Result<bool> {
    let mut results = Vec::new();
    for &rows in sizes {
        let dataset = dataset::prepare(&work.join("datasets"), args.data, rows, args.seed)?;
        let layout = Layout::create(work, !args.no_shm, dataset.parquet_bytes() * 4 + (1 << 30))?;
        eprintln!("layout: {}", layout.describe());
        let scratch = work.join("pg-load");
        std::fs::create_dir_all(&scratch)?;
        rig.load(&dataset, &scratch)?;
        let mut env = setup.server_env.clone();
        env.extend(rig.server_env(layout.secrets())?);
        let mut runs = Vec::new();
        for run in 1..=args.runs.max(1) {
            let ingest = references::duckdb_ingest(&dataset, &layout.ingest_file(), &setup.limits)?;
            let _ = std::fs::remove_file(layout.ingest_file());
            let dump = rig.dump(&dataset)?;
            let mut server = Service::server(
                setup.bins,
                &layout.server_env(&env),
                &setup.logs.join(format!("server-pg-{rows}-run{run}.log")),
            )?;
            let api = Api::new(&server.url, &layout.api_key, &setup.fixtures)?;
            let project = format!("bench-pg-{rows}-run{run}");
            layout.remove_project(&project)?;
            let body = rig.package_body(&setup.fixtures, &project, &dataset)?;
            let (package, _) = api
                .package_body(&body)
                .await
                .with_context(|| format!("package (server log {})", server.log().display()))?;
            server.check_alive()?;
            let peak_rss = server.peak_rss()?;
            drop(server);
            let counted = references::published_rows(&layout.staged_file(&project), &dataset)?;
            ensure!(
                counted.iter().all(|&n| n == rows),
                "the staged database holds {counted:?} rows, expected {rows} per table"
            );
            layout.remove_project(&project)?;
            let result = sql::SqlRun {
                package_s: package.as_secs_f64(),
                dump_s: dump.as_secs_f64(),
                ingest_s: ingest.as_secs_f64(),
                peak_rss,
            };
            eprintln!(
                "run {run} at {rows} rows: package {:.2} s, the source's dump {:.2} s, DuckDB \
                 ingest {:.2} s, server peak RSS {} MiB",
                result.package_s,
                result.dump_s,
                result.ingest_s,
                peak_rss >> 20
            );
            runs.push(result);
        }
        results.push(sql::SqlSize { rows, runs });
    }
    print!("{}", sql::render(rig, &results, work));
    eprintln!("logs: {}", setup.logs.display());
    Ok(true)
}

/// One measured configuration: DuckDB's own ingest, then a fresh server packaging both tables,
/// `cp` + `sha512sum` of the staged file, the publish, and the server's peak RSS.
async fn measure(
    setup: &Setup<'_>,
    layout: &Layout,
    emulator: &Service,
    dataset: &Dataset,
    run: usize,
) -> Result<Run> {
    let rows = dataset.rows;
    let ingest = references::duckdb_ingest(dataset, &layout.ingest_file(), &setup.limits)?;
    let _ = std::fs::remove_file(layout.ingest_file());
    let python = match &setup.python {
        Some((python, dir)) => {
            let emulator_before = emulator.cpu_seconds()?;
            let counted_before = EmulatorStats::read(&emulator.url).await?;
            let mut sdk = references::python_sdk_script(
                python,
                dir,
                &emulator.url,
                dataset,
                &layout.ingest_file(),
            )?;
            sdk.emulator_cpu_s = emulator.cpu_seconds()? - emulator_before;
            sdk.emulator = Some(counted_before.until(EmulatorStats::read(&emulator.url).await?));
            let floor = references::arrow_floor(python, dir, dataset, &layout.ingest_file())?;
            Some(references::PythonRuns { sdk, floor })
        }
        None => None,
    };

    let mut server = Service::server(
        setup.bins,
        &layout.server_env(&setup.server_env),
        &setup.logs.join(format!("server-{rows}-run{run}.log")),
    )?;
    let api = Api::new(&server.url, &layout.api_key, &setup.fixtures)?;
    let project = format!("bench-{rows}-run{run}");
    layout.remove_project(&project)?;
    let emulator_before = emulator.cpu_seconds()?;
    let counted_before = EmulatorStats::read(&emulator.url).await?;
    let package = api
        .package(&project, &emulator.url, dataset)
        .await
        .with_context(|| format!("package (server log {})", server.log().display()))?;
    server.check_alive()?;
    let cpu = Cpu {
        server_s: server.cpu_seconds()?,
        emulator_s: emulator.cpu_seconds()? - emulator_before,
    };
    let served = counted_before.until(EmulatorStats::read(&emulator.url).await?);
    let staged = layout.staged_file(&project);
    // Each side starts on a settled disk, so neither pays for the other's write-back (the
    // scripts' and the copy's files, their removal) in its own fsync.
    references::settle_disk()?;
    let (refs, digest) = references::cp_and_sha512sum(&staged, &layout.copy_target())?;
    references::settle_disk()?;
    let (publish, files) = api
        .publish(&project)
        .await
        .with_context(|| format!("publish (server log {})", server.log().display()))?;
    let peak_rss = server.peak_rss()?;
    drop(server);

    let [file] = files.as_slice() else {
        bail!("publish returned {} files, expected 1", files.len());
    };
    ensure!(
        file.file_path == "data/outputs/database.duckdb",
        "unexpected file {}",
        file.file_path
    );
    ensure!(
        file.hash_value == digest,
        "publish reported SHA-512 {} but sha512sum of the staged file says {digest}",
        file.hash_value
    );
    let counted = references::published_rows(&layout.published_file(&project), dataset)?;
    ensure!(
        counted.iter().all(|&n| n == rows),
        "the published database holds {counted:?} rows, expected {rows} per table"
    );
    layout.remove_project(&project)?;
    let result = Run {
        package_s: package.as_secs_f64(),
        publish_s: publish.as_secs_f64(),
        ingest_s: ingest.as_secs_f64(),
        refs,
        peak_rss,
        bytes: file.total_bytes,
        cpu,
        emulator: served,
        python,
    };
    eprintln!(
        "run {run} at {rows} rows: package {:.2} s (DuckDB ingest {:.2} s), publish {:.2} s \
         (cp {:.2} + sync {:.2} + sha512sum {:.2} s), {} bytes, server peak RSS {} MiB, CPU s \
         while packaging: server {:.2}, emulator {:.2}; {} bytes on the wire, {} chunks produced \
         by the emulator",
        result.package_s,
        result.ingest_s,
        result.publish_s,
        refs.cp.as_secs_f64(),
        refs.sync.as_secs_f64(),
        refs.sha512sum.as_secs_f64(),
        result.bytes,
        peak_rss >> 20,
        cpu.server_s,
        cpu.emulator_s,
        served.download_bytes,
        served.chunks_produced,
    );
    if let Some(references::PythonRuns { sdk, floor }) = &result.python {
        eprintln!(
            "run {run} at {rows} rows: the Python SDK script {:.2} s, peak RSS {} MiB, CPU s: \
             script {:.2}, emulator {:.2}",
            sdk.seconds,
            sdk.peak_rss >> 20,
            sdk.cpu_s,
            sdk.emulator_cpu_s,
        );
        eprintln!(
            "run {run} at {rows} rows: DuckDB from Arrow in memory {:.2} s, CPU s {:.2}",
            floor.seconds, floor.cpu_s,
        );
    }
    Ok(result)
}

/// The same `n` packages (different projects), one after another on a fresh server, then all
/// started together on another fresh server.
async fn concurrent(
    setup: &Setup<'_>,
    layout: &Layout,
    emulator: &Service,
    dataset: &Dataset,
    n: usize,
) -> Result<Concurrency> {
    let projects: Vec<String> = (1..=n).map(|i| format!("bench-concurrent-{i}")).collect();
    let start_server = |label: &str| {
        Service::server(
            setup.bins,
            &layout.server_env(&setup.server_env),
            &setup
                .logs
                .join(format!("server-{}-{label}.log", dataset.rows)),
        )
    };
    let mut all_succeeded = true;

    let server = start_server("sequential")?;
    let api = Api::new(&server.url, &layout.api_key, &setup.fixtures)?;
    let started = Instant::now();
    let mut sequential_ok = true;
    for project in &projects {
        layout.remove_project(project)?;
        if let Err(e) = api.package(project, &emulator.url, dataset).await {
            eprintln!("sequential package {project} failed: {e:#}");
            sequential_ok = false;
        }
    }
    let sequential_s = sequential_ok.then(|| started.elapsed().as_secs_f64());
    all_succeeded &= sequential_ok;
    drop(server);
    for project in &projects {
        layout.remove_project(project)?;
    }

    let server = start_server("concurrent")?;
    let api = Api::new(&server.url, &layout.api_key, &setup.fixtures)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for project in projects.clone() {
        let (api, url, dataset) = (api.clone(), emulator.url.clone(), dataset.clone());
        tasks.spawn(async move {
            let result = api.package(&project, &url, &dataset).await;
            (project, result)
        });
    }
    let mut concurrent_ok = true;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(_))) => {}
            Ok((project, Err(e))) => {
                eprintln!("concurrent package {project} failed: {e:#}");
                concurrent_ok = false;
            }
            Err(e) => {
                eprintln!("a concurrent package task failed: {e}");
                concurrent_ok = false;
            }
        }
    }
    let concurrent_s = concurrent_ok.then(|| started.elapsed().as_secs_f64());
    all_succeeded &= concurrent_ok;
    let concurrent_peak_rss = server.peak_rss()?;
    drop(server);
    for project in &projects {
        layout.remove_project(project)?;
    }
    Ok(Concurrency {
        packages: n,
        rows_per_table: dataset.rows,
        sequential_s,
        concurrent_s,
        concurrent_peak_rss,
        all_succeeded,
    })
}

/// What a project's second dataset costs: on one fresh server, the narrow table packaged alone
/// (project A), then the wide table as dataset 1 and the narrow one as dataset 2 of project B,
/// whose package must keep dataset 1 (for DuckDB: copy the database holding it, checking its
/// digest, and hash the result). Both projects are published and checked.
async fn second_dataset(
    setup: &Setup<'_>,
    layout: &Layout,
    emulator: &Service,
    dataset: &Dataset,
) -> Result<report::Datasets> {
    let [wide, narrow] = dataset.tables.as_slice() else {
        bail!(
            "the bench dataset has {} tables, expected 2",
            dataset.tables.len()
        );
    };
    let mut server = Service::server(
        setup.bins,
        &layout.server_env(&setup.server_env),
        &setup
            .logs
            .join(format!("server-{}-datasets.log", dataset.rows)),
    )?;
    let api = Api::new(&server.url, &layout.api_key, &setup.fixtures)?;
    let (alone, pair) = ("bench-dataset-alone", "bench-dataset-pair");
    for project in [alone, pair] {
        layout.remove_project(project)?;
    }
    let alone_s = api
        .package_dataset(alone, &emulator.url, Some("narrow"), &[narrow.name])
        .await?;
    let first_s = api
        .package_dataset(pair, &emulator.url, Some("wide"), &[wide.name])
        .await?;
    let first_bytes = std::fs::metadata(layout.staged_file(pair))?.len();
    let second_s = api
        .package_dataset(pair, &emulator.url, Some("narrow"), &[narrow.name])
        .await?;
    let (_, files) = api.publish(pair).await?;
    let counted = references::published_rows(&layout.published_file(pair), dataset)?;
    ensure!(
        counted.iter().all(|&n| n == dataset.rows),
        "the two-dataset database holds {counted:?} rows, expected {} per table",
        dataset.rows
    );
    ensure!(files.len() == 1, "publish returned {} files", files.len());
    server.check_alive()?;
    drop(server);
    for project in [alone, pair] {
        layout.remove_project(project)?;
    }
    let result = report::Datasets {
        rows_per_table: dataset.rows,
        alone_s: alone_s.as_secs_f64(),
        first_s: first_s.as_secs_f64(),
        second_s: second_s.as_secs_f64(),
        first_bytes,
    };
    eprintln!(
        "datasets at {} rows: narrow alone {:.2} s; wide as dataset 1 {:.2} s ({} bytes); narrow \
         as dataset 2 {:.2} s",
        dataset.rows, result.alone_s, result.first_s, first_bytes, result.second_s
    );
    Ok(result)
}

/// One package of both tables by a fresh server with `extra_env`, measured as
/// [`report::Packaged`] says (the emulator's `/emulator/stats` read before and after).
async fn package_once(
    setup: &Setup<'_>,
    layout: &Layout,
    emulator: &Service,
    dataset: &Dataset,
    name: &str,
    extra_env: &[(&str, String)],
) -> Result<report::Packaged> {
    let mut env = setup.server_env.clone();
    env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let mut server = Service::server(
        setup.bins,
        &layout.server_env(&env),
        &setup
            .logs
            .join(format!("server-{}-{name}.log", dataset.rows)),
    )?;
    let api = Api::new(&server.url, &layout.api_key, &setup.fixtures)?;
    let project = format!("bench-{name}");
    layout.remove_project(&project)?;
    let tables: Vec<&str> = dataset.tables.iter().map(|t| t.name).collect();
    let before = EmulatorStats::read(&emulator.url).await?;
    let package = api
        .package_dataset(&project, &emulator.url, None, &tables)
        .await
        .with_context(|| format!("package {name} (server log {})", server.log().display()))?;
    let after = EmulatorStats::read(&emulator.url).await?;
    server.check_alive()?;
    let rss_mib = server.peak_rss()? >> 20;
    drop(server);
    layout.remove_project(&project)?;
    Ok(report::Packaged {
        package_s: package.as_secs_f64(),
        wire_bytes: after.download_bytes - before.download_bytes,
        statements: after.statements - before.statements,
        rss_mib,
    })
}

/// Both tables read whole, then from an emulator whose result cap is the wide table's Arrow
/// size divided by `--split-check`, so that the tables are read in parts; same bandwidth.
async fn split_check(
    setup: &Setup<'_>,
    layout: &Layout,
    emulator: &Service,
    dataset: &Dataset,
    args: &Args,
    chunk_rows: u64,
) -> Result<Vec<report::SplitRun>> {
    let wide_bytes = dataset.wide().arrow_bytes_per_row * dataset.rows as f64;
    let cap = (wide_bytes / args.split_check as f64) as u64;
    let capped = Service::emulator(
        setup.bins,
        &dataset.dir,
        chunk_rows,
        args.bandwidth_mbit,
        Some(cap),
        0,
        &setup
            .logs
            .join(format!("emulator-{}-capped.log", dataset.rows)),
    )?;
    let mut runs = Vec::new();
    for (name, emulator, cap) in [("whole", emulator, None), ("split", &capped, Some(cap))] {
        let p = package_once(setup, layout, emulator, dataset, name, &[]).await?;
        eprintln!(
            "{name} at {} rows: package {:.2} s, {} statements",
            dataset.rows, p.package_s, p.statements
        );
        runs.push(report::SplitRun {
            rows_per_table: dataset.rows,
            result_cap: cap,
            measured: p,
        });
    }
    Ok(runs)
}

/// Both tables packaged by a fresh server with LZ4 results on or off: the time, and the bytes
/// the emulator's downloads carried.
async fn lz4_run(
    setup: &Setup<'_>,
    layout: &Layout,
    emulator: &Service,
    dataset: &Dataset,
    lz4: bool,
    args: &Args,
) -> Result<report::Lz4Run> {
    let name = format!("lz4-{lz4}");
    let env = [("PUBLISH_DATABRICKS_LZ4", lz4.to_string())];
    if args.emulator_cache_mib > 0 {
        // Untimed: the emulator's result cache is filled for this compression setting.
        package_once(setup, layout, emulator, dataset, &name, &env).await?;
    }
    let p = package_once(setup, layout, emulator, dataset, &name, &env).await?;
    let result = report::Lz4Run {
        rows_per_table: dataset.rows,
        bandwidth_mbit: args.bandwidth_mbit,
        lz4,
        measured: p,
    };
    eprintln!(
        "lz4 {lz4} at {} rows: package {:.2} s, {} bytes on the wire",
        dataset.rows, result.measured.package_s, result.measured.wire_bytes
    );
    Ok(result)
}

/// `<target dir>/publish-bench`, found from this binary's own path (`<target>/<profile>/…`).
fn default_work_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("the bench binary is not inside a cargo target directory")?;
    Ok(target.join("publish-bench"))
}
