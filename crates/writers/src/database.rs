//! The DuckDB output: every DuckDB call of this crate is in this file and `duckdb_ffi.rs`.
//!
//! One database per package, `data/outputs/database.duckdb`. DuckDB runs as an in-memory
//! instance with the output file attached under a catalog name unique in the process
//! (`publish_output_<n>`): the Arrow scan registers its input as a view in the instance's
//! default schema, and that view must never reach the user's file; and every table is named
//! `catalog.schema.table`, so no Unity Catalog schema name (`temp`, `main`, …) can be mistaken
//! for a catalog. The instance is opened with extension autoinstall and autoload off (nothing
//! is ever downloaded), and with `threads`, `memory_limit` and `temp_directory` from
//! [`SinkOptions`] so memory stays bounded whatever the table size. With
//! [`SinkOptions::shared_duckdb`] every sink attaches its file to one instance, so concurrent
//! packages share one memory limit and one thread pool.
//!
//! Each table is created in one transaction with its comments, then filled by one
//! `INSERT INTO … SELECT * FROM <arrow scan>` running on its own thread: the writer thread
//! regroups the batches into DuckDB's row groups (`regroup.rs` says why) and passes them
//! through a bounded channel to the stream DuckDB's Arrow scan reads, and
//! DuckDB converts and compresses them on its own threads, in parallel, with the rows kept in
//! order. A table is committed only when its last batch has arrived; if the sink is dropped
//! mid-table the stream fails and the `INSERT` rolls back. After the last table the file is
//! checkpointed, detached and synced.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use duckdb::Connection;
use publish_types::{ColumnSchema, TableRef, TableSchema, UcType, quote};

use crate::duckdb_ffi::Database;
use crate::regroup::Regroup;
use crate::worker::{FormatWriter, TableWriter};
use publish_columns::OutputPlan;
use publish_sink::{SinkError, WrittenFile};
use publish_types::OutputFormat;

use crate::{DUCKDB_FILE, SinkOptions};

/// Batches that may wait between the writer thread and DuckDB's scan, beyond the one each
/// DuckDB thread is converting: none, the writer thread hands each batch over directly (the
/// sink's queue before it already lets the source run ahead).
const SCAN_QUEUE: usize = 0;

pub(crate) struct DuckDbWriter {
    /// Declared before `database`: it must be dropped first.
    conn: Connection,
    database: Arc<Database>,
    /// The name the output file is attached under, unique in this process.
    catalog: String,
    /// Set once the file is checkpointed and detached.
    detached: bool,
    db_path: PathBuf,
    /// The spill folder of an instance of its own, removed when the sink ends.
    own_temp: Option<PathBuf>,
    /// Tables begun, to name each scan view uniquely.
    tables: usize,
}

/// Numbers the catalogs attached in this process.
static ATTACHED: AtomicU64 = AtomicU64::new(0);

/// The settings a DuckDB instance opens with: extension autoinstall and autoload off, and the
/// limits of `options`.
fn instance_settings(options: &SinkOptions, temp: &Path) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("autoinstall_known_extensions", "false".to_owned()),
        ("autoload_known_extensions", "false".to_owned()),
        ("temp_directory", temp.to_string_lossy().into_owned()),
    ];
    if let Some(threads) = options.duckdb_threads {
        settings.push(("threads", threads.max(1).to_string()));
    }
    if let Some(limit) = &options.duckdb_memory_limit {
        settings.push(("memory_limit", limit.clone()));
    }
    settings
}

/// Opens a DuckDB instance with `options`' limits, spilling into `temp`.
fn open_instance(options: &SinkOptions, temp: &Path) -> Result<Database, SinkError> {
    Database::open(None, &instance_settings(options, temp)).map_err(internal)
}

/// Opens the DuckDB instance every DuckDB sink given `options.shared_duckdb` uses.
pub(crate) fn open_shared(options: &SinkOptions) -> Result<Database, SinkError> {
    let temp = options
        .scratch_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("publish-duckdb"));
    open_instance(options, &temp)
}

impl DuckDbWriter {
    /// Opens the output: a new database file, or with `adding`, the existing one, from which
    /// the listed tables (and schemas they leave empty) are dropped first, in one transaction.
    pub(crate) fn open(
        root: &Path,
        options: &SinkOptions,
        adding: Option<&[TableRef]>,
    ) -> Result<Self, SinkError> {
        let db_path = root.join(DUCKDB_FILE);
        let wal = db_path.with_extension("duckdb.wal");
        match adding {
            None => {
                for path in [db_path.clone(), wal] {
                    if path.exists() {
                        return Err(SinkError::OutputExists { path });
                    }
                }
            }
            Some(_) => {
                if !db_path.is_file() {
                    return Err(SinkError::io(
                        &db_path,
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "the database to add to does not exist",
                        ),
                    ));
                }
                if wal.exists() {
                    return Err(SinkError::OutputExists { path: wal });
                }
            }
        }
        let catalog = format!(
            "publish_output_{}",
            ATTACHED.fetch_add(1, Ordering::Relaxed)
        );
        let (database, own_temp) = match &options.shared_duckdb {
            Some(shared) => (shared.database(), None),
            None => {
                // DuckDB empties its temp_directory on close, so an instance of its own gets a
                // folder of its own, named like its catalog and removed when the sink ends.
                let temp = match &options.scratch_dir {
                    Some(dir) => dir.join(&catalog),
                    None => root.join(".duckdb_tmp"),
                };
                (Arc::new(open_instance(options, &temp)?), Some(temp))
            }
        };
        let conn = database.connection().map_err(SinkError::duckdb)?;
        conn.execute_batch(&format!(
            "ATTACH {} AS {catalog};",
            literal(&db_path.to_string_lossy())
        ))
        .map_err(SinkError::duckdb)?;
        let writer = Self {
            conn,
            database,
            catalog,
            detached: false,
            db_path,
            own_temp,
            tables: 0,
        };
        if let Some(replaced) = adding.filter(|r| !r.is_empty()) {
            writer.drop_tables(replaced)?;
        }
        Ok(writer)
    }

    /// Drops `tables` where they exist, and then each of their schemas that no table is left
    /// in, in one transaction.
    fn drop_tables(&self, tables: &[TableRef]) -> Result<(), SinkError> {
        let catalog = &self.catalog;
        let mut sql = String::from("BEGIN TRANSACTION;\n");
        for t in tables {
            sql.push_str(&format!(
                "DROP TABLE IF EXISTS {catalog}.{}.{};\n",
                t.schema.quoted_double(),
                t.table.quoted_double()
            ));
        }
        self.conn.execute_batch(&sql).map_err(SinkError::duckdb)?;
        let mut schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
        schemas.sort_unstable();
        schemas.dedup();
        for schema in schemas {
            let left: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM duckdb_tables() \
                     WHERE database_name = ? AND schema_name = ?",
                    duckdb::params![catalog, schema],
                    |row| row.get(0),
                )
                .map_err(SinkError::duckdb)?;
            if left == 0 {
                self.conn
                    .execute_batch(&format!(
                        "DROP SCHEMA IF EXISTS {catalog}.{};",
                        quote(schema, '"')
                    ))
                    .map_err(SinkError::duckdb)?;
            }
        }
        self.conn
            .execute_batch("COMMIT;")
            .map_err(SinkError::duckdb)
    }
}

impl Drop for DuckDbWriter {
    fn drop(&mut self) {
        // Abandoned before `finish`: close the file, or a shared instance would keep it (and
        // its disk space) open for the life of the process.
        if !self.detached
            && let Err(e) = self
                .conn
                .execute_batch(&format!("DETACH {};", self.catalog))
        {
            tracing::warn!(error = %e, "could not detach an abandoned DuckDB output");
        }
        if !self.detached
            && let Some(dir) = &self.own_temp
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl FormatWriter for DuckDbWriter {
    const FORMAT: OutputFormat = OutputFormat::Duckdb;

    fn begin_table(&mut self, plan: &OutputPlan) -> Result<Box<dyn TableWriter + '_>, SinkError> {
        self.conn
            .execute_batch(&create_table_sql(&self.catalog, plan)?)
            .map_err(SinkError::duckdb)?;
        self.tables += 1;
        let view = format!("{}_scan_{}", self.catalog, self.tables);
        let insert = format!(
            "INSERT INTO {} SELECT * FROM {view}",
            qualified_table(&self.catalog, plan.table())
        );
        let conn = self.database.raw_connection().map_err(internal)?;
        let (tx, rx) = sync_channel(SCAN_QUEUE);
        let reader = ChannelReader {
            schema: Arc::clone(plan.output()),
            rx,
            ended: false,
        };
        let insert = std::thread::Builder::new()
            .name("publish-sink-duckdb-insert".into())
            .spawn(move || conn.insert_stream(&view, &insert, Box::new(reader)))
            .map_err(|e| SinkError::Internal {
                message: format!("cannot start the DuckDB insert thread: {e}"),
            })?;
        Ok(Box::new(DuckDbTable {
            tx: Some(tx),
            insert: Some(insert),
            rows: Regroup::row_groups(),
        }))
    }

    fn finish(mut self) -> Result<Vec<WrittenFile>, SinkError> {
        let catalog = &self.catalog;
        self.conn
            .execute_batch(&format!("CHECKPOINT {catalog}; DETACH {catalog};"))
            .map_err(SinkError::duckdb)?;
        self.detached = true;
        // CHECKPOINT syncs the database file; syncing again after detach is cheap and also
        // covers whatever the detach wrote.
        let file =
            std::fs::File::open(&self.db_path).map_err(|e| SinkError::io(&self.db_path, e))?;
        file.sync_all()
            .map_err(|e| SinkError::io(&self.db_path, e))?;
        if let Some(dir) = &self.own_temp {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SinkError::io(dir, e)),
            }
        }
        if let Some(dir) = self.db_path.parent() {
            crate::files::sync_dir(dir)?;
        }
        // DuckDB writes its file out of order: its digest is taken from the closed file.
        Ok(vec![WrittenFile {
            path: DUCKDB_FILE.to_owned(),
            digest: None,
        }])
    }
}

fn internal(message: String) -> SinkError {
    SinkError::Internal { message }
}

/// What the writer thread sends to the scan.
enum Message {
    Batch(RecordBatch),
    /// The table is complete; without it a closed channel means "abandoned".
    End,
}

/// The stream DuckDB's Arrow scan reads: batches from the writer thread, in order.
struct ChannelReader {
    schema: SchemaRef,
    rx: Receiver<Message>,
    ended: bool,
}

impl Iterator for ChannelReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        match self.rx.recv() {
            Ok(Message::Batch(batch)) => Some(Ok(batch)),
            Ok(Message::End) => {
                self.ended = true;
                None
            }
            Err(_) => {
                self.ended = true;
                Some(Err(ArrowError::ExternalError(
                    "the table was abandoned before its last batch".into(),
                )))
            }
        }
    }
}

impl RecordBatchReader for ChannelReader {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

struct DuckDbTable {
    tx: Option<SyncSender<Message>>,
    insert: Option<JoinHandle<Result<(), String>>>,
    /// The table's rows regrouped into DuckDB's row groups, in order.
    rows: Regroup,
}

impl DuckDbTable {
    /// Waits for the `INSERT` and returns its outcome.
    fn join(&mut self) -> Result<(), SinkError> {
        self.tx = None;
        let Some(insert) = self.insert.take() else {
            return Err(SinkError::Failed);
        };
        match insert.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(SinkError::DuckDb { message }),
            Err(_) => Err(internal("the DuckDB insert thread panicked".into())),
        }
    }

    fn send(&mut self, message: Message) -> Result<(), SinkError> {
        let sent = self.tx.as_ref().map(|tx| tx.send(message).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The scan stopped reading: the INSERT failed. Report why.
        Err(match self.join() {
            Err(e) => e,
            Ok(()) => internal("DuckDB finished the table before its last batch".into()),
        })
    }
}

impl TableWriter for DuckDbTable {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        for batch in self.rows.push(batch.clone()).map_err(regroup_failed)? {
            self.send(Message::Batch(batch))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        if let Some(rest) = self.rows.finish().map_err(regroup_failed)? {
            self.send(Message::Batch(rest))?;
        }
        self.send(Message::End)?;
        self.join()
    }
}

/// Batches of one table share its output schema and are gathered only up to
/// `regroup::MAX_GATHERED_BYTES`, so concatenating them cannot fail but for a bug here.
fn regroup_failed(e: ArrowError) -> SinkError {
    internal(format!(
        "cannot regroup the table's batches for DuckDB: {e}"
    ))
}

impl Drop for DuckDbTable {
    fn drop(&mut self) {
        // Abandoned mid-table: closing the channel without `End` fails the scan, so the
        // INSERT rolls back; wait for it so nothing still runs on the database afterwards.
        if self.insert.is_some() {
            let _ = self.join();
        }
    }
}

fn qualified_table(catalog: &str, t: &TableSchema) -> String {
    format!(
        "{catalog}.{}.{}",
        t.schema.quoted_double(),
        t.table.quoted_double()
    )
}

/// `CREATE SCHEMA`, `CREATE TABLE` and the comments, in one transaction.
fn create_table_sql(catalog: &str, plan: &OutputPlan) -> Result<String, SinkError> {
    let t = plan.table();
    let schema = format!("{catalog}.{}", t.schema.quoted_double());
    let table = qualified_table(catalog, t);
    let mut sql = format!(
        "BEGIN TRANSACTION;\nCREATE SCHEMA IF NOT EXISTS {schema};\nCREATE TABLE {table} ("
    );
    for (i, (column, field)) in t.columns.iter().zip(plan.output().fields()).enumerate() {
        let ty = column_type(field.data_type()).map_err(|detail| SinkError::UnsupportedType {
            table: t.table.to_string(),
            column: column.name.to_string(),
            type_text: column.data_type.to_string(),
            detail,
        })?;
        let sep = if i == 0 { "" } else { "," };
        let not_null = if column.nullable { "" } else { " NOT NULL" };
        sql.push_str(&format!(
            "{sep}\n  {} {ty}{not_null}",
            column.name.quoted_double()
        ));
    }
    sql.push_str("\n);\n");
    if let Some(comment) = table_comment(t) {
        sql.push_str(&format!(
            "COMMENT ON TABLE {table} IS {};\n",
            literal(&comment)
        ));
    }
    for column in &t.columns {
        if let Some(comment) = column_comment(column) {
            sql.push_str(&format!(
                "COMMENT ON COLUMN {table}.{} IS {};\n",
                column.name.quoted_double(),
                literal(&comment)
            ));
        }
    }
    sql.push_str("COMMIT;\n");
    Ok(sql)
}

/// The DuckDB type of a column written from Arrow type `t` (after [`OutputPlan`] conversion, so
/// exactly the type DuckDB's Arrow scan produces and no cast happens inside DuckDB).
fn column_type(t: &DataType) -> Result<String, String> {
    Ok(match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Interval(_) => "INTERVAL".into(),
        DataType::List(f) => format!("{}[]", column_type(f.data_type())?),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                column_type(kv[0].data_type())?,
                column_type(kv[1].data_type())?
            ),
            other => return Err(format!("map entries of type {other}")),
        },
        DataType::Struct(fields) => {
            let fields = fields
                .iter()
                .map(|f| {
                    Ok(format!(
                        "{} {}",
                        quote(f.name(), '"'),
                        column_type(f.data_type())?
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            format!("STRUCT({})", fields.join(", "))
        }
        other => return Err(format!("DuckDB has no column type for Arrow {other}")),
    })
}

/// The table comment: Unity Catalog's comment, then `primary key: (a, b)` when one is declared.
fn table_comment(t: &TableSchema) -> Option<String> {
    let mut lines: Vec<String> = t
        .comment
        .iter()
        .filter(|c| !c.is_empty())
        .cloned()
        .collect();
    if !t.primary_key.is_empty() {
        let keys: Vec<String> = t
            .primary_key
            .iter()
            .map(|k| plain_or_quoted(k.as_str()))
            .collect();
        lines.push(format!("primary key: ({})", keys.join(", ")));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The column comment: Unity Catalog's comment, then `declared type: char(n)` for CHAR/VARCHAR.
fn column_comment(c: &ColumnSchema) -> Option<String> {
    let mut lines: Vec<String> = c
        .comment
        .iter()
        .filter(|c| !c.is_empty())
        .cloned()
        .collect();
    if matches!(c.data_type, UcType::Char(_) | UcType::Varchar(_)) {
        lines.push(format!("declared type: {}", c.data_type));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn plain_or_quoted(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        quote(name, '"')
    }
}

/// A SQL string literal. NUL cannot pass through DuckDB's C API, so it is dropped.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\0', "").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use publish_sink::OUTPUT_DIR;

    #[test]
    fn opens_offline_with_the_given_limits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(OUTPUT_DIR)).unwrap();
        let options = SinkOptions {
            duckdb_threads: Some(1),
            duckdb_memory_limit: Some("300MB".into()),
            ..SinkOptions::default()
        };
        let writer = DuckDbWriter::open(dir.path(), &options, None).unwrap();
        let setting = |name: &str| -> String {
            writer
                .conn
                .query_row(
                    &format!("SELECT current_setting('{name}')::VARCHAR"),
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(setting("autoinstall_known_extensions"), "false");
        assert_eq!(setting("autoload_known_extensions"), "false");
        assert_eq!(setting("threads"), "1");
        assert_eq!(setting("memory_limit"), "286.1 MiB");
        assert_eq!(
            setting("temp_directory"),
            dir.path().join(".duckdb_tmp").to_string_lossy()
        );
        drop(writer);
        let error = DuckDbWriter::open(dir.path(), &options, None)
            .err()
            .unwrap();
        assert!(matches!(error, SinkError::OutputExists { .. }), "{error:?}");
    }

    fn plan(schema: &str, table: &str, nullable: bool) -> OutputPlan {
        use publish_types::{Identifier, ObjectName};
        let declared = TableSchema {
            catalog: ObjectName::parse("catalog").unwrap(),
            schema: ObjectName::parse(schema).unwrap(),
            table: ObjectName::parse(table).unwrap(),
            columns: vec![ColumnSchema {
                name: Identifier::parse("id").unwrap(),
                data_type: UcType::parse("bigint").unwrap(),
                nullable,
                comment: Some("the key".into()),
            }],
            primary_key: vec![],
            comment: None,
        };
        OutputPlan::new(&declared, input(), OutputFormat::Duckdb).unwrap()
    }

    fn input() -> SchemaRef {
        Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", DataType::Int64, true),
        ]))
    }

    fn ids(plan: &OutputPlan, values: Vec<Option<i64>>) -> RecordBatch {
        let column = Arc::new(arrow::array::Int64Array::from(values));
        plan.apply(&RecordBatch::try_new(input(), vec![column]).unwrap())
            .unwrap()
    }

    fn open_writer(dir: &Path) -> DuckDbWriter {
        std::fs::create_dir_all(dir.join(OUTPUT_DIR)).unwrap();
        DuckDbWriter::open(dir, &SinkOptions::default(), None).unwrap()
    }

    fn count(writer: &DuckDbWriter, table: &str) -> i64 {
        writer
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn schema_names_that_are_also_catalog_names_stay_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open_writer(dir.path());
        for schema in ["temp", "main", "memory", "system", "publish_output"] {
            let plan = plan(schema, "t", false);
            let mut table = writer.begin_table(&plan).unwrap();
            table.write(&ids(&plan, vec![Some(1), Some(2)])).unwrap();
            table.finish().unwrap();
        }
        writer.finish().unwrap();
        let conn = Connection::open(dir.path().join(DUCKDB_FILE)).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT schema_name, table_name, temporary, estimated_size FROM duckdb_tables() \
                 ORDER BY ALL",
            )
            .unwrap();
        let tables: Vec<(String, String, bool, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<(String, String, bool, i64)> =
            ["main", "memory", "publish_output", "system", "temp"]
                .iter()
                .map(|s| (s.to_string(), "t".to_string(), false, 2))
                .collect();
        assert_eq!(tables, expected);
        let views: i64 = conn
            .query_row(
                "SELECT count(*) FROM duckdb_views() WHERE NOT internal",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(views, 0, "the scan's view must not reach the file");
    }

    #[test]
    fn an_abandoned_table_keeps_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open_writer(dir.path());
        let plan = plan("s", "t", true);
        let mut table = writer.begin_table(&plan).unwrap();
        table.write(&ids(&plan, vec![Some(1), None])).unwrap();
        drop(table);
        let t = format!("{}.s.t", writer.catalog);
        assert_eq!(count(&writer, &t), 0);
        // The writer goes on: the next table is written normally.
        let plan = plan_named(&plan, "u");
        let mut table = writer.begin_table(&plan).unwrap();
        table.write(&ids(&plan, vec![Some(3)])).unwrap();
        table.finish().unwrap();
        let u = format!("{}.s.u", writer.catalog);
        assert_eq!(count(&writer, &u), 1);
    }

    fn plan_named(plan: &OutputPlan, table: &str) -> OutputPlan {
        let mut declared = plan.table().clone();
        declared.table = publish_types::ObjectName::parse(table).unwrap();
        OutputPlan::new(&declared, input(), OutputFormat::Duckdb).unwrap()
    }

    #[test]
    fn an_insert_error_is_reported_with_duckdbs_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open_writer(dir.path());
        let plan = plan("s", "t", false);
        let mut table = writer.begin_table(&plan).unwrap();
        // The sink's front rejects this batch before it gets here (`OutputPlan::check`); sent
        // directly, DuckDB's own NOT NULL check fails the INSERT.
        let nulls = RecordBatch::try_new(
            input(),
            vec![Arc::new(arrow::array::Int64Array::from(vec![
                Some(1),
                None,
            ]))],
        )
        .unwrap();
        let mut outcome = table.write(&nulls);
        for _ in 0..10 {
            if outcome.is_err() {
                break;
            }
            outcome = table.write(&ids(&plan, vec![Some(2)]));
        }
        let error = match outcome {
            Err(e) => e,
            Ok(()) => table.finish().unwrap_err(),
        };
        assert!(
            matches!(&error, SinkError::DuckDb { message } if message.contains("NOT NULL")),
            "{error:?}"
        );
    }

    #[test]
    fn batches_of_another_size_are_stored_in_whole_row_groups_in_order() {
        // Databricks' IPC batches hold 65 536 rows; DuckDB's row groups 122 880.
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open_writer(dir.path());
        let plan = plan("s", "t", false);
        let mut table = writer.begin_table(&plan).unwrap();
        let (batches, batch_rows) = (5_i64, 65_536_i64);
        for b in 0..batches {
            let first = b * batch_rows;
            table
                .write(&ids(&plan, (first..first + batch_rows).map(Some).collect()))
                .unwrap();
        }
        table.finish().unwrap();
        writer.finish().unwrap();
        let conn = Connection::open(dir.path().join(DUCKDB_FILE)).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT row_group_id, sum(count) FROM pragma_storage_info('s.t') \
                 WHERE column_name = 'id' AND segment_type <> 'VALIDITY' GROUP BY ALL ORDER BY 1",
            )
            .unwrap();
        let groups: Vec<(i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let total = batches * batch_rows;
        let full = crate::regroup::ROW_GROUP_ROWS as i64;
        assert_eq!(
            groups,
            vec![(0, full), (1, full), (2, total - 2 * full)],
            "row groups and their rows"
        );
        let (in_order, rows): (bool, i64) = conn
            .query_row(
                "SELECT bool_and(id = rn - 1), count(*) \
                 FROM (SELECT id, row_number() OVER () AS rn FROM s.t)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((in_order, rows), (true, total));
    }

    #[test]
    fn duckdbs_scan_is_handed_whole_row_groups() {
        // What the scan reads, without DuckDB: a thread in its place drains the channel.
        let (tx, rx) = sync_channel(SCAN_QUEUE);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let scan = {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                while let Ok(Message::Batch(batch)) = rx.recv() {
                    seen.lock().unwrap().push(batch.num_rows());
                }
                Ok(())
            })
        };
        let mut table = Box::new(DuckDbTable {
            tx: Some(tx),
            insert: Some(scan),
            rows: Regroup::row_groups(),
        });
        let plan = plan("s", "t", false);
        for b in 0..5_i64 {
            let first = b * 65_536;
            table
                .write(&ids(&plan, (first..first + 65_536).map(Some).collect()))
                .unwrap();
        }
        table.finish().unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![122_880, 122_880, 81_920]);
    }

    #[test]
    fn key_names_are_quoted_only_when_needed() {
        assert_eq!(plain_or_quoted("person_id"), "person_id");
        assert_eq!(plain_or_quoted("Person Id"), "\"Person Id\"");
        assert_eq!(plain_or_quoted("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
