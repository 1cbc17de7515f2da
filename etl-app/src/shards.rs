//! Sharded runs on the command line: `etl-app coordinate` (hold the snapshot, publish the plan,
//! wait for the shards, publish the tables) and `etl-app shard --run-name NAME --shard I` (one
//! shard's share). The engine's part is `etl_runtime::run::shard`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use etl_runtime::run::shard::{self, CoordinatorClaim, ShardArea, ShardOutcome, ShardPlan};
use etl_runtime::sink::s3::S3Sink;
use etl_runtime::{Export, LocalDirSink, PgSource, Sink};

use crate::config::{Output, RunConfig};
use crate::report::RunReport;
use crate::signals::Stop;
use crate::{Failure, log};

/// The first wait of the coordinator for finished shards, and of a shard for the plan.
const POLL: Duration = Duration::from_millis(250);

/// Waits that double from [`POLL`] up to a ceiling: a plan published or a shard finished
/// soon after is seen soon, and a long wait costs few requests (each one billed on S3, where
/// shards wait for their coordinator's pod and run for minutes or hours).
struct Backoff {
    next: Duration,
    ceiling: Duration,
}

impl Backoff {
    /// The coordinator's wait for outcomes (one listing each time), or a shard's for the plan
    /// (one GET): longer between S3 requests than between reads of a shared directory.
    fn new(output: &Output, waiting_for_plan: bool) -> Self {
        Self::with_ceiling(matches!(output, Output::S3(_)), waiting_for_plan)
    }

    fn with_ceiling(object_store: bool, waiting_for_plan: bool) -> Self {
        let ceiling = match (object_store, waiting_for_plan) {
            (false, _) => Duration::from_secs(1),
            (true, false) => Duration::from_secs(2),
            (true, true) => Duration::from_secs(5),
        };
        Self {
            next: POLL,
            ceiling,
        }
    }

    fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        wait
    }
}

/// How long a shard waits for its coordinator to publish the plan.
const PLAN_WAIT: Duration = Duration::from_secs(600);

/// The sharded run's area and the sink that publishes: a directory every pod mounts, or S3.
/// The coordinator's S3 sink writes the version the shards upload into.
async fn coordinator_area(
    config: &RunConfig,
    run_name: &str,
    version: &str,
) -> Result<(CoordinatorClaim, Arc<dyn Sink>), Failure> {
    Ok(match &config.output {
        Output::Local { dir, keep_versions } => (
            ShardArea::claim(dir, run_name)?,
            Arc::new(LocalDirSink::new(dir, run_name)?.keeping_versions(*keep_versions)),
        ),
        Output::S3(options) => {
            let s3 = Arc::new(
                S3Sink::new(options.clone(), version)
                    .await?
                    .with_cancel(config.export.cancel.clone()),
            );
            let claim =
                ShardArea::claim_objects(s3.clone(), run_name, &options.staging_dir).await?;
            (claim, s3)
        }
    })
}

/// `etl-app coordinate`: returns the exit code.
pub async fn coordinate(
    config: &RunConfig,
    (run_name, shards, attempts, timeout): (&str, usize, usize, Duration),
    stop: &Stop,
    report: &mut RunReport,
) -> Result<u8, Failure> {
    let mut source = config.database.connect(&config.source).await?;
    let snapshot = source.export_snapshot().await?;
    // Held until the end: the area goes when this does (and, in a directory, the next
    // coordinator removes it if this process dies).
    let (claim, sink) =
        coordinator_area(config, run_name, &shard::version_of(&snapshot, run_name)).await?;
    let result = coordinate_on(
        config,
        (run_name, shards, attempts, timeout),
        (source, &snapshot),
        (&claim.area, sink.as_ref()),
        stop,
        report,
    )
    .await;
    // Whatever the outcome: the plan and the shards' outcomes are of no more use.
    if let Err(e) = claim.area.remove().await {
        log::error("area_not_removed", None, etl_runtime::error::report(&e));
    }
    result
}

async fn coordinate_on(
    config: &RunConfig,
    (run_name, shards, attempts, timeout): (&str, usize, usize, Duration),
    (source, snapshot): (PgSource, &etl_runtime::source::Snapshot),
    (area, sink): (&ShardArea, &dyn Sink),
    stop: &Stop,
    report: &mut RunReport,
) -> Result<u8, Failure> {
    let cancel = &config.export.cancel;
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
    area.write_plan(&plan).await?;
    log::info(
        "run_started",
        None,
        format_args!(
            "sharded run {run_name}: {} table(s), {} ranges, snapshot of {} held; waiting for \
             {shards} shard(s): etl-app shard --run-name {run_name} --shard I --output {} \
             (I = 0..{})",
            plan.tables.len(),
            plan.tables.iter().map(|t| t.ranges.len()).sum::<usize>(),
            snapshot.taken_at,
            config.output.location(),
            shards - 1
        ),
    );

    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::new(&config.output, false);
    let mut outcomes: Vec<Option<ShardOutcome>> = (0..shards).map(|_| None).collect();
    let outcomes: Vec<ShardOutcome> = loop {
        if cancel.is_cancelled() {
            return Ok(stop.exit_code());
        }
        let failed = area.poll(&snapshot.id, &mut outcomes, attempts).await?;
        if let Some((index, errors)) = failed.first() {
            return Err(Failure::Runtime(anyhow!(
                "shard {index} failed {} time(s), nothing was published; its last error: {}",
                errors.len(),
                errors.last().map_or("unknown", String::as_str)
            )));
        }
        let missing: Vec<usize> = (0..shards).filter(|&i| outcomes[i].is_none()).collect();
        if missing.is_empty() {
            break outcomes.into_iter().flatten().collect();
        }
        if Instant::now() > deadline {
            return Err(Failure::Runtime(anyhow!(
                "shard(s) {missing:?} did not finish within {} s; nothing was published",
                timeout.as_secs()
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_wait()) => {}
            () = cancel.cancelled() => {}
        }
    };

    let mut failed = 0;
    let mut reports = Vec::new();
    let mut published = Vec::new();
    for export in &config.exports {
        let result = shard::publish(
            &source,
            sink,
            (area, &plan, &outcomes),
            export,
            &config.export,
        )
        .await;
        match crate::record_table(report, export, result) {
            Some(table) => {
                published.push((*export, table.location.clone(), table.partitions.clone()));
                reports.push(table);
            }
            None => failed += 1,
        }
    }
    source.close().await;
    if log::human() {
        crate::progress::above_bars(|| crate::print_reports(&reports));
    }
    let code = crate::catalog::catalog_then_exit_code(config, report, failed, &published).await;
    crate::leave_run_report(sink, run_name, report.document(code, stop.signal(), None)).await;
    Ok(code)
}

/// `etl-app shard --run-name NAME --shard I`: returns the exit code. A failed attempt is recorded
/// in the run's area, where the coordinator counts it.
pub async fn run_shard(config: &RunConfig, run_name: &str, index: usize) -> Result<u8, Failure> {
    let cancel = &config.export.cancel;
    let area = match &config.output {
        Output::Local { dir, .. } => ShardArea::in_dir(dir, run_name)?,
        Output::S3(options) => {
            // Its own sink, for its uploads and the run's area; the coordinator's publishes.
            let s3 = S3Sink::new(
                options.clone(),
                &format!("{run_name}-shard-{index}-{}", std::process::id()),
            )
            .await?
            .with_cancel(cancel.clone());
            ShardArea::in_objects(Arc::new(s3), run_name, &options.staging_dir)?
        }
    };
    log::set_run_id(run_name);
    let deadline = Instant::now() + PLAN_WAIT;
    let mut backoff = Backoff::new(&config.output, true);
    let plan = loop {
        if let Some(plan) = area.read_plan().await? {
            break plan;
        }
        if Instant::now() > deadline {
            return Err(Failure::Runtime(anyhow!(
                "no plan for run {run_name} in {} after {} s: is `etl-app coordinate \
                 --run-name {run_name}` running on the same output?",
                config.output.location(),
                PLAN_WAIT.as_secs()
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_wait()) => {}
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
            area.write_done(&outcome).await?;
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
            if let Err(record) = area.write_failure(index, &plan.snapshot.id, &message).await {
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
    let mut source = config.database.connect(&config.source).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten minutes of waiting for a plan on S3 cost ~125 GETs, not 2,400; the first waits
    /// stay short.
    #[test]
    fn waits_double_up_to_their_ceiling() {
        let mut plan = Backoff::with_ceiling(true, true);
        let waits: Vec<u128> = (0..7).map(|_| plan.next_wait().as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        let mut outcomes = Backoff::with_ceiling(true, false);
        let waits: Vec<u128> = (0..5).map(|_| outcomes.next_wait().as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000]);
        let (mut polls, mut waited) = (0, Duration::ZERO);
        while waited < PLAN_WAIT {
            waited += plan.next_wait();
            polls += 1;
        }
        assert!(polls < 130, "{polls} GETs in {PLAN_WAIT:?}");
    }
}
