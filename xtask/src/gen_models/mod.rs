//! `cargo xtask gen`: reads live tables through `pg_catalog` ([`catalog`]) and writes the
//! annotated models ([`render`]) to `etl-app/src/models/<name>.rs`, then rewrites
//! `models/mod.rs` from the directory ([`files`]), so that `etl-app run --tables NAME` exports
//! them with no other edit. Running it twice changes nothing the second time. `--check`
//! ([`check`]) compares the models with the database; `--remove` deletes a table's model.

mod catalog;
mod check;
mod files;
mod parse;
mod render;

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use self::catalog::list_tables;
pub use self::catalog::{ColumnDef, TableDef, introspect, mask_columns, select_columns};
pub use self::check::check;
use self::files::{model_file, write_formatted};
pub use self::files::{remove, rustfmt, write_registry};
pub use self::render::{render_model, struct_name};

#[derive(Debug, Args)]
pub struct GenArgs {
    /// The table to generate a model for.
    #[arg(long, required_unless_present_any = ["all", "check", "remove"], conflicts_with = "all")]
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
    /// Hive partition keys in directory order: a date/timestamp column with `:year`,
    /// `:month` or `:day`, or a text, integer or boolean column as it is
    /// (`--partition-by region,created_at:day`).
    #[arg(long, value_name = "KEYS", requires = "table")]
    pub partition_by: Option<String>,
    /// The column incremental runs read changes by: a NOT NULL timestamp or timestamptz set
    /// on every change (`--cursor updated_at`); the table needs a primary key.
    #[arg(long, value_name = "COLUMN", requires = "table")]
    pub cursor: Option<String>,
    /// Columns written as a keyed hash of their value (`#[etl(mask = "hmac_sha256")]`), so
    /// that personal data never leaves the database host: `--mask email,phone`. The run then
    /// needs a key (`etl-app run --mask-key-file`). Not a partition key or cursor.
    #[arg(long, value_delimiter = ',', requires = "table")]
    pub mask: Vec<String>,
    /// The database to read; DATABASE_URL by default.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Where the models go.
    #[arg(long, default_value_os_t = default_models_dir())]
    pub models_dir: PathBuf,
    /// Write nothing: compare every model in the directory with the live database and exit 1
    /// listing each difference (the CI guard; fix with the `Regenerate:` command the model
    /// file names).
    #[arg(long, conflicts_with_all = ["table", "all", "columns", "partition_by", "cursor", "mask"])]
    pub check: bool,
    /// Delete the model of this table (`notes`, `sales.orders`): for a table that was dropped,
    /// or the demo's. Needs no database.
    #[arg(long, value_name = "TABLE", conflicts_with_all = ["table", "all", "columns", "check"])]
    pub remove: Option<String>,
}

/// `gen` on its own, to read back the command a model's header records.
#[derive(Debug, clap::Parser)]
struct GenCommand {
    #[command(flatten)]
    args: GenArgs,
}

/// Your models: what `etl-app` exports.
pub fn default_models_dir() -> PathBuf {
    etl_tests::workspace_root()
        .join("etl-app")
        .join("src")
        .join("models")
}

/// The demo's models (`xtask/sql/demo.sql`): what `etl-demo` exports.
pub fn demo_models_dir() -> PathBuf {
    etl_tests::workspace_root()
        .join("etl-app")
        .join("demo")
        .join("models")
}

pub fn run(args: GenArgs) -> Result<ExitCode> {
    if let Some(table) = &args.remove {
        remove(&args.models_dir, table)?;
        return Ok(ExitCode::SUCCESS);
    }
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

/// The model of `def` as `args` ask for it: the columns chosen (the others recorded as left
/// out), the masked ones, the partition keys and the cursor.
pub(crate) fn model_source(def: &mut TableDef, args: &GenArgs) -> Result<String> {
    if !args.columns.is_empty() {
        select_columns(def, &args.columns)?;
    }
    mask_columns(def, &args.mask)?;
    render_model(def, args)
}

pub(crate) async fn connect(url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .context("cannot connect to the database (check DATABASE_URL)")
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
        let source = model_source(&mut def, args)?;
        let file = model_file(&args.models_dir, &def);
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
