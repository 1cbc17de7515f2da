//! Sharded runs on the command line: `etl-app coordinate` (hold the snapshot, publish the plan,
//! wait for the shards, publish the tables) and `etl-app run --shard-of NAME --shard I` (one
//! shard's share). The engine's part is `etl_runtime::run::shard`.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use etl_runtime::run::shard::{self, ShardArea, ShardOutcome, ShardPlan};
use etl_runtime::{Export, LocalDirSink, PgSource};

use crate::config::{Output, RunConfig};
use crate::report::RunReport;
use crate::signals::Stop;
use crate::{Failure, log};

/// How often the coordinator looks for finished shards, and a shard for the plan.
const POLL: Duration = Duration::from_millis(250);

/// How long a shard waits for its coordinator to publish the plan.
const PLAN_WAIT: Duration = Duration::from_secs(600);

fn output_dir(config: &RunConfig) -> Result<&std::path::Path, Failure> {
    match &config.output {
        Output::Local(dir) => Ok(dir),
        Output::S3(_) => Err(Failure::Usage(anyhow!(
            "a sharded run needs a directory output"
        ))),
    }
}

/// `etl-app coordinate`: returns the exit code.
pub async fn coordinate(
    config: &RunConfig,
    (run_name, shards, attempts, timeout): (&str, usize, usize, Duration),
    stop: &Stop,
    report: &mut RunReport,
) -> Result<u8, Failure> {
    let cancel = &config.export.cancel;
    let dir = output_dir(config)?;
    // Held until the end: the area goes when this does, and the next coordinator removes it
    // if this process dies.
    let claim = ShardArea::claim(dir, run_name)?;
    let area = &claim.area;
    let mut source = PgSource::connect(&config.database_url, &config.source).await?;
    let snapshot = source.export_snapshot().await?;
    report.started(run_name, &snapshot.taken_at);
    log::set_run_id(run_name);
    let plan = shard::plan(
        &source,
        run_name,
        shards,
        &config.exports,
        &config.export.read,
    )
    .await?;
    for table in &plan.tables {
        if let Some(reason) = &table.single_stream_reason {
            log::info(
                "table_not_split",
                Some(&table.name),
                format_args!("{}: one range, read by shard 0: {reason}", table.name),
            );
        }
    }
    area.write_plan(&plan)?;
    log::info(
        "run_started",
        None,
        format_args!(
            "sharded run {run_name}: {} table(s), {} ranges, snapshot of {} held; waiting for \
             {shards} shard(s): etl-app run --shard-of {run_name} --shard I --output {} \
             (I = 0..{})",
            plan.tables.len(),
            plan.tables.iter().map(|t| t.ranges.len()).sum::<usize>(),
            snapshot.taken_at,
            dir.display(),
            shards - 1
        ),
    );

    let deadline = Instant::now() + timeout;
    let outcomes = loop {
        if cancel.is_cancelled() {
            return Ok(stop.exit_code());
        }
        let mut outcomes = Vec::new();
        let mut missing = Vec::new();
        for index in 0..shards {
            if let Some(outcome) = area.read_done(index, &snapshot.id)? {
                outcomes.push(outcome);
                continue;
            }
            let failures = area.failures(index, &snapshot.id);
            if failures.len() >= attempts {
                return Err(Failure::Runtime(anyhow!(
                    "shard {index} failed {} time(s), nothing was published; its last error: {}",
                    failures.len(),
                    failures.last().map_or("unknown", String::as_str)
                )));
            }
            missing.push(index);
        }
        if missing.is_empty() {
            break outcomes;
        }
        if Instant::now() > deadline {
            return Err(Failure::Runtime(anyhow!(
                "shard(s) {missing:?} did not finish within {} s; nothing was published",
                timeout.as_secs()
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => {}
        }
    };

    let sink = LocalDirSink::new(dir, run_name)?;
    let mut failed = 0;
    let mut reports = Vec::new();
    for export in &config.exports {
        let result = shard::publish(
            &source,
            &sink,
            (area, &plan, &outcomes),
            export,
            &config.export,
        )
        .await;
        match crate::record_table(report, export, result) {
            Some(table) => reports.push(table),
            None => failed += 1,
        }
    }
    source.close().await;
    if log::human() {
        crate::progress::above_bars(|| crate::print_reports(&reports));
    }
    let code = u8::from(failed > 0);
    let document = report.document(code, stop.signal(), None);
    if let Err(e) = etl_runtime::sink::write_whole(
        &dir.join("_runs").join(format!("{run_name}.json")),
        &document,
    ) {
        log::error("report_not_written", None, etl_runtime::error::report(&e));
    }
    Ok(code)
}

/// `etl-app run --shard-of NAME --shard I`: returns the exit code. A failed attempt is recorded
/// in the run's area, where the coordinator counts it.
pub async fn run_shard(config: &RunConfig, run_name: &str, index: usize) -> Result<u8, Failure> {
    let cancel = &config.export.cancel;
    let dir = output_dir(config)?;
    let area = ShardArea::of(dir, run_name)?;
    log::set_run_id(run_name);
    let deadline = Instant::now() + PLAN_WAIT;
    let plan = loop {
        if let Some(plan) = area.read_plan()? {
            break plan;
        }
        if Instant::now() > deadline {
            return Err(Failure::Runtime(anyhow!(
                "no plan for run {run_name} in {} after {} s: is `etl-app coordinate \
                 --run-name {run_name}` running on the same output?",
                dir.display(),
                PLAN_WAIT.as_secs()
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => return Err(etl_runtime::Error::Cancelled.into()),
        }
    };
    if index >= plan.shards {
        return Err(Failure::Usage(anyhow!(
            "--shard {index}: run {run_name} has {} shards (0 to {})",
            plan.shards,
            plan.shards - 1
        )));
    }
    let result = read_share(config, &area, &plan, index).await;
    match result {
        Ok(outcome) => {
            area.write_done(&outcome)?;
            let rows: u64 = outcome.tables.iter().map(|t| t.rows).sum();
            log::info(
                "shard_finished",
                None,
                format_args!(
                    "shard {index} of {run_name}: {rows} rows in {} table(s) written; the \
                     coordinator publishes once every shard is done",
                    outcome.tables.len()
                ),
            );
            Ok(0)
        }
        Err(e) => {
            let message = etl_runtime::error::report(&e);
            if let Err(record) = area.write_failure(index, &plan.snapshot.id, &message) {
                log::error(
                    "shard_failure_not_recorded",
                    None,
                    etl_runtime::error::report(&record),
                );
            }
            Err(Failure::Runtime(anyhow!(
                "shard {index} of {run_name}: {message}"
            )))
        }
    }
}

async fn read_share(
    config: &RunConfig,
    area: &ShardArea,
    plan: &ShardPlan,
    index: usize,
) -> etl_runtime::Result<ShardOutcome> {
    let exports: Vec<&Export> = plan
        .tables
        .iter()
        .map(|table| {
            config
                .exports
                .iter()
                .find(|e| e.name() == table.name)
                .ok_or_else(|| etl_runtime::Error::ShardRun {
                    run: plan.run.clone(),
                    reason: format!("this binary has no model of {}", table.name),
                })
        })
        .collect::<Result<_, _>>()?;
    let mut source = PgSource::connect(&config.database_url, &config.source).await?;
    source.import_snapshot(plan.snapshot.clone());
    let mut tables = Vec::new();
    for export in exports {
        let table = shard::export_share(&source, area, plan, index, export, &config.export)
            .await
            .map_err(|e| snapshot_gone(e, &plan.run));
        match table {
            Ok(table) => tables.push(table),
            Err(e) => {
                source.close().await;
                return Err(e);
            }
        }
    }
    source.close().await;
    Ok(ShardOutcome {
        shard: index,
        snapshot: plan.snapshot.id.clone(),
        tables,
    })
}

/// PostgreSQL's "invalid snapshot identifier" means the coordinator (the snapshot's exporter)
/// is gone: say so.
fn snapshot_gone(e: etl_runtime::Error, run: &str) -> etl_runtime::Error {
    if etl_runtime::error::report(&e).contains("invalid snapshot identifier") {
        etl_runtime::Error::ShardRun {
            run: run.to_string(),
            reason: format!(
                "the coordinator's snapshot is gone (the coordinator stopped): {}",
                etl_runtime::error::report(&e)
            ),
        }
    } else {
        e
    }
}
