//! Publishing to S3 (or any S3-compatible store): each table's files are written locally
//! first, then uploaded under `prefix/<table>/`, large files as multipart uploads read from disk
//! one part at a time, every response checked.
//!
//! What a reader of `prefix/<table>/` sees: an object appears only when its upload completes
//! (CompleteMultipartUpload and PutObject are atomic), and it replaces the object of the same
//! key whole. A table written as one file (the default) therefore flips from the previous export
//! to the new one in one step. Objects of the previous export that the new one does not have
//! (extra parts of a larger table) are deleted after the new ones are in place, and the
//! manifest is uploaded last.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
pub use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use tokio::io::AsyncReadExt;

use super::{LocalDirSink, Sink, StagedTable};
use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// Where and how to upload.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub bucket: String,
    /// Key prefix without trailing slash; may be empty.
    pub prefix: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    pub path_style: bool,
    /// Multipart part size; files larger than one part go up in parts.
    pub part_size: usize,
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

pub struct S3Sink {
    client: Client,
    options: S3Options,
    staging: LocalDirSink,
    /// A cancelled run uploads nothing more and aborts the multipart upload under way.
    cancel: Cancel,
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
            options,
            staging,
            cancel: Cancel::default(),
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
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        match self
            .upload_parts(path, key, &upload_id, part_size as usize)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // No orphaned parts: the upload is aborted (once: a second abort is NoSuchUpload).
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.options.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(
                        "cannot abort the multipart upload of {key}: {}",
                        DisplayErrorContext(abort)
                    );
                }
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
        part_size: usize,
    ) -> Result<()> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io("cannot open", path, e))?;
        let mut parts = Vec::new();
        let mut part_number = 1;
        loop {
            // One part in memory at a time.
            let mut buf = Vec::with_capacity(part_size);
            (&mut file)
                .take(part_size as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| Error::io("cannot read", path, e))?;
            if buf.is_empty() {
                break;
            }
            let part = self
                .client
                .upload_part()
                .bucket(&self.options.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(part_number)
                .body(ByteStream::from(buf))
                .send();
            // Cancelled: the caller aborts the upload, parts sent or not.
            let uploaded = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Error::Cancelled),
                part = part => part.map_err(|e| self.s3_error("upload a part of", key, e))?,
            };
            // The ETag only: copying a part's checksum here fails completion on stores that
            // computed none at creation.
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(uploaded.e_tag().map(str::to_string))
                    .part_number(part_number)
                    .build(),
            );
            part_number += 1;
        }
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

    /// The keys under `prefix/<table>/`.
    async fn existing_keys(&self, table_dir: &str) -> Result<Vec<String>> {
        let prefix = self.key(table_dir, "");
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.options.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.s3_error("list", &prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    async fn publish_table(&self, staged: &StagedTable) -> Result<String> {
        let mut names: Vec<String> = std::fs::read_dir(&staged.dir)
            .map_err(|e| Error::io("cannot list", &staged.dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".spill"))
            .collect();
        // Data first, the manifest last: it describes a complete export.
        names.sort_by_key(|n| (n == "_manifest.json", n.clone()));
        let before = self.existing_keys(&staged.table_dir).await?;
        let mut written = Vec::with_capacity(names.len());
        for name in &names {
            self.cancel.check()?;
            let key = self.key(&staged.table_dir, name);
            self.upload(&staged.dir.join(name), &key).await?;
            written.push(key);
        }
        let stale: Vec<ObjectIdentifier> = before
            .into_iter()
            .filter(|k| !written.contains(k))
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        for batch in stale.chunks(1000) {
            let delete = Delete::builder()
                .set_objects(Some(batch.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| self.s3_error("delete stale objects of", &staged.table_dir, e))?;
            let deleted = self
                .client
                .delete_objects()
                .bucket(&self.options.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.s3_error("delete stale objects of", &staged.table_dir, e))?;
            if let Some(failure) = deleted.errors().first() {
                return Err(Error::S3 {
                    action: "delete a stale object of",
                    location: format!(
                        "s3://{}/{}",
                        self.options.bucket,
                        failure.key().unwrap_or_default()
                    ),
                    source: failure.message().unwrap_or("no reason given").into(),
                });
            }
        }
        Ok(format!(
            "s3://{}/{}",
            self.options.bucket,
            self.key(&staged.table_dir, "").trim_end_matches('/')
        ))
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
            self.staging.discard(staged);
            result
        })
    }

    fn discard(&self, staged: StagedTable) {
        self.staging.discard(staged);
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.options.bucket, self.options.prefix)
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
            self.client
                .put_object()
                .bucket(&self.options.bucket)
                .key(&key)
                .body(ByteStream::from(bytes))
                .set_server_side_encryption(self.options.sse.clone())
                .set_ssekms_key_id(self.options.sse_kms_key_id.clone())
                .send()
                .await
                .map_err(|e| self.s3_error("write", &key, e))?;
            Ok(format!("s3://{}/{key}", self.options.bucket))
        })
    }
}
