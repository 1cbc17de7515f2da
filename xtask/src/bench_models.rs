//! `cargo xtask bench --models N`: what each generated model costs in build time.
//!
//! Copies etl-app into a scratch workspace under `target/bench-models/`, adds N copies of the
//! benchmark table's model (`purchase_orders`, 16 columns of every common type) beside the
//! demo's, and times what a user waits for after regenerating one model: an incremental build
//! of the binary, release and debug, after one model file changed. The same is timed with no
//! extra model, so the difference divided by N is the cost of one model. The scratch build
//! shares the workspace's target directory (its binary has another name), so dependencies are
//! built once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::gen_models::write_registry;

/// The scratch package's name, so that its binary does not replace etl-app's.
const PACKAGE: &str = "etl-app-bench-models";

/// Incremental build times of the scratch binary after one model changed.
#[derive(Debug, Clone, Copy)]
struct Timings {
    release: f64,
    debug: f64,
}

pub fn run(models: usize) -> Result<()> {
    let root = etl_tests::workspace_root();
    let scratch = etl_tests::target_dir().join("bench-models");
    let base = measure(&root, &scratch, 0)?;
    let with = measure(&root, &scratch, models)?;
    let per_model = |a: f64, b: f64| (b - a) / models.max(1) as f64;
    println!(
        "\nincremental build of etl-app after one model file changed (purchase_orders + N models)"
    );
    println!("| extra models | release (s) | debug (s) |\n|---|---|---|");
    println!("| 0 | {:.1} | {:.1} |", base.release, base.debug);
    println!("| {models} | {:.1} | {:.1} |", with.release, with.debug);
    println!(
        "| per model | {:.2} | {:.2} |",
        per_model(base.release, with.release),
        per_model(base.debug, with.debug)
    );
    Ok(())
}

/// Lays out the scratch workspace with `models` extra models, builds it once, then times an
/// incremental build after touching one model, release then debug.
fn measure(root: &Path, scratch: &Path, models: usize) -> Result<Timings> {
    let app = scratch.join("etl-app");
    let _ = fs::remove_dir_all(&app);
    copy_dir(&root.join("etl-app/src"), &app.join("src"))?;
    copy_dir(&root.join("etl-app/demo"), &app.join("demo"))?;
    let manifest = fs::read_to_string(root.join("etl-app/Cargo.toml"))?;
    let manifest = manifest
        .replace("name = \"etl-app\"", &format!("name = \"{PACKAGE}\""))
        .split("[dev-dependencies]")
        .next()
        .unwrap_or_default()
        .to_string();
    fs::write(app.join("Cargo.toml"), manifest)?;
    fs::write(scratch.join("Cargo.toml"), workspace_manifest(root)?)?;
    fs::copy(root.join("Cargo.lock"), scratch.join("Cargo.lock"))?;

    // etl-app's own models: the demo's purchase_orders and `models` copies of it.
    let models_dir = app.join("src/models");
    let template = fs::read_to_string(app.join("demo/models/purchase_orders.rs"))?;
    fs::write(models_dir.join("purchase_orders.rs"), &template)?;
    for i in 0..models {
        let model = template
            .replace(
                "table = \"purchase_orders\"",
                &format!("table = \"purchase_orders_{i}\""),
            )
            .replace(
                "struct PurchaseOrder ",
                &format!("struct PurchaseOrder{i} "),
            );
        fs::write(models_dir.join(format!("bench_model_{i}.rs")), model)?;
    }
    write_registry(&models_dir)?;

    let touched = models_dir.join("purchase_orders.rs");
    let mut timings = Timings {
        release: 0.0,
        debug: 0.0,
    };
    for (release, slot) in [(true, &mut timings.release), (false, &mut timings.debug)] {
        build(scratch, release)?;
        // What regenerating one model does to the build: one file of the crate changes.
        let mut text = fs::read_to_string(&touched)?;
        text.push_str(&format!("// touched {}\n", std::process::id()));
        fs::write(&touched, text)?;
        let started = Instant::now();
        build(scratch, release)?;
        *slot = started.elapsed().as_secs_f64();
        eprintln!(
            "{models} extra models, {}: {:.1} s",
            if release { "release" } else { "debug" },
            *slot
        );
    }
    Ok(timings)
}

fn build(scratch: &Path, release: bool) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--quiet", "-p", PACKAGE])
        .env("CARGO_TARGET_DIR", etl_tests::target_dir())
        .current_dir(scratch);
    if release {
        command.arg("--release");
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!(
            "building the scratch workspace {} failed",
            scratch.display()
        );
    }
    Ok(())
}

/// The workspace's manifest with the scratch package as its only member and the path
/// dependencies pointing back at the real crates.
fn workspace_manifest(root: &Path) -> Result<String> {
    let text = fs::read_to_string(root.join("Cargo.toml"))?;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("members") {
            out.push_str("members = [\"etl-app\"]\n");
        } else if line.starts_with("default-members") {
            continue;
        } else if let Some(rest) = line.split_once("{ path = \"") {
            let (name, path) = rest;
            out.push_str(&format!("{name}{{ path = \"{}/{path}\n", root.display()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
