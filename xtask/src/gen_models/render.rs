//! A table definition as the source of its model: the struct, its `#[etl(...)]` attributes and
//! a header recording the command that regenerates it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};

use etl_types::{SqlType, snake_ident};

use super::catalog::TableDef;

/// `purchase_orders` -> `PurchaseOrder`: the struct of one row.
pub fn struct_name(table: &str) -> String {
    if !table.chars().any(|c| c.is_ascii_alphanumeric()) {
        return "Row".to_string();
    }
    let snake = snake_ident(table);
    let snake = snake.trim_end_matches('_');
    let singular = if let Some(stem) = snake.strip_suffix("ies") {
        format!("{stem}y")
    } else if snake.ends_with("sses") || snake.ends_with("xes") || snake.ends_with("ches") {
        snake[..snake.len() - 2].to_string()
    } else if snake.ends_with('s') && !snake.ends_with("ss") && !snake.ends_with("us") {
        snake[..snake.len() - 1].to_string()
    } else {
        snake.to_string()
    };
    let mut out = String::new();
    for part in singular.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out = format!("Row{out}");
    }
    out
}

/// The model's source code (before rustfmt). `columns` is the subset asked for, recorded in
/// the header's regenerate command.
pub fn render_model(def: &TableDef, args: &super::GenArgs) -> Result<String> {
    let (columns, partition_by, cursor) = (
        &args.columns,
        args.partition_by.as_deref(),
        args.cursor.as_deref(),
    );
    let mut fields = Vec::new();
    let mut used = BTreeSet::new();
    let mut imports = BTreeSet::new();
    for column in &def.columns {
        let mut ident = snake_ident(&column.name);
        // Two columns can share a snake_case name (`UserID`, `user_id`): number the later ones.
        if !used.insert(ident.clone()) {
            let mut n = 2;
            while !used.insert(format!("{ident}_{n}")) {
                n += 1;
            }
            ident = format!("{ident}_{n}");
        }
        let sql = SqlType::parse(&column.sql_type)?;
        let rust = sql.rust_type(column.opt);
        for (needle, import) in [
            ("BigDecimal", "use bigdecimal::BigDecimal;"),
            ("Uuid", "use uuid::Uuid;"),
            ("NaiveDateTime", "use chrono::NaiveDateTime;"),
            ("NaiveTime", "use chrono::NaiveTime;"),
            ("DateTime<Utc>", "use chrono::{DateTime, Utc};"),
        ] {
            if rust.contains(needle) {
                imports.insert(import);
            }
        }
        if rust.replace("NaiveDateTime", "").contains("NaiveDate") {
            imports.insert("use chrono::NaiveDate;");
        }
        let ty = if column.not_null {
            rust
        } else {
            format!("Option<{rust}>")
        };
        let mut attrs = Vec::new();
        if ident != column.name {
            attrs.push(format!("column = {}", rust_string(&column.name)));
        }
        attrs.push(format!("sql_type = {}", rust_string(&column.sql_type)));
        if column.opt.numeric_string {
            attrs.push("numeric = \"string\"".into());
        }
        if let Some(mask) = column.opt.mask {
            attrs.push(format!("mask = {}", rust_string(mask.name())));
        }
        let mut text = String::new();
        if let Some(comment) = &column.comment {
            let _ = writeln!(text, "    /// {comment}");
        }
        let _ = writeln!(text, "    #[etl({})]", attrs.join(", "));
        let _ = writeln!(text, "    pub {ident}: {ty},");
        fields.push((column.name.clone(), ident, text));
    }
    let key = if def.primary_key.is_empty() {
        "no_primary_key".to_string()
    } else {
        let idents: Vec<String> = def
            .primary_key
            .iter()
            .filter_map(|k| {
                fields
                    .iter()
                    .find(|(name, _, _)| name == k)
                    .map(|(_, ident, _)| ident.clone())
            })
            .collect();
        format!("primary_key({})", idents.join(", "))
    };
    let mut schema = if def.schema == "public" {
        String::new()
    } else {
        format!(", schema = {}", rust_string(&def.schema))
    };
    let partition_specs = match partition_by {
        Some(text) => check_partition_by(def, text)?,
        None => Vec::new(),
    };
    if !partition_specs.is_empty() {
        let _ = write!(
            schema,
            ", partition_by = {}",
            rust_string(&etl_types::render_partition_by(&partition_specs))
        );
    }
    if let Some(name) = cursor {
        check_cursor(def, name)?;
        let _ = write!(schema, ", cursor = {}", rust_string(name));
    }
    if !def.omitted.is_empty() {
        let _ = write!(schema, ", omit = {}", rust_string(&def.omitted.join(", ")));
    }
    let mut regen = if def.schema == "public" {
        format!("cargo xtask gen --table {}", def.name)
    } else {
        format!(
            "cargo xtask gen --schema {} --table {}",
            def.schema, def.name
        )
    };
    if !columns.is_empty() {
        regen.push_str(" --columns ");
        regen.push_str(&columns.join(","));
    }
    if !partition_specs.is_empty() {
        // Without spaces: the header's command is read back word by word.
        regen.push_str(" --partition-by ");
        regen.push_str(&etl_types::render_partition_by(&partition_specs).replace(' ', ""));
    }
    if let Some(name) = cursor {
        regen.push_str(" --cursor ");
        regen.push_str(name);
    }
    if !args.mask.is_empty() {
        regen.push_str(" --mask ");
        regen.push_str(&args.mask.join(","));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! Generated by `cargo xtask gen` from table {}.{}; do not edit by hand. Regenerate: `{regen}`.\n",
        def.schema, def.name
    );
    for import in &imports {
        let _ = writeln!(out, "{import}");
    }
    let _ = writeln!(out, "use etl_runtime::EtlTable;\n");
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq, EtlTable)]");
    let _ = writeln!(
        out,
        "#[etl(table = {}{schema}, {key})]",
        rust_string(&def.name)
    );
    let _ = writeln!(out, "pub struct {} {{", struct_name(&def.name));
    for (_, _, text) in &fields {
        out.push_str(text);
    }
    out.push_str("}\n");
    Ok(out)
}

/// The keys of `--partition-by`, each a column of the table that can be partitioned that way
/// (the derive checks the same again when the model compiles).
fn check_partition_by(def: &TableDef, text: &str) -> Result<Vec<etl_types::PartitionSpec>> {
    let specs = etl_types::parse_partition_by(text).map_err(|e| anyhow!("--partition-by {e}"))?;
    for spec in &specs {
        let column = def
            .columns
            .iter()
            .find(|c| c.name == spec.column)
            .ok_or_else(|| {
                anyhow!(
                    "--partition-by: {}.{} has no column `{}`",
                    def.schema,
                    def.name,
                    spec.column
                )
            })?;
        if column.opt.mask.is_some() {
            bail!(
                "--partition-by {}: a masked column cannot be a partition key",
                column.name
            );
        }
        let encoding = SqlType::parse(&column.sql_type)?
            .encoding(column.opt)
            .map_err(|e| anyhow!("{}: {e}", column.name))?;
        spec.transform.check(&encoding).map_err(|why| {
            anyhow!(
                "--partition-by `{}` ({}): {why}",
                spec.column,
                column.sql_type
            )
        })?;
    }
    Ok(specs)
}

/// `--cursor`: a NOT NULL timestamp column of a table with a primary key (the derive checks
/// the same again when the model compiles).
fn check_cursor(def: &TableDef, name: &str) -> Result<()> {
    let column = def.columns.iter().find(|c| c.name == name).ok_or_else(|| {
        anyhow!(
            "--cursor: {}.{} has no column `{name}`",
            def.schema,
            def.name
        )
    })?;
    let encoding = SqlType::parse(&column.sql_type)?
        .encoding(column.opt)
        .map_err(|e| anyhow!("{}: {e}", column.name))?;
    etl_types::check_cursor(&encoding, !column.not_null)
        .map_err(|why| anyhow!("--cursor `{name}` ({}): {why}", column.sql_type))?;
    if def.primary_key.is_empty() {
        bail!(
            "--cursor: {}.{} has no primary key; incremental batches add new versions of rows, \
             and readers keep each key's latest",
            def.schema,
            def.name
        );
    }
    for key in &def.primary_key {
        let Some(column) = def.columns.iter().find(|c| &c.name == key) else {
            continue;
        };
        let wire = SqlType::parse(&column.sql_type)?
            .selected_scalar(column.opt)
            .wire();
        etl_types::check_version_key(wire).map_err(|why| {
            anyhow!(
                "--cursor: {}.{}'s key column `{key}` ({}): {why}",
                def.schema,
                def.name,
                column.sql_type
            )
        })?;
    }
    Ok(())
}

fn rust_string(s: &str) -> String {
    format!("{s:?}")
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_become_structs() {
        assert_eq!(struct_name("purchase_orders"), "PurchaseOrder");
        assert_eq!(struct_name("currencies"), "Currency");
        assert_eq!(struct_name("addresses"), "Address");
        assert_eq!(struct_name("status"), "Status");
    }
}
