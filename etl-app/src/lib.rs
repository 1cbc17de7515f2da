//! The `etl-app` command line: `run`, `list`, `check` over a registry of exports.
//!
//! It is a library so that it is compiled once: the binary (`main.rs`) holds only the models
//! that `cargo xtask gen` writes and the tasks, so regenerating a model rebuilds those and
//! nothing else.

mod catalog;
mod cli;
mod compact;
mod config;
mod inspect;
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
use etl_runtime::sink::s3::S3Sink;
use etl_runtime::{Export, LocalDirSink, Registry, Sink, TableReport};
use futures_util::StreamExt;

use crate::cli::{Cli, Command};
use crate::config::{Output, RunConfig, ShardRole};
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
            inspect::list(&registry, args.format);
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
        Command::Shard(args) => {
            RunConfig::shard(*args, given_in(&matches, "shard"), &registry).and_then(run_blocking)
        }
        Command::Check(args) => {
            let url_given = given_in(&matches, "check")("database_url");
            on_one_thread(inspect::check(&registry, args, url_given))
        }
        Command::State(args) => on_one_thread(inspect::state(&registry, args)),
        Command::Compact(args) => on_one_thread(compact::compact(&registry, args)),
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
                    match compact::compact_one(sink_ref, &export, options_ref, after).await {
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
        catalog::catalog_then_exit_code(config, report, failed, &published).await
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
