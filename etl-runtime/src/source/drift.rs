//! Does the live table still match its model? Checked before every export (and by
//! `etl-app check`), so that a dropped or retyped column is a clear message naming table and
//! columns instead of a failure in the middle of the stream.
//!
//! Types are compared by PostgreSQL itself (`to_regtype` of the declared type against the
//! column's type or its domain's base type), so there is no second type parser here.

use sqlx::{PgConnection, Row};

use crate::error::{Error, Result};
pub use crate::model::Drift;
use crate::model::TableInfo;

/// A column of the live table, domains resolved.
struct LiveColumn {
    name: String,
    /// As `format_type` prints it (a domain's name for a domain).
    sql_type: String,
    not_null: bool,
    type_oid: i64,
    /// The type under every domain.
    base_oid: i64,
}

/// Compares the model's columns with the live table.
pub async fn check_table(conn: &mut PgConnection, info: &TableInfo) -> sqlx::Result<Vec<Drift>> {
    // A domain (over a domain, ...) is checked as its base type, and is NOT NULL when any
    // domain of the chain says so, as `xtask gen` resolves it.
    let live = sqlx::query(
        "WITH RECURSIVE chain AS ( \
             SELECT a.attnum, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS live, \
                    a.attnotnull AS not_null, a.atttypid AS type_oid, a.atttypid AS base \
             FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
           UNION ALL \
             SELECT c.attnum, c.name, c.live, c.not_null OR t.typnotnull, c.type_oid, t.typbasetype \
             FROM chain c JOIN pg_type t ON t.oid = c.base AND t.typtype = 'd' \
         ) \
         SELECT c.name, c.live, c.not_null, c.type_oid::int8, c.base::int8 \
         FROM chain c JOIN pg_type t ON t.oid = c.base \
         WHERE t.typtype <> 'd' ORDER BY c.attnum",
    )
    .bind(info.qualified_sql())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(LiveColumn {
            name: row.try_get(0)?,
            sql_type: row.try_get(1)?,
            not_null: row.try_get(2)?,
            type_oid: row.try_get(3)?,
            base_oid: row.try_get(4)?,
        })
    })
    .collect::<sqlx::Result<Vec<_>>>()?;
    if live.is_empty() {
        return Ok(vec![Drift::TableMissing]);
    }
    let declared_types: Vec<&str> = info.columns.iter().map(|c| c.sql_type).collect();
    let declared_oids: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT to_regtype(d)::oid::int8 FROM unnest($1::text[]) WITH ORDINALITY AS u(d, n) ORDER BY n")
            .bind(&declared_types)
            .fetch_all(&mut *conn)
            .await?;

    let mut drift = Vec::new();
    for (column, declared_oid) in info.columns.iter().zip(&declared_oids) {
        let Some(row) = live.iter().find(|r| r.name == column.name) else {
            drift.push(Drift::ColumnDropped {
                column: column.name.to_string(),
            });
            continue;
        };
        let same_type = declared_oid.is_some_and(|oid| oid == row.type_oid || oid == row.base_oid)
            && same_numeric_typmod(column.sql_type, &row.sql_type);
        if !same_type {
            drift.push(Drift::Retyped {
                column: column.name.to_string(),
                declared: column.sql_type.to_string(),
                live: row.sql_type.clone(),
            });
        }
        match (column.nullable, row.not_null) {
            (false, false) => drift.push(Drift::BecameNullable {
                column: column.name.to_string(),
            }),
            (true, true) => drift.push(Drift::BecameNotNull {
                column: column.name.to_string(),
            }),
            _ => {}
        }
    }
    for row in live {
        if !info.columns.iter().any(|c| c.name == row.name)
            && !info.omitted.contains(&row.name.as_str())
        {
            drift.push(Drift::ColumnAdded {
                column: row.name,
                sql_type: row.sql_type,
            });
        }
    }
    Ok(drift)
}

/// A numeric's precision and scale decide its DECIMAL, so they must match; an unconstrained
/// live numeric was sized from its data by `xtask gen` and is accepted.
fn same_numeric_typmod(declared: &str, live: &str) -> bool {
    let typmod = |t: &str| -> Option<String> {
        let t = t.to_ascii_lowercase();
        if !(t.starts_with("numeric") || t.starts_with("decimal")) {
            return None;
        }
        let open = t.find('(')?;
        let close = t.find(')')?;
        Some(t[open + 1..close].split_whitespace().collect())
    };
    match (typmod(declared), typmod(live)) {
        (Some(d), Some(l)) => d == l,
        _ => true,
    }
}

/// The model against the live table: an error for a difference that stops the export, the
/// others (a column added, ...) as warnings.
pub async fn check(conn: &mut sqlx::PgConnection, info: &TableInfo) -> Result<Vec<String>> {
    let drift = check_table(conn, info).await.map_err(Error::Query)?;
    let (breaking, benign): (Vec<_>, Vec<_>) = drift.into_iter().partition(|d| d.is_breaking());
    if !breaking.is_empty() {
        return Err(Error::SchemaDrift {
            table: info.display_name(),
            drift: breaking,
        });
    }
    Ok(benign.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::same_numeric_typmod;

    #[test]
    fn numeric_precision_and_scale_must_match() {
        assert!(same_numeric_typmod("numeric(12,2)", "numeric(12, 2)"));
        assert!(!same_numeric_typmod("numeric(12,2)", "numeric(14,2)"));
        assert!(same_numeric_typmod("numeric(18,4)", "numeric"));
        assert!(same_numeric_typmod("text", "text"));
    }
}
