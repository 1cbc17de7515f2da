//! `cargo xtask ci`: everything CI checks, in the order that fails fastest. `.ci/run` runs
//! exactly this. Test tools (the Python readers, Spark, Garage, the Pushgateway, nextest) are
//! installed on first use, cached outside the clone; Garage, the one that compiles for minutes,
//! builds while fmt and clippy run.
//!
//! The tests run under cargo-nextest, every test in a process of its own and the tests of both
//! test binaries side by side, against one PostgreSQL and one Garage node that this command
//! starts and hands down (`DATABASE_URL`, `ETL_TEST_GARAGE`): each test works in a database and
//! a bucket of its own. The end of the output gives each step's time and the slowest tests.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::demo::{build_etl_demo, cargo, create_demo_database};

/// The cargo-nextest that `cargo xtask ci` installs when the machine has none.
const NEXTEST_VERSION: &str = "0.9.143";

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

    eprintln!(
        "target directory: {} (CARGO_TARGET_DIR; .ci/run keeps it outside the clone)",
        etl_tests::target_dir().display()
    );
    // Garage compiles for minutes on a new machine: in the background, beside the steps that
    // do not need it.
    let mut garage_build = Some(std::thread::spawn(|| {
        let t = Instant::now();
        let binary = etl_tests::garage::garage_binary().map_err(anyhow::Error::msg);
        (binary, t.elapsed().as_secs_f64())
    }));
    let mut nextest = PathBuf::new();
    step(
        "install test tools (Python readers and moto, Spark and Java, Pushgateway, nextest)",
        &mut || {
            let python = etl_tests::python().map_err(anyhow::Error::msg)?;
            eprintln!("python readers: {}", python.display());
            let spark =
                etl_tests::python::venv(etl_tests::python::SPARK).map_err(anyhow::Error::msg)?;
            let java = etl_tests::python::java().map_err(anyhow::Error::msg)?;
            eprintln!("spark: {} (java {})", spark.display(), java.display());
            let pushgateway =
                etl_tests::pushgateway::pushgateway_binary().map_err(anyhow::Error::msg)?;
            eprintln!("pushgateway: {}", pushgateway.display());
            nextest = nextest_binary()?;
            eprintln!("nextest: {}", nextest.display());
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
    // The test binaries compile while Garage still may: on a new machine both take minutes,
    // and each leaves the other's idle moments (links, one crate at a time) to fill.
    step("build the tests (cargo nextest run --no-run)", &mut || {
        let status = nextest_run(&nextest)
            .arg("--no-run")
            .status()
            .with_context(|| format!("cannot run {}", nextest.display()))?;
        if !status.success() {
            bail!("the tests do not build ({status})");
        }
        Ok(())
    })?;
    step("build Garage (waited for)", &mut || {
        let (binary, seconds) = garage_build
            .take()
            .ok_or_else(|| anyhow::anyhow!("the Garage build was already waited for"))?
            .join()
            .map_err(|_| anyhow::anyhow!("the Garage build thread panicked"))?;
        eprintln!("garage: {} ({seconds:.0} s)", binary?.display());
        Ok(())
    })?;
    // One cluster and one Garage node for the whole run: the tests share them, each in a
    // database and a bucket of its own.
    let server = etl_tests::server().map_err(anyhow::Error::msg)?;
    let url = server.url.clone();
    let garage = etl_tests::garage::Garage::start().map_err(anyhow::Error::msg)?;
    step("tests (cargo nextest run --workspace)", &mut || {
        let status = nextest_run(&nextest)
            .env("DATABASE_URL", &url)
            .env(etl_tests::garage::SHARED_NODE_ENV, garage.handed_down())
            .status()
            .with_context(|| format!("cannot run {}", nextest.display()))?;
        // nextest keeps its store in the clone's target/, whatever CARGO_TARGET_DIR says.
        let junit = etl_tests::workspace_root().join("target/nextest/ci/junit.xml");
        slowest_tests(&junit, 12);
        if !status.success() {
            bail!("tests failed ({status})");
        }
        Ok(())
    })?;
    step("doc tests (cargo test --doc)", &mut || {
        cargo(&["test", "--workspace", "--doc", "--quiet"])
    })?;
    drop(garage);
    step(
        "interop: demo export read back by pyarrow and DuckDB",
        &mut || interop(&url),
    )?;
    step(
        "image: etl-demo's container image exports tables, read back by pyarrow and DuckDB",
        &mut || image_check(&url),
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
                mask: Vec::new(),
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

/// `nextest run` over the workspace with the `ci` profile (`.config/nextest.toml`).
fn nextest_run(nextest: &Path) -> Command {
    let mut command = Command::new(nextest);
    command
        .args(["nextest", "run", "--workspace", "--profile", "ci"])
        .current_dir(etl_tests::workspace_root());
    command
}

/// The `cargo-nextest` to run the tests with: the machine's (`cargo nextest` answers), or one
/// installed into the cache outside the clone.
fn nextest_binary() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let on_machine = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if on_machine {
        // `cargo nextest` is `cargo-nextest nextest`: run it through cargo, as a user would.
        return Ok(PathBuf::from(cargo));
    }
    let root = etl_tests::cache_dir().join(format!("nextest-{NEXTEST_VERSION}"));
    let binary = root.join("bin").join("cargo-nextest");
    if !binary.is_file() {
        eprintln!(
            "installing cargo-nextest {NEXTEST_VERSION} into {} (once)",
            root.display()
        );
        let status = Command::new(&cargo)
            .args([
                "install",
                "cargo-nextest",
                "--locked",
                "--version",
                NEXTEST_VERSION,
            ])
            .arg("--root")
            .arg(&root)
            .env(
                "CARGO_TARGET_DIR",
                etl_tests::cache_dir().join("nextest-build"),
            )
            .status()
            .context("cannot run cargo install cargo-nextest")?;
        if !status.success() {
            bail!("cargo install cargo-nextest {NEXTEST_VERSION} failed ({status})");
        }
        let _ = std::fs::remove_dir_all(etl_tests::cache_dir().join("nextest-build"));
    }
    Ok(binary)
}

/// Prints the `count` slowest tests of nextest's JUnit report (`<testcase name=.. time=..>`).
fn slowest_tests(junit: &Path, count: usize) {
    let Ok(xml) = std::fs::read_to_string(junit) else {
        eprintln!("no JUnit report at {}", junit.display());
        return;
    };
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = start + tag[start..].find('"')?;
        Some(tag[start..end].to_string())
    };
    let mut tests: Vec<(f64, String)> = xml
        .split("<testcase")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            let seconds = attribute(tag, "time")?.parse().ok()?;
            let class = attribute(tag, "classname").unwrap_or_default();
            Some((seconds, format!("{class} {}", attribute(tag, "name")?)))
        })
        .collect();
    let total: f64 = tests.iter().map(|(s, _)| s).sum();
    tests.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!(
        "\n== slowest tests ({} tests, {total:.0} s of test time in all; {})",
        tests.len(),
        junit.display()
    );
    for (seconds, name) in tests.iter().take(count) {
        eprintln!("{seconds:>8.1} s  {name}");
    }
}

/// Exports the demo tables with the real binary and compares every value with PostgreSQL
/// through two independent readers.
/// The image built as `cargo xtask image` builds it, run in a container against the interop
/// step's database: the tables it writes to a mounted directory read back equal.
fn image_check(server_url: &str) -> Result<()> {
    let image = crate::image::build("etl-demo", None)?;
    let db_url = etl_tests::with_database(server_url, "etl_ci_interop");
    let out = etl_tests::target_dir().join("ci-image-out");
    let _ = std::fs::remove_dir_all(&out);
    let output = crate::image::run_container(
        &image,
        &[
            "run",
            "--tables",
            "notes,purchase_orders,shipments",
            "--output",
            "/data/out",
        ],
        &[("DATABASE_URL", &db_url)],
        &out,
    )?;
    if !output.status.success() {
        bail!(
            "etl-demo's image failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report =
        etl_tests::python::compare_with_postgres(&db_url, &out, "notes,purchase_orders,shipments")
            .map_err(anyhow::Error::msg)?;
    print!("{report}");
    Ok(())
}

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
