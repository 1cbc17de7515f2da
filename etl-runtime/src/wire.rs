//! PostgreSQL's binary wire format, read straight into the column encoders.
//!
//! Table exports read `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and write each field into
//! its Arrow builder without building a model first: text is appended as it arrives, jsonb's
//! text is already JSON, a numeric's base-10000 digits become the DECIMAL's unscaled integer
//! directly. The conversions are the same as the model path's ([`crate::encode`]); the
//! round-trip tests read both back through pyarrow and DuckDB.

use std::fmt::Write as _;

use crate::encode::{
    BoolEncoder, BytesEncoder, ColumnEncoder, DateEncoder, DecimalEncoder, Float32Encoder,
    Float64Encoder, Int16Encoder, Int32Encoder, Int64Encoder, ListEncoder, TimeEncoder,
    TimestampEncoder, TimestamptzEncoder, Utf8Encoder, UuidBytesEncoder, ValueError,
};

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], ValueError> {
    bytes
        .try_into()
        .map_err(|_| ValueError::Wire(format!("expected {N} bytes, got {}", bytes.len())))
}

fn utf8(bytes: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes).map_err(|e| ValueError::Wire(format!("invalid UTF-8: {e}")))
}

/// A column's value on the wire, written into its encoder.
pub trait WireEncode: ColumnEncoder {
    fn push_wire(&mut self, bytes: &[u8]) -> Result<(), ValueError>;
}

macro_rules! wire_primitive {
    ($($encoder:ty => |$b:ident| $convert:expr),* $(,)?) => {$(
        impl WireEncode for $encoder {
            #[inline]
            fn push_wire(&mut self, $b: &[u8]) -> Result<(), ValueError> {
                let value = $convert;
                self.0.append_value(value);
                Ok(())
            }
        }
    )*};
}

wire_primitive!(
    Int16Encoder => |b| i16::from_be_bytes(fixed(b)?),
    Int32Encoder => |b| i32::from_be_bytes(fixed(b)?),
    Int64Encoder => |b| i64::from_be_bytes(fixed(b)?),
    Float32Encoder => |b| f32::from_be_bytes(fixed(b)?),
    Float64Encoder => |b| f64::from_be_bytes(fixed(b)?),
    BoolEncoder => |b| fixed::<1>(b)?[0] != 0,
    TimeEncoder => |b| i64::from_be_bytes(fixed(b)?),
    DateEncoder => |b| date_days(b)?,
    TimestampEncoder => |b| timestamp_micros(b)?,
    TimestamptzEncoder => |b| timestamp_micros(b)?,
    BytesEncoder => |b| b,
);

impl WireEncode for UuidBytesEncoder {
    #[inline]
    fn push_wire(&mut self, bytes: &[u8]) -> Result<(), ValueError> {
        self.0
            .append_value(fixed::<16>(bytes)?)
            .map_err(|e| ValueError::Wire(e.to_string()))
    }
}

/// Days since 1970-01-01, or the `±infinity` error.
pub fn date_days(bytes: &[u8]) -> Result<i32, ValueError> {
    match i32::from_be_bytes(fixed(bytes)?) {
        i32::MAX => Err(ValueError::Infinite("infinity")),
        i32::MIN => Err(ValueError::Infinite("-infinity")),
        days => days
            .checked_add(EPOCH_DAYS)
            .ok_or_else(|| ValueError::Wire(format!("date {days} out of range"))),
    }
}

/// Microseconds since 1970-01-01, or the `±infinity` error.
pub fn timestamp_micros(bytes: &[u8]) -> Result<i64, ValueError> {
    match i64::from_be_bytes(fixed(bytes)?) {
        i64::MAX => Err(ValueError::Infinite("infinity")),
        i64::MIN => Err(ValueError::Infinite("-infinity")),
        micros => micros
            .checked_add(EPOCH_MICROS)
            .ok_or_else(|| ValueError::Wire(format!("timestamp {micros} out of range"))),
    }
}

/// The SQL type of a column as selected, which decides how its bytes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Bool,
    /// text and everything cast to `::text`
    Text,
    Uuid,
    Date,
    Timestamp,
    Timestamptz,
    Time,
    Json,
    Jsonb,
    Bytea,
}

impl Utf8Encoder {
    /// Appends a value of wire type `wire` as text.
    pub fn push_wire_as(&mut self, wire: WireType, bytes: &[u8]) -> Result<(), ValueError> {
        match wire {
            WireType::Jsonb => {
                // jsonb's binary form is a version byte (1) followed by the JSON text.
                match bytes.split_first() {
                    Some((1, text)) => self.append_str(utf8(text)?),
                    _ => return Err(ValueError::Wire("unknown jsonb version".into())),
                }
            }
            WireType::Text | WireType::Json => self.append_str(utf8(bytes)?),
            WireType::Uuid => {
                let raw = fixed::<16>(bytes)?;
                let mut buf = uuid::Uuid::encode_buffer();
                self.append_str(
                    uuid::Uuid::from_bytes(raw)
                        .hyphenated()
                        .encode_lower(&mut buf),
                );
            }
            WireType::Numeric => {
                let mut text = String::new();
                Numeric::read(bytes)?.write_text(&mut text);
                self.append_str(&text);
            }
            other => {
                return Err(ValueError::Wire(format!(
                    "a {other:?} value cannot be written as text"
                )));
            }
        }
        Ok(())
    }

    /// Appends a one-dimensional array as the JSON PostgreSQL's `to_json` would write.
    pub fn push_wire_json_array(
        &mut self,
        element: WireType,
        bytes: &[u8],
    ) -> Result<(), ValueError> {
        let mut out = String::with_capacity(bytes.len() + 2);
        out.push('[');
        for (i, value) in ArrayReader::new(bytes)?.enumerate() {
            if i > 0 {
                out.push(',');
            }
            match value? {
                None => out.push_str("null"),
                Some(value) => write_json_element(&mut out, element, value)?,
            }
        }
        out.push(']');
        self.append_str(&out);
        Ok(())
    }
}

impl DecimalEncoder {
    /// Appends a numeric from its wire digits, exactly or not at all.
    pub fn push_wire_numeric(&mut self, bytes: &[u8]) -> Result<(), ValueError> {
        let numeric = Numeric::read(bytes)?;
        let unscaled = numeric.unscaled(self.scale()).and_then(|v| {
            if v.unsigned_abs() < self.limit() {
                Ok(v)
            } else {
                Err(NumericError::Overflow)
            }
        });
        match unscaled {
            Ok(v) => {
                self.append_unscaled(v);
                Ok(())
            }
            Err(e) => {
                let mut value = String::new();
                numeric.write_text(&mut value);
                Err(match e {
                    NumericError::NotANumber => ValueError::NotANumber { value },
                    NumericError::Scale => ValueError::DecimalScale {
                        value,
                        scale: self.scale(),
                    },
                    NumericError::Overflow => ValueError::DecimalOverflow {
                        value,
                        precision: self.precision(),
                        scale: self.scale(),
                    },
                })
            }
        }
    }
}

impl<E: ColumnEncoder> ListEncoder<E> {
    /// Appends a one-dimensional array as a LIST, each element written by `push`.
    pub fn push_wire_list(
        &mut self,
        bytes: &[u8],
        push: impl Fn(&mut E, &[u8]) -> Result<(), ValueError>,
    ) -> Result<(), ValueError> {
        let mut len = 0usize;
        for value in ArrayReader::new(bytes)? {
            match value? {
                Some(value) => push(self.element_mut(), value)?,
                None => self.element_mut().push_null(),
            }
            len += 1;
        }
        self.close_list(len);
        Ok(())
    }
}

/// The elements of a one-dimensional array in PostgreSQL's binary format.
pub struct ArrayReader<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> ArrayReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, ValueError> {
        let header = |at: usize| -> Result<i32, ValueError> {
            bytes
                .get(at..at + 4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| ValueError::Wire("truncated array".into()))
        };
        let ndim = header(0)?;
        match ndim {
            0 => Ok(Self {
                rest: &[],
                remaining: 0,
            }),
            1 => {
                let len = usize::try_from(header(12)?)
                    .map_err(|_| ValueError::Wire("negative array length".into()))?;
                Ok(Self {
                    rest: &bytes[20.min(bytes.len())..],
                    remaining: len,
                })
            }
            n => Err(ValueError::Wire(format!(
                "a {n}-dimensional array; only one-dimensional arrays are exported"
            ))),
        }
    }
}

impl<'a> Iterator for ArrayReader<'a> {
    type Item = Result<Option<&'a [u8]>, ValueError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(take_field(&mut self.rest))
    }
}

/// Reads one length-prefixed field (`-1` is NULL) off the front of `rest`.
#[inline]
pub fn take_field<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ValueError> {
    let truncated = || ValueError::Wire("truncated value".into());
    let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let len = i32::from_be_bytes(*len);
    if len < 0 {
        *rest = tail;
        return Ok(None);
    }
    let len = len as usize;
    if tail.len() < len {
        return Err(truncated());
    }
    let (value, tail) = tail.split_at(len);
    *rest = tail;
    Ok(Some(value))
}

fn write_json_element(out: &mut String, element: WireType, bytes: &[u8]) -> Result<(), ValueError> {
    match element {
        WireType::Int2 => {
            let _ = write!(out, "{}", i16::from_be_bytes(fixed(bytes)?));
        }
        WireType::Int4 => {
            let _ = write!(out, "{}", i32::from_be_bytes(fixed(bytes)?));
        }
        WireType::Int8 => {
            let _ = write!(out, "{}", i64::from_be_bytes(fixed(bytes)?));
        }
        WireType::Float4 => {
            let v = f32::from_be_bytes(fixed(bytes)?);
            json_float(out, f64::from(v), || format!("{v:?}"));
        }
        WireType::Float8 => {
            let v = f64::from_be_bytes(fixed(bytes)?);
            json_float(out, v, || format!("{v:?}"));
        }
        WireType::Numeric => {
            let numeric = Numeric::read(bytes)?;
            if numeric.is_special() {
                out.push('"');
                numeric.write_text(out);
                out.push('"');
            } else {
                numeric.write_text(out);
            }
        }
        WireType::Bool => out.push_str(if fixed::<1>(bytes)?[0] != 0 {
            "true"
        } else {
            "false"
        }),
        WireType::Text => json_string(out, utf8(bytes)?),
        WireType::Uuid => {
            let _ = write!(
                out,
                "\"{}\"",
                uuid::Uuid::from_bytes(fixed(bytes)?).hyphenated()
            );
        }
        WireType::Date => {
            let days = date_days(bytes)?;
            let date = chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
                .ok_or_else(|| ValueError::Wire("date out of range".into()))?;
            let _ = write!(out, "\"{}\"", date.format("%Y-%m-%d"));
        }
        WireType::Timestamp | WireType::Timestamptz => {
            let micros = timestamp_micros(bytes)?;
            let t = chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| ValueError::Wire("timestamp out of range".into()))?;
            let _ = write!(out, "\"{}", t.format("%Y-%m-%dT%H:%M:%S"));
            write_fraction(out, micros.rem_euclid(1_000_000));
            if element == WireType::Timestamptz {
                out.push_str("+00:00");
            }
            out.push('"');
        }
        WireType::Time => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            let secs = micros / 1_000_000;
            let _ = write!(
                out,
                "\"{:02}:{:02}:{:02}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            write_fraction(out, micros % 1_000_000);
            out.push('"');
        }
        WireType::Json => out.push_str(utf8(bytes)?),
        WireType::Jsonb => match bytes.split_first() {
            Some((1, text)) => out.push_str(utf8(text)?),
            _ => return Err(ValueError::Wire("unknown jsonb version".into())),
        },
        WireType::Bytea => {
            out.push_str("\"\\\\x");
            for byte in bytes {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('"');
        }
    }
    Ok(())
}

/// `.5`, `.000001`: PostgreSQL's fraction, without trailing zeros.
fn write_fraction(out: &mut String, micros: i64) {
    if micros != 0 {
        let text = format!(".{micros:06}");
        out.push_str(text.trim_end_matches('0'));
    }
}

fn json_float(out: &mut String, v: f64, shortest: impl FnOnce() -> String) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        out.push_str(&shortest());
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A numeric as PostgreSQL sends it: base-10000 digits, a weight, a sign and a display scale.
pub struct Numeric<'a> {
    digits: &'a [u8],
    weight: i16,
    sign: u16,
    dscale: u16,
}

enum NumericError {
    NotANumber,
    Scale,
    Overflow,
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

impl<'a> Numeric<'a> {
    pub fn read(bytes: &'a [u8]) -> Result<Self, ValueError> {
        let short = || ValueError::Wire("truncated numeric".into());
        let header = bytes.get(..8).ok_or_else(short)?;
        let ndigits = u16::from_be_bytes([header[0], header[1]]) as usize;
        let digits = bytes.get(8..8 + 2 * ndigits).ok_or_else(short)?;
        Ok(Numeric {
            digits,
            weight: i16::from_be_bytes([header[2], header[3]]),
            sign: u16::from_be_bytes([header[4], header[5]]),
            dscale: u16::from_be_bytes([header[6], header[7]]),
        })
    }

    fn is_special(&self) -> bool {
        matches!(self.sign, NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF)
    }

    fn digit(&self, i: usize) -> i128 {
        i128::from(i16::from_be_bytes([
            self.digits[2 * i],
            self.digits[2 * i + 1],
        ]))
    }

    fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    /// The value times 10^scale, if that is an integer that fits an i128.
    fn unscaled(&self, scale: i8) -> Result<i128, NumericError> {
        if self.is_special() {
            return Err(if self.sign == NUMERIC_NAN {
                NumericError::NotANumber
            } else {
                NumericError::Overflow
            });
        }
        // The digits d_0..d_n are the number D * 10^exponent, D their concatenation; bring it
        // to `scale` while dropping only zeros, and never hold more digits than the result.
        let overflow = || NumericError::Overflow;
        let mut exponent =
            4 * (i32::from(self.weight) - self.ndigits() as i32 + 1) + i32::from(scale);
        let mut end = self.ndigits();
        while exponent <= -4 && end > 0 {
            if self.digit(end - 1) != 0 {
                return Err(NumericError::Scale);
            }
            end -= 1;
            exponent += 4;
        }
        let mut value: i128 = 0;
        if end > 0 {
            for i in 0..end - 1 {
                value = value
                    .checked_mul(10_000)
                    .and_then(|v| v.checked_add(self.digit(i)))
                    .ok_or_else(overflow)?;
            }
            let last = self.digit(end - 1);
            if exponent < 0 {
                let drop = 10i128.pow(exponent.unsigned_abs());
                if last % drop != 0 {
                    return Err(NumericError::Scale);
                }
                value = value
                    .checked_mul(10_000 / drop)
                    .and_then(|v| v.checked_add(last / drop))
                    .ok_or_else(overflow)?;
                exponent = 0;
            } else {
                value = value
                    .checked_mul(10_000)
                    .and_then(|v| v.checked_add(last))
                    .ok_or_else(overflow)?;
            }
            let factor = 10i128
                .checked_pow(exponent.unsigned_abs())
                .ok_or_else(overflow)?;
            value = value.checked_mul(factor).ok_or_else(overflow)?;
        }
        Ok(if self.sign == NUMERIC_NEG {
            -value
        } else {
            value
        })
    }

    /// The exact decimal text PostgreSQL prints for it (`-12.50`, `NaN`, `Infinity`).
    pub fn write_text(&self, out: &mut String) {
        match self.sign {
            NUMERIC_NAN => return out.push_str("NaN"),
            NUMERIC_PINF => return out.push_str("Infinity"),
            NUMERIC_NINF => return out.push_str("-Infinity"),
            _ => {}
        }
        if self.sign == NUMERIC_NEG {
            out.push('-');
        }
        let weight = i32::from(self.weight);
        // Integer part: base-10000 digits 0..=weight.
        if weight < 0 {
            out.push('0');
        } else {
            for i in 0..=weight {
                let d = if (i as usize) < self.ndigits() {
                    self.digit(i as usize)
                } else {
                    0
                };
                if i == 0 {
                    let _ = write!(out, "{d}");
                } else {
                    let _ = write!(out, "{d:04}");
                }
            }
        }
        if self.dscale > 0 {
            out.push('.');
            let mut written = 0;
            let mut i = weight + 1;
            while written < i32::from(self.dscale) {
                let d = if i >= 0 && (i as usize) < self.ndigits() {
                    self.digit(i as usize)
                } else {
                    0
                };
                let group = format!("{d:04}");
                for c in group.chars() {
                    if written < i32::from(self.dscale) {
                        out.push(c);
                        written += 1;
                    }
                }
                i += 1;
            }
        }
    }
}

/// The fields of one COPY tuple after its field count, checked against the expected count.
#[inline]
pub fn tuple_fields(tuple: &[u8], expected: usize) -> Result<&[u8], ValueError> {
    let (count, rest) = tuple
        .split_first_chunk::<2>()
        .ok_or_else(|| ValueError::Wire("empty tuple".into()))?;
    let count = i16::from_be_bytes(*count);
    if count as usize != expected {
        return Err(ValueError::Wire(format!(
            "a row of {count} fields where the SELECT list has {expected}"
        )));
    }
    Ok(rest)
}

/// The primary key of a COPY tuple, rendered for messages (`id=42`).
pub fn render_key(info: &crate::model::TableInfo, tuple: &[u8]) -> Option<String> {
    let mut rest = tuple.get(2..)?;
    let mut values = Vec::with_capacity(info.columns.len());
    for _ in info.columns {
        values.push(take_field(&mut rest).ok()?);
    }
    let parts: Vec<String> = info
        .key_indexes()
        .map(|i| {
            let column = &info.columns[i];
            let value = match values[i] {
                None => "NULL".to_string(),
                Some(bytes) => render_value(column.wire, bytes),
            };
            format!("{}={value}", column.name)
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn render_value(wire: WireType, bytes: &[u8]) -> String {
    let mut out = String::new();
    match wire {
        WireType::Text => {
            let _ = write!(out, "{:?}", String::from_utf8_lossy(bytes));
        }
        _ => {
            if write_json_element(&mut out, wire, bytes).is_err() {
                out = format!(
                    "0x{}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
            }
        }
    }
    out
}

/// A model field read from its wire bytes (tasks stream their source as models).
#[diagnostic::on_unimplemented(
    message = "a model field cannot have type `{Self}`",
    label = "not a type of the mapping table"
)]
pub trait FromWire: Sized {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError>;
}

macro_rules! from_wire_be {
    ($($ty:ty),*) => {$(
        impl FromWire for $ty {
            #[inline]
            fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
                Ok(<$ty>::from_be_bytes(fixed(bytes)?))
            }
        }
    )*};
}
from_wire_be!(i16, i32, i64, f32, f64);

impl FromWire for bool {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        Ok(fixed::<1>(bytes)?[0] != 0)
    }
}

impl FromWire for String {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        utf8(bytes).map(str::to_string)
    }
}

impl FromWire for Vec<u8> {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        Ok(bytes.to_vec())
    }
}

impl FromWire for uuid::Uuid {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        Ok(uuid::Uuid::from_bytes(fixed(bytes)?))
    }
}

impl FromWire for chrono::NaiveDate {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let days = date_days(bytes)?;
        chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
            .map(|t| t.date_naive())
            .ok_or_else(|| ValueError::Wire(format!("date {days} out of chrono's range")))
    }
}

impl FromWire for chrono::NaiveDateTime {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        chrono::DateTime::<chrono::Utc>::from_wire(bytes).map(|t| t.naive_utc())
    }
}

impl FromWire for chrono::DateTime<chrono::Utc> {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let micros = timestamp_micros(bytes)?;
        chrono::DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| ValueError::Wire(format!("timestamp {micros} out of chrono's range")))
    }
}

impl FromWire for chrono::NaiveTime {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let micros = i64::from_be_bytes(fixed(bytes)?);
        let secs = u32::try_from(micros.div_euclid(1_000_000))
            .map_err(|_| ValueError::Wire(format!("time {micros} out of range")))?;
        let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
        chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
            .ok_or_else(|| ValueError::Wire(format!("time {micros} out of range")))
    }
}

impl FromWire for bigdecimal::BigDecimal {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let numeric = Numeric::read(bytes)?;
        if numeric.is_special() {
            let mut value = String::new();
            numeric.write_text(&mut value);
            return Err(ValueError::NotANumber { value });
        }
        let mut text = String::new();
        numeric.write_text(&mut text);
        text.parse()
            .map_err(|e| ValueError::Wire(format!("numeric {text}: {e}")))
    }
}

impl FromWire for serde_json::Value {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        // json is its text; jsonb is a version byte (1) and its text.
        let text = match bytes.split_first() {
            Some((1, rest)) => rest,
            _ => bytes,
        };
        serde_json::from_slice(text).map_err(|e| ValueError::Json(e.to_string()))
    }
}

impl<T: FromWire> FromWire for Vec<Option<T>> {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        ArrayReader::new(bytes)?
            .map(|value| value?.map(T::from_wire).transpose())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((digits.len() as u16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend(sign.to_be_bytes());
        out.extend(dscale.to_be_bytes());
        for d in digits {
            out.extend(d.to_be_bytes());
        }
        out
    }

    fn text(bytes: &[u8]) -> String {
        let mut s = String::new();
        Numeric::read(bytes).unwrap().write_text(&mut s);
        s
    }

    #[test]
    fn numerics_read_exactly() {
        // 123456.78 = [12, 3456, 7800], weight 1, dscale 2
        let v = numeric(1, 0, 2, &[12, 3456, 7800]);
        assert_eq!(text(&v), "123456.78");
        let n = Numeric::read(&v).unwrap();
        assert!(matches!(n.unscaled(2), Ok(12_345_678)));
        assert!(matches!(n.unscaled(4), Ok(1_234_567_800)));
        assert!(matches!(n.unscaled(1), Err(NumericError::Scale)));
        // 28 integer digits and 10 decimals: 40 wire digits, 38 significant.
        let v = numeric(
            6,
            0,
            10,
            &[1234, 5678, 9012, 3456, 7890, 1234, 5678, 123, 4567, 8900],
        );
        assert!(matches!(
            Numeric::read(&v).unwrap().unscaled(10),
            Ok(12_345_678_901_234_567_890_123_456_780_123_456_789)
        ));
        assert!(matches!(
            Numeric::read(&v).unwrap().unscaled(9),
            Err(NumericError::Scale)
        ));
        // -0.0001 = [1], weight -1, dscale 4
        let v = numeric(-1, NUMERIC_NEG, 4, &[1]);
        assert_eq!(text(&v), "-0.0001");
        assert!(matches!(Numeric::read(&v).unwrap().unscaled(4), Ok(-1)));
        // 1e20 = [1], weight 5, dscale 0
        let v = numeric(5, 0, 0, &[1]);
        assert_eq!(text(&v), "100000000000000000000");
        assert_eq!(text(&numeric(0, 0, 0, &[])), "0");
        assert_eq!(text(&numeric(0, 0, 2, &[])), "0.00");
        assert_eq!(text(&numeric(0, NUMERIC_NAN, 0, &[])), "NaN");
        assert_eq!(text(&numeric(0, 0, 3, &[1, 5000])), "1.500");
    }
}
