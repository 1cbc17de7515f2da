//! `_manifest.json`: what a table's published export holds (rows, files, columns, partitions)
//! and, for a table with a cursor, where its next run starts. One typed, versioned document:
//! every writer renders it and every reader parses it here, local directory and S3 alike.
//!
//! Manifests from before `format_version` existed are version 1, the same shape. A manifest
//! of a later version (from a newer etl-toolkit) or one that does not parse is an error that
//! names the file, never taken as "no manifest": that would silently export an incremental
//! table in full again and restart its state.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Partition;
use crate::error::{Error, Result};

/// The manifest's name in a table's directory (and in each S3 version's).
pub const MANIFEST_FILE: &str = "_manifest.json";

/// The version of the manifest's format this build writes, and the newest it reads. Version 2
/// added row versions to tables with a cursor (the `_etl_batch` and `_etl_deleted` columns,
/// the key set `incremental.keys`, each batch's `deleted`): a build that reads only version 1
/// would add batches without them, so it must refuse such a table instead. Version 3 writes
/// identity partition keys in the directory names only, not in the files
/// ([`PATH_ONLY_KEYS`]): a version-2 build would read such files by column position.
pub const FORMAT_VERSION: u32 = 3;

/// The first format whose files hold no identity partition key's column.
pub const PATH_ONLY_KEYS: u32 = 3;

fn first_version() -> u32 {
    1
}

/// A table's `_manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default = "first_version")]
    pub format_version: u32,
    /// The table as `schema.name`, or `name` in `public`.
    pub table: String,
    pub schema: String,
    /// Rows in every file listed (the full export's and each batch's).
    pub rows: u64,
    pub bytes: u64,
    /// Every file a reader reads, relative to the table's directory (or S3 version).
    pub files: Vec<String>,
    pub snapshot_taken_at: Option<String>,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<PartitionKey>,
    pub partitions: Vec<Partition>,
    /// A table with a cursor: where its next run starts, and the batches added so far.
    pub incremental: Option<Incremental>,
    /// `etl-toolkit <version>`, the tool that wrote it.
    pub tool: String,
    /// On S3: the version directory (`v=<run>`) this manifest makes current, and its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type in PostgreSQL; a masked column's files hold the hash, as text.
    pub sql_type: String,
    pub nullable: bool,
    /// How a masked column was hashed (`hmac_sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionKey {
    /// The key's name in the paths (`created_at_day`).
    pub name: String,
    /// The column it is computed from.
    pub column: Option<String>,
    /// `identity`, `year`, `month` or `day`.
    pub transform: String,
}

/// The `incremental` section: the state the next run of a table with a cursor starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incremental {
    pub cursor: String,
    /// The watermark as a timestamp, for people; `watermark_micros` is what runs read.
    pub watermark: String,
    pub watermark_micros: i64,
    pub watermark_from: WatermarkFrom,
    /// The snapshot the watermark came from (`xmin:xmax:xip`) and its time.
    pub snapshot: String,
    pub snapshot_taken_at: String,
    pub schema_fingerprint: String,
    /// The full export the batches add to: its version, rows and files.
    pub version: String,
    pub base_rows: u64,
    pub base_files: Vec<String>,
    pub batches: Vec<Batch>,
    /// The key file (`_keys-00003-<time>.zst` at the table's top): every primary key of the
    /// table at the last run's snapshot, sorted, which the next run compares with the keys it
    /// reads to find deleted rows. None in a manifest of version 1 (the next run is then full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
    /// A table with masked columns: the id of the key that hashed them (an HMAC of a constant
    /// under it, which tells keys apart and reveals nothing of them). A run with another key
    /// exports the table in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_key_id: Option<String>,
}

/// Where a watermark came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatermarkFrom {
    /// The oldest transaction open when the run's snapshot was taken.
    Snapshot,
    /// The run's snapshot time minus `--lookback`.
    Lookback,
}

impl WatermarkFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            WatermarkFrom::Snapshot => "snapshot",
            WatermarkFrom::Lookback => "lookback",
        }
    }
}

/// One batch added to the full export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub batch: u32,
    pub snapshot_taken_at: String,
    /// The batch's lower bound as a timestamp, for people; `lower_micros` is what runs read.
    pub lower: String,
    pub lower_micros: i64,
    /// Rows in its files, deletions included.
    pub rows: u64,
    /// Of those, deletions: keys gone since the previous run.
    #[serde(default)]
    pub deleted: u64,
    pub files: Vec<String>,
}

/// Only the version, read first: a later format may not parse as this one.
#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default = "first_version")]
    format_version: u32,
}

impl Manifest {
    /// Parses `bytes`, the manifest at `path` (a file or an S3 URL, for the error).
    pub fn parse(bytes: &[u8], path: &str) -> Result<Manifest> {
        let invalid = |source| Error::ManifestUnreadable {
            path: path.to_string(),
            source,
        };
        let VersionOnly { format_version } = serde_json::from_slice(bytes).map_err(invalid)?;
        if format_version > FORMAT_VERSION {
            return Err(Error::ManifestTooNew {
                path: path.to_string(),
                found: format_version,
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_slice(bytes).map_err(invalid)
    }

    /// The manifest as written: pretty JSON.
    pub fn render(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(Error::Manifest)
    }

    /// Writes the manifest into the directory `dir` (a staged table).
    pub fn write_into(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST_FILE);
        std::fs::write(&path, self.render()?).map_err(|e| Error::io("cannot write", &path, e))
    }

    /// The number of the last batch, 0 for none.
    pub fn last_batch(&self) -> u32 {
        self.incremental
            .as_ref()
            .and_then(|i| i.batches.last())
            .map_or(0, |b| b.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest as main wrote it before `format_version` (1ed820c), batch included.
    const WRITTEN_BEFORE_VERSIONS: &str = r#"{
      "table": "accounts", "schema": "public", "rows": 3, "bytes": 1200,
      "files": ["part-00000.parquet", "batch-00001-part-00000.parquet"],
      "snapshot_taken_at": "2026-12-01T10:00:00.000000Z",
      "columns": [{"name": "id", "sql_type": "bigint", "nullable": false}],
      "partition_keys": [],
      "partitions": [],
      "incremental": {
        "cursor": "updated_at", "watermark": "2026-12-01T09:59:59.000000Z",
        "watermark_micros": 1796119199000000, "watermark_from": "snapshot",
        "snapshot": "100:105:101,103", "snapshot_taken_at": "2026-12-01T10:00:00.000000Z",
        "schema_fingerprint": "abc", "version": "v1", "base_rows": 2,
        "base_files": ["part-00000.parquet"],
        "batches": [{"batch": 1, "snapshot_taken_at": "2026-12-01T10:00:00.000000Z",
                     "lower": "2026-12-01T09:00:00.000000Z", "lower_micros": 1796115600000000,
                     "rows": 1, "files": ["batch-00001-part-00000.parquet"]}]
      },
      "tool": "etl-toolkit 0.1.0",
      "version": "v=run-1", "location": "s3://bucket/accounts/v=run-1"
    }"#;

    #[test]
    fn a_manifest_from_before_format_versions_reads_as_version_1() {
        let manifest = Manifest::parse(WRITTEN_BEFORE_VERSIONS.as_bytes(), "m").expect("reads");
        assert_eq!(manifest.format_version, 1);
        assert_eq!(manifest.last_batch(), 1);
        let incremental = manifest.incremental.as_ref().expect("incremental");
        assert_eq!(incremental.watermark_from, WatermarkFrom::Snapshot);
        assert_eq!(manifest.version.as_deref(), Some("v=run-1"));
        // What this build writes reads back the same.
        let again = Manifest::parse(&manifest.render().expect("renders"), "m").expect("reads");
        assert_eq!(again, manifest);
    }

    #[test]
    fn a_later_format_names_the_file_and_both_versions() {
        let later = WRITTEN_BEFORE_VERSIONS.replacen('{', r#"{"format_version": 7,"#, 1);
        let e = Manifest::parse(later.as_bytes(), "out/accounts/_manifest.json")
            .expect_err("a later format is refused");
        let message = e.to_string();
        assert!(message.contains("out/accounts/_manifest.json"), "{message}");
        assert!(message.contains("format 7"), "{message}");
        assert!(
            message.contains(&format!("reads format {FORMAT_VERSION}")),
            "{message}"
        );
    }

    #[test]
    fn a_damaged_manifest_names_the_file_and_what_is_wrong() {
        let cut = &WRITTEN_BEFORE_VERSIONS[..WRITTEN_BEFORE_VERSIONS.len() / 2];
        let e = Manifest::parse(cut.as_bytes(), "out/accounts/_manifest.json")
            .expect_err("a damaged manifest is refused");
        let message = crate::error::report(&e);
        assert!(message.contains("out/accounts/_manifest.json"), "{message}");
        assert!(message.contains("EOF"), "{message}");
        let unknown = WRITTEN_BEFORE_VERSIONS.replace("\"snapshot\",", "\"someday\",");
        let e = Manifest::parse(unknown.as_bytes(), "m").expect_err("unknown watermark source");
        assert!(crate::error::report(&e).contains("someday"), "{e}");
    }
}
