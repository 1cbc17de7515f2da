//! Sharded runs: one snapshot read by K processes on K machines (a Kubernetes Indexed Job's
//! pods), each taking its share of every table's block ranges; a coordinator holds the
//! snapshot, publishes the plan, and publishes the tables once every shard's files are in.
//!
//! Everything goes through the output, a directory every process sees (a shared volume):
//! `<output>/.etl-shards/<run>/` holds `plan.json` (written by the coordinator), each shard's
//! files under `tables/<table>/shard-NNNNN/`, and `shard-NNNNN.done.json` or
//! `shard-NNNNN.failed-A.json` per shard. The coordinator holds `<run>.lock` beside it while it
//! lives; an area nobody holds is a dead coordinator's and the next coordinator removes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::names;
use crate::run::export::{ExportOptions, Listing, TableReport, write_manifest, write_share};
use crate::run::registry::Export;
use crate::sink::{ObjectStore, Sink, StagingClaim, lock_is_held, write_whole};
use crate::source::ranges::{ReadOptions, ReadParallelism, ReadPlan, ReadRange};
use crate::source::{PgSource, Snapshot};
use crate::write::partition::Partition;

/// The area's directory under the output.
const SHARDS_DIR: &str = ".etl-shards";

/// What every shard of a run reads: the snapshot, and each table's ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    pub run: String,
    /// The tables' version being written (`<snapshot time>-<run>`): the files of an object
    /// store's table go under it, never current until the coordinator publishes.
    pub version: String,
    pub shards: usize,
    pub snapshot: Snapshot,
    pub tables: Vec<PlannedTable>,
}

/// One table of a sharded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTable {
    pub name: String,
    pub ranges: Vec<ReadRange>,
    /// Why the table is one range (read by shard 0), if it is.
    pub single_stream_reason: Option<String>,
}

impl PlannedTable {
    /// Shard `shard`'s ranges: every `shards`-th, so that a retried shard reads exactly what
    /// its first attempt read.
    pub fn share(&self, shard: usize, shards: usize) -> Vec<ReadRange> {
        self.ranges
            .iter()
            .enumerate()
            .filter(|(i, _)| i % shards.max(1) == shard)
            .map(|(_, range)| range.clone())
            .collect()
    }
}

/// What one shard wrote: per table, its files under its own directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShardOutcome {
    pub shard: usize,
    /// The snapshot it read (a coordinator restarted under the same run name has another and
    /// ignores what the previous one's shards wrote).
    pub snapshot: String,
    pub tables: Vec<ShardTable>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShardTable {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    /// Paths under the shard's directory of the table (inside partition directories).
    pub files: Vec<String>,
    pub partitions: Vec<Partition>,
}

/// A sharded run's area in the output: a directory every process mounts, or a prefix of an
/// object store (S3).
pub struct ShardArea {
    run: String,
    store: AreaStore,
}

enum AreaStore {
    /// `<output>/.etl-shards/<run>/`; the shards' files are written in it.
    Dir(PathBuf),
    /// `.etl-shards/<run>/` under the store's prefix for the plan and outcomes; the shards
    /// write their files under `scratch` and upload them into the table's version.
    Objects {
        store: Arc<dyn ObjectStore>,
        scratch: PathBuf,
    },
}

/// The coordinator's hold on its run's area: the area is removed when it is dropped (the run
/// published its tables, or failed), and by the next coordinator if the process died.
pub struct CoordinatorClaim {
    _claim: Option<StagingClaim>,
    pub area: ShardArea,
}

/// Checks a run name: it names a directory, so letters, digits, `.`, `_` and `-`.
pub fn check_run_name(run: &str) -> Result<()> {
    let valid = !run.is_empty()
        && run.len() <= 128
        && !run.starts_with('.')
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::ShardRun {
            run: run.to_string(),
            reason: "a run name is 1-128 letters, digits, `.`, `_` or `-`, not starting with `.`"
                .into(),
        })
    }
}

impl ShardArea {
    /// The area of run `run` under the directory `output`, for a shard (the coordinator
    /// creates it).
    pub fn in_dir(output: &Path, run: &str) -> Result<Self> {
        check_run_name(run)?;
        Ok(Self {
            run: run.to_string(),
            store: AreaStore::Dir(output.join(SHARDS_DIR).join(run)),
        })
    }

    /// The area of run `run` in an object store; a shard's files wait in `scratch` (a local
    /// directory) until they are uploaded.
    pub fn in_objects(store: Arc<dyn ObjectStore>, run: &str, scratch: &Path) -> Result<Self> {
        check_run_name(run)?;
        Ok(Self {
            run: run.to_string(),
            store: AreaStore::Objects {
                store,
                scratch: scratch.join(SHARDS_DIR).join(run),
            },
        })
    }

    /// Creates run `run`'s area under the directory `output` and holds it; fails if a live
    /// coordinator already runs it.
    pub fn claim(output: &Path, run: &str) -> Result<CoordinatorClaim> {
        check_run_name(run)?;
        let root = output.join(SHARDS_DIR);
        if lock_is_held(&root.join(format!("{run}.lock"))) {
            return Err(Error::ShardRun {
                run: run.to_string(),
                reason: "another coordinator is running it".into(),
            });
        }
        // Also removes the areas of coordinators that died.
        let claim = StagingClaim::take(&root, run)?;
        let dir = claim.run_dir().to_path_buf();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        Ok(CoordinatorClaim {
            _claim: Some(claim),
            area: ShardArea {
                run: run.to_string(),
                store: AreaStore::Dir(dir),
            },
        })
    }

    /// Starts run `run`'s area in an object store afresh (what an earlier coordinator of the
    /// same name left is removed).
    pub async fn claim_objects(
        store: Arc<dyn ObjectStore>,
        run: &str,
        scratch: &Path,
    ) -> Result<CoordinatorClaim> {
        let area = Self::in_objects(store.clone(), run, scratch)?;
        let left = store.list(&area.object_path("")).await?;
        if !left.is_empty() {
            store.delete(left).await?;
        }
        Ok(CoordinatorClaim { _claim: None, area })
    }

    fn object_path(&self, name: &str) -> String {
        format!("{SHARDS_DIR}/{}/{name}", self.run)
    }

    /// Where shard `shard` writes `table`'s files.
    pub fn table_dir(&self, table: &str, shard: usize) -> PathBuf {
        let root = match &self.store {
            AreaStore::Dir(dir) => dir,
            AreaStore::Objects { scratch, .. } => scratch,
        };
        root.join("tables")
            .join(table)
            .join(names::shard_dir(shard))
    }

    /// Writes `body` as the document `name`, whole, with the area's format version.
    async fn put_json<T: Serialize>(&self, name: &str, body: &T) -> Result<()> {
        let document = Document {
            format_version: FORMAT_VERSION,
            body,
        };
        let text = serde_json::to_vec_pretty(&document).map_err(Error::Manifest)?;
        match &self.store {
            AreaStore::Dir(dir) => write_whole(&dir.join(name), &text),
            AreaStore::Objects { store, .. } => store.put(&self.object_path(name), text).await,
        }
    }

    /// The document `name`, if it is there; an error naming it if it does not parse or is of
    /// a later format (a process of a newer build in the same run).
    async fn get_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let bytes = match &self.store {
            AreaStore::Dir(dir) => match std::fs::read(dir.join(name)) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io("cannot read", dir.join(name), e)),
            },
            AreaStore::Objects { store, .. } => store.get(&self.object_path(name)).await?,
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let unreadable = |reason: String| Error::ShardRun {
            run: self.run.clone(),
            reason: format!("its {name} cannot be read: {reason}"),
        };
        let version: VersionOnly =
            serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
        if version.format_version > FORMAT_VERSION {
            return Err(unreadable(format!(
                "format {} is from a newer etl-toolkit (this one reads {FORMAT_VERSION})",
                version.format_version
            )));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| unreadable(e.to_string()))
    }

    /// The names in the area starting with `prefix`.
    async fn names(&self, prefix: &str) -> Result<Vec<String>> {
        match &self.store {
            AreaStore::Dir(dir) => Ok(std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|name| name.starts_with(prefix))
                        .collect()
                })
                .unwrap_or_default()),
            AreaStore::Objects { store, .. } => {
                let root = self.object_path("");
                Ok(store
                    .list(&self.object_path(prefix))
                    .await?
                    .into_iter()
                    .filter_map(|p| p.strip_prefix(&root).map(str::to_string))
                    .collect())
            }
        }
    }

    pub async fn write_plan(&self, plan: &ShardPlan) -> Result<()> {
        self.put_json(PLAN, plan).await
    }

    /// The plan, once the coordinator has written it.
    pub async fn read_plan(&self) -> Result<Option<ShardPlan>> {
        self.get_json(PLAN).await
    }

    pub async fn write_done(&self, outcome: &ShardOutcome) -> Result<()> {
        // The shard's files on disk before it says they are in.
        if let AreaStore::Dir(dir) = &self.store {
            crate::sink::make_durable(dir)?;
        }
        self.put_json(&names::shard_done(outcome.shard), outcome)
            .await
    }

    /// What `shard` wrote on `snapshot`, once it is done.
    async fn read_done(&self, shard: usize, snapshot: &str) -> Result<Option<ShardOutcome>> {
        Ok(self
            .get_json::<ShardOutcome>(&names::shard_done(shard))
            .await?
            .filter(|outcome| outcome.snapshot == snapshot))
    }

    /// Records a failed attempt of `shard` on `snapshot` (with its error).
    pub async fn write_failure(&self, shard: usize, snapshot: &str, message: &str) -> Result<()> {
        let attempt = self.names(&names::shard_failed_prefix(shard)).await?.len() + 1;
        self.put_json(
            &format!("{}{attempt}.json", names::shard_failed_prefix(shard)),
            &Failure {
                shard,
                snapshot: snapshot.to_string(),
                error: message.to_string(),
            },
        )
        .await
    }

    /// The errors of `shard`'s failed attempts on `snapshot`, in no particular order.
    async fn failures(&self, shard: usize, snapshot: &str) -> Result<Vec<String>> {
        let mut errors = Vec::new();
        for name in self.names(&names::shard_failed_prefix(shard)).await? {
            let Some(failure) = self.get_json::<Failure>(&name).await? else {
                continue;
            };
            if failure.snapshot == snapshot {
                errors.push(failure.error);
            }
        }
        Ok(errors)
    }

    /// One look at the shards whose `outcomes` are still `None`, on `snapshot`: one listing
    /// of the area, then a read of each new outcome, so that polling costs one LIST
    /// and no GET while nothing changes (on S3 every request is billed). Fills `outcomes`;
    /// returns the shards that failed `attempts` times or more, with their errors.
    pub async fn poll(
        &self,
        snapshot: &str,
        outcomes: &mut [Option<ShardOutcome>],
        attempts: usize,
    ) -> Result<Vec<(usize, Vec<String>)>> {
        let listed = self.names(names::SHARD_PREFIX).await?;
        let mut failed = Vec::new();
        for (shard, outcome) in outcomes.iter_mut().enumerate() {
            if outcome.is_some() {
                continue;
            }
            if listed.contains(&names::shard_done(shard)) {
                *outcome = self.read_done(shard, snapshot).await?;
                if outcome.is_some() {
                    continue;
                }
            }
            let prefix = names::shard_failed_prefix(shard);
            if listed.iter().filter(|n| n.starts_with(&prefix)).count() >= attempts {
                // Markers of another snapshot's attempts do not count.
                let errors = self.failures(shard, snapshot).await?;
                if errors.len() >= attempts {
                    failed.push((shard, errors));
                }
            }
        }
        Ok(failed)
    }

    /// Makes shard `shard`'s files of `table_dir` (`files`, under [`Self::table_dir`]) part of
    /// the run's version: in an object store, its earlier attempt's objects go and these are
    /// uploaded into the table's version; in a directory they are where they belong already.
    pub async fn deliver(
        &self,
        plan: &ShardPlan,
        table_dir: &str,
        shard: usize,
        files: &[String],
    ) -> Result<()> {
        let AreaStore::Objects { store, .. } = &self.store else {
            return Ok(());
        };
        let version_dir = store.version_dir(table_dir, &plan.version);
        let mine = names::shard_files_prefix(shard);
        let earlier: Vec<String> = store
            .list(&format!("{version_dir}/"))
            .await?
            .into_iter()
            .filter(|p| p.rsplit('/').next().is_some_and(|n| n.starts_with(&mine)))
            .collect();
        if !earlier.is_empty() {
            store.delete(earlier).await?;
        }
        let local = self.table_dir(table_dir, shard);
        store.upload_files(&local, files, &version_dir).await?;
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&local)).await;
        Ok(())
    }

    /// Removes the area: its plan and the shards' outcomes (a directory's files too).
    pub async fn remove(&self) -> Result<()> {
        match &self.store {
            AreaStore::Dir(dir) => match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("cannot remove", dir, e))
                }
                _ => Ok(()),
            },
            AreaStore::Objects { store, scratch } => {
                let _ = std::fs::remove_dir_all(scratch);
                let left = store.list(&self.object_path("")).await?;
                if left.is_empty() {
                    Ok(())
                } else {
                    store.delete(left).await
                }
            }
        }
    }

    /// Whether the shards' files are already in the store (and the coordinator publishes only
    /// the manifest).
    fn files_uploaded(&self) -> bool {
        matches!(self.store, AreaStore::Objects { .. })
    }
}

const PLAN: &str = "plan.json";

/// The format of the area's documents (plan, outcomes, failures) this build writes, and the
/// newest it reads.
const FORMAT_VERSION: u32 = 1;

/// A document of the area as written: its format version, then its body's fields.
#[derive(Serialize)]
struct Document<'a, T> {
    format_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Only the version, read first: a later format may not parse as this one.
#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default = "first_version")]
    format_version: u32,
}

fn first_version() -> u32 {
    1
}

/// A failed attempt of a shard.
#[derive(Debug, Serialize, Deserialize)]
struct Failure {
    shard: usize,
    snapshot: String,
    error: String,
}

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
        if files.is_empty() && export.info.partition_by.is_empty() {
            // An empty table still has a file with its schema.
            let written = crate::write::RollingFiles::new(
                &staged.dir,
                (export.schema)(),
                &options.parquet,
                None,
            )
            .finish_with_schema()?;
            for file in written {
                bytes += file.bytes;
                if let Ok(path) = file.path.strip_prefix(&staged.dir) {
                    files.push(path.to_string_lossy().into_owned());
                }
            }
        }
        partitions.sort_by(|a, b| a.path.cmp(&b.path));
        let listing = Listing {
            rows,
            bytes,
            files: &files,
            partitions: &partitions,
            incremental: None,
        };
        let taken_at = source.snapshot().map(|s| s.taken_at.clone());
        write_manifest(&staged.dir, &export.info, &listing, taken_at)?;
        Ok::<_, Error>((rows, bytes, files, partitions))
    })();
    let (rows, bytes, files, partitions) = match gathered {
        Ok(gathered) => gathered,
        Err(e) => {
            sink.discard(staged).await;
            return Err(e.in_table(&name));
        }
    };
    let location = sink.publish(staged).await.map_err(|e| e.in_table(&name))?;
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
    use super::*;

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
