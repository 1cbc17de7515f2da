//! The names of everything an export leaves on disk or in a bucket: the one place their
//! grammar is written and read back.
//!
//! In a table's directory (or its S3 version `v=<run id>/`):
//! - data files `<prefix>NNNNN.parquet`: `part-00000.parquet` for a full export,
//!   `batch-00003-<snapshot time>-part-00000.parquet` for an incremental batch,
//!   `shard-00002-part-00000.parquet` for a shard's share of a sharded run;
//! - key files `_keys-00003-<snapshot time>.zst` (a leading `_`, so that readers of the table
//!   pass over them), and `_manifest.json` ([`super::MANIFEST_FILE`]);
//! - nothing else: scratch files start with `.spill` and are never published.
//!
//! In a sharded run's area: `shard-00002.done.json` and `shard-00002.failed-<...>` markers, and
//! each shard's directory `shard-00002` of a table.

/// A full export's data files: `part-00000.parquet`, ...
pub const DATA_PREFIX: &str = "part-";

/// The `n`-th data file of a sequence named `prefix` (`part-`, a batch's, a shard's).
pub fn data_file(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:05}.parquet")
}

/// An incremental batch's data files: `batch-00003-20240131T101500123456Z-part-`. Its number
/// and snapshot time, so that two runs that both planned batch 3 never write the same object.
pub fn batch_prefix(number: u32, stamp: &str) -> String {
    format!("{BATCH_PREFIX}{number:05}-{stamp}-{DATA_PREFIX}")
}

const BATCH_PREFIX: &str = "batch-";

/// What every key file's name starts with.
pub const KEYS_FILE_PREFIX: &str = "_keys-";

/// The name of a run's key file: `_keys-00003-20240131T101500123456Z.zst`. It starts with `_`
/// so that readers of the table's files (Hive, Spark, Athena, pyarrow) pass over it, and
/// carries the batch and snapshot so that two runs never write the same object.
pub fn keys_file_name(batch: u32, stamp: &str) -> String {
    format!("{KEYS_FILE_PREFIX}{batch:05}-{stamp}.zst")
}

/// The batch a file of a table's version belongs to, by its name: a batch's data file
/// (`batch-00003-...`) or key file (`_keys-00003-...`); None for the full export's files.
pub fn file_batch(name: &str) -> Option<u32> {
    name.strip_prefix(BATCH_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.parse().ok())
        .or_else(|| keys_file_batch(name))
}

/// The batch number in a key file's name, if `name` is one.
pub fn keys_file_batch(name: &str) -> Option<u32> {
    name.strip_prefix(KEYS_FILE_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// An S3 table's version directories: `v=<run id>`.
pub const VERSION_PREFIX: &str = "v=";

/// The version directory of run `run_id`: `v=<run id>`.
pub fn version_dir(run_id: &str) -> String {
    format!("{VERSION_PREFIX}{run_id}")
}

/// What every shard's name starts with, in a sharded run's area.
pub const SHARD_PREFIX: &str = "shard-";

/// Shard `shard`'s directory of a table in the run's area: `shard-00002`.
pub fn shard_dir(shard: usize) -> String {
    format!("{SHARD_PREFIX}{shard:05}")
}

/// What shard `shard`'s data files start with, in the table's version: `shard-00002-`.
pub fn shard_files_prefix(shard: usize) -> String {
    format!("{}-", shard_dir(shard))
}

/// Shard `shard`'s data files: `shard-00002-part-`.
pub fn shard_data_prefix(shard: usize) -> String {
    format!("{}{DATA_PREFIX}", shard_files_prefix(shard))
}

/// Shard `shard`'s outcome: `shard-00002.done.json`.
pub fn shard_done(shard: usize) -> String {
    format!("{}.done.json", shard_dir(shard))
}

/// What shard `shard`'s failure markers start with: `shard-00002.failed-`.
pub fn shard_failed_prefix(shard: usize) -> String {
    format!("{}.failed-", shard_dir(shard))
}

/// What scratch files start with: a writer's spilled pages and a partitioned table's spilled
/// rows, in the staged table's directory while it is written, never published.
pub const SPILL_PREFIX: &str = ".spill";

/// A column chunk's spilled pages (unlinked as soon as it is open).
pub fn page_spill(process: u32, n: u64, column: usize) -> String {
    format!("{SPILL_PREFIX}-{process}-{n}-{column}")
}

/// A partitioned table's rows regrouped by partition.
pub const PARTITION_SPILL: &str = ".spill-partitions.arrow";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_written() {
        let name = keys_file_name(3, "20240131T101500123456Z");
        assert_eq!(name, "_keys-00003-20240131T101500123456Z.zst");
        assert_eq!(keys_file_batch(&name), Some(3));
        let batch = data_file(&batch_prefix(3, "20240131T101500123456Z"), 0);
        assert_eq!(
            batch,
            "batch-00003-20240131T101500123456Z-part-00000.parquet"
        );
        assert_eq!(keys_file_batch(&batch), None);
        assert_eq!(file_batch(&batch), Some(3));
        assert_eq!(file_batch(&name), Some(3));
        assert_eq!(file_batch(&data_file(DATA_PREFIX, 0)), None);
        assert_eq!(
            data_file(&shard_data_prefix(2), 1),
            "shard-00002-part-00001.parquet"
        );
        assert_eq!(shard_done(2), "shard-00002.done.json");
        assert!(shard_failed_prefix(2).starts_with(SHARD_PREFIX));
        assert!(page_spill(1, 2, 3).starts_with(SPILL_PREFIX));
        assert!(PARTITION_SPILL.starts_with(SPILL_PREFIX));
        assert_eq!(version_dir("run-1"), "v=run-1");
    }
}
