//! Uploads: whole files and multipart parts, as many at once as the run's request slots
//! allow, each body streamed from its staged file; a failed multipart upload aborts itself.

use super::*;

impl S3Sink {
    pub(super) async fn upload(&self, path: &Path, key: &str) -> Result<()> {
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
    pub(super) async fn permit(&self) -> Result<SemaphorePermit<'_>> {
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
    pub(super) async fn upload_parts(
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
    pub(super) async fn upload_part(
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
    pub(super) async fn upload_named(
        &self,
        dir: &Path,
        version_dir: &str,
        name: &str,
    ) -> Result<()> {
        self.cancel.check()?;
        self.upload(&dir.join(name), &self.key(version_dir, name))
            .await
    }

    /// Uploads `names` (relative to `dir`) under `version_dir`, as many at once as there are
    /// request slots. Every upload runs to its end (a multipart upload that fails aborts
    /// itself), then the first failure is returned.
    pub(super) async fn upload_files(
        &self,
        dir: &Path,
        version_dir: &str,
        names: &[String],
    ) -> Result<()> {
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
}

impl S3Sink {
    /// Uploads each file named on `completed` into the run's version of `staged`'s table as
    /// soon as it comes, concurrently with the next ones (and with the writing of the rest of
    /// the table), within the run's request slots; returns their names once the channel
    /// closes and every upload is done. The first failure ends it; the files not uploaded are
    /// then left to the publication (which the caller does not reach after an error).
    pub(super) async fn upload_completed(
        &self,
        staged: &StagedTable,
        mut completed: tokio::sync::mpsc::UnboundedReceiver<PathBuf>,
    ) -> Result<Vec<String>> {
        use futures_util::StreamExt;
        use futures_util::stream::FuturesUnordered;
        let version_dir = self.run_version_dir(&staged.table_dir);
        let mut uploads = FuturesUnordered::new();
        let mut names = Vec::new();
        loop {
            tokio::select! {
                path = completed.recv() => {
                    let Some(path) = path else { break };
                    let Ok(name) = path.strip_prefix(&staged.dir) else { continue };
                    let name = name.to_string_lossy().into_owned();
                    let key = self.key(&version_dir, &name);
                    names.push(name);
                    uploads.push(async move { self.upload(&path, &key).await });
                }
                Some(done) = uploads.next(), if !uploads.is_empty() => done?,
            }
        }
        while let Some(done) = uploads.next().await {
            done?;
        }
        Ok(names)
    }
}
