//! `--source postgresql` (issue 13): the same synthetic tables loaded into a PostgreSQL server
//! (the SQL rig, `tools/sql-servers`), packaged by the service, against the source's own limit
//! in the same run — `COPY … TO STDOUT (FORMAT binary)` into `/dev/null` by `psql` — and
//! against DuckDB's own ingest of the same data, with the server's peak RSS.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use duckdb::{Config, Connection};
use serde_json::{Value, json};

use crate::api::{DESTINATION, START_TIME};
use crate::dataset::{Dataset, SCHEMA};

/// The PostgreSQL server of the SQL rig, from its `env` file.
pub(crate) struct PgRig {
    env: BTreeMap<String, String>,
}

impl PgRig {
    /// Reads `DIR/env` of a rig `tools/sql-servers up DIR` started.
    pub(crate) fn open(dir: &Path) -> Result<PgRig> {
        let path = dir.join("env");
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (start the rig with `tools/sql-servers up {}`)",
                path.display(),
                dir.display()
            )
        })?;
        let env = text
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(PgRig { env })
    }

    fn var(&self, name: &str) -> Result<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("the SQL rig's env has no {name}"))
    }

    /// `psql` as the rig's user, stopping at the first error.
    fn psql(&self) -> Result<Command> {
        let mut command = Command::new("psql");
        command
            .env("PGPASSWORD", self.var("PG_PASSWORD")?)
            // TLS, as the service reads (with its certificate verified).
            .env("PGSSLMODE", "require")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.var("PG_HOST")?)
            .arg("-p")
            .arg(self.var("PG_PORT")?)
            .arg("-U")
            .arg(self.var("PG_USER")?)
            .arg("-d")
            .arg(self.var("PG_DATABASE")?);
        Ok(command)
    }

    fn run(&self, sql: &str) -> Result<String> {
        let output = self
            .psql()?
            .args(["-At", "-c", sql])
            .output()
            .context("running psql (Debian's postgresql-client)")?;
        if !output.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The server environment that lets the service read from this server: the allow-list
    /// entry, the rig's CA, and the secret files' contents written into `secrets`.
    pub(crate) fn server_env(&self, secrets: &Path) -> Result<Vec<(String, String)>> {
        fs::write(secrets.join("pgusername"), self.var("PG_USER")?)?;
        fs::write(secrets.join("pgpassword"), self.var("PG_PASSWORD")?)?;
        Ok(vec![
            (
                "PUBLISH_ALLOWED_SOURCE_HOSTS".into(),
                format!("postgresql://{}:*", self.var("PG_HOST")?),
            ),
            (
                "PUBLISH_SQL_CA_FILE".into(),
                self.var("SQL_RIG_CA")?.to_owned(),
            ),
        ])
    }

    /// CR8TOR's PostgreSQL body for `project`, every table of `dataset`, into DuckDB.
    pub(crate) fn package_body(
        &self,
        fixtures: &Path,
        project: &str,
        dataset: &Dataset,
    ) -> Result<Value> {
        let path = fixtures.join("cr8tor/package-postgresql-source.json");
        let mut body: Value = serde_json::from_slice(
            &fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )?;
        body["project_name"] = json!(project);
        body["project_start_time"] = json!(START_TIME);
        body["destination"] = json!({"name": DESTINATION, "format": "duckdb", "type": "filestore"});
        body["source"]["host_url"] = json!(self.var("PG_HOST")?);
        body["source"]["port"] = json!(self.var("PG_PORT")?.parse::<u16>()?);
        body["source"]["database"] = json!(self.var("PG_DATABASE")?);
        body["dataset"]["schema_name"] = json!(SCHEMA);
        body["dataset"]["tables"] = dataset
            .tables
            .iter()
            .map(|t| json!({"name": t.name, "columns": null}))
            .collect();
        Ok(body)
    }

    /// Loads every table of `dataset` into schema `clinical`, unless the server already holds
    /// this dataset (its directory name is the tables' comment).
    pub(crate) fn load(&self, dataset: &Dataset, scratch: &Path) -> Result<()> {
        let tag = dataset
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.run(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))?;
        let duck = Connection::open_in_memory_with_flags(
            Config::default().enable_autoload_extension(false)?,
        )?;
        for table in &dataset.tables {
            let name = format!("{SCHEMA}.{}", table.name);
            let loaded = self.run(&format!(
                "SELECT obj_description(to_regclass('{name}'), 'pg_class')"
            ))?;
            if loaded == tag {
                eprintln!("postgresql: reusing {name} ({tag})");
                continue;
            }
            let started = Instant::now();
            let parquet = table.parquet.display().to_string().replace('\'', "''");
            let mut stmt = duck.prepare(&format!(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{parquet}'))"
            ))?;
            let columns: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let ddl: Vec<String> = columns
                .iter()
                .map(|(c, t)| Ok(format!("\"{c}\" {}", pg_type(t)?)))
                .collect::<Result<_>>()?;
            let csv = scratch.join(format!("{}.csv", table.name));
            duck.execute_batch(&format!(
                "COPY (SELECT * FROM read_parquet('{parquet}')) TO '{}' (FORMAT csv, HEADER false)",
                csv.display().to_string().replace('\'', "''")
            ))?;
            self.run(&format!(
                "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({})",
                ddl.join(", ")
            ))?;
            let status = self
                .psql()?
                .arg("-c")
                .arg(format!(
                    "\\copy {name} FROM '{}' (FORMAT csv)",
                    csv.display()
                ))
                .status()?;
            ensure!(status.success(), "loading {name} into PostgreSQL failed");
            let _ = fs::remove_file(&csv);
            // One statement per call: psql runs a multi-statement -c in one transaction, which
            // VACUUM refuses.
            self.run(&format!("VACUUM (FREEZE, ANALYZE) {name}"))?;
            self.run(&format!("COMMENT ON TABLE {name} IS '{tag}'"))?;
            eprintln!(
                "postgresql: loaded {name} ({} rows) in {:.1} s",
                dataset.rows,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// The source's own limit: `COPY (SELECT * FROM t) TO STDOUT (FORMAT binary)` of every
    /// table, one after another, into `/dev/null`.
    pub(crate) fn dump(&self, dataset: &Dataset) -> Result<Duration> {
        let started = Instant::now();
        for table in &dataset.tables {
            let status = self
                .psql()?
                .arg("-c")
                .arg(format!(
                    "COPY (SELECT * FROM {SCHEMA}.{}) TO STDOUT (FORMAT binary)",
                    table.name
                ))
                .stdout(Stdio::null())
                .status()?;
            ensure!(status.success(), "COPY of {} failed", table.name);
        }
        Ok(started.elapsed())
    }
}

/// The PostgreSQL type of a DuckDB column type of the generated tables.
fn pg_type(duckdb: &str) -> Result<String> {
    Ok(match duckdb {
        "BOOLEAN" => "boolean".into(),
        "SMALLINT" => "smallint".into(),
        "INTEGER" => "integer".into(),
        "BIGINT" => "bigint".into(),
        "DOUBLE" => "double precision".into(),
        "VARCHAR" => "text".into(),
        "DATE" => "date".into(),
        "TIMESTAMP" => "timestamp".into(),
        "TIMESTAMP WITH TIME ZONE" => "timestamptz".into(),
        t if t.starts_with("DECIMAL(") => format!("numeric{}", &t["DECIMAL".len()..]),
        other => bail!("no PostgreSQL type for the generated column type {other}"),
    })
}

/// One measured run of `--source postgresql`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PgRun {
    pub(crate) package_s: f64,
    pub(crate) dump_s: f64,
    pub(crate) ingest_s: f64,
    pub(crate) peak_rss: u64,
}

/// Medians of one size's runs.
#[derive(Debug, Clone)]
pub(crate) struct PgSize {
    pub(crate) rows: u64,
    pub(crate) runs: Vec<PgRun>,
}

/// The report of `--source postgresql`.
pub(crate) fn render(sizes: &[PgSize], scratch: &Path) -> String {
    use crate::report::median;
    let mut out = String::from(
        "\n## PostgreSQL source (issue 13): package against COPY TO STDOUT and DuckDB's ingest\n\n\
         | rows per table | runs | COPY … (FORMAT binary) → /dev/null s | DuckDB ingest s | package s | package / (COPY + ingest) | server peak RSS MiB |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut rss = Vec::new();
    for size in sizes {
        let m = |f: fn(&PgRun) -> f64| median(size.runs.iter().map(f).collect());
        let (dump, ingest, package) = (m(|r| r.dump_s), m(|r| r.ingest_s), m(|r| r.package_s));
        let peak = m(|r| r.peak_rss as f64) / f64::from(1 << 20);
        rss.push(peak);
        out.push_str(&format!(
            "| {} | {} | {dump:.2} | {ingest:.2} | {package:.2} | {:.2} (goal ≤ 1.5) | {peak:.0} |\n",
            size.rows,
            size.runs.len(),
            package / (dump + ingest),
        ));
    }
    if let (Some(first), Some(last)) = (rss.first(), rss.last())
        && rss.len() > 1
    {
        out.push_str(&format!(
            "\nServer peak RSS, largest size / smallest: {:.2} (flat in table size means ≈ 1).\n",
            last / first
        ));
    }
    out.push_str(&format!(
        "\nBoth tables, one after another, over loopback TCP with TLS (the dump by `psql`); \
         DuckDB's ingest from the generated Parquet files; work folder {}.\n",
        scratch.display()
    ));
    out
}

/// Where a rig's folder is named: `--sql-rig`, else `PUBLISH_TEST_SQL_RIG`.
pub(crate) fn rig_dir(flag: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.clone());
    }
    #[allow(clippy::disallowed_methods)] // the benchmark's prerequisite, as the tests read it
    let dir = std::env::var_os("PUBLISH_TEST_SQL_RIG");
    dir.map(PathBuf::from).context(
        "--source postgresql needs a PostgreSQL server: `tools/sql-servers up DIR` (as root), \
         then --sql-rig DIR",
    )
}
