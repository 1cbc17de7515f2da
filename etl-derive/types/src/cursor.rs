//! The rule for an incremental export's cursor column, shared by `#[derive(EtlTable)]` and
//! `cargo xtask gen --cursor`.

use crate::{ColumnEncoding, Encoding, Shape};

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
