//! Reading column values out of a sqlx row into model fields: the `FromRow` the derive
//! generates, for models used with sqlx directly. Exports and tasks read the COPY wire instead.
//!
//! Most types go through sqlx's decoders. Dates and timestamps do not: PostgreSQL allows
//! `±infinity` and years beyond chrono's range, on which sqlx's chrono decoders panic. Those
//! are read with the engine's own binary-format reader ([`FromWire`]) and become
//! typed errors (or NULL, when the model opts into it).

use std::fmt;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::postgres::{PgRow, PgValueFormat, PgValueRef};
use sqlx::{Row, ValueRef};
use uuid::Uuid;

use super::{FromWire, ValueError};

/// Why a column value could not be read into its field.
#[derive(Debug)]
pub enum DecodeError {
    /// NULL in a column whose field is not an `Option`.
    UnexpectedNull,
    /// A value the field's type cannot hold (`±infinity` dates, bytes out of range).
    Value(ValueError),
    /// The column's type or format is not the one the field reads.
    Type(String),
    /// sqlx refused the value (wrong type, NaN into BigDecimal, ...).
    Sqlx(sqlx::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedNull => f.write_str(super::UNEXPECTED_NULL),
            DecodeError::Value(e) => e.fmt(f),
            DecodeError::Type(msg) => f.write_str(msg),
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

/// Decodes the column named `name` with `decode` (for sqlx's `FromRow`, which works by name).
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

impl From<ValueError> for DecodeError {
    fn from(e: ValueError) -> Self {
        DecodeError::Value(e)
    }
}

fn binary_bytes<'r>(value: &PgValueRef<'r>) -> Result<&'r [u8], DecodeError> {
    if value.format() != PgValueFormat::Binary {
        return Err(DecodeError::Type(
            "expected PostgreSQL's binary format for a date or timestamp".into(),
        ));
    }
    value
        .as_bytes()
        .map_err(|e| DecodeError::Type(e.to_string()))
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
                Ok(<$ty as FromWire>::from_wire(binary_bytes(&value)?)?)
            }
        }

        impl DecodeColumn for Vec<Option<$ty>> {
            fn decode(row: &PgRow, index: usize) -> Result<Self, DecodeError> {
                let value = row.try_get_raw(index)?;
                if value.is_null() {
                    return Err(DecodeError::UnexpectedNull);
                }
                Ok(<Vec<Option<$ty>> as FromWire>::from_wire(binary_bytes(&value)?)?)
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
        Err(DecodeError::Type(format!(
            "the column is {} but the field expects {}",
            ty.name(),
            expected.join(" or ")
        )))
    }
}

/// Whether the column at `index` is NULL.
pub fn is_null(row: &PgRow, index: usize) -> Result<bool, DecodeError> {
    Ok(row.try_get_raw(index)?.is_null())
}
