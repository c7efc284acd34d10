//! The protocol conformance suite of [`Sink`] (feature `test-util`): what every sink must do
//! whatever its format — tables one after another with their stats, the canonical schema
//! checked at the start of a table and on every batch, NOT NULL enforced, a table written once,
//! an abandoned table failing the sink, a drop mid-table neither blocking nor panicking.
//!
//! Each scenario takes a function opening the sink under test in a directory, so the memory
//! sink here and the writers of `publish-writers` run the same suite; the formats' own suite
//! (reading every value back) lives with the writers. Scenarios panic with a message naming
//! what differs, like `assert!`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use publish_columns::arrow_schema;
use publish_types::{ColumnSchema, Identifier, ObjectName, TableSchema, UcType};

use crate::{Sink, SinkError, TableStats};

/// Opens the sink under test, writing into the given root.
pub type OpenSink<'a> = &'a dyn Fn(&Path) -> Result<Box<dyn Sink>, SinkError>;

/// Runs every scenario of the suite.
pub async fn run_all(open: OpenSink<'_>) {
    writes_tables_one_after_another(open).await;
    refuses_a_schema_that_is_not_canonical(open).await;
    refuses_a_batch_of_another_schema(open).await;
    refuses_null_in_not_null(open).await;
    refuses_a_table_twice(open).await;
    an_abandoned_table_fails_the_sink(open).await;
    drop_mid_table_neither_hangs_nor_panics(open).await;
}

/// `people(id BIGINT NOT NULL, name STRING)` in schema `s`, named `table`.
pub fn people(table: &str) -> TableSchema {
    let column = |name: &str, t: &str, nullable| ColumnSchema {
        name: Identifier::parse(name).expect("name"),
        data_type: UcType::parse(t).expect("type"),
        nullable,
        comment: None,
    };
    TableSchema {
        catalog: ObjectName::parse("c").expect("name"),
        schema: ObjectName::parse("s").expect("name"),
        table: ObjectName::parse(table).expect("name"),
        columns: vec![
            column("id", "bigint", false),
            column("name", "string", true),
        ],
        primary_key: Vec::new(),
        comment: None,
    }
}

/// A batch of [`people`] with ids `ids`.
pub fn people_batch(table: &TableSchema, ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<Option<String>> = ids
        .clone()
        .map(|i| (i % 3 != 0).then(|| format!("n{i}")))
        .collect();
    RecordBatch::try_new(
        arrow_schema(table),
        vec![
            Arc::new(Int64Array::from_iter_values(ids)) as ArrayRef,
            Arc::new(StringArray::from(names)),
        ],
    )
    .expect("batch")
}

fn files_under(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("list") {
            let entry = entry.expect("entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().expect("type").is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, "", &mut out);
    out
}

/// Two tables, one of several batches and one empty: each finish reports its rows, `finish`
/// lists the files sorted, every one of them exists, and nothing else is left in the root
/// (apart from hidden scratch folders the sink removed).
pub async fn writes_tables_one_after_another(open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = open(dir.path()).expect("open sink");
    let first = people("first");
    let mut table = sink
        .begin_table(&first, arrow_schema(&first))
        .await
        .expect("begin_table");
    let mut want = TableStats::default();
    for range in [0..100, 100..150, 150..151] {
        let batch = people_batch(&first, range);
        want.add(&batch);
        table.write_batch(batch).await.expect("write_batch");
    }
    assert_eq!(table.finish().await.expect("finish table"), want);
    let second = people("second");
    let table = sink
        .begin_table(&second, arrow_schema(&second))
        .await
        .expect("begin_table");
    assert_eq!(table.finish().await.expect("finish table").rows, 0);
    let files = sink.finish().await.expect("finish");
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted, "files are sorted");
    assert!(!files.is_empty(), "a sink writes at least one file");
    for path in &paths {
        assert!(
            path.starts_with("data/outputs/"),
            "{path} outside data/outputs"
        );
        assert!(!path.contains('\\'), "{path} is /-separated");
    }
    let on_disk: BTreeSet<String> = files_under(dir.path())
        .into_iter()
        .filter(|p| !p.split('/').any(|c| c.starts_with('.')))
        .collect();
    let listed: BTreeSet<String> = paths.iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(on_disk, listed, "the files on disk are the files listed");
}

/// A table begun with a schema other than the canonical one is refused at once, naming the
/// column; the sink is unusable afterwards.
pub async fn refuses_a_schema_that_is_not_canonical(open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = open(dir.path()).expect("open sink");
    let t = people("t");
    let wrong = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let error = match sink.begin_table(&t, wrong).await {
        Ok(_) => panic!("an INT column for a BIGINT was accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(&error, SinkError::SchemaMismatch { detail, .. } if detail.contains("`id`")),
        "unexpected error: {error:?}"
    );
    assert!(
        matches!(
            sink.begin_table(&t, arrow_schema(&t)).await,
            Err(SinkError::Failed)
        ),
        "the sink is unusable after an error"
    );
}

/// A batch whose schema is not the one the table was begun with is refused, at the latest when
/// the table is finished.
pub async fn refuses_a_batch_of_another_schema(open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = open(dir.path()).expect("open sink");
    let t = people("t");
    let mut table = sink
        .begin_table(&t, arrow_schema(&t))
        .await
        .expect("begin_table");
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1])) as ArrayRef],
    )
    .expect("batch");
    let error = match table.write_batch(other).await {
        Err(e) => e,
        Ok(()) => table.finish().await.expect_err("a batch of another schema"),
    };
    assert!(
        matches!(error, SinkError::SchemaMismatch { .. }),
        "unexpected error: {error:?}"
    );
}

/// A null in a NOT NULL column fails the table, at the latest at its finish, naming the column.
pub async fn refuses_null_in_not_null(open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = open(dir.path()).expect("open sink");
    let t = people("t");
    let mut table = sink
        .begin_table(&t, arrow_schema(&t))
        .await
        .expect("begin_table");
    let fields: Vec<Field> = arrow_schema(&t)
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("a"), Some("b")])),
        ],
    )
    .expect("batch");
    let error = match table.write_batch(bad).await {
        Err(e) => e,
        Ok(()) => table
            .finish()
            .await
            .expect_err("a null in a NOT NULL column"),
    };
    assert!(
        matches!(&error, SinkError::NullInNotNull { column, .. } if column == "id"),
        "unexpected error: {error:?}"
    );
}

/// The same table twice (names compared case-insensitively) is [`SinkError::TableExists`].
pub async fn refuses_a_table_twice(open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = open(dir.path()).expect("open sink");
    let t = people("twice");
    let table = sink
        .begin_table(&t, arrow_schema(&t))
        .await
        .expect("begin_table");
    table.finish().await.expect("finish table");
    let again = people("TWICE");
    let error = match sink.begin_table(&again, arrow_schema(&again)).await {
        Ok(_) => panic!("the same table was begun twice"),
        Err(e) => e,
    };
    assert!(
        matches!(error, SinkError::TableExists { .. }),
        "unexpected error: {error:?}"
    );
}

/// A table given up half-way leaves the sink unusable: the output is to be discarded.
pub async fn an_abandoned_table_fails_the_sink(open: OpenSink<'_>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = open(dir.path()).expect("open sink");
    let t = people("t");
    let mut table = sink
        .begin_table(&t, arrow_schema(&t))
        .await
        .expect("begin_table");
    table
        .write_batch(people_batch(&t, 0..10))
        .await
        .expect("write_batch");
    table.abandon();
    let next = people("next");
    assert!(
        matches!(
            sink.begin_table(&next, arrow_schema(&next)).await,
            Err(SinkError::Failed)
        ),
        "begin_table after an abandoned table"
    );
    assert!(
        matches!(sink.finish().await, Err(SinkError::Failed)),
        "finish after an abandoned table"
    );
}

/// Dropping a sink in the middle of a table returns promptly, panics nowhere, and leaves
/// files only inside the root.
pub async fn drop_mid_table_neither_hangs_nor_panics(open: OpenSink<'_>) {
    let outer = tempfile::tempdir().expect("temp dir");
    let root = outer.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let mut sink = open(&root).expect("open sink");
    let t = people("t");
    let mut table = sink
        .begin_table(&t, arrow_schema(&t))
        .await
        .expect("begin_table");
    for i in 0..3 {
        table
            .write_batch(people_batch(&t, i * 1000..(i + 1) * 1000))
            .await
            .expect("write_batch");
    }
    drop(table);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(sink);
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("dropping the sink must not block");
    // Background work ends on its own; give it time to close what it held.
    std::thread::sleep(Duration::from_millis(300));
    let outside: Vec<_> = std::fs::read_dir(outer.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        outside,
        vec![std::ffi::OsString::from("root")],
        "files outside the root"
    );
}
