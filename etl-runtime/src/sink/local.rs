//! [`LocalDirSink`]: tables published into a local directory by one rename each, the
//! exports they replace kept as versions.

use super::*;

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
            uploaded: Vec::new(),
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
