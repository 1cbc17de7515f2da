//! The rule for an incremental export's cursor column, shared by `#[derive(EtlTable)]` and
//! `cargo xtask gen --cursor`.

use crate::{ColumnEncoding, Encoding, Scalar, Shape};

/// How a primary-key column of a table with a cursor is sorted by PostgreSQL and compared by
/// the client: each run reads the key sorted and compares it with the previous run's by the
/// values' wire bytes, so the key's order must be its bytes'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionKeyOrder {
    /// Integers, dates, times, timestamps: signed big-endian numbers of one width.
    SignedBigEndian,
    /// uuid, bytea, booleans: bytewise.
    Bytes,
    /// Text: bytewise, sorted by PostgreSQL under `COLLATE "C"`.
    BytesCollateC,
}

/// The order of key column `wire` (see [`VersionKeyOrder`]), or why its deleted rows cannot
/// be found.
pub fn version_key_order(wire: Scalar) -> Result<VersionKeyOrder, String> {
    match wire {
        Scalar::Int2
        | Scalar::Int4
        | Scalar::Int8
        | Scalar::Date
        | Scalar::Time
        | Scalar::Timestamp
        | Scalar::Timestamptz => Ok(VersionKeyOrder::SignedBigEndian),
        Scalar::Bool | Scalar::Uuid | Scalar::Bytea => Ok(VersionKeyOrder::Bytes),
        Scalar::Text | Scalar::Cast(_) => Ok(VersionKeyOrder::BytesCollateC),
        Scalar::Float4 | Scalar::Float8 | Scalar::Numeric(_) | Scalar::Json | Scalar::Jsonb => Err(
            "deleted rows are found by comparing sorted keys, and only keys of integers, \
                 dates, times, timestamps, text, uuid, bytea or boolean sort as their bytes do"
                .into(),
        ),
    }
}

/// Whether a primary-key column of a table with a cursor can have its deleted rows found
/// ([`version_key_order`]).
pub fn check_version_key(wire: Scalar) -> Result<(), String> {
    version_key_order(wire).map(|_| ())
}

/// Whether a column can be the cursor of incremental exports: a `timestamp` or `timestamptz`
/// that is never NULL. A NULL cursor would match no lower bound, so its rows would never be
/// exported after the first run: such a model is refused rather than made to lose rows.
pub fn check_cursor(encoding: &ColumnEncoding, nullable: bool) -> Result<(), String> {
    let timestamp = encoding.shape == Shape::Scalar
        && matches!(
            encoding.element,
            Encoding::Timestamp | Encoding::Timestamptz
        );
    if !timestamp {
        return Err(
            "a cursor is a `timestamp` or `timestamptz` column (the time of each \
                    row's last change)"
                .into(),
        );
    }
    if nullable {
        return Err(
            "a cursor column must be NOT NULL: rows whose cursor is NULL would \
                    never be exported by an incremental run (make the column NOT NULL, with a \
                    default such as now(), or choose another)"
                .into(),
        );
    }
    Ok(())
}
