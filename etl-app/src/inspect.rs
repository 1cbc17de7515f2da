//! The commands that look and tell: `list` (the registered exports), `check` (each model
//! against its live table) and `state` (each table's published state), as a table for people
//! or one JSON document (`--format json`).

use std::process::ExitCode;

use anyhow::Context;
use etl_runtime::run::registry::ExportKind;
use etl_runtime::sink::s3::S3Sink;
use etl_runtime::source::SourceOptions;
use etl_runtime::source::drift::Drift;
use etl_runtime::{LocalDirSink, Registry, Sink};

use crate::cli::{self, CheckArgs};
use crate::{Failure, config};

/// `etl-app state`: what each table's manifest says, without connecting to PostgreSQL.
pub(crate) async fn state(registry: &Registry, args: cli::StateArgs) -> Result<ExitCode, Failure> {
    use etl_runtime::run::incremental::{TableState, render_micros};
    let exports = registry.select(&args.tables)?;
    // A local output is read where it is: `state` writes nothing there (no staging, no lock).
    let s3: Option<Box<dyn Sink>> = if args.output.starts_with("s3:") {
        let options = config::s3_options(&args.output, &args.s3)?;
        Some(Box::new(
            S3Sink::new(options, &format!("state-{}", std::process::id())).await?,
        ))
    } else {
        None
    };
    let json = args.format == cli::Format::Json;
    if !json {
        println!(
            "{:<28} {:<28} {:<40} {:>7} {:>10} {:>8} {:>6}",
            "table", "version", "next run from", "batches", "rows", "deleted", "files"
        );
    }
    let mut tables = Vec::new();
    for export in exports {
        let dir = etl_runtime::run::export::table_dir(&export.info);
        let manifest = match &s3 {
            Some(sink) => sink.current_manifest(&dir).await?,
            None => LocalDirSink::read_manifest(std::path::Path::new(&args.output), &dir)?,
        };
        let Some(manifest) = manifest else {
            if json {
                tables.push(serde_json::json!({ "table": export.name(), "exported": false }));
            } else {
                println!("{:<28} (not exported yet)", export.name());
            }
            continue;
        };
        let rows = manifest.rows;
        let files = manifest.files.len();
        let state = TableState::from_manifest(&manifest);
        if json {
            let mut table = serde_json::json!({
                "table": export.name(),
                "exported": true,
                "snapshot_taken_at": manifest.snapshot_taken_at,
                "rows": rows,
                "files": files,
                "location": manifest.location,
            });
            if let Some(state) = &state {
                table["incremental"] = serde_json::json!({
                    "version": state.version,
                    "next_run_from": render_micros(state.watermark.micros),
                    "next_run_from_because": state.watermark.from,
                    "batches": state.batches.len(),
                    "deleted_rows": state.deleted(),
                });
            }
            tables.push(table);
            continue;
        }
        match state {
            // Rows counts every version in the files; deleted, the deletions among them.
            Some(state) => println!(
                "{:<28} {:<28} {:<40} {:>7} {:>10} {:>8} {:>6}",
                export.name(),
                state.version,
                format!(
                    "{} ({})",
                    render_micros(state.watermark.micros),
                    state.watermark.from
                ),
                state.batches.len(),
                rows,
                state.deleted(),
                files
            ),
            None => println!(
                "{:<28} {:<28} {:<40} {:>7} {:>10} {:>8} {:>6}",
                export.name(),
                manifest.snapshot_taken_at.as_deref().unwrap_or("-"),
                "(full exports: no cursor)",
                "-",
                rows,
                "-",
                files
            ),
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(tables));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn list(registry: &Registry, format: cli::Format) {
    if format == cli::Format::Json {
        let exports: Vec<serde_json::Value> = registry
            .all()
            .iter()
            .map(|export| {
                serde_json::json!({
                    "name": export.name(),
                    "kind": export.kind.to_string(),
                    "columns": export.info.columns.iter().map(|c| c.name).collect::<Vec<_>>(),
                    "primary_key": export.info.primary_key,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(exports));
        return;
    }
    if registry.all().is_empty() {
        println!("{}", config::NO_MODELS);
        return;
    }
    println!("{:<32} {:<6} {:>7}  primary key", "name", "kind", "columns");
    for export in registry.all() {
        let key = if export.info.primary_key.is_empty() {
            "(none)".to_string()
        } else {
            export.info.primary_key.join(", ")
        };
        println!(
            "{:<32} {:<6} {:>7}  {key}",
            export.name(),
            export.kind,
            export.info.columns.len()
        );
    }
}

pub(crate) async fn check(
    registry: &Registry,
    args: CheckArgs,
    url_on_command_line: bool,
) -> Result<ExitCode, Failure> {
    let database = config::checked_database_url(&args.database, url_on_command_line)?;
    config::require_exports(registry)?;
    let exports = registry.select(&args.tables)?;
    let source = database.connect(&SourceOptions::default()).await?;
    let json = args.format == cli::Format::Json;
    let mut differences = 0;
    let mut tables = Vec::new();
    for export in &exports {
        if export.kind == ExportKind::Task {
            // A task's source table is registered (and checked) as a table of its own.
            continue;
        }
        let mut tx = source.begin_read().await?;
        let drift = etl_runtime::source::drift::check_table(&mut tx, &export.info)
            .await
            .with_context(|| format!("cannot read the schema of {}", export.name()))?;
        if json {
            differences += drift.len();
            tables.push(serde_json::json!({
                "table": export.name(),
                "matches": drift.is_empty(),
                "differences": drift.iter().map(|change| serde_json::json!({
                    "difference": change.to_string(),
                    "breaks_the_export": change.is_breaking() || *change == Drift::TableMissing,
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        if drift.is_empty() {
            println!("{}: matches its model", export.name());
        }
        for change in &drift {
            differences += 1;
            let severity = if *change == Drift::TableMissing {
                format!(
                    "breaks the export; if it was dropped, remove its model: cargo xtask gen --remove {}",
                    export.name()
                )
            } else if change.is_breaking() {
                "breaks the export".to_string()
            } else {
                "note".to_string()
            };
            println!("{}: {change} ({severity})", export.name());
        }
    }
    source.close().await;
    if json {
        println!(
            "{}",
            serde_json::json!({ "tables": tables, "differences": differences })
        );
    } else if differences > 0 {
        eprintln!(
            "{differences} difference(s); regenerate the models with `cargo xtask gen --table NAME`"
        );
    }
    Ok(ExitCode::from(u8::from(differences > 0)))
}
