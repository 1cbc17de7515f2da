//! The rule for an incremental export's cursor column, shared by `#[derive(EtlTable)]` and
//! `cargo xtask gen --cursor`.

use crate::{ColumnEncoding, Encoding, Scalar, Shape};

/// Whether a primary-key column of a table with a cursor can have its deleted rows found: each
/// run reads the key sorted by PostgreSQL and compares it with the previous run's by the
/// values' wire bytes, so the key's order must be its bytes' (integers, dates, times and
/// timestamps as signed big-endian numbers; text compared under `COLLATE "C"`, uuid, bytea
/// and booleans bytewise).
pub fn check_version_key(wire: Scalar) -> Result<(), String> {
    match wire {
        Scalar::Int2
        | Scalar::Int4
        | Scalar::Int8
        | Scalar::Date
        | Scalar::Time
        | Scalar::Timestamp
        | Scalar::Timestamptz
        | Scalar::Bool
        | Scalar::Uuid
        | Scalar::Bytea
        | Scalar::Text
        | Scalar::Cast(_) => Ok(()),
        Scalar::Float4 | Scalar::Float8 | Scalar::Numeric(_) | Scalar::Json | Scalar::Jsonb => Err(
            "deleted rows are found by comparing sorted keys, and only keys of integers, \
                 dates, times, timestamps, text, uuid, bytea or boolean sort as their bytes do"
                .into(),
        ),
    }
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
