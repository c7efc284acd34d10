//! Statement results: chunk boundaries planned from Parquet metadata alone, and each chunk's body
//! (Arrow IPC stream, JSON array or CSV) produced on demand from just its rows and columns.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, DurationMicrosecondType, Field, Float32Type, Float64Type, IntervalUnit,
    IntervalYearMonthType, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use arrow::ipc::writer::StreamWriter;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine as _;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};

use crate::catalog::Table;
use crate::types::{SQL_NAME_KEY, SqlType};

/// Rows of an INLINE result: chunks of rows of cells.
pub(crate) type InlineRows = Vec<Vec<Vec<Option<String>>>>;

/// Rows per Arrow record batch inside a chunk.
const BATCH_ROWS: usize = 64 * 1024;

/// Body format of a statement result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    JsonArray,
    ArrowStream,
    Csv,
}

impl Format {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::JsonArray => "JSON_ARRAY",
            Format::ArrowStream => "ARROW_STREAM",
            Format::Csv => "CSV",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::JsonArray => "application/json",
            Format::ArrowStream => "application/vnd.apache.arrow.stream",
            Format::Csv => "text/csv",
        }
    }
}

/// One selected column of a result.
#[derive(Debug, Clone)]
pub(crate) struct OutputColumn {
    pub(crate) name: String,
    /// Result type (char/varchar already folded into string).
    pub(crate) ty: SqlType,
    /// Index of this column in the projected Parquet batch.
    batch_index: usize,
    /// A nested column sent as JSON text (the `complex_as_json_text` switch).
    as_json: bool,
}

/// One chunk of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkInfo {
    pub(crate) index: usize,
    pub(crate) row_offset: u64,
    pub(crate) row_count: u64,
    /// Estimated uncompressed body size, from Parquet's uncompressed column sizes.
    pub(crate) byte_count: u64,
}

/// What a successful statement returns, minus the rows themselves.
#[derive(Debug)]
pub(crate) struct ResultSet {
    table: Arc<Table>,
    /// The row groups read, in file order (all of them unless the statement named data files):
    /// `(row group index, its rows)`. A result's row offsets count the rows of these groups
    /// only.
    groups: Vec<(usize, u64)>,
    projection: Vec<usize>,
    pub(crate) columns: Vec<OutputColumn>,
    pub(crate) schema: SchemaRef,
    pub(crate) chunks: Vec<ChunkInfo>,
    pub(crate) total_rows: u64,
    pub(crate) truncated: bool,
}

/// A selected column the table does not have.
#[derive(Debug)]
pub(crate) struct UnresolvedColumn {
    pub(crate) name: String,
    pub(crate) available: Vec<String>,
}

impl ResultSet {
    /// Resolves the select list (case-insensitively) and splits the rows into chunks of
    /// `chunk_rows`, reading no data. With `complex_as_json`, nested columns become `Utf8`.
    pub(crate) fn plan(
        table: Arc<Table>,
        select: Option<&[String]>,
        limits: Limits,
        chunk_rows: usize,
        complex_as_json: bool,
    ) -> Result<ResultSet, UnresolvedColumn> {
        let picked: Vec<&crate::catalog::Column> = match select {
            None => table.columns.iter().collect(),
            Some(names) => names
                .iter()
                .map(|name| {
                    table
                        .columns
                        .iter()
                        .find(|c| c.name == *name)
                        .or_else(|| {
                            table
                                .columns
                                .iter()
                                .find(|c| c.name.to_lowercase() == name.to_lowercase())
                        })
                        .ok_or_else(|| UnresolvedColumn {
                            name: name.clone(),
                            available: table.columns.iter().map(|c| c.name.clone()).collect(),
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let mut projection: Vec<usize> = picked.iter().map(|c| c.file_index).collect();
        projection.sort_unstable();
        projection.dedup();
        let columns: Vec<OutputColumn> = picked
            .iter()
            .map(|c| OutputColumn {
                name: c.name.clone(),
                ty: c.ty.result_type(),
                batch_index: projection.binary_search(&c.file_index).unwrap_or(0),
                as_json: complex_as_json && c.ty.is_nested(),
            })
            .collect();
        let fields: Vec<Field> = picked
            .iter()
            .zip(&columns)
            .map(|(c, out)| {
                let arrow_type = if out.as_json {
                    DataType::Utf8
                } else {
                    out.ty.arrow_type()
                };
                Field::new(&out.name, arrow_type, c.nullable)
                    .with_metadata(HashMap::from([(SQL_NAME_KEY.to_owned(), out.ty.sql())]))
            })
            .collect();
        let groups = selected_groups(&table, limits.row_groups.as_deref());
        let available: u64 = groups.iter().map(|g| g.1).sum();
        let bytes_per_row = bytes_per_row(&table, &picked, &groups);
        let total_rows = limits
            .rows
            .map_or(available, |limit| limit.min(available))
            .min(rows_within(&bytes_per_row, limits.bytes));
        let chunk_rows = chunk_rows.max(1) as u64;
        let chunks = (0..total_rows.div_ceil(chunk_rows))
            .map(|index| {
                let row_offset = index * chunk_rows;
                let row_count = chunk_rows.min(total_rows - row_offset);
                let byte_count = estimate_bytes(&bytes_per_row, row_offset, row_count);
                ChunkInfo {
                    index: usize::try_from(index).unwrap_or(usize::MAX),
                    row_offset,
                    row_count,
                    byte_count,
                }
            })
            .collect();
        Ok(ResultSet {
            truncated: total_rows < available,
            table,
            groups,
            projection,
            columns,
            schema: Arc::new(Schema::new(fields)),
            chunks,
            total_rows,
        })
    }

    /// The data file the rows are read from, and when it was last written (milliseconds since
    /// the epoch): what the result cache compares to tell an unchanged table.
    pub(crate) fn source(&self) -> (&std::path::Path, i64) {
        (&self.table.path, self.table.modified_ms)
    }

    /// Reads the rows of one chunk, converted to the result schema, batch by batch.
    pub(crate) fn read_chunk(
        &self,
        chunk: usize,
        mut each: impl FnMut(RecordBatch) -> io::Result<()>,
    ) -> io::Result<()> {
        let info = self
            .chunks
            .get(chunk)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such chunk"))?;
        let (start, end) = (info.row_offset, info.row_offset + info.row_count);
        let mut row_groups = Vec::new();
        let mut selectors = Vec::new();
        // `first` counts the result's rows (those of the groups read), not the file's.
        let mut first = 0u64;
        for &(i, rows) in &self.groups {
            let last = first + rows;
            if last > start && first < end {
                row_groups.push(i);
                let skip_head = start.saturating_sub(first);
                let take = end.min(last) - first.max(start);
                let skip_tail = rows - skip_head - take;
                for selector in [
                    RowSelector::skip(to_usize(skip_head)),
                    RowSelector::select(to_usize(take)),
                    RowSelector::skip(to_usize(skip_tail)),
                ] {
                    if selector.row_count > 0 {
                        selectors.push(selector);
                    }
                }
            }
            first = last;
        }
        if row_groups.is_empty() {
            return Ok(());
        }
        let file = File::open(&self.table.path)?;
        let mask = ProjectionMask::roots(
            self.table.reader.parquet_schema(),
            self.projection.iter().copied(),
        );
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.table.reader.clone())
                .with_row_groups(row_groups)
                .with_row_selection(RowSelection::from(selectors))
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(io::Error::other)?;
        for batch in reader {
            let batch = batch.map_err(io::Error::other)?;
            each(self.convert(&batch)?)?;
        }
        Ok(())
    }

    fn convert(&self, batch: &RecordBatch) -> io::Result<RecordBatch> {
        let columns = self
            .columns
            .iter()
            .map(|column| {
                let array = batch.column(column.batch_index);
                let native = column.ty.arrow_type();
                let array = if array.data_type() == &native {
                    array.clone()
                } else {
                    cast(array, &native).map_err(io::Error::other)?
                };
                if column.as_json {
                    json_text_array(array.as_ref())
                } else {
                    Ok(array)
                }
            })
            .collect::<io::Result<Vec<ArrayRef>>>()?;
        RecordBatch::try_new(self.schema.clone(), columns).map_err(io::Error::other)
    }

    /// Writes the body of chunk `chunk` to `sink`, LZ4-framed if `compress`: an Arrow stream as
    /// Databricks frames it, one LZ4 frame per IPC message (schema, each batch, end marker);
    /// JSON and CSV as one frame.
    pub(crate) fn write_chunk<W: Write>(
        &self,
        chunk: usize,
        format: Format,
        compress: bool,
        sink: W,
    ) -> io::Result<W> {
        if compress && format == Format::ArrowStream {
            return self.write_arrow_frames(chunk, sink);
        }
        let mut out = if compress {
            Output::Lz4(lz4_flex::frame::FrameEncoder::new(sink))
        } else {
            Output::Plain(sink)
        };
        match format {
            Format::ArrowStream => {
                let mut writer =
                    StreamWriter::try_new(&mut out, &self.schema).map_err(io::Error::other)?;
                self.read_chunk(chunk, |batch| {
                    writer.write(&batch).map_err(io::Error::other)
                })?;
                writer.finish().map_err(io::Error::other)?;
            }
            Format::JsonArray => {
                let mut first = true;
                out.write_all(b"[")?;
                self.read_chunk(chunk, |batch| {
                    let mut text = String::new();
                    for row in render_rows(&batch)? {
                        text.push_str(if first { "[" } else { ",[" });
                        first = false;
                        for (i, cell) in row.iter().enumerate() {
                            if i > 0 {
                                text.push(',');
                            }
                            match cell {
                                Some(s) => text.push_str(&crate::types::json_string(s)),
                                None => text.push_str("null"),
                            }
                        }
                        text.push(']');
                    }
                    out.write_all(text.as_bytes())
                })?;
                out.write_all(b"]")?;
            }
            Format::Csv => {
                if chunk == 0 {
                    let header: Vec<String> =
                        self.columns.iter().map(|c| csv_field(&c.name)).collect();
                    out.write_all(format!("{}\r\n", header.join(",")).as_bytes())?;
                }
                self.read_chunk(chunk, |batch| {
                    let mut text = String::new();
                    for row in render_rows(&batch)? {
                        let cells: Vec<String> = row
                            .iter()
                            .map(|c| c.as_deref().map_or_else(|| "null".to_owned(), csv_field))
                            .collect();
                        text.push_str(&cells.join(","));
                        text.push_str("\r\n");
                    }
                    out.write_all(text.as_bytes())
                })?;
            }
        }
        out.finish()
    }

    /// An Arrow stream body with each IPC message in an LZ4 frame of its own, as Databricks
    /// writes it (88 of 89 recorded compressed chunks had several frames); a reader that stops
    /// after the first frame sees only the schema.
    fn write_arrow_frames<W: Write>(&self, chunk: usize, mut sink: W) -> io::Result<W> {
        let mut writer =
            StreamWriter::try_new(Vec::new(), &self.schema).map_err(io::Error::other)?;
        lz4_frame(&mut sink, writer.get_mut())?;
        self.read_chunk(chunk, |batch| {
            writer.write(&batch).map_err(io::Error::other)?;
            lz4_frame(&mut sink, writer.get_mut())
        })?;
        writer.finish().map_err(io::Error::other)?;
        lz4_frame(&mut sink, writer.get_mut())?;
        sink.flush()?;
        Ok(sink)
    }

    /// Renders chunks as `data_array` rows for an INLINE result; `None` once more than `limit`
    /// bytes of text would be needed.
    pub(crate) fn render_inline(&self, limit: usize) -> io::Result<Option<InlineRows>> {
        let mut size = 0usize;
        let mut chunks = Vec::with_capacity(self.chunks.len());
        for chunk in 0..self.chunks.len() {
            let mut rows = Vec::new();
            let mut over = false;
            self.read_chunk(chunk, |batch| {
                for row in render_rows(&batch)? {
                    size += row
                        .iter()
                        .map(|c| c.as_ref().map_or(4, |s| s.len() + 3))
                        .sum::<usize>()
                        + 2;
                    if size > limit {
                        over = true;
                        return Err(io::Error::other("inline limit"));
                    }
                    rows.push(row);
                }
                Ok(())
            })
            .or_else(|e| if over { Ok(()) } else { Err(e) })?;
            if over {
                return Ok(None);
            }
            chunks.push(rows);
        }
        Ok(Some(chunks))
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Per row group: (first row, rows, estimated bytes per row for the picked columns).
/// What bounds a result: the rows asked for, the bytes the warehouse returns at most, and the
/// data files (row groups) named.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    /// `row_limit` (or `DESCRIBE HISTORY`'s `LIMIT`).
    pub(crate) rows: Option<u64>,
    /// `byte_limit`, or the emulator's cap: rows past it are cut and `truncated` set.
    pub(crate) bytes: Option<u64>,
    /// The row groups of the data files a `WHERE _metadata.file_path IN (…)` named.
    pub(crate) row_groups: Option<Vec<usize>>,
}

/// `(row group, rows)` of the groups read: `only`, in file order, or all.
fn selected_groups(table: &Table, only: Option<&[usize]>) -> Vec<(usize, u64)> {
    table
        .reader
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|only| only.contains(i)))
        .map(|(i, rg)| (i, u64::try_from(rg.num_rows()).unwrap_or(0)))
        .collect()
}

/// How many of the result's first rows fit in `limit` estimated bytes (all of them without one).
fn rows_within(groups: &[(u64, u64, f64)], limit: Option<u64>) -> u64 {
    let total: u64 = groups.iter().map(|g| g.1).sum();
    let Some(limit) = limit else {
        return total;
    };
    let mut left = limit.saturating_sub(512) as f64;
    let mut rows = 0u64;
    for &(_, group_rows, per_row) in groups {
        let group_bytes = group_rows as f64 * per_row;
        if group_bytes <= left {
            left -= group_bytes;
            rows += group_rows;
        } else {
            return rows + (left / per_row.max(f64::MIN_POSITIVE)) as u64;
        }
    }
    rows
}

/// `(first result row, rows, estimated bytes per row)` of each group read.
fn bytes_per_row(
    table: &Table,
    picked: &[&crate::catalog::Column],
    groups: &[(usize, u64)],
) -> Vec<(u64, u64, f64)> {
    let metadata = table.reader.metadata();
    let schema = table.reader.parquet_schema();
    let mut first = 0u64;
    groups
        .iter()
        .map(|&(i, rows)| {
            let rg = metadata.row_group(i);
            let mut per_root: HashMap<usize, i64> = HashMap::new();
            for leaf in 0..rg.num_columns() {
                *per_root
                    .entry(schema.get_column_root_idx(leaf))
                    .or_default() += rg.column(leaf).uncompressed_size();
            }
            let bytes: i64 = picked
                .iter()
                .map(|c| per_root.get(&c.file_index).copied().unwrap_or(0))
                .sum();
            let entry = (first, rows, bytes as f64 / rows.max(1) as f64);
            first += rows;
            entry
        })
        .collect()
}

fn estimate_bytes(groups: &[(u64, u64, f64)], offset: u64, count: u64) -> u64 {
    let end = offset + count;
    let estimate: f64 = groups
        .iter()
        .map(|&(first, rows, per_row)| {
            let overlap = (first + rows).min(end).saturating_sub(first.max(offset));
            overlap as f64 * per_row
        })
        .sum();
    // Schema and batch headers: a few hundred bytes per message.
    estimate as u64 + 512
}

/// Writes `message` (and empties it) as one complete LZ4 frame.
fn lz4_frame<W: Write>(sink: &mut W, message: &mut Vec<u8>) -> io::Result<()> {
    let mut encoder = lz4_flex::frame::FrameEncoder::new(sink);
    encoder.write_all(message)?;
    encoder.finish().map_err(io::Error::from)?;
    message.clear();
    Ok(())
}

enum Output<W: Write> {
    Plain(W),
    Lz4(lz4_flex::frame::FrameEncoder<W>),
}

impl<W: Write> Output<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Output::Plain(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Output::Lz4(encoder) => {
                let mut w = encoder.finish().map_err(io::Error::from)?;
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Plain(w) => w.write(buf),
            Output::Lz4(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Plain(w) => w.flush(),
            Output::Lz4(w) => w.flush(),
        }
    }
}

/// A `Write` that hands the bytes to an async response body in pieces of about `PIECE` bytes.
pub(crate) struct ChannelWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
}

const PIECE: usize = 256 * 1024;

impl ChannelWriter {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>) -> ChannelWriter {
        ChannelWriter {
            buf: Vec::with_capacity(PIECE),
            tx,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(Ok(piece))
            // A bare kind, with no payload: lz4_flex 0.11's `From<io::Error>` unwraps any payload
            // as its own error type and panics on another (its frame/mod.rs), so a client that
            // went away mid-frame would panic the task instead of ending it.
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    /// Ends the body with an error, so the client sees a broken transfer.
    pub(crate) fn fail(self, error: io::Error) {
        let _ = self.tx.blocking_send(Err(error));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Renders every row of a result batch as strings, the way `JSON_ARRAY` carries them.
pub(crate) fn render_rows(batch: &RecordBatch) -> io::Result<Vec<Vec<Option<String>>>> {
    let options = FormatOptions::default();
    let renderers = batch
        .columns()
        .iter()
        .map(|array| Renderer::new(array.as_ref(), &options))
        .collect::<io::Result<Vec<_>>>()?;
    (0..batch.num_rows())
        .map(|row| renderers.iter().map(|r| r.text(row)).collect())
        .collect()
}

/// Each value of a nested column as one JSON text (maps as objects, structs as objects with
/// every field, nulls inside as JSON `null`); a null value stays an Arrow null.
fn json_text_array(array: &dyn Array) -> io::Result<ArrayRef> {
    let mut builder = StringBuilder::with_capacity(array.len(), array.len() * 32);
    let mut text = String::new();
    for row in 0..array.len() {
        if array.is_null(row) {
            builder.append_null();
        } else {
            text.clear();
            json_value(array, row, &mut text)?;
            builder.append_value(&text);
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// An interval the way Spark prints one in Hive style (`1-2`, `-3 04:05:06.000007`), or `None`
/// for a type that is not an emulated interval.
fn interval_text(array: &dyn Array, row: usize) -> Option<String> {
    match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => {
            let months = array.as_primitive::<IntervalYearMonthType>().value(row);
            let sign = if months < 0 { "-" } else { "" };
            let months = months.unsigned_abs();
            Some(format!("{sign}{}-{}", months / 12, months % 12))
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            let micros = array.as_primitive::<DurationMicrosecondType>().value(row);
            let sign = if micros < 0 { "-" } else { "" };
            let micros = micros.unsigned_abs();
            let secs = micros / 1_000_000;
            Some(format!(
                "{sign}{} {:02}:{:02}:{:02}.{:06}",
                secs / 86_400,
                secs % 86_400 / 3_600,
                secs % 3_600 / 60,
                secs % 60,
                micros % 1_000_000
            ))
        }
        _ => None,
    }
}

enum Renderer<'a> {
    Formatted(&'a dyn Array, ArrayFormatter<'a>),
    Float(&'a dyn Array),
    Timestamp(&'a dyn Array, bool),
    Binary(&'a dyn Array),
    Nested(&'a dyn Array),
    Interval(&'a dyn Array),
}

impl<'a> Renderer<'a> {
    fn new(array: &'a dyn Array, options: &'a FormatOptions<'a>) -> io::Result<Renderer<'a>> {
        Ok(match array.data_type() {
            DataType::Float32 | DataType::Float64 => Renderer::Float(array),
            DataType::Timestamp(_, tz) => Renderer::Timestamp(array, tz.is_some()),
            DataType::Binary => Renderer::Binary(array),
            DataType::List(_) | DataType::Map(..) | DataType::Struct(_) => Renderer::Nested(array),
            DataType::Interval(IntervalUnit::YearMonth)
            | DataType::Duration(TimeUnit::Microsecond) => Renderer::Interval(array),
            _ => Renderer::Formatted(
                array,
                ArrayFormatter::try_new(array, options).map_err(io::Error::other)?,
            ),
        })
    }

    fn text(&self, row: usize) -> io::Result<Option<String>> {
        let array = match self {
            Renderer::Formatted(a, _)
            | Renderer::Float(a)
            | Renderer::Timestamp(a, _)
            | Renderer::Binary(a)
            | Renderer::Nested(a)
            | Renderer::Interval(a) => *a,
        };
        if array.is_null(row) {
            return Ok(None);
        }
        let mut s = String::new();
        match self {
            Renderer::Formatted(_, f) => {
                f.value(row).write(&mut s).map_err(io::Error::other)?;
            }
            Renderer::Float(a) => s = float_text(*a, row),
            Renderer::Timestamp(a, utc) => s = timestamp_text(*a, row, *utc),
            Renderer::Binary(a) => {
                s = base64::engine::general_purpose::STANDARD
                    .encode(a.as_binary::<i32>().value(row))
            }
            Renderer::Nested(a) => json_value(*a, row, &mut s)?,
            Renderer::Interval(a) => s = interval_text(*a, row).unwrap_or_default(),
        }
        Ok(Some(s))
    }
}

fn float_text(array: &dyn Array, row: usize) -> String {
    let v = match array.data_type() {
        DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)),
        _ => array.as_primitive::<Float64Type>().value(row),
    };
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        v.to_string()
    }
}

fn timestamp_text(array: &dyn Array, row: usize, utc: bool) -> String {
    let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) if utc => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Some(t) => t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
        None => micros.to_string(),
    }
}

/// Writes one value as JSON (used for nested values, which `JSON_ARRAY` carries as JSON text).
fn json_value(array: &dyn Array, row: usize, out: &mut String) -> io::Result<()> {
    if array.is_null(row) {
        out.push_str("null");
        return Ok(());
    }
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            out.push('[');
            for i in 0..values.len() {
                if i > 0 {
                    out.push(',');
                }
                json_value(values.as_ref(), i, out)?;
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let entries = map.value(row);
            out.push('{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(',');
                }
                let mut key = String::new();
                json_value(entries.column(0).as_ref(), i, &mut key)?;
                if !key.starts_with('"') {
                    key = crate::types::json_string(&key);
                }
                out.push_str(&key);
                out.push(':');
                json_value(entries.column(1).as_ref(), i, out)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let st = array.as_struct();
            out.push('{');
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&crate::types::json_string(field.name()));
                out.push(':');
                json_value(st.column(i).as_ref(), row, out)?;
            }
            out.push('}');
        }
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Decimal128(..) => {
            let f = ArrayFormatter::try_new(array, &FormatOptions::default())
                .map_err(io::Error::other)?;
            write!(out, "{}", f.value(row)).map_err(io::Error::other)?;
        }
        DataType::Float32 | DataType::Float64 => {
            let text = float_text(array, row);
            if text.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(&text);
            } else {
                out.push_str(&crate::types::json_string(&text));
            }
        }
        DataType::Timestamp(_, tz) => {
            out.push_str(&crate::types::json_string(&timestamp_text(
                array,
                row,
                tz.is_some(),
            )));
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let text = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                .map_or_else(|| days.to_string(), |d| d.to_string());
            out.push_str(&crate::types::json_string(&text));
        }
        DataType::Binary => out.push_str(&crate::types::json_string(
            &base64::engine::general_purpose::STANDARD.encode(array.as_binary::<i32>().value(row)),
        )),
        DataType::Utf8 => out.push_str(&crate::types::json_string(
            array.as_string::<i32>().value(row),
        )),
        DataType::Interval(IntervalUnit::YearMonth) | DataType::Duration(TimeUnit::Microsecond) => {
            let text = interval_text(array, row).unwrap_or_default();
            out.push_str(&crate::types::json_string(&text));
        }
        _ => {
            let f = ArrayFormatter::try_new(array, &FormatOptions::default())
                .map_err(io::Error::other)?;
            out.push_str(&crate::types::json_string(&f.value(row).to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that goes away in the middle of an LZ4 frame ends the body with an error, not
    /// a panic in the encoder.
    #[test]
    fn a_client_gone_mid_frame_is_an_error() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let mut writer = ChannelWriter::new(tx);
        // Incompressible, so the frame outgrows a piece and reaches the channel.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut message: Vec<u8> = (0..3 * PIECE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let error = lz4_frame(&mut writer, &mut message).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
