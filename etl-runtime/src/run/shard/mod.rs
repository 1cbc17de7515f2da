//! Sharded runs: one snapshot read by K processes on K machines (a Kubernetes Indexed Job's
//! pods), each taking its share of every table's block ranges; a coordinator holds the
//! snapshot, publishes the plan, and publishes the tables once every shard's files are in.
//!
//! Everything goes through the output, a directory every process sees (a shared volume):
//! `<output>/.etl-shards/<run>/` holds `plan.json` (written by the coordinator), each shard's
//! files under `tables/<table>/shard-NNNNN/`, and `shard-NNNNN.done.json` or
//! `shard-NNNNN.failed-A.json` per shard. The coordinator holds `<run>.lock` beside it while it
//! lives; an area nobody holds is a dead coordinator's and the next coordinator removes it.
//!
//! Rooms: `documents.rs` (the plan, outcomes and failures, versioned), `area.rs` (where they
//! and the shards' files live), and here the run's steps: plan, a shard's share, publication.

mod area;
mod documents;

pub use self::area::{CoordinatorClaim, ShardArea, check_run_name};
pub use self::documents::{PlannedTable, ShardOutcome, ShardPlan, ShardTable};

use crate::error::{Error, Result};
use crate::layout::names;
use crate::run::export::{
    ExportOptions, Listing, Publication, TableReport, publish_listing, write_share,
};
use crate::run::registry::Export;
use crate::sink::Sink;
use crate::source::ranges::{ReadOptions, ReadParallelism, ReadPlan};
use crate::source::{PgSource, Snapshot};
use crate::write::partition::Partition;

/// Plans run `run` over `exports` (tables only) for `shards` shards, on the source's snapshot.
pub async fn plan(
    source: &PgSource,
    run: &str,
    shards: usize,
    exports: &[Export],
    read: &ReadOptions,
) -> Result<ShardPlan> {
    let snapshot = source.snapshot().cloned().ok_or_else(|| Error::ShardRun {
        run: run.to_string(),
        reason: "the coordinator has no exported snapshot".into(),
    })?;
    let mut tables = Vec::new();
    for export in exports {
        let mut tx = source.begin_read().await?;
        // Ranges however many connections each shard has: every shard gets some.
        let options = ReadOptions {
            parallelism: ReadParallelism::Connections(shards.max(2)),
            ..*read
        };
        let plan = ReadPlan::plan(&mut tx, &export.info, &options, None, usize::MAX)
            .await
            .map_err(|e| e.in_table(&export.name()))?;
        let _ = tx.commit().await;
        tables.push(PlannedTable {
            name: export.name(),
            ranges: plan.ranges().to_vec(),
            single_stream_reason: plan.single_stream_reason.clone(),
        });
    }
    Ok(ShardPlan {
        run: run.to_string(),
        version: version_of(&snapshot, run),
        shards,
        snapshot,
        tables,
    })
}

/// A sharded run's version name: its snapshot's time first, so that versions sort by time.
pub fn version_of(snapshot: &Snapshot, run: &str) -> String {
    format!("{}-{run}", snapshot.taken_at.replace([':', '.'], ""))
}

/// Shard `shard`'s part of `export`: its ranges read on the plan's snapshot into the area.
/// A retried shard first removes what its earlier attempt wrote, so rows are never doubled.
pub async fn export_share(
    source: &PgSource,
    area: &ShardArea,
    plan: &ShardPlan,
    shard: usize,
    export: &Export,
    options: &ExportOptions,
) -> Result<ShardTable> {
    let name = export.name();
    let table = plan
        .tables
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| Error::ShardRun {
            run: plan.run.clone(),
            reason: format!("{name} is not in the run's plan"),
        })?;
    let encode = export.table_encoder().ok_or_else(|| Error::NotSupported {
        what: format!("the task {name} in a sharded run"),
    })?;
    let table_dir = crate::run::export::table_dir(&export.info);
    let dir = area.table_dir(&table_dir, shard);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io("cannot remove", &dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let written = write_share(
        source,
        &dir,
        options,
        (&export.info, (export.schema)(), encode),
        table.share(shard, plan.shards),
        &names::shard_data_prefix(shard),
    )
    .await
    .map_err(|e| e.in_table(&name))?;
    let files: Vec<String> = written
        .files
        .iter()
        .filter_map(|f| f.path.strip_prefix(&dir).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    area.deliver(plan, &table_dir, shard, &files)
        .await
        .map_err(|e| e.in_table(&name))?;
    Ok(ShardTable {
        name,
        rows: written.files.iter().map(|f| f.rows).sum(),
        bytes: written.files.iter().map(|f| f.bytes).sum(),
        files,
        partitions: written.partitions,
    })
}

/// Publishes `export` from every shard's files (`outcomes`, one per shard): moved into one
/// staged table, with its manifest, made current in one step.
pub async fn publish(
    source: &PgSource,
    sink: &dyn Sink,
    (area, plan, outcomes): (&ShardArea, &ShardPlan, &[ShardOutcome]),
    export: &Export,
    options: &ExportOptions,
) -> Result<TableReport> {
    let started = std::time::Instant::now();
    let name = export.name();
    let planned = plan.tables.iter().find(|t| t.name == name);
    let table_dir = crate::run::export::table_dir(&export.info);
    let staged = sink.stage(&table_dir)?;
    let gathered = (|| {
        let mut rows = 0;
        let mut bytes = 0;
        let mut files = Vec::new();
        let mut partitions: Vec<Partition> = Vec::new();
        for outcome in outcomes {
            let Some(share) = outcome.tables.iter().find(|t| t.name == name) else {
                continue;
            };
            let from_dir = area.table_dir(&table_dir, outcome.shard);
            for file in &share.files {
                // In an object store the files are in the version already.
                if !area.files_uploaded() {
                    let (from, to) = (from_dir.join(file), staged.dir.join(file));
                    if let Some(parent) = to.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| Error::io("cannot create", parent, e))?;
                    }
                    std::fs::rename(&from, &to).map_err(|e| Error::io("cannot move", &from, e))?;
                }
                files.push(file.clone());
            }
            rows += share.rows;
            bytes += share.bytes;
            for partition in &share.partitions {
                if !partitions.iter().any(|p| p.path == partition.path) {
                    partitions.push(partition.clone());
                }
            }
        }
        if files.is_empty() {
            // An empty table still has a file with its schema, as `run` writes it (at the
            // table's top for a partitioned table).
            let empty = crate::run::export::FileSequence::new(
                &staged.dir,
                (export.schema)(),
                (export.info.partition_by, crate::layout::names::DATA_PREFIX),
                options,
                None,
            );
            let (written, _, _) = empty.finish(options, false)?;
            for file in written {
                bytes += file.bytes;
                if let Ok(path) = file.path.strip_prefix(&staged.dir) {
                    files.push(path.to_string_lossy().into_owned());
                }
            }
        }
        // In the order `run` lists them: by their keys' values, not their paths' text.
        let schema = (export.schema)();
        partitions.sort_by_cached_key(|p| {
            crate::write::partition::partition_order(&p.values, export.info.partition_by, &schema)
        });
        Ok::<_, Error>((rows, bytes, files, partitions))
    })();
    let (rows, bytes, files, partitions) = match gathered {
        Ok(gathered) => gathered,
        Err(e) => {
            sink.discard(staged).await;
            return Err(e.in_table(&name));
        }
    };
    let listing = Listing {
        rows,
        bytes,
        files: &files,
        partitions: &partitions,
        incremental: None,
    };
    let location = publish_listing(
        (sink, &options.cancel),
        staged,
        (&export.info, &listing),
        source.snapshot().map(|s| s.taken_at.clone()),
        Publication::Table,
    )
    .await
    .map_err(|e| e.in_table(&name))?;
    Ok(TableReport {
        table: name,
        rows,
        bytes,
        location,
        files,
        partitions,
        seconds: started.elapsed().as_secs_f64(),
        skipped_rows: 0,
        warnings: Vec::new(),
        incremental: None,
        read: crate::run::export::ReadSummary {
            connections: outcomes.len(),
            ranges: planned.map_or(0, |t| t.ranges.len()),
            single_stream_reason: planned.and_then(|t| t.single_stream_reason.clone()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::documents::{Document, FORMAT_VERSION};
    use super::*;
    use crate::source::ranges::ReadRange;

    #[test]
    fn a_plan_reads_back_as_written_and_shares_cover_every_range_once() {
        let range = |start, end| ReadRange {
            relation: "\"public\".\"t\"".into(),
            blocks: Some((start, end)),
        };
        let plan = ShardPlan {
            run: "nightly-1".into(),
            version: "2026-11-26T080000000000Z-nightly-1".into(),
            shards: 3,
            snapshot: Snapshot {
                id: "00000003-0000001B-1".into(),
                taken_at: "2026-11-26T08:00:00.000000Z".into(),
                xids: "100:100:".into(),
                open_transactions: None,
            },
            tables: vec![PlannedTable {
                name: "t".into(),
                ranges: (0..7)
                    .map(|i| range(i * 10, (i < 6).then_some(i * 10 + 10)))
                    .collect(),
                single_stream_reason: None,
            }],
        };
        let text = serde_json::to_vec(&Document {
            format_version: FORMAT_VERSION,
            body: &plan,
        })
        .expect("renders");
        let read: ShardPlan = serde_json::from_slice(&text).expect("reads");
        assert_eq!(read, plan);
        let mut all: Vec<ReadRange> = (0..3)
            .flat_map(|shard| plan.tables[0].share(shard, 3))
            .collect();
        all.sort_by_key(|r| r.blocks);
        assert_eq!(all, plan.tables[0].ranges);
        assert_eq!(plan.tables[0].share(0, 3).len(), 3);
    }

    #[test]
    fn run_names_are_directory_names() {
        assert!(check_run_name("nightly-2026-11-26.1").is_ok());
        for bad in ["", "..", "a/b", ".hidden", "a b"] {
            assert!(check_run_name(bad).is_err(), "{bad:?}");
        }
    }
}
