//! `--destination postgresql` (issue 22): the service packages the synthetic tables from the
//! Databricks emulator into the SQL rig's PostgreSQL (binary `COPY … FROM STDIN`), and in the
//! same run PostgreSQL loads the same rows with its own `COPY … FROM` of a local file in binary
//! format, into fresh tables with the service's column types: by `psql`'s `\copy` as the writer
//! over TLS (the client sends the file, as the service sends its rows), and server-side from
//! the file as the superuser (no transfer at all). The primary keys the service adds after its
//! rows are timed apart on the reference side. The files are written once per size, untimed,
//! by `COPY (SELECT * FROM <the service's table>) TO STDOUT (FORMAT binary)`.
//!
//! Everything the run writes lives in a database and two roles (the writer, the read-only
//! role) made for it through the rig's superuser and dropped afterwards, also when it fails;
//! those of an earlier bench that was killed are dropped when the next one starts.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::api::START_TIME;
use crate::dataset::{CATALOG, Dataset, SCHEMA};
use crate::layout::shm_free_bytes;
use crate::processes::{ProcStat, machine_busy_seconds, tree_cpu_seconds};
use crate::report::median;
use crate::sql::SqlRig;

/// The rig's superuser when its `env` names none (`PG_ADMIN_USER`): `tools/sql-servers` creates
/// `postgres` with the rig's password, and the tests take it the same way.
const DEFAULT_ADMIN: &str = "postgres";
/// A run's database is this and the bench's pid; its roles add `_writer` and `_reader`.
const PREFIX: &str = "publish_bench_";
/// Empty tables made `LIKE` the service's, whose column types the reference tables take.
const TEMPLATE_SCHEMA: &str = "bench_copy_template";
/// Where the reference loads go.
const REFERENCE_SCHEMA: &str = "bench_copy_reference";
/// Opal's address as the server is told it: package never calls Opal, but the server refuses a
/// partial configuration of the destination.
const OPAL_URL: &str = "http://127.0.0.1:9";

/// The rig's PostgreSQL server, and the database and roles made for this run (dropped when
/// this is dropped).
pub(crate) struct BenchDatabase {
    host: String,
    port: String,
    ca: String,
    admin_user: String,
    admin_password: String,
    /// The database.
    pub(crate) name: String,
    writer: String,
    writer_password: String,
    reader: String,
    reader_password: String,
    /// The server's postmaster, if this machine's `/proc` shows it (for CPU seconds).
    postmaster: Option<u32>,
}

impl BenchDatabase {
    /// Makes the run's writer role (`LOGIN`, `CREATE` on the database, nothing else), read-only
    /// role (`LOGIN`, nothing granted) and database through the rig's superuser, after
    /// dropping those of benches no longer running.
    pub(crate) fn create(rig: &SqlRig) -> Result<BenchDatabase> {
        let name = format!("{PREFIX}{}", std::process::id());
        let mut db = BenchDatabase {
            host: rig.var("PG_HOST")?.to_owned(),
            port: rig.var("PG_PORT")?.to_owned(),
            ca: rig.var("SQL_RIG_CA")?.to_owned(),
            admin_user: rig
                .var("PG_ADMIN_USER")
                .map_or_else(|_| DEFAULT_ADMIN.to_owned(), str::to_owned),
            admin_password: rig.var("PG_PASSWORD")?.to_owned(),
            writer: format!("{name}_writer"),
            writer_password: password(),
            reader: format!("{name}_reader"),
            reader_password: password(),
            name,
            postmaster: None,
        };
        let leftovers = db.admin(
            None,
            &format!("SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"),
        )?;
        for old in leftovers.lines() {
            let pid = old.strip_prefix(PREFIX).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                eprintln!("postgresql: dropping {old} and its roles, left by a bench that died");
                for sql in drop_sql(old) {
                    db.admin(None, &sql)?;
                }
            }
        }
        // One statement a call: CREATE DATABASE refuses to run in a transaction block.
        for sql in [
            format!(
                "CREATE ROLE {} LOGIN PASSWORD '{}'",
                db.writer, db.writer_password
            ),
            format!(
                "CREATE ROLE {} LOGIN PASSWORD '{}'",
                db.reader, db.reader_password
            ),
            format!("CREATE DATABASE {}", db.name),
            format!("GRANT CREATE ON DATABASE {} TO {}", db.name, db.writer),
        ] {
            db.admin(None, &sql)?;
        }
        db.postmaster = db
            .admin(
                None,
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
            )
            .ok()
            .and_then(|pid| ProcStat::read(pid.trim()).ok())
            .map(|checkpointer| checkpointer.ppid);
        if db.postmaster.is_none() {
            eprintln!("postgresql: its processes are not in this /proc; its CPU is not reported");
        }
        Ok(db)
    }

    /// `psql` as `user` to `database`, TLS with the certificate verified against the rig's CA
    /// (as the service connects), stopping at the first error.
    fn psql(&self, user: &str, password: &str, database: &str) -> Command {
        let mut command = Command::new("psql");
        command
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", &self.ca)
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &self.host,
                "-p",
                &self.port,
            ])
            .args(["-U", user, "-d", database]);
        command
    }

    /// `sql` as the superuser in `database` (by default the rig's `postgres`); its output.
    fn admin(&self, database: Option<&str>, sql: &str) -> Result<String> {
        let mut command = self.psql(
            &self.admin_user,
            &self.admin_password,
            database.unwrap_or("postgres"),
        );
        output(command.args(["-q", "-At", "-c", sql]))
    }

    /// `sql` as the writer in the run's database; its output.
    fn writer(&self, sql: &str) -> Result<String> {
        let mut command = self.psql(&self.writer, &self.writer_password, &self.name);
        output(command.args(["-q", "-At", "-c", sql]))
    }

    /// The server environment of the destination, configured as K8TRE does (TLS verified
    /// against the rig's CA); the secret files' contents written into `secrets`.
    pub(crate) fn server_env(&self, secrets: &Path) -> Result<Vec<(String, String)>> {
        fs::write(secrets.join("pgwriterpassword"), &self.writer_password)?;
        fs::write(secrets.join("pgreaderpassword"), &self.reader_password)?;
        fs::write(
            secrets.join("opaladminpassword"),
            "package-never-calls-opal",
        )?;
        Ok([
            ("DESTINATION_POSTGRESQL_HOST", self.host.clone()),
            ("DESTINATION_POSTGRESQL_PORT", self.port.clone()),
            ("DESTINATION_POSTGRESQL_DATABASE", self.name.clone()),
            ("DESTINATION_POSTGRESQL_USERNAME", self.writer.clone()),
            (
                "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME",
                "pgwriterpassword".into(),
            ),
            (
                "DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME",
                self.reader.clone(),
            ),
            (
                "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME",
                "pgreaderpassword".into(),
            ),
            ("DESTINATION_POSTGRESQL_TLS", "verify-full".into()),
            ("DESTINATION_POSTGRESQL_CA_FILE", self.ca.clone()),
            ("DESTINATION_OPAL_HOST", OPAL_URL.into()),
            ("DESTINATION_OPAL_USERNAME", "administrator".into()),
            (
                "DESTINATION_OPAL_PASSWORD_SECRET_NAME",
                "opaladminpassword".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect())
    }

    /// CPU seconds PostgreSQL's processes have used so far, the exited backends included.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        self.postmaster.and_then(|pm| tree_cpu_seconds(pm).ok())
    }

    /// `CHECKPOINT`, so that each measured load starts with no dirty buffers of the one before.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.admin(Some(&self.name), "CHECKPOINT").map(drop)
    }

    /// Drops `schema` and all in it, if it is there.
    pub(crate) fn drop_schema(&self, schema: &str) -> Result<()> {
        self.admin(
            Some(&self.name),
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema)),
        )
        .map(drop)
    }

    /// Checks that every table of `dataset` in `schema` holds `dataset.rows` rows.
    pub(crate) fn check_rows(&self, schema: &str, dataset: &Dataset) -> Result<()> {
        for table in &dataset.tables {
            let name = format!("{}.{}", quote(schema), quote(table.name));
            let count = self.admin(Some(&self.name), &format!("SELECT count(*) FROM {name}"))?;
            ensure!(
                count.trim() == dataset.rows.to_string(),
                "{name} holds {count} rows, expected {}",
                dataset.rows
            );
        }
        Ok(())
    }

    /// From the service's tables in `schema`: empty tables `LIKE` them in the template schema,
    /// their primary keys, and one binary file of each table's rows in `files` (untimed).
    pub(crate) fn prepare_reference(
        &self,
        schema: &str,
        dataset: &Dataset,
        files: &CopyFiles,
    ) -> Result<Reference> {
        let mut ddl = format!(
            "DROP SCHEMA IF EXISTS {TEMPLATE_SCHEMA} CASCADE; CREATE SCHEMA {TEMPLATE_SCHEMA};"
        );
        let mut tables = Vec::new();
        for table in &dataset.tables {
            let source = format!("{}.{}", quote(schema), quote(table.name));
            ddl.push_str(&format!(
                "CREATE TABLE {TEMPLATE_SCHEMA}.{} (LIKE {source});",
                quote(table.name)
            ));
            let key = self.writer(&format!(
                "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) \
                 FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord), pg_attribute a \
                 WHERE i.indrelid = '{}'::regclass AND i.indisprimary \
                 AND a.attrelid = i.indrelid AND a.attnum = k.attnum",
                source.replace('\'', "''")
            ))?;
            let file = files.dir.join(format!("{}.pgcopy", table.name));
            let started = Instant::now();
            let out =
                fs::File::create(&file).with_context(|| format!("creating {}", file.display()))?;
            let mut command = self.psql(&self.writer, &self.writer_password, &self.name);
            command.arg("-c").arg(format!(
                "COPY (SELECT * FROM {source}) TO STDOUT (FORMAT binary)"
            ));
            let status = command.stdout(out).status().context("running psql")?;
            ensure!(status.success(), "writing {} failed", file.display());
            // PostgreSQL's server-side COPY reads it as its own user.
            fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
            let bytes = fs::metadata(&file)?.len();
            eprintln!(
                "postgresql: wrote {} ({bytes} bytes) in {:.1} s",
                file.display(),
                started.elapsed().as_secs_f64()
            );
            tables.push(ReferenceTable {
                name: table.name,
                file,
                bytes,
                primary_key: Some(key.trim().to_owned()).filter(|k| !k.is_empty()),
            });
        }
        self.writer(&ddl)?;
        Ok(Reference { tables })
    }

    /// Drops the template tables of [`prepare_reference`](Self::prepare_reference).
    pub(crate) fn drop_reference(&self) -> Result<()> {
        self.drop_schema(TEMPLATE_SCHEMA)
    }

    /// Fresh, empty reference tables (the template's column types, no key).
    fn fresh_reference_tables(&self, reference: &Reference) -> Result<()> {
        let mut ddl = format!(
            "DROP SCHEMA IF EXISTS {REFERENCE_SCHEMA} CASCADE; CREATE SCHEMA {REFERENCE_SCHEMA};"
        );
        for table in &reference.tables {
            let name = quote(table.name);
            ddl.push_str(&format!(
                "CREATE TABLE {REFERENCE_SCHEMA}.{name} (LIKE {TEMPLATE_SCHEMA}.{name});"
            ));
        }
        self.writer(&ddl).map(drop)
    }

    /// PostgreSQL's own loads of the reference files, each into fresh tables after a
    /// checkpoint: `\copy` by `psql` as the writer over TLS, then the primary keys, then the
    /// server's `COPY … FROM '<file>'` as the superuser. Every load must report `rows` rows.
    pub(crate) fn copy_from(&self, reference: &Reference, rows: u64) -> Result<CopyRun> {
        let copied = |out: &str, table: &str| -> Result<()> {
            ensure!(
                out.lines().any(|l| l.trim() == format!("COPY {rows}")),
                "loading {table} answered {out:?}, expected COPY {rows}"
            );
            Ok(())
        };

        self.fresh_reference_tables(reference)?;
        self.checkpoint()?;
        let (pg_before, psql_before, busy_before) = (
            self.cpu_seconds(),
            reaped_children_cpu_seconds()?,
            machine_busy_seconds()?,
        );
        let started = Instant::now();
        for table in &reference.tables {
            let mut command = self.psql(&self.writer, &self.writer_password, &self.name);
            command.arg("-c").arg(format!(
                "\\copy {REFERENCE_SCHEMA}.{} FROM {} (FORMAT binary)",
                quote(table.name),
                literal(&table.file)
            ));
            copied(&output(&mut command)?, table.name)?;
        }
        let client_s = started.elapsed().as_secs_f64();
        let psql_s = reaped_children_cpu_seconds()? - psql_before;
        let client_cpu = Cpu::measured(
            psql_s,
            psql_s,
            difference(pg_before, self.cpu_seconds()),
            machine_busy_seconds()? - busy_before,
        );

        let started = Instant::now();
        for table in &reference.tables {
            if let Some(key) = &table.primary_key {
                self.writer(&format!(
                    "ALTER TABLE {REFERENCE_SCHEMA}.{} ADD PRIMARY KEY ({key})",
                    quote(table.name)
                ))?;
            }
        }
        let keys_s = started.elapsed().as_secs_f64();

        self.fresh_reference_tables(reference)?;
        self.checkpoint()?;
        let pg_before = self.cpu_seconds();
        let started = Instant::now();
        for table in &reference.tables {
            let mut command = self.psql(&self.admin_user, &self.admin_password, &self.name);
            command.arg("-c").arg(format!(
                "COPY {REFERENCE_SCHEMA}.{} FROM {} (FORMAT binary)",
                quote(table.name),
                literal(&table.file)
            ));
            copied(&output(&mut command)?, table.name)?;
        }
        let server_side_s = started.elapsed().as_secs_f64();
        let server_side_postgresql_s = difference(pg_before, self.cpu_seconds());
        self.drop_schema(REFERENCE_SCHEMA)?;
        Ok(CopyRun {
            client_s,
            client_cpu,
            keys_s,
            server_side_s,
            server_side_postgresql_s,
        })
    }
}

impl Drop for BenchDatabase {
    /// Drops the run's database (closing its connections) and roles, whatever happened.
    fn drop(&mut self) {
        for sql in drop_sql(&self.name) {
            if let Err(e) = self.admin(None, &sql) {
                eprintln!("postgresql: {sql}: {e:#}");
                return;
            }
        }
        eprintln!(
            "postgresql: dropped database {} and roles {}, {}",
            self.name, self.writer, self.reader
        );
    }
}

/// Drops the database `name` and its two roles.
fn drop_sql(name: &str) -> [String; 3] {
    [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {name}_writer"),
        format!("DROP ROLE IF EXISTS {name}_reader"),
    ]
}

/// 128 random bits in hex, from the standard library's per-process random hash keys.
fn password() -> String {
    let half = || {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

/// Runs `command`; its standard output, or its standard error as the failure.
fn output(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .context("running psql (Debian's postgresql-client)")?;
    if !out.status.success() {
        bail!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// CPU seconds of this process's children that exited and were waited for (here: `psql`).
fn reaped_children_cpu_seconds() -> Result<f64> {
    Ok(ProcStat::read("self")?.reaped_children_s)
}

fn difference(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// A PostgreSQL identifier, always quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A file name as a PostgreSQL string literal.
fn literal(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

/// The schema the service loads a project's tables into: `lower(<project>_<start>_<schema>)`.
pub(crate) fn target_schema(project: &str) -> String {
    format!("{project}_{START_TIME}_{SCHEMA}").to_lowercase()
}

/// CR8TOR's package body for the PostgreSQL destination (the fixture
/// `cr8tor/package-postgresql-destination.json`), every table of `dataset` (all columns) from
/// the emulator at `emulator`.
pub(crate) fn package_body(
    fixtures: &Path,
    project: &str,
    emulator: &str,
    dataset: &Dataset,
) -> Result<Value> {
    let path = fixtures.join("cr8tor/package-postgresql-destination.json");
    let mut body: Value = serde_json::from_slice(
        &fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    body["project_name"] = json!(project);
    body["project_start_time"] = json!(START_TIME);
    body["destination"] = json!({"name": "", "type": "postgresql", "format": "sql"});
    body["source"]["host_url"] = json!(emulator);
    body["source"]["catalog"] = json!(CATALOG);
    body["dataset"]["schema_name"] = json!(SCHEMA);
    body["dataset"]["tables"] = dataset
        .tables
        .iter()
        .map(|t| json!({"name": t.name, "columns": null, "description": null}))
        .collect();
    Ok(body)
}

/// Checks the package's answer: `data_retrieved` names every table of `dataset` in `schema`.
pub(crate) fn check_answer(answer: &Value, schema: &str, dataset: &Dataset) -> Result<()> {
    let got: Vec<&str> = answer["payload"]["data_retrieved"]
        .as_array()
        .context("the package answered without payload.data_retrieved")?
        .iter()
        .filter_map(|t| t["table_name"].as_str())
        .collect();
    let want: Vec<String> = dataset
        .tables
        .iter()
        .map(|t| format!("{schema}.{}", t.name))
        .collect();
    ensure!(
        got == want,
        "the package answered {got:?}, expected {want:?}"
    );
    Ok(())
}

/// The folder of the reference files: on `/dev/shm` when it has room, else in the system's
/// temporary folder; readable by PostgreSQL's own user; removed when this is dropped.
pub(crate) struct CopyFiles {
    dir: PathBuf,
}

impl CopyFiles {
    /// A fresh folder for about `need_bytes` of files (a folder of a bench that died is
    /// removed first).
    pub(crate) fn create(need_bytes: u64) -> Result<CopyFiles> {
        let name = format!("publish-bench-pgcopy-{}", std::process::id());
        let shm = Path::new("/dev/shm");
        let parent = if shm_free_bytes().is_some_and(|free| free >= need_bytes) {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        if let Ok(entries) = fs::read_dir(&parent) {
            for entry in entries.flatten() {
                let old = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = old.strip_prefix("publish-bench-pgcopy-")
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = parent.join(name);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(CopyFiles { dir })
    }
}

impl Drop for CopyFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// About how many bytes PostgreSQL's binary `COPY` of `dataset` takes: each value's Arrow
/// bytes plus a 4-byte length, twice over for room.
pub(crate) fn file_bytes_estimate(dataset: &Dataset) -> u64 {
    let per_row: f64 = dataset
        .tables
        .iter()
        .map(|t| t.arrow_bytes_per_row + 4.0 * 16.0)
        .sum();
    (per_row * 2.0 * dataset.rows as f64) as u64
}

/// The reference's tables, their files and keys.
pub(crate) struct Reference {
    tables: Vec<ReferenceTable>,
}

impl Reference {
    /// Bytes of all the files.
    pub(crate) fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }
}

struct ReferenceTable {
    name: &'static str,
    file: PathBuf,
    bytes: u64,
    /// Quoted, comma-separated; `None` when the service's table has none.
    primary_key: Option<String>,
}

/// CPU seconds of one load, per process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu {
    /// The client: the server (the service's, from its start), or `psql`.
    pub(crate) client_s: f64,
    /// PostgreSQL's processes (all of them), if this `/proc` shows them.
    pub(crate) postgresql_s: Option<f64>,
    /// The rest of the machine meanwhile: every core's busy time less the client's and
    /// PostgreSQL's (and less the emulator's, reported apart), if PostgreSQL's is known.
    pub(crate) others_s: Option<f64>,
}

impl Cpu {
    /// `client_s` used in all, `client_during_s` of it during the load, and the machine's
    /// busy seconds during the load, less any reported apart such as the emulator's (`busy_s`).
    pub(crate) fn measured(
        client_s: f64,
        client_during_s: f64,
        postgresql_s: Option<f64>,
        busy_s: f64,
    ) -> Cpu {
        Cpu {
            client_s,
            postgresql_s,
            others_s: postgresql_s.map(|pg| (busy_s - client_during_s - pg).max(0.0)),
        }
    }
}

/// PostgreSQL's own loads of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyRun {
    /// `\copy … FROM` of every file by `psql` over TLS, wall seconds.
    pub(crate) client_s: f64,
    pub(crate) client_cpu: Cpu,
    /// `ALTER TABLE … ADD PRIMARY KEY` of the tables the service gives a key, after the rows.
    pub(crate) keys_s: f64,
    /// The server's `COPY … FROM '<file>'` of every file, wall seconds.
    pub(crate) server_side_s: f64,
    pub(crate) server_side_postgresql_s: Option<f64>,
}

/// One measured run: a fresh server's package, then PostgreSQL's own loads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PgRun {
    /// The package request, wall seconds.
    pub(crate) package_s: f64,
    /// CPU while packaging: the server's (from its start) and PostgreSQL's.
    pub(crate) package_cpu: Cpu,
    /// The emulator's CPU seconds while packaging (the warehouse's work).
    pub(crate) emulator_s: f64,
    /// The server's `VmHWM` once it listened, before any request, bytes.
    pub(crate) base_rss: u64,
    /// The server's `VmHWM` after the package, bytes.
    pub(crate) peak_rss: u64,
    pub(crate) copy: CopyRun,
}

/// All runs at one size.
pub(crate) struct PgSize {
    pub(crate) rows: u64,
    /// Bytes of the binary files, all tables.
    pub(crate) file_bytes: u64,
    pub(crate) runs: Vec<PgRun>,
}

const MIB: f64 = (1 << 20) as f64;

/// The report of `--destination postgresql`, in Markdown.
pub(crate) fn render(sizes: &[PgSize], db: &BenchDatabase) -> String {
    let mut out = String::from(
        "\n## PostgreSQL destination (issue 22): package against PostgreSQL's own COPY FROM a binary file\n\n\
         | rows per table | runs | package s | COPY FROM s (psql \\copy, TLS) | package / COPY FROM (goal ≤ 1.3) | primary keys s | package / (COPY FROM + keys) | server-side COPY FROM s | server peak RSS MiB | server base RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut cpu = String::from(
        "\nCPU s (medians; user + system, all threads): | rows per table | package: server | emulator | PostgreSQL | rest of the machine | \\copy: psql | PostgreSQL | rest of the machine | server-side COPY: PostgreSQL |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut rss = Vec::new();
    for size in sizes {
        let m = |f: &dyn Fn(&PgRun) -> f64| median(size.runs.iter().map(f).collect());
        let known = |f: &dyn Fn(&PgRun) -> Option<f64>| {
            let v = m(&|r| f(r).unwrap_or(f64::NAN));
            if v.is_nan() {
                "n/a".to_owned()
            } else {
                format!("{v:.1}")
            }
        };
        let package = m(&|r| r.package_s);
        let copy = m(&|r| r.copy.client_s);
        let keys = m(&|r| r.copy.keys_s);
        let (peak, base) = (
            m(&|r| r.peak_rss as f64) / MIB,
            m(&|r| r.base_rss as f64) / MIB,
        );
        rss.push((size.rows, peak, base));
        out.push_str(&format!(
            "| {} | {} | {package:.2} | {copy:.2} | {:.2} | {keys:.2} | {:.2} | {:.2} | {peak:.0} | {base:.0} |\n",
            size.rows,
            size.runs.len(),
            m(&|r| r.package_s / r.copy.client_s),
            m(&|r| r.package_s / (r.copy.client_s + r.copy.keys_s)),
            m(&|r| r.copy.server_side_s),
        ));
        cpu.push_str(&format!(
            "| {} | {:.1} | {:.1} | {} | {} | {:.1} | {} | {} | {} |\n",
            size.rows,
            m(&|r| r.package_cpu.client_s),
            m(&|r| r.emulator_s),
            known(&|r| r.package_cpu.postgresql_s),
            known(&|r| r.package_cpu.others_s),
            m(&|r| r.copy.client_cpu.client_s),
            known(&|r| r.copy.client_cpu.postgresql_s),
            known(&|r| r.copy.client_cpu.others_s),
            known(&|r| r.copy.server_side_postgresql_s),
        ));
    }
    out.push_str(&cpu);
    if let (Some(&(small, p1, b1)), Some(&(large, p2, b2))) = (rss.first(), rss.last())
        && rss.len() > 1
    {
        let base = (b1 + b2) / 2.0;
        out.push_str(&format!(
            "\nServer peak RSS: {p2:.0} MiB at {large} rows per table against {p1:.0} MiB at \
             {small}: {:.2}; above the base (the server's VmHWM once it listens, before any \
             request: {base:.0} MiB) {:.2} (goal ≤ 1.1).\n",
            p2 / p1,
            (p2 - base) / (p1 - base),
        ));
    }
    for size in sizes {
        out.push_str(&format!(
            "\nAt {} rows per table the binary files hold {} bytes (both tables).",
            size.rows, size.file_bytes
        ));
    }
    out.push_str(&format!(
        "\n\nBoth tables, one after another, each load into fresh tables after a CHECKPOINT, in \
         database {} of the rig's PostgreSQL; the package over loopback TCP with TLS verified, \
         as \\copy; its primary keys are built after the rows, timed apart on the reference \
         side. Medians of the runs.\n",
        db.name
    ));
    out
}
