//! Values, one module per PostgreSQL type family. Each family module holds everything the
//! engine knows about its types: the binary wire read, the Arrow field and builder, the push
//! of a model value ([`Encode`]), the push of wire bytes ([`WireEncode`]), the read of a model
//! field from the wire ([`FromWire`]) and the JSON text ([`JsonElement`]), which also renders
//! keys in messages. Adding a type touches one family module and the type table (`etl-types`).
//!
//! Two paths write the same columns and must agree value for value (the `paths_agree` test
//! proves it for every mapped type): table exports push COPY bytes straight into the encoders
//! ([`WireEncode`]); tasks read models ([`FromWire`]) and push them ([`Encode`]). Where the two
//! meet in text (JSON arrays, jsonb, keys), both call the same writer of the family module.
//!
//! A value the target cannot hold exactly is a [`ValueError`], never a rounded, truncated or
//! NULL value.

mod array;
mod boolean;
mod bytea;
mod datetime;
mod float;
mod integer;
mod json;
mod numeric;
pub mod row;
mod text;
mod uuid;

use std::fmt;

use arrow_array::ArrayRef;
use arrow_schema::Field;

pub use self::array::{ArrayReader, ListEncoder};
pub use self::boolean::BoolEncoder;
pub use self::bytea::BytesEncoder;
pub use self::datetime::{
    DateEncoder, TimeEncoder, TimestampEncoder, TimestamptzEncoder, civil_from_days,
};
pub use self::float::{Float32Encoder, Float64Encoder};
pub use self::integer::{Int16Encoder, Int32Encoder, Int64Encoder};
pub use self::numeric::{DecimalEncoder, Numeric};
pub use self::text::Utf8Encoder;
pub use self::uuid::UuidBytesEncoder;
pub use etl_types::Scalar;

/// What a NULL in a column whose field is not an `Option` says, whichever path read it.
pub const UNEXPECTED_NULL: &str = "value is NULL but the field is not an Option (did the column become nullable? regenerate the model with `cargo xtask gen`)";

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

/// A column encoder that accepts model values of type `T`.
#[diagnostic::on_unimplemented(
    message = "a field of type `{T}` cannot be written by `{Self}`",
    label = "this field's Rust type does not match its SQL type",
    note = "the README's type mapping lists the Rust type of each SQL type"
)]
pub trait Encode<T: ?Sized>: ColumnEncoder {
    fn push(&mut self, value: &T) -> Result<(), ValueError>;
}

/// What a model field's value type is for a column written by encoder `E`: how it reads from
/// the wire and from a sqlx row, and how `E` writes it. Implemented for exactly the pairs of
/// the type table. Generated code reaches a field's value only through [`FieldOf::CODEC`], so a
/// field of the wrong type (hidden behind an alias, where the derive cannot see it) is one
/// error at that field, in these words.
#[diagnostic::on_unimplemented(
    message = "a field of type `{Self}` cannot hold this column's values",
    label = "the column is written by `{E}`, which takes another Rust type",
    note = "the README's type mapping lists the Rust type of each SQL type"
)]
pub trait FieldOf<E>: Sized {
    const CODEC: FieldCodec<Self, E>;
}

/// A field's reads and write, as [`FieldOf`] provides them.
pub struct FieldCodec<T, E> {
    pub decode: fn(&sqlx::postgres::PgRow, usize) -> Result<T, row::DecodeError>,
    pub from_wire: fn(&[u8]) -> Result<T, ValueError>,
    pub push: fn(&T, &mut E) -> Result<(), ValueError>,
}

macro_rules! field_of {
    ($($ty:ty => $encoder:ty),* $(,)?) => {$(
        impl FieldOf<$encoder> for $ty {
            const CODEC: FieldCodec<Self, $encoder> = FieldCodec {
                decode: <$ty as row::DecodeColumn>::decode,
                from_wire: <$ty as FromWire>::from_wire,
                push: |value, encoder| Encode::push(encoder, value),
            };
        }
    )*};
}

/// The scalars of the type table, and each as the element of an array written as JSON text.
macro_rules! field_of_scalars {
    ($($ty:ty => $encoder:ty),* $(,)?) => {
        field_of!($($ty => $encoder,)* $(Vec<Option<$ty>> => Utf8Encoder,)*);
    };
}

field_of_scalars!(
    i16 => Int16Encoder,
    i32 => Int32Encoder,
    i64 => Int64Encoder,
    f32 => Float32Encoder,
    f64 => Float64Encoder,
    bool => BoolEncoder,
    bigdecimal::BigDecimal => DecimalEncoder,
    String => Utf8Encoder,
    ::uuid::Uuid => Utf8Encoder,
    chrono::NaiveDate => DateEncoder,
    chrono::NaiveDateTime => TimestampEncoder,
    chrono::DateTime<chrono::Utc> => TimestamptzEncoder,
    chrono::NaiveTime => TimeEncoder,
    serde_json::Value => Utf8Encoder,
    Vec<u8> => BytesEncoder,
);
field_of!(::uuid::Uuid => UuidBytesEncoder);

/// Arrays as a native LIST: a list of whatever the element is.
impl<T, E> FieldOf<ListEncoder<E>> for Vec<Option<T>>
where
    T: FieldOf<E>,
    E: Encode<T>,
    Vec<Option<T>>: FromWire + row::DecodeColumn,
{
    const CODEC: FieldCodec<Self, ListEncoder<E>> = FieldCodec {
        decode: <Self as row::DecodeColumn>::decode,
        from_wire: <Self as FromWire>::from_wire,
        push: |value, encoder| Encode::push(encoder, value),
    };
}

/// A column's value on the wire, written into its encoder.
pub trait WireEncode: ColumnEncoder {
    fn push_wire(&mut self, bytes: &[u8]) -> Result<(), ValueError>;
}

/// A model field read from its wire bytes (tasks stream their source as models).
#[diagnostic::on_unimplemented(
    message = "a model field cannot have type `{Self}`",
    label = "not a type of the mapping table"
)]
pub trait FromWire: Sized {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError>;
}

/// A value written as JSON the way PostgreSQL's `to_json` writes it: numbers exact, non-finite
/// floats as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, dates and timestamps as ISO 8601
/// strings, bytea as `"\\x0a1b"`, jsonb as jsonb prints itself. Array elements and jsonb values
/// are written this way, from models and from the wire alike.
pub trait JsonElement {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError>;

    /// The value in a message about its row (`id=42`, `code="EUR"`): JSON, except that text is
    /// quoted the way Rust prints strings.
    fn write_key(&self, out: &mut String) {
        if self.write_json(out).is_err() {
            out.push('?');
        }
    }
}

impl<T: JsonElement> JsonElement for Option<T> {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        match self {
            Some(value) => value.write_json(out),
            None => {
                out.push_str("null");
                Ok(())
            }
        }
    }

    fn write_key(&self, out: &mut String) {
        match self {
            Some(value) => value.write_key(out),
            None => out.push_str("NULL"),
        }
    }
}

/// The JSON text of one value of wire type `wire`, as [`JsonElement`] writes the same value
/// read into its model type.
pub fn write_json_wire(out: &mut String, wire: Scalar, bytes: &[u8]) -> Result<(), ValueError> {
    match wire {
        Scalar::Int2 => i16::from_wire(bytes)?.write_json(out),
        Scalar::Int4 => i32::from_wire(bytes)?.write_json(out),
        Scalar::Int8 => i64::from_wire(bytes)?.write_json(out),
        Scalar::Float4 => f32::from_wire(bytes)?.write_json(out),
        Scalar::Float8 => f64::from_wire(bytes)?.write_json(out),
        Scalar::Numeric(_) => numeric::write_json_wire(out, bytes),
        Scalar::Bool => bool::from_wire(bytes)?.write_json(out),
        Scalar::Text | Scalar::Cast(_) => text::write_json_str(out, utf8(bytes)?),
        Scalar::Uuid => ::uuid::Uuid::from_wire(bytes)?.write_json(out),
        Scalar::Date => datetime::write_json_date(out, datetime::date_days(bytes)?),
        Scalar::Timestamp => {
            datetime::write_json_timestamp(out, datetime::timestamp_micros(bytes)?, false)
        }
        Scalar::Timestamptz => {
            datetime::write_json_timestamp(out, datetime::timestamp_micros(bytes)?, true)
        }
        Scalar::Time => datetime::write_json_time(out, i64::from_wire(bytes)?),
        Scalar::Json | Scalar::Jsonb => {
            out.push_str(json_text_from_wire(wire, bytes)?);
            Ok(())
        }
        Scalar::Bytea => {
            bytea::write_json_bytes(out, bytes);
            Ok(())
        }
    }
}

/// A value read off the wire, rendered for a message about its row: what [`JsonElement::write_key`]
/// writes for the same value in a model, or the raw bytes in hex if they do not read.
pub fn render_key_value(wire: Scalar, bytes: &[u8]) -> String {
    let mut out = String::new();
    let written = match wire {
        Scalar::Text | Scalar::Cast(_) => {
            utf8(bytes).map(|text| text::write_key_str(&mut out, text))
        }
        _ => write_json_wire(&mut out, wire, bytes),
    };
    if written.is_err() {
        out = format!(
            "0x{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }
    out
}

/// An Arrow column of `values` (wire bytes of type `wire`) of type `data_type`, written by the
/// same encoders as a table's export writes that column with: how deletions carry their keys.
/// None if no encoder writes `wire` as `data_type`.
pub fn wire_array(
    wire: Scalar,
    data_type: &arrow_schema::DataType,
    values: &[&[u8]],
) -> Option<Result<ArrayRef, ValueError>> {
    use arrow_schema::DataType as T;
    fn fill(mut encoder: impl WireEncode, values: &[&[u8]]) -> Result<ArrayRef, ValueError> {
        values.iter().try_for_each(|v| encoder.push_wire(v))?;
        Ok(encoder.finish())
    }
    let n = values.len();
    Some(match (wire, data_type) {
        (Scalar::Int2, T::Int16) => fill(Int16Encoder::new(n), values),
        (Scalar::Int4, T::Int32) => fill(Int32Encoder::new(n), values),
        (Scalar::Int8, T::Int64) => fill(Int64Encoder::new(n), values),
        (Scalar::Date, T::Date32) => fill(DateEncoder::new(n), values),
        (Scalar::Time, T::Time64(_)) => fill(TimeEncoder::new(n), values),
        (Scalar::Timestamp, T::Timestamp(_, None)) => fill(TimestampEncoder::new(n), values),
        (Scalar::Timestamptz, T::Timestamp(_, Some(_))) => fill(TimestamptzEncoder::new(n), values),
        (Scalar::Bool, T::Boolean) => fill(BoolEncoder::new(n), values),
        (Scalar::Bytea, T::Binary) => fill(BytesEncoder::new(n), values),
        (Scalar::Uuid, T::FixedSizeBinary(16)) => fill(UuidBytesEncoder::new(n), values),
        (_, T::Utf8) => {
            let mut encoder = Utf8Encoder::new(n);
            values
                .iter()
                .try_for_each(|v| encoder.push_wire_as(wire, v))
                .map(|()| encoder.finish())
        }
        _ => return None,
    })
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

/// Exactly `N` bytes, as a fixed-width binary value has.
#[inline]
fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], ValueError> {
    bytes
        .try_into()
        .map_err(|_| ValueError::Wire(format!("expected {N} bytes, got {}", bytes.len())))
}

/// Text checked as UTF-8: with SIMD where the CPU has it (text of 64 bytes and more is
/// checked several times faster than by `std`), by `std` again on failure for its message.
#[inline]
fn utf8(bytes: &[u8]) -> Result<&str, ValueError> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| {
        std::str::from_utf8(bytes).map_err(|e| ValueError::Wire(format!("invalid UTF-8: {e}")))
    })
}

/// The JSON text of a json (its bytes) or jsonb (a version byte, 1, then the text) value: the
/// one reading of jsonb's version byte, for the COPY path and for models alike.
fn json_text_from_wire(wire: Scalar, bytes: &[u8]) -> Result<&str, ValueError> {
    let text = match (wire, bytes.split_first()) {
        (Scalar::Jsonb, Some((1, text))) => text,
        (Scalar::Jsonb, Some((version, _))) => {
            return Err(ValueError::Wire(format!("unknown jsonb version {version}")));
        }
        (Scalar::Jsonb, None) => return Err(ValueError::Wire("empty jsonb value".into())),
        _ => bytes,
    };
    utf8(text)
}

/// An encoder over one Arrow primitive builder: its field, NULL and finish, and the model push
/// `|v| convert` for values of type `$rust`.
macro_rules! primitive_encoder {
    ($(#[$doc:meta])* $name:ident, $builder:ty, $rust:ty, $data_type:expr, |$v:ident| $convert:expr) => {
        $(#[$doc])*
        pub struct $name(pub(crate) $builder);

        impl $name {
            pub fn new(capacity: usize) -> Self {
                Self(<$builder>::with_capacity(capacity))
            }
        }

        impl $crate::codec::ColumnEncoder for $name {
            fn field(&self, name: &str, nullable: bool) -> ::arrow_schema::Field {
                ::arrow_schema::Field::new(name, $data_type, nullable)
            }
            fn push_null(&mut self) {
                self.0.append_null();
            }
            fn finish(&mut self) -> ::arrow_array::ArrayRef {
                ::std::sync::Arc::new(self.0.finish())
            }
        }

        impl $crate::codec::Encode<$rust> for $name {
            #[inline]
            fn push(&mut self, $v: &$rust) -> Result<(), $crate::codec::ValueError> {
                self.0.append_value($convert);
                Ok(())
            }
        }
    };
}
use primitive_encoder;

/// The wire push of a primitive encoder: the bytes read by `|b| convert`.
macro_rules! wire_primitive {
    ($encoder:ty => |$b:ident| $convert:expr) => {
        impl $crate::codec::WireEncode for $encoder {
            #[inline]
            fn push_wire(&mut self, $b: &[u8]) -> Result<(), $crate::codec::ValueError> {
                let value = $convert;
                self.0.append_value(value);
                Ok(())
            }
        }
    };
}
use wire_primitive;

/// Big-endian fixed-width values: the wire read of the integer and float families.
macro_rules! from_wire_be {
    ($($ty:ty),*) => {$(
        impl $crate::codec::FromWire for $ty {
            #[inline]
            fn from_wire(bytes: &[u8]) -> Result<Self, $crate::codec::ValueError> {
                Ok(<$ty>::from_be_bytes($crate::codec::fixed(bytes)?))
            }
        }
    )*};
}
use from_wire_be;

#[cfg(test)]
mod tests {
    use super::{ValueError, utf8};

    #[test]
    fn jsonb_version_bytes_read_the_same_on_the_copy_path_and_into_models() {
        use super::{FromWire, Scalar, write_json_wire};
        let mut text = String::new();
        write_json_wire(&mut text, Scalar::Jsonb, b"\x01{\"a\": 1}").expect("version 1");
        assert_eq!(text, r#"{"a": 1}"#);
        let value = serde_json::Value::from_wire(b"\x01{\"a\": 1}").expect("version 1");
        assert_eq!(value, serde_json::json!({"a": 1}));
        // json's text as it is, leading white space included.
        let value = serde_json::Value::from_wire(b"\n[1]").expect("json text");
        assert_eq!(value, serde_json::json!([1]));
        // A version this build does not know is the same error on both paths.
        let copy = write_json_wire(&mut text, Scalar::Jsonb, b"\x02{}").expect_err("version 2");
        let model = serde_json::Value::from_wire(b"\x02{}").expect_err("version 2");
        assert_eq!(copy.to_string(), model.to_string());
        assert!(
            copy.to_string().contains("unknown jsonb version 2"),
            "{copy}"
        );
    }

    /// Valid text passes whole, short or long (the SIMD check starts at 64 bytes), ASCII or
    /// not; invalid bytes are refused with `std`'s message (their position), wherever they are.
    #[test]
    fn text_is_checked_as_utf8_at_every_length() {
        for len in [0, 1, 20, 63, 64, 65, 200, 4096] {
            let text: String = "añ€😀x".chars().cycle().take(len).collect();
            assert_eq!(utf8(text.as_bytes()).ok(), Some(text.as_str()));
            let mut bytes = text.clone().into_bytes();
            for at in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
                if at >= bytes.len() {
                    continue;
                }
                let saved = bytes[at];
                bytes[at] = 0xFF;
                let expected = match std::str::from_utf8(&bytes) {
                    Err(e) => format!("invalid UTF-8: {e}"),
                    Ok(_) => panic!("length {len}, byte {at}: still valid"),
                };
                match utf8(&bytes) {
                    Err(ValueError::Wire(message)) => {
                        assert_eq!(message, expected, "length {len}, byte {at}")
                    }
                    other => panic!("length {len}, byte {at}: {other:?}"),
                }
                bytes[at] = saved;
            }
        }
    }
}
