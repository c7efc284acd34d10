//! One Arrow builder per column, by canonical Arrow type ([`publish_columns::arrow_type`]),
//! and the [`Batcher`] that fills them row by row: what both SQL decoders append to
//! (PostgreSQL's binary COPY, MySQL's binary protocol). Each decoder turns its wire's value
//! into the variant's native value; nulls, finishing, the list bookkeeping, when a batch is
//! full and the conversion to the canonical schema are here, once.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    ListArray, NullBufferBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, FieldRef, SchemaRef, TimeUnit};

/// A builder for one column.
pub(crate) enum Builder {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal {
        builder: Decimal128Builder,
        precision: u8,
        scale: i8,
    },
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Timestamp {
        builder: TimestampMicrosecondBuilder,
        zone: Option<Arc<str>>,
    },
    /// A list: its offsets and validity here, its items in `values`.
    List {
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        item: FieldRef,
        values: Box<Builder>,
    },
}

impl Builder {
    /// A builder for `data_type`; `Err` names a type no SQL source yields.
    pub(crate) fn new(data_type: &DataType) -> Result<Self, String> {
        Ok(match data_type {
            DataType::Boolean => Self::Bool(BooleanBuilder::new()),
            DataType::Int8 => Self::I8(Int8Builder::new()),
            DataType::Int16 => Self::I16(Int16Builder::new()),
            DataType::Int32 => Self::I32(Int32Builder::new()),
            DataType::Int64 => Self::I64(Int64Builder::new()),
            DataType::Float32 => Self::F32(Float32Builder::new()),
            DataType::Float64 => Self::F64(Float64Builder::new()),
            DataType::Decimal128(precision, scale) => Self::Decimal {
                builder: Decimal128Builder::new(),
                precision: *precision,
                scale: *scale,
            },
            DataType::Utf8 => Self::Text(StringBuilder::new()),
            DataType::Binary => Self::Bytes(BinaryBuilder::new()),
            DataType::Date32 => Self::Date(Date32Builder::new()),
            DataType::Timestamp(TimeUnit::Microsecond, zone) => Self::Timestamp {
                builder: TimestampMicrosecondBuilder::new(),
                zone: zone.clone(),
            },
            DataType::List(item) => Self::List {
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                item: Arc::clone(item),
                values: Box::new(Self::new(item.data_type())?),
            },
            other => return Err(format!("no decoding into {other}")),
        })
    }

    /// Appends a NULL.
    pub(crate) fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::I8(b) => b.append_null(),
            Self::I16(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Decimal { builder, .. } => builder.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Bytes(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp { builder, .. } => builder.append_null(),
            Self::List { offsets, nulls, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                nulls.append_null();
            }
        }
    }

    /// Ends a list value whose `count` items were just appended to `values`.
    pub(crate) fn end_list(&mut self, count: usize) -> Result<(), String> {
        let Self::List { offsets, nulls, .. } = self else {
            return Err("a list value in a column that is not a list".into());
        };
        let last = offsets.last().copied().unwrap_or(0);
        let next = i32::try_from(count)
            .ok()
            .and_then(|n| last.checked_add(n))
            .ok_or_else(|| "more list items than a batch holds".to_owned())?;
        offsets.push(next);
        nulls.append_non_null();
        Ok(())
    }

    /// The column so far, as an array; the builder starts again empty.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, String> {
        Ok(match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::I8(b) => Arc::new(b.finish()),
            Self::I16(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Decimal {
                builder,
                precision,
                scale,
            } => Arc::new(
                builder
                    .finish()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|_| "a decimal of an impossible precision".to_owned())?,
            ),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp { builder, zone } => {
                Arc::new(builder.finish().with_timezone_opt(zone.clone()))
            }
            Self::List {
                offsets,
                nulls,
                item,
                values,
            } => {
                let taken = std::mem::replace(offsets, vec![0]);
                let child = values.finish()?;
                Arc::new(
                    ListArray::try_new(
                        Arc::clone(item),
                        OffsetBuffer::new(ScalarBuffer::from(taken)),
                        child,
                        nulls.finish(),
                    )
                    .map_err(|_| "a list column that does not add up".to_owned())?,
                )
            }
        })
    }

    /// Values appended since the last [`Builder::finish`].
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Bool(b) => b.len(),
            Self::I8(b) => b.len(),
            Self::I16(b) => b.len(),
            Self::I32(b) => b.len(),
            Self::I64(b) => b.len(),
            Self::F32(b) => b.len(),
            Self::F64(b) => b.len(),
            Self::Decimal { builder, .. } => builder.len(),
            Self::Text(b) => b.len(),
            Self::Bytes(b) => b.len(),
            Self::Date(b) => b.len(),
            Self::Timestamp { builder, .. } => builder.len(),
            Self::List { offsets, .. } => offsets.len() - 1,
        }
    }
}

/// Rows into batches of one schema (canonical Arrow types): a [`Builder`] per column, the rows
/// appended since the last batch, and when a batch is full.
pub(crate) struct Batcher {
    schema: SchemaRef,
    columns: Vec<Builder>,
    rows: usize,
    batch_rows: usize,
}

impl Batcher {
    /// Builders for `schema`'s columns, a batch full at `batch_rows` rows (at least one);
    /// `Err` names a type no SQL source yields.
    pub(crate) fn new(schema: SchemaRef, batch_rows: usize) -> Result<Self, String> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| Builder::new(f.data_type()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            schema,
            columns,
            rows: 0,
            batch_rows: batch_rows.max(1),
        })
    }

    /// How many values a row has.
    pub(crate) fn width(&self) -> usize {
        self.columns.len()
    }

    /// Appends one row, each column's value by `append(position, builder)`; `Err` names the
    /// position of the column that failed. After an error the batch is broken: the read ends.
    pub(crate) fn push_row<E>(
        &mut self,
        mut append: impl FnMut(usize, &mut Builder) -> Result<(), E>,
    ) -> Result<(), (usize, E)> {
        for (i, column) in self.columns.iter_mut().enumerate() {
            append(i, column).map_err(|e| (i, e))?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows appended since the last batch.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// True once a batch's rows have been appended.
    pub(crate) fn is_full(&self) -> bool {
        self.rows >= self.batch_rows
    }

    /// The rows since the last batch, as a batch of the canonical schema; the builders start
    /// again empty.
    pub(crate) fn batch(&mut self) -> Result<RecordBatch, String> {
        let arrays = self
            .columns
            .iter_mut()
            .map(Builder::finish)
            .collect::<Result<Vec<_>, _>>()?;
        let rows = std::mem::take(&mut self.rows);
        debug_assert!(self.columns.iter().all(|c| c.len() == 0));
        publish_columns::conform_columns(&arrays, rows, &self.schema)
    }
}
