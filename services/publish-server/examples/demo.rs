//! The main job, end to end on an embedded default: starts the local Databricks emulator on the
//! fixture tables under `fixtures/databricks/`, starts the publish server, sends the brief's
//! package request (its `host_url` pointed at the emulator), then the publish request, prints
//! both JSON responses and leaves the published files under `./outputs/lsc-sde/production/`.
//!
//! ```text
//! cargo run -p publish-server --example demo                  # brief's request (shape A), DuckDB
//! cargo run -p publish-server --example demo -- --shape b --format parquet
//! cargo run -p publish-server --example demo -- --datasets 2   # one package per dataset
//! cargo run -p publish-server --example demo -- --mount DIR --project P   # another volume
//! cargo run -p publish-server --example demo -- --destination postgresql --sql-rig DIR
//! ```
//!
//! With `--destination postgresql` the tables are loaded into the PostgreSQL of a SQL rig
//! (`tools/sql-servers up DIR`) and published to an Opal emulator started in-process, with
//! CR8TOR's own bodies for that destination; the Opal resources created are printed.
//!
//! With `--datasets 2` the request's two tables become two datasets of one project
//! (`dataset_1` with `person`, `dataset_2` with `address`), packaged one after the other as
//! CR8TOR does, then published once: the published database holds both.
//!
//! Everything talks real HTTP on 127.0.0.1 with OS-chosen ports; nothing leaves the machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use databricks_emulator::{Emulator, EmulatorConfig};
use publish_server::config::Settings;
use publish_server::{app, build_state};
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Args {
    shape: String,
    format: String,
    datasets: usize,
    outputs: PathBuf,
    /// The LSC destination's mount (holding `staging/` and `production/`); default
    /// `<outputs>/lsc-sde`, created if missing. `tools/bag-check` points it at the blob rig.
    mount: Option<PathBuf>,
    project: String,
    /// `postgresql`: load into the SQL rig's PostgreSQL and publish to an in-process Opal
    /// emulator, with CR8TOR's own bodies for that destination.
    postgresql: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        shape: "a".into(),
        format: "duckdb".into(),
        datasets: 1,
        outputs: PathBuf::from("outputs"),
        mount: None,
        project: "Pr004".into(),
        postgresql: None,
    };
    let mut destination = "filestore".to_owned();
    let mut sql_rig: Option<PathBuf> = None;
    #[allow(clippy::disallowed_methods)]
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--shape" => args.shape = value()?.to_ascii_lowercase(),
            "--format" => args.format = value()?.to_ascii_lowercase(),
            "--outputs" => args.outputs = PathBuf::from(value()?),
            "--mount" => args.mount = Some(PathBuf::from(value()?)),
            "--project" => args.project = value()?,
            "--destination" => destination = value()?.to_ascii_lowercase(),
            "--sql-rig" => sql_rig = Some(PathBuf::from(value()?)),
            "--datasets" => {
                args.datasets = match value()?.as_str() {
                    "1" => 1,
                    "2" => 2,
                    other => return Err(format!("--datasets is 1 or 2, not {other:?}")),
                }
            }
            "-h" | "--help" => {
                return Err(
                    "usage: demo [--shape a|b] [--format duckdb|csv|parquet] [--datasets 1|2] \
                     [--outputs DIR] [--mount DIR] [--project NAME] \
                     [--destination filestore|postgresql [--sql-rig DIR]]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !matches!(args.shape.as_str(), "a" | "b") {
        return Err("--shape is a or b".into());
    }
    match destination.as_str() {
        "filestore" => {}
        "postgresql" => {
            #[allow(clippy::disallowed_methods)] // the rig the tests use, as they find it
            let from_env = std::env::var_os("PUBLISH_TEST_SQL_RIG").map(PathBuf::from);
            let rig = sql_rig.or(from_env).ok_or(
                "--destination postgresql needs a PostgreSQL: give --sql-rig DIR of a rig \
                     that `tools/sql-servers up DIR` started (or set PUBLISH_TEST_SQL_RIG)",
            )?;
            args.postgresql = Some(rig);
        }
        other => {
            return Err(format!(
                "--destination is filestore or postgresql, not {other:?}"
            ));
        }
    }
    Ok(args)
}

fn write_secret(dir: &Path, name: &str, value: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), value)
}

#[tokio::main]
#[allow(clippy::disallowed_methods)] // RUST_LOG is read as the server would
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let outputs = std::path::absolute(&args.outputs)?;
    let secrets = outputs.join("demo-secrets");
    let mount = match &args.mount {
        Some(mount) => std::path::absolute(mount)?,
        None => outputs.join("lsc-sde"),
    };
    std::fs::create_dir_all(mount.join("staging"))?;
    std::fs::create_dir_all(mount.join("production"))?;

    // 1. The emulator, serving the fixture tables.
    let config = EmulatorConfig::new(repo_root().join("fixtures/databricks"));
    write_secret(&secrets, "databricksspnclientid", &config.client_id)?;
    write_secret(&secrets, "databricksspnsecret", &config.client_secret)?;
    let api_key = format!("demo-api-key-{:010}", std::process::id());
    write_secret(&secrets, "publishserviceapikey", &api_key)?;
    let emulator = Emulator::start(config).await?;
    eprintln!("emulator listening on {}", emulator.url());

    // 2. The publish server, configured as an operator would through the environment.
    let env: HashMap<String, String> = [
        ("PUBLISH_BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("SECRETS_MNT_PATH", secrets.display().to_string()),
        (
            "TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH",
            mount.display().to_string(),
        ),
        (
            "DLTHUB_PIPELINE_WORKING_DIR",
            outputs.join("work").display().to_string(),
        ),
        (
            "PUBLISH_ALLOWED_SOURCE_HOSTS",
            "http://127.0.0.1:*".to_owned(),
        ),
        (
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut env = env;
    // The PostgreSQL destination: the rig's server (its user both writer and reader, as K8TRE
    // runs it) and a local Opal emulator, configured by the reference's variables.
    let opal = match &args.postgresql {
        None => None,
        Some(rig) => Some(postgresql_destination(rig, &secrets, &mut env).await?),
    };
    let settings = Settings::load(env)?;
    publish_server::telemetry::init(&settings)?;
    let state = build_state(&settings)?;
    let listener = tokio::net::TcpListener::bind(settings.http.bind_addr).await?;
    let server_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    eprintln!("publish-server listening on {server_url}");

    // 3. The brief's requests (or CR8TOR's shape B), with the emulator as the workspace.
    let fixture = |name: &str| -> Result<Value, Box<dyn std::error::Error>> {
        let path = repo_root().join("fixtures/requests").join(name);
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    };
    let (package_file, publish_file) = match args.postgresql {
        Some(_) => (
            "cr8tor/package-postgresql-destination.json".to_owned(),
            "cr8tor/publish-postgresql-destination.json".to_owned(),
        ),
        None => (
            format!("package-shape-{}.json", args.shape),
            format!("publish-shape-{}.json", args.shape),
        ),
    };
    let mut package = fixture(&package_file)?;
    let mut publish = fixture(&publish_file)?;
    package["source"]["host_url"] = json!(emulator.url());
    package["project_name"] = json!(args.project);
    publish["project_name"] = json!(args.project);
    if args.postgresql.is_some() {
        // CR8TOR's body, as it is.
    } else if args.shape == "a" {
        package["destination_format"] = json!(args.format);
    } else {
        package["destination"]["format"] = json!(args.format);
    }

    let mut requests = Vec::new();
    if args.datasets == 1 {
        requests.push(("/data-publish/package", package));
    } else {
        // One dataset per table, as CR8TOR sends a project of several dataset files.
        let key = if args.shape == "a" {
            "metadata"
        } else {
            "dataset"
        };
        let tables = package[key]["tables"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, table) in tables.into_iter().enumerate() {
            let mut body = package.clone();
            body[key]["name"] = json!(format!("dataset_{}", i + 1));
            body[key]["tables"] = json!([table]);
            requests.push(("/data-publish/package", body));
        }
    }
    requests.push(("/data-publish/publish", publish));

    let client = reqwest::Client::new();
    for (path, body) in &requests {
        let response = client
            .post(format!("{server_url}{path}"))
            .header("x-api-key", &api_key)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let text: Value = response.json().await?;
        println!("POST {path} -> {status}");
        println!("{}", serde_json::to_string_pretty(&text)?);
        if !status.is_success() {
            return Err(format!("{path} failed").into());
        }
    }
    if let Some(opal) = opal {
        for resource in opal.state().resources {
            println!(
                "Opal resource {}/{}: {}",
                resource.project, resource.name, resource.parameters
            );
        }
        opal.shutdown().await;
    } else {
        let published = mount
            .join("production")
            .join(&args.project)
            .join("20250205_010101");
        println!(
            "published files are under {} (a BagIt bag: bagit.txt, manifest-sha512.txt beside data/)",
            published.display()
        );
    }
    emulator.shutdown().await;
    Ok(())
}

/// Starts an Opal emulator and adds the PostgreSQL destination's variables for the rig at
/// `rig` (its `env` file, as `tools/sql-servers up` writes it) to `env`.
async fn postgresql_destination(
    rig: &Path,
    secrets: &Path,
    env: &mut HashMap<String, String>,
) -> Result<opal_emulator::OpalEmulator, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(rig.join("env")).map_err(|e| {
        format!(
            "{}: {e} (start it with tools/sql-servers up DIR)",
            rig.join("env").display()
        )
    })?;
    let vars: HashMap<String, String> = text
        .lines()
        .map(|l| l.trim().trim_start_matches("export ").trim_start())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    let var = |k: &str| {
        vars.get(k)
            .cloned()
            .ok_or(format!("the rig's env file has no {k}"))
    };
    let opal_password = "Demo-opal-pw1!";
    let opal =
        opal_emulator::OpalEmulator::start(opal_emulator::OpalEmulatorConfig::new(opal_password))
            .await?;
    eprintln!("opal emulator listening on {}", opal.url());
    write_secret(secrets, "pgpassword", &var("PG_PASSWORD")?)?;
    write_secret(secrets, "opaladminpassword", opal_password)?;
    for (k, v) in [
        ("DESTINATION_POSTGRESQL_HOST", var("PG_HOST")?),
        ("DESTINATION_POSTGRESQL_PORT", var("PG_PORT")?),
        ("DESTINATION_POSTGRESQL_DATABASE", var("PG_DATABASE")?),
        ("DESTINATION_POSTGRESQL_USERNAME", var("PG_USER")?),
        (
            "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME",
            "pgpassword".into(),
        ),
        (
            "DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME",
            var("PG_USER")?,
        ),
        (
            "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME",
            "pgpassword".into(),
        ),
        ("DESTINATION_POSTGRESQL_TLS", "verify-full".into()),
        ("DESTINATION_POSTGRESQL_CA_FILE", var("SQL_RIG_CA")?),
        ("DESTINATION_OPAL_HOST", opal.url()),
        ("DESTINATION_OPAL_USERNAME", "administrator".into()),
        (
            "DESTINATION_OPAL_PASSWORD_SECRET_NAME",
            "opaladminpassword".into(),
        ),
    ] {
        env.insert(k.to_owned(), v);
    }
    Ok(opal)
}
