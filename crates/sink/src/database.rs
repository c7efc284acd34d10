//! The DuckDB output: every DuckDB call of this crate is in this file, on the writer thread.
//!
//! One database per package, `data/outputs/database.duckdb`, opened with extension autoinstall
//! and autoload off (nothing is ever downloaded), and with `threads`, `memory_limit` and
//! `temp_directory` from [`SinkOptions`] so memory stays bounded whatever the table size. Each
//! table is created in one transaction with its comments, then filled through DuckDB's Arrow
//! appender; after the last table the database is checkpointed and closed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, MutableArrayData, StringArray, StructArray,
    make_array,
};
use arrow::datatypes::{DataType, Field, Fields, IntervalMonthDayNanoType, IntervalUnit, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use duckdb::{Appender, Config, Connection};
use publish_types::{ColumnSchema, TableSchema, UcType};

use crate::convert::{Flavor, TablePlan};
use crate::worker::{FormatWriter, TableWriter};
use crate::{DUCKDB_FILE, SinkError, SinkOptions};

/// DuckDB's vector size: the appender converts a batch in slices of this many rows.
const VECTOR_SIZE: usize = 2048;

pub(crate) struct DuckDbWriter {
    conn: Connection,
    db_path: PathBuf,
    /// The scratch folder this writer chose itself and removes when done.
    own_temp: Option<PathBuf>,
}

impl DuckDbWriter {
    pub(crate) fn open(root: &Path, options: &SinkOptions) -> Result<Self, SinkError> {
        let db_path = root.join(DUCKDB_FILE);
        for path in [db_path.clone(), db_path.with_extension("duckdb.wal")] {
            if path.exists() {
                return Err(SinkError::OutputExists { path });
            }
        }
        let (temp, own_temp) = match &options.scratch_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = root.join(".duckdb_tmp");
                (dir.clone(), Some(dir))
            }
        };
        let mut config = Config::default()
            // Sets both autoinstall_known_extensions and autoload_known_extensions.
            .enable_autoload_extension(false)
            .and_then(|c| c.with("temp_directory", temp.to_string_lossy()))
            .map_err(SinkError::duckdb)?;
        if let Some(threads) = options.duckdb_threads {
            config = config
                .threads(threads.max(1) as i64)
                .map_err(SinkError::duckdb)?;
        }
        if let Some(limit) = &options.duckdb_memory_limit {
            config = config
                .with("memory_limit", limit)
                .map_err(SinkError::duckdb)?;
        }
        let conn = Connection::open_with_flags(&db_path, config).map_err(SinkError::duckdb)?;
        Ok(Self {
            conn,
            db_path,
            own_temp,
        })
    }
}

impl FormatWriter for DuckDbWriter {
    const FLAVOR: Flavor = Flavor::DuckDb;

    fn begin_table(&mut self, plan: &TablePlan) -> Result<Box<dyn TableWriter + '_>, SinkError> {
        self.conn
            .execute_batch(&create_table_sql(plan)?)
            .map_err(SinkError::duckdb)?;
        let appender = self
            .conn
            .appender_to_db(plan.table.table.as_str(), plan.table.schema.as_str())
            .map_err(SinkError::duckdb)?;
        let fields = plan.output.fields();
        let nested = fields.iter().any(|f| f.data_type().is_nested());
        let intervals = fields.iter().any(|f| has_interval(f.data_type()));
        Ok(Box::new(DuckDbTable {
            appender,
            nested,
            intervals,
        }))
    }

    fn finish(self) -> Result<Vec<String>, SinkError> {
        self.conn
            .execute_batch("CHECKPOINT")
            .map_err(SinkError::duckdb)?;
        self.conn.close().map_err(|(_, e)| SinkError::duckdb(e))?;
        // CHECKPOINT syncs the database file; syncing again after close is cheap and also
        // covers whatever close wrote.
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
        Ok(vec![DUCKDB_FILE.to_owned()])
    }
}

struct DuckDbTable<'conn> {
    appender: Appender<'conn>,
    /// A column holds a list, map or struct.
    nested: bool,
    /// A column holds an interval, at any depth.
    intervals: bool,
}

impl TableWriter for DuckDbTable<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        if self.intervals {
            let batch = intervals_as_text(batch).map_err(|e| SinkError::Internal {
                message: format!("cannot prepare intervals for DuckDB: {e}"),
            })?;
            return self.append(&batch);
        }
        self.append(batch)
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        // Dropping an appender flushes too, but discards the error; flush explicitly.
        self.appender.flush().map_err(SinkError::duckdb)
    }
}

impl DuckDbTable<'_> {
    fn append(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        if !self.nested || batch.num_rows() <= VECTOR_SIZE {
            return self
                .appender
                .append_record_batch(batch.clone())
                .map_err(SinkError::duckdb);
        }
        // The appender slices a batch into vectors, but copies the whole child array of a list
        // or map into every slice. Compacting each slice first keeps that linear.
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = VECTOR_SIZE.min(batch.num_rows() - offset);
            let slice = batch.slice(offset, len);
            let columns = slice
                .columns()
                .iter()
                .map(|column| {
                    if !column.data_type().is_nested() {
                        return Ok(column.clone());
                    }
                    let data = column.to_data();
                    let mut copy = MutableArrayData::new(vec![&data], false, len);
                    copy.try_extend(0, 0, len)?;
                    Ok(make_array(copy.freeze()))
                })
                .collect::<Result<Vec<_>, ArrowError>>()
                .map_err(|e| SinkError::Internal {
                    message: format!("cannot compact a nested batch: {e}"),
                })?;
            let compact =
                RecordBatch::try_new(slice.schema(), columns).map_err(|e| SinkError::Internal {
                    message: format!("cannot compact a nested batch: {e}"),
                })?;
            self.appender
                .append_record_batch(compact)
                .map_err(SinkError::duckdb)?;
            offset += len;
        }
        Ok(())
    }
}

fn has_interval(t: &DataType) -> bool {
    match t {
        DataType::Interval(_) | DataType::Duration(_) => true,
        DataType::List(f) => has_interval(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_interval(f.data_type())),
        DataType::Map(entries, _) => has_interval(entries.data_type()),
        _ => false,
    }
}

/// duckdb-rs 1.20000.1 drops the validity of interval arrays (a NULL interval arrives as
/// `0 secs`). Intervals therefore reach DuckDB as text — `14 months 0 days 5 microseconds` —
/// which DuckDB's appender casts to the INTERVAL column itself, NULLs kept.
fn intervals_as_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .map(interval_text)
        .collect::<Result<Vec<_>, _>>()?;
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), f.is_nullable()))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn interval_text(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let retyped =
        |f: &Field, t: &DataType| Arc::new(Field::new(f.name(), t.clone(), f.is_nullable()));
    Ok(match array.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let text: StringArray = array
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        format!(
                            "{} months {} days {} microseconds",
                            v.months,
                            v.days,
                            v.nanoseconds / 1000
                        )
                    })
                })
                .collect();
            Arc::new(text)
        }
        DataType::Struct(_) => {
            let (fields, children, nulls) = array.as_struct().clone().into_parts();
            let children = children
                .iter()
                .map(interval_text)
                .collect::<Result<Vec<_>, _>>()?;
            let fields: Fields = fields
                .iter()
                .zip(&children)
                .map(|(f, c)| retyped(f, c.data_type()))
                .collect();
            Arc::new(StructArray::try_new(fields, children, nulls)?)
        }
        DataType::List(_) => {
            let (field, offsets, values, nulls) = array.as_list::<i32>().clone().into_parts();
            let values = interval_text(&values)?;
            let field = retyped(&field, values.data_type());
            Arc::new(ListArray::try_new(field, offsets, values, nulls)?)
        }
        DataType::Map(..) => {
            let (field, offsets, entries, nulls, sorted) = array.as_map().clone().into_parts();
            let entries: ArrayRef = Arc::new(entries);
            let entries = interval_text(&entries)?;
            let field = retyped(&field, entries.data_type());
            Arc::new(MapArray::try_new(
                field,
                offsets,
                entries.as_struct().clone(),
                nulls,
                sorted,
            )?)
        }
        _ => Arc::clone(array),
    })
}

/// `CREATE SCHEMA`, `CREATE TABLE` and the comments, in one transaction.
fn create_table_sql(plan: &TablePlan) -> Result<String, SinkError> {
    let t = &plan.table;
    let schema = t.schema.quoted_double();
    let table = format!("{schema}.{}", t.table.quoted_double());
    let mut sql = format!(
        "BEGIN TRANSACTION;\nCREATE SCHEMA IF NOT EXISTS {schema};\nCREATE TABLE {table} ("
    );
    for (i, (column, field)) in t.columns.iter().zip(plan.output.fields()).enumerate() {
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

/// The DuckDB type of a column written from Arrow type `t` (after [`TablePlan`] conversion, so
/// exactly the type DuckDB's appender produces and no cast happens inside DuckDB).
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
                        quote_ident(f.name()),
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
        quote_ident(name)
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal. NUL cannot pass through DuckDB's C API, so it is dropped.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\0', "").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OUTPUT_DIR;

    #[test]
    fn opens_offline_with_the_given_limits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(OUTPUT_DIR)).unwrap();
        let options = SinkOptions {
            duckdb_threads: Some(1),
            duckdb_memory_limit: Some("300MB".into()),
            ..SinkOptions::default()
        };
        let writer = DuckDbWriter::open(dir.path(), &options).unwrap();
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
        let error = DuckDbWriter::open(dir.path(), &options).err().unwrap();
        assert!(matches!(error, SinkError::OutputExists { .. }), "{error:?}");
    }

    #[test]
    fn key_names_are_quoted_only_when_needed() {
        assert_eq!(plain_or_quoted("person_id"), "person_id");
        assert_eq!(plain_or_quoted("Person Id"), "\"Person Id\"");
        assert_eq!(plain_or_quoted("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
