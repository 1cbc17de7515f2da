//! The `etl-app` command line: `run`, `list`, `check` over a registry of exports.
//!
//! It is a library so that it is compiled once: the binary (`main.rs`) holds only the models
//! that `cargo xtask gen` writes and the tasks, so regenerating a model rebuilds those and
//! nothing else.

mod cli;
mod config;
mod log;
mod metrics;
mod progress;
mod report;
mod shards;
mod signals;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{CommandFactory, FromArgMatches};
use etl_runtime::run::registry::ExportKind;
use etl_runtime::sink::glue::GluePartitions;
use etl_runtime::sink::s3::S3Sink;
use etl_runtime::source::SourceOptions;
use etl_runtime::source::drift::Drift;
use etl_runtime::write::partition::Partition;
use etl_runtime::{Export, LocalDirSink, Registry, Sink, TableReport};
use futures_util::StreamExt;

use crate::cli::{CheckArgs, Cli, Command};
use crate::config::{Catalog, Output, RunConfig, ShardRole};
use crate::report::RunReport;
use crate::signals::Stop;

/// Whether the flag with clap id `id` of `subcommand` was written on the command line (not
/// taken from the environment or a default).
fn given_in<'a>(matches: &'a clap::ArgMatches, subcommand: &'a str) -> impl Fn(&str) -> bool + 'a {
    move |id: &str| {
        matches.subcommand_matches(subcommand).is_some_and(|args| {
            args.try_get_raw(id).is_ok()
                && args.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
    }
}

/// Runs a command that reads little (check, state) on a runtime of one thread.
fn on_one_thread(
    command: impl std::future::Future<Output = Result<ExitCode, Failure>>,
) -> Result<ExitCode, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::from)
        .and_then(|rt| rt.block_on(command))
}

fn run_blocking(config: RunConfig) -> Result<ExitCode, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::from)?;
    // The run is a task of the runtime rather than the main thread's `block_on`, so that the
    // worker that is woken by a socket also reads it: from the main thread, every wait for
    // PostgreSQL's next bytes was a wake-up handed from a worker to the main thread.
    rt.block_on(async move {
        tokio::spawn(run(config)).await.unwrap_or_else(|e| {
            Err(Failure::Runtime(anyhow!(
                "the run stopped unexpectedly: {e}"
            )))
        })
    })
}

/// Parses the command line and runs it over `registry`; the exit code is what schedulers see.
pub fn main(registry: Registry) -> ExitCode {
    use etl_runtime::memory::{Arenas, hold_freed_memory};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Before any thread starts; an unknown table is reported later, by the run's config.
    let writes_partitions = matches!(&cli.command, Command::Run(args) if registry
        .select(&args.tables)
        .is_ok_and(|exports| exports.iter().any(|e| !e.info.partition_by.is_empty())));
    hold_freed_memory(if writes_partitions {
        Arenas::PerThread
    } else {
        Arenas::One
    });
    log::init(cli.log_format);
    let result = match cli.command {
        Command::List(args) => {
            list(&registry, args.format);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            // Every flag and location is checked before the first connection.
            RunConfig::new(*args, given_in(&matches, "run"), &registry).and_then(run_blocking)
        }
        Command::Coordinate(args) => {
            RunConfig::coordinator(*args, given_in(&matches, "coordinate"), &registry)
                .and_then(run_blocking)
        }
        Command::Check(args) => {
            let url_given = given_in(&matches, "check")("database_url");
            on_one_thread(check(&registry, args, url_given))
        }
        Command::State(args) => on_one_thread(state(&registry, args)),
        Command::Compact(args) => on_one_thread(compact(&registry, args)),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            log::error("usage_error", None, format_args!("{e:#}"));
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            log::error("run_failed", None, format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Why a command failed, which decides the exit status schedulers see: 2 for a mistake in how
/// etl-app was called or configured (retrying will not help), 1 for a failure at run time
/// (database unreachable, a table failed).
enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

impl From<etl_runtime::Error> for Failure {
    fn from(e: etl_runtime::Error) -> Self {
        match e {
            etl_runtime::Error::UnknownExport { .. } => Failure::Usage(e.into()),
            e => Failure::Runtime(anyhow!(etl_runtime::error::report(&e))),
        }
    }
}

/// `etl-app state`: what each table's manifest says, without connecting to PostgreSQL.
async fn state(registry: &Registry, args: cli::StateArgs) -> Result<ExitCode, Failure> {
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
                    "deleted_rows": state.batches.iter().map(|b| b.deleted).sum::<u64>(),
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
                state.batches.iter().map(|b| b.deleted).sum::<u64>(),
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

/// `export`'s table compacted if it has at least `min_batches` batches.
async fn compact_one(
    sink: &dyn Sink,
    export: &Export,
    options: &etl_runtime::ExportOptions,
    min_batches: usize,
) -> etl_runtime::Result<Option<etl_runtime::run::compact::CompactReport>> {
    etl_runtime::run::compact::compact_table(
        sink,
        &export.info,
        (export.schema)(),
        options,
        min_batches,
    )
    .await
}

/// `etl-app compact`: each table's batches folded into a new full version.
async fn compact(registry: &Registry, args: cli::CompactArgs) -> Result<ExitCode, Failure> {
    let selected = registry.select(&args.tables)?;
    let exports: Vec<Export> = if args.tables.is_empty() {
        selected
            .into_iter()
            .filter(|e| e.kind == ExportKind::Table && e.info.cursor.is_some())
            .collect()
    } else {
        selected
    };
    let run_id = format!("compact-{}", std::process::id());
    let sink: Box<dyn Sink> = if args.output.starts_with("s3:") {
        let options = config::s3_options(&args.output, &args.s3)?;
        Box::new(S3Sink::new(options, &run_id).await?)
    } else {
        Box::new(
            LocalDirSink::new(&args.output, &run_id)?.keeping_versions(args.keep_versions as usize),
        )
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let options = etl_runtime::ExportOptions {
        converters: etl_runtime::run::export::Converters::new(threads)?,
        ..Default::default()
    };
    let mut failed = 0;
    for export in exports {
        let name = export.name();
        match compact_one(sink.as_ref(), &export, &options, 1).await {
            Ok(Some(done)) => log::info(
                "table_compacted",
                Some(&name),
                format_args!(
                    "{name}: {} batch(es) folded, {} current rows from {} versions, {:.2} s -> {}",
                    done.batches_folded, done.rows, done.versions_read, done.seconds, done.location
                ),
            ),
            Ok(None) => log::info(
                "table_compacted",
                Some(&name),
                format_args!("{name}: no batches to fold"),
            ),
            Err(e) => {
                failed += 1;
                log::error("table_failed", Some(&name), etl_runtime::error::report(&e));
            }
        }
    }
    Ok(ExitCode::from(u8::from(failed > 0)))
}

fn list(registry: &Registry, format: cli::Format) {
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

async fn check(
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

async fn run(config: RunConfig) -> Result<ExitCode, Failure> {
    let cancel = config.export.cancel.clone();
    let stop = signals::stop_on_signals(cancel.clone()).map_err(|e| {
        Failure::Runtime(anyhow!("cannot install the SIGTERM/SIGINT handlers: {e}"))
    })?;
    let mut report = RunReport::new(&config.output.location());
    let result = match &config.shard {
        None => export_all(&config, &stop, &mut report).await,
        Some(ShardRole::Coordinator {
            run_name,
            shards,
            attempts,
            timeout,
        }) => {
            shards::coordinate(
                &config,
                (run_name, *shards, *attempts, *timeout),
                &stop,
                &mut report,
            )
            .await
        }
        // A shard publishes nothing and reports nothing: its coordinator does.
        Some(ShardRole::Shard { run_name, index }) => {
            let result = shards::run_shard(&config, run_name, *index).await;
            let code = match &result {
                Ok(_) if config.export.cancel.is_cancelled() => stop.exit_code(),
                Ok(code) => *code,
                Err(Failure::Usage(_)) => 2,
                Err(Failure::Runtime(_)) if config.export.cancel.is_cancelled() => stop.exit_code(),
                Err(Failure::Runtime(_)) => 1,
            };
            return result.map(|_| ExitCode::from(code));
        }
    };
    let code = match &result {
        Ok(code) => *code,
        Err(Failure::Usage(_)) => 2,
        Err(Failure::Runtime(_)) => 1,
    };
    let table_metrics = report.metrics(&config.exports);
    if let Some(url) = &config.metrics.pushgateway
        && let Err(e) = metrics::push(url, &config.metrics.job, &table_metrics).await
    {
        log::error("metrics_not_pushed", None, format_args!("{e:#}"));
    }
    if let Some(path) = &config.metrics.file
        && let Err(e) = metrics::write_file(path, &config.metrics.job, &table_metrics)
    {
        log::error("metrics_not_written", None, format_args!("{e:#}"));
    }
    if let Some(path) = &config.report {
        let error = match &result {
            Err(Failure::Usage(e) | Failure::Runtime(e)) => Some(format!("{e:#}")),
            Ok(_) => None,
        };
        let document = report.document(code, stop.signal(), error);
        if let Err(e) = etl_runtime::sink::write_whole(path, &document) {
            log::error("report_not_written", None, etl_runtime::error::report(&e));
        }
    }
    result.map(ExitCode::from)
}

/// Exports every table of `config` on one snapshot; returns the exit code. The report collects
/// each table's outcome and goes beside the data once the run is over.
async fn export_all(
    config: &RunConfig,
    stop: &Stop,
    report: &mut RunReport,
) -> Result<u8, Failure> {
    let started = Instant::now();
    let cancel = &config.export.cancel;
    let connect = async {
        let mut source = config.database.connect(&config.source).await?;
        let snapshot = source.export_snapshot().await?;
        Ok::<_, etl_runtime::Error>((source, snapshot))
    };
    let (source, snapshot) = tokio::select! {
        connected = connect => connected?,
        () = cancel.cancelled() => return Ok(stop.exit_code()),
    };
    let run_id = format!(
        "{}-{}",
        snapshot.taken_at.replace([':', '.'], ""),
        std::process::id()
    );
    report.started(&run_id, &snapshot.taken_at);
    log::set_run_id(&run_id);
    let sink: Box<dyn Sink> = match &config.output {
        Output::S3(options) => Box::new(
            S3Sink::new(options.clone(), &run_id)
                .await?
                .with_cancel(cancel.clone()),
        ),
        Output::Local { dir, keep_versions } => {
            Box::new(LocalDirSink::new(dir, &run_id)?.keeping_versions(*keep_versions))
        }
    };
    log::info(
        "run_started",
        None,
        format_args!(
            "exporting {} table(s) from {} (snapshot of {}) to {}",
            config.exports.len(),
            source.display_url(),
            snapshot.taken_at,
            sink.location()
        ),
    );

    let source_ref = &source;
    let sink_ref: &dyn Sink = sink.as_ref();
    let options_ref = &config.export;
    let results: Vec<(Export, etl_runtime::Result<TableReport>)> =
        futures_util::stream::iter(config.exports.iter().copied())
            .map(|export| async move {
                if options_ref.cancel.is_cancelled() {
                    return (export, Err(etl_runtime::Error::Cancelled));
                }
                let name = export.name();
                if !progress::drawing() {
                    log::info("table_started", Some(&name), format_args!("  {name} ..."));
                }
                let mut result = export.run(source_ref, sink_ref, options_ref).await;
                if let (Ok(table), Some(after)) = (&mut result, config.compact_after)
                    && table
                        .incremental
                        .as_ref()
                        .is_some_and(|i| i.batch.is_some())
                {
                    match compact_one(sink_ref, &export, options_ref, after).await {
                        Ok(Some(compacted)) => {
                            // Readers (and the catalog) now find the table where the
                            // compacted version is.
                            table.location = compacted.location.clone();
                            table.partitions = compacted.partitions.clone();
                            table.warnings.push(format!(
                                "compacted after its batch: {} current rows from {} versions",
                                compacted.rows, compacted.versions_read
                            ));
                        }
                        Ok(None) => {}
                        Err(e) => result = Err(e),
                    }
                }
                (export, result)
            })
            .buffered(config.parallel_tables)
            .collect()
            .await;
    // A server that stopped answering does not hold up the end of a cancelled run.
    if cancel.is_cancelled() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), source.close()).await;
    } else {
        source.close().await;
    }

    let mut failed = 0;
    let mut reports = Vec::new();
    let mut published = Vec::new();
    for (export, result) in results {
        match record_table(report, &export, result) {
            Some(table) => {
                published.push((export, table.location.clone(), table.partitions.clone()));
                reports.push(table);
            }
            None => failed += 1,
        }
    }
    if log::human() {
        progress::above_bars(|| print_reports(&reports));
    }
    log::info(
        "run_summary",
        None,
        format_args!(
            "{} table(s) exported, {failed} failed, in {:.2} s",
            reports.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    let code = if cancel.is_cancelled() {
        log::info(
            "run_stopped",
            None,
            format_args!(
                "the run was stopped by {}: nothing more was published",
                stop.name()
            ),
        );
        stop.exit_code()
    } else {
        catalog_then_exit_code(config, report, failed, &published).await
    };
    leave_run_report(
        sink.as_ref(),
        &run_id,
        report.document(code, stop.signal(), None),
    )
    .await;
    Ok(code)
}

/// Beside the data, for whoever reads the output: how the run that wrote it ended
/// (`_runs/<run id>.json`).
async fn leave_run_report(sink: &dyn Sink, run_id: &str, document: Vec<u8>) {
    match sink
        .put_file(&format!("_runs/{run_id}.json"), document)
        .await
    {
        Ok(location) => log::info("run_finished", None, format_args!("run report: {location}")),
        Err(e) => log::error("report_not_written", None, etl_runtime::error::report(&e)),
    }
}

/// One table's outcome into the run report and the log; the table's report if it was
/// published.
fn record_table(
    report: &mut RunReport,
    export: &Export,
    result: etl_runtime::Result<TableReport>,
) -> Option<TableReport> {
    report.table(export, &result);
    match result {
        Ok(table) => {
            log::table_published(
                &table.table,
                table.rows,
                table.bytes,
                table.seconds,
                &table.location,
            );
            Some(table)
        }
        Err(e) => {
            // Every error of a table's export names the table (or task).
            let name = export.name();
            log::error("table_failed", Some(&name), etl_runtime::error::report(&e));
            None
        }
    }
}

/// Updates the Glue catalog (if the run has one) once every table is published, and returns
/// the run's exit code: 1 if a table failed (the catalog is then left as it was) or the
/// catalog could not be updated.
async fn catalog_then_exit_code(
    config: &RunConfig,
    report: &mut RunReport,
    failed: usize,
    published: &[(Export, String, Vec<Partition>)],
) -> u8 {
    let catalog = !config.catalog.is_empty();
    if catalog && failed > 0 {
        log::info(
            "catalog_skipped",
            None,
            format_args!("the Glue catalog was not updated, because {failed} table(s) failed"),
        );
        1
    } else if catalog && let Err(e) = update_catalog(&config.catalog, published).await {
        log::error("catalog_failed", None, etl_runtime::error::report(&e));
        report.catalog_error(&e);
        1
    } else {
        u8::from(failed > 0)
    }
}

/// Glue, once every table of the run is uploaded: definitions and/or a crawl.
async fn update_catalog(
    catalog: &Catalog,
    published: &[(Export, String, Vec<Partition>)],
) -> etl_runtime::Result<()> {
    let client = etl_runtime::sink::glue::client().await;
    if let Some(database) = &catalog.database {
        for (export, location, partitions) in published {
            // Glue and Athena want lower-case names without dots.
            let name = export.name().to_lowercase().replace('.', "_");
            let partitioning = (!export.info.partition_by.is_empty()).then_some(GluePartitions {
                keys: export.info.partition_by,
                partitions,
                discovery: catalog.partitions,
            });
            let warnings = etl_runtime::sink::glue::put_table(
                &client,
                database,
                &name,
                location,
                &export.files_schema(),
                partitioning,
            )
            .await?;
            for warning in warnings {
                log::info(
                    "catalog_warning",
                    Some(&export.name()),
                    format_args!("warning: glue: {database}.{name}: {warning}"),
                );
            }
            log::info(
                "catalog_table",
                Some(&export.name()),
                format_args!("glue: {database}.{name} -> {location}"),
            );
        }
    }
    if let Some(crawler) = &catalog.crawler {
        // The tables' own prefixes, the same every run (a crawler's targets are not switched
        // from version to version); the crawler sees the kept versions as a `v` partition.
        let paths: Vec<String> = published
            .iter()
            .map(|(_, location, _)| format!("{}/", etl_runtime::sink::s3::table_root(location)))
            .collect();
        let wait = catalog.wait;
        let outcome = etl_runtime::sink::glue::run_crawler(&client, crawler, &paths, wait).await?;
        log::info(
            "catalog_crawler",
            None,
            format_args!(
                "glue: crawler {crawler} {}{}",
                if wait.is_some() {
                    "finished: "
                } else {
                    "started"
                },
                outcome.last_crawl.unwrap_or_default()
            ),
        );
    }
    Ok(())
}

fn print_reports(reports: &[TableReport]) {
    if reports.is_empty() {
        return;
    }
    println!(
        "{:<28} {:>10} {:>12} {:>8}  path",
        "table", "rows", "bytes", "seconds"
    );
    for report in reports {
        let files = if report.partitions.is_empty() {
            report
                .files
                .iter()
                .map(|f| format!("{}/{f}", report.location))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!(
                "{}/ ({} partitions, {} files)",
                report.location,
                report.partitions.len(),
                report.files.len()
            )
        };
        println!(
            "{:<28} {:>10} {:>12} {:>8.2}  {files}",
            report.table, report.rows, report.bytes, report.seconds
        );
        if report.skipped_rows > 0 {
            println!(
                "{:<28} {:>10} source rows skipped (the task skips bad rows)",
                "", report.skipped_rows
            );
        }
        if let Some(incremental) = &report.incremental {
            println!("{:<28} {}", "", incremental.describe());
        }
    }
}
