//! Incremental runs of a table with a cursor (`#[etl(cursor = "updated_at")]`): the first run
//! exports the table whole; later runs add a batch of the rows whose cursor is at or after the
//! last run's watermark, beside the files already published.
//!
//! The watermark is not the largest cursor seen: a transaction open when the run's snapshot was
//! taken may commit later with an earlier cursor. It is the start of the oldest transaction
//! open just before the snapshot (see [`OpenTransactions`]), or, when the role cannot see
//! other sessions, the snapshot's time minus `--lookback`. Bounds are microseconds, the lower
//! bound is closed: a row may come twice at a boundary, never zero times.
//!
//! The state (watermark, the snapshot it came from, the batches, the model's fingerprint) is
//! the `incremental` section of the table's `_manifest.json`, published with the data in one
//! step, so that it advances exactly when the batch does.

use std::time::Duration;

use serde_json::{Value, json};

use crate::codec::Scalar;
use crate::layout::{Manifest, manifest, names};
use crate::mask::MaskKey;
use crate::model::TableInfo;
use crate::source::{OpenTransactions, Snapshot};

/// How far back the next run starts when the role cannot see other sessions' transactions
/// and no `--lookback` was given.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(15 * 60);

/// `timestamp` (without time zone) says nothing of its zone: writers may store any local
/// time, up to 14 hours from UTC, so such a cursor's bound is held back that much more.
const WIDEST_UTC_OFFSET_MICROS: i64 = 14 * 3600 * 1_000_000;

/// The run's choices for tables with a cursor.
#[derive(Debug, Clone, Default)]
pub struct IncrementalOptions {
    /// Export every table in full (a new version, which compacts the batches).
    pub full: bool,
    /// Hold the watermark back this much more (cursors set by clients' clocks), or, when the
    /// role cannot see other sessions, by this instead of [`DEFAULT_LOOKBACK`].
    pub lookback: Option<Duration>,
}

/// Where the next run starts, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    pub micros: i64,
    /// `snapshot` (from the open transactions) or `lookback`.
    pub from: &'static str,
}

impl Watermark {
    /// The watermark of a run on `snapshot`, for `info`'s cursor; None if the open
    /// transactions could not be read (the table then keeps no state: its next run is full).
    pub fn of_run(
        snapshot: &Snapshot,
        info: &TableInfo,
        options: &IncrementalOptions,
    ) -> Option<Self> {
        let open = snapshot.open_transactions?;
        let mut watermark = Self::from_open_transactions(&open, options.lookback);
        let naive = info
            .cursor
            .and_then(|i| info.columns.get(i))
            .is_some_and(|c| c.wire == Scalar::Timestamp);
        if naive {
            watermark.micros -= WIDEST_UTC_OFFSET_MICROS;
        }
        Some(watermark)
    }

    fn from_open_transactions(open: &OpenTransactions, lookback: Option<Duration>) -> Self {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2);
        if open.sees_all_sessions {
            let oldest = open
                .oldest_start_micros
                .map_or(open.read_at_micros, |start| start.min(open.read_at_micros));
            Self {
                micros: oldest - lookback.map_or(0, micros),
                from: "snapshot",
            }
        } else {
            Self {
                micros: open.read_at_micros - micros(lookback.unwrap_or(DEFAULT_LOOKBACK)),
                from: "lookback",
            }
        }
    }
}

/// A published batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub number: u32,
    /// When the batch's snapshot was taken.
    pub snapshot_taken_at: String,
    /// Its rows are those whose cursor was at or after this (microseconds since 1970, UTC).
    pub lower_micros: i64,
    /// Rows in its files, deletions included.
    pub rows: u64,
    /// Deletions: keys gone since the run before.
    pub deleted: u64,
    pub files: Vec<String>,
}

/// What a run of a table with a cursor published: its files and rows, its key file, and the
/// deletions among its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFiles {
    pub rows: u64,
    pub files: Vec<String>,
    /// The run's key file (see `layout::keys`); None if its keys were not read.
    pub keys: Option<String>,
    pub deleted: u64,
}

/// A table's incremental state, as its manifest keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableState {
    pub cursor: String,
    /// The next run reads rows whose cursor is at or after this.
    pub watermark: Watermark,
    /// The snapshot the watermark came from (`xmin:xmax:xip`) and its time.
    pub snapshot: String,
    pub snapshot_taken_at: String,
    pub schema_fingerprint: String,
    /// The full export the batches add to: its snapshot's time, rows and files.
    pub version: String,
    pub base_rows: u64,
    pub base_files: Vec<String>,
    pub batches: Vec<Batch>,
    /// The key file of the last run: the keys the next run finds deletions against.
    pub keys: Option<String>,
    /// The manifest format its files were written in.
    pub format_version: u32,
    /// For a table with masked columns, which key hashed them ([`MaskKey::id`]).
    pub mask_key_id: Option<String>,
}

impl TableState {
    /// Every file a reader reads: the full export's, then each batch's.
    pub fn files(&self) -> Vec<String> {
        let mut files = self.base_files.clone();
        for batch in &self.batches {
            files.extend(batch.files.iter().cloned());
        }
        files
    }

    pub fn rows(&self) -> u64 {
        self.base_rows + self.batches.iter().map(|b| b.rows).sum::<u64>()
    }

    /// The deletions among [`Self::rows`]: every batch's deletion rows.
    pub fn deleted(&self) -> u64 {
        self.batches.iter().map(|b| b.deleted).sum()
    }

    /// The state as the manifest's `incremental` section keeps it.
    pub fn to_section(&self) -> manifest::Incremental {
        manifest::Incremental {
            cursor: self.cursor.clone(),
            watermark: render_micros(self.watermark.micros),
            watermark_micros: self.watermark.micros,
            watermark_from: if self.watermark.from == "lookback" {
                manifest::WatermarkFrom::Lookback
            } else {
                manifest::WatermarkFrom::Snapshot
            },
            snapshot: self.snapshot.clone(),
            snapshot_taken_at: self.snapshot_taken_at.clone(),
            schema_fingerprint: self.schema_fingerprint.clone(),
            version: self.version.clone(),
            base_rows: self.base_rows,
            base_files: self.base_files.clone(),
            batches: self
                .batches
                .iter()
                .map(|b| manifest::Batch {
                    batch: b.number,
                    snapshot_taken_at: b.snapshot_taken_at.clone(),
                    lower: render_micros(b.lower_micros),
                    lower_micros: b.lower_micros,
                    rows: b.rows,
                    deleted: b.deleted,
                    files: b.files.clone(),
                })
                .collect(),
            keys: self.keys.clone(),
            mask_key_id: self.mask_key_id.clone(),
        }
    }

    /// The state in a manifest's `incremental` section; None if it has none (a table
    /// exported without a cursor: the next run is then full).
    pub fn from_manifest(manifest: &Manifest) -> Option<Self> {
        let state = manifest.incremental.as_ref()?;
        Some(Self {
            cursor: state.cursor.clone(),
            watermark: Watermark {
                micros: state.watermark_micros,
                from: state.watermark_from.as_str(),
            },
            snapshot: state.snapshot.clone(),
            snapshot_taken_at: state.snapshot_taken_at.clone(),
            schema_fingerprint: state.schema_fingerprint.clone(),
            version: state.version.clone(),
            base_rows: state.base_rows,
            base_files: state.base_files.clone(),
            batches: state
                .batches
                .iter()
                .map(|b| Batch {
                    number: b.batch,
                    snapshot_taken_at: b.snapshot_taken_at.clone(),
                    lower_micros: b.lower_micros,
                    rows: b.rows,
                    deleted: b.deleted,
                    files: b.files.clone(),
                })
                .collect(),
            keys: state.keys.clone(),
            format_version: manifest.format_version,
            mask_key_id: state.mask_key_id.clone(),
        })
    }
}

/// What a run does with a table that has a cursor.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// A new version: every row.
    Full { reason: String },
    /// A batch of the rows changed since `previous`'s watermark.
    Batch {
        previous: Box<TableState>,
        number: u32,
    },
}

impl Plan {
    /// The plan of `info`'s run after `previous`, its masked columns hashed with `mask_key`.
    pub fn new(
        info: &TableInfo,
        previous: Option<TableState>,
        options: &IncrementalOptions,
        mask_key: Option<&MaskKey>,
    ) -> Self {
        let full = |reason: &str| Plan::Full {
            reason: reason.to_string(),
        };
        if options.full {
            return full("--full");
        }
        let Some(previous) = previous else {
            return full("first run: no incremental state");
        };
        let cursor = info
            .cursor
            .and_then(|i| info.columns.get(i))
            .map(|c| c.name);
        if cursor != Some(previous.cursor.as_str()) {
            return full("the model's cursor changed");
        }
        if previous.schema_fingerprint != schema_fingerprint(info) {
            return full("the model's columns or types changed");
        }
        if previous.mask_key_id != mask_key_id(info, mask_key) {
            // Batches hashed with another key would not match the rows before them.
            return full("the mask key changed: every masked value is hashed anew");
        }
        if previous.keys.is_none() {
            return full(
                "the state predates row versions: no key set to find deleted rows against",
            );
        }
        let identity_keys = info
            .partition_by
            .iter()
            .any(|key| key.transform == etl_types::PartitionTransform::Identity);
        if identity_keys && previous.format_version < crate::layout::manifest::PATH_ONLY_KEYS {
            return full(
                "its files hold the identity partition keys' columns, which this version \
                 writes in the partitions' directory names only",
            );
        }
        let number = previous.batches.last().map_or(1, |b| b.number + 1);
        Plan::Batch {
            previous: Box::new(previous),
            number,
        }
    }

    /// Numbers the batch after `uploaded`, the last batch whose files readers may see
    /// (a run that uploaded and failed to publish), if that is not already so.
    pub fn number_after(&mut self, uploaded: u32) {
        if let Plan::Batch { number, .. } = self
            && *number <= uploaded
        {
            *number = uploaded + 1;
        }
    }

    /// The prefix of the run's file names: `part-` for a full export; for a batch, its
    /// number and its snapshot's time (`batch-00003-20240131T101500123456Z-part-`), so that
    /// two runs that both planned batch 3 never write the same object.
    pub fn file_prefix(&self, snapshot: &Snapshot) -> String {
        match self {
            Plan::Full { .. } => names::DATA_PREFIX.to_string(),
            Plan::Batch { number, .. } => names::batch_prefix(*number, &snapshot_stamp(snapshot)),
        }
    }

    /// The run's place in the order of row versions (`_etl_batch`): 0 for a full export, the
    /// batch's number for a batch.
    pub fn number(&self) -> u32 {
        match self {
            Plan::Full { .. } => 0,
            Plan::Batch { number, .. } => *number,
        }
    }

    /// The name of the run's key file.
    pub fn keys_file(&self, snapshot: &Snapshot) -> String {
        crate::layout::names::keys_file_name(self.number(), &snapshot_stamp(snapshot))
    }

    /// The previous run's key file, for a batch.
    pub fn previous_keys(&self) -> Option<&str> {
        match self {
            Plan::Full { .. } => None,
            Plan::Batch { previous, .. } => previous.keys.as_deref(),
        }
    }

    /// The state after this run published `files` (`rows` rows), and what to report. A batch
    /// whose run could not read the open transactions keeps the previous watermark (the next
    /// run reads the same range again); a full export without one keeps no state.
    pub fn outcome(
        &self,
        info: &TableInfo,
        snapshot: &Snapshot,
        (options, mask_key): (&IncrementalOptions, Option<&MaskKey>),
        published: RunFiles,
    ) -> (Option<TableState>, IncrementalOutcome) {
        let deleted = published.deleted;
        let watermark = Watermark::of_run(snapshot, info, options);
        let mask_key_id = mask_key_id(info, mask_key);
        match self {
            Plan::Full { reason } => (
                watermark
                    .clone()
                    .map(|w| self.next_state(info, snapshot, w, published, mask_key_id)),
                IncrementalOutcome {
                    mode: "full",
                    reason: reason.clone(),
                    batch: None,
                    deleted,
                    watermark,
                },
            ),
            Plan::Batch { previous, number } => {
                let watermark = watermark.unwrap_or_else(|| previous.watermark.clone());
                (
                    Some(self.next_state(
                        info,
                        snapshot,
                        watermark.clone(),
                        published,
                        mask_key_id,
                    )),
                    IncrementalOutcome {
                        mode: "batch",
                        reason: format!(
                            "rows whose {} is at or after {}",
                            previous.cursor,
                            render_micros(previous.watermark.micros)
                        ),
                        batch: Some(*number),
                        deleted,
                        watermark: Some(watermark),
                    },
                )
            }
        }
    }

    /// The WHERE condition of a batch's read: the cursor at or after the last watermark.
    pub fn filter(&self, info: &TableInfo) -> Option<String> {
        let Plan::Batch { previous, .. } = self else {
            return None;
        };
        let column = info.cursor.and_then(|i| info.columns.get(i))?;
        let bound = render_micros(previous.watermark.micros);
        let name = etl_types::quote_ident(column.name);
        Some(if column.wire == Scalar::Timestamp {
            // The bound is UTC held back by the widest offset (see `Watermark::of_run`).
            format!("{name} >= '{}'::timestamp", bound.trim_end_matches('Z'))
        } else {
            format!("{name} >= '{bound}'::timestamptz")
        })
    }

    /// The state after this run published `files` (`rows` rows) with `watermark`.
    pub fn next_state(
        &self,
        info: &TableInfo,
        snapshot: &Snapshot,
        watermark: Watermark,
        published: RunFiles,
        mask_key_id: Option<String>,
    ) -> TableState {
        let RunFiles {
            rows,
            files,
            keys,
            deleted,
        } = published;
        let cursor = info
            .cursor
            .and_then(|i| info.columns.get(i))
            .map_or_else(String::new, |c| c.name.to_string());
        let (version, base_rows, base_files, batches) = match self {
            Plan::Full { .. } => (snapshot.taken_at.clone(), rows, files, Vec::new()),
            Plan::Batch { previous, number } => {
                let mut batches = previous.batches.clone();
                batches.push(Batch {
                    number: *number,
                    snapshot_taken_at: snapshot.taken_at.clone(),
                    lower_micros: previous.watermark.micros,
                    rows,
                    deleted,
                    files,
                });
                (
                    previous.version.clone(),
                    previous.base_rows,
                    previous.base_files.clone(),
                    batches,
                )
            }
        };
        TableState {
            cursor,
            watermark,
            snapshot: snapshot.xids.clone(),
            snapshot_taken_at: snapshot.taken_at.clone(),
            schema_fingerprint: schema_fingerprint(info),
            version,
            base_rows,
            base_files,
            batches,
            keys,
            format_version: crate::layout::manifest::FORMAT_VERSION,
            mask_key_id,
        }
    }
}

/// The id of the key `info`'s masked columns are hashed with; None without masked columns.
fn mask_key_id(info: &TableInfo, key: Option<&MaskKey>) -> Option<String> {
    key.filter(|_| info.columns.iter().any(|c| c.mask.is_some()))
        .map(MaskKey::id)
}

/// The snapshot's time as it goes into file names: `20240131T101500123456Z`.
fn snapshot_stamp(snapshot: &Snapshot) -> String {
    snapshot
        .taken_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// What the run did with a table that has a cursor, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrementalOutcome {
    /// `full` or `batch`.
    pub mode: &'static str,
    /// Why full; for a batch, which rows.
    pub reason: String,
    pub batch: Option<u32>,
    /// Deletions the run published: keys gone since the run before.
    pub deleted: u64,
    /// The next run's lower bound and where it came from; None if no state was kept.
    pub watermark: Option<Watermark>,
}

impl IncrementalOutcome {
    pub fn to_json(&self) -> Value {
        json!({
            "mode": self.mode,
            "reason": self.reason,
            "batch": self.batch,
            "deleted_rows": self.deleted,
            "next_lower_bound": self.watermark.as_ref().map(|w| render_micros(w.micros)),
            "watermark_from": self.watermark.as_ref().map(|w| w.from),
        })
    }

    /// One line for a person: `batch 3: rows changed since 2024-... (next from the snapshot)`.
    pub fn describe(&self) -> String {
        let next = match &self.watermark {
            Some(w) if w.from == "lookback" => format!(
                "next run from {} (--lookback: this role cannot see other sessions' \
                 transactions; grant it pg_read_all_stats for an exact watermark)",
                render_micros(w.micros)
            ),
            Some(w) => format!("next run from {}", render_micros(w.micros)),
            None => "no state kept: the next run is full".to_string(),
        };
        match self.batch {
            Some(n) => format!(
                "batch {n}: {}, {} deleted; {next}",
                self.reason, self.deleted
            ),
            None => format!("full export ({}); {next}", self.reason),
        }
    }
}

/// A stable fingerprint of what the files hold: columns (name, type, nullability), partition
/// keys and cursor. A batch is only added to files of the same fingerprint.
pub fn schema_fingerprint(info: &TableInfo) -> String {
    let mut text = String::new();
    for column in info.columns {
        text.push_str(&format!(
            "{}\t{}\t{}",
            column.name, column.sql_type, column.nullable
        ));
        // Only when masked, so that the fingerprints of models without masks stay as they were.
        if let Some(mask) = column.mask {
            text.push_str(&format!("\tmask={}", mask.name()));
        }
        text.push('\n');
    }
    for key in info.partition_by {
        text.push_str(&format!("partition {}\t{}\n", key.name, key.column));
    }
    if let Some(cursor) = info.cursor {
        text.push_str(&format!("cursor {cursor}\n"));
    }
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Microseconds since 1970 as RFC 3339 in UTC with all six digits.
pub fn render_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || micros.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_oldest_open_transaction_or_the_lookback() {
        let open = OpenTransactions {
            read_at_micros: 1_000_000_000,
            oldest_start_micros: Some(400_000_000),
            sees_all_sessions: true,
        };
        let w = Watermark::from_open_transactions(&open, None);
        assert_eq!(
            w,
            Watermark {
                micros: 400_000_000,
                from: "snapshot"
            }
        );
        let w = Watermark::from_open_transactions(&open, Some(Duration::from_secs(100)));
        assert_eq!(w.micros, 300_000_000);
        let none_open = OpenTransactions {
            oldest_start_micros: None,
            ..open
        };
        assert_eq!(
            Watermark::from_open_transactions(&none_open, None).micros,
            1_000_000_000
        );
        let blind = OpenTransactions {
            sees_all_sessions: false,
            ..open
        };
        let w = Watermark::from_open_transactions(&blind, Some(Duration::from_secs(60)));
        assert_eq!(
            w,
            Watermark {
                micros: 940_000_000,
                from: "lookback"
            }
        );
    }

    #[test]
    fn bounds_keep_every_microsecond() {
        assert_eq!(
            render_micros(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(render_micros(-1), "1969-12-31T23:59:59.999999Z");
    }
}
