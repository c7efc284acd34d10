//! PostgreSQL's binary `COPY` format decoded straight into Arrow builders.
//!
//! The stream is a header (`PGCOPY\n\xff\r\n\0`, flags, an extension area), then one tuple
//! per row — a 16-bit field count, then per field a 32-bit length (−1 for NULL) and the
//! value in the type's binary send format — and a trailer (field count −1). CopyData
//! messages may split anywhere; [`CopyDecoder`] keeps what it has not decoded yet. A tuple is
//! decoded only once all of it has arrived, so a batch never holds half a row.
//!
//! Every column's builder is made from its canonical Arrow type, and the `SELECT` the source
//! generates casts each column to the PostgreSQL type whose send format that builder reads
//! (see `types.rs`), so the two cannot disagree. No error here quotes a value.

use arrow::array::RecordBatch;
use bytes::{Buf, BytesMut};

use crate::builders::{Batcher, Builder};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const EPOCH_DAYS: i32 = 10_957;
/// The same in microseconds.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A column value that cannot be decoded, naming what went wrong and never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

fn fail<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(what.into()))
}

/// Appends one value in its send format (`None`: NULL) to `column`.
fn append(column: &mut Builder, value: Option<&[u8]>) -> Result<(), DecodeError> {
    let Some(v) = value else {
        column.append_null();
        return Ok(());
    };
    match column {
        Builder::Bool(b) => b.append_value(fixed::<1>(v, "boolean")?[0] != 0),
        Builder::I16(b) => b.append_value(i16::from_be_bytes(fixed(v, "smallint")?)),
        Builder::I32(b) => b.append_value(i32::from_be_bytes(fixed(v, "integer")?)),
        Builder::I64(b) => b.append_value(i64::from_be_bytes(fixed(v, "bigint")?)),
        Builder::F32(b) => b.append_value(f32::from_be_bytes(fixed(v, "real")?)),
        Builder::F64(b) => b.append_value(f64::from_be_bytes(fixed(v, "double precision")?)),
        Builder::Decimal {
            builder,
            precision,
            scale,
        } => builder.append_value(numeric(v, *precision, *scale)?),
        Builder::Text(b) => match std::str::from_utf8(v) {
            Ok(s) => b.append_value(s),
            Err(_) => return fail("text that is not UTF-8"),
        },
        Builder::Bytes(b) => b.append_value(v),
        Builder::Date(b) => {
            let days = i32::from_be_bytes(fixed(v, "date")?);
            if days == i32::MAX || days == i32::MIN {
                return fail("a date of infinity, which DATE cannot hold");
            }
            b.append_value(
                days.checked_add(EPOCH_DAYS)
                    .ok_or_else(|| DecodeError("a date out of range".into()))?,
            );
        }
        Builder::Timestamp { builder, .. } => {
            let micros = i64::from_be_bytes(fixed(v, "timestamp")?);
            if micros == i64::MAX || micros == i64::MIN {
                return fail("a timestamp of infinity, which TIMESTAMP cannot hold");
            }
            builder.append_value(
                micros
                    .checked_add(EPOCH_MICROS)
                    .ok_or_else(|| DecodeError("a timestamp out of range".into()))?,
            );
        }
        Builder::List { values, .. } => {
            let count = array(v, values)?;
            column.end_list(count).map_err(DecodeError)?;
        }
        // PostgreSQL has no one-byte integer; the mapping never asks for it.
        Builder::I8(_) => return fail("a one-byte integer PostgreSQL does not send"),
    }
    Ok(())
}

fn fixed<const N: usize>(v: &[u8], what: &str) -> Result<[u8; N], DecodeError> {
    v.try_into()
        .map_err(|_| DecodeError(format!("a {what} value of {} bytes", v.len())))
}

/// A one-dimensional array's elements appended to `values`; returns how many.
fn array(v: &[u8], values: &mut Builder) -> Result<usize, DecodeError> {
    let mut r = Reader(v);
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let _element_type = r.i32()?;
    match ndim {
        0 => return Ok(0),
        1 => {}
        _ => {
            return fail(format!(
                "an array value of {ndim} dimensions; only one-dimensional arrays can be read"
            ));
        }
    }
    let count =
        usize::try_from(r.i32()?).map_err(|_| DecodeError("a negative array size".into()))?;
    let _lower_bound = r.i32()?;
    for _ in 0..count {
        let len = r.i32()?;
        if len < 0 {
            append(values, None)?;
        } else {
            append(values, Some(r.take(len as usize)?))?;
        }
    }
    if !r.0.is_empty() {
        return fail("an array value with bytes after its elements");
    }
    Ok(count)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return fail("a value shorter than its header says");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(fixed(self.take(4)?, "length")?))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(fixed(self.take(2)?, "numeric header")?))
    }
}

/// A `numeric` in its send format (digit count, weight, sign, display scale, then base-10000
/// digits, most significant first) as the unscaled `i128` of DECIMAL(precision, scale).
pub(super) fn numeric(v: &[u8], precision: u8, scale: i8) -> Result<i128, DecodeError> {
    let mut r = Reader(v);
    let ndigits = r.u16()? as usize;
    let weight = r.u16()? as i16 as i32;
    let sign = r.u16()?;
    let _dscale = r.u16()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return fail("NaN, which DECIMAL cannot hold"),
        0xD000 | 0xF000 => return fail("infinity, which DECIMAL cannot hold"),
        _ => return fail("a numeric with an unknown sign"),
    }
    let overflow = || {
        DecodeError(format!(
            "a value too large for DECIMAL({precision},{scale})"
        ))
    };
    // Digit i is worth digit × 10000^(weight − i); unscaled, × 10^scale: 10^e with
    // e = 4(weight − i) + scale. Summed term by term, so that no intermediate exceeds the value.
    let mut unscaled: i128 = 0;
    for i in 0..ndigits {
        let digit = r.u16()?;
        if digit >= 10_000 {
            return fail("a numeric digit out of range");
        }
        if digit == 0 {
            continue;
        }
        let e = 4 * (weight - i as i32) + i32::from(scale);
        let term = if e >= 0 {
            10i128
                .checked_pow(e as u32)
                .and_then(|p| p.checked_mul(i128::from(digit)))
                .ok_or_else(overflow)?
        } else {
            let d = 10i128.checked_pow(e.unsigned_abs()).unwrap_or(i128::MAX);
            if i128::from(digit) % d != 0 {
                return fail(format!(
                    "more decimal places than DECIMAL({precision},{scale})"
                ));
            }
            i128::from(digit) / d
        };
        unscaled = unscaled.checked_add(term).ok_or_else(overflow)?;
    }
    let limit = 10i128.pow(u32::from(precision));
    if unscaled >= limit {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -unscaled } else { unscaled })
}

/// Decodes a binary COPY stream into batches of at most `batch_rows` rows.
pub(crate) struct CopyDecoder {
    rows: Batcher,
    pending: BytesMut,
    header_read: bool,
    ended: bool,
    /// Bytes of the rows since the last batch.
    bytes: usize,
}

/// Bytes of values a batch holds at most, whatever its row count: wide rows make smaller
/// batches.
const BATCH_BYTES: usize = 64 << 20;

impl CopyDecoder {
    /// A decoder for rows of `schema` (canonical Arrow types), as the tests make one; a read
    /// gets its builders from the source ([`CopyDecoder::appending_to`]).
    #[cfg(test)]
    pub(crate) fn new(
        schema: arrow::datatypes::SchemaRef,
        batch_rows: usize,
    ) -> Result<Self, DecodeError> {
        Batcher::new(schema, batch_rows)
            .map(Self::appending_to)
            .map_err(DecodeError)
    }

    /// A decoder appending to `rows`.
    pub(crate) fn appending_to(rows: Batcher) -> Self {
        Self {
            rows,
            pending: BytesMut::new(),
            header_read: false,
            ended: false,
            bytes: 0,
        }
    }

    /// True once the trailer has been read.
    #[cfg(test)]
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Decodes what `data` completes. Returns full batches; the rest waits for more data or
    /// [`CopyDecoder::finish`].
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>, (usize, DecodeError)> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        if !self.header_read {
            if self.pending.len() < SIGNATURE.len() + 8 {
                return Ok(out);
            }
            if &self.pending[..SIGNATURE.len()] != SIGNATURE {
                return Err((usize::MAX, DecodeError("not a binary COPY stream".into())));
            }
            let ext = u32::from_be_bytes(
                self.pending[SIGNATURE.len() + 4..SIGNATURE.len() + 8]
                    .try_into()
                    .unwrap_or([0; 4]),
            ) as usize;
            if self.pending.len() < SIGNATURE.len() + 8 + ext {
                return Ok(out);
            }
            self.pending.advance(SIGNATURE.len() + 8 + ext);
            self.header_read = true;
        }
        loop {
            if self.ended {
                if !self.pending.is_empty() {
                    return Err((usize::MAX, DecodeError("data after the end of COPY".into())));
                }
                return Ok(out);
            }
            let Some(len) = self.tuple_len()? else {
                return Ok(out);
            };
            let tuple = self.pending.split_to(len);
            let fields = i16::from_be_bytes([tuple[0], tuple[1]]);
            if fields == -1 {
                self.ended = true;
                continue;
            }
            let mut r = Reader(&tuple[2..]);
            self.rows.push_row(|_, column| {
                let n = r.i32()?;
                let value = if n < 0 {
                    None
                } else {
                    Some(r.take(n as usize)?)
                };
                append(column, value)
            })?;
            self.bytes += len;
            if self.rows.is_full() || self.bytes >= BATCH_BYTES {
                out.push(self.batch().map_err(|e| (usize::MAX, e))?);
            }
        }
    }

    /// The length of the complete tuple at the front of `pending`, if it has all arrived.
    fn tuple_len(&self) -> Result<Option<usize>, (usize, DecodeError)> {
        let p = &self.pending[..];
        if p.len() < 2 {
            return Ok(None);
        }
        let fields = i16::from_be_bytes([p[0], p[1]]);
        if fields == -1 {
            return Ok(Some(2));
        }
        if fields as usize != self.rows.width() {
            return Err((
                usize::MAX,
                DecodeError(format!(
                    "a row of {fields} fields where {} were selected",
                    self.rows.width()
                )),
            ));
        }
        let mut at = 2;
        for _ in 0..fields {
            let Some(head) = p.get(at..at + 4) else {
                return Ok(None);
            };
            let n = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            at += 4 + usize::try_from(n).unwrap_or(0);
        }
        Ok((p.len() >= at).then_some(at))
    }

    /// The rows decoded since the last batch, as a batch.
    fn batch(&mut self) -> Result<RecordBatch, DecodeError> {
        self.bytes = 0;
        self.rows.batch().map_err(DecodeError)
    }

    /// The last, partial batch once the stream has ended, if it holds rows.
    pub(crate) fn finish(&mut self) -> Result<Option<RecordBatch>, DecodeError> {
        if !self.ended {
            return fail("the COPY stream ended before its trailer");
        }
        if self.rows.rows() == 0 {
            return Ok(None);
        }
        self.batch().map(Some)
    }
}

/// A `numeric` value in PostgreSQL's binary send format (without its length word): what
/// `numeric_send` returns for these base-10000 digits. For the decoder's and the encoder's tests.
#[cfg(test)]
pub(crate) fn numeric_bytes(ndigits: &[u16], weight: i16, negative: bool, dscale: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend((ndigits.len() as u16).to_be_bytes());
    v.extend(weight.to_be_bytes());
    v.extend(if negative { 0x4000u16 } else { 0 }.to_be_bytes());
    v.extend(dscale.to_be_bytes());
    for d in ndigits {
        v.extend(d.to_be_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::DataType;

    use super::*;

    use super::numeric_bytes;

    /// Values as PostgreSQL sends them (`SELECT numeric_send(…)`), into DECIMAL(p,s).
    #[test]
    fn numerics_into_decimals() {
        // 1234.5678: digits [1234, 5678], weight 0.
        assert_eq!(
            numeric(&numeric_bytes(&[1234, 5678], 0, false, 4), 8, 4),
            Ok(12_345_678)
        );
        // -0.05 in numeric(6,2): digits [500], weight -1.
        assert_eq!(numeric(&numeric_bytes(&[500], -1, true, 2), 6, 2), Ok(-5));
        // 120000 (trailing zero groups dropped): digits [12], weight 1.
        assert_eq!(
            numeric(&numeric_bytes(&[12], 1, false, 0), 10, 2),
            Ok(12_000_000)
        );
        // Zero: no digits.
        assert_eq!(numeric(&numeric_bytes(&[], 0, false, 2), 6, 2), Ok(0));
        // 38 nines at scale 0.
        let mut digits = vec![99u16, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999];
        assert_eq!(
            numeric(&numeric_bytes(&digits, 9, false, 0), 38, 0),
            Ok(10i128.pow(38) - 1)
        );
        digits[0] = 100;
        assert!(numeric(&numeric_bytes(&digits, 9, false, 0), 38, 0).is_err());
        // Too many places for the scale; NaN; too large for the precision.
        assert!(numeric(&numeric_bytes(&[1, 5000], 0, false, 1), 6, 0).is_err());
        let nan = [0, 0, 0, 0, 0xC0, 0, 0, 0];
        assert_eq!(
            numeric(&nan, 6, 2),
            Err(DecodeError("NaN, which DECIMAL cannot hold".into()))
        );
        assert!(numeric(&numeric_bytes(&[1, 0], 1, false, 0), 4, 0).is_err());
    }

    fn stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend(0u32.to_be_bytes());
        v.extend(4u32.to_be_bytes());
        v.extend([9, 9, 9, 9]);
        for row in rows {
            v.extend((row.len() as i16).to_be_bytes());
            for f in row {
                match f {
                    None => v.extend((-1i32).to_be_bytes()),
                    Some(b) => {
                        v.extend((b.len() as i32).to_be_bytes());
                        v.extend(b);
                    }
                }
            }
        }
        v.extend((-1i16).to_be_bytes());
        v
    }

    /// A stream split at every byte decodes to the same rows as one delivered whole, in
    /// batches of the configured size, the extension area skipped.
    #[test]
    fn a_stream_split_anywhere_decodes_the_same() {
        use arrow::array::{AsArray, Int32Array};
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("i", DataType::Int32, true),
            arrow::datatypes::Field::new("s", DataType::Utf8, true),
        ]));
        let rows: Vec<_> = (0..7)
            .map(|i: i32| {
                vec![
                    (i != 3).then(|| i.to_be_bytes().to_vec()),
                    Some(format!("r{i}").into_bytes()),
                ]
            })
            .collect();
        let bytes = stream(&rows);
        let mut decoder = CopyDecoder::new(schema.clone(), 3).unwrap();
        let mut batches = Vec::new();
        for b in &bytes {
            batches.extend(decoder.push(std::slice::from_ref(b)).unwrap());
        }
        assert!(decoder.ended());
        batches.extend(decoder.finish().unwrap());
        assert_eq!(
            batches
                .iter()
                .map(RecordBatch::num_rows)
                .collect::<Vec<_>>(),
            [3, 3, 1]
        );
        let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
        assert_eq!(
            all.column(0).as_primitive::<arrow::datatypes::Int32Type>(),
            &Int32Array::from(vec![
                Some(0),
                Some(1),
                Some(2),
                None,
                Some(4),
                Some(5),
                Some(6)
            ])
        );
        assert_eq!(all.column(1).as_string::<i32>().value(6), "r6");

        // Cut before the trailer: an error, not a short table.
        let mut decoder = CopyDecoder::new(schema, 3).unwrap();
        decoder.push(&bytes[..bytes.len() - 2]).unwrap();
        assert!(decoder.finish().is_err());
    }
}
