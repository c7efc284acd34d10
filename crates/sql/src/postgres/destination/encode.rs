//! Arrow batches encoded as PostgreSQL's binary `COPY` stream, the mirror of `copy.rs`.
//!
//! The stream is the header (`PGCOPY\n\xff\r\n\0`, flags 0, no extension), one tuple per row
//! (a 16-bit field count, then per field a 32-bit length, −1 for NULL, and the value in its
//! type's send format) and the trailer (−1). Rows are encoded into the caller's buffer until
//! it holds [`FLUSH_BYTES`]; the caller sends that and asks for more, so memory stays bounded by
//! one batch and one buffer whatever the table size.
//!
//! Which column is which [`PgType`] and which Arrow type carries it is decided by
//! `publish_columns::PostgresPlan`; here each pair is only encoded. Values a PostgreSQL type
//! cannot hold (a date or timestamp before 4713 BC, a date after 5874897 AD, more digits than
//! `numeric(p,s)` allows, NUL in text) are refused here, naming what is wrong and never the
//! value, rather than left for the server to refuse halfway through a table. (Every later
//! timestamp Arrow's 64-bit microseconds can hold, up to 294247 AD, PostgreSQL holds too.)

use arrow::array::{
    Array, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    DurationMicrosecondArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    IntervalYearMonthArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use bytes::{BufMut, BytesMut};
use publish_columns::PgType;

/// The buffer size at which encoded rows are handed to the connection.
pub(super) const FLUSH_BYTES: usize = 1 << 20;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const EPOCH_DAYS: i64 = 10_957;
/// The same in microseconds.
const EPOCH_MICROS: i64 = 946_684_800_000_000;
/// PostgreSQL's dates, in days from its epoch: from 4713-11-24 BC (Julian day 0) up to, not
/// including, Julian day 2147483494 (`IS_VALID_DATE`).
const DATE_RANGE: std::ops::Range<i64> = -2_451_545..2_145_031_949;
/// PostgreSQL's timestamps, in µs from its epoch (`IS_VALID_TIMESTAMP`): 4713-11-24 BC up to
/// 294277-01-01; the two ends of `i64` mean ±infinity and are outside it.
const TIMESTAMP_RANGE: std::ops::Range<i64> = -211_813_488_000_000_000..9_223_371_331_200_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A value that cannot be encoded: the column's index and what is wrong (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EncodeError {
    pub(super) column: usize,
    pub(super) detail: String,
}

/// The stream's header.
pub(super) fn header(buf: &mut BytesMut) {
    buf.put_slice(SIGNATURE);
    buf.put_i32(0);
    buf.put_i32(0);
}

/// The stream's trailer.
pub(super) fn trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// One column of a batch, typed for its encoding.
enum Column<'a> {
    Bool(&'a BooleanArray),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    Numeric {
        array: &'a Decimal128Array,
        precision: u8,
        scale: u8,
    },
    Text(&'a StringArray),
    Jsonb(&'a StringArray),
    Bytes(&'a BinaryArray),
    Date(&'a Date32Array),
    Timestamp(&'a TimestampMicrosecondArray),
    Months(&'a IntervalYearMonthArray),
    Micros(&'a DurationMicrosecondArray),
}

impl<'a> Column<'a> {
    /// The encoding of `array` as `pg`; `None` when the plan handed over another Arrow type.
    fn new(pg: PgType, array: &'a dyn Array) -> Option<Self> {
        Some(match (pg, array.data_type()) {
            (PgType::Boolean, DataType::Boolean) => Self::Bool(array.as_boolean()),
            (PgType::SmallInt, DataType::Int16) => Self::I16(array.as_primitive()),
            (PgType::Integer, DataType::Int32) => Self::I32(array.as_primitive()),
            (PgType::BigInt, DataType::Int64) => Self::I64(array.as_primitive()),
            (PgType::Real, DataType::Float32) => Self::F32(array.as_primitive()),
            (PgType::DoublePrecision, DataType::Float64) => Self::F64(array.as_primitive()),
            (PgType::Numeric { precision, scale }, DataType::Decimal128(p, s))
                if *p == precision && i16::from(*s) == i16::from(scale) =>
            {
                Self::Numeric {
                    array: array.as_primitive(),
                    precision,
                    scale,
                }
            }
            (PgType::Text, DataType::Utf8) => Self::Text(array.as_string()),
            (PgType::Jsonb, DataType::Utf8) => Self::Jsonb(array.as_string()),
            (PgType::Bytea, DataType::Binary) => Self::Bytes(array.as_binary()),
            (PgType::Date, DataType::Date32) => Self::Date(array.as_primitive()),
            (
                PgType::Timestamp | PgType::Timestamptz,
                DataType::Timestamp(TimeUnit::Microsecond, _),
            ) => Self::Timestamp(array.as_primitive()),
            (PgType::Interval, DataType::Interval(IntervalUnit::YearMonth)) => {
                Self::Months(array.as_primitive())
            }
            (PgType::Interval, DataType::Duration(TimeUnit::Microsecond)) => {
                Self::Micros(array.as_primitive())
            }
            _ => return None,
        })
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Self::Bool(a) => a.is_null(row),
            Self::I16(a) => a.is_null(row),
            Self::I32(a) => a.is_null(row),
            Self::I64(a) => a.is_null(row),
            Self::F32(a) => a.is_null(row),
            Self::F64(a) => a.is_null(row),
            Self::Numeric { array, .. } => array.is_null(row),
            Self::Text(a) | Self::Jsonb(a) => a.is_null(row),
            Self::Bytes(a) => a.is_null(row),
            Self::Date(a) => a.is_null(row),
            Self::Timestamp(a) => a.is_null(row),
            Self::Months(a) => a.is_null(row),
            Self::Micros(a) => a.is_null(row),
        }
    }

    /// Appends the length and send format of the (non-null) value at `row`.
    fn encode(&self, row: usize, buf: &mut BytesMut) -> Result<(), String> {
        match self {
            Self::Bool(a) => {
                buf.put_i32(1);
                buf.put_u8(u8::from(a.value(row)));
            }
            Self::I16(a) => {
                buf.put_i32(2);
                buf.put_i16(a.value(row));
            }
            Self::I32(a) => {
                buf.put_i32(4);
                buf.put_i32(a.value(row));
            }
            Self::I64(a) => {
                buf.put_i32(8);
                buf.put_i64(a.value(row));
            }
            // The IEEE 754 bits as they are: NaN, ±infinity and −0.0 intact.
            Self::F32(a) => {
                buf.put_i32(4);
                buf.put_u32(a.value(row).to_bits());
            }
            Self::F64(a) => {
                buf.put_i32(8);
                buf.put_u64(a.value(row).to_bits());
            }
            Self::Numeric {
                array,
                precision,
                scale,
            } => numeric(buf, array.value(row), *precision, *scale)?,
            Self::Text(a) => {
                let text = a.value(row);
                if text.as_bytes().contains(&0) {
                    return Err(
                        "a text value holds the character NUL (U+0000), which PostgreSQL text \
                         cannot hold"
                            .into(),
                    );
                }
                put_bytes(buf, text.as_bytes(), &[])?;
            }
            // jsonb's send format: version 1, then the JSON text.
            Self::Jsonb(a) => put_bytes(buf, a.value(row).as_bytes(), &[1])?,
            Self::Bytes(a) => put_bytes(buf, a.value(row), &[])?,
            Self::Date(a) => {
                let days = i64::from(a.value(row)) - EPOCH_DAYS;
                if !DATE_RANGE.contains(&days) {
                    return Err("a date outside PostgreSQL's range (4713 BC to 5874897 AD)".into());
                }
                buf.put_i32(4);
                buf.put_i32(days as i32);
            }
            Self::Timestamp(a) => {
                let micros = a
                    .value(row)
                    .checked_sub(EPOCH_MICROS)
                    .filter(|m| TIMESTAMP_RANGE.contains(m))
                    .ok_or_else(|| {
                        "a timestamp outside PostgreSQL's range (4713 BC to 294276 AD)".to_owned()
                    })?;
                buf.put_i32(8);
                buf.put_i64(micros);
            }
            // interval's send format: microseconds, days, months.
            Self::Months(a) => {
                buf.put_i32(16);
                buf.put_i64(0);
                buf.put_i32(0);
                buf.put_i32(a.value(row));
            }
            Self::Micros(a) => {
                // Whole days as days (as a day-time interval reads), the rest as time; both
                // carry the sign. |µs| / 86 400 000 000 always fits an i32.
                let micros = a.value(row);
                buf.put_i32(16);
                buf.put_i64(micros % MICROS_PER_DAY);
                buf.put_i32((micros / MICROS_PER_DAY) as i32);
                buf.put_i32(0);
            }
        }
        Ok(())
    }
}

/// A variable-length value: its length, `prefix`, then `bytes`.
fn put_bytes(buf: &mut BytesMut, bytes: &[u8], prefix: &[u8]) -> Result<(), String> {
    let len = i32::try_from(bytes.len() + prefix.len())
        .map_err(|_| "a value longer than PostgreSQL's 1 GB field limit".to_owned())?;
    buf.put_i32(len);
    buf.put_slice(prefix);
    buf.put_slice(bytes);
    Ok(())
}

/// A DECIMAL(precision, scale) value (`unscaled` × 10^−scale) in `numeric`'s send format:
/// the count of base-10000 digits, the weight of the first (a power of 10000), the sign, the
/// display scale, then the digits, most significant first, without leading or trailing zero
/// digits. The digits are split from the integer and the fraction separately so that no
/// intermediate exceeds the value.
fn numeric(buf: &mut BytesMut, unscaled: i128, precision: u8, scale: u8) -> Result<(), String> {
    let abs = unscaled.unsigned_abs();
    // precision ≤ 38 (UcType's rule), so 10^precision fits.
    if abs >= 10u128.pow(u32::from(precision)) {
        return Err(format!(
            "a value with more than {precision} digits, which numeric({precision},{scale}) \
             cannot hold"
        ));
    }
    let scale = u32::from(scale);
    let unit = 10u128.pow(scale);
    let (mut int, frac) = (abs / unit, abs % unit);
    // At most 10 groups for the integer (< 10^38) and 10 for the fraction (38 places).
    let mut digits = [0u16; 20];
    let mut n = 0;
    let mut int_groups = [0u16; 10];
    let mut n_int = 0;
    while int > 0 {
        int_groups[n_int] = (int % 10_000) as u16;
        int /= 10_000;
        n_int += 1;
    }
    for g in int_groups[..n_int].iter().rev() {
        digits[n] = *g;
        n += 1;
    }
    for i in 0..scale.div_ceil(4) {
        let end = 4 * (i + 1);
        let group = if end <= scale {
            (frac / 10u128.pow(scale - end)) % 10_000
        } else {
            // The last, partial group: its digits, shifted to the group's left.
            (frac % 10u128.pow(scale - 4 * i)) * 10u128.pow(end - scale)
        };
        digits[n] = group as u16;
        n += 1;
    }
    let mut weight = n_int as i16 - 1;
    let mut first = 0;
    while first < n && digits[first] == 0 {
        first += 1;
        weight -= 1;
    }
    let mut last = n;
    while last > first && digits[last - 1] == 0 {
        last -= 1;
    }
    let digits = &digits[first..last];
    let (weight, sign) = match (digits.is_empty(), unscaled < 0) {
        (true, _) => (0, 0x0000),
        (false, true) => (weight, 0x4000),
        (false, false) => (weight, 0x0000),
    };
    buf.put_i32(8 + 2 * digits.len() as i32);
    buf.put_u16(digits.len() as u16);
    buf.put_i16(weight);
    buf.put_u16(sign);
    buf.put_u16(scale as u16);
    for d in digits {
        buf.put_u16(*d);
    }
    Ok(())
}

/// The rows of one batch, encoded a buffer's worth at a time.
pub(super) struct Rows<'a> {
    columns: Vec<Column<'a>>,
    next: usize,
    len: usize,
}

impl<'a> Rows<'a> {
    /// The rows of `batch`, whose columns are of `types` in the Arrow types the plan hands
    /// over. Another Arrow type is an error naming the column (a bug, not a value).
    pub(super) fn new(types: &[PgType], batch: &'a RecordBatch) -> Result<Self, EncodeError> {
        let columns = types
            .iter()
            .zip(batch.columns())
            .enumerate()
            .map(|(i, (t, array))| {
                Column::new(*t, array.as_ref()).ok_or_else(|| EncodeError {
                    column: i,
                    detail: format!(
                        "{} cannot be encoded as PostgreSQL {}",
                        array.data_type(),
                        t.sql()
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            columns,
            next: 0,
            len: batch.num_rows(),
        })
    }

    /// Encodes rows into `buf` until it holds `limit` bytes or the batch is done; `true` once
    /// every row is encoded.
    pub(super) fn encode(&mut self, buf: &mut BytesMut, limit: usize) -> Result<bool, EncodeError> {
        let fields = self.columns.len() as i16;
        while self.next < self.len && buf.len() < limit {
            let row = self.next;
            buf.put_i16(fields);
            for (i, column) in self.columns.iter().enumerate() {
                if column.is_null(row) {
                    buf.put_i32(-1);
                } else {
                    column
                        .encode(row, buf)
                        .map_err(|detail| EncodeError { column: i, detail })?;
                }
            }
            self.next += 1;
        }
        Ok(self.next == self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::copy::numeric as decode_numeric;

    fn encoded(unscaled: i128, precision: u8, scale: u8) -> Vec<u8> {
        let mut buf = BytesMut::new();
        numeric(&mut buf, unscaled, precision, scale).unwrap();
        buf.to_vec()
    }

    /// The value with its length word, as a COPY field holds it.
    fn send(ndigits: &[u16], weight: i16, negative: bool, dscale: u16) -> Vec<u8> {
        let value = crate::postgres::copy::numeric_bytes(ndigits, weight, negative, dscale);
        let mut v = (value.len() as i32).to_be_bytes().to_vec();
        v.extend(value);
        v
    }

    /// The bytes PostgreSQL itself sends for these values (`SELECT numeric_send(…)`).
    #[test]
    fn numerics_as_postgresql_sends_them() {
        assert_eq!(encoded(12_345_678, 8, 4), send(&[1234, 5678], 0, false, 4));
        assert_eq!(encoded(-5, 6, 2), send(&[500], -1, true, 2));
        assert_eq!(encoded(12_000_000, 10, 2), send(&[12], 1, false, 2));
        assert_eq!(encoded(0, 6, 2), send(&[], 0, false, 2));
        assert_eq!(encoded(5, 10, 4), send(&[5], -1, false, 4));
        // 10^-38 is 100 × 10000^-10.
        assert_eq!(encoded(1, 38, 38), send(&[100], -10, false, 38));
        assert_eq!(
            encoded(10i128.pow(38) - 1, 38, 0),
            send(
                &[99, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999],
                9,
                false,
                0
            )
        );
    }

    /// A batch encoded a bounded buffer at a time — never more than the limit and one row —
    /// and decoded by the source's decoder is the same batch, NULLs, NaN, −0.0 and the ends of
    /// every range included.
    #[test]
    fn batches_round_trip_through_the_decoder_in_bounded_chunks() {
        use std::sync::Arc;

        use arrow::array::ArrayRef;
        use arrow::datatypes::{Field, Schema};

        let n = 20_000usize;
        let schema = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i", DataType::Int32, true),
            Field::new("l", DataType::Int64, false),
            Field::new("f", DataType::Float32, true),
            Field::new("d", DataType::Float64, true),
            Field::new("n", DataType::Decimal128(38, 4), true),
            Field::new("s", DataType::Utf8, true),
            Field::new("y", DataType::Binary, true),
            Field::new("t", DataType::Date32, true),
            Field::new(
                "z",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
        ]));
        let pick = |i: usize, values: &[i64]| values[i % values.len()];
        let some = |i: usize| i % 7 != 3;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| some(i).then_some(i % 2 == 0)),
            )),
            Arc::new(Int32Array::from_iter((0..n).map(|i| {
                some(i).then_some(pick(i, &[0, -1, i32::MAX.into(), i32::MIN.into()]) as i32)
            }))),
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| pick(i, &[0, i64::MAX, i64::MIN, 42])),
            )),
            Arc::new(Float32Array::from_iter((0..n).map(|i| {
                some(i).then_some([f32::NAN, -0.0, f32::INFINITY, 1.5e-45][i % 4])
            }))),
            Arc::new(Float64Array::from_iter((0..n).map(|i| {
                some(i).then_some([f64::NEG_INFINITY, 0.1, -0.0, f64::MAX][i % 4])
            }))),
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|i| {
                    some(i).then_some([10i128.pow(38) - 1, -(10i128.pow(38) - 1), 1, 0][i % 4])
                }))
                .with_precision_and_scale(38, 4)
                .unwrap(),
            ),
            Arc::new(StringArray::from_iter((0..n).map(|i| {
                some(i).then(|| format!("row {i} ünï {}", "x".repeat(i % 300)))
            }))),
            Arc::new(BinaryArray::from_iter(
                (0..n).map(|i| some(i).then(|| vec![(i % 256) as u8; i % 50])),
            )),
            Arc::new(Date32Array::from_iter((0..n).map(|i| {
                some(i).then_some([-2_440_588, 2_145_042_905, 0, -165][i % 4])
            }))),
            Arc::new(
                TimestampMicrosecondArray::from_iter((0..n).map(|i| {
                    some(i).then_some(pick(i, &[i64::MAX, -210_866_803_200_000_000, 0, -1]))
                }))
                .with_timezone("+00:00"),
            ),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let types = [
            PgType::Boolean,
            PgType::Integer,
            PgType::BigInt,
            PgType::Real,
            PgType::DoublePrecision,
            PgType::Numeric {
                precision: 38,
                scale: 4,
            },
            PgType::Text,
            PgType::Bytea,
            PgType::Date,
            PgType::Timestamptz,
        ];
        let limit = 64 << 10;
        let mut rows = Rows::new(&types, &batch).unwrap();
        let mut decoder =
            crate::postgres::copy::CopyDecoder::new(Arc::clone(&schema), 4096).unwrap();
        let mut buf = BytesMut::new();
        header(&mut buf);
        let mut decoded = Vec::new();
        let mut chunks = 0;
        loop {
            let done = rows.encode(&mut buf, limit).unwrap();
            if done {
                trailer(&mut buf);
            }
            assert!(buf.len() < limit + 2048, "{} bytes buffered", buf.len());
            decoded.extend(decoder.push(&buf.split()).unwrap());
            chunks += 1;
            if done {
                break;
            }
        }
        decoded.extend(decoder.finish().unwrap());
        assert!(chunks > 20, "{chunks} chunks");
        let back = arrow::compute::concat_batches(&schema, &decoded).unwrap();
        for (c, field) in schema.fields().iter().enumerate() {
            // Compare as data: NaN == NaN bit for bit, −0.0 kept.
            assert_eq!(
                back.column(c).to_data(),
                batch.column(c).to_data(),
                "column {}",
                field.name()
            );
        }
    }

    /// Every value encoded and decoded again (with the source's decoder) is the same value,
    /// at every scale, both signs, the extremes included.
    #[test]
    fn numerics_round_trip_through_the_decoder() {
        let max = 10i128.pow(38) - 1;
        let values = [
            0,
            1,
            -1,
            9,
            10,
            9999,
            10_000,
            10_001,
            123_456_789,
            -987_654_321_012_345_678,
            max,
            -max,
            max / 7,
            -(max / 13),
            10i128.pow(37),
        ];
        for scale in 0..=38u8 {
            for v in values {
                let mut buf = BytesMut::new();
                numeric(&mut buf, v, 38, scale).unwrap();
                let decoded = decode_numeric(&buf[4..], 38, scale as i8)
                    .unwrap_or_else(|e| panic!("{v} scale {scale}: {e:?}"));
                assert_eq!(decoded, v, "{v} at scale {scale}");
            }
        }
        // More digits than the precision: refused, without the value.
        let mut buf = BytesMut::new();
        let e = numeric(&mut buf, 100_000, 5, 2).unwrap_err();
        assert_eq!(
            e,
            "a value with more than 5 digits, which numeric(5,2) cannot hold"
        );
    }
}
