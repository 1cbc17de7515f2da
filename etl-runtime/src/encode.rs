//! Writing model values into Arrow arrays, one encoder per column, exactly as the type mapping
//! says (see the README). A value the target cannot hold exactly is a [`ValueError`], never a
//! rounded, truncated or NULL value.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, Field, TimeUnit};
use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::BigInt;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use uuid::Uuid;

/// A value that has no exact representation in its Parquet column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    DecimalOverflow {
        value: String,
        precision: u8,
        scale: i8,
    },
    DecimalScale {
        value: String,
        scale: i8,
    },
    Json(String),
    /// `NaN` into a DECIMAL.
    NotANumber {
        value: String,
    },
    /// `infinity` or `-infinity` in a date or timestamp column.
    Infinite(&'static str),
    /// Bytes that are not what PostgreSQL's binary format promises.
    Wire(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::DecimalOverflow {
                value,
                precision,
                scale,
            } => write!(
                f,
                "value {value} does not fit DECIMAL({precision},{scale}): more than {} integer digits",
                i16::from(*precision) - i16::from(*scale)
            ),
            ValueError::DecimalScale { value, scale } => write!(
                f,
                "value {value} has more than {scale} decimal places and would be rounded; widen the model's numeric scale"
            ),
            ValueError::Json(e) => write!(f, "cannot render the value as JSON: {e}"),
            ValueError::NotANumber { value } => write!(
                f,
                "value {value} has no DECIMAL representation; opt into `numeric = \"string\"` to export it as text"
            ),
            ValueError::Infinite(value) => write!(
                f,
                "value `{value}` has no Parquet representation; opt into `#[etl(infinity = \"null\")]` to write it as NULL"
            ),
            ValueError::Wire(e) => write!(f, "unexpected bytes from PostgreSQL: {e}"),
        }
    }
}

impl std::error::Error for ValueError {}

/// One Parquet column under construction.
pub trait ColumnEncoder: Send {
    /// The Arrow field of this column.
    fn field(&self, name: &str, nullable: bool) -> Field;
    fn push_null(&mut self);
    fn finish(&mut self) -> ArrayRef;
}

/// A column encoder that accepts values of type `T`.
#[diagnostic::on_unimplemented(
    message = "a field of type `{T}` cannot be written by `{Self}`",
    label = "this field's Rust type does not match its SQL type",
    note = "the README's type mapping lists the Rust type of each SQL type"
)]
pub trait Encode<T: ?Sized>: ColumnEncoder {
    fn push(&mut self, value: &T) -> Result<(), ValueError>;
}

macro_rules! primitive_encoder {
    ($(#[$doc:meta])* $name:ident, $builder:ty, $rust:ty, $data_type:expr, |$v:ident| $convert:expr) => {
        $(#[$doc])*
        pub struct $name(pub $builder);

        impl $name {
            pub fn new(capacity: usize) -> Self {
                Self(<$builder>::with_capacity(capacity))
            }
        }

        impl ColumnEncoder for $name {
            fn field(&self, name: &str, nullable: bool) -> Field {
                Field::new(name, $data_type, nullable)
            }
            fn push_null(&mut self) {
                self.0.append_null();
            }
            fn finish(&mut self) -> ArrayRef {
                Arc::new(self.0.finish())
            }
        }

        impl Encode<$rust> for $name {
            #[inline]
            fn push(&mut self, $v: &$rust) -> Result<(), ValueError> {
                self.0.append_value($convert);
                Ok(())
            }
        }
    };
}

primitive_encoder!(
    /// smallint -> INT32 / INT(16)
    Int16Encoder, Int16Builder, i16, DataType::Int16, |v| *v);
primitive_encoder!(
    /// integer -> INT32
    Int32Encoder, Int32Builder, i32, DataType::Int32, |v| *v);
primitive_encoder!(
    /// bigint -> INT64
    Int64Encoder, Int64Builder, i64, DataType::Int64, |v| *v);
primitive_encoder!(
    /// real -> FLOAT; NaN and ±Infinity are kept
    Float32Encoder, Float32Builder, f32, DataType::Float32, |v| *v);
primitive_encoder!(
    /// double precision -> DOUBLE; NaN, ±Infinity and -0.0 are kept
    Float64Encoder, Float64Builder, f64, DataType::Float64, |v| *v);
primitive_encoder!(
    /// boolean -> BOOLEAN
    BoolEncoder, BooleanBuilder, bool, DataType::Boolean, |v| *v);
primitive_encoder!(
    /// date -> INT32 / DATE
    DateEncoder, Date32Builder, NaiveDate, DataType::Date32, |v| days_since_unix_epoch(*v));
primitive_encoder!(
    /// time -> INT64 / TIME(MICROS)
    TimeEncoder, Time64MicrosecondBuilder, NaiveTime, DataType::Time64(TimeUnit::Microsecond),
    |v| i64::from(v.num_seconds_from_midnight()) * 1_000_000 + i64::from(v.nanosecond() / 1_000));
primitive_encoder!(
    /// timestamp -> INT64 / TIMESTAMP(MICROS, isAdjustedToUTC=false)
    TimestampEncoder, TimestampMicrosecondBuilder, NaiveDateTime,
    DataType::Timestamp(TimeUnit::Microsecond, None), |v| v.and_utc().timestamp_micros());

fn days_since_unix_epoch(date: NaiveDate) -> i32 {
    // NaiveDate's range (±262143 years) in days fits an i32.
    (date - NaiveDate::default()).num_days() as i32
}

/// bytea -> BYTE_ARRAY
pub struct BytesEncoder(pub BinaryBuilder);

impl BytesEncoder {
    pub fn new(capacity: usize) -> Self {
        Self(BinaryBuilder::with_capacity(capacity, capacity * 32))
    }
}

impl ColumnEncoder for BytesEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(name, DataType::Binary, nullable)
    }
    fn push_null(&mut self) {
        self.0.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}

impl Encode<Vec<u8>> for BytesEncoder {
    #[inline]
    fn push(&mut self, v: &Vec<u8>) -> Result<(), ValueError> {
        self.0.append_value(v);
        Ok(())
    }
}

/// timestamptz -> INT64 / TIMESTAMP(MICROS, isAdjustedToUTC=true)
pub struct TimestamptzEncoder(pub TimestampMicrosecondBuilder);

impl TimestamptzEncoder {
    pub fn new(capacity: usize) -> Self {
        Self(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"))
    }
}

impl ColumnEncoder for TimestamptzEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            nullable,
        )
    }
    fn push_null(&mut self) {
        self.0.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}

impl Encode<DateTime<Utc>> for TimestamptzEncoder {
    #[inline]
    fn push(&mut self, v: &DateTime<Utc>) -> Result<(), ValueError> {
        self.0.append_value(v.timestamp_micros());
        Ok(())
    }
}

/// Text columns (text, varchar, char(n), enums, interval, everything cast to `::text`), uuid as
/// canonical text, and json/jsonb as JSON text.
pub struct Utf8Encoder {
    builder: StringBuilder,
    json: bool,
}

impl Utf8Encoder {
    /// A plain UTF8 / STRING column.
    pub fn new(capacity: usize) -> Self {
        Self {
            builder: StringBuilder::with_capacity(capacity, capacity * 16),
            json: false,
        }
    }

    /// A column whose text is JSON, annotated as Parquet's JSON logical type.
    pub fn json(capacity: usize) -> Self {
        Self {
            builder: StringBuilder::with_capacity(capacity, capacity * 32),
            json: true,
        }
    }
}

impl Utf8Encoder {
    #[inline]
    pub(crate) fn append_str(&mut self, value: &str) {
        self.builder.append_value(value);
    }
}

impl ColumnEncoder for Utf8Encoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, DataType::Utf8, nullable);
        if self.json {
            field.with_extension_type(arrow_schema::extension::Json::default())
        } else {
            field
        }
    }
    fn push_null(&mut self) {
        self.builder.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

impl Encode<String> for Utf8Encoder {
    #[inline]
    fn push(&mut self, v: &String) -> Result<(), ValueError> {
        self.builder.append_value(v);
        Ok(())
    }
}

impl Encode<Uuid> for Utf8Encoder {
    #[inline]
    fn push(&mut self, v: &Uuid) -> Result<(), ValueError> {
        let mut buf = Uuid::encode_buffer();
        self.builder
            .append_value(v.hyphenated().encode_lower(&mut buf));
        Ok(())
    }
}

impl Encode<serde_json::Value> for Utf8Encoder {
    fn push(&mut self, v: &serde_json::Value) -> Result<(), ValueError> {
        let mut out = String::new();
        v.write_json(&mut out)?;
        self.builder.append_value(&out);
        Ok(())
    }
}

impl<T: JsonElement> Encode<Vec<Option<T>>> for Utf8Encoder {
    fn push(&mut self, v: &Vec<Option<T>>) -> Result<(), ValueError> {
        let mut out = String::with_capacity(2 + v.len() * 8);
        out.push('[');
        for (i, element) in v.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match element {
                Some(element) => element.write_json(&mut out)?,
                None => out.push_str("null"),
            }
        }
        out.push(']');
        self.builder.append_value(&out);
        Ok(())
    }
}

/// uuid opt-in -> FIXED_LEN_BYTE_ARRAY(16) / UUID
pub struct UuidBytesEncoder(pub FixedSizeBinaryBuilder);

impl UuidBytesEncoder {
    pub fn new(capacity: usize) -> Self {
        Self(FixedSizeBinaryBuilder::with_capacity(capacity, 16))
    }
}

impl ColumnEncoder for UuidBytesEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(name, DataType::FixedSizeBinary(16), nullable)
            .with_extension_type(arrow_schema::extension::Uuid)
    }
    fn push_null(&mut self) {
        self.0.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}

impl Encode<Uuid> for UuidBytesEncoder {
    #[inline]
    fn push(&mut self, v: &Uuid) -> Result<(), ValueError> {
        // A 16-byte value always fits a 16-byte column.
        self.0
            .append_value(v.as_bytes())
            .map_err(|e| ValueError::Json(e.to_string()))
    }
}

/// numeric(p,s) -> DECIMAL(p,s), exact.
pub struct DecimalEncoder {
    builder: Decimal128Builder,
    precision: u8,
    scale: i8,
    /// 10^precision: the first magnitude that does not fit.
    limit: i128,
}

impl DecimalEncoder {
    /// `precision` is at most 38 and `scale` at most `precision`; the derive checks both.
    pub fn new(capacity: usize, precision: u8, scale: i8) -> Self {
        let precision = precision.clamp(1, 38);
        let scale = scale.clamp(0, precision as i8);
        let builder = Decimal128Builder::with_capacity(capacity)
            .with_data_type(DataType::Decimal128(precision, scale));
        Self {
            builder,
            precision,
            scale,
            limit: 10i128.pow(u32::from(precision)),
        }
    }

    /// The unscaled value of `v` at this column's scale, if it is exactly representable.
    pub fn unscaled(&self, v: &BigDecimal) -> Result<i128, ValueError> {
        let (digits, exponent) = v.as_bigint_and_exponent();
        let scale = i64::from(self.scale);
        let digits = if exponent > scale {
            let divisor = pow10(exponent - scale);
            if &digits % &divisor != BigInt::default() {
                return Err(ValueError::DecimalScale {
                    value: v.normalized().to_plain_string(),
                    scale: self.scale,
                });
            }
            digits / divisor
        } else if exponent < scale {
            digits * pow10(scale - exponent)
        } else {
            digits
        };
        match i128::try_from(&digits) {
            Ok(unscaled) if unscaled.unsigned_abs() < self.limit.unsigned_abs() => Ok(unscaled),
            _ => Err(ValueError::DecimalOverflow {
                value: v.normalized().to_plain_string(),
                precision: self.precision,
                scale: self.scale,
            }),
        }
    }
}

impl DecimalEncoder {
    pub(crate) fn precision(&self) -> u8 {
        self.precision
    }

    pub(crate) fn scale(&self) -> i8 {
        self.scale
    }

    /// 10^precision: the first magnitude that does not fit.
    pub(crate) fn limit(&self) -> u128 {
        self.limit.unsigned_abs()
    }

    #[inline]
    pub(crate) fn append_unscaled(&mut self, unscaled: i128) {
        self.builder.append_value(unscaled);
    }
}

fn pow10(exponent: i64) -> BigInt {
    BigInt::from(10u8).pow(u32::try_from(exponent).unwrap_or(u32::MAX))
}

impl ColumnEncoder for DecimalEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(
            name,
            DataType::Decimal128(self.precision, self.scale),
            nullable,
        )
    }
    fn push_null(&mut self) {
        self.builder.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

impl Encode<BigDecimal> for DecimalEncoder {
    #[inline]
    fn push(&mut self, v: &BigDecimal) -> Result<(), ValueError> {
        let unscaled = self.unscaled(v)?;
        self.builder.append_value(unscaled);
        Ok(())
    }
}

/// Arrays opted into `array = "list"` -> a native Parquet LIST of the element's mapping.
pub struct ListEncoder<E> {
    element: E,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    element_nullable: bool,
}

impl<E: ColumnEncoder> ListEncoder<E> {
    pub fn new(capacity: usize, element: E) -> Self {
        let mut offsets = Vec::with_capacity(capacity + 1);
        offsets.push(0);
        Self {
            element,
            offsets,
            nulls: NullBufferBuilder::new(capacity),
            element_nullable: true,
        }
    }

    fn element_field(&self) -> Field {
        self.element.field("element", self.element_nullable)
    }

    pub(crate) fn element_mut(&mut self) -> &mut E {
        &mut self.element
    }

    /// Ends the current list after `len` elements were pushed into the element encoder.
    pub(crate) fn close_list(&mut self, len: usize) {
        let last = self.offsets.last().copied().unwrap_or(0);
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        self.offsets.push(last.saturating_add(len));
        self.nulls.append_non_null();
    }
}

impl<E: ColumnEncoder> ColumnEncoder for ListEncoder<E> {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(
            name,
            DataType::List(Arc::new(self.element_field())),
            nullable,
        )
    }
    fn push_null(&mut self) {
        let last = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(last);
        self.nulls.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        let field = Arc::new(self.element_field());
        let values = self.element.finish();
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let nulls = self.nulls.finish();
        Arc::new(ListArray::new(
            field,
            OffsetBuffer::new(offsets.into()),
            values,
            nulls,
        ))
    }
}

impl<T, E: Encode<T>> Encode<Vec<Option<T>>> for ListEncoder<E> {
    fn push(&mut self, v: &Vec<Option<T>>) -> Result<(), ValueError> {
        for element in v {
            match element {
                Some(element) => self.element.push(element)?,
                None => self.element.push_null(),
            }
        }
        self.close_list(v.len());
        Ok(())
    }
}

/// An array element or jsonb value, written as JSON the way PostgreSQL's `to_json` writes it:
/// numbers exact, non-finite floats as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`,
/// dates and timestamps as ISO 8601 strings, bytea as `"\\x0a1b"`.
pub trait JsonElement {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError>;
}

macro_rules! json_display {
    ($($ty:ty),*) => {$(
        impl JsonElement for $ty {
            fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
                let _ = write!(out, "{self}");
                Ok(())
            }
        }
    )*};
}
json_display!(i16, i32, i64, bool);

macro_rules! json_float {
    ($($ty:ty),*) => {$(
        impl JsonElement for $ty {
            fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
                if self.is_nan() {
                    out.push_str("\"NaN\"");
                } else if self.is_infinite() {
                    out.push_str(if *self > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
                } else {
                    // Debug prints the shortest text that reads back to the same float, and
                    // keeps -0.0.
                    let _ = write!(out, "{self:?}");
                }
                Ok(())
            }
        }
    )*};
}
json_float!(f32, f64);

impl JsonElement for BigDecimal {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        out.push_str(&self.to_plain_string());
        Ok(())
    }
}

fn json_string(out: &mut String, s: &str) -> Result<(), ValueError> {
    let quoted = serde_json::to_string(s).map_err(|e| ValueError::Json(e.to_string()))?;
    out.push_str(&quoted);
    Ok(())
}

impl JsonElement for String {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        json_string(out, self)
    }
}

impl JsonElement for Uuid {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        let _ = write!(out, "\"{}\"", self.hyphenated());
        Ok(())
    }
}

impl JsonElement for NaiveDate {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        let _ = write!(out, "\"{}\"", self.format("%Y-%m-%d"));
        Ok(())
    }
}

impl JsonElement for NaiveDateTime {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        let _ = write!(out, "\"{}\"", self.format("%Y-%m-%dT%H:%M:%S%.f"));
        Ok(())
    }
}

impl JsonElement for DateTime<Utc> {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        let _ = write!(out, "\"{}\"", self.format("%Y-%m-%dT%H:%M:%S%.f+00:00"));
        Ok(())
    }
}

impl JsonElement for NaiveTime {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        let _ = write!(out, "\"{}\"", self.format("%H:%M:%S%.f"));
        Ok(())
    }
}

impl JsonElement for Vec<u8> {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        out.push_str("\"\\\\x");
        for byte in self {
            let _ = write!(out, "{byte:02x}");
        }
        out.push('"');
        Ok(())
    }
}

impl JsonElement for serde_json::Value {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        // serde_json is built with `arbitrary_precision` and `preserve_order`: numbers keep
        // every digit PostgreSQL sent and objects keep jsonb's key order.
        let text = serde_json::to_string(self).map_err(|e| ValueError::Json(e.to_string()))?;
        out.push_str(&text);
        Ok(())
    }
}
