//! What `gen` reads from `pg_catalog`: a table's columns with their types (domains resolved),
//! NOT NULL and the primary key, and the precision live data needs for an unconstrained
//! numeric.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use sqlx::{AssertSqlSafe, PgPool, Row};

use etl_types::{CastKind, NumericTypmod, OptIns, Scalar, SqlType, quote_ident};

/// A table as read from the catalog.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
    /// Lines for the user: columns that took the `::text` path, numerics sized from data.
    pub notes: Vec<String>,
    /// Columns of the table left out of the model (`--columns`).
    pub omitted: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    /// The type as `format_type` prints it, domains resolved to their base type.
    pub sql_type: String,
    pub not_null: bool,
    /// Opt-ins gen chose (numeric as string when it cannot be a DECIMAL).
    pub opt: OptIns,
    /// A comment written above the field.
    pub comment: Option<String>,
}

pub(super) async fn list_tables(pool: &PgPool, schema: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
         ORDER BY c.relname",
    )
    .bind(schema)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
}

/// Reads a table's columns, their types (domains resolved) and its primary key.
pub async fn introspect(pool: &PgPool, schema: &str, table: &str) -> Result<TableDef> {
    let rows = sqlx::query(
        "SELECT a.attname::text, a.atttypid::int8, a.atttypmod, a.attnotnull, t.typtype::text, \
                format_type(a.atttypid, a.atttypmod), \
                coalesce(et.typtype::text, ''), \
                coalesce(t.typcategory::text, '') \
         FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
         WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        bail!("table {schema}.{table} does not exist (or has no columns) in this database");
    }
    let mut def = TableDef {
        schema: schema.to_string(),
        name: table.to_string(),
        columns: Vec::new(),
        primary_key: Vec::new(),
        notes: Vec::new(),
        omitted: Vec::new(),
    };
    for row in rows {
        let name: String = row.get(0);
        let mut type_oid: i64 = row.get(1);
        let mut typmod: i32 = row.get(2);
        let mut not_null: bool = row.get(3);
        let mut typtype: String = row.get(4);
        let mut formatted: String = row.get(5);
        let element_typtype: String = row.get(6);
        let mut comment = None;
        // A domain is exported as its base type (NOT NULL if the domain says so).
        let mut domain = None;
        while typtype == "d" {
            let base = sqlx::query(
                "SELECT t.typbasetype::int8, t.typtypmod, t.typnotnull, b.typtype::text, \
                        format_type(t.typbasetype, t.typtypmod), t.typname::text \
                 FROM pg_type t JOIN pg_type b ON b.oid = t.typbasetype WHERE t.oid = $1",
            )
            .bind(type_oid)
            .fetch_one(pool)
            .await?;
            type_oid = base.get(0);
            typmod = base.get(1);
            not_null |= base.get::<bool, _>(2);
            typtype = base.get(3);
            formatted = base.get(4);
            domain.get_or_insert(base.get::<String, _>(5));
        }
        let _ = typmod;
        if let Some(domain) = domain {
            comment = Some(format!("domain {domain} over {formatted}"));
        }
        let is_enum = typtype == "e" || element_typtype == "e";
        let mut sql = SqlType::parse(&formatted)
            .with_context(|| format!("column {name} of {schema}.{table}"))?;
        let mut opt = OptIns::default();
        if is_enum {
            comment = Some(format!("enum {formatted}: exported as text"));
        } else if sql.scalar == Scalar::Cast(CastKind::Other) {
            comment = Some(format!(
                "{formatted} has no Parquet mapping: exported as text through ::text"
            ));
            def.notes.push(format!(
                "column {name} ({formatted}) is exported as text through ::text"
            ));
        }
        if sql.scalar == Scalar::Numeric(None) {
            let (chosen, why) = size_numeric(pool, schema, table, &name, sql.array).await?;
            match chosen {
                Some(typmod) => {
                    let text = format!(
                        "numeric({},{}){}",
                        typmod.precision,
                        typmod.scale,
                        if sql.array { "[]" } else { "" }
                    );
                    sql = SqlType::parse(&text)?;
                    formatted = text;
                }
                None => opt.numeric_string = true,
            }
            def.notes
                .push(format!("column {name} (numeric without precision): {why}"));
            comment = Some(format!("numeric without precision in the database: {why}"));
        } else if let Scalar::Numeric(Some(t)) = sql.scalar
            && t.precision > etl_types::MAX_DECIMAL_PRECISION
        {
            opt.numeric_string = true;
            comment = Some(format!(
                "{formatted} is wider than Parquet DECIMAL(38): exported as exact decimal text"
            ));
        }
        def.columns.push(ColumnDef {
            name,
            sql_type: formatted,
            not_null,
            opt,
            comment,
        });
        let _ = sql;
    }
    let keys = sqlx::query(
        "SELECT a.attname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
         WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.ord",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await?;
    def.primary_key = keys.iter().map(|r| r.get::<String, _>(0)).collect();
    // A partition's rows are its parent's too: exporting both writes them twice, which is why
    // `--all` generates the partitioned parent only (whose export reads every leaf once).
    let parent = sqlx::query(
        "SELECT pn.nspname::text, p.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_inherits i ON i.inhrelid = c.oid \
         JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND c.relispartition",
    )
    .bind(schema)
    .bind(table)
    .fetch_optional(pool)
    .await?;
    if let Some(parent) = parent {
        let (parent_schema, parent_name): (String, String) =
            (parent.try_get(0)?, parent.try_get(1)?);
        def.notes.push(format!(
            "{schema}.{table} is a partition of {parent_schema}.{parent_name}: its rows are also \
             exported with {parent_name}, so exporting both writes them twice"
        ));
    }
    Ok(def)
}

/// An unconstrained numeric gets the narrowest DECIMAL that holds every live value with room
/// to grow in the same physical type (precision 18 -> INT64, else 38 -> 16 bytes), or exact
/// text when no DECIMAL(38) can hold the data (or it holds NaN, or there is no data).
async fn size_numeric(
    pool: &PgPool,
    schema: &str,
    table: &str,
    column: &str,
    array: bool,
) -> Result<(Option<NumericTypmod>, String)> {
    let quoted = quote_ident;
    let source = if array {
        format!(
            "(SELECT unnest({}) AS v FROM {}.{}) s",
            quoted(column),
            quoted(schema),
            quoted(table)
        )
    } else {
        format!(
            "(SELECT {} AS v FROM {}.{}) s",
            quoted(column),
            quoted(schema),
            quoted(table)
        )
    };
    let sql = format!(
        "SELECT max(scale(v)) FILTER (WHERE v <> 'NaN'), \
                max(length(trunc(abs(v))::text)) FILTER (WHERE v <> 'NaN' AND trunc(abs(v)) <> 0), \
                bool_or(v = 'NaN'), count(v) FROM {source}"
    );
    let row = sqlx::query(AssertSqlSafe(sql)).fetch_one(pool).await?;
    let max_scale: Option<i32> = row.get(0);
    let max_integer_digits: Option<i32> = row.get(1);
    let has_nan: Option<bool> = row.get(2);
    let count: i64 = row.get(3);
    if count == 0 {
        return Ok((
            None,
            "no data to size it from: exported as exact decimal text".into(),
        ));
    }
    if has_nan == Some(true) {
        return Ok((None, "holds NaN: exported as exact decimal text".into()));
    }
    let scale = max_scale.unwrap_or(0).max(0) as u32;
    let integer_digits = max_integer_digits.unwrap_or(0).max(0) as u32;
    let needed = (scale + integer_digits).max(1);
    let precision = if needed <= 18 {
        18
    } else if needed <= 38 {
        38
    } else {
        return Ok((
            None,
            format!("needs {needed} digits, more than DECIMAL(38): exported as exact decimal text"),
        ));
    };
    Ok((
        Some(NumericTypmod { precision, scale }),
        format!(
            "sized from live data (max scale {scale}, max integer digits {integer_digits}) as numeric({precision},{scale})"
        ),
    ))
}

pub fn select_columns(def: &mut TableDef, wanted: &[String]) -> Result<()> {
    let known: BTreeSet<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|w| !known.contains(w.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "table {}.{} has no column {} (it has: {})",
            def.schema,
            def.name,
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            known.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let keep: BTreeSet<&str> = wanted
        .iter()
        .map(String::as_str)
        .chain(def.primary_key.iter().map(String::as_str))
        .collect();
    def.omitted = def
        .columns
        .iter()
        .filter(|c| !keep.contains(c.name.as_str()))
        .map(|c| c.name.clone())
        .collect();
    def.columns.retain(|c| keep.contains(c.name.as_str()));
    Ok(())
}

/// `--mask`: each named column of the model written as its keyed hash.
pub fn mask_columns(def: &mut TableDef, masked: &[String]) -> Result<()> {
    for name in masked {
        let Some(column) = def.columns.iter_mut().find(|c| &c.name == name) else {
            bail!(
                "--mask: the model of {}.{} has no column `{name}` (it has: {})",
                def.schema,
                def.name,
                def.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        // The hash replaces the value, and with it any choice of how the value is written.
        column.opt = etl_types::OptIns {
            mask: Some(etl_types::Mask::HmacSha256),
            ..etl_types::OptIns::default()
        };
    }
    Ok(())
}
