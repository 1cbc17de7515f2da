//! Reading column values out of a PostgreSQL row into model fields.
//!
//! Most types go through sqlx's decoders. Dates and timestamps do not: PostgreSQL allows
//! `±infinity` and years beyond chrono's range, on which sqlx's chrono decoders panic. Those
//! are read from the binary wire format here and become typed errors (or NULL, when the model
//! opts into it).

use std::fmt;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use sqlx::postgres::{PgRow, PgValueFormat, PgValueRef};
use sqlx::{Row, ValueRef};
use uuid::Uuid;

/// Why a column value could not be read into its field.
#[derive(Debug)]
pub enum DecodeError {
    /// NULL in a column whose field is not an `Option`.
    UnexpectedNull,
    /// `infinity` or `-infinity` in a date or timestamp column.
    Infinite(&'static str),
    /// A value outside what the Rust type can represent.
    OutOfRange(String),
    /// sqlx refused the value (wrong type, NaN into BigDecimal, ...).
    Sqlx(sqlx::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedNull => f.write_str(
                "value is NULL but the field is not an Option (did the column become nullable? regenerate the model with `cargo xtask gen`)",
            ),
            DecodeError::Infinite(value) => write!(
                f,
                "value `{value}` has no Parquet representation; opt into `#[etl(infinity = \"null\")]` to write it as NULL"
            ),
            DecodeError::OutOfRange(msg) => f.write_str(msg),
            DecodeError::Sqlx(sqlx::Error::ColumnDecode { source, .. }) => {
                write!(f, "cannot decode the value: {source}")
            }
            DecodeError::Sqlx(e) => write!(f, "cannot decode the value: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<sqlx::Error> for DecodeError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { source, .. }
                if source.is::<sqlx::error::UnexpectedNullError>() =>
            {
                DecodeError::UnexpectedNull
            }
            e => DecodeError::Sqlx(e),
        }
    }
}

/// A Rust type a model field can have, read from one column of a row.
#[diagnostic::on_unimplemented(
    message = "a model field cannot have type `{Self}`",
    label = "not a type of the mapping table",
    note = "see the README's type mapping: i16, i32, i64, f32, f64, bool, String, BigDecimal, Uuid, NaiveDate, NaiveDateTime, DateTime<Utc>, NaiveTime, serde_json::Value, Vec<u8>, Vec<Option<T>>, each optionally in an Option"
)]
pub trait DecodeColumn: Sized {
    fn decode(row: &PgRow, index: usize) -> Result<Self, DecodeError>;
}

/// Decodes column `index` of `row` into `T`.
pub fn decode_at<T: DecodeColumn>(row: &PgRow, index: usize) -> Result<T, DecodeError> {
    T::decode(row, index)
}

/// Decodes the column named `name` (for sqlx's `FromRow`, which works by name).
pub fn decode_named<T: DecodeColumn>(row: &PgRow, name: &str) -> Result<T, sqlx::Error> {
    decode_named_with(row, name, T::decode)
}

/// [`decode_named`] with a decoder of the caller's choice.
pub fn decode_named_with<T>(
    row: &PgRow,
    name: &str,
    decode: fn(&PgRow, usize) -> Result<T, DecodeError>,
) -> Result<T, sqlx::Error> {
    use sqlx::Column;
    let index = row.try_column(name)?.ordinal();
    decode(row, index).map_err(|e| match e {
        DecodeError::Sqlx(e) => e,
        e => sqlx::Error::ColumnDecode {
            index: format!("{name:?}"),
            source: Box::new(e),
        },
    })
}

impl<T: DecodeColumn> DecodeColumn for Option<T> {
    fn decode(row: &PgRow, index: usize) -> Result<Self, DecodeError> {
        if row.try_get_raw(index)?.is_null() {
            Ok(None)
        } else {
            T::decode(row, index).map(Some)
        }
    }
}

/// Element types whose arrays sqlx decodes without panicking.
pub trait SqlxArrayElement {}

macro_rules! decode_with_sqlx {
    ($($ty:ty),* $(,)?) => {$(
        impl DecodeColumn for $ty {
            fn decode(row: &PgRow, index: usize) -> Result<Self, DecodeError> {
                Ok(row.try_get::<$ty, _>(index)?)
            }
        }
        impl SqlxArrayElement for $ty {}
    )*};
}

decode_with_sqlx!(
    i16,
    i32,
    i64,
    f32,
    f64,
    bool,
    String,
    BigDecimal,
    Uuid,
    NaiveTime,
    serde_json::Value,
    Vec<u8>,
);

impl<T> DecodeColumn for Vec<Option<T>>
where
    T: SqlxArrayElement + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::postgres::PgHasArrayType,
    T: sqlx::Type<sqlx::Postgres>,
{
    fn decode(row: &PgRow, index: usize) -> Result<Self, DecodeError> {
        Ok(row.try_get::<Vec<Option<T>>, _>(index)?)
    }
}

/// Days and microseconds on the wire count from PostgreSQL's epoch.
fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// A date or timestamp type read from PostgreSQL's binary format.
trait WireTime: Sized {
    const WIDTH: usize;
    fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError>;
}

fn wire_i64(bytes: &[u8]) -> Result<i64, DecodeError> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| DecodeError::OutOfRange(format!("expected 8 bytes, got {}", bytes.len())))?;
    Ok(i64::from_be_bytes(raw))
}

fn wire_i32(bytes: &[u8]) -> Result<i32, DecodeError> {
    let raw: [u8; 4] = bytes
        .try_into()
        .map_err(|_| DecodeError::OutOfRange(format!("expected 4 bytes, got {}", bytes.len())))?;
    Ok(i32::from_be_bytes(raw))
}

impl WireTime for NaiveDateTime {
    const WIDTH: usize = 8;
    fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError> {
        match wire_i64(bytes)? {
            i64::MAX => Err(DecodeError::Infinite("infinity")),
            i64::MIN => Err(DecodeError::Infinite("-infinity")),
            micros => pg_epoch()
                .checked_add_signed(TimeDelta::microseconds(micros))
                .ok_or_else(|| {
                    DecodeError::OutOfRange(format!(
                        "timestamp {micros} µs after 2000-01-01 is beyond the year 262143 that chrono can hold"
                    ))
                }),
        }
    }
}

impl WireTime for DateTime<Utc> {
    const WIDTH: usize = 8;
    fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError> {
        NaiveDateTime::from_wire(bytes).map(|t| t.and_utc())
    }
}

impl WireTime for NaiveDate {
    const WIDTH: usize = 4;
    fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError> {
        match wire_i32(bytes)? {
            i32::MAX => Err(DecodeError::Infinite("infinity")),
            i32::MIN => Err(DecodeError::Infinite("-infinity")),
            days => pg_epoch()
                .date()
                .checked_add_signed(TimeDelta::days(i64::from(days)))
                .ok_or_else(|| {
                    DecodeError::OutOfRange(format!(
                        "date {days} days after 2000-01-01 is beyond the year 262143 that chrono can hold"
                    ))
                }),
        }
    }
}

fn binary_bytes<'r>(value: &PgValueRef<'r>) -> Result<&'r [u8], DecodeError> {
    if value.format() != PgValueFormat::Binary {
        return Err(DecodeError::OutOfRange(
            "expected PostgreSQL's binary format for a date or timestamp".into(),
        ));
    }
    value
        .as_bytes()
        .map_err(|e| DecodeError::OutOfRange(e.to_string()))
}

macro_rules! decode_wire_time {
    ($($ty:ty => [$($pg:ident),+]),* $(,)?) => {$(
        impl DecodeColumn for $ty {
            fn decode(row: &PgRow, index: usize) -> Result<Self, DecodeError> {
                let value = row.try_get_raw(index)?;
                check_type(&value, &[$(stringify!($pg)),+])?;
                if value.is_null() {
                    return Err(DecodeError::UnexpectedNull);
                }
                <$ty as WireTime>::from_wire(binary_bytes(&value)?)
            }
        }

        impl DecodeColumn for Vec<Option<$ty>> {
            fn decode(row: &PgRow, index: usize) -> Result<Self, DecodeError> {
                let value = row.try_get_raw(index)?;
                if value.is_null() {
                    return Err(DecodeError::UnexpectedNull);
                }
                decode_wire_array::<$ty>(binary_bytes(&value)?)
            }
        }
    )*};
}

decode_wire_time!(
    NaiveDateTime => [TIMESTAMP],
    DateTime<Utc> => [TIMESTAMPTZ],
    NaiveDate => [DATE],
);

fn check_type(value: &PgValueRef<'_>, expected: &[&str]) -> Result<(), DecodeError> {
    use sqlx::TypeInfo;
    let ty = value.type_info();
    if expected.iter().any(|e| ty.name() == *e) {
        Ok(())
    } else {
        Err(DecodeError::OutOfRange(format!(
            "the column is {} but the field expects {}",
            ty.name(),
            expected.join(" or ")
        )))
    }
}

/// Reads PostgreSQL's binary array format (one dimension) of a fixed-width element type.
fn decode_wire_array<T: WireTime>(bytes: &[u8]) -> Result<Vec<Option<T>>, DecodeError> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        if rest.len() < n {
            return Err(DecodeError::OutOfRange("truncated array value".into()));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let ndim = wire_i32(take(4)?)?;
    let _has_nulls = take(4)?;
    let _element_oid = take(4)?;
    if ndim == 0 {
        return Ok(Vec::new());
    }
    if ndim != 1 {
        return Err(DecodeError::OutOfRange(format!(
            "a {ndim}-dimensional array; only one-dimensional arrays are exported"
        )));
    }
    let len = usize::try_from(wire_i32(take(4)?)?)
        .map_err(|_| DecodeError::OutOfRange("negative array length".into()))?;
    let _lower_bound = take(4)?;
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let element_len = wire_i32(take(4)?)?;
        if element_len < 0 {
            out.push(None);
        } else {
            out.push(Some(T::from_wire(take(T::WIDTH)?)?));
        }
    }
    Ok(out)
}

/// For fields that opt into `#[etl(infinity = "null")]`: `±infinity` becomes `None`.
pub fn decode_infinity_as_null<T: DecodeColumn>(
    row: &PgRow,
    index: usize,
) -> Result<Option<T>, DecodeError> {
    match Option::<T>::decode(row, index) {
        Err(DecodeError::Infinite(_)) => Ok(None),
        other => other,
    }
}
