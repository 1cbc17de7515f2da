//! Exporting one table: stream its rows on the run's snapshot, convert and encode them on a
//! blocking thread while the next rows arrive, and publish the files when all are written.

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
use crate::write::{ParquetOptions, RollingFiles, WrittenFile};

/// How often a long read reports its progress (as `etl_runtime::progress` events).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// How tables are exported.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub parquet: ParquetOptions,
    /// Rows handed from the reader to the encoder at a time (4,096: as fast as larger chunks
    /// on the bench, with 30 MB less peak memory than 16,384). Memory holds about three chunks
    /// plus the pages of the open row group that are not spilled yet.
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
    /// the read, while it runs: on the 1,000-partition bench table, 12 MB spills made the run
    /// 2.35 -> 2.28 s (medians of 9 interleaved rounds; 1.31 -> 1.27x COPY) and peak RSS
    /// 72-90 -> 60-68 MB against 24 MB, with the same CPU; 48 MB and 6 MB were slower.
    pub partition_buffer_bytes: usize,
    /// Stops the run's exports (SIGTERM): nothing more is read or published.
    pub cancel: Cancel,
    /// Told of every table's read as it goes (the command line's progress bars).
    pub progress: ProgressObserver,
    /// What runs do with tables that have a cursor.
    pub incremental: IncrementalOptions,
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
        }
    }
}

/// A pool of threads converting COPY tuples to Arrow arrays in parallel (`--threads`).
#[derive(Clone, Default)]
pub struct Converters {
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for Converters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Converters({})", self.threads())
    }
}

impl Converters {
    /// `threads` converting threads; with one, conversion runs on the table's own thread.
    pub fn new(threads: usize) -> Result<Self> {
        if threads <= 1 {
            return Ok(Self { pool: None });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("etl-convert-{i}"))
            .build()
            .map_err(|source| Error::ConverterThreads { threads, source })?;
        Ok(Self {
            pool: Some(Arc::new(pool)),
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }

    /// Runs `f` inside the pool (where rayon's parallel iterators use its threads), or on this
    /// thread without one.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            None => f(),
            Some(pool) => pool.install(f),
        }
    }

    /// Runs `a` and `b` at once on the pool's threads (and any parallel work they start), or
    /// one after the other on this thread without a pool.
    pub fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        match &self.pool {
            None => (a(), b()),
            Some(pool) => pool.join(a, b),
        }
    }

    /// Runs `f` on parts of `items`, in parallel on the pool's threads, results in order.
    pub fn map_parts<I: Sync, R: Send>(
        &self,
        items: &[I],
        f: impl Fn(&[I]) -> R + Sync + Send,
    ) -> Vec<R> {
        match &self.pool {
            None => vec![f(items)],
            Some(pool) => {
                let part_len = items.len().div_ceil(pool.current_num_threads()).max(1);
                pool.install(|| {
                    use rayon::prelude::*;
                    items.par_chunks(part_len).map(&f).collect()
                })
            }
        }
    }
}

/// A model's encoder: one part of a chunk of its table's COPY tuples into a record batch,
/// reserving per column the bytes of values given (see [`ValueSizes`]).
pub type EncodeFn = fn(&[Bytes], &[usize]) -> Result<RecordBatch>;

/// Encodes COPY tuples straight into Arrow with one model's generated encoder.
///
/// Not generic on purpose: the pipeline around it (reading, files, publishing) is compiled
/// once, not once per model, and each model adds only its [`encode_part`]. With many models
/// that is most of the binary's build time (`cargo xtask bench --models N`).
struct TableProcessor {
    converters: Converters,
    schema: SchemaRef,
    encode: EncodeFn,
    sizes: ValueSizes,
}

impl TableProcessor {
    fn new(converters: Converters, schema: SchemaRef, encode: EncodeFn) -> Self {
        Self {
            converters,
            schema,
            encode,
            sizes: ValueSizes::default(),
        }
    }
}

impl ChunkProcessor for TableProcessor {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, tuples: Vec<Bytes>) -> Result<Vec<RecordBatch>> {
        let (encode, sizes) = (self.encode, &self.sizes);
        let batches = self
            .converters
            .map_parts(&tuples, |part| encode(part, &sizes.for_rows(part.len())))
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        self.sizes.observe(&batches);
        Ok(batches)
    }
}

/// Per column, the bytes of text, JSON or bytes values per row in the last chunk: what the
/// next chunk's encoders reserve. From a guess per row instead, a part's value buffers
/// doubled, and were copied, several times as values came (2.9 % of the client's instructions
/// on the bench table, whose text columns average 7 to 199 bytes).
#[derive(Debug, Default)]
struct ValueSizes {
    /// Per column, bytes per 1,024 rows (0 for a fixed-width column).
    per_1024_rows: Vec<usize>,
}

impl ValueSizes {
    /// Per column, the bytes to reserve for `rows` rows: as many as the last chunk's and an
    /// eighth more (so that a part a little above the average is not regrown), rounded up to
    /// a power of two. Rounded, the buffers come in the few sizes that glibc's free lists hand
    /// back chunk after chunk; exact sizes fragmented the heap, and peak RSS grew with the
    /// table (1M / 5M / 10M rows: 60 / 64 / 67 MB, against 61 / 62 / 63 before the hint).
    /// Nothing before the first chunk (the encoders guess).
    fn for_rows(&self, rows: usize) -> Vec<usize> {
        self.per_1024_rows
            .iter()
            .map(|&bytes| match bytes.saturating_mul(rows) / 1024 {
                0 => 0,
                expected => expected
                    .saturating_add(expected / 8)
                    .checked_next_power_of_two()
                    .unwrap_or(usize::MAX),
            })
            .collect()
    }

    fn observe(&mut self, batches: &[RecordBatch]) {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let Some(first) = batches.first() else {
            return;
        };
        if rows == 0 {
            return;
        }
        self.per_1024_rows = (0..first.num_columns())
            .map(|column| {
                let bytes: usize = batches
                    .iter()
                    .map(|batch| value_bytes(batch.column(column).as_ref()))
                    .sum();
                bytes.saturating_mul(1024) / rows
            })
            .collect();
    }
}

/// The bytes of a text or bytes array's values (0 for other types).
fn value_bytes(array: &dyn arrow_array::Array) -> usize {
    use arrow_array::cast::AsArray;
    let span = |offsets: &[i32]| match (offsets.first(), offsets.last()) {
        (Some(&first), Some(&last)) => usize::try_from(last - first).unwrap_or(0),
        _ => 0,
    };
    match array.data_type() {
        arrow_schema::DataType::Utf8 => span(array.as_string::<i32>().value_offsets()),
        arrow_schema::DataType::Binary => span(array.as_binary::<i32>().value_offsets()),
        _ => 0,
    }
}

/// One part of a chunk of `T`'s COPY tuples as one record batch, its text and bytes columns
/// reserving `value_bytes` (per column).
pub(crate) fn encode_part<T: EtlTable>(
    part: &[Bytes],
    value_bytes: &[usize],
) -> Result<RecordBatch> {
    let mut encoder = T::Encoder::with_value_bytes(part.len(), value_bytes);
    for tuple in part {
        encoder.push_wire(tuple).map_err(Error::Row)?;
    }
    encoder.finish().map_err(Error::Arrow)
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
            let mut plan = Plan::new(output, previous, &options.incremental);
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
    let staged = sink.stage(&dir_name)?;
    let own_columns = source_table.display_name() == output.display_name();
    // A table with a cursor: its files carry row versions, and a run that keeps state reads
    // the table's keys too, for its deletions and for the next run's.
    let mut versions = None;
    let mut processor = processor;
    if crate::layout::versions::has_row_versions(output) {
        let found = deletes::row_versions(
            source,
            sink,
            &options.cancel,
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
            _ => "part-".to_string(),
        },
        batch: matches!(plan, Some(Plan::Batch { .. })),
        own_columns,
        ranges: None,
        write_back: sink.publishes_staged_files(),
    };
    let written = write_files(
        source,
        &staged.dir,
        options,
        source_table,
        output.partition_by,
        &read,
        processor,
    )
    .await;
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
                    let (state, outcome) =
                        plan.outcome(output, snapshot, &options.incremental, published);
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
            // A cancelled run publishes nothing more, even a table it finished reading.
            if let Err(e) = options.cancel.check().and_then(|()| {
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
                let taken_at = source.snapshot().map(|s| s.taken_at.clone());
                write_manifest(&staged.dir, output, &listing, taken_at)
            }) {
                sink.discard(staged).await;
                return Err(e);
            }
            let location = match (&plan, &previous_manifest) {
                (Some(Plan::Batch { previous, .. }), Some(manifest)) => {
                    sink.publish_batch(staged, manifest, &previous.files())
                        .await?
                }
                _ => sink.publish(staged).await?,
            };
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
        Box::new(processor),
    )
    .await
}

/// What a table's read selects and how its files are named.
struct TableRead {
    /// A WHERE condition (an incremental batch's lower bound).
    filter: Option<String>,
    /// `part-`, or a batch's `batch-00003-part-`.
    file_prefix: String,
    /// An incremental batch: no rows, no file.
    batch: bool,
    /// The files hold the source table's own columns (a table export, not a task's records).
    own_columns: bool,
    /// Only these ranges (a shard's share); None: the whole table, planned here.
    ranges: Option<Vec<ReadRange>>,
    /// The files are published where they are written (see [`ParquetOptions::write_back`]).
    write_back: bool,
}

async fn write_files(
    source: &PgSource,
    dir: &Path,
    options: &ExportOptions,
    info: &TableInfo,
    partition_by: &'static [PartitionKey],
    read: &TableRead,
    processor: Box<dyn ChunkProcessor>,
) -> Result<Written> {
    let table = info.display_name();
    let mut tx = source.begin_read().await?;
    // On the export's own snapshot: the schema checked is the schema read.
    let warnings = crate::source::drift::check(&mut tx, info).await?;
    for warning in &warnings {
        tracing::warn!(table = %table, "{warning}");
    }

    // The table's size for the progress bar and for the statistics' fractions.
    let estimated_rows = crate::source::estimated_rows(&mut tx, info).await?;
    // A table's own columns (not a task's records) that are mostly distinct go without a
    // dictionary; without statistics (a table never analyzed) every column keeps one.
    let statistics = match estimated_rows {
        Some(rows) if read.own_columns => {
            crate::source::column_statistics(&mut tx, info, rows).await?
        }
        _ => ColumnStatistics::default(),
    };

    // Two chunks in flight: one being encoded, one arriving.
    let (chunks, received) = mpsc::channel::<Vec<Bytes>>(2);
    let writer = {
        let dir = dir.to_path_buf();
        let mut options = options.clone();
        options.parquet.statistics = statistics;
        options.parquet.write_back = read.write_back.then_some(crate::write::WRITE_BACK_BYTES);
        let (file_prefix, batch) = (read.file_prefix.clone(), read.batch);
        tokio::task::spawn_blocking(move || {
            encode_chunks(
                received,
                &dir,
                &options,
                (partition_by, &file_prefix, batch),
                processor,
            )
        })
    };

    let watcher = options
        .progress
        .table_started(&table, estimated_rows.map(|rows| rows as u64));

    // One stream, or block ranges shared out among several connections on the same snapshot.
    let reason_not_to_split = if source.snapshot().is_none() {
        Some("the run has no exported snapshot for other connections to share")
    } else if read.filter.is_some() {
        Some("an incremental batch reads only the changed rows, through the cursor")
    } else {
        None
    };
    let plan = match &read.ranges {
        Some(ranges) => ReadPlan::given(
            ranges.clone(),
            options.read.parallelism.max().min(source.max_readers()),
        ),
        None => {
            ReadPlan::plan(
                &mut tx,
                info,
                &options.read,
                reason_not_to_split,
                source.max_readers(),
            )
            .await?
        }
    };
    let mut warnings = warnings;
    if let Some(reason) = &plan.single_stream_reason {
        tracing::info!(table = %table, "{table}: read on one stream: {reason}");
        if matches!(options.read.parallelism, ReadParallelism::Connections(n) if n > 1) {
            warnings.push(format!("read on one stream: {reason}"));
        }
    }
    let mut transactions = vec![tx];
    if plan.connections > 1 {
        let more =
            futures_util::future::try_join_all((1..plan.connections).map(|_| source.begin_read()))
                .await?;
        transactions.extend(more);
    }
    let reading = ReadShared {
        plan: &plan,
        info,
        filter: read.filter.as_deref(),
        chunks,
        options,
        progress: ReadProgress {
            table: &table,
            watcher,
            rows: AtomicU64::new(0),
            started: Instant::now(),
            next_report: std::sync::Mutex::new(Instant::now() + PROGRESS_EVERY),
        },
    };
    let read_result =
        futures_util::future::try_join_all(transactions.into_iter().map(|tx| reading.read(tx)))
            .await;
    let rows_read = reading.progress.rows.load(Ordering::Relaxed);
    if let Some(watcher) = &reading.progress.watcher
        && read_result.is_ok()
    {
        watcher.finished(rows_read);
    }
    drop(reading);
    let written = writer.await.map_err(|source| Error::Thread {
        what: "encoder thread",
        source,
    });
    // The encoder's error explains a failed read better than "channel closed".
    let encoded = written??;
    for tx in read_result? {
        let _ = tx.commit().await;
    }
    for warning in &encoded.warnings {
        tracing::warn!(table = %table, "{table}: {warning}");
    }
    warnings.extend(encoded.warnings);
    Ok(Written {
        files: encoded.files,
        partitions: encoded.partitions,
        skipped_rows: encoded.skipped_rows,
        warnings,
        read: ReadSummary {
            connections: plan.connections,
            ranges: plan.ranges().len(),
            single_stream_reason: plan.single_stream_reason.clone(),
        },
    })
}

/// What the connections reading one table share.
struct ReadShared<'a> {
    plan: &'a ReadPlan,
    info: &'a TableInfo,
    /// An incremental batch's condition.
    filter: Option<&'a str>,
    /// To the encoder; dropped (closing the channel) when every connection is done.
    chunks: mpsc::Sender<Vec<Bytes>>,
    options: &'a ExportOptions,
    progress: ReadProgress<'a>,
}

/// The rows read so far by all of a table's connections.
struct ReadProgress<'a> {
    table: &'a str,
    watcher: Option<Box<dyn crate::run::progress::TableProgress>>,
    rows: AtomicU64,
    started: Instant,
    next_report: std::sync::Mutex<Instant>,
}

impl ReadProgress<'_> {
    fn add(&self, rows: usize) {
        let rows_read = self.rows.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
        if let Some(watcher) = &self.watcher {
            watcher.rows_read(rows_read);
        }
        let now = Instant::now();
        let due = match self.next_report.lock() {
            Ok(mut next) if now >= *next => {
                *next = now + PROGRESS_EVERY;
                true
            }
            _ => false,
        };
        if due {
            let table = self.table;
            let seconds = now.duration_since(self.started).as_secs_f64();
            tracing::info!(
                target: "etl_runtime::progress",
                event = "progress",
                table = %table,
                rows = rows_read,
                "{table}: {rows_read} rows read in {seconds:.0} s ({:.0} rows/s)",
                rows_read as f64 / seconds
            );
        }
    }
}

impl ReadShared<'_> {
    /// One connection's work: ranges, as long as any is left, into chunks for the encoder.
    /// Returns the transaction to be committed once everything is written.
    async fn read(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let (chunk_rows, chunk_bytes) = (self.options.chunk_rows, self.options.chunk_bytes);
        let mut chunk = Vec::with_capacity(chunk_rows);
        // The bytes of the messages that made the chunk: its tuples, give or take the part of
        // a tuple that a message split (COPY sends one message per row).
        let mut bytes = 0;
        // One waiter for the whole read, not one per message.
        let cancelled = self.options.cancel.cancelled();
        tokio::pin!(cancelled);
        while let Some(range) = self.plan.next_range() {
            let sql = range.copy_sql(self.info, self.filter);
            let mut stream = tx.copy_out_raw(&sql).await.map_err(Error::Query)?;
            let mut splitter = TupleSplitter::new();
            loop {
                // A message already received is taken at once; only when the stream has to
                // wait for the server does the read also wait for a cancel, so that a stalled
                // or slow server does not hold up a cancelled run. (Polling the cancel's
                // `Notified` for every message, i.e. every row, cost ~2.5 % of the client's
                // CPU; while messages keep coming, the flag is checked once per chunk.)
                let data = match stream.try_next().now_or_never() {
                    Some(data) => data,
                    None => tokio::select! {
                        biased;
                        () = &mut cancelled => return Err(Error::Cancelled),
                        data = stream.try_next() => data,
                    },
                };
                let Some(data) = data.map_err(Error::Query)? else {
                    break;
                };
                bytes += data.len();
                splitter.feed(data, &mut chunk).map_err(Error::Copy)?;
                if chunk.len() >= chunk_rows || (bytes >= chunk_bytes && !chunk.is_empty()) {
                    bytes = 0;
                    self.options.cancel.check()?;
                    self.progress.add(chunk.len());
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_rows));
                    if self.chunks.send(full).await.is_err() {
                        // The encoder stopped; its own error says why.
                        drop(stream);
                        return Ok(tx);
                    }
                }
            }
            splitter.finish().map_err(Error::Copy)?;
        }
        if !chunk.is_empty() {
            self.progress.add(chunk.len());
            let _ = self.chunks.send(chunk).await;
        }
        Ok(tx)
    }
}

/// How a table was read.
#[derive(Debug, Clone, Default)]
pub struct ReadSummary {
    /// Connections that read it at once.
    pub connections: usize,
    /// COPY statements (block ranges, or the whole table).
    pub ranges: usize,
    /// Why it was read on one stream although more connections were allowed.
    pub single_stream_reason: Option<String>,
}

/// What a table's read wrote to its staging area.
pub(crate) struct Written {
    pub(crate) files: Vec<WrittenFile>,
    pub(crate) partitions: Vec<Partition>,
    skipped_rows: u64,
    pub(crate) warnings: Vec<String>,
    pub(crate) read: ReadSummary,
}

/// Runs on a blocking thread: chunks through the processor, batches into Parquet files (into
/// partition directories when the table has partition keys).
/// `layout`: the partition keys, the file names' prefix, and whether this is an incremental
/// batch (which writes no file when no row changed; an export writes one, for its schema).
fn encode_chunks(
    mut received: mpsc::Receiver<Vec<Bytes>>,
    dir: &Path,
    options: &ExportOptions,
    layout: (&'static [PartitionKey], &str, bool),
    mut processor: Box<dyn ChunkProcessor>,
) -> Result<Encoded> {
    let (partition_by, file_prefix, batch) = layout;
    let mut out = FileSequence::new(dir, processor.schema(), partition_by, options, file_prefix);
    // A chunk is converted while the one before it is written: the pool's threads take
    // both stages' work (rows, and then columns), instead of one stage waiting for the other.
    let mut converted: Vec<RecordBatch> = Vec::new();
    while let Some(tuples) = received.blocking_recv() {
        options.cancel.check()?;
        let (next, written) = options.converters.join(
            || processor.process(tuples),
            || converted.iter().try_for_each(|batch| out.write(batch)),
        );
        written?;
        converted = next?;
    }
    options.cancel.check()?;
    converted.extend(processor.finish()?);
    // Inside the pool: the last batches' columns, and the last row group's, in parallel too.
    let (files, partitions, warnings) = options.converters.install(|| -> Result<_> {
        converted.iter().try_for_each(|batch| out.write(batch))?;
        out.finish(options, batch)
    })?;
    Ok(Encoded {
        files,
        partitions,
        warnings,
        skipped_rows: processor.skipped(),
    })
}

/// What the encoder thread wrote.
struct Encoded {
    files: Vec<WrittenFile>,
    partitions: Vec<Partition>,
    /// Said of the data as it was written (empty partition values).
    warnings: Vec<String>,
    skipped_rows: u64,
}

/// A table's files as they are written: one rolling sequence, or Hive partitions.
// One per table being exported, on its stack: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum FileSequence {
    Plain(RollingFiles),
    Partitioned(PartitionedWriter),
}

impl FileSequence {
    /// Files of `schema` in `dir`, named `<file_prefix>NNNNN.parquet`, in partitions when the
    /// table has partition keys.
    pub(crate) fn new(
        dir: &Path,
        schema: SchemaRef,
        partition_by: &'static [PartitionKey],
        options: &ExportOptions,
        file_prefix: &str,
    ) -> Self {
        if partition_by.is_empty() {
            FileSequence::Plain(
                RollingFiles::new(dir, schema, &options.parquet, options.max_file_bytes)
                    .with_prefix(file_prefix),
            )
        } else {
            FileSequence::Partitioned(
                PartitionedWriter::new(
                    dir,
                    schema,
                    partition_by,
                    &options.parquet,
                    options.max_file_bytes,
                    options.partition_buffer_bytes,
                )
                .with_file_prefix(file_prefix),
            )
        }
    }

    /// The files written, the partitions and what was said of the data. A batch writes no
    /// file when it has no row; an export writes one, for its schema.
    pub(crate) fn finish(
        self,
        options: &ExportOptions,
        batch: bool,
    ) -> Result<(Vec<WrittenFile>, Vec<Partition>, Vec<String>)> {
        Ok(match self {
            FileSequence::Plain(files) if batch => (files.finish()?, Vec::new(), Vec::new()),
            FileSequence::Plain(files) => (files.finish_with_schema()?, Vec::new(), Vec::new()),
            FileSequence::Partitioned(writer) => {
                let written = writer.finish(options.converters.threads() > 1, !batch)?;
                (written.files, written.partitions, written.warnings)
            }
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            FileSequence::Plain(files) => files.write(batch),
            FileSequence::Partitioned(writer) => writer.write(batch),
        }
    }
}

/// What a table's export wrote, for its manifest.
pub(crate) struct Listing<'a> {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) files: &'a [String],
    pub(crate) partitions: &'a [Partition],
    pub(crate) incremental: Option<&'a TableState>,
}

pub(crate) fn write_manifest(
    dir: &Path,
    info: &TableInfo,
    listing: &Listing<'_>,
    snapshot_taken_at: Option<String>,
) -> Result<()> {
    use crate::layout::manifest;
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        table: info.display_name(),
        schema: info.schema.to_string(),
        rows: listing.rows,
        bytes: listing.bytes,
        files: listing.files.to_vec(),
        snapshot_taken_at,
        columns: info
            .columns
            .iter()
            .map(|c| manifest::Column {
                name: c.name.to_string(),
                sql_type: c.sql_type.to_string(),
                nullable: c.nullable,
            })
            .collect(),
        partition_keys: info
            .partition_by
            .iter()
            .map(|k| manifest::PartitionKey {
                name: k.name.to_string(),
                column: info.columns.get(k.column).map(|c| c.name.to_string()),
                transform: k.transform.granularity().unwrap_or("identity").to_string(),
            })
            .collect(),
        partitions: listing.partitions.to_vec(),
        incremental: listing.incremental.map(TableState::to_section),
        tool: concat!("etl-toolkit ", env!("CARGO_PKG_VERSION")).to_string(),
        version: None,
        location: None,
    };
    manifest.write_into(dir)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};

    use super::ValueSizes;

    fn batch(texts: &[Option<&str>], bytes: &[&[u8]]) -> RecordBatch {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..texts.len() as i64));
        let texts: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
        let bytes: ArrayRef = Arc::new(BinaryArray::from(bytes.to_vec()));
        RecordBatch::try_from_iter([("id", ids), ("text", texts), ("bytes", bytes)]).expect("batch")
    }

    #[test]
    fn value_sizes_follow_the_last_chunk_per_column_rounded_up() {
        let mut sizes = ValueSizes::default();
        assert!(
            sizes.for_rows(4096).is_empty(),
            "nothing known before a chunk"
        );
        // 4 rows: 8 + 0 (NULL) + 8 + 16 bytes of text, 4 x 2 bytes.
        let first = batch(
            &[
                Some("abcdefgh"),
                None,
                Some("12345678"),
                Some("0123456789abcdef"),
            ],
            &[b"ab", b"cd", b"ef", b"gh"],
        );
        sizes.observe(&[first.slice(0, 2), first.slice(2, 2)]);
        // Per row: 8 bytes of text, 2 of bytes; for 1,000 rows, an eighth more (9,000 and
        // 2,250), rounded up to a power of two.
        assert_eq!(sizes.for_rows(1000), vec![0, 16_384, 4096]);
        // The next chunk replaces what the first said.
        sizes.observe(&[batch(&[Some("a"), Some("b")], &[b"", b""])]);
        assert_eq!(sizes.for_rows(1000), vec![0, 2048, 0]);
        // A chunk of no rows says nothing.
        sizes.observe(&[]);
        assert_eq!(sizes.for_rows(1000), vec![0, 2048, 0]);
    }
}
