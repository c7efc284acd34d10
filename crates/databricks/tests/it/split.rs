//! Tables larger than one statement's result (docs/DATABRICKS-WIRE.md §6.4): read in parts by
//! data file over one pinned Delta version, the parts' statements running ahead of the
//! download, every row read once.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use databricks_emulator::fixtures::TableWriter;
use databricks_emulator::{Fault, Operation};
use publish_source::conformance::{assert_batches_eq, collect};
use publish_source::{Source, SourceError};

use crate::common::{CATALOG, Env, SCHEMA, request};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// Rows `ids`, each with a note of `width` characters.
fn rows(ids: std::ops::Range<i64>, width: usize) -> RecordBatch {
    let notes: Vec<String> = ids.clone().map(|i| format!("{i:0>width$}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids)) as ArrayRef,
            Arc::new(StringArray::from(notes)),
        ],
    )
    .expect("batch")
}

/// Writes table `name` (a new Delta version of it) with `row_group_rows` rows per Parquet row
/// group: each row group is one of the emulator's Delta data files.
fn write(env: &Env, name: &str, batches: &[RecordBatch], row_group_rows: usize) {
    let mut writer = TableWriter::create_with_row_groups(
        env.dir.path(),
        CATALOG,
        SCHEMA,
        name,
        schema(),
        row_group_rows,
    )
    .expect("create table");
    for batch in batches {
        writer.write(batch).expect("write rows");
    }
    writer.finish(None).expect("finish table");
}

fn statements(env: &Env) -> Vec<String> {
    env.emulator
        .submitted_statements()
        .iter()
        .map(|s| s["statement"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn is_part(statement: &str) -> bool {
    statement.contains("WHERE _metadata.file_path IN")
}

/// 2 000 rows in 20 data files against a cap of ~6 KiB of result: the whole SELECT comes back
/// truncated, and the table is read again in parts, from the version the read pinned even
/// though a newer one lands meanwhile, every row once and in table order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_over_the_result_cap_is_read_in_parts_from_one_version() {
    // Downloads paced to 200 kB/s, so that part 1 is still being read when part 2 is submitted
    // however busy the machine (unpaced, part 1's few KiB could be read before, under load).
    let env = Env::start_with(|c| {
        c.result_byte_limit = 6 << 10;
        c.download_bandwidth = Some(200_000);
    })
    .await;
    write(&env, "big", &[rows(0..500, 4)], 100);
    let want = rows(0..2_000, 4);
    write(&env, "big", std::slice::from_ref(&want), 100);
    let source = env.source();
    let schema = source
        .describe(&request("big", None))
        .await
        .expect("describe");
    // DESCRIBE HISTORY runs at once; the whole SELECT waits, and version 2 lands meanwhile.
    env.slow_select(Duration::from_millis(1000));
    let writer = {
        let dir = env.dir.path().to_path_buf();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            databricks_emulator::fixtures::write_table(
                &dir,
                CATALOG,
                SCHEMA,
                "big",
                &[rows(5_000..5_010, 4)],
                None,
            )
            .expect("write version 2");
        })
    };
    let stream = source.read(&schema).await.expect("read");
    writer.await.expect("writer");
    assert_eq!(stream.snapshot.as_deref(), Some("delta version 1"));
    let got = collect(stream).await;
    assert_batches_eq(&got, &want, "version 1, every row once, in order");

    let sent = statements(&env);
    let parts: Vec<&String> = sent.iter().filter(|s| is_part(s)).collect();
    assert!(
        parts.len() >= 3,
        "the table should take several parts: {sent:#?}"
    );
    assert!(
        sent.iter()
            .filter(|s| s.starts_with("SELECT"))
            .all(|s| s.contains("VERSION AS OF 1")),
        "every SELECT reads version 1: {sent:#?}"
    );
    assert!(
        sent.iter()
            .any(|s| s.starts_with("SELECT _metadata.file_path AS file_path, COUNT(*)")),
        "{sent:#?}"
    );
    // File paths travel as parameters, never in the SQL text.
    for body in env.emulator.submitted_statements() {
        let text = body["statement"].as_str().unwrap_or_default();
        if is_part(text) {
            assert!(!text.contains("abfss://"), "{text}");
            let parameters = body["parameters"].as_array().expect("parameters");
            assert!(!parameters.is_empty());
            assert!(parameters.iter().all(|p| {
                p["type"] == "STRING"
                    && p["value"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("abfss://"))
            }));
        }
    }
    // Parts run ahead: the second part's statement was submitted while the first part's
    // result was being downloaded (before its last chunk), not after it.
    let journal = env.journal();
    let executes: Vec<usize> = journal
        .iter()
        .enumerate()
        .filter(|(_, e)| e.operation == Some(Operation::ExecuteStatement))
        .map(|(i, _)| i)
        .collect();
    // Executes: DESCRIBE HISTORY, the whole SELECT, the files query, then the parts.
    let second_part = executes[4];
    // Downloads are `/external/<statement id>/…`: the first part is the statement downloaded
    // first.
    let statement_of = |path: &str| {
        path.strip_prefix("/external/")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned)
    };
    let downloads: Vec<(usize, String)> = journal
        .iter()
        .enumerate()
        .filter(|(_, e)| e.operation == Some(Operation::Download))
        .filter_map(|(i, e)| statement_of(&e.path).map(|id| (i, id)))
        .collect();
    let first_part_id = downloads
        .first()
        .map(|(_, id)| id.clone())
        .expect("downloads");
    let last_download_of_first_part = downloads
        .iter()
        .filter(|(_, id)| *id == first_part_id)
        .map(|(i, _)| *i)
        .max()
        .expect("downloads of the first part");
    assert!(
        second_part < last_download_of_first_part,
        "part 2 should be submitted while part 1 is read"
    );
    assert_eq!(
        env.count(Operation::Cancel),
        0,
        "a completed read cancels nothing"
    );
}

/// Rows of very different widths: parts sized by the first (narrow) rows come back truncated
/// when their rows are wide, and are halved until each fits; the read is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_still_too_large_is_halved() {
    let env = Env::start_with(|c| c.result_byte_limit = 8 << 10).await;
    let narrow = rows(0..1_000, 1);
    let wide = rows(1_000..1_400, 120);
    write(&env, "skewed", &[narrow.clone(), wide.clone()], 50);
    let source = env.source();
    let schema = source
        .describe(&request("skewed", None))
        .await
        .expect("describe");
    let got = collect(source.read(&schema).await.expect("read")).await;
    let want = arrow::compute::concat_batches(&schema_of(&narrow), &[narrow, wide]).unwrap();
    assert_batches_eq(&got, &want, "every row once");
    let truncated_parts = env
        .emulator
        .submitted_statements()
        .iter()
        .filter(|s| is_part(s["statement"].as_str().unwrap_or_default()))
        .count();
    assert!(truncated_parts > 3, "{truncated_parts}");
}

fn schema_of(batch: &RecordBatch) -> SchemaRef {
    batch.schema()
}

/// The first error of a stream; the test fails if it ends without one.
async fn first_error(stream: publish_source::TableStream) -> SourceError {
    use futures::StreamExt;
    let mut batches = stream.batches;
    while let Some(item) = batches.next().await {
        if let Err(e) = item {
            return e;
        }
    }
    panic!("the read must fail")
}

/// One data file larger than a whole result cannot be split by file: the error says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_file_over_the_cap_is_named() {
    let env = Env::start_with(|c| c.result_byte_limit = 2 << 10).await;
    write(&env, "onefile", &[rows(0..2_000, 8)], 10_000);
    let source = env.source();
    let schema = source
        .describe(&request("onefile", None))
        .await
        .expect("describe");
    let err = match source.read(&schema).await {
        Ok(stream) => first_error(stream).await,
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains("one data file of table `tre.cohort_a.onefile` at Delta version 0 holds more than the warehouse returns in one query"),
        "{text}"
    );
}

/// Without a Delta version (DESCRIBE HISTORY refused), a truncated result cannot be read in
/// parts from one snapshot: the read fails and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpinned_table_over_the_cap_is_refused() {
    let env = Env::start_with(|c| c.result_byte_limit = 4 << 10).await;
    write(&env, "view_like", &[rows(0..2_000, 4)], 100);
    let source = env.source();
    let schema = source
        .describe(&request("view_like", None))
        .await
        .expect("describe");
    env.emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::FailStatement {
            error_code: "BAD_REQUEST".into(),
            message: "[DELTA_ONLY_OPERATION] DESCRIBE HISTORY is only supported for Delta tables."
                .into(),
        },
    );
    let err = match source.read(&schema).await {
        Ok(_) => panic!("a truncated unpinned read must fail"),
        Err(e) => e,
    };
    // Issue 21: refused naming the reason Databricks would not pin it.
    assert!(
        matches!(&err, SourceError::TooLargeUnpinned { reason, .. } if reason.contains("not a Delta table [DELTA_ONLY_OPERATION]")),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("larger than the warehouse returns in one query")
            && text.contains("cannot be read in parts"),
        "{text}"
    );
    assert!(
        !statements(&env).iter().any(|s| is_part(s)),
        "no part is read unpinned"
    );
}
