//! Integration tests: the emulator on `127.0.0.1:0` over real HTTP, one module per scenario.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod auth;
mod binary;
mod catalog;
mod faults;
mod large;
mod schemas;
mod statements;
mod types;
mod warehouses;

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::ipc::reader::StreamReader;
use base64::Engine as _;
use databricks_emulator::fixtures::{Sidecar, SidecarColumn, TableWriter, write_table};
use databricks_emulator::{Emulator, EmulatorConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Rows of `tre.cohort_a.admissions`.
pub const ROWS: usize = 2_500;
/// Rows per chunk in the default test emulator: 3 chunks (1000, 1000, 500).
pub const CHUNK_ROWS: usize = 1_000;
/// Rows per Parquet row group, so chunks straddle row groups.
pub const ROW_GROUP_ROWS: usize = 300;

pub const ADMISSIONS: &str = "tre.cohort_a.admissions";

pub fn admissions_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("AdmissionId", DataType::Int64, false),
        Field::new("cost_gbp", DataType::Decimal128(12, 2), true),
        Field::new(
            "admitted",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "discharged_local",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("admit_date", DataType::Date32, true),
        Field::new("ward", DataType::Utf8, true),
        Field::new(
            "ward_codes",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("tiny", DataType::Int8, true),
        Field::new("small", DataType::Int16, true),
        Field::new("num", DataType::Int32, true),
        Field::new("ratio32", DataType::Float32, true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("blob", DataType::Binary, true),
        Field::new("code", DataType::LargeUtf8, true),
        Field::new("we`ird col", DataType::Int32, true),
    ]))
}

/// Rows `start..end` of the admissions table; every value derives from the row number.
pub fn admissions_batch(start: usize, end: usize) -> RecordBatch {
    let ids = start..end;
    let mut codes = ListBuilder::new(StringBuilder::new());
    for i in ids.clone() {
        for k in 0..(i % 3) {
            codes.values().append_value(format!("c{k}"));
        }
        codes.append(i % 11 != 0);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(ids.clone().map(|i| i as i64))),
        Arc::new(
            Decimal128Array::from_iter(
                ids.clone().map(|i| (i % 7 != 0).then_some(i as i128 * 101)),
            )
            .with_precision_and_scale(12, 2)
            .unwrap(),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                ids.clone()
                    .map(|i| 1_700_000_000_000_000 + i as i64 * 1_000_000),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            ids.clone().map(|i| 1_600_000_000_000_000 + i as i64 * 500),
        )),
        Arc::new(Date32Array::from_iter_values(
            ids.clone().map(|i| 19_000 + (i % 365) as i32),
        )),
        Arc::new(StringArray::from_iter(
            ids.clone()
                .map(|i| (i % 5 != 0).then(|| format!("W{}", i % 13))),
        )),
        Arc::new(codes.finish()),
        Arc::new(Int8Array::from_iter_values(
            ids.clone().map(|i| (i % 100) as i8),
        )),
        Arc::new(Int16Array::from_iter_values(
            ids.clone().map(|i| (i % 1000) as i16),
        )),
        Arc::new(Int32Array::from_iter_values(
            ids.clone().map(|i| i as i32 * 3),
        )),
        Arc::new(Float32Array::from_iter_values(
            ids.clone().map(|i| i as f32 / 4.0),
        )),
        Arc::new(Float64Array::from_iter_values(
            ids.clone().map(|i| i as f64 / 8.0),
        )),
        Arc::new(BooleanArray::from_iter(
            ids.clone().map(|i| (i % 4 != 0).then_some(i % 2 == 0)),
        )),
        Arc::new(BinaryArray::from_iter_values(
            ids.clone().map(|i| vec![(i % 256) as u8, 1, 2]),
        )),
        Arc::new(arrow::array::LargeStringArray::from_iter_values(
            ids.clone().map(|i| format!("{:03}", i % 1000)),
        )),
        Arc::new(Int32Array::from_iter_values(ids.map(|i| -(i as i32)))),
    ];
    RecordBatch::try_new(admissions_schema(), columns).unwrap()
}

pub fn admissions_sidecar() -> Sidecar {
    let mut sidecar = Sidecar {
        comment: Some("one row per hospital admission".into()),
        primary_key: Some(vec!["AdmissionId".into()]),
        ..Sidecar::default()
    };
    sidecar.columns.insert(
        "code".into(),
        SidecarColumn {
            type_text: Some("char(3)".into()),
            comment: Some("ward code".into()),
        },
    );
    sidecar.columns.insert(
        "cost_gbp".into(),
        SidecarColumn {
            type_text: None,
            comment: Some("tariff cost".into()),
        },
    );
    sidecar
}

/// A running emulator over a fresh data directory, and a client holding a valid token.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub token: String,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut EmulatorConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TableWriter::create_with_row_groups(
            dir.path(),
            "tre",
            "cohort_a",
            "admissions",
            admissions_schema(),
            ROW_GROUP_ROWS,
        )
        .unwrap();
        for start in (0..ROWS).step_by(700) {
            writer
                .write(&admissions_batch(start, (start + 700).min(ROWS)))
                .unwrap();
        }
        writer.finish(Some(&admissions_sidecar())).unwrap();
        write_table(
            dir.path(),
            "tre",
            "cohort_a",
            "empty",
            &[admissions_batch(0, 0)],
            None,
        )
        .unwrap();
        let mut config = EmulatorConfig::new(dir.path());
        config.chunk_rows = CHUNK_ROWS;
        configure(&mut config);
        let emu = Emulator::start(config).await.unwrap();
        let http = reqwest::Client::new();
        let mut env = Env {
            dir,
            emu,
            http,
            token: String::new(),
        };
        env.token = env.fetch_token().await;
        env
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.url())
    }

    pub async fn fetch_token(&self) -> String {
        let basic = base64::engine::general_purpose::STANDARD
            .encode("emulator-client-id:emulator-client-secret");
        let response = self
            .http
            .post(self.url("/oidc/v1/token"))
            .header("Authorization", format!("Basic {basic}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=all-apis")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        into_json(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        into_json(response).await
    }

    /// Executes `sql` with EXTERNAL_LINKS + ARROW_STREAM and `extra` fields merged in.
    pub async fn execute(&self, sql: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({
            "statement": sql, "warehouse_id": "8f3c2a1b9d4e7f60",
            "disposition": "EXTERNAL_LINKS", "format": "ARROW_STREAM", "wait_timeout": "10s",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post("/api/2.0/sql/statements", body).await
    }

    /// Downloads a link the way a client must: its `http_headers`, no Authorization.
    pub async fn download(&self, link: &Value) -> reqwest::Response {
        let mut request = self.http.get(link["external_link"].as_str().unwrap());
        if let Some(headers) = link["http_headers"].as_object() {
            for (k, v) in headers {
                request = request.header(k, v.as_str().unwrap());
            }
        }
        request.send().await.unwrap()
    }

    /// Follows `next_chunk_index` from a SUCCEEDED response, downloading every chunk in order.
    pub async fn fetch_all(&self, response: &Value) -> Vec<Vec<u8>> {
        let id = response["statement_id"].as_str().unwrap();
        let mut bodies = Vec::new();
        let mut link = response["result"]["external_links"][0].clone();
        loop {
            let body = self.download(&link).await;
            assert_eq!(body.status(), StatusCode::OK);
            bodies.push(body.bytes().await.unwrap().to_vec());
            let Some(next) = link["next_chunk_index"].as_u64() else {
                break;
            };
            let (status, data) = self
                .get(&format!(
                    "/api/2.0/sql/statements/{id}/result/chunks/{next}"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{data}");
            link = data["external_links"][0].clone();
        }
        bodies
    }
}

pub async fn into_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Decodes one Arrow IPC stream completely.
pub fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    StreamReader::try_new(Cursor::new(bytes), None)?.collect()
}

/// Concatenates batches into one.
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}
