//! `cargo xtask demo`: the main job on a throwaway database. Starts PostgreSQL (or uses
//! `DATABASE_URL`'s server), creates the database `etl_demo` with procurement tables, and runs
//! `etl-demo run` (etl-app over the demo's models) into a local directory.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;
use etl_tests::postgres::{psql, psql_file};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where etl-app writes the Parquet files.
    #[arg(long, default_value = "./etl-out")]
    pub output: PathBuf,
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let server = etl_tests::server().map_err(anyhow::Error::msg)?;
    if server.owned {
        eprintln!("started a throwaway PostgreSQL at {}", server.url);
    }
    let url = create_demo_database(&server.url, "etl_demo")?;
    eprintln!("filled etl_demo with currencies, purchase_orders and notes");
    let etl_demo = build_etl_demo()?;
    let status = Command::new(&etl_demo)
        .args(["run", "--output"])
        .arg(&args.output)
        .env("DATABASE_URL", &url)
        .status()
        .with_context(|| format!("cannot run {}", etl_demo.display()))?;
    server.stop();
    if !status.success() {
        bail!("etl-demo run failed ({status})");
    }
    let python = etl_tests::python::existing().map_or_else(
        || "python3 (with pyarrow)".to_string(),
        |p| p.display().to_string(),
    );
    println!(
        "\nRead them with any Parquet reader, e.g.\n  {python} -c \"import pyarrow.parquet as pq; print(pq.read_table('{0}/purchase_orders'))\"\n  duckdb -c \"SELECT type, count(*), sum(amount) FROM '{0}/purchase_orders/*.parquet' GROUP BY ALL\"",
        args.output.display()
    );
    println!(
        "\nThat was `etl-demo`: etl-app over the demo's models (etl-app/demo/). Your own tables:\n  \
         DATABASE_URL=postgres://user:password@host/db cargo xtask gen --all   # models in etl-app/src/models/\n  \
         DATABASE_URL=... cargo run --release -p etl-app -- run --output ./out"
    );
    Ok(ExitCode::SUCCESS)
}

/// (Re)creates `name` on the server and loads the demo tables; returns its URL.
pub fn create_demo_database(server_url: &str, name: &str) -> Result<String> {
    psql(
        server_url,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .map_err(anyhow::Error::msg)?;
    psql(server_url, &format!("CREATE DATABASE \"{name}\"")).map_err(anyhow::Error::msg)?;
    let url = etl_tests::with_database(server_url, name);
    psql_file(&url, &demo_sql(), &[]).map_err(anyhow::Error::msg)?;
    Ok(url)
}

fn demo_sql() -> PathBuf {
    etl_tests::workspace_root().join("xtask/sql/demo.sql")
}

/// Builds `etl-demo` (etl-app over the demo's models and tasks) in the dev profile, the one the
/// tests use, so nothing compiles twice.
pub fn build_etl_demo() -> Result<PathBuf> {
    cargo(&["build", "--quiet", "-p", "etl-app", "--bin", "etl-demo"])?;
    Ok(etl_tests::target_dir().join("debug").join("etl-demo"))
}

pub fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(etl_tests::workspace_root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
