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

    async fn upload(&self, path: &Path, key: &str) -> Result<()> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| Error::io("cannot stat", path, e))?
            .len();
        let part_size = (self.options.part_size.max(MIN_PART) as u64).max(size.div_ceil(MAX_PARTS));
        if size <= part_size {
            let _permit = self.permit().await?;
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| self.s3_error("read for upload", key, e))?;
            let put = self
                .client
                .put_object()
                .bucket(&self.options.bucket)
                .key(key)
                .body(body)
                .set_server_side_encryption(self.options.sse.clone())
                .set_ssekms_key_id(self.options.sse_kms_key_id.clone())
                .send();
            // A PUT dropped before it completes leaves no object.
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Error::Cancelled),
                put = put => put.map_err(|e| self.s3_error("upload", key, e))?,
            };
            return Ok(());
        }
        let permit = self.permit().await?;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.options.bucket)
            .key(key)
            .set_server_side_encryption(self.options.sse.clone())
            .set_ssekms_key_id(self.options.sse_kms_key_id.clone())
            .send()
            .await
            .map_err(|e| self.s3_error("start the multipart upload of", key, e))?;
        drop(permit);
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        match self
            .upload_parts(path, key, &upload_id, (size, part_size))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // No orphaned parts: the upload is aborted (once: a second abort is NoSuchUpload).
                // Within a bound: a stopped run must end within a scheduler's grace period, and
                // an upload left behind is aborted by the table's next publication anyway.
                let abort = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.options.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send();
                match tokio::time::timeout(ABORT_WITHIN, abort).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(abort)) => tracing::warn!(
                        "cannot abort the multipart upload of {key}: {}",
                        DisplayErrorContext(abort)
                    ),
                    Err(_) => tracing::warn!(
                        "the multipart upload of {key} was not aborted within {} s; the \
                         table's next publication aborts it",
                        ABORT_WITHIN.as_secs()
                    ),
                }
                Err(e)
            }
        }
    }

    /// Waits for a request slot; a cancelled run stops waiting.
    async fn permit(&self) -> Result<SemaphorePermit<'_>> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Error::Cancelled),
            // The semaphore is never closed.
            permit = self.requests.acquire() => permit.map_err(|_| Error::Cancelled),
        }
    }

    /// Uploads `path`'s parts of `part_size` bytes (the last one shorter), as many at once as
    /// there are request slots, and completes the upload. The first failure stops the parts
    /// not yet started; the caller aborts the upload.
    async fn upload_parts(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
        (size, part_size): (u64, u64),
    ) -> Result<()> {
        let count = size.div_ceil(part_size);
        // The futures are made up front (not by a closure of the stream: a Send future that
        // borrows through such a closure does not type-check); each waits for its slot.
        let parts: Vec<_> = (0..count)
            .map(|index| {
                let offset = index * part_size;
                let length = part_size.min(size - offset);
                // Part numbers start at 1; at most MAX_PARTS, so they fit.
                let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
                self.upload_part(path, (key, upload_id), number, (offset, length))
            })
            .collect();
        let mut uploads =
            futures_util::stream::iter(parts).buffer_unordered(self.options.concurrency.max(1));
        let mut parts = Vec::with_capacity(count as usize);
        while let Some(part) = uploads.next().await {
            parts.push(part?);
        }
        drop(uploads);
        // Completion lists the parts in order.
        parts.sort_by_key(|part| part.part_number());
        let _permit = self.permit().await?;
        self.client
            .complete_multipart_upload()
            .bucket(&self.options.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.s3_error("complete the multipart upload of", key, e))?;
        Ok(())
    }

    /// One part, `length` bytes of `path` from `offset`, streamed from the file (reopened by
    /// the SDK's retries).
    async fn upload_part(
        &self,
        path: &Path,
        (key, upload_id): (&str, &str),
        number: i32,
        (offset, length): (u64, u64),
    ) -> Result<CompletedPart> {
        let _permit = self.permit().await?;
        let body = ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(Length::Exact(length))
            .build()
            .await
            .map_err(|e| self.s3_error("read for upload", key, e))?;
        let part = self
            .client
            .upload_part()
            .bucket(&self.options.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(body)
            .send();
        // Cancelled: the caller aborts the upload, parts sent or not.
        let uploaded = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(Error::Cancelled),
            part = part => part.map_err(|e| self.s3_error("upload a part of", key, e))?,
        };
        // The ETag only: copying a part's checksum here fails completion on stores that
        // computed none at creation.
        Ok(CompletedPart::builder()
            .set_e_tag(uploaded.e_tag().map(str::to_string))
            .part_number(number)
            .build())
    }

    /// Uploads `dir/name` as `version_dir/name`, unless the run is cancelled.
    async fn upload_named(&self, dir: &Path, version_dir: &str, name: &str) -> Result<()> {
        self.cancel.check()?;
        self.upload(&dir.join(name), &self.key(version_dir, name))
            .await
    }

    /// Uploads `names` (relative to `dir`) under `version_dir`, as many at once as there are
    /// request slots. Every upload runs to its end (a multipart upload that fails aborts
    /// itself), then the first failure is returned.
    async fn upload_files(&self, dir: &Path, version_dir: &str, names: &[String]) -> Result<()> {
        let uploads: Vec<_> = names
            .iter()
            .map(|name| self.upload_named(dir, version_dir, name))
            .collect();
        let results: Vec<Result<()>> = futures_util::stream::iter(uploads)
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
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

    /// Uploads an incremental batch into the version `previous` names, then makes the new
    /// manifest current, if the current one is still `previous`.
    async fn publish_batch_now(&self, staged: &StagedTable, previous: &Manifest) -> Result<String> {
        let (Some(version), Some(location)) = (&previous.version, &previous.location) else {
            return Err(Error::NotSupported {
                what: format!(
                    "adding a batch to {}: its manifest names no version",
                    staged.table_dir
                ),
            });
        };
        let version_dir = format!("{}/{version}", staged.table_dir);
        let mut files = Vec::new();
        staged_files(&staged.dir, "", &mut files)?;
        files.retain(|name| name != MANIFEST_FILE);
        self.upload_files(&staged.dir, &version_dir, &files).await?;
        let manifest = staged_manifest(&staged.dir)?;
        let current = current_manifest(&manifest, version, location)?;
        let switched = self
            .switch_manifest(&staged.table_dir, previous, current.clone())
            .await;
        if let Err(e @ Error::StateMoved { .. }) = switched {
            // Another run published this batch's number: this run's files would stand beside
            // its with the same `_etl_batch` until a later batch removed them. Gone now, as far
            // as the store lets.
            let own = files.iter().map(|n| self.key(&version_dir, n)).collect();
            if let Err(cleanup) = self.delete_keys(own, &version_dir).await {
                tracing::warn!(
                    table = %staged.table_dir,
                    "files of the batch not published were not all removed: {}",
                    crate::error::report(&cleanup)
                );
            }
            return Err(e);
        }
        switched?;
        // The version's own manifest follows (it marks the version complete for cleanup).
        self.put_bytes(&self.key(&version_dir, MANIFEST_FILE), current)
            .await?;
        if let Err(e) = self.remove_abandoned_batches(&version_dir, &manifest).await {
            tracing::warn!(
                table = %staged.table_dir,
                "the batch is published, but files of failed batches were not all removed: {}",
                crate::error::report(&e)
            );
        }
        Ok(location.to_string())
    }

    /// Makes `current` the table's manifest if the one there is still `previous`.
    async fn switch_manifest(
        &self,
        table_dir: &str,
        previous: &Manifest,
        current: Vec<u8>,
    ) -> Result<()> {
        // S3 has no lock: the switch happens only if no other run switched the table since
        // this run read its state (checked, then conditional on the manifest's ETag where the
        // store supports If-Match).
        self.cancel.check()?;
        let etag = match self.get_manifest(table_dir).await? {
            Some((now, etag)) if &now == previous => etag,
            _ => {
                return Err(Error::StateMoved {
                    table: table_dir.to_string(),
                });
            }
        };
        let key = self.key(table_dir, MANIFEST_FILE);
        self.client
            .put_object()
            .bucket(&self.options.bucket)
            .key(&key)
            .body(ByteStream::from(current))
            .if_match(etag)
            .set_server_side_encryption(self.options.sse.clone())
            .set_ssekms_key_id(self.options.sse_kms_key_id.clone())
            .send()
            .await
            .map_err(|e| {
                if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) {
                    Error::StateMoved {
                        table: table_dir.to_string(),
                    }
                } else {
                    self.s3_error("write", &key, e)
                }
            })?;
        Ok(())
    }

    /// Deletes the batch files in `version_dir` that the manifest does not list, of batches
    /// up to this one: runs that uploaded them failed or were overtaken. Later batches'
    /// files belong to runs that planned after this one published, and are left alone. Key
    /// files likewise, but for the manifest's own: the earlier ones are superseded.
    async fn remove_abandoned_batches(&self, version_dir: &str, manifest: &Manifest) -> Result<()> {
        let mut listed: std::collections::HashSet<&str> =
            manifest.files.iter().map(String::as_str).collect();
        if let Some(keys) = manifest
            .incremental
            .as_ref()
            .and_then(|i| i.keys.as_deref())
        {
            listed.insert(keys);
        }
        let last = u64::from(manifest.last_batch());
        let prefix = self.key(version_dir, "");
        let stale: Vec<String> = self
            .keys_under(&prefix)
            .await?
            .into_iter()
            .filter(|key| {
                let name = &key[prefix.len()..];
                let file = name.rsplit('/').next().unwrap_or(name);
                let number = crate::layout::versions::file_batch(file).map(u64::from);
                number.is_some_and(|n| n <= last) && !listed.contains(name)
            })
            .collect();
        self.delete_keys(stale, version_dir).await
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

    /// The largest batch number of any file in the version `manifest` names, published or
    /// left by a run that failed after uploading.
    async fn last_batch_uploaded(&self, table_dir: &str, manifest: &Manifest) -> Result<u32> {
        let Some(version) = &manifest.version else {
            return Ok(0);
        };
        let prefix = self.key(&format!("{table_dir}/{version}"), "");
        Ok(self
            .keys_under(&prefix)
            .await?
            .iter()
            .filter_map(|key| key.rsplit('/').next())
            .filter_map(crate::layout::versions::file_batch)
            .max()
            .unwrap_or(0))
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

    async fn publish_table(&self, staged: &StagedTable) -> Result<String> {
        let version = format!("{VERSION_PREFIX}{}", self.run_id);
        let version_dir = format!("{}/{version}", staged.table_dir);
        let mut files = Vec::new();
        staged_files(&staged.dir, "", &mut files)?;
        // The version's own manifest last, once every other file is in: a version without
        // one is incomplete.
        let (manifest, data): (Vec<String>, Vec<String>) =
            files.into_iter().partition(|n| n == MANIFEST_FILE);
        self.upload_files(&staged.dir, &version_dir, &data).await?;
        self.upload_files(&staged.dir, &version_dir, &manifest)
            .await?;
        let location = format!(
            "s3://{}/{}",
            self.options.bucket,
            self.key(&version_dir, "").trim_end_matches('/')
        );
        // The switch: one object names the current version.
        let current = current_manifest(&staged_manifest(&staged.dir)?, &version, &location)?;
        self.cancel.check()?;
        self.put_bytes(&self.key(&staged.table_dir, MANIFEST_FILE), current)
            .await?;
        // Old versions go only once the new one is current; a failure to delete them leaves
        // extra objects, never a wrong table, so it is a warning.
        if let Err(e) = self.remove_old_versions(&staged.table_dir, &version).await {
            tracing::warn!(
                table = %staged.table_dir,
                "the table is published, but its old versions were not all removed: {}",
                crate::error::report(&e)
            );
        }
        Ok(location)
    }

    /// Deletes, once `current` is the table's version, the versions older than it beyond the
    /// newest `keep_versions` complete ones, incomplete versions older than it (runs that
    /// failed), and the objects of the layout before versions (`<table>/part-*.parquet`).
    /// Versions newer than `current` belong to runs still going and are left alone.
    async fn remove_old_versions(&self, table_dir: &str, current: &str) -> Result<()> {
        let table_prefix = self.key(table_dir, "");
        let keys = self.keys_under(&table_prefix).await?;
        let mut versions: std::collections::BTreeMap<&str, (bool, Vec<&String>)> =
            Default::default();
        let mut unversioned = Vec::new();
        for key in &keys {
            let rest = &key[table_prefix.len()..];
            match rest.split_once('/') {
                Some((version, inside)) if version.starts_with(VERSION_PREFIX) => {
                    let entry = versions.entry(version).or_default();
                    entry.0 |= inside == MANIFEST_FILE;
                    entry.1.push(key);
                }
                _ if rest == MANIFEST_FILE => {}
                _ => unversioned.push(key.clone()),
            }
        }
        let mut kept_complete = 0;
        let mut stale = unversioned;
        // Newest first (run ids start with the snapshot's time).
        for (version, (complete, keys)) in versions.iter().rev() {
            if *version > current {
                continue;
            }
            if *complete && kept_complete < self.options.keep_versions.max(1) {
                kept_complete += 1;
                continue;
            }
            stale.extend(keys.iter().map(|k| (*k).clone()));
        }
        self.delete_keys(stale, table_dir).await?;
        self.abort_abandoned_uploads(&table_prefix, current).await
    }

    /// Aborts the multipart uploads into versions older than `current`: their runs are over,
    /// and an upload whose abort could not reach the store (it went down, the process was
    /// killed) would otherwise be billed for ever.
    async fn abort_abandoned_uploads(&self, table_prefix: &str, current: &str) -> Result<()> {
        for (key, upload_id) in self.multipart_uploads(table_prefix).await? {
            let version = key[table_prefix.len().min(key.len())..]
                .split('/')
                .next()
                .unwrap_or_default();
            if !version.starts_with(VERSION_PREFIX) || version >= current {
                continue;
            }
            self.client
                .abort_multipart_upload()
                .bucket(&self.options.bucket)
                .key(&key)
                .upload_id(upload_id)
                .send()
                .await
                .map_err(|e| self.s3_error("abort the abandoned multipart upload of", &key, e))?;
        }
        Ok(())
    }

    /// Every multipart upload in progress under `prefix` (key, upload id), page after page: a
    /// listing holds at most 1,000.
    async fn multipart_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut upload_id_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.options.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_id_marker.take())
                .send()
                .await
                .map_err(|e| self.s3_error("list the multipart uploads of", prefix, e))?;
            uploads.extend(
                page.uploads()
                    .iter()
                    .filter_map(|u| Some((u.key()?.to_string(), u.upload_id()?.to_string()))),
            );
            if page.is_truncated() != Some(true) || page.next_key_marker().is_none() {
                return Ok(uploads);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            upload_id_marker = page.next_upload_id_marker().map(str::to_string);
        }
    }
}

/// The table's own prefix (`s3://b/p/notes`) given where a version of it was published
/// (`s3://b/p/notes/v=<run id>`).
pub fn table_root(location: &str) -> &str {
    match location.rsplit_once('/') {
        Some((root, last)) if last.starts_with(VERSION_PREFIX) => root,
        _ => location,
    }
}

/// Version directories under a table: `v=<run id>`.
const VERSION_PREFIX: &str = "v=";

/// The files of a staged table, partition directories included, as paths relative to it.
fn staged_files(root: &Path, relative: &str, files: &mut Vec<String>) -> Result<()> {
    let dir = root.join(relative);
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("cannot list", &dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".spill") {
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

    fn upload<'a>(&'a self, local: &'a Path, path: &'a str) -> super::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.cancel.check()?;
            self.upload(local, &self.path_key(path)).await
        })
    }

    fn version_dir(&self, table_dir: &str, version: &str) -> String {
        format!("{table_dir}/{VERSION_PREFIX}{version}")
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
