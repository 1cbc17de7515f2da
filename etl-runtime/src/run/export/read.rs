//! A table's read: its COPY streams (one per connection of the read plan, on the run's
//! snapshot) cut into chunks of rows and bytes, handed over a bounded channel to the encoder
//! thread ([`super::encode`]), with progress as rows arrive.

use super::*;

/// How often a long read reports its progress (as `etl_runtime::progress` events).
pub(crate) const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What a table's read selects and how its files are named.
pub(crate) struct TableRead {
    /// A WHERE condition (an incremental batch's lower bound).
    pub(crate) filter: Option<String>,
    /// `part-`, or a batch's `batch-00003-part-`.
    pub(crate) file_prefix: String,
    /// An incremental batch: no rows, no file.
    pub(crate) batch: bool,
    /// The files hold the source table's own columns (a table export, not a task's records).
    pub(crate) own_columns: bool,
    /// Only these ranges (a shard's share); None: the whole table, planned here.
    pub(crate) ranges: Option<Vec<ReadRange>>,
    /// The files are published where they are written (see [`ParquetOptions::write_back`]).
    pub(crate) write_back: bool,
}

pub(crate) async fn write_files(
    source: &PgSource,
    dir: &Path,
    options: &ExportOptions,
    info: &TableInfo,
    partition_by: &'static [PartitionKey],
    read: &TableRead,
    (processor, listener): (Box<dyn ChunkProcessor>, Option<FileListener>),
) -> Result<Written> {
    let table = info.display_name();
    let processor = super::masking::Masking::wrap(processor, info, options)?;
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
                (processor, listener),
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
pub(crate) struct ReadShared<'a> {
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
pub(crate) struct ReadProgress<'a> {
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
                // `Notified` for every message, i.e. every row, costs CPU for nothing; while
                // messages keep coming, the flag is checked once per chunk.)
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
    pub(crate) skipped_rows: u64,
    pub(crate) warnings: Vec<String>,
    pub(crate) read: ReadSummary,
}
