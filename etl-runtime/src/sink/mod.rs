//! Where finished Parquet files go. A table's files are written to a staging area first and
//! published together, so that a reader never sees half an export: a local directory
//! ([`LocalDirSink`]) or S3 ([`s3`]), and the Glue catalog that describes what was published
//! ([`glue`]).

#[cfg(feature = "s3")]
pub mod glue;
mod local;
#[cfg(feature = "s3")]
pub mod s3;
mod staging;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::layout::{MANIFEST_FILE, Manifest};

pub use self::local::LocalDirSink;
use self::staging::exchange;
pub(crate) use self::staging::{StagingClaim, lock_is_held};
pub use self::staging::{make_durable, write_whole};

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
    /// Files (relative to `dir`) already in place at the output, uploaded as they were
    /// completed ([`Sink::upload_as_written`]): publication leaves them be.
    pub(crate) uploaded: Vec<String>,
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
    /// While a whole table is written, takes each complete file named on `completed` (a path
    /// under `staged.dir`) to its place at the output, until the channel closes; returns those
    /// now in place, which [`Sink::publish`] then leaves be. Nothing becomes visible before
    /// the publication: an object store puts them in the run's version, which only the
    /// table's manifest makes current. By default nothing: the files go at publication.
    fn upload_as_written<'a>(
        &'a self,
        staged: &'a StagedTable,
        completed: tokio::sync::mpsc::UnboundedReceiver<PathBuf>,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        let _ = (staged, completed);
        Box::pin(async { Ok(Vec::new()) })
    }
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
