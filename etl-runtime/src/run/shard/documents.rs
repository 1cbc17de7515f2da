//! The documents of a sharded run's area, each a serde type with the area's `format_version`:
//! the plan every shard reads, a shard's outcome, a failed attempt.

use serde::{Deserialize, Serialize};

use crate::source::Snapshot;
use crate::source::ranges::ReadRange;
use crate::write::partition::Partition;

/// What every shard of a run reads: the snapshot, and each table's ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    pub run: String,
    /// The tables' version being written (`<snapshot time>-<run>`): the files of an object
    /// store's table go under it, never current until the coordinator publishes.
    pub version: String,
    pub shards: usize,
    pub snapshot: Snapshot,
    pub tables: Vec<PlannedTable>,
}

/// One table of a sharded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTable {
    pub name: String,
    pub ranges: Vec<ReadRange>,
    /// Why the table is one range (read by shard 0), if it is.
    pub single_stream_reason: Option<String>,
}

impl PlannedTable {
    /// Shard `shard`'s ranges: every `shards`-th, so that a retried shard reads exactly what
    /// its first attempt read.
    pub fn share(&self, shard: usize, shards: usize) -> Vec<ReadRange> {
        self.ranges
            .iter()
            .enumerate()
            .filter(|(i, _)| i % shards.max(1) == shard)
            .map(|(_, range)| range.clone())
            .collect()
    }
}

/// What one shard wrote: per table, its files under its own directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShardOutcome {
    pub shard: usize,
    /// The snapshot it read (a coordinator restarted under the same run name has another and
    /// ignores what the previous one's shards wrote).
    pub snapshot: String,
    pub tables: Vec<ShardTable>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShardTable {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    /// Paths under the shard's directory of the table (inside partition directories).
    pub files: Vec<String>,
    pub partitions: Vec<Partition>,
}

pub(super) const PLAN: &str = "plan.json";

/// The format of the area's documents (plan, outcomes, failures) this build writes, and the
/// newest it reads.
pub(super) const FORMAT_VERSION: u32 = 1;

/// A document of the area as written: its format version, then its body's fields.
#[derive(Serialize)]
pub(super) struct Document<'a, T> {
    pub(super) format_version: u32,
    #[serde(flatten)]
    pub(super) body: &'a T,
}

/// Only the version, read first: a later format may not parse as this one.
#[derive(Deserialize)]
pub(super) struct VersionOnly {
    #[serde(default = "first_version")]
    pub(super) format_version: u32,
}

fn first_version() -> u32 {
    1
}

/// A failed attempt of a shard.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Failure {
    pub(super) shard: usize,
    pub(super) snapshot: String,
    pub(super) error: String,
}
