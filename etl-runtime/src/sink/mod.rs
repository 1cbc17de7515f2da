//! Where finished Parquet files go. A table's files are written to a staging area first and
//! published together, so that a reader never sees half an export: a local directory
//! ([`LocalDirSink`]) or S3 ([`s3`]), and the Glue catalog that describes what was published
//! ([`glue`]).

#[cfg(feature = "s3")]
pub mod glue;
#[cfg(feature = "s3")]
pub mod s3;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::layout::{MANIFEST_FILE, Manifest};

/// A table's files waiting to be published.
#[derive(Debug)]
pub struct StagedTable {
    /// The directory name of the table in the output (`notes`, `sales.orders`).
    pub table_dir: String,
    /// Where the files are written before publication.
    pub dir: PathBuf,
    /// The removal, while the table is read, of the kept versions that its publication will
    /// push beyond the output's count (a local output's; see [`LocalDirSink::keeping_versions`]).
    retiring: Option<std::thread::JoinHandle<()>>,
}

impl StagedTable {
    /// Waits for the removal of old versions started when the table was staged.
    fn finish_retiring(&mut self) {
        if let Some(retiring) = self.retiring.take() {
            let _ = retiring.join();
        }
    }
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A destination for exported tables: a local directory ([`LocalDirSink`]) or S3
/// ([`s3::S3Sink`]).
pub trait Sink: Send + Sync {
    /// Creates an empty local staging directory for `table_dir`'s files.
    fn stage(&self, table_dir: &str) -> Result<StagedTable>;
    /// Makes the staged files the table's current export, replacing the previous one whole.
    /// Returns where the table now lives.
    fn publish<'a>(&'a self, staged: StagedTable) -> BoxFuture<'a, Result<String>>;
    /// Throws away a staged table (after a failure, or once uploaded). The tree is removed on
    /// a blocking thread: on the async runtime's threads it would hold up the reads of the
    /// other tables of a `--parallel-tables` run.
    fn discard<'a>(&'a self, staged: StagedTable) -> BoxFuture<'a, ()>;
    /// The output's location for messages.
    fn location(&self) -> String;
    /// Writes a small file (the run report) at `path` under the output, whole or not at all;
    /// returns where it is.
    fn put_file<'a>(&'a self, path: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, Result<String>>;
    /// Whether the staged files become the published ones where they are (renamed, not
    /// uploaded): then they must reach the disk before publication, and can start as soon as
    /// they are written.
    fn publishes_staged_files(&self) -> bool {
        false
    }
    /// Whether this output keeps the state of incremental runs (the methods below).
    fn keeps_incremental_state(&self) -> bool {
        false
    }
    /// Takes `table_dir`'s lock until the returned guard is dropped; fails at once if another
    /// run holds it. An output without locks checks at publication instead (see
    /// [`Sink::publish_batch`]).
    fn lock_table(&self, _table_dir: &str) -> Result<TableLock> {
        Ok(TableLock { _file: None })
    }
    /// The published `_manifest.json` of `table_dir`, if there is one.
    fn current_manifest<'a>(
        &'a self,
        _table_dir: &'a str,
    ) -> BoxFuture<'a, Result<Option<Manifest>>> {
        Box::pin(async { Ok(None) })
    }
    /// The largest batch number among the files readers of `table_dir` may see beside those
    /// `manifest` lists: on S3, batches that runs uploaded and then failed to publish stay in
    /// the version until a later batch removes them. A new batch takes a number after them, so
    /// that its rows' `_etl_batch` orders after theirs. 0 where nothing is left behind.
    fn last_batch_uploaded<'a>(
        &'a self,
        _table_dir: &'a str,
        _manifest: &'a Manifest,
    ) -> BoxFuture<'a, Result<u32>> {
        Box::pin(async { Ok(0) })
    }
    /// A local path to read `name`, a published file of `table_dir` whose manifest is
    /// `manifest`: where it is, locally; on S3 a download into `scratch`.
    fn fetch_published<'a>(
        &'a self,
        table_dir: &'a str,
        _manifest: &'a Manifest,
        name: &'a str,
        _scratch: &'a Path,
    ) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(async move {
            Err(Error::NotSupported {
                what: format!("reading {name} of {table_dir}"),
            })
        })
    }
    /// Publishes `staged` (an incremental batch and the table's new manifest) as an addition
    /// to the export whose manifest is `previous` and whose files are `previous_files`: the
    /// table's readers then see both. Fails, publishing no manifest, if the table's manifest
    /// is no longer `previous` (another run advanced it).
    fn publish_batch<'a>(
        &'a self,
        staged: StagedTable,
        _previous: &'a Manifest,
        _previous_files: &'a [String],
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let what = format!("adding a batch to {}", staged.table_dir);
            self.discard(staged).await;
            Err(Error::NotSupported { what })
        })
    }
}

/// An output that keeps objects by path (S3): what the coordinator and the shards of a
/// sharded run share when they have no file system in common. Paths are under the output's
/// prefix.
pub trait ObjectStore: Send + Sync {
    /// The object at `path`, if there is one.
    fn get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;
    /// Writes the object at `path`, whole.
    fn put<'a>(&'a self, path: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, Result<()>>;
    /// The paths of the objects under `prefix`.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>>>;
    fn delete<'a>(&'a self, paths: Vec<String>) -> BoxFuture<'a, Result<()>>;
    /// Uploads the files `names` of the local directory `dir` to `<under>/<name>`, as many at
    /// once as the store allows.
    fn upload_files<'a>(
        &'a self,
        dir: &'a Path,
        names: &'a [String],
        under: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// Where version `version` of `table_dir` keeps its files (never current until its
    /// manifest is published).
    fn version_dir(&self, table_dir: &str, version: &str) -> String;
}

/// A table's lock, released when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub struct TableLock {
    _file: Option<File>,
}

/// Writes each table to `<root>/<table>/`. Staging lives in `<root>/.etl-staging/<run>/` on the
/// same file system, so that publication is a rename. The exports that publications replaced
/// are kept in `<root>/.etl-versions/<table>/<time replaced>-<run>/`, as many as told
/// ([`LocalDirSink::keeping_versions`]).
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
    run_id: String,
    /// Complete exports of each table kept, the published one included (at least 1).
    keep_versions: usize,
    _claim: Arc<StagingClaim>,
}

/// Where a local output keeps the exports that publications replaced; hidden, like the staging
/// area, from readers of the output (pyarrow, DuckDB and Spark skip names starting with a dot).
const VERSIONS_DIR: &str = ".etl-versions";

/// A run's claim on its staging directory: an exclusive lock on `.etl-staging/<run>.lock`,
/// held while the run's sink lives and released by the OS when the process dies however it
/// dies. Staging whose lock nobody holds belongs to a run that was killed (SIGKILL, OOM) and is
/// removed by the next run; staging whose lock is held is another run's, in progress.
#[derive(Debug)]
pub(crate) struct StagingClaim {
    lock: File,
    lock_path: PathBuf,
    run_dir: PathBuf,
    staging: PathBuf,
}

impl Drop for StagingClaim {
    fn drop(&mut self) {
        // Whatever the run left (a cancelled table's files are already discarded).
        let _ = fs::remove_dir_all(&self.run_dir);
        let _ = fs::remove_file(&self.lock_path);
        let _ = self.lock.unlock();
        let _ = fs::remove_dir(&self.staging);
    }
}

impl StagingClaim {
    /// The directory claimed: `<staging>/<run>/` (not created here).
    pub(crate) fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub(crate) fn take(staging: &Path, run_id: &str) -> Result<Self> {
        fs::create_dir_all(staging).map_err(|e| Error::io("cannot create", staging, e))?;
        mark_top_of_unrelated_trees(staging);
        remove_abandoned_runs(staging);
        let lock_path = staging.join(format!("{run_id}.lock"));
        let lock = loop {
            let lock =
                File::create(&lock_path).map_err(|e| Error::io("cannot create", &lock_path, e))?;
            lock.lock()
                .map_err(|e| Error::io("cannot lock", &lock_path, e))?;
            // Another run's cleanup may have removed the file between its creation and our
            // lock: a lock on a file no longer at `lock_path` protects nothing; take a new one.
            if same_file(&lock, &lock_path) {
                break lock;
            }
        };
        Ok(Self {
            lock,
            lock_path,
            run_dir: staging.join(run_id),
            staging: staging.to_path_buf(),
        })
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Marks the staging area as the top of unrelated trees (ext4's `FS_TOPDIR_FL`, `chattr +T`),
/// so that each run's directory, and the export made in it, starts in a block group of its own
/// rather than in its parent's, where the previous export was just removed: on ext4 without a
/// journal, each new inode's allocation checks one by one the group's free inodes deleted in
/// the last minutes (seconds once written back), so a re-export of thousands of partitions
/// would walk past every inode the previous one freed, for each of its own. Best effort:
/// other file systems have no such flag, and nothing depends on it.
fn mark_top_of_unrelated_trees(staging: &Path) {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let Ok(dir) = File::open(staging) else {
        return;
    };
    if let Ok(flags) = ioctl_getflags(&dir)
        && !flags.contains(IFlags::TOPDIR)
    {
        let _ = ioctl_setflags(&dir, flags | IFlags::TOPDIR);
    }
}

/// Whether a live process holds the lock file at `path`.
pub(crate) fn lock_is_held(path: &Path) -> bool {
    File::open(path)
        .is_ok_and(|lock| matches!(lock.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// Removes the staging of runs that died: a run directory or lock file whose lock is free.
fn remove_abandoned_runs(staging: &Path) {
    let Ok(entries) = fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let run = name.strip_suffix(".lock").unwrap_or(&name).to_string();
        let lock_path = staging.join(format!("{run}.lock"));
        if lock_is_held(&lock_path) {
            continue;
        }
        let run_dir = staging.join(&run);
        if run_dir.exists() {
            tracing::warn!(
                "removing {}: staging of a run that did not finish",
                run_dir.display()
            );
            let _ = fs::remove_dir_all(&run_dir);
        }
        if path == lock_path {
            let _ = fs::remove_file(&lock_path);
        }
    }
}

impl LocalDirSink {
    /// A sink for run `run_id`; removes what runs that were killed left in the staging area.
    pub fn new(root: impl Into<PathBuf>, run_id: &str) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io("cannot create", &root, e))?;
        let claim = StagingClaim::take(&root.join(".etl-staging"), run_id)?;
        Ok(Self {
            root,
            run_id: run_id.to_string(),
            keep_versions: 1,
            _claim: Arc::new(claim),
        })
    }

    /// Keeps `versions` complete exports of each table, the published one included (1 unless
    /// told: a publication removes the export it replaced). With more, the replaced exports
    /// stay in `<root>/.etl-versions/<table>/`, so that a reader that started on one can finish,
    /// and the oldest are removed while a later run of the table reads.
    pub fn keeping_versions(mut self, versions: usize) -> Self {
        self.keep_versions = versions.max(1);
        self
    }

    /// Where the exports of `table_dir` that publications replaced are kept.
    fn versions_dir(&self, table_dir: &str) -> PathBuf {
        self.root.join(VERSIONS_DIR).join(table_dir)
    }

    /// Starts removing, on a thread of its own while the table is read, the kept versions of
    /// `table_dir` that its publication will push beyond `keep_versions` (the export it replaces
    /// becomes a kept one). Removing a large export is mostly waiting for the disk (on ext4
    /// mounted `discard`, a synchronous discard per freed extent), which overlaps the read
    /// here instead of adding to the run's end. A thread
    /// that cannot start leaves them to the next run.
    fn retire_old_versions(&self, table_dir: &str) -> Option<std::thread::JoinHandle<()>> {
        let mut versions: Vec<PathBuf> = fs::read_dir(self.versions_dir(table_dir))
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .collect();
        // Newest first: names are the times they were replaced.
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let retired = versions.split_off(self.keep_versions.saturating_sub(2).min(versions.len()));
        if retired.is_empty() {
            return None;
        }
        let remove = move || {
            for version in &retired {
                match fs::remove_dir_all(version) {
                    Ok(()) => {}
                    // Another run of the table removed it first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!("cannot remove {}, an old version: {e}", version.display())
                    }
                }
            }
        };
        std::thread::Builder::new()
            .name("etl-retire".into())
            .spawn(remove)
            .ok()
    }

    /// Keeps the export that a publication just replaced (now at `replaced`) as a version, or
    /// removes it when only the published export is kept.
    fn keep_replaced(&self, table_dir: &str, replaced: &Path) -> Result<()> {
        if self.keep_versions > 1 {
            let kept = self.versions_dir(table_dir);
            let name = format!(
                "{}-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ"),
                self.run_id
            );
            match fs::create_dir_all(&kept).and_then(|()| fs::rename(replaced, kept.join(&name))) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(
                    "cannot keep the previous export of {table_dir} in {}, removing it: {e}",
                    kept.display()
                ),
            }
        }
        fs::remove_dir_all(replaced)
            .map_err(|e| Error::io("cannot remove the previous export", replaced, e))
    }

    fn publish_now(&self, mut staged: StagedTable) -> Result<String> {
        // Old versions are removed before this table's publication adds one.
        staged.finish_retiring();
        let target = self.root.join(&staged.table_dir);
        // Every file and directory of the export on disk before any reader can be pointed at
        // it: a crash after the swap must not publish files the disk never received.
        make_durable(&staged.dir)?;
        if target.exists() {
            // One atomic step, however many files and partition directories the table has: a
            // reader of the table's directory sees the previous export or this one, and a
            // crash at any point leaves one of them in place.
            match exchange(&staged.dir, &target) {
                // The staging directory now holds the previous export.
                Ok(()) => self.keep_replaced(&staged.table_dir, &staged.dir)?,
                // A file system without RENAME_EXCHANGE: move aside, then in.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                    self.replace_in_two_steps(&staged, &target)?;
                }
                Err(e) => return Err(Error::io("cannot publish", &target, e)),
            }
        } else {
            fs::rename(&staged.dir, &target)
                .map_err(|e| Error::io("cannot publish", &target, e))?;
        }
        // The swap itself on disk.
        make_durable(&self.root)?;
        // The run's staging directory is empty once its last table is published.
        let _ = fs::remove_dir(self.staging_root());
        let _ = fs::remove_dir(self.root.join(".etl-staging"));
        Ok(target.display().to_string())
    }

    fn replace_in_two_steps(&self, staged: &StagedTable, target: &Path) -> Result<()> {
        let previous = self
            .staging_root()
            .join(format!("{}.previous", staged.table_dir));
        fs::rename(target, &previous).map_err(|e| Error::io("cannot move aside", target, e))?;
        if let Err(e) = fs::rename(&staged.dir, target) {
            // Put the previous export back so the table is never left missing.
            let _ = fs::rename(&previous, target);
            return Err(Error::io("cannot publish", target, e));
        }
        self.keep_replaced(&staged.table_dir, &previous)
    }

    /// [`Sink::discard`], on the calling thread.
    fn discard_now(&self, mut staged: StagedTable) {
        staged.finish_retiring();
        let _ = fs::remove_dir_all(&staged.dir);
        let _ = fs::remove_dir(self.staging_root());
        let _ = fs::remove_dir(self.root.join(".etl-staging"));
    }

    fn staging_root(&self) -> PathBuf {
        self.root.join(".etl-staging").join(&self.run_id)
    }
}

impl Sink for LocalDirSink {
    fn stage(&self, table_dir: &str) -> Result<StagedTable> {
        let dir = self.staging_root().join(table_dir);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::io("cannot clear", &dir, e))?;
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        Ok(StagedTable {
            table_dir: table_dir.to_string(),
            dir,
            retiring: self.retire_old_versions(table_dir),
        })
    }

    fn publish<'a>(&'a self, staged: StagedTable) -> BoxFuture<'a, Result<String>> {
        let sink = self.clone();
        Box::pin(on_blocking_thread(move || sink.publish_now(staged)))
    }

    fn discard<'a>(&'a self, staged: StagedTable) -> BoxFuture<'a, ()> {
        let sink = self.clone();
        Box::pin(async move {
            // A thread that cannot be joined has removed what it could; nothing to report.
            let _ = tokio::task::spawn_blocking(move || sink.discard_now(staged)).await;
        })
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put_file<'a>(&'a self, path: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let target = self.root.join(path);
            write_whole(&target, &bytes)?;
            Ok(target.display().to_string())
        })
    }

    fn publishes_staged_files(&self) -> bool {
        true
    }

    fn keeps_incremental_state(&self) -> bool {
        true
    }

    fn lock_table(&self, table_dir: &str) -> Result<TableLock> {
        // Beside the staging area, never removed: removing a lock file while another run
        // waits on it would let two runs hold "the" lock.
        let dir = self.root.join(".etl-locks");
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let path = dir.join(format!("{table_dir}.lock"));
        let file = File::create(&path).map_err(|e| Error::io("cannot create", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(TableLock { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::TableBusy {
                table: table_dir.to_string(),
                lock: path,
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("cannot lock", &path, e)),
        }
    }

    fn current_manifest<'a>(
        &'a self,
        table_dir: &'a str,
    ) -> BoxFuture<'a, Result<Option<Manifest>>> {
        Box::pin(async move { Self::read_manifest(&self.root, table_dir) })
    }

    fn fetch_published<'a>(
        &'a self,
        table_dir: &'a str,
        _manifest: &'a Manifest,
        name: &'a str,
        _scratch: &'a Path,
    ) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(async move { Ok(self.root.join(table_dir).join(name)) })
    }

    fn publish_batch<'a>(
        &'a self,
        staged: StagedTable,
        _previous: &'a Manifest,
        previous_files: &'a [String],
    ) -> BoxFuture<'a, Result<String>> {
        // The table's lock is held: nothing changed the directory since the state was read.
        let (sink, previous_files) = (self.clone(), previous_files.to_vec());
        Box::pin(on_blocking_thread(move || {
            if let Err(e) = sink.carry_over(&staged, &previous_files) {
                sink.discard_now(staged);
                return Err(e);
            }
            sink.publish_now(staged)
        }))
    }
}

impl LocalDirSink {
    /// The published manifest of `table_dir` under the output `root`, if there is one: read
    /// without a sink, so that a reader (`etl-app state`) writes nothing to the output.
    pub fn read_manifest(root: &Path, table_dir: &str) -> Result<Option<Manifest>> {
        let path = root.join(table_dir).join(MANIFEST_FILE);
        match fs::read(&path) {
            Ok(bytes) => Manifest::parse(&bytes, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", &path, e)),
        }
    }

    /// Puts the published `files` of the table (paths under its directory) into `staged` too,
    /// as hard links: no copy, and the published files stay as they are until replaced.
    fn carry_over(&self, staged: &StagedTable, files: &[String]) -> Result<()> {
        let current = self.root.join(&staged.table_dir);
        for file in files {
            let from = current.join(file);
            let to = staged.dir.join(file);
            if let Some(dir) = to.parent() {
                fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
            }
            // A published file gone (deleted by hand): the batch cannot keep it; a full
            // export (`--full`) starts the table afresh.
            fs::hard_link(&from, &to).map_err(|e| {
                Error::io(
                    "cannot keep a published file (run with --full to export the table afresh):",
                    &from,
                    e,
                )
            })?;
        }
        Ok(())
    }
}

/// Runs a publication's file-system work (hard links, `syncfs`, renames, the wait for the
/// removal of old versions) on a blocking thread: on the async runtime's threads it would hold
/// up the reads of the other tables of a `--parallel-tables` run while it lasts.
async fn on_blocking_thread(
    work: impl FnOnce() -> Result<String> + Send + 'static,
) -> Result<String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| Error::Thread {
            what: "publication thread",
            source,
        })?
}

/// Puts on disk everything written to the file system holding `dir`: one `syncfs`, which
/// costs one journal commit however many files and directories a table has (synced one by
/// one, each file's fsync is a commit of its own), and also covers the directory entries.
pub fn make_durable(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
    rustix::fs::syncfs(&handle).map_err(|e| Error::io("cannot sync", dir, e.into()))
}

/// Swaps two directories in one step (Linux's `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

/// Writes `bytes` to `target` through a temporary file and a rename: readers see the old file
/// or the new one, never half of it.
pub fn write_whole(target: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let temporary = target.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&temporary, bytes).map_err(|e| Error::io("cannot write", &temporary, e))?;
    fs::rename(&temporary, target).map_err(|e| {
        let _ = fs::remove_file(&temporary);
        Error::io("cannot write", target, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{IFlags, ioctl_getflags};

    fn has_topdir(dir: &Path) -> bool {
        File::open(dir)
            .ok()
            .and_then(|dir| ioctl_getflags(&dir).ok())
            .is_some_and(|flags| flags.contains(IFlags::TOPDIR))
    }

    /// Where the file system keeps the flag (ext4), the staging area has it, so that each run's
    /// export starts in a block group of its own.
    #[test]
    fn the_staging_area_is_the_top_of_unrelated_trees() {
        let root = std::env::temp_dir().join(format!("etl-sink-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let probe = root.join("probe");
        fs::create_dir_all(&probe).unwrap();
        // Whether this file system keeps the flag at all, on a directory of the test's.
        mark_top_of_unrelated_trees(&probe);
        let kept = has_topdir(&probe);

        let sink = LocalDirSink::new(&root, "run-1").unwrap();
        sink.stage("notes").unwrap();
        assert_eq!(has_topdir(&root.join(".etl-staging")), kept);
        // Not inherited: only the staging area's children are spread.
        assert!(!has_topdir(&root.join(".etl-staging/run-1")));
        drop(sink);
        fs::remove_dir_all(&root).unwrap();
    }
}
