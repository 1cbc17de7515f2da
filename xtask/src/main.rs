//! `cargo xtask <command>`: the project's own tooling, in Rust (the rust-analyzer pattern).
//! Each command lives in its own module; this file only dispatches.

use std::process::ExitCode;

use xtask::{bench, ci, demo, gen_models, image};

use clap::{Parser, Subcommand};

/// Tooling for the ETL workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate annotated models in etl-app/src/models/ from live tables.
    Gen(gen_models::GenArgs),
    /// Fill a throwaway PostgreSQL with demo tables and export them with etl-app.
    Demo(demo::DemoArgs),
    /// Everything CI checks: install test tools, fmt, clippy, tests, interop with pyarrow/DuckDB.
    Ci(ci::CiArgs),
    /// Time etl-app against COPY BINARY (and pg2parquet when installed) on purchase_orders;
    /// with `--models N`, time the build with N generated models instead.
    Bench(bench::BenchArgs),
    /// Build the container image of etl-app from Debian's packages (an OCI layout, and its
    /// root filesystem), without pulling a base image.
    Image(image::ImageArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(args) => gen_models::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Ci(args) => ci::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Image(args) => image::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
