//! `cargo xtask ci`: everything CI checks, in the order that fails fastest. `.ci/run` runs
//! exactly this. Test tools (the Python readers) are installed on first use, cached outside
//! the clone.

use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::demo::{build_etl_demo, cargo, create_demo_database};

#[derive(Debug, Args)]
pub struct CiArgs {}

pub fn run(_args: CiArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let mut timings = Vec::new();
    let mut step = |name: &str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        eprintln!("\n== {name}");
        let t = Instant::now();
        let result = f();
        timings.push((name.to_string(), t.elapsed().as_secs_f64()));
        result.with_context(|| format!("step `{name}` failed"))
    };

    step(
        "install test tools (Python readers and moto, Spark and Java, Garage, Pushgateway)",
        &mut || {
            let python = etl_tests::python().map_err(anyhow::Error::msg)?;
            eprintln!("python readers: {}", python.display());
            let spark =
                etl_tests::python::venv(etl_tests::python::SPARK).map_err(anyhow::Error::msg)?;
            let java = etl_tests::python::java().map_err(anyhow::Error::msg)?;
            eprintln!("spark: {} (java {})", spark.display(), java.display());
            let garage = etl_tests::garage::garage_binary().map_err(anyhow::Error::msg)?;
            eprintln!("garage: {}", garage.display());
            let pushgateway =
                etl_tests::pushgateway::pushgateway_binary().map_err(anyhow::Error::msg)?;
            eprintln!("pushgateway: {}", pushgateway.display());
            Ok(())
        },
    )?;
    step("cargo fmt --check", &mut || {
        cargo(&["fmt", "--all", "--check"])
    })?;
    step("cargo clippy", &mut || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    // One cluster for the whole run: the tests share it through DATABASE_URL, each in a
    // database of its own.
    let server = etl_tests::server().map_err(anyhow::Error::msg)?;
    let url = server.url.clone();
    step("cargo test --workspace", &mut || {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["test", "--workspace", "--no-fail-fast"])
            .env("DATABASE_URL", &url)
            .current_dir(etl_tests::workspace_root())
            .status()?;
        if !status.success() {
            bail!("tests failed ({status})");
        }
        Ok(())
    })?;
    step(
        "interop: demo export read back by pyarrow and DuckDB",
        &mut || interop(&url),
    )?;
    step(
        "gen --check: the demo's committed models match the demo schema",
        &mut || {
            let args = crate::gen_models::GenArgs {
                table: None,
                all: false,
                schema: "public".into(),
                columns: Vec::new(),
                partition_by: None,
                cursor: None,
                database_url: etl_tests::with_database(&url, "etl_ci_interop"),
                models_dir: crate::gen_models::demo_models_dir(),
                check: true,
                remove: None,
            };
            let differences = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(crate::gen_models::check(&args))?;
            if differences > 0 {
                bail!(
                    "{differences} committed model(s) differ from xtask/sql/demo.sql: \
                 run `cargo xtask gen` against the demo database and commit"
                );
            }
            Ok(())
        },
    )?;
    server.stop();

    eprintln!("\n== timings");
    for (name, seconds) in &timings {
        eprintln!("{seconds:>8.1} s  {name}");
    }
    eprintln!("{:>8.1} s  total", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Exports the demo tables with the real binary and compares every value with PostgreSQL
/// through two independent readers.
fn interop(server_url: &str) -> Result<()> {
    let db_url = create_demo_database(server_url, "etl_ci_interop")?;
    let etl_app = build_etl_demo()?;
    let output = etl_tests::target_dir().join("ci-interop");
    let _ = std::fs::remove_dir_all(&output);
    let status = Command::new(&etl_app)
        .args(["run", "--output"])
        .arg(&output)
        .env("DATABASE_URL", &db_url)
        .status()?;
    if !status.success() {
        bail!("etl-app run failed ({status})");
    }
    let report = etl_tests::python::compare_with_postgres(
        &db_url,
        &output,
        "currencies,tax_rates,purchase_orders,notes,shipments",
    )
    .map_err(anyhow::Error::msg)?;
    print!("{report}");
    Ok(())
}
