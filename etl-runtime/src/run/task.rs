//! Derived exports: a task streams one source table, like a table export, but turns its rows
//! into records of its own before they are written: a row transform (enrichment with lookups)
//! or an aggregation (a fold per group). Lookups are small tables loaded once with Diesel, on
//! the run's snapshot, so a task sees the same data as the tables exported beside it.
//!
//! A task is one type implementing [`Transform`] or [`Aggregate`], registered like a model
//! (`Export::transform::<T>()`, `Export::aggregate::<A>()`); see the README for examples.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::export::{Converters, ExportOptions, TableReport, run_export};
use super::processor::ChunkProcessor;
use crate::error::{Error, Result};
use crate::model::{EtlTable, OutputRecord, RecordBatchEncoder, TableInfo};
use crate::sink::Sink;
use crate::source::PgSource;

/// What a task's own code returns on failure: any error, with its message.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// What a task does with a source row its code fails on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRows {
    /// The export fails, naming the task, the row's key and the cause; nothing is published.
    Fail,
    /// The row is left out and counted in the report.
    Skip,
}

/// A row transform: each source row becomes zero, one or many output records. Runs in
/// parallel on each chunk of the source.
pub trait Transform: Send + Sync + 'static {
    /// The export's name: its directory and its `--tables` name.
    const NAME: &'static str;
    const BAD_ROWS: BadRows = BadRows::Fail;
    type Source: EtlTable;
    type Lookups: Send + Sync + 'static;
    type Output: OutputRecord;

    /// Loads the lookups, once, before the source streams (Diesel, on the run's snapshot).
    fn load(conn: &mut PgConnection) -> Result<Self::Lookups, TaskError>;

    /// Appends the records for one source row to `out`.
    fn transform(
        row: &Self::Source,
        lookups: &Self::Lookups,
        out: &mut Vec<Self::Output>,
    ) -> Result<(), TaskError>;
}

/// An aggregation: source rows folded into one accumulator per key, emitted as records, in
/// key order, once the source is read. Memory grows with the number of groups, not rows.
pub trait Aggregate: Send + Sync + 'static {
    const NAME: &'static str;
    const BAD_ROWS: BadRows = BadRows::Fail;
    type Source: EtlTable;
    type Lookups: Send + Sync + 'static;
    type Key: Ord + Send + 'static;
    type Acc: Default + Send + 'static;
    type Output: OutputRecord;

    fn load(conn: &mut PgConnection) -> Result<Self::Lookups, TaskError>;

    /// The group of a row, or `None` to leave the row out.
    fn key(row: &Self::Source, lookups: &Self::Lookups) -> Result<Option<Self::Key>, TaskError>;

    /// Adds one row to its group's accumulator.
    fn fold(
        acc: &mut Self::Acc,
        row: &Self::Source,
        lookups: &Self::Lookups,
    ) -> Result<(), TaskError>;

    /// Combines two partial accumulators of the same group (chunks fold in parallel).
    fn merge(into: &mut Self::Acc, from: Self::Acc);

    /// The record of one group.
    fn finish(key: Self::Key, acc: Self::Acc) -> Result<Self::Output, TaskError>;
}

/// The output's table info: the task's name and its record's columns.
pub fn output_info<O: OutputRecord>(name: &'static str) -> TableInfo {
    TableInfo {
        schema: "public",
        name,
        primary_key: O::PRIMARY_KEY,
        columns: O::COLUMNS,
        partition_by: &[],
        cursor: None,
        omitted: &[],
    }
}

/// Runs a transform task.
pub async fn run_transform<T: Transform>(
    source: &PgSource,
    sink: &dyn Sink,
    options: &ExportOptions,
) -> Result<TableReport> {
    let lookups = load_lookups(source, T::NAME, T::load).await?;
    let processor = TransformProcessor::<T> {
        lookups: Arc::new(lookups),
        converters: options.converters.clone(),
        skipped: Arc::new(AtomicU64::new(0)),
        _task: PhantomData,
    };
    export_task::<T::Source, T::Output>(source, sink, options, T::NAME, Box::new(processor)).await
}

/// Runs an aggregation task.
pub async fn run_aggregate<A: Aggregate>(
    source: &PgSource,
    sink: &dyn Sink,
    options: &ExportOptions,
) -> Result<TableReport> {
    let lookups = load_lookups(source, A::NAME, A::load).await?;
    let processor = AggregateProcessor::<A> {
        lookups: Arc::new(lookups),
        converters: options.converters.clone(),
        groups: BTreeMap::new(),
        skipped: 0,
        batch_rows: options.chunk_rows,
    };
    export_task::<A::Source, A::Output>(source, sink, options, A::NAME, Box::new(processor)).await
}

/// Streams task `name`'s source table through its processor and publishes its records.
async fn export_task<S: EtlTable, O: OutputRecord>(
    source: &PgSource,
    sink: &dyn Sink,
    options: &ExportOptions,
    name: &'static str,
    processor: Box<dyn ChunkProcessor>,
) -> Result<TableReport> {
    let output = output_info::<O>(name);
    run_export(source, sink, options, &S::INFO, &output, processor).await
}

/// Loads lookups on a Diesel connection that reads the run's snapshot, read-only.
async fn load_lookups<L: Send + 'static>(
    source: &PgSource,
    task: &'static str,
    load: fn(&mut PgConnection) -> Result<L, TaskError>,
) -> Result<L> {
    let url = source.url_for_new_connection().await?;
    let setup = source.session_setup_sql();
    let failed = move |cause: LookupError| Error::Task {
        task: task.to_string(),
        key: None,
        source: Box::new(cause),
    };
    tokio::task::spawn_blocking(move || {
        let mut conn =
            PgConnection::establish(&url).map_err(|e| failed(LookupError::Connect(e)))?;
        for sql in setup {
            diesel::sql_query(sql)
                .execute(&mut conn)
                .map_err(|e| failed(LookupError::Setup(e)))?;
        }
        let lookups = load(&mut conn).map_err(|e| failed(LookupError::Load(e)))?;
        let _ = diesel::sql_query("ROLLBACK").execute(&mut conn);
        Ok(lookups)
    })
    .await
    .map_err(|e| failed(LookupError::Thread(e)))?
}

/// Why a task's lookups could not be loaded.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error("cannot connect to load the lookups: {0}")]
    Connect(#[source] diesel::ConnectionError),
    #[error("cannot open the lookups' transaction: {0}")]
    Setup(#[source] diesel::result::Error),
    #[error("loading the lookups failed: {0}")]
    Load(#[source] TaskError),
    #[error("the lookups' thread failed: {0}")]
    Thread(#[source] tokio::task::JoinError),
}

fn row_error(task: &'static str, source: crate::model::RowError) -> Error {
    Error::Task {
        task: task.to_string(),
        key: source.key.clone(),
        source: Box::new(source),
    }
}

fn task_error(task: &'static str, key: String, cause: TaskError) -> Error {
    Error::Task {
        task: task.to_string(),
        key: Some(key),
        source: cause,
    }
}

struct TransformProcessor<T: Transform> {
    lookups: Arc<T::Lookups>,
    converters: Converters,
    skipped: Arc<AtomicU64>,
    _task: PhantomData<fn() -> T>,
}

impl<T: Transform> ChunkProcessor for TransformProcessor<T> {
    fn schema(&self) -> SchemaRef {
        <T::Output as OutputRecord>::Encoder::schema()
    }

    fn process(&mut self, tuples: Vec<Bytes>) -> Result<Vec<RecordBatch>> {
        let lookups = &*self.lookups;
        let skipped = &*self.skipped;
        self.converters
            .map_parts(&tuples, |part| {
                let mut out = Vec::with_capacity(part.len());
                for tuple in part {
                    let row = <T::Source as EtlTable>::decode_wire(tuple)
                        .map_err(|e| row_error(T::NAME, e))?;
                    if let Err(cause) = T::transform(&row, lookups, &mut out) {
                        match T::BAD_ROWS {
                            BadRows::Skip => {
                                skipped.fetch_add(1, Ordering::Relaxed);
                            }
                            BadRows::Fail => return Err(task_error(T::NAME, row.key(), cause)),
                        }
                    }
                }
                encode::<T::Output>(T::NAME, &out)
            })
            .into_iter()
            .collect()
    }

    fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

fn encode<O: OutputRecord>(task: &'static str, records: &[O]) -> Result<RecordBatch> {
    let mut encoder = O::Encoder::with_capacity(records.len());
    for record in records {
        encoder.push(record).map_err(|e| row_error(task, e))?;
    }
    encoder.finish().map_err(Error::Arrow)
}

struct AggregateProcessor<A: Aggregate> {
    lookups: Arc<A::Lookups>,
    converters: Converters,
    groups: BTreeMap<A::Key, A::Acc>,
    skipped: u64,
    batch_rows: usize,
}

impl<A: Aggregate> ChunkProcessor for AggregateProcessor<A> {
    fn schema(&self) -> SchemaRef {
        <A::Output as OutputRecord>::Encoder::schema()
    }

    fn process(&mut self, tuples: Vec<Bytes>) -> Result<Vec<RecordBatch>> {
        let lookups = &*self.lookups;
        // Each part folds into groups of its own; the parts merge here, in order.
        let partials = self.converters.map_parts(&tuples, |part| {
            let mut groups: BTreeMap<A::Key, A::Acc> = BTreeMap::new();
            let mut skipped = 0u64;
            for tuple in part {
                let row = <A::Source as EtlTable>::decode_wire(tuple)
                    .map_err(|e| row_error(A::NAME, e))?;
                let folded = A::key(&row, lookups).and_then(|key| match key {
                    Some(key) => A::fold(groups.entry(key).or_default(), &row, lookups),
                    None => Ok(()),
                });
                if let Err(cause) = folded {
                    match A::BAD_ROWS {
                        BadRows::Skip => skipped += 1,
                        BadRows::Fail => return Err(task_error(A::NAME, row.key(), cause)),
                    }
                }
            }
            Ok((groups, skipped))
        });
        for partial in partials {
            let (groups, skipped) = partial?;
            self.skipped += skipped;
            for (key, acc) in groups {
                match self.groups.get_mut(&key) {
                    Some(existing) => A::merge(existing, acc),
                    None => {
                        self.groups.insert(key, acc);
                    }
                }
            }
        }
        Ok(Vec::new())
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        let mut records = Vec::with_capacity(self.batch_rows.min(self.groups.len()));
        for (key, acc) in std::mem::take(&mut self.groups) {
            let record = A::finish(key, acc).map_err(|cause| Error::Task {
                task: A::NAME.to_string(),
                key: None,
                source: cause,
            })?;
            records.push(record);
            if records.len() == self.batch_rows {
                batches.push(encode::<A::Output>(A::NAME, &records)?);
                records.clear();
            }
        }
        if !records.is_empty() {
            batches.push(encode::<A::Output>(A::NAME, &records)?);
        }
        Ok(batches)
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }
}
