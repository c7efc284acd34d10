//! A multi-chunk read of many types, values compared exactly, and what went over the wire.

use std::time::Duration;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, DurationMicrosecondArray, Int64Array, IntervalYearMonthArray, RecordBatch,
};
use arrow::datatypes::{DataType, Field, Schema};
use databricks_emulator::Operation;
use databricks_emulator::fixtures::write_table;
use publish_source::conformance::{PEOPLE_ROWS, assert_batches_eq, collect};
use publish_source::{Source, SourceExt};

use crate::common::{CATALOG, Env, SCHEMA, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_chunk_read_of_every_type_is_exact() {
    let env = Env::start().await;
    let source = env.source();
    let (schema, stream) = source.open(&request("people", None)).await.expect("open");
    assert_eq!(schema, env.suite.people().definition);
    let got = collect(stream).await;
    let want = env.suite.people().batches;
    let want = arrow::compute::concat_batches(&want[0].schema(), &want).expect("concat");
    assert_batches_eq(&got, &want, "people");
    assert_eq!(got.num_rows(), PEOPLE_ROWS);

    // 250 rows in chunks of 64: 4 downloads; chunk 0's link came with the statement.
    assert_eq!(env.count(Operation::Download), 4);
    assert_eq!(env.count(Operation::GetChunk), 3);
    assert_eq!(env.count(Operation::Token), 1, "one token for every call");
    assert_eq!(
        env.count(Operation::Cancel),
        0,
        "a completed read cancels nothing"
    );
    for entry in env.journal() {
        let is_download = entry.operation == Some(Operation::Download);
        if is_download {
            assert!(
                !entry.authorization,
                "a download carried Authorization: {entry:?}"
            );
        } else {
            // The token call carries Basic auth, every API call the bearer token.
            assert!(entry.authorization, "{entry:?}");
        }
        assert!(entry.status < 300, "{entry:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lz4_by_default_every_frame_decoded_and_off_on_request() {
    // Issue 11: Databricks writes one LZ4 frame per Arrow IPC message, and so does the
    // emulator; a reader that stops after the first frame sees only each chunk's schema.
    let env = Env::start().await;
    let fixture = env.suite.people();
    let want = arrow::compute::concat_batches(&fixture.batches[0].schema(), &fixture.batches)
        .expect("concat");
    for (lz4, sent) in [(None, Some("LZ4_FRAME")), (Some(false), None)] {
        let source = env.source_with(|c| {
            if let Some(on) = lz4 {
                c.options.lz4_compression = on;
            }
        });
        let before = env.count(Operation::Download);
        let (_, stream) = source.open(&request("people", None)).await.expect("open");
        let got = collect(stream).await;
        assert_batches_eq(&got, &want, &format!("people, lz4 {lz4:?}"));
        assert_eq!(got.num_rows(), PEOPLE_ROWS);
        assert_eq!(env.count(Operation::Download) - before, 4, "every chunk");
        let submitted = env.emulator.submitted_statements();
        let body = submitted.last().expect("a statement was submitted");
        assert_eq!(
            body.get("result_compression").and_then(|v| v.as_str()),
            sent,
            "lz4 {lz4:?}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_values_sent_as_json_text_read_as_native_values() {
    // docs/DATABRICKS-WIRE.md §4: a warehouse may send ARRAY/MAP/STRUCT as JSON text; the client
    // parses it into the nested type Unity Catalog declares, so the result is the same.
    let env = Env::start_with(|c| c.complex_as_json_text = true).await;
    let source = env.source();
    let (schema, stream) = source.open(&request("people", None)).await.expect("open");
    assert_eq!(schema, env.suite.people().definition);
    let got = collect(stream).await;
    let want = env.suite.people().batches;
    let want = arrow::compute::concat_batches(&want[0].schema(), &want).expect("concat");
    assert_batches_eq(&got, &want, "people, nested values as JSON text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_columns_are_read_exactly() {
    let env = Env::start().await;
    let batch = RecordBatch::try_from_iter_with_nullable(vec![
        (
            "Months",
            Arc::new(IntervalYearMonthArray::from(vec![Some(14), Some(-3), None])) as ArrayRef,
            true,
        ),
        (
            "Span",
            Arc::new(DurationMicrosecondArray::from(vec![
                Some(93_784_000_005),
                Some(-1_500_000),
                None,
            ])) as ArrayRef,
            true,
        ),
    ])
    .expect("batch");
    write_table(
        env.dir.path(),
        CATALOG,
        SCHEMA,
        "spans",
        std::slice::from_ref(&batch),
        None,
    )
    .expect("write table");
    let source = env.source();
    let (schema, stream) = source.open(&request("spans", None)).await.expect("open");
    let types: Vec<String> = schema
        .columns
        .iter()
        .map(|c| c.data_type.to_string())
        .collect();
    assert_eq!(types, ["interval year to month", "interval day to second"]);
    assert_batches_eq(&collect(stream).await, &batch, "spans");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_takes_time_is_polled_to_completion() {
    let env = Env::start_with(|c| c.pending_delay = Duration::from_millis(600)).await;
    let source = env.source_with(|c| c.options.max_parallel_downloads = 1);
    let schema = source
        .describe(&request("people", Some(&["Id"])))
        .await
        .expect("describe");
    let batches = source.read_to_vec(&schema).await.expect("read");
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        PEOPLE_ROWS
    );
    assert!(
        env.count(Operation::GetStatement) >= 1,
        "the status was polled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_one_token() {
    let env = Env::start().await;
    let source = env.source();
    let schema = source
        .describe(&request("people", Some(&["Name", "Id"])))
        .await
        .expect("describe");
    let reads = (0..4).map(|_| source.read_to_vec(&schema));
    for result in futures::future::join_all(reads).await {
        let rows: usize = result.expect("read").iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, PEOPLE_ROWS);
    }
    assert_eq!(env.count(Operation::Token), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_query_can_answer_within_the_submit_call() {
    let env = Env::start().await;
    let source = env.source_with(|c| c.options.submit_wait = Duration::from_secs(10));
    let schema = source
        .describe(&request("people", Some(&["Id"])))
        .await
        .expect("describe");
    let batches = source.read_to_vec(&schema).await.expect("read");
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        PEOPLE_ROWS
    );
    assert_eq!(env.count(Operation::GetStatement), 0, "no poll was needed");
}

/// A read is pinned to the table's Delta version when it starts (`DESCRIBE HISTORY`, then
/// `VERSION AS OF`): a write that lands while the query waits does not reach it, and the stream
/// names the version it read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_keeps_the_version_it_started_at() {
    let env = Env::start().await;
    let ids = |values: &[i64]| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(values.to_vec())) as ArrayRef],
        )
        .expect("batch")
    };
    let write = |values: &[i64]| {
        write_table(
            env.dir.path(),
            CATALOG,
            SCHEMA,
            "versioned",
            &[ids(values)],
            None,
        )
        .expect("write table")
    };
    write(&[1, 2, 3]);
    write(&[10, 20]);
    let source = env.source();
    let schema = source
        .describe(&request("versioned", None))
        .await
        .expect("describe");
    // The first statement (DESCRIBE HISTORY) runs at once; the SELECT waits 1.5 s, and version 2
    // is written meanwhile.
    env.slow_select(Duration::from_millis(1500));
    let dir = env.dir.path().to_path_buf();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        write_table(&dir, CATALOG, SCHEMA, "versioned", &[ids(&[100])], None).expect("write");
    });
    let stream = source.read(&schema).await.expect("read");
    assert_eq!(stream.snapshot.as_deref(), Some("delta version 1"));
    let batches = collect(stream).await;
    writer.await.expect("writer");
    assert_batches_eq(
        &batches,
        &ids(&[10, 20]),
        "version 1, not the write that landed",
    );

    let stream = source.read(&schema).await.expect("read again");
    assert_eq!(stream.snapshot.as_deref(), Some("delta version 2"));
    assert_batches_eq(&collect(stream).await, &ids(&[100]), "version 2");
}

/// A column of NULL literals is `VOID` in Databricks (type text `void`, Arrow `Null` on the
/// wire): it is described as a text column and read as all NULL, in every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_column_is_read_as_null_text() {
    let env = Env::start().await;
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("nothing", DataType::Null, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
            Arc::new(arrow::array::NullArray::new(3)),
        ],
    )
    .expect("batch");
    write_table(env.dir.path(), CATALOG, SCHEMA, "voids", &[batch], None).expect("write");
    let source = env.source();
    let (schema, stream) = source.open(&request("voids", None)).await.expect("open");
    assert_eq!(schema.columns[1].data_type.to_string(), "void");
    let got = collect(stream).await;
    assert_eq!(got.num_rows(), 3);
    assert_eq!(got.column(1).data_type(), &DataType::Utf8);
    assert_eq!(got.column(1).null_count(), 3);
}
