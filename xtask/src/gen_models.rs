//! `cargo xtask gen`: reads live tables through `pg_catalog` and writes the annotated models
//! `etl-app/src/models/<name>.rs`, then rewrites `models/mod.rs` from the directory, so that
//! `etl-app run --tables NAME` exports them with no other edit. Running it twice changes
//! nothing the second time.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool, Row};

use etl_types::{CastKind, NumericTypmod, OptIns, Scalar, SqlType, quote_ident, snake_ident};

#[derive(Debug, Args)]
pub struct GenArgs {
    /// The table to generate a model for.
    #[arg(long, required_unless_present_any = ["all", "check"], conflicts_with = "all")]
    pub table: Option<String>,
    /// Every table of the schema.
    #[arg(long)]
    pub all: bool,
    /// The table's schema.
    #[arg(long, default_value = "public")]
    pub schema: String,
    /// Only these columns (the primary key is always included).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// The database to read; DATABASE_URL by default.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Where the models go.
    #[arg(long, default_value_os_t = default_models_dir())]
    pub models_dir: PathBuf,
    /// Write nothing: compare every model in the directory with the live database and exit 1
    /// listing each difference (the CI guard; fix with the `Regenerate:` command the model
    /// file names).
    #[arg(long, conflicts_with_all = ["table", "all", "columns"])]
    pub check: bool,
}

/// `gen` on its own, to read back the command a model's header records.
#[derive(Debug, clap::Parser)]
struct GenCommand {
    #[command(flatten)]
    args: GenArgs,
}

pub fn default_models_dir() -> PathBuf {
    etl_tests::workspace_root()
        .join("etl-app")
        .join("src")
        .join("models")
}

pub fn run(args: GenArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if args.check {
        let differences = runtime.block_on(check(&args))?;
        if differences > 0 {
            eprintln!(
                "{differences} model(s) differ from the database: run the `Regenerate:` command each names and commit"
            );
            return Ok(ExitCode::FAILURE);
        }
        println!("every model matches the database");
        return Ok(ExitCode::SUCCESS);
    }
    runtime.block_on(generate(&args))?;
    Ok(ExitCode::SUCCESS)
}

async fn connect(url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .context("cannot connect to the database (check DATABASE_URL)")
}

/// Regenerates every model of the directory in memory, by the command its header records,
/// and reports each one that differs from the file. Returns the number of differing models.
pub async fn check(args: &GenArgs) -> Result<usize> {
    let pool = connect(&args.database_url).await?;
    let mut differences = 0;
    let mut files: Vec<PathBuf> = fs::read_dir(&args.models_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for path in files {
        if path.extension().is_none_or(|e| e != "rs")
            || path.file_stem().is_some_and(|s| s == "mod")
        {
            continue;
        }
        let committed = fs::read_to_string(&path)?;
        let Some(command) = regenerate_command(&committed) else {
            continue;
        };
        let mut argv = vec!["gen".to_string()];
        argv.extend(command.split_whitespace().map(str::to_string));
        argv.extend(["--database-url".to_string(), args.database_url.clone()]);
        let regen = <GenCommand as clap::Parser>::try_parse_from(&argv)
            .with_context(|| {
                format!(
                    "{}: unreadable Regenerate command `{command}`",
                    path.display()
                )
            })?
            .args;
        let (schema, table) = (
            regen.schema.as_str(),
            regen.table.as_deref().unwrap_or_default(),
        );
        let expected = match introspect(&pool, schema, table).await {
            Ok(mut def) => {
                if !regen.columns.is_empty() {
                    select_columns(&mut def, &regen.columns)?;
                }
                rustfmt(&render_model(&def, &regen.columns)?)?
            }
            Err(e) => {
                differences += 1;
                println!("{}: {e}", path.display());
                continue;
            }
        };
        if expected != committed {
            differences += 1;
            println!("{} differs from {schema}.{table}:", path.display());
            let old: BTreeSet<String> = field_lines(&committed).collect();
            let new: BTreeSet<String> = field_lines(&expected).collect();
            for line in old.difference(&new) {
                println!("  - {line}   (model)");
            }
            for line in new.difference(&old) {
                println!("  + {line}   (database)");
            }
        }
    }
    pool.close().await;
    Ok(differences)
}

/// One entry per column: its `#[etl(...)]` attribute and field, on one line.
fn field_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut pending = String::new();
    text.lines().map(str::trim).filter_map(move |line| {
        if line.starts_with("#[etl(") && !pending.starts_with("#[derive") {
            pending = line.to_string();
            None
        } else if line.starts_with("pub ") && line.ends_with(',') {
            let entry = format!("{pending} {line}").trim().to_string();
            pending.clear();
            Some(entry)
        } else {
            if line.starts_with("#[derive") {
                pending.clear();
            }
            None
        }
    })
}

/// `--table x --columns a,b` from a model's header line.
fn regenerate_command(text: &str) -> Option<String> {
    let header = text.lines().next()?;
    let start =
        header.find("Regenerate: `cargo xtask gen ")? + "Regenerate: `cargo xtask gen ".len();
    let end = header[start..].find('`')? + start;
    Some(header[start..end].to_string())
}

pub async fn generate(args: &GenArgs) -> Result<()> {
    let pool = connect(&args.database_url).await?;
    let tables = match (&args.table, args.all) {
        (Some(table), _) => vec![table.clone()],
        (None, _) => list_tables(&pool, &args.schema).await?,
    };
    fs::create_dir_all(&args.models_dir)?;
    for table in &tables {
        let mut def = introspect(&pool, &args.schema, table).await?;
        if !args.columns.is_empty() {
            select_columns(&mut def, &args.columns)?;
        }
        let file = model_file(&args.models_dir, &def);
        let source = render_model(&def, &args.columns)?;
        let changed = write_formatted(&file, &source)?;
        println!(
            "{} {} ({} columns)",
            if changed { "wrote" } else { "unchanged" },
            file.display(),
            def.columns.len()
        );
        for note in &def.notes {
            println!("  note: {note}");
        }
    }
    write_registry(&args.models_dir)?;
    pool.close().await;
    Ok(())
}

/// The model file of `def` in `dir`: `<module>.rs`, or `<module>_2.rs`, ... when a file of that
/// name already holds another table's model (`café` and `cafè` are both `caf` in ASCII).
fn model_file(dir: &Path, def: &TableDef) -> PathBuf {
    let module = def.module_name();
    let owner = format!("from table {}.{};", def.schema, def.name);
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{module}.rs")
        } else {
            format!("{module}_{n}.rs")
        };
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) if !text.lines().next().is_some_and(|l| l.contains(&owner)) => n += 1,
            _ => return path,
        }
    }
}

/// A table as read from the catalog.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
    /// Lines for the user: columns that took the `::text` path, numerics sized from data.
    pub notes: Vec<String>,
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

impl TableDef {
    pub fn module_name(&self) -> String {
        // A name with no ASCII letter or digit (`注文`) has nothing to keep in a file name.
        if !self.name.chars().any(|c| c.is_ascii_alphanumeric()) {
            return if self.schema == "public" {
                "table".to_string()
            } else {
                format!("{}_table", snake_ident(&self.schema))
            };
        }
        if self.schema == "public" {
            snake_ident(&self.name)
        } else {
            snake_ident(&format!("{}_{}", self.schema, self.name))
        }
    }
}

async fn list_tables(pool: &PgPool, schema: &str) -> Result<Vec<String>> {
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
    def.columns.retain(|c| keep.contains(c.name.as_str()));
    Ok(())
}

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
pub fn render_model(def: &TableDef, columns: &[String]) -> Result<String> {
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
    let schema = if def.schema == "public" {
        String::new()
    } else {
        format!(", schema = {}", rust_string(&def.schema))
    };
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

fn rust_string(s: &str) -> String {
    format!("{s:?}")
}

/// Formats `source` with rustfmt and writes it if it differs; returns whether it changed.
fn write_formatted(path: &Path, source: &str) -> Result<bool> {
    let formatted = rustfmt(source)?;
    if fs::read_to_string(path).ok().as_deref() == Some(formatted.as_str()) {
        return Ok(false);
    }
    fs::write(path, formatted).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

pub fn rustfmt(source: &str) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run rustfmt (rustup component add rustfmt)")?;
    child
        .stdin
        .take()
        .context("no stdin for rustfmt")?
        .write_all(source.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "rustfmt rejected the generated code:\n{}\n{source}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Rewrites `mod.rs` from the model files in the directory: one `mod` and one registration
/// per file, sorted, so that it never holds duplicates.
pub fn write_registry(dir: &Path) -> Result<()> {
    let mut models = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "rs") || stem == "mod" {
            continue;
        }
        let text = fs::read_to_string(&path)?;
        let Some(name) = model_struct(&text) else {
            continue;
        };
        models.push((stem.to_string(), name));
    }
    models.sort();
    let mut out = String::from(
        "//! Generated by `cargo xtask gen`; do not edit by hand. Every model file in this\n\
         //! directory is registered here; regenerate with `cargo xtask gen --table NAME`.\n\n",
    );
    for (module, _) in &models {
        let _ = writeln!(out, "pub mod {module};");
    }
    out.push_str("\n/// Every model of this directory, registered for export.\n");
    out.push_str(
        "pub fn registry() -> etl_runtime::Registry {\n    etl_runtime::Registry::new(vec![\n",
    );
    for (module, name) in &models {
        let _ = writeln!(
            out,
            "        etl_runtime::Export::table::<{module}::{name}>(),"
        );
    }
    out.push_str("    ])\n}\n");
    write_formatted(&dir.join("mod.rs"), &out)?;
    Ok(())
}

/// The struct that derives `EtlTable` in a model file.
fn model_struct(text: &str) -> Option<String> {
    let derive = text.find("EtlTable)]")?;
    let rest = &text[derive..];
    let start = rest.find("pub struct ")? + "pub struct ".len();
    let name: String = rest[start..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
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
