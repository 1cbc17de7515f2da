//! A sharded run's area in the output, where the coordinator and the shards meet: a directory
//! every process mounts, or a prefix of an object store. What is read and written there, and
//! the coordinator's claim on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::documents::{
    Document, FORMAT_VERSION, Failure, PLAN, ShardOutcome, ShardPlan, VersionOnly,
};
use crate::error::{Error, Result};
use crate::layout::names;
use crate::sink::{ObjectStore, StagingClaim, lock_is_held, write_whole};

/// The area's directory under the output.
const SHARDS_DIR: &str = ".etl-shards";

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
    pub(super) fn files_uploaded(&self) -> bool {
        matches!(self.store, AreaStore::Objects { .. })
    }
}
