//! Exporting one table: stream its rows on the run's snapshot, convert and encode them on a
//! blocking thread while the next rows arrive, and publish the files when all are written.
//!
//! The pipeline's rooms: [`read`] (the COPY streams into chunks), [`converters`] (chunks into
//! Arrow on the converter pool), [`encode`] (the encoder thread's files), [`listing`] (the
//! manifest); this module holds the options and the publication around them.

mod converters;
mod encode;
mod listing;
mod masking;
mod read;

// The rooms take these through `use super::*`: one list of what the pipeline uses.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures_util::{FutureExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::layout::Manifest;
use crate::model::{EtlTable, PartitionKey, RecordBatchEncoder, TableInfo, WireBatchEncoder};
use crate::run::deletes::{self, Versioned};
use crate::run::incremental::{IncrementalOptions, IncrementalOutcome, Plan, RunFiles, TableState};
use crate::run::processor::ChunkProcessor;
use crate::run::progress::ProgressObserver;
use crate::sink::Sink;
use crate::source::copy::TupleSplitter;
use crate::source::ranges::{ReadOptions, ReadParallelism, ReadPlan, ReadRange};
use crate::source::{ColumnStatistics, PgSource};
use crate::write::partition::{Partition, PartitionedWriter};
use crate::write::{FileListener, ParquetOptions, RollingFiles, WrittenFile};

pub use converters::{Converters, EncodeFn};
pub(crate) use converters::{TableProcessor, encode_part};
pub(crate) use encode::FileSequence;
use encode::encode_chunks;
pub(crate) use listing::{Listing, Publication, publish_listing, write_manifest};
pub use read::ReadSummary;
pub(crate) use read::{TableRead, Written, write_files};

/// How tables are exported.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub parquet: ParquetOptions,
    /// Rows handed from the reader to the encoder at a time (4,096: larger chunks are no
    /// faster and hold more memory). Memory holds about three chunks plus the pages of the
    /// open row group that are not spilled yet.
    pub chunk_rows: usize,
    /// ... or fewer, once a chunk holds this many bytes of COPY tuples (8 MB), so that memory
    /// follows this budget rather than the rows' width: 4,096 rows carrying documents of
    /// 400 KB would be 1.6 GB per chunk, and about three chunks are in flight (one arriving,
    /// one queued, one converted), each converted into Arrow arrays as large again. A row
    /// larger than the budget is a chunk of its own. Rows of up to 2 KB still fill 4,096-row
    /// chunks, so narrow tables are read exactly as before.
    pub chunk_bytes: usize,
    /// Start a new file once a file reaches this size (512 MB by default; None: one file).
    pub max_file_bytes: Option<u64>,
    /// The threads that convert rows to Arrow, shared by every table of a run.
    pub converters: Converters,
    /// A partitioned table's rows held in memory before they are regrouped by partition and
    /// spilled to local disk (12 MB; the regroup's copy takes as much again, as the freed
    /// source is not handed back to the system at once). A spill holds up the encoder, and so
    /// the read, while it runs: smaller spills overlap the read better and hold less memory,
    /// down to where each spill's fixed cost takes over (PERFORMANCE.md).
    pub partition_buffer_bytes: usize,
    /// Stops the run's exports (SIGTERM): nothing more is read or published.
    pub cancel: Cancel,
    /// Told of every table's read as it goes (the command line's progress bars).
    pub progress: ProgressObserver,
    /// What runs do with tables that have a cursor.
    pub incremental: IncrementalOptions,
    /// The key of masked columns (`#[etl(mask = ...)]`); a table with masked columns is not
    /// read without it.
    pub mask_key: Option<crate::mask::MaskKey>,
    /// How many connections read a table, by which block ranges.
    pub read: ReadOptions,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            parquet: ParquetOptions::default(),
            chunk_rows: 4096,
            chunk_bytes: 8 << 20,
            max_file_bytes: Some(512 << 20),
            converters: Converters::default(),
            partition_buffer_bytes: 12 << 20,
            cancel: Cancel::default(),
            progress: ProgressObserver::default(),
            incremental: IncrementalOptions::default(),
            read: ReadOptions::default(),
            mask_key: None,
        }
    }
}

/// What one table's export wrote.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    /// Where the table was published (a directory or an S3 prefix).
    pub location: String,
    /// File paths under `location` (inside partition directories for a partitioned table).
    pub files: Vec<String>,
    /// The partitions written, in order (none for a table without partition keys).
    pub partitions: Vec<Partition>,
    pub seconds: f64,
    /// Source rows a task left out because it declares that bad rows are skipped.
    pub skipped_rows: u64,
    /// Differences from the model that did not stop the export (a column added, ...).
    pub warnings: Vec<String>,
    /// For a table with a cursor: full or batch, and where the next run starts.
    pub incremental: Option<IncrementalOutcome>,
    /// By how many connections and ranges it was read.
    pub read: ReadSummary,
}

/// The directory a table is written to under the output: `notes`, or `sales.orders` outside
/// the `public` schema.
pub fn table_dir(info: &TableInfo) -> String {
    info.display_name()
}

/// Exports every row of `T`'s table to `sink`. On any error nothing is published and the
/// previous export of the table stays as it was.
pub async fn export_table<T: EtlTable>(
    source: &PgSource,
    sink: &dyn Sink,
    options: &ExportOptions,
) -> Result<TableReport> {
    export_encoded(
        source,
        sink,
        options,
        &T::INFO,
        T::Encoder::schema(),
        encode_part::<T>,
    )
    .await
    .map_err(|e| e.in_table(&T::INFO.display_name()))
}

/// [`export_table`] given the table's schema and encoder instead of its type: the code each
/// registered model adds to a binary is only its `encode` function.
pub(crate) async fn export_encoded(
    source: &PgSource,
    sink: &dyn Sink,
    options: &ExportOptions,
    info: &TableInfo,
    schema: SchemaRef,
    encode: EncodeFn,
) -> Result<TableReport> {
    let processor = TableProcessor::new(options.converters.clone(), schema, encode);
    run_export(source, sink, options, info, info, Box::new(processor)).await
}

/// Streams `source_table` on the run's snapshot through `processor` and publishes what it
/// writes as `output` (the same table for a table export, the task's records for a task).
pub(crate) async fn run_export(
    source: &PgSource,
    sink: &dyn Sink,
    options: &ExportOptions,
    source_table: &TableInfo,
    output: &TableInfo,
    processor: Box<dyn ChunkProcessor>,
) -> Result<TableReport> {
    let started = Instant::now();
    let dir_name = table_dir(output);
    let mut warnings = Vec::new();
    // A table with a cursor: a batch of what changed since the last run, or a full export.
    // The table's lock is held until its state is published: two runs never both add to it.
    let snapshot = source.snapshot();
    let (plan, previous_manifest, _lock) = match (output.cursor, snapshot) {
        (Some(_), Some(_)) if sink.keeps_incremental_state() => {
            let lock = sink.lock_table(&dir_name)?;
            let manifest = match sink.current_manifest(&dir_name).await {
                // A manifest this run cannot read stops the table, unless it is exported anew.
                Err(e @ (Error::ManifestUnreadable { .. } | Error::ManifestTooNew { .. }))
                    if options.incremental.full =>
                {
                    warnings.push(format!(
                        "{}; --full exports the table anew",
                        crate::error::report(&e)
                    ));
                    None
                }
                read => read?,
            };
            let previous = manifest.as_ref().and_then(TableState::from_manifest);
            let mut plan = Plan::new(
                output,
                previous,
                &options.incremental,
                options.mask_key.as_ref(),
            );
            if let (Plan::Batch { .. }, Some(manifest)) = (&plan, &manifest) {
                plan.number_after(sink.last_batch_uploaded(&dir_name, manifest).await?);
            }
            (Some(plan), manifest, Some(lock))
        }
        (Some(_), _) => {
            warnings.push(format!(
                "no incremental state here (this output keeps none, or the run has no \
                 snapshot): {} is exported in full",
                output.display_name()
            ));
            (None, None, None)
        }
        (None, _) => (None, None, None),
    };
    let mut staged = sink.stage(&dir_name)?;
    let own_columns = source_table.display_name() == output.display_name();
    // A table with a cursor: its files carry row versions, and a run that keeps state reads
    // the table's keys too, for its deletions and for the next run's.
    let mut versions = None;
    let mut processor = processor;
    if crate::layout::versions::has_row_versions(output) {
        let found = deletes::row_versions(
            source,
            sink,
            (&options.cancel, options.mask_key.as_ref()),
            output,
            (&dir_name, &staged.dir),
            (plan.as_ref(), previous_manifest.as_ref()),
            processor.schema(),
        )
        .await;
        match found {
            Ok(mut found) => {
                let deletions = std::mem::take(&mut found.deletions);
                processor = Box::new(Versioned::new(
                    processor,
                    found.schema.clone(),
                    found.number,
                    deletions,
                ));
                versions = Some(found);
            }
            Err(e) => {
                sink.discard(staged).await;
                return Err(e);
            }
        }
    }
    let read = TableRead {
        filter: plan.as_ref().and_then(|p| p.filter(output)),
        file_prefix: match (&plan, snapshot) {
            (Some(plan), Some(snapshot)) => plan.file_prefix(snapshot),
            _ => crate::layout::names::DATA_PREFIX.to_string(),
        },
        batch: matches!(plan, Some(Plan::Batch { .. })),
        own_columns,
        ranges: None,
        write_back: sink.publishes_staged_files(),
    };
    // A whole table's files can go to an object store as each is complete, while the next is
    // written (a batch goes into the current version, at its publication).
    let (completed, completed_files) = mpsc::unbounded_channel::<std::path::PathBuf>();
    let listener: Option<FileListener> = (!read.batch).then(|| {
        Arc::new(move |file: &WrittenFile| {
            // A sink that uploads at publication has let the receiver go.
            let _ = completed.send(file.path.clone());
        }) as FileListener
    });
    let (written, uploaded) = futures_util::future::join(
        write_files(
            source,
            &staged.dir,
            options,
            source_table,
            output.partition_by,
            &read,
            (processor, listener),
        ),
        sink.upload_as_written(&staged, completed_files),
    )
    .await;
    let written = match (written, uploaded) {
        (Ok(written), Ok(uploaded)) => {
            staged.uploaded = uploaded;
            Ok(written)
        }
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    };
    match written {
        Ok(Written {
            files,
            partitions,
            skipped_rows,
            warnings: read_warnings,
            read: read_summary,
        }) => {
            warnings.extend(read_warnings);
            let rows = files.iter().map(|f| f.rows).sum();
            let bytes = files.iter().map(|f| f.bytes).sum();
            // Paths under the table's directory: `part-00000.parquet`, or inside partitions.
            let names: Vec<String> = files
                .iter()
                .filter_map(|f| f.path.strip_prefix(&staged.dir).ok())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            let (state, incremental) = match (&plan, snapshot) {
                (Some(plan), Some(snapshot)) => {
                    let published = RunFiles {
                        rows,
                        files: names.clone(),
                        keys: versions.as_ref().and_then(|v| v.keys.clone()),
                        deleted: versions.as_ref().map_or(0, |v| v.deleted),
                    };
                    let (state, outcome) = plan.outcome(
                        output,
                        snapshot,
                        (&options.incremental, options.mask_key.as_ref()),
                        published,
                    );
                    (state, Some(outcome))
                }
                _ => (None, None),
            };
            // A batch adds partitions to those the table has.
            let partitions = match &previous_manifest {
                Some(previous) if matches!(plan, Some(Plan::Batch { .. })) => {
                    merge_partitions(previous, partitions)
                }
                _ => partitions,
            };
            let all_files = state
                .as_ref()
                .map_or_else(|| names.clone(), TableState::files);
            let listing = Listing {
                rows: state.as_ref().map_or(rows, TableState::rows),
                bytes,
                files: &all_files,
                partitions: &partitions,
                incremental: state.as_ref(),
            };
            let previous_files = match &plan {
                Some(Plan::Batch { previous, .. }) => previous.files(),
                _ => Vec::new(),
            };
            let publication = match (&plan, &previous_manifest) {
                (Some(Plan::Batch { .. }), Some(manifest)) => Publication::Batch {
                    manifest,
                    previous_files: &previous_files,
                },
                _ => Publication::Table,
            };
            let location = publish_listing(
                (sink, &options.cancel),
                staged,
                (output, &listing),
                source.snapshot().map(|s| s.taken_at.clone()),
                publication,
            )
            .await?;
            Ok(TableReport {
                table: output.display_name(),
                rows,
                bytes,
                location,
                files: names,
                partitions,
                seconds: started.elapsed().as_secs_f64(),
                skipped_rows,
                warnings,
                incremental,
                read: read_summary,
            })
        }
        Err(e) => {
            sink.discard(staged).await;
            Err(e)
        }
    }
}

/// The partitions of `previous` (a manifest) and `added`, each once, the previous first.
fn merge_partitions(previous: &Manifest, added: Vec<Partition>) -> Vec<Partition> {
    let mut partitions = previous.partitions.clone();
    for partition in added {
        if !partitions.iter().any(|p| p.path == partition.path) {
            partitions.push(partition);
        }
    }
    partitions
}

/// Reads `ranges` of `info`'s table (a shard's share) on the source's snapshot into Parquet
/// files named `<file_prefix>NNNNN.parquet` under `dir`, publishing nothing. No file when the
/// share holds no row.
pub(crate) async fn write_share(
    source: &PgSource,
    dir: &Path,
    options: &ExportOptions,
    (info, schema, encode): (&TableInfo, SchemaRef, EncodeFn),
    ranges: Vec<ReadRange>,
    file_prefix: &str,
) -> Result<Written> {
    let processor = TableProcessor::new(options.converters.clone(), schema, encode);
    let read = TableRead {
        filter: None,
        file_prefix: file_prefix.to_string(),
        batch: true,
        own_columns: true,
        ranges: Some(ranges),
        // The coordinator publishes them later, or they go to an object store.
        write_back: false,
    };
    write_files(
        source,
        dir,
        options,
        info,
        info.partition_by,
        &read,
        (Box::new(processor), None),
    )
    .await
}
