//! SQL Statement Execution: dispositions, formats, chunking, links, states and SQL errors.

use std::io::Read as _;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{ADMISSIONS, CHUNK_ROWS, Env, ROWS, concat, decode};

const SELECT_ALL: &str = "SELECT * FROM tre.cohort_a.admissions";

#[tokio::test]
async fn external_links_arrow_stream_across_chunks() {
    let env = Env::start().await;
    let (status, response) = env.execute(SELECT_ALL, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["status"]["state"], "SUCCEEDED");
    let manifest = &response["manifest"];
    assert_eq!(manifest["format"], "ARROW_STREAM");
    assert_eq!(manifest["total_chunk_count"], 3);
    assert_eq!(manifest["total_row_count"], ROWS);
    assert_eq!(manifest["truncated"], false);
    assert!(manifest.get("result_compression").is_none());
    let chunks = manifest["chunks"].as_array().unwrap();
    let offsets: Vec<(u64, u64)> = chunks
        .iter()
        .map(|c| {
            (
                c["row_offset"].as_u64().unwrap(),
                c["row_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(offsets, [(0, 1000), (1000, 1000), (2000, 500)]);
    let total_bytes: u64 = chunks
        .iter()
        .map(|c| c["byte_count"].as_u64().unwrap())
        .sum();
    assert_eq!(manifest["total_byte_count"], total_bytes);
    let columns = manifest["schema"]["columns"].as_array().unwrap();
    assert_eq!(manifest["schema"]["column_count"], 16);
    let texts: Vec<(&str, &str)> = columns
        .iter()
        .map(|c| {
            (
                c["type_name"].as_str().unwrap(),
                c["type_text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(texts[0], ("LONG", "BIGINT"));
    assert_eq!(texts[1], ("DECIMAL", "DECIMAL(12,2)"));
    assert_eq!(columns[1]["type_precision"], 12);
    assert_eq!(columns[1]["type_scale"], 2);
    assert_eq!(texts[2], ("TIMESTAMP", "TIMESTAMP"));
    assert_eq!(texts[3].1, "TIMESTAMP_NTZ");
    assert_eq!(texts[6], ("ARRAY", "ARRAY<STRING>"));
    assert_eq!(
        texts[14],
        ("STRING", "STRING"),
        "char(3) reads back as STRING"
    );

    let link = &response["result"]["external_links"][0];
    assert_eq!(
        response["result"]["external_links"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(link["chunk_index"], 0);
    assert_eq!(link["next_chunk_index"], 1);
    let id = response["statement_id"].as_str().unwrap();
    assert_eq!(
        link["next_chunk_internal_link"],
        format!("/api/2.0/sql/statements/{id}/result/chunks/1")
    );
    let expiration = link["expiration"].as_str().unwrap();
    assert!(
        expiration.ends_with('Z') && expiration.len() == 24,
        "{expiration}"
    );
    let expires = chrono::DateTime::parse_from_rfc3339(expiration).unwrap();
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((800..=900).contains(&left), "15 min link, {left}s left");

    let bodies = env.fetch_all(&response).await;
    assert_eq!(bodies.len(), 3);
    let mut all = Vec::new();
    for (body, chunk) in bodies.iter().zip(chunks) {
        assert!(
            body.ends_with(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
            "EOS marker"
        );
        let batches = decode(body).unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows as u64, chunk["row_count"].as_u64().unwrap());
        all.extend(batches);
    }
    let table = concat(&all);
    assert_eq!(table.num_rows(), ROWS);
    let schema = table.schema();
    assert_eq!(schema.field(0).data_type(), &DataType::Int64);
    assert!(!schema.field(0).is_nullable());
    assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(12, 2));
    assert_eq!(
        schema.field(2).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("Etc/UTC".into()))
    );
    assert_eq!(
        schema.field(3).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(schema.field(5).data_type(), &DataType::Utf8);
    assert!(
        matches!(schema.field(6).data_type(), DataType::List(f) if f.data_type() == &DataType::Utf8)
    );
    assert_eq!(
        schema.field(14).data_type(),
        &DataType::Utf8,
        "LargeUtf8 is cast to Utf8"
    );
    assert_eq!(
        schema
            .field(1)
            .metadata()
            .get("Spark:DataType:SqlName")
            .map(String::as_str),
        Some("DECIMAL(12,2)")
    );
    assert_eq!(
        schema
            .field(6)
            .metadata()
            .get("Spark:DataType:SqlName")
            .map(String::as_str),
        Some("ARRAY<STRING>")
    );
    let ids = table.column(0).as_primitive::<Int64Type>();
    assert!(
        ids.values().iter().enumerate().all(|(i, v)| *v == i as i64),
        "in order"
    );
    let cost = table
        .column(1)
        .as_primitive::<arrow::datatypes::Decimal128Type>();
    assert!(cost.is_null(7) && cost.value(8) == 808);
    let ward = table.column(5).as_string::<i32>();
    assert!(ward.is_null(1995) && ward.value(1996) == format!("W{}", 1996 % 13));
    let codes = table.column(6).as_list::<i32>();
    assert!(codes.is_null(2002));
    assert_eq!(codes.value(2003).len(), 2003 % 3);
    assert_eq!(table.column(14).as_string::<i32>().value(1234), "234");
}

#[tokio::test]
async fn download_rules() {
    let env = Env::start().await;
    let (_, response) = env.execute(SELECT_ALL, json!({})).await;
    let link = response["result"]["external_links"][0].clone();
    let url = link["external_link"].as_str().unwrap();
    assert!(url.contains("sig="), "{url}");

    let with_auth = env
        .http
        .get(url)
        .bearer_auth(&env.token)
        .header(
            "x-ms-emulator-check",
            link["http_headers"]["x-ms-emulator-check"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(with_auth.status(), StatusCode::FORBIDDEN);
    assert_eq!(with_auth.headers()["content-type"], "application/xml");
    assert!(with_auth.text().await.unwrap().contains("<Error><Code>"));

    let without_headers = env.http.get(url).send().await.unwrap();
    assert_eq!(without_headers.status(), StatusCode::FORBIDDEN);
    let forged = env
        .http
        .get(url.replace("sig=", "sig=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let good = env.download(&link).await;
    assert_eq!(good.status(), StatusCode::OK);
    decode(&good.bytes().await.unwrap()).unwrap();

    let downloads: Vec<_> = env
        .emu
        .journal()
        .into_iter()
        .filter(|e| e.operation == Some(databricks_emulator::Operation::Download))
        .map(|e| (e.status, e.authorization))
        .collect();
    assert_eq!(
        downloads,
        [(403, true), (403, false), (403, false), (200, false)]
    );

    // Re-requesting a chunk hands out a fresh link; the old one stays valid until it expires.
    let id = response["statement_id"].as_str().unwrap();
    let (status, again) = env
        .get(&format!("/api/2.0/sql/statements/{id}/result/chunks/0"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(
        again["external_links"][0]["external_link"],
        link["external_link"]
    );
    assert_eq!(
        env.download(&again["external_links"][0]).await.status(),
        StatusCode::OK
    );
    let (status, body) = env
        .get(&format!("/api/2.0/sql/statements/{id}/result/chunks/3"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn hostile_identifiers_and_projection() {
    let env = Env::start().await;
    let (_, response) = env
        .execute(
            "select `we``ird col`, admissionid, `AdmissionId` FROM `TRE`.`cohort_a`.`Admissions`;",
            json!({"row_limit": 1500}),
        )
        .await;
    assert_eq!(response["status"]["state"], "SUCCEEDED", "{response}");
    let names: Vec<&str> = response["manifest"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["we`ird col", "AdmissionId", "AdmissionId"]);
    assert_eq!(response["manifest"]["truncated"], true);
    assert_eq!(response["manifest"]["total_row_count"], 1500);
    assert_eq!(response["manifest"]["total_chunk_count"], 2);
    let bodies = env.fetch_all(&response).await;
    let all: Vec<_> = bodies.iter().flat_map(|b| decode(b).unwrap()).collect();
    let table = concat(&all);
    assert_eq!(table.num_columns(), 3);
    assert_eq!(table.num_rows(), 1500);
    let weird = table
        .column(0)
        .as_primitive::<arrow::datatypes::Int32Type>();
    assert_eq!(weird.value(1499), -1499);
    assert_eq!(table.column(1), table.column(2));
}

#[tokio::test]
async fn inline_json_array() {
    let env = Env::start().await;
    let body = json!({
        "statement": "SELECT AdmissionId, cost_gbp, ward, admitted, discharged_local, admit_date, ward_codes, flag, blob FROM tre.cohort_a.admissions",
        "warehouse_id": "anything", "row_limit": 6,
    });
    let (status, response) = env.post("/api/2.0/sql/statements", body).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["status"]["state"], "SUCCEEDED");
    let manifest = &response["manifest"];
    assert_eq!(manifest["format"], "JSON_ARRAY");
    assert_eq!(manifest["truncated"], true);
    assert!(manifest.get("total_byte_count").is_none());
    assert!(manifest["chunks"][0].get("byte_count").is_none());
    let result = &response["result"];
    assert_eq!(result["chunk_index"], 0);
    assert_eq!(result["row_count"], 6);
    assert!(result.get("next_chunk_index").is_none());
    let rows = result["data_array"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(
        rows[0],
        json!([
            "0",
            null,
            null,
            "2023-11-14T22:13:20Z",
            "2020-09-13T12:26:40",
            "2022-01-08",
            null,
            null,
            "AAEC"
        ])
    );
    assert_eq!(
        rows[5],
        json!([
            "5",
            "5.05",
            null,
            "2023-11-14T22:13:25Z",
            "2020-09-13T12:26:40.002500",
            "2022-01-13",
            "[\"c0\",\"c1\"]",
            "false",
            "BQEC"
        ])
    );
}

#[tokio::test]
async fn inline_results_keep_the_chunking() {
    let env = Env::start().await;
    let (_, response) = env
        .execute(
            "SELECT AdmissionId FROM tre.cohort_a.admissions",
            json!({"disposition": "INLINE", "format": "JSON_ARRAY"}),
        )
        .await;
    assert_eq!(response["manifest"]["total_chunk_count"], 3);
    assert_eq!(response["result"]["next_chunk_index"], 1);
    let id = response["statement_id"].as_str().unwrap();
    let (status, chunk) = env
        .get(&format!("/api/2.0/sql/statements/{id}/result/chunks/2"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chunk["row_offset"], 2000);
    assert_eq!(chunk["data_array"][499], json!(["2499"]));
    assert!(chunk.get("next_chunk_index").is_none());
}

#[tokio::test]
async fn request_validation() {
    let env = Env::start().await;
    let (status, body) = env
        .execute(
            SELECT_ALL,
            json!({"disposition": "INLINE", "format": "ARROW_STREAM"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error_code": "INVALID_PARAMETER_VALUE",
               "message": "The format field must be JSON_ARRAY when the disposition field is INLINE."})
    );
    for wait in ["3s", "51s", "10", "abc"] {
        let (status, body) = env.execute(SELECT_ALL, json!({"wait_timeout": wait})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wait}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    }
    let (status, _) = env
        .execute(SELECT_ALL, json!({"on_wait_timeout": "WAIT"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = env.execute(SELECT_ALL, json!({"warehouse_id": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sql_errors_are_failed_statements() {
    let env = Env::start().await;
    let cases = [
        (
            "SELECT * FROM tre.cohort_a.admissions WHERE 1 = 1",
            "[PARSE_SYNTAX_ERROR]",
            "42601",
        ),
        (
            "DELETE FROM tre.cohort_a.admissions",
            "[PARSE_SYNTAX_ERROR]",
            "42601",
        ),
        (
            "SELECT * FROM tre.cohort_a.nope",
            "[TABLE_OR_VIEW_NOT_FOUND]",
            "42P01",
        ),
        (
            "SELECT * FROM nope.cohort_a.admissions",
            "[TABLE_OR_VIEW_NOT_FOUND]",
            "42P01",
        ),
        (
            "SELECT agee FROM tre.cohort_a.admissions",
            "[UNRESOLVED_COLUMN",
            "42703",
        ),
    ];
    for (sql, class, sql_state) in cases {
        let (status, response) = env.execute(sql, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{sql}");
        assert_eq!(response["status"]["state"], "FAILED", "{sql}");
        let error = &response["status"]["error"];
        assert_eq!(error["error_code"], "BAD_REQUEST");
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with(class), "{message}");
        assert!(
            message.contains(&format!("SQLSTATE: {sql_state}")),
            "{message}"
        );
        assert_eq!(response["status"]["sql_state"], sql_state);
        assert!(response.get("manifest").is_none());
    }
}

#[tokio::test]
async fn two_part_names_use_the_request_catalog() {
    let env = Env::start().await;
    let (_, response) = env
        .execute(
            "SELECT AdmissionId FROM cohort_a.admissions",
            json!({"catalog": "tre"}),
        )
        .await;
    assert_eq!(response["status"]["state"], "SUCCEEDED", "{response}");
}

#[tokio::test]
async fn empty_result_has_no_chunks() {
    let env = Env::start().await;
    let (_, response) = env
        .execute("SELECT * FROM tre.cohort_a.empty", json!({}))
        .await;
    assert_eq!(response["status"]["state"], "SUCCEEDED");
    assert_eq!(response["manifest"]["total_chunk_count"], 0);
    assert_eq!(response["manifest"]["total_row_count"], 0);
    assert_eq!(response["manifest"]["chunks"], json!([]));
    assert!(response.get("result").is_none());
}

/// Splits an LZ4 body into its frames' contents, in order.
fn lz4_frames(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    // lz4_flex 0.11's `read_to_end` stops at the end of a frame, and a decoder reused for the
    // next frame trips its debug assertions: one decoder per frame.
    while !body.is_empty() {
        let mut plain = Vec::new();
        lz4_flex::frame::FrameDecoder::new(&mut body)
            .read_to_end(&mut plain)
            .unwrap();
        frames.push(plain);
    }
    frames
}

#[tokio::test]
async fn lz4_one_frame_per_arrow_message_on_request() {
    let env = Env::start().await;
    let (_, response) = env
        .execute(SELECT_ALL, json!({"result_compression": "LZ4_FRAME"}))
        .await;
    assert_eq!(response["manifest"]["result_compression"], "LZ4_FRAME");
    assert_eq!(
        env.emu.submitted_statements().last().unwrap()["result_compression"],
        "LZ4_FRAME"
    );
    let bodies = env.fetch_all(&response).await;
    assert_eq!(bodies.len(), 3);
    let mut rows = 0;
    for body in bodies {
        assert_eq!(&body[..4], &[0x04, 0x22, 0x4D, 0x18]);
        let frames = lz4_frames(&body);
        // As Databricks writes it: the schema, each batch (one per chunk of ≤ 1000 rows here)
        // and the end-of-stream marker, each in a frame of its own.
        assert_eq!(frames.len(), 3, "one frame per IPC message");
        assert_eq!(frames[2], [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
        assert_eq!(
            decode(&frames[0]).map_or(0, |b| b.len()),
            0,
            "the first frame alone holds only the schema"
        );
        let plain = frames.concat();
        rows += decode(&plain)
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>();
    }
    assert_eq!(rows, ROWS);
}

#[tokio::test]
async fn json_array_and_csv_links() {
    let env = Env::start().await;
    let sql = "SELECT AdmissionId, ward FROM tre.cohort_a.admissions";
    let (_, response) = env.execute(sql, json!({"format": "JSON_ARRAY"})).await;
    let bodies = env.fetch_all(&response).await;
    let first: Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(first[0], json!(["0", null]));
    assert_eq!(first[1], json!(["1", "W1"]));
    assert_eq!(first.as_array().unwrap().len(), CHUNK_ROWS);

    let (_, response) = env.execute(sql, json!({"format": "CSV"})).await;
    let bodies = env.fetch_all(&response).await;
    let text = String::from_utf8(bodies[0].clone()).unwrap();
    assert!(
        text.starts_with("AdmissionId,ward\r\n0,null\r\n1,W1\r\n"),
        "{}",
        &text[..40]
    );
    let second = String::from_utf8(bodies[1].clone()).unwrap();
    assert!(
        second.starts_with("1000,null\r\n"),
        "header only in chunk 0"
    );
}

#[tokio::test]
async fn pending_then_polled_to_success() {
    let env = Env::start_with(|c| c.pending_delay = Duration::from_millis(400)).await;
    let (_, response) = env.execute(SELECT_ALL, json!({"wait_timeout": "0s"})).await;
    assert_eq!(response["status"]["state"], "PENDING");
    assert!(response.get("manifest").is_none());
    let id = response["statement_id"].as_str().unwrap().to_owned();
    let mut seen = vec!["PENDING".to_owned()];
    let last = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, polled) = env.get(&format!("/api/2.0/sql/statements/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let state = polled["status"]["state"].as_str().unwrap().to_owned();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "SUCCEEDED" {
            break polled;
        }
    };
    assert_eq!(seen, ["PENDING", "RUNNING", "SUCCEEDED"]);
    assert_eq!(last["manifest"]["total_chunk_count"], 3);
    assert_eq!(env.fetch_all(&last).await.len(), 3);

    // A wait_timeout longer than the delay blocks until the statement is done.
    let (_, response) = env.execute(SELECT_ALL, json!({"wait_timeout": "5s"})).await;
    assert_eq!(response["status"]["state"], "SUCCEEDED");
}

#[tokio::test]
async fn cancel_and_close() {
    let env = Env::start_with(|c| c.pending_delay = Duration::from_secs(30)).await;
    let (_, response) = env.execute(SELECT_ALL, json!({"wait_timeout": "0s"})).await;
    let id = response["statement_id"].as_str().unwrap().to_owned();
    assert_eq!(env.emu.statement_state(&id).as_deref(), Some("PENDING"));
    let (status, _) = env
        .post(&format!("/api/2.0/sql/statements/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.emu.statement_state(&id).as_deref(), Some("CANCELED"));
    let (_, polled) = env.get(&format!("/api/2.0/sql/statements/{id}")).await;
    assert_eq!(polled["status"]["state"], "CANCELED");
    let (status, _) = env
        .get(&format!("/api/2.0/sql/statements/{id}/result/chunks/0"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let response = env
        .http
        .delete(env.url(&format!("/api/2.0/sql/statements/{id}")))
        .bearer_auth(&env.token)
        .json(&json!({"statement_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(env.emu.statement_state(&id).as_deref(), Some("CLOSED"));
    assert_eq!(env.emu.statement_state("no-such-id"), None);
    let (status, body) = env.get("/api/2.0/sql/statements/no-such-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "NOT_FOUND");
}

#[tokio::test]
async fn cancel_after_success_is_a_no_op() {
    // Cancel is best effort: a statement that already SUCCEEDED stays SUCCEEDED with its result.
    let env = Env::start().await;
    let (_, response) = env.execute(SELECT_ALL, json!({})).await;
    assert_eq!(response["status"]["state"], "SUCCEEDED");
    let id = response["statement_id"].as_str().unwrap();
    let (status, _) = env
        .post(&format!("/api/2.0/sql/statements/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, polled) = env.get(&format!("/api/2.0/sql/statements/{id}")).await;
    assert_eq!(polled["status"]["state"], "SUCCEEDED");
    let (status, _) = env
        .get(&format!("/api/2.0/sql/statements/{id}/result/chunks/1"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn close_removes_the_result() {
    let env = Env::start().await;
    let (_, response) = env.execute(SELECT_ALL, json!({})).await;
    let id = response["statement_id"].as_str().unwrap();
    let link = response["result"]["external_links"][0].clone();
    let closed = env
        .http
        .delete(env.url(&format!("/api/2.0/sql/statements/{id}")))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), StatusCode::OK);
    let (_, polled) = env.get(&format!("/api/2.0/sql/statements/{id}")).await;
    assert_eq!(polled["status"]["state"], "CLOSED");
    let (status, _) = env
        .get(&format!("/api/2.0/sql/statements/{id}/result/chunks/1"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(env.download(&link).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn on_wait_timeout_cancel() {
    let env = Env::start_with(|c| c.pending_delay = Duration::from_secs(30)).await;
    let started = std::time::Instant::now();
    let (_, response) = env
        .execute(
            SELECT_ALL,
            json!({"wait_timeout": "5s", "on_wait_timeout": "CANCEL"}),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(response["status"]["state"], "CANCELED");
}

#[tokio::test]
async fn trailing_slashes_sessions_and_bodies_on_get() {
    let env = Env::start().await;
    let (status, session) = env
        .post("/api/2.0/sql/sessions/", json!({"warehouse_id": "w"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let session_id = session["session_id"].as_str().unwrap().to_owned();
    let (status, response) = env
        .post(
            "/api/2.0/sql/statements/",
            json!({"statement": SELECT_ALL, "warehouse_id": "w", "session_id": session_id,
                   "disposition": "EXTERNAL_LINKS", "format": "ARROW_STREAM"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = response["statement_id"].as_str().unwrap();
    let polled = env
        .http
        .get(env.url(&format!("/api/2.0/sql/statements/{id}/")))
        .bearer_auth(&env.token)
        .json(&json!({"statement_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), StatusCode::OK);
    let deleted = env
        .http
        .delete(env.url(&format!("/api/2.0/sql/sessions/{session_id}")))
        .bearer_auth(&env.token)
        .json(&json!({"warehouse_id": "w", "session_id": session_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let paths: Vec<String> = env.emu.journal().into_iter().map(|e| e.path).collect();
    assert!(
        paths.contains(&"/api/2.0/sql/statements/".to_owned()),
        "{paths:?}"
    );
    let (status, _) = env
        .get(&format!("/api/2.1/unity-catalog/tables/{ADMISSIONS}/"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A paced emulator sends no chunk faster than its bandwidth, and counts what it sent.
#[tokio::test]
async fn downloads_are_paced_and_counted() {
    let env = Env::start_with(|c| c.download_bandwidth = Some(200_000)).await;
    let (status, response) = env.execute(SELECT_ALL, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let (_, before) = env.get("/emulator/stats").await;
    let began = std::time::Instant::now();
    let bodies = env.fetch_all(&response).await;
    let elapsed = began.elapsed().as_secs_f64();
    let sent: usize = bodies.iter().map(Vec::len).sum();
    let (_, after) = env.get("/emulator/stats").await;
    let counted =
        after["download_bytes"].as_u64().unwrap() - before["download_bytes"].as_u64().unwrap();
    assert_eq!(counted, sent as u64, "every byte sent is counted");
    // Each chunk is paced on its own: its bytes at 200 kB/s at the least.
    let slowest_allowed = bodies
        .iter()
        .map(|b| b.len() as f64 / 200_000.0)
        .sum::<f64>();
    assert!(
        elapsed >= slowest_allowed * 0.95,
        "{sent} bytes took {elapsed:.3} s, less than the pace allows ({slowest_allowed:.3} s)"
    );
}

/// With a budget, a statement repeated over unchanged data is answered from the query result
/// cache: the same bytes, and no chunk produced again. The same statement uncompressed, and the
/// same statement once its table is written over, are produced from the table.
#[tokio::test]
async fn a_repeated_statement_is_answered_from_the_result_cache() {
    let env = Env::start_with(|c| c.result_cache_bytes = 64 << 20).await;
    let lz4 = json!({"result_compression": "LZ4_FRAME"});
    let counts = |stats: &Value| {
        let cache = &stats["result_cache"];
        (
            cache["hits"].as_u64().unwrap(),
            cache["produced"].as_u64().unwrap(),
        )
    };
    let (status, first) = env.execute(SELECT_ALL, lz4.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let cold = env.fetch_all(&first).await;
    let n = cold.len() as u64;
    assert!(n > 1, "several chunks");
    assert_eq!(counts(&env.get("/emulator/stats").await.1), (0, n));

    let (_, second) = env.execute(SELECT_ALL, lz4.clone()).await;
    assert_ne!(first["statement_id"], second["statement_id"]);
    assert_eq!(env.fetch_all(&second).await, cold, "the stored bytes");
    assert_eq!(counts(&env.get("/emulator/stats").await.1), (n, n));

    let (_, plain) = env.execute(SELECT_ALL, json!({})).await;
    let plain = env.fetch_all(&plain).await;
    assert_ne!(plain, cold, "uncompressed is another result");
    assert_eq!(counts(&env.get("/emulator/stats").await.1), (n, 2 * n));
    let rows: usize = plain
        .iter()
        .map(|b| {
            decode(b)
                .unwrap()
                .iter()
                .map(|r| r.num_rows())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(rows, ROWS);

    databricks_emulator::fixtures::write_table(
        env.dir.path(),
        "tre",
        "cohort_a",
        "admissions",
        &[crate::admissions_batch(0, 10)],
        Some(&crate::admissions_sidecar()),
    )
    .unwrap();
    let (_, changed) = env.execute(SELECT_ALL, lz4).await;
    assert_eq!(changed["manifest"]["total_row_count"], 10, "{changed}");
    let fresh = env.fetch_all(&changed).await;
    assert_eq!(fresh.len(), 1);
    assert_eq!(counts(&env.get("/emulator/stats").await.1), (n, 2 * n + 1));
}

/// Each Parquet row group is one Delta data file: the data files query lists them with their
/// rows, a SELECT restricted to some of them (named by bound parameters) returns just their rows,
/// an unbound parameter fails the statement, and a result over the byte cap is cut and says
/// `truncated`.
#[tokio::test]
async fn data_files_reads_by_file_and_the_result_cap() {
    let env = Env::start_with(|c| c.result_byte_limit = 16 << 10).await;
    let inline = json!({"disposition": "INLINE", "format": "JSON_ARRAY"});
    let (status, listed) = env
        .execute(
            "SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM \
             `tre`.`cohort_a`.`admissions` GROUP BY _metadata.file_path",
            inline.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["status"]["state"], "SUCCEEDED", "{listed}");
    let columns: Vec<&str> = listed["manifest"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["file_path", "num_rows"]);
    let files: Vec<(String, usize)> = listed["result"]["data_array"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                row[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    // 2 500 rows in row groups of 300: nine files.
    assert_eq!(files.len(), ROWS.div_ceil(crate::ROW_GROUP_ROWS));
    assert_eq!(files.iter().map(|f| f.1).sum::<usize>(), ROWS);
    for (path, _) in &files {
        assert!(
            path.starts_with("abfss://") && path.ends_with(".c000.snappy.parquet"),
            "{path}"
        );
    }
    let (_, again) = env
        .execute(
            "SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM \
             tre.cohort_a.admissions VERSION AS OF 0 GROUP BY _metadata.file_path",
            inline,
        )
        .await;
    assert_eq!(
        again["result"]["data_array"], listed["result"]["data_array"],
        "file names are stable for a version"
    );

    // The whole table is over the 16 KiB cap.
    let (_, whole) = env.execute(SELECT_ALL, json!({})).await;
    assert_eq!(whole["manifest"]["truncated"], true, "{whole}");
    let kept = whole["manifest"]["total_row_count"].as_u64().unwrap();
    assert!(kept > 0 && kept < ROWS as u64, "{kept}");
    // A smaller byte_limit of the request wins.
    let (_, limited) = env.execute(SELECT_ALL, json!({"byte_limit": 4096})).await;
    assert!(limited["manifest"]["total_row_count"].as_u64().unwrap() < kept);

    // Files 1 and 3 (rows 300..600 and 900..1200), as STRING parameters.
    let (_, part) = env
        .execute(
            "SELECT `AdmissionId` FROM tre.cohort_a.admissions WHERE _metadata.file_path IN \
             (:a, :b)",
            json!({"parameters": [
                {"name": "a", "value": files[1].0},
                {"name": "b", "value": files[3].0, "type": "STRING"},
            ]}),
        )
        .await;
    assert_eq!(part["status"]["state"], "SUCCEEDED", "{part}");
    assert_eq!(part["manifest"]["truncated"], false);
    assert_eq!(part["manifest"]["total_row_count"], 600);
    let batches: Vec<_> = env
        .fetch_all(&part)
        .await
        .iter()
        .flat_map(|body| decode(body).unwrap())
        .collect();
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let want: Vec<i64> = (300..600).chain(900..1200).collect();
    assert_eq!(ids, want);

    // A file that is not the table's matches nothing; an unbound marker fails.
    let (_, none) = env
        .execute(
            "SELECT `AdmissionId` FROM tre.cohort_a.admissions WHERE _metadata.file_path IN (:a)",
            json!({"parameters": [{"name": "a", "value": "abfss://elsewhere/part-0.parquet"}]}),
        )
        .await;
    assert_eq!(none["manifest"]["total_row_count"], 0, "{none}");
    let (_, unbound) = env
        .execute(
            "SELECT `AdmissionId` FROM tre.cohort_a.admissions WHERE _metadata.file_path IN \
             (:a, :b)",
            json!({"parameters": [{"name": "a", "value": files[0].0}]}),
        )
        .await;
    assert_eq!(unbound["status"]["state"], "FAILED");
    let message = unbound["status"]["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("[UNBOUND_SQL_PARAMETER] Found the unbound parameter: b."),
        "{message}"
    );
}
