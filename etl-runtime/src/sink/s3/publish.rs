//! Publication: a table's version uploaded and made current by its manifest, or a batch added
//! to the current version if the manifest is still the one the run read.

use super::*;

impl S3Sink {
    /// Where this run writes `table_dir`'s new version: `<table_dir>/v=<run id>`.
    pub(super) fn run_version_dir(&self, table_dir: &str) -> String {
        crate::sink::ObjectStore::version_dir(self, table_dir, &self.run_id)
    }

    /// Uploads an incremental batch into the version `previous` names, then makes the new
    /// manifest current, if the current one is still `previous`.
    pub(super) async fn publish_batch_now(
        &self,
        staged: &StagedTable,
        previous: &Manifest,
    ) -> Result<String> {
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
    pub(super) async fn switch_manifest(
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

    /// The largest batch number of any file in the version `manifest` names, published or
    /// left by a run that failed after uploading.
    pub(super) async fn last_batch_uploaded(
        &self,
        table_dir: &str,
        manifest: &Manifest,
    ) -> Result<u32> {
        let Some(version) = &manifest.version else {
            return Ok(0);
        };
        let prefix = self.key(&format!("{table_dir}/{version}"), "");
        Ok(self
            .keys_under(&prefix)
            .await?
            .iter()
            .filter_map(|key| key.rsplit('/').next())
            .filter_map(crate::layout::names::file_batch)
            .max()
            .unwrap_or(0))
    }

    pub(super) async fn publish_table(&self, staged: &StagedTable) -> Result<String> {
        let version = crate::layout::names::version_dir(&self.run_id);
        let version_dir = self.run_version_dir(&staged.table_dir);
        let mut files = Vec::new();
        staged_files(&staged.dir, "", &mut files)?;
        // The version's own manifest last, once every other file is in: a version without
        // one is incomplete.
        let (manifest, mut data): (Vec<String>, Vec<String>) =
            files.into_iter().partition(|n| n == MANIFEST_FILE);
        // Those uploaded while the table was written are in the version already.
        data.retain(|name| !staged.uploaded.contains(name));
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
}
