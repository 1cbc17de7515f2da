//! What publication leaves to clean: old and incomplete versions, files of failed batches,
//! abandoned multipart uploads.

use super::*;

impl S3Sink {
    /// Deletes the batch files in `version_dir` that the manifest does not list, of batches
    /// up to this one: runs that uploaded them failed or were overtaken. Later batches'
    /// files belong to runs that planned after this one published, and are left alone. Key
    /// files likewise, but for the manifest's own: the earlier ones are superseded.
    pub(super) async fn remove_abandoned_batches(
        &self,
        version_dir: &str,
        manifest: &Manifest,
    ) -> Result<()> {
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
                let number = crate::layout::names::file_batch(file).map(u64::from);
                number.is_some_and(|n| n <= last) && !listed.contains(name)
            })
            .collect();
        self.delete_keys(stale, version_dir).await
    }

    /// Deletes, once `current` is the table's version, the versions older than it beyond the
    /// newest `keep_versions` complete ones, incomplete versions older than it (runs that
    /// failed), and the objects of the layout before versions (`<table>/part-*.parquet`).
    /// Versions newer than `current` belong to runs still going and are left alone.
    pub(super) async fn remove_old_versions(&self, table_dir: &str, current: &str) -> Result<()> {
        let table_prefix = self.key(table_dir, "");
        let keys = self.keys_under(&table_prefix).await?;
        let mut versions: std::collections::BTreeMap<&str, (bool, Vec<&String>)> =
            Default::default();
        let mut unversioned = Vec::new();
        for key in &keys {
            let rest = &key[table_prefix.len()..];
            match rest.split_once('/') {
                Some((version, inside))
                    if version.starts_with(crate::layout::names::VERSION_PREFIX) =>
                {
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
    pub(super) async fn abort_abandoned_uploads(
        &self,
        table_prefix: &str,
        current: &str,
    ) -> Result<()> {
        for (key, upload_id) in self.multipart_uploads(table_prefix).await? {
            let version = key[table_prefix.len().min(key.len())..]
                .split('/')
                .next()
                .unwrap_or_default();
            if !version.starts_with(crate::layout::names::VERSION_PREFIX) || version >= current {
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
    pub(super) async fn multipart_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>> {
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
