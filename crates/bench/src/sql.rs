//! `--source postgresql` and `--source mysql` (issue 13): the same synthetic tables loaded into
//! the SQL rig's PostgreSQL or MariaDB (`tools/sql-servers`), packaged by the service, against
//! the source's own limit in the same run — `COPY … TO STDOUT (FORMAT binary)` into
//! `/dev/null` by `psql`; `SELECT *` streamed by `mariadb --quick` into `/dev/null` — and
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

/// Which of the rig's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// PostgreSQL.
    Postgresql,
    /// MariaDB (`source.type` `mysql`).
    Mysql,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Self::Postgresql => "postgresql",
            Self::Mysql => "mysql",
        }
    }

    fn var(self, suffix: &str) -> String {
        match self {
            Self::Postgresql => format!("PG_{suffix}"),
            Self::Mysql => format!("MYSQL_{suffix}"),
        }
    }
}

/// One server of the SQL rig, from its `env` file.
pub(crate) struct SqlRig {
    env: BTreeMap<String, String>,
    engine: Engine,
}

impl SqlRig {
    /// Reads `DIR/env` of a rig `tools/sql-servers up DIR` started.
    pub(crate) fn open(dir: &Path, engine: Engine) -> Result<SqlRig> {
        let path = dir.join("env");
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (start the rig with `tools/sql-servers up {}`)",
                path.display(),
                dir.display()
            )
        })?;
        let env = text
            .lines()
            .map(|l| l.trim().trim_start_matches("export ").trim_start())
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(SqlRig { env, engine })
    }

    /// A value of the rig's `env` file, e.g. `PG_PORT`.
    pub(crate) fn var(&self, name: &str) -> Result<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("the SQL rig's env has no {name}"))
    }

    /// The engine's own variable (`PG_PORT` or `MYSQL_PORT`).
    fn own(&self, suffix: &str) -> Result<&str> {
        self.var(&self.engine.var(suffix))
    }

    /// The engine's command-line client, as the administrator, TLS on.
    fn client(&self) -> Result<Command> {
        match self.engine {
            Engine::Postgresql => self.psql(),
            Engine::Mysql => {
                let mut command = Command::new("mariadb");
                command
                    .env("MYSQL_PWD", self.var("MYSQL_PASSWORD")?)
                    .args(["--no-defaults", "--ssl", "--local-infile=1", "-h"])
                    .arg(self.var("MYSQL_HOST")?)
                    .arg("-P")
                    .arg(self.var("MYSQL_PORT")?)
                    .arg("-u")
                    .arg(self.var("MYSQL_ADMIN_USER")?);
                Ok(command)
            }
        }
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
        let mut command = self.client()?;
        match self.engine {
            Engine::Postgresql => command.args(["-At", "-c", sql]),
            Engine::Mysql => command.args(["-N", "-B", "-e", sql]),
        };
        let output = command.output().context(
            "running the database's client (Debian's postgresql-client / mariadb-client)",
        )?;
        if !output.status.success() {
            bail!(
                "{}: {}",
                self.engine.name(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The server environment that lets the service read from this server: the allow-list
    /// entry, the rig's CA, and the secret files' contents written into `secrets`.
    pub(crate) fn server_env(&self, secrets: &Path) -> Result<Vec<(String, String)>> {
        fs::write(secrets.join("pgusername"), self.own("USER")?)?;
        fs::write(secrets.join("pgpassword"), self.own("PASSWORD")?)?;
        Ok(vec![
            (
                "PUBLISH_ALLOWED_SOURCE_HOSTS".into(),
                format!("{}://{}:*", self.engine.name(), self.own("HOST")?),
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
        body["source"]["type"] = json!(self.engine.name());
        body["source"]["host_url"] = json!(self.own("HOST")?);
        body["source"]["port"] = json!(self.own("PORT")?.parse::<u16>()?);
        body["source"]["database"] = json!(self.own("DATABASE")?);
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
        match self.engine {
            Engine::Postgresql => self.run(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))?,
            Engine::Mysql => {
                let user = self.var("MYSQL_USER")?;
                self.run(&format!(
                    "CREATE DATABASE IF NOT EXISTS {SCHEMA}; \
                     GRANT SELECT ON {SCHEMA}.* TO '{user}'@'%'; \
                     GRANT SELECT ON {SCHEMA}.* TO '{user}'@'localhost'"
                ))?
            }
        };
        let duck = Connection::open_in_memory_with_flags(
            Config::default().enable_autoload_extension(false)?,
        )?;
        for table in &dataset.tables {
            let name = format!("{SCHEMA}.{}", table.name);
            let loaded = match self.engine {
                Engine::Postgresql => self.run(&format!(
                    "SELECT obj_description(to_regclass('{name}'), 'pg_class')"
                ))?,
                Engine::Mysql => self.run(&format!(
                    "SELECT TABLE_COMMENT FROM information_schema.TABLES \
                     WHERE TABLE_SCHEMA = '{SCHEMA}' AND TABLE_NAME = '{}'",
                    table.name
                ))?,
            };
            if loaded == tag {
                eprintln!("{}: reusing {name} ({tag})", self.engine.name());
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
                .map(|(c, t)| Ok(format!("{c} {}", column_type(self.engine, t)?)))
                .collect::<Result<_>>()?;
            // MySQL's LOAD DATA wants timestamps without a zone and booleans as numbers.
            let select: Vec<String> = columns
                .iter()
                .map(|(c, t)| match (self.engine, t.as_str()) {
                    (Engine::Mysql, "TIMESTAMP WITH TIME ZONE") => {
                        format!("CAST({c} AS TIMESTAMP)")
                    }
                    (Engine::Mysql, "BOOLEAN") => format!("CAST({c} AS INTEGER)"),
                    _ => c.clone(),
                })
                .collect();
            let csv = scratch.join(format!("{}.csv", table.name));
            // NULL as \N, which both servers' loaders read as NULL.
            duck.execute_batch(&format!(
                "COPY (SELECT {} FROM read_parquet('{parquet}')) TO '{}' \
                 (FORMAT csv, HEADER false, NULLSTR '\\N')",
                select.join(", "),
                csv.display().to_string().replace('\'', "''")
            ))?;
            self.run(&format!("DROP TABLE IF EXISTS {name}"))?;
            self.run(&format!("CREATE TABLE {name} ({})", ddl.join(", ")))?;
            let mut command = self.client()?;
            match self.engine {
                Engine::Postgresql => command.arg("-c").arg(format!(
                    "\\copy {name} FROM '{}' (FORMAT csv, NULL '\\N')",
                    csv.display()
                )),
                Engine::Mysql => command.arg("-e").arg(format!(
                    "SET time_zone = '+00:00'; LOAD DATA LOCAL INFILE '{}' INTO TABLE {name} \
                     FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\'",
                    csv.display()
                )),
            };
            ensure!(command.status()?.success(), "loading {name} failed");
            let _ = fs::remove_file(&csv);
            match self.engine {
                Engine::Postgresql => {
                    // One statement per call: psql runs a multi-statement -c in one
                    // transaction, which VACUUM refuses.
                    self.run(&format!("VACUUM (FREEZE, ANALYZE) {name}"))?;
                    self.run(&format!("COMMENT ON TABLE {name} IS '{tag}'"))?;
                }
                Engine::Mysql => {
                    self.run(&format!("ANALYZE TABLE {name}"))?;
                    self.run(&format!("ALTER TABLE {name} COMMENT = '{tag}'"))?;
                }
            }
            eprintln!(
                "{}: loaded {name} ({} rows) in {:.1} s",
                self.engine.name(),
                dataset.rows,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// The source's own limit, every table one after another into `/dev/null`: PostgreSQL's
    /// `COPY (SELECT * FROM t) TO STDOUT (FORMAT binary)`; MariaDB's `SELECT * FROM t`
    /// streamed by its client (`--quick`: row by row, not buffered).
    pub(crate) fn dump(&self, dataset: &Dataset) -> Result<Duration> {
        let started = Instant::now();
        for table in &dataset.tables {
            let mut command = self.client()?;
            match self.engine {
                Engine::Postgresql => command.arg("-c").arg(format!(
                    "COPY (SELECT * FROM {SCHEMA}.{}) TO STDOUT (FORMAT binary)",
                    table.name
                )),
                Engine::Mysql => command
                    .args(["--quick", "-N", "-B", "-e"])
                    .arg(format!("SELECT * FROM {SCHEMA}.{}", table.name)),
            };
            let status = command.stdout(Stdio::null()).status()?;
            ensure!(status.success(), "the dump of {} failed", table.name);
        }
        Ok(started.elapsed())
    }

    /// The source's own limit, in words, for the report.
    pub(crate) fn dump_name(&self) -> &'static str {
        match self.engine {
            Engine::Postgresql => "COPY … (FORMAT binary) → /dev/null s",
            Engine::Mysql => "mariadb --quick SELECT * → /dev/null s",
        }
    }
}

/// The database type of a DuckDB column type of the generated tables.
fn column_type(engine: Engine, duckdb: &str) -> Result<String> {
    let pg = engine == Engine::Postgresql;
    Ok(match duckdb {
        "BOOLEAN" if pg => "boolean".into(),
        // BIT(1) is MySQL's exact boolean (the service reads it as BOOLEAN).
        "BOOLEAN" => "BIT(1)".into(),
        "SMALLINT" | "INTEGER" | "BIGINT" | "DATE" => duckdb.into(),
        "DOUBLE" if pg => "double precision".into(),
        "DOUBLE" => "DOUBLE".into(),
        "VARCHAR" => "text".into(),
        "TIMESTAMP" if pg => "timestamp".into(),
        "TIMESTAMP" => "DATETIME(6)".into(),
        "TIMESTAMP WITH TIME ZONE" if pg => "timestamptz".into(),
        "TIMESTAMP WITH TIME ZONE" => "TIMESTAMP(6) NULL".into(),
        t if t.starts_with("DECIMAL(") && pg => format!("numeric{}", &t["DECIMAL".len()..]),
        t if t.starts_with("DECIMAL(") => t.into(),
        other => bail!("no database type for the generated column type {other}"),
    })
}

/// One measured run of `--source postgresql`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqlRun {
    pub(crate) package_s: f64,
    pub(crate) dump_s: f64,
    pub(crate) ingest_s: f64,
    pub(crate) peak_rss: u64,
}

/// Medians of one size's runs.
#[derive(Debug, Clone)]
pub(crate) struct SqlSize {
    pub(crate) rows: u64,
    pub(crate) runs: Vec<SqlRun>,
}

/// The report of `--source postgresql` / `mysql`.
pub(crate) fn render(rig: &SqlRig, sizes: &[SqlSize], scratch: &Path) -> String {
    use crate::report::median;
    let mut out = format!(
        "\n## {} source (issue 13): package against the source's own dump and DuckDB's ingest\n\n\
         | rows per table | runs | {} | DuckDB ingest s | package s | package / (dump + ingest) | server peak RSS MiB |\n\
         |---|---|---|---|---|---|---|\n",
        rig.engine.name(),
        rig.dump_name(),
    );
    let mut rss = Vec::new();
    for size in sizes {
        let m = |f: fn(&SqlRun) -> f64| median(size.runs.iter().map(f).collect());
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
        "\nBoth tables, one after another, over loopback TCP with TLS (the dump by the \
         database's own client); DuckDB's ingest from the generated Parquet files; work folder \
         {}.\n",
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
        "--source postgresql / mysql needs the SQL rig: `tools/sql-servers up DIR` (as root), \
         then --sql-rig DIR",
    )
}
