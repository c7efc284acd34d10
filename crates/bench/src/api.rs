//! The service's HTTP API as the bench calls it: package and publish requests built from the
//! fixture request bodies (`fixtures/requests/*-shape-a.json`), pointed at the emulator.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::dataset::{CATALOG, Dataset, SCHEMA};

/// The destination every request names.
pub(crate) const DESTINATION: &str = "LSC";
/// The start time every request names.
pub(crate) const START_TIME: &str = "20250205_010101";

/// A client of one running server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    api_key: String,
    package_template: Value,
    publish_template: Value,
}

/// What the emulator counted so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmulatorStats {
    /// Bytes of chunk bodies sent.
    pub(crate) download_bytes: u64,
    /// Statements submitted.
    pub(crate) statements: u64,
    /// Chunk bodies produced from a table (not from the query result cache).
    pub(crate) chunks_produced: u64,
}

impl EmulatorStats {
    /// What the emulator at `emulator` counted so far (`GET /emulator/stats`).
    pub(crate) async fn read(emulator: &str) -> Result<EmulatorStats> {
        let stats: serde_json::Value = reqwest::get(format!("{emulator}/emulator/stats"))
            .await?
            .error_for_status()?
            .json()
            .await?;
        let field = |value: &serde_json::Value, name: &str| {
            value
                .as_u64()
                .with_context(|| format!("the emulator's stats carry no {name}"))
        };
        Ok(EmulatorStats {
            download_bytes: field(&stats["download_bytes"], "download_bytes")?,
            statements: field(&stats["statements"], "statements")?,
            chunks_produced: field(&stats["result_cache"]["produced"], "result_cache.produced")?,
        })
    }

    /// What was counted between `self` and `later`.
    pub(crate) fn until(self, later: EmulatorStats) -> EmulatorStats {
        EmulatorStats {
            download_bytes: later.download_bytes - self.download_bytes,
            statements: later.statements - self.statements,
            chunks_produced: later.chunks_produced - self.chunks_produced,
        }
    }
}

/// One published file as the server reported it.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub(crate) file_path: String,
    pub(crate) hash_value: String,
    pub(crate) total_bytes: u64,
}

impl Api {
    /// A client of the server at `base` (`http://ADDR`), with request bodies from `fixtures`.
    pub(crate) fn new(base: &str, api_key: &str, fixtures: &Path) -> Result<Api> {
        let read = |name: &str| -> Result<Value> {
            let path = fixtures.join(name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(serde_json::from_slice(&bytes)?)
        };
        Ok(Api {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            api_key: api_key.to_owned(),
            package_template: read("package-shape-a.json")?,
            publish_template: read("publish-shape-a.json")?,
        })
    }

    /// Packages every table of `dataset` (all columns) for `project` into DuckDB; returns the
    /// wall time of the request.
    pub(crate) async fn package(
        &self,
        project: &str,
        emulator: &str,
        dataset: &Dataset,
    ) -> Result<Duration> {
        let tables: Vec<&str> = dataset.tables.iter().map(|t| t.name).collect();
        self.package_dataset(project, emulator, None, &tables).await
    }

    /// Packages `tables` as the dataset `name` (by default, one named after its schema) of
    /// `project`; returns the wall time of the request.
    pub(crate) async fn package_dataset(
        &self,
        project: &str,
        emulator: &str,
        name: Option<&str>,
        tables: &[&str],
    ) -> Result<Duration> {
        let mut body = self.package_template.clone();
        body["project_name"] = json!(project);
        body["project_start_time"] = json!(START_TIME);
        body["destination_type"] = json!(DESTINATION);
        body["destination_format"] = json!("duckdb");
        body["source"]["host_url"] = json!(emulator);
        body["source"]["catalog"] = json!(CATALOG);
        body["metadata"]["schema_name"] = json!(SCHEMA);
        body["metadata"]["name"] = json!(name);
        body["metadata"]["tables"] = tables.iter().map(|t| json!({ "name": t })).collect();
        let started = Instant::now();
        self.post("/data-publish/package", &body).await?;
        Ok(started.elapsed())
    }

    /// Publishes `project`; returns the wall time and the manifest.
    pub(crate) async fn publish(&self, project: &str) -> Result<(Duration, Vec<Published>)> {
        let mut body = self.publish_template.clone();
        body["project_name"] = json!(project);
        body["project_start_time"] = json!(START_TIME);
        body["destination_type"] = json!(DESTINATION);
        let started = Instant::now();
        let answer = self.post("/data-publish/publish", &body).await?;
        let elapsed = started.elapsed();
        let files = answer["payload"]["data_published"]
            .as_array()
            .context("publish answered without payload.data_published")?
            .iter()
            .map(|f| Published {
                file_path: f["file_path"].as_str().unwrap_or_default().to_owned(),
                hash_value: f["hash_value"].as_str().unwrap_or_default().to_owned(),
                total_bytes: f["total_bytes"].as_u64().unwrap_or_default(),
            })
            .collect();
        Ok((elapsed, files))
    }

    /// Sends a package request of the caller's making; returns its wall time and the answer.
    pub(crate) async fn package_body(&self, body: &Value) -> Result<(Duration, Value)> {
        let started = Instant::now();
        let answer = self.post("/data-publish/package", body).await?;
        Ok((started.elapsed(), answer))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", &self.api_key)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {path} ({}) -> {status}: {text}", body["project_name"]);
        }
        serde_json::from_str(&text).with_context(|| format!("POST {path}: body {text:?}"))
    }
}
