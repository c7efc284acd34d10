//! Rows of MySQL's binary protocol (what a prepared statement returns) into the shared Arrow
//! builders, by canonical Arrow type. No error quotes a value.

use mysql_async::Value;

use crate::builders::{Batcher, Builder};

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn int(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::UInt(u) => Ok(i128::from(*u)),
        // BIT(n) arrives as big-endian bytes.
        Value::Bytes(b) if b.len() <= 8 => Ok(b.iter().fold(0i128, |a, x| a << 8 | i128::from(*x))),
        _ => Err("a value of another kind than the column's integer type".into()),
    }
}

fn ranged<T: TryFrom<i128>>(v: &Value, what: &str) -> Result<T, String> {
    T::try_from(int(v)?).map_err(|_| format!("a value out of the range of {what}"))
}

/// A decimal's text (`-123.45`) or an integer as the unscaled value at `scale`.
fn decimal(v: &Value, precision: u8, scale: i8) -> Result<i128, String> {
    let too_large = || format!("a value too large for DECIMAL({precision},{scale})");
    let scale = u32::try_from(scale).map_err(|_| "a negative scale".to_owned())?;
    let unscaled = match v {
        Value::Bytes(text) => {
            let text = std::str::from_utf8(text).map_err(|_| "a decimal that is not text")?;
            let (negative, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.strip_prefix('+').unwrap_or(text)),
            };
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            if fraction.len() > scale as usize
                || !whole
                    .bytes()
                    .chain(fraction.bytes())
                    .all(|b| b.is_ascii_digit())
            {
                return Err(format!("a value that is not DECIMAL({precision},{scale})"));
            }
            let mut n: i128 = 0;
            for b in whole.bytes().chain(fraction.bytes()) {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(i128::from(b - b'0')))
                    .ok_or_else(too_large)?;
            }
            let pad = 10i128
                .checked_pow(scale - fraction.len() as u32)
                .ok_or_else(too_large)?;
            let n = n.checked_mul(pad).ok_or_else(too_large)?;
            if negative { -n } else { n }
        }
        other => int(other)?
            .checked_mul(10i128.checked_pow(scale).ok_or_else(too_large)?)
            .ok_or_else(too_large)?,
    };
    if unscaled.unsigned_abs() >= 10u128.pow(u32::from(precision)) {
        return Err(too_large());
    }
    Ok(unscaled)
}

/// Appends one value of the binary protocol to `column`.
fn append(column: &mut Builder, v: &Value) -> Result<(), String> {
    if matches!(v, Value::NULL) {
        column.append_null();
        return Ok(());
    }
    match column {
        Builder::Bool(b) => b.append_value(int(v)? != 0),
        Builder::I8(b) => b.append_value(ranged(v, "TINYINT")?),
        Builder::I16(b) => b.append_value(ranged(v, "SMALLINT")?),
        Builder::I32(b) => b.append_value(ranged(v, "INT")?),
        Builder::I64(b) => b.append_value(ranged(v, "BIGINT")?),
        Builder::F32(b) => match v {
            Value::Float(f) => b.append_value(*f),
            _ => return Err("a value that is not a FLOAT".into()),
        },
        Builder::F64(b) => match v {
            Value::Double(f) => b.append_value(*f),
            Value::Float(f) => b.append_value(f64::from(*f)),
            _ => return Err("a value that is not a DOUBLE".into()),
        },
        Builder::Decimal {
            builder,
            precision,
            scale,
        } => builder.append_value(decimal(v, *precision, *scale)?),
        Builder::Text(b) => match v {
            Value::Bytes(bytes) => {
                b.append_value(std::str::from_utf8(bytes).map_err(|_| "text that is not UTF-8")?)
            }
            _ => return Err("a value that is not text".into()),
        },
        Builder::Bytes(b) => match v {
            Value::Bytes(bytes) => b.append_value(bytes),
            _ => return Err("a value that is not bytes".into()),
        },
        Builder::Date(b) => match v {
            Value::Date(0, 0, 0, ..) => {
                return Err("a zero date (0000-00-00), which DATE cannot hold".into());
            }
            Value::Date(y, m, d, ..) => b.append_value(
                i32::try_from(days_from_civil(i64::from(*y), i64::from(*m), i64::from(*d)))
                    .map_err(|_| "a date out of range")?,
            ),
            _ => return Err("a value that is not a date".into()),
        },
        Builder::Timestamp { builder, .. } => match v {
            Value::Date(0, 0, 0, ..) => {
                return Err("a zero date (0000-00-00), which TIMESTAMP cannot hold".into());
            }
            Value::Date(y, mo, d, h, mi, s, us) => {
                let days = days_from_civil(i64::from(*y), i64::from(*mo), i64::from(*d));
                let seconds =
                    days * 86_400 + i64::from(*h) * 3_600 + i64::from(*mi) * 60 + i64::from(*s);
                builder.append_value(seconds * 1_000_000 + i64::from(*us));
            }
            _ => return Err("a value that is not a timestamp".into()),
        },
        // MySQL has no arrays; the mapping never asks for one.
        Builder::List { .. } => return Err("a list MySQL does not send".into()),
    }
    Ok(())
}

/// Appends one row of the binary protocol to `rows`; `Err((column position, what))`.
pub(super) fn push(rows: &mut Batcher, values: &[Value]) -> Result<(), (usize, String)> {
    if values.len() != rows.width() {
        return Err((usize::MAX, "a row of another width than selected".into()));
    }
    rows.push_row(|i, column| append(column, &values[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_and_decimals() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(days_from_civil(1969, 7, 20), -165);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        let text = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        assert_eq!(decimal(&text("-9999.99"), 6, 2), Ok(-999_999));
        assert_eq!(decimal(&text("12.5"), 6, 2), Ok(1_250));
        assert_eq!(
            decimal(&Value::UInt(u64::MAX), 20, 0),
            Ok(i128::from(u64::MAX))
        );
        assert!(decimal(&text("1.234"), 6, 2).is_err());
        assert!(decimal(&text("12345.6"), 6, 2).is_err());
        assert!(decimal(&text("1e5"), 6, 2).is_err());
    }
}
