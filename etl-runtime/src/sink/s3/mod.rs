//! Publishing to S3 (or any S3-compatible store): each table's files are written locally
//! first, then uploaded, large files as multipart uploads whose parts stream from disk, every
//! response checked. Files and parts go up concurrently, at most `concurrency` requests in
//! flight for the whole run: on S3 each request waits tens of milliseconds for its answer,
//! so one at a time a 1,000-partition table would be 1,000 round trips in a row. Memory does
//! not grow with it: a body is read from its file as it is sent (and again on a retry).
//!
//! S3 cannot rename or swap a set of objects, so each export of a table is a **version**: its
//! files go under `prefix/<table>/v=<run id>/` (partition directories inside), never touching
//! the versions readers use. Once every object is in, one PutObject of `prefix/<table>/
//! _manifest.json` (atomic, like every single object) makes it current: the manifest names the
//! version's location and files, and the Glue table's location is switched to it after the
//! run's tables are published. Versions beyond the newest `keep_versions` complete ones are
//! deleted afterwards, so a query that started on the previous version can finish. A run that
//! fails or is stopped leaves the current version and manifest as they were; what it uploaded
//! is an incomplete version (no `_manifest.json` of its own), removed by a later run.
//!
//! Rooms: [`upload`] (files and parts, concurrently), [`publish`] (a version or a batch made
//! current), [`cleanup`] (what publication leaves behind); this module holds the options, the
//! client, the small object operations they share, and the `Sink` and `ObjectStore` faces.

mod cleanup;
mod publish;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::{ByteStream, Length};
pub use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::{LocalDirSink, Sink, StagedTable};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::layout::{MANIFEST_FILE, Manifest};

/// Where and how to upload.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub bucket: String,
    /// Key prefix without trailing slash; may be empty.
    pub prefix: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    pub path_style: bool,
    /// Complete versions of each table kept after a publication, the new current one included.
    pub keep_versions: usize,
    /// Multipart part size; files larger than one part go up in parts.
    pub part_size: usize,
    /// Upload requests (whole files and parts) in flight at once, for the whole run.
    pub concurrency: usize,
    pub sse: Option<ServerSideEncryption>,
    pub sse_kms_key_id: Option<String>,
    /// Local directory for the files before upload.
    pub staging_dir: PathBuf,
}

impl S3Options {
    /// Parses `s3://bucket/prefix`.
    pub fn parse_url(url: &str) -> Option<(String, String)> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
    }
}

/// At most 10,000 parts per upload: the part size grows with the file so that any file fits.
const MAX_PARTS: u64 = 10_000;
/// S3's smallest part (but the last).
const MIN_PART: usize = 5 * 1024 * 1024;
/// How long a failed or stopped upload waits for its abort.
const ABORT_WITHIN: Duration = Duration::from_secs(10);

pub struct S3Sink {
    client: Client,
    options: S3Options,
    staging: LocalDirSink,
    /// A cancelled run uploads nothing more and aborts the multipart upload under way.
    cancel: Cancel,
    /// Names the version each table is written to.
    run_id: String,
    /// One permit per upload request in flight ([`S3Options::concurrency`]).
    requests: Arc<Semaphore>,
}

impl S3Sink {
    /// A client from aws-config's default chain (environment, profiles, web identity, instance
    /// metadata), `AWS_REGION` and `AWS_ENDPOINT_URL`, with explicit timeouts and retries.
    pub async fn new(options: S3Options, run_id: &str) -> Result<Self> {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(options.path_style)
            // S3-compatible stores reject the SDK's default checksums on some requests.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Throttling, 5xx and timeouts are retried with exponential backoff.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(6)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            // The SDK has no read or operation timeout by default: a store that accepts
            // connections and never answers would hang the run.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .operation_attempt_timeout(Duration::from_secs(300))
                    .operation_timeout(Duration::from_secs(1800))
                    .build(),
            )
            .build();
        let staging = LocalDirSink::new(&options.staging_dir, run_id)?;
        Ok(Self {
            client: Client::from_conf(config),
            requests: Arc::new(Semaphore::new(options.concurrency.max(1))),
            options,
            staging,
            cancel: Cancel::default(),
            run_id: run_id.to_string(),
        })
    }

    /// Stops uploading once `cancel` is.
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    fn key(&self, table_dir: &str, name: &str) -> String {
        if self.options.prefix.is_empty() {
            format!("{table_dir}/{name}")
        } else {
            format!("{}/{table_dir}/{name}", self.options.prefix)
        }
    }

    /// One small object, whole or not at all.
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.options.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .set_server_side_encryption(self.options.sse.clone())
            .set_ssekms_key_id(self.options.sse_kms_key_id.clone())
            .send()
            .await
            .map_err(|e| self.s3_error("write", key, e))?;
        Ok(())
    }

    fn s3_error(
        &self,
        action: &'static str,
        key: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::S3 {
            action,
            location: format!("s3://{}/{key}", self.options.bucket),
            source: Box::new(e),
        }
    }

    /// The table's current manifest and its ETag, if it has one.
    async fn get_manifest(&self, table_dir: &str) -> Result<Option<(Manifest, String)>> {
        let key = self.key(table_dir, MANIFEST_FILE);
        let Some((bytes, etag)) = self.get_object(&key).await? else {
            return Ok(None);
        };
        let url = format!("s3://{}/{key}", self.options.bucket);
        Ok(Some((Manifest::parse(&bytes, &url)?, etag)))
    }

    /// The object at `key` and its ETag, if there is one.
    async fn get_object(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        let got = self
            .client
            .get_object()
            .bucket(&self.options.bucket)
            .key(key)
            .send()
            .await;
        let object = match got {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.s3_error("read", key, e)),
        };
        let etag = object.e_tag().unwrap_or_default().to_string();
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| self.s3_error("read", key, e))?
            .into_bytes();
        Ok(Some((bytes.to_vec(), etag)))
    }

    /// The key of `name`, a file of the version of `table_dir` that `manifest` makes current.
    fn published_key(&self, table_dir: &str, manifest: &Manifest, name: &str) -> Result<String> {
        let version = manifest
            .version
            .as_deref()
            .ok_or_else(|| Error::NotSupported {
                what: format!("reading {name} of {table_dir}: its manifest names no version"),
            })?;
        Ok(self.key(&format!("{table_dir}/{version}"), name))
    }

    /// Every key under `prefix` (which ends with `/`).
    async fn keys_under(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.options.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.s3_error("list", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    async fn delete_keys(&self, keys: Vec<String>, what: &str) -> Result<()> {
        let objects: Vec<ObjectIdentifier> = keys
            .into_iter()
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        for batch in objects.chunks(1000) {
            let delete = Delete::builder()
                .set_objects(Some(batch.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| self.s3_error("delete old objects of", what, e))?;
            let deleted = self
                .client
                .delete_objects()
                .bucket(&self.options.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.s3_error("delete old objects of", what, e))?;
            if let Some(failure) = deleted.errors().first() {
                return Err(Error::S3 {
                    action: "delete an old object of",
                    location: format!(
                        "s3://{}/{}",
                        self.options.bucket,
                        failure.key().unwrap_or_default()
                    ),
                    source: failure.message().unwrap_or("no reason given").into(),
                });
            }
        }
        Ok(())
    }
}

/// The table's own prefix (`s3://b/p/notes`) given where a version of it was published
/// (`s3://b/p/notes/v=<run id>`).
pub fn table_root(location: &str) -> &str {
    match location.rsplit_once('/') {
        Some((root, last)) if last.starts_with(crate::layout::names::VERSION_PREFIX) => root,
        _ => location,
    }
}

/// The files of a staged table, partition directories included, as paths relative to it.
fn staged_files(root: &Path, relative: &str, files: &mut Vec<String>) -> Result<()> {
    let dir = root.join(relative);
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("cannot list", &dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(crate::layout::names::SPILL_PREFIX) {
            continue;
        }
        let path = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let is_dir = entry
            .file_type()
            .map_err(|e| Error::io("cannot stat", entry.path(), e))?
            .is_dir();
        if is_dir {
            staged_files(root, &path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// The manifest this run staged for the table in `dir`.
fn staged_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    Manifest::parse(&bytes, &path.display().to_string())
}

/// The table's current manifest: the version's own, plus which version it is and where.
fn current_manifest(version_manifest: &Manifest, version: &str, location: &str) -> Result<Vec<u8>> {
    let mut manifest = version_manifest.clone();
    manifest.version = Some(version.to_string());
    manifest.location = Some(location.to_string());
    manifest.render()
}

impl S3Sink {
    /// The key of `path` under the output's prefix.
    fn path_key(&self, path: &str) -> String {
        if self.options.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.options.prefix)
        }
    }
}

impl super::ObjectStore for S3Sink {
    fn get<'a>(&'a self, path: &'a str) -> super::BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let got = self.get_object(&self.path_key(path)).await?;
            Ok(got.map(|(bytes, _)| bytes))
        })
    }

    fn put<'a>(&'a self, path: &'a str, bytes: Vec<u8>) -> super::BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.put_bytes(&self.path_key(path), bytes).await })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> super::BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let root = self.path_key("");
            let keys = self.keys_under(&self.path_key(prefix)).await?;
            Ok(keys
                .into_iter()
                .map(|k| k.strip_prefix(&root).unwrap_or(&k).to_string())
                .collect())
        })
    }

    fn delete<'a>(&'a self, paths: Vec<String>) -> super::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let keys = paths.iter().map(|p| self.path_key(p)).collect();
            self.delete_keys(keys, "a sharded run").await
        })
    }

    fn upload_files<'a>(
        &'a self,
        dir: &'a Path,
        names: &'a [String],
        under: &'a str,
    ) -> super::BoxFuture<'a, Result<()>> {
        // `key(under, name)` is `path_key("<under>/<name>")`: the same objects.
        Box::pin(self.upload_files(dir, under, names))
    }

    fn version_dir(&self, table_dir: &str, version: &str) -> String {
        format!("{table_dir}/{}", crate::layout::names::version_dir(version))
    }
}

impl Sink for S3Sink {
    fn stage(&self, table_dir: &str) -> Result<StagedTable> {
        self.staging.stage(table_dir)
    }

    fn publish<'a>(&'a self, staged: StagedTable) -> super::BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let result = self.publish_table(&staged).await;
            // The local copy is not needed once uploaded, nor after a failure.
            self.staging.discard(staged).await;
            result
        })
    }

    fn upload_as_written<'a>(
        &'a self,
        staged: &'a StagedTable,
        completed: tokio::sync::mpsc::UnboundedReceiver<PathBuf>,
    ) -> super::BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(self.upload_completed(staged, completed))
    }

    fn discard<'a>(&'a self, staged: StagedTable) -> super::BoxFuture<'a, ()> {
        self.staging.discard(staged)
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.options.bucket, self.options.prefix)
    }

    fn keeps_incremental_state(&self) -> bool {
        true
    }

    fn current_manifest<'a>(
        &'a self,
        table_dir: &'a str,
    ) -> super::BoxFuture<'a, Result<Option<Manifest>>> {
        Box::pin(async move { Ok(self.get_manifest(table_dir).await?.map(|(m, _)| m)) })
    }

    fn last_batch_uploaded<'a>(
        &'a self,
        table_dir: &'a str,
        manifest: &'a Manifest,
    ) -> super::BoxFuture<'a, Result<u32>> {
        Box::pin(self.last_batch_uploaded(table_dir, manifest))
    }

    fn fetch_published<'a>(
        &'a self,
        table_dir: &'a str,
        manifest: &'a Manifest,
        name: &'a str,
        scratch: &'a Path,
    ) -> super::BoxFuture<'a, Result<std::path::PathBuf>> {
        Box::pin(async move {
            let key = self.published_key(table_dir, manifest, name)?;
            let local = scratch.join(name);
            if let Some(dir) = local.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
            }
            let mut object = self
                .client
                .get_object()
                .bucket(&self.options.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| self.s3_error("read", &key, e))?;
            let mut file = tokio::fs::File::create(&local)
                .await
                .map_err(|e| Error::io("cannot create", &local, e))?;
            while let Some(chunk) = object.body.next().await {
                self.cancel.check()?;
                let chunk = chunk.map_err(|e| self.s3_error("read", &key, e))?;
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                    .await
                    .map_err(|e| Error::io("cannot write", &local, e))?;
            }
            // tokio's File writes on a blocking thread: done only once flushed.
            tokio::io::AsyncWriteExt::flush(&mut file)
                .await
                .map_err(|e| Error::io("cannot write", &local, e))?;
            Ok(local)
        })
    }

    fn publish_batch<'a>(
        &'a self,
        staged: StagedTable,
        previous: &'a Manifest,
        _previous_files: &'a [String],
    ) -> super::BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let result = self.publish_batch_now(&staged, previous).await;
            self.staging.discard(staged).await;
            result
        })
    }

    fn put_file<'a>(
        &'a self,
        path: &'a str,
        bytes: Vec<u8>,
    ) -> super::BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let key = if self.options.prefix.is_empty() {
                path.to_string()
            } else {
                format!("{}/{path}", self.options.prefix)
            };
            self.put_bytes(&key, bytes).await?;
            Ok(format!("s3://{}/{key}", self.options.bucket))
        })
    }
}
