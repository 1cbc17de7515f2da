//! Where finished Parquet files go. A table's files are written to a staging area first and
//! published together, so that a reader never sees half an export: a local directory
//! ([`LocalDirSink`]) or S3 ([`s3`]), and the Glue catalog that describes what was published
//! ([`glue`]).

#[cfg(feature = "s3")]
pub mod glue;
#[cfg(feature = "s3")]
pub mod s3;

use std::fs;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// A table's files waiting to be published.
#[derive(Debug)]
pub struct StagedTable {
    /// The directory name of the table in the output (`notes`, `sales.orders`).
    pub table_dir: String,
    /// Where the files are written before publication.
    pub dir: PathBuf,
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
    /// Throws away a staged table after a failure.
    fn discard(&self, staged: StagedTable);
    /// The output's location for messages.
    fn location(&self) -> String;
}

/// Writes each table to `<root>/<table>/`. Staging lives in `<root>/.etl-staging/` on the same
/// file system, so that publication is a rename.
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
    run_id: String,
}

impl LocalDirSink {
    pub fn new(root: impl Into<PathBuf>, run_id: &str) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io("cannot create", &root, e))?;
        Ok(Self {
            root,
            run_id: run_id.to_string(),
        })
    }

    fn publish_now(&self, staged: StagedTable) -> Result<String> {
        let target = self.root.join(&staged.table_dir);
        let previous = self
            .staging_root()
            .join(format!("{}.previous", staged.table_dir));
        let had_previous = target.exists();
        if had_previous {
            fs::rename(&target, &previous)
                .map_err(|e| Error::io("cannot move aside", &target, e))?;
        }
        if let Err(e) = fs::rename(&staged.dir, &target) {
            // Put the previous export back so the table is never left missing.
            if had_previous {
                let _ = fs::rename(&previous, &target);
            }
            return Err(Error::io("cannot publish", &target, e));
        }
        if had_previous {
            fs::remove_dir_all(&previous)
                .map_err(|e| Error::io("cannot remove the previous export", &previous, e))?;
        }
        // The run's staging directory is empty once its last table is published.
        let _ = fs::remove_dir(self.staging_root());
        let _ = fs::remove_dir(self.root.join(".etl-staging"));
        Ok(target.display().to_string())
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
        })
    }

    fn publish<'a>(&'a self, staged: StagedTable) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move { self.publish_now(staged) })
    }

    fn discard(&self, staged: StagedTable) {
        let _ = fs::remove_dir_all(&staged.dir);
        let _ = fs::remove_dir(self.staging_root());
        let _ = fs::remove_dir(self.root.join(".etl-staging"));
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}
