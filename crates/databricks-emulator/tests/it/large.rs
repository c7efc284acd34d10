//! A large table (10 million rows × 15 columns) streamed without loading it: run with
//! `cargo test --release -p databricks-emulator -- --ignored large`.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use databricks_emulator::fixtures::TableWriter;
use databricks_emulator::{Emulator, EmulatorConfig};
use futures::StreamExt as _;
use serde_json::{Value, json};

const LARGE_ROWS: usize = 10_000_000;

fn schema() -> Arc<Schema> {
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("day", DataType::Date32, true),
        Field::new("flag", DataType::Boolean, true),
    ];
    for i in 0..4 {
        fields.push(Field::new(format!("n{i}"), DataType::Int32, true));
    }
    for i in 0..3 {
        fields.push(Field::new(format!("x{i}"), DataType::Float64, true));
    }
    for i in 0..3 {
        fields.push(Field::new(format!("s{i}"), DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

fn batch(start: usize, end: usize) -> RecordBatch {
    let ids = start..end;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(ids.clone().map(|i| i as i64))),
        Arc::new(
            Decimal128Array::from_iter_values(ids.clone().map(|i| (i % 100_000) as i128))
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                ids.clone().map(|i| 1_700_000_000_000_000 + i as i64),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from_iter_values(
            ids.clone().map(|i| (i % 20_000) as i32),
        )),
        Arc::new(BooleanArray::from_iter(
            ids.clone().map(|i| Some(i % 3 == 0)),
        )),
    ];
    for k in 0..4 {
        columns.push(Arc::new(Int32Array::from_iter_values(
            ids.clone().map(|i| (i * (k + 1)) as i32),
        )));
    }
    for k in 0..3 {
        columns.push(Arc::new(Float64Array::from_iter_values(
            ids.clone().map(|i| i as f64 / (k + 2) as f64),
        )));
    }
    for k in 0..3 {
        columns.push(Arc::new(StringArray::from_iter(ids.clone().map(|i| {
            (i % 17 != k).then(|| format!("value-{}-{k}", i % 10_007))
        }))));
    }
    RecordBatch::try_new(schema(), columns).unwrap()
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "large: run explicitly, preferably with --release"]
async fn large_table_streams_chunk_by_chunk() {
    let rows = LARGE_ROWS;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut writer = TableWriter::create(dir.path(), "bench", "data", "wide", schema()).unwrap();
    for start in (0..rows).step_by(65_536) {
        writer
            .write(&batch(start, (start + 65_536).min(rows)))
            .unwrap();
    }
    writer.finish(None).unwrap();
    eprintln!(
        "wrote {rows} rows in {:?}, peak RSS {} MiB",
        started.elapsed(),
        peak_rss_mib()
    );

    let emu = Emulator::start(EmulatorConfig::new(dir.path()))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/oidc/v1/token", emu.url()))
        .basic_auth("emulator-client-id", Some("emulator-client-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let response: Value = http
        .post(format!("{}/api/2.0/sql/statements", emu.url()))
        .bearer_auth(&token)
        .json(
            &json!({"statement": "SELECT * FROM bench.data.wide", "warehouse_id": "w",
            "disposition": "EXTERNAL_LINKS", "format": "ARROW_STREAM", "wait_timeout": "10s"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    eprintln!("execute answered in {:?}", started.elapsed());
    let id = response["statement_id"].as_str().unwrap().to_owned();
    let chunks = response["manifest"]["total_chunk_count"].as_u64().unwrap();
    assert_eq!(response["manifest"]["total_row_count"], rows);

    let started = Instant::now();
    let bytes: Vec<u64> = futures::stream::iter(0..chunks)
        .map(|n| {
            let (http, token, url, id) = (http.clone(), token.clone(), emu.url(), id.clone());
            async move {
                let data: Value = http
                    .get(format!(
                        "{url}/api/2.0/sql/statements/{id}/result/chunks/{n}"
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let link = &data["external_links"][0];
                let mut request = http.get(link["external_link"].as_str().unwrap());
                for (k, v) in link["http_headers"].as_object().unwrap() {
                    request = request.header(k, v.as_str().unwrap());
                }
                let mut body = request.send().await.unwrap().bytes_stream();
                let mut total = 0u64;
                while let Some(piece) = body.next().await {
                    total += piece.unwrap().len() as u64;
                }
                total
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let total: u64 = bytes.iter().sum();
    let elapsed = started.elapsed();
    eprintln!(
        "downloaded {chunks} chunks, {} MiB in {elapsed:?} ({:.0} MiB/s, {:.1} M rows/s), peak RSS {} MiB",
        total / (1 << 20),
        total as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
        rows as f64 / 1e6 / elapsed.as_secs_f64(),
        peak_rss_mib()
    );
    emu.shutdown().await;
}
