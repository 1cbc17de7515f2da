//! Compaction: a table's full export and its batches folded into a new full version, without
//! reading PostgreSQL. Each key keeps its version of the largest `_etl_batch`, unless that is a
//! deletion; the rows are written again in the table's layout (a row whose partition key
//! changed lands only in its new partition) with `_etl_batch` 0, as a full export at the last
//! batch's snapshot would write them, and published like an export. The incremental state
//! (watermark, key file) carries over, so the next run goes on from where the last one ended.
//!
//! Memory: the keys of the batches (not of the full export) and their batch numbers, in a hash
//! map; the full export's files are streamed through once. A key superseded in a batch is
//! dropped from the full export as it streams by.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::layout::partition::restore_path_columns;
use crate::layout::{Partition, versions};
use crate::model::{PartitionKey, TableInfo};
use crate::run::export::{ExportOptions, FileSequence, Listing, table_dir, write_manifest};
use crate::run::incremental::TableState;
use crate::sink::Sink;

/// What a compaction did.
#[derive(Debug, Clone)]
pub struct CompactReport {
    pub table: String,
    /// The current rows written.
    pub rows: u64,
    /// Versions read (full export and batches, deletions included).
    pub versions_read: u64,
    pub batches_folded: usize,
    pub bytes: u64,
    pub location: String,
    pub files: Vec<String>,
    pub partitions: Vec<Partition>,
    pub seconds: f64,
}

/// Folds `info`'s published batches into a new full version, if it has at least
/// `min_batches` (1 or more). None if it has fewer. `model_schema` is the model's Arrow schema
/// (without version columns).
pub async fn compact_table(
    sink: &dyn Sink,
    info: &TableInfo,
    model_schema: SchemaRef,
    options: &ExportOptions,
    min_batches: usize,
) -> Result<Option<CompactReport>> {
    compact(sink, info, model_schema, options, min_batches.max(1))
        .await
        .map_err(|e| e.in_table(&info.display_name()))
}

async fn compact(
    sink: &dyn Sink,
    info: &TableInfo,
    model_schema: SchemaRef,
    options: &ExportOptions,
    min_batches: usize,
) -> Result<Option<CompactReport>> {
    let started = Instant::now();
    let dir_name = table_dir(info);
    let not_versioned = |why: &str| Error::NotSupported {
        what: format!("compacting {}: {why}", info.display_name()),
    };
    if !versions::has_row_versions(info) {
        return Err(not_versioned("it has no cursor, so no batches"));
    }
    let _lock = sink.lock_table(&dir_name)?;
    let Some(manifest) = sink.current_manifest(&dir_name).await? else {
        return Err(not_versioned("it has not been exported yet"));
    };
    let Some(state) = TableState::from_manifest(&manifest) else {
        return Err(not_versioned("its manifest has no incremental state"));
    };
    let Some(keys_file) = state.keys.clone() else {
        return Err(not_versioned(
            "its state predates row versions (run it once to export it anew)",
        ));
    };
    if state.batches.len() < min_batches {
        return Ok(None);
    }
    let schema = versions::versioned_schema(&model_schema, info);
    let staged = sink.stage(&dir_name)?;
    let scratch = staged.dir.with_extension("inputs");
    let result = async {
        // The inputs, as local files: the full export's, then each batch's, each with its
        // partition (whose directory holds the values of identity keys).
        let mut inputs = Vec::new();
        for name in state.files() {
            options.cancel.check()?;
            let path = sink
                .fetch_published(&dir_name, &manifest, &name, &scratch)
                .await?;
            let directory = name.rsplit_once('/').map_or("", |(dir, _)| dir);
            let partition = manifest
                .partitions
                .iter()
                .find(|p| p.path == directory)
                .cloned();
            if partition.is_none() && !info.partition_by.is_empty() && !directory.is_empty() {
                return Err(Error::NotSupported {
                    what: format!(
                        "compacting {}: its manifest lists no partition {directory} for {name}",
                        info.display_name()
                    ),
                });
            }
            let is_batch = !state.base_files.contains(&name);
            inputs.push(Input {
                path,
                is_batch,
                partition,
            });
        }
        let keys_from = sink
            .fetch_published(&dir_name, &manifest, &keys_file, &scratch)
            .await?;
        let keys_to = staged.dir.join(&keys_file);
        if std::fs::hard_link(&keys_from, &keys_to).is_err() {
            std::fs::copy(&keys_from, &keys_to)
                .map_err(|e| Error::io("cannot copy", &keys_from, e))?;
        }
        let folded = {
            let (dir, schema, options, info) =
                (staged.dir.clone(), schema.clone(), options.clone(), *info);
            tokio::task::spawn_blocking(move || fold(&inputs, &dir, &schema, &info, &options))
                .await
                .map_err(|source| Error::Thread {
                    what: "compaction thread",
                    source,
                })??
        };
        options.cancel.check()?;
        let names: Vec<String> = folded
            .files
            .iter()
            .filter_map(|f| f.path.strip_prefix(&staged.dir).ok())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let rows = folded.files.iter().map(|f| f.rows).sum();
        let bytes = folded.files.iter().map(|f| f.bytes).sum();
        let last = state.batches.last().map(|b| b.snapshot_taken_at.clone());
        let compacted = TableState {
            version: last.clone().unwrap_or_else(|| state.version.clone()),
            base_rows: rows,
            base_files: names.clone(),
            batches: Vec::new(),
            // Every file written anew.
            format_version: crate::layout::manifest::FORMAT_VERSION,
            ..state.clone()
        };
        let listing = Listing {
            rows,
            bytes,
            files: &names,
            partitions: &folded.partitions,
            incremental: Some(&compacted),
        };
        write_manifest(&staged.dir, info, &listing, last)?;
        Ok::<_, Error>((names, rows, bytes, folded))
    }
    .await;
    // Off the async runtime's threads, like every tree removal (see `Sink::discard`).
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&scratch)).await;
    let (names, rows, bytes, folded) = match result {
        Ok(done) => done,
        Err(e) => {
            sink.discard(staged).await;
            return Err(e);
        }
    };
    let location = sink.publish(staged).await?;
    Ok(Some(CompactReport {
        table: info.display_name(),
        rows,
        versions_read: folded.versions_read,
        batches_folded: state.batches.len(),
        bytes,
        location,
        files: names,
        partitions: folded.partitions,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// A published file, fetched.
struct Input {
    path: PathBuf,
    /// A batch's file (not the full export's).
    is_batch: bool,
    /// Its partition, if the table is partitioned.
    partition: Option<Partition>,
}

struct Folded {
    files: Vec<crate::write::WrittenFile>,
    partitions: Vec<Partition>,
    versions_read: u64,
}

/// Rows are read this many at a time.
const READ_ROWS: usize = 8192;

/// The fold itself, on a blocking thread: the batches' latest versions by key, then every
/// input streamed through, each row kept if it is its key's current version.
fn fold(
    inputs: &[Input],
    dir: &Path,
    schema: &SchemaRef,
    info: &TableInfo,
    options: &ExportOptions,
) -> Result<Folded> {
    let key_columns: Vec<usize> = info.key_indexes().collect();
    let batch_column = schema.fields().len() - 2;
    let deleted_column = batch_column + 1;

    // The largest batch of each key changed in a batch.
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut key = Vec::new();
    let table = (schema, info.partition_by);
    for input in inputs.iter().filter(|input| input.is_batch) {
        let mut columns = key_columns.clone();
        columns.push(batch_column);
        for batch in read(input, table, Some(&columns))? {
            let batch = batch?;
            let keys: Vec<ArrayRef> = (0..key_columns.len())
                .map(|i| batch.column(i).clone())
                .collect();
            let keys = prepare_keys(&keys)?;
            let numbers = batch.column(key_columns.len()).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                key_bytes(&keys, row, &mut key);
                let number = numbers.value(row);
                match latest.get_mut(key.as_slice()) {
                    Some(known) => *known = (*known).max(number),
                    None => {
                        latest.insert(key.clone(), number);
                    }
                }
            }
        }
    }

    let model = SchemaRef::new(Schema::new(schema.fields()[..batch_column].to_vec()));
    let mut out = FileSequence::new(
        dir,
        schema.clone(),
        (info.partition_by, crate::layout::names::DATA_PREFIX),
        options,
        None,
    );
    let mut versions_read = 0u64;
    options.converters.install(|| -> Result<()> {
        for input in inputs {
            for batch in read(input, table, None)? {
                options.cancel.check()?;
                let batch = batch?;
                versions_read += batch.num_rows() as u64;
                let keys: Vec<ArrayRef> = key_columns
                    .iter()
                    .map(|&i| batch.column(i).clone())
                    .collect();
                let keys = prepare_keys(&keys)?;
                let numbers = batch.column(batch_column).as_primitive::<Int64Type>();
                let deleted = batch.column(deleted_column).as_boolean();
                let mut keep = Vec::with_capacity(batch.num_rows());
                for row in 0..batch.num_rows() {
                    key_bytes(&keys, row, &mut key);
                    let number = numbers.value(row);
                    let current = latest.get(key.as_slice()).is_none_or(|&n| n == number);
                    keep.push(current && !deleted.value(row));
                }
                let kept =
                    arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(keep))
                        .map_err(Error::Arrow)?;
                if kept.num_rows() == 0 {
                    continue;
                }
                let own =
                    RecordBatch::try_new(model.clone(), kept.columns()[..batch_column].to_vec())
                        .map_err(Error::Arrow)?;
                out.write(&versions::with_versions(&own, schema, 0, false).map_err(Error::Arrow)?)?;
            }
        }
        Ok(())
    })?;
    let (files, partitions, _warnings) =
        options.converters.install(|| out.finish(options, false))?;
    Ok(Folded {
        files,
        partitions,
        versions_read,
    })
}

/// The record batches of `input`, a file of a table of schema `table.0` partitioned by
/// `table.1`, of its columns `columns` (all if None), the identity partition keys' columns
/// filled from the file's partition.
fn read<'a>(
    input: &'a Input,
    (schema, keys): (&'a SchemaRef, &'a [PartitionKey]),
    columns: Option<&[usize]>,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + 'a> {
    let path = &input.path;
    let wanted: SchemaRef = match columns {
        Some(columns) => SchemaRef::new(schema.project(columns).map_err(Error::Arrow)?),
        None => schema.clone(),
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(Error::Parquet)?
        .with_batch_size(READ_ROWS);
    let held: Vec<usize> = {
        let in_file = builder.schema();
        wanted
            .fields()
            .iter()
            .filter_map(|field| in_file.index_of(field.name()).ok())
            .collect()
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), held);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(Error::Parquet)?;
    Ok(reader.map(move |batch| {
        let batch = batch.map_err(Error::Arrow)?;
        match &input.partition {
            Some(partition) => restore_path_columns(&batch, &wanted, (schema, keys), partition)
                .map_err(Error::Arrow),
            None => Ok(batch),
        }
    }))
}

/// A key column of one record batch, ready to read row by row.
enum KeyColumn {
    /// Fixed-width values (integers, dates, timestamps): the values' bytes.
    Fixed {
        values: arrow_buffer::Buffer,
        offset: usize,
        width: usize,
    },
    Other(ArrayRef),
}

fn prepare_keys(columns: &[ArrayRef]) -> Result<Vec<KeyColumn>> {
    columns
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8
            | DataType::Binary
            | DataType::FixedSizeBinary(_)
            | DataType::Boolean => Ok(KeyColumn::Other(column.clone())),
            data_type => {
                let width = data_type
                    .primitive_width()
                    .ok_or_else(|| Error::NoKeyForDeletes {
                        reason: format!("a key column of type {data_type} cannot be compacted"),
                    })?;
                let data = column.to_data();
                Ok(KeyColumn::Fixed {
                    values: data.buffers().first().cloned().unwrap_or_default(),
                    offset: data.offset(),
                    width,
                })
            }
        })
        .collect()
}

/// Row `row`'s key, as bytes that are equal exactly when the keys are (each value
/// length-prefixed or of a fixed width).
fn key_bytes(columns: &[KeyColumn], row: usize, out: &mut Vec<u8>) {
    out.clear();
    for column in columns {
        match column {
            KeyColumn::Fixed {
                values,
                offset,
                width,
            } => {
                let start = (offset + row) * width;
                out.extend(values.as_slice().get(start..start + width).unwrap_or(&[]));
            }
            KeyColumn::Other(array) => {
                let mut var = |bytes: &[u8]| {
                    out.extend((bytes.len() as u64).to_be_bytes());
                    out.extend(bytes);
                };
                match array.data_type() {
                    DataType::Utf8 => var(array.as_string::<i32>().value(row).as_bytes()),
                    DataType::Binary => var(array.as_binary::<i32>().value(row)),
                    DataType::FixedSizeBinary(_) => {
                        out.extend(array.as_fixed_size_binary().value(row));
                    }
                    _ => out.push(u8::from(array.as_boolean().value(row))),
                }
            }
        }
    }
}
