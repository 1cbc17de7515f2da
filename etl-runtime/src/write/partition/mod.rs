//! A partitioned table's files: rows go to Hive-style directories (`created_at_day=2024-01-31/
//! status=shipped/part-00000.parquet`) by the model's partition keys.
//!
//! Memory stays bounded however many partitions there are and however the rows interleave in
//! heap order: batches are kept as they come, with each row's partition id, up to a memory
//! budget; past it (and at the end), the buffered rows are regrouped by partition and appended
//! to one local spill file (Arrow IPC, which reads back any batch by its index). When the table
//! has been read, each partition is written in turn from its spilled batches, one Parquet file
//! open at a time per thread, so there are few files per partition (one, unless it passes the
//! file-size target).

mod hive;
mod routing;
mod spill;

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};
use etl_types::PartitionTransform;

use super::scatter::{PIECE_ROWS, regroup};
use super::{ParquetOptions, RollingFiles, WrittenFile};
use crate::error::{Error, Result};
pub use crate::layout::Partition;
use crate::model::PartitionKey;

pub(crate) use hive::partition_order;
use hive::{KeyValue, bucket, render};
pub use hive::{NULL_PARTITION, hive_escape};
use routing::{KeyColumn, PartitionIds, TextCodes, same_words};
use spill::{Gathered, Regrouped, RowSlice, Spill};

/// A partition seen in the rows: its key values (for its order) and its directory.
struct KnownPartition {
    key: Vec<KeyValue>,
    partition: Partition,
}

/// A partition and its files.
type WrittenPartition = (Partition, Vec<WrittenFile>);

/// What a partitioned table's writer wrote.
pub struct PartitionedFiles {
    pub files: Vec<WrittenFile>,
    pub partitions: Vec<Partition>,
    pub warnings: Vec<String>,
}

pub struct PartitionedWriter {
    dir: PathBuf,
    /// The table's schema, as batches come.
    table_schema: SchemaRef,
    /// The files' schema: the table's but for the identity keys' columns, which are in the
    /// directory names only (`layout::partition`). Rows are buffered, spilled and written in
    /// it.
    schema: SchemaRef,
    /// The table's columns that the files hold.
    file_columns: Vec<usize>,
    keys: &'static [PartitionKey],
    parquet: ParquetOptions,
    max_file_bytes: Option<u64>,
    /// Partition ids by their keys' codes.
    ids: PartitionIds,
    /// Per partition id, its key values and directory (created when its first row came).
    partitions: Vec<KnownPartition>,
    /// Per text key, its values seen so far, numbered: rows are routed by number, so that a
    /// row's text is hashed, not copied.
    texts: Vec<TextCodes>,
    /// Batches as they came, with each row's partition id.
    buffered: Vec<(RecordBatch, Vec<u32>)>,
    buffered_bytes: usize,
    /// Rows per key whose text was `''`, which Hive files under NULL's partition.
    empty_as_null: Vec<u64>,
    /// Bytes of buffered batches before they are spilled.
    memory_budget: usize,
    spill: Option<Spill>,
    /// Per partition id, its batches in the spill file, in order.
    spilled: Vec<Vec<usize>>,
    /// Per partition id, its rows regrouped so far (all of them once the table is read).
    rows: Vec<u64>,
    /// The start of file names (see [`RollingFiles::with_prefix`]).
    file_prefix: String,
}

impl PartitionedWriter {
    pub fn new(
        dir: &Path,
        schema: SchemaRef,
        keys: &'static [PartitionKey],
        parquet: &ParquetOptions,
        max_file_bytes: Option<u64>,
        memory_budget: usize,
    ) -> Self {
        let (file_schema, file_columns) = crate::layout::partition::file_schema(&schema, keys);
        Self {
            dir: dir.to_path_buf(),
            table_schema: schema,
            schema: file_schema,
            file_columns,
            keys,
            parquet: parquet.clone(),
            max_file_bytes,
            ids: PartitionIds::new(2 * keys.len()),
            partitions: Vec::new(),
            texts: (0..keys.len()).map(|_| TextCodes::default()).collect(),
            buffered: Vec::new(),
            buffered_bytes: 0,
            empty_as_null: vec![0; keys.len()],
            memory_budget,
            spill: None,
            spilled: Vec::new(),
            rows: Vec::new(),
            file_prefix: crate::layout::names::DATA_PREFIX.to_string(),
        }
    }

    /// Names each partition's files `<prefix>00000.parquet`, ...
    pub fn with_file_prefix(mut self, prefix: &str) -> Self {
        self.file_prefix = prefix.to_string();
        self
    }

    /// Notes each row's partition and keeps the batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns: Vec<KeyColumn<'_>> = self
            .keys
            .iter()
            .map(|key| KeyColumn::new(batch.column(key.column), key))
            .collect::<Result<_>>()?;
        let mut row_ids = Vec::with_capacity(batch.num_rows());
        let words = 2 * columns.len();
        let mut codes = vec![0u64; words];
        let mut previous = vec![0u64; words];
        let mut previous_id = None;
        for row in 0..batch.num_rows() {
            for ((column, texts), code) in columns
                .iter()
                .zip(&mut self.texts)
                .zip(codes.chunks_exact_mut(2))
            {
                let (tag, value) = column.code(row, texts);
                code[0] = tag;
                code[1] = value;
            }
            // Rows of one partition often come together.
            let id = match previous_id {
                Some(id) if same_words(&codes, &previous) => id,
                _ => match self.ids.find(&codes) {
                    Some(id) => id,
                    None => self.new_partition(&codes, &columns, row)?,
                },
            };
            row_ids.push(id);
            previous_id = Some(id);
            std::mem::swap(&mut codes, &mut previous);
        }
        for (count, column) in self.empty_as_null.iter_mut().zip(&columns) {
            *count += column.empty_text.get();
        }
        let stored = batch.project(&self.file_columns).map_err(Error::Arrow)?;
        self.buffered_bytes += stored.get_array_memory_size();
        self.buffered.push((stored, row_ids));
        if self.buffered_bytes > self.memory_budget {
            self.spill_buffered()?;
            // The buffer and its regrouped copy were freed in the arenas of the threads that
            // made them, where they would stay as free memory, adding to peak RSS for nothing.
            crate::memory::release_free_memory();
        }
        Ok(())
    }

    /// Numbers the partition of `row`, whose keys' codes are `codes`, and creates its
    /// directory: while the table is read, the client waits on the server and has time to
    /// spare; after the last row, every core writes files.
    fn new_partition(
        &mut self,
        codes: &[u64],
        columns: &[KeyColumn<'_>],
        row: usize,
    ) -> Result<u32> {
        let key: Vec<KeyValue> = columns.iter().map(|c| c.value(row)).collect();
        let values: Vec<Option<String>> = key
            .iter()
            .zip(self.keys)
            .map(|(value, key)| render(value, key.transform))
            .collect();
        let path = values
            .iter()
            .zip(self.keys)
            .map(|(value, key)| {
                let text = value
                    .as_deref()
                    .map_or_else(|| NULL_PARTITION.to_string(), hive_escape);
                format!("{}={text}", key.name)
            })
            .collect::<Vec<_>>()
            .join("/");
        let dir = self.dir.join(&path);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let id = self.ids.insert(codes);
        self.partitions.push(KnownPartition {
            key,
            partition: Partition { path, values },
        });
        self.spilled.push(Vec::new());
        self.rows.push(0);
        Ok(id)
    }

    /// The buffered rows regrouped by partition (the buffer is emptied): a counting sort of
    /// the rows by partition id gives each row its place, and [`regroup`] moves them there,
    /// in pieces of [`PIECE_ROWS`] rows. A partition's rows keep their order.
    fn regroup(&mut self) -> Result<Regrouped> {
        let buffered = std::mem::take(&mut self.buffered);
        self.buffered_bytes = 0;
        let mut ranges = vec![(0usize, 0usize); self.partitions.len()];
        for (_, ids) in &buffered {
            for &id in ids {
                ranges[id as usize].1 += 1;
            }
        }
        let mut total = 0;
        for (range, rows) in ranges.iter_mut().zip(&mut self.rows) {
            *rows += range.1 as u64;
            range.0 = total;
            total += range.1;
        }
        let places_overflow = || {
            Error::Arrow(arrow_schema::ArrowError::InvalidArgumentError(format!(
                "{total} rows buffered: more than a partitioning buffer can number"
            )))
        };
        // Each row's partition id becomes its place.
        let mut fill: Vec<usize> = ranges.iter().map(|r| r.0).collect();
        let (batches, mut places): (Vec<RecordBatch>, Vec<Vec<u32>>) = buffered.into_iter().unzip();
        for ids in &mut places {
            for id in ids.iter_mut() {
                let slot = &mut fill[*id as usize];
                *id = u32::try_from(*slot).map_err(|_| places_overflow())?;
                *slot += 1;
            }
        }
        let pieces = regroup(&self.schema, batches, &places, total)?;
        // Each partition's rows, [offset, offset + count) of the regrouped rows, cut at the
        // pieces' bounds.
        let slices = ranges
            .iter()
            .map(|&(offset, count)| {
                let mut slices = Vec::new();
                let mut from = offset;
                while from < offset + count {
                    let piece = from / PIECE_ROWS;
                    let to = (offset + count).min((piece + 1) * PIECE_ROWS);
                    slices.push(RowSlice {
                        piece,
                        offset: from - piece * PIECE_ROWS,
                        len: to - from,
                    });
                    from = to;
                }
                slices
            })
            .collect();
        Ok(Regrouped { pieces, slices })
    }

    /// Appends the buffered rows to the spill file, regrouped by partition: a partition's
    /// rows keep their order, in one batch or a few.
    fn spill_buffered(&mut self) -> Result<()> {
        let regrouped = self.regroup()?;
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(Spill::create(&self.dir, &self.schema)?),
        };
        for (id, slices) in regrouped.slices.iter().enumerate() {
            for slice in slices {
                spill
                    .writer
                    .write(&regrouped.batch(slice))
                    .map_err(|e| spill.error("cannot write", e))?;
                self.spilled[id].push(spill.batches);
                spill.batches += 1;
            }
        }
        Ok(())
    }

    /// Writes the partitions `ids` from their spilled batches, then their rows still in
    /// memory (`rest`).
    fn write_partitions(
        &self,
        ids: &[usize],
        spill: Option<&Path>,
        rest: &Regrouped,
    ) -> Result<Vec<WrittenPartition>> {
        let mut reader = match spill {
            Some(path) => {
                let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
                Some(
                    arrow_ipc::reader::FileReader::try_new_buffered(file, None)
                        .map_err(|e| Error::io("cannot read", path, std::io::Error::other(e)))?,
                )
            }
            None => None,
        };
        let mut written = Vec::with_capacity(ids.len());
        for &id in ids {
            let partition = &self.partitions[id].partition;
            let dir = self.dir.join(&partition.path);
            // Its rows, not the table's, say which columns are mostly distinct in its file.
            let parquet = ParquetOptions {
                file_rows: Some(self.rows[id]),
                ..self.parquet.clone()
            };
            let mut out =
                RollingFiles::new(&dir, self.schema.clone(), &parquet, self.max_file_bytes)
                    .with_prefix(&self.file_prefix);
            let mut gathered = Gathered::new(self.max_file_bytes);
            for &batch_index in &self.spilled[id] {
                let Some(reader) = reader.as_mut() else {
                    break;
                };
                reader.set_index(batch_index).map_err(Error::Arrow)?;
                if let Some(batch) = reader.next() {
                    gathered.push(batch.map_err(Error::Arrow)?, &self.schema, &mut out)?;
                }
            }
            for slice in rest.slices.get(id).into_iter().flatten() {
                gathered.push(rest.batch(slice), &self.schema, &mut out)?;
            }
            gathered.flush(&self.schema, &mut out)?;
            written.push((partition.clone(), out.finish()?));
        }
        Ok(written)
    }

    /// Whether the last rows are regrouped in memory rather than spilled (written and read
    /// back, they took a quarter of the time spent after the read, on one thread): when the
    /// buffer fits the budget with the one column more that a regroup holds at a time.
    fn rest_fits_in_memory(&self) -> bool {
        let largest_column = (0..self.schema.fields().len())
            .map(|c| {
                self.buffered
                    .iter()
                    .map(|(batch, _)| batch.column(c).get_array_memory_size())
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0);
        self.buffered_bytes + largest_column <= self.memory_budget
    }

    /// Writes every partition's files; returns them (paths under the table's directory), the
    /// partitions, and a warning per key whose `''` values readers will see as NULL. A table
    /// without rows is one file at its root, so that readers see its schema, if
    /// `schema_file_when_empty`.
    pub fn finish(
        mut self,
        parallel: bool,
        schema_file_when_empty: bool,
    ) -> Result<PartitionedFiles> {
        let rest_bytes = self.buffered_bytes;
        if !self.rest_fits_in_memory() {
            self.spill_buffered()?;
        }
        let rest = self.regroup()?;
        let spill_path = match self.spill.take() {
            Some(mut spill) => {
                spill
                    .writer
                    .finish()
                    .map_err(|e| spill.error("cannot write", e))?;
                Some(spill.path)
            }
            None => None,
        };
        tracing::debug!(
            partitions = self.partitions.len(),
            spilled_batches = self.spilled.iter().map(Vec::len).sum::<usize>(),
            rest_bytes,
            "writing the partitions"
        );
        // Partitions in key order, so that the listing and manifest read naturally.
        let mut order: Vec<usize> = (0..self.partitions.len()).collect();
        order.sort_by(|a, b| self.partitions[*a].key.cmp(&self.partitions[*b].key));
        // Partitions are independent: with several threads (inside the converters' pool),
        // each writes a share, reading the spill file through its own handle. 16 shares per
        // thread, so that the last share does not keep one core busy alone at the end; each
        // share reads the spill's footer again.
        let written: Vec<Result<Vec<WrittenPartition>>> = if parallel {
            use rayon::prelude::*;
            let part_len = order
                .len()
                .div_ceil(16 * rayon::current_num_threads())
                .max(1);
            order
                .par_chunks(part_len)
                .map(|ids| self.write_partitions(ids, spill_path.as_deref(), &rest))
                .collect()
        } else {
            vec![self.write_partitions(&order, spill_path.as_deref(), &rest)]
        };
        if let Some(path) = &spill_path {
            let _ = std::fs::remove_file(path);
        }
        let mut files = Vec::new();
        let mut partitions = Vec::new();
        for part in written {
            for (partition, partition_files) in part? {
                partitions.push(partition);
                files.extend(partition_files);
            }
        }
        // With no partition directory to read the keys from, the schema file holds them all.
        if files.is_empty() && schema_file_when_empty {
            files = RollingFiles::new(&self.dir, self.table_schema.clone(), &self.parquet, None)
                .with_prefix(&self.file_prefix)
                .finish_with_schema()?;
        }
        let warnings = self
            .keys
            .iter()
            .zip(&self.empty_as_null)
            .filter(|(_, count)| **count > 0)
            .map(|(key, count)| {
                format!(
                    "{count} row(s) have '' in partition key {}: Hive has no empty partition \
                     value, so they are in {NULL_PARTITION} and readers see NULL",
                    key.name
                )
            })
            .collect();
        Ok(PartitionedFiles {
            files,
            partitions,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static KEYS: [PartitionKey; 1] = [PartitionKey {
        name: "k",
        column: 0,
        transform: PartitionTransform::Identity,
    }];

    /// How a writer came to its end: whether it had spilled, and whether its last rows were
    /// then regrouped in memory.
    #[derive(Debug, PartialEq)]
    struct Ending {
        spilled: bool,
        rest_in_memory: bool,
    }

    /// A partition as read back: its path, its `v` values in file order, and whether `v` had
    /// a dictionary in each of its files.
    type ReadPartition = (String, Vec<i64>, Vec<bool>);

    /// Writes 43 batches of 500 rows interleaving 7 partitions (one of them NULL) with a
    /// buffer of `budget` batches, and returns how it ended and each partition as read back.
    fn write_and_read_back(budget: f64, parquet: &ParquetOptions) -> (Ending, Vec<ReadPartition>) {
        use arrow_array::{Int32Array, Int64Array};
        // Tests run at once: each call has its own directory.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("etl-partition-test-{}-{call}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let schema = std::sync::Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("k", DataType::Int32, true),
            arrow_schema::Field::new("v", DataType::Int64, false),
        ]));
        let batch = |first: i64| {
            let keys: Vec<Option<i32>> = (first..first + 500)
                .map(|v| (v % 7 != 6).then_some((v % 7) as i32))
                .collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    std::sync::Arc::new(Int32Array::from(keys)),
                    std::sync::Arc::new(Int64Array::from_iter_values(first..first + 500)),
                ],
            )
            .expect("batch")
        };
        // In batches as buffered: without the key column, which is in the path only.
        let buffered = batch(0).project(&[1]).expect("v").get_array_memory_size();
        let budget = (budget * buffered as f64) as usize;
        let mut writer = PartitionedWriter::new(&dir, schema.clone(), &KEYS, parquet, None, budget);
        for first in (0..43 * 500).step_by(500) {
            writer.write(&batch(first)).expect("write");
        }
        let ending = Ending {
            spilled: writer.spill.is_some(),
            rest_in_memory: writer.rest_fits_in_memory(),
        };
        let written = writer.finish(false, true).expect("finish");
        let mut read = Vec::new();
        for partition in &written.partitions {
            let mut values = Vec::new();
            let mut dictionaries = Vec::new();
            let partition_dir = dir.join(&partition.path);
            for file in &written.files {
                if file.path.parent() != Some(partition_dir.as_path()) {
                    continue;
                }
                let builder =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        File::open(&file.path).expect("open"),
                    )
                    .expect("reader");
                // The key `k` is in the directory's name only.
                let names: Vec<&String> =
                    builder.schema().fields().iter().map(|f| f.name()).collect();
                assert_eq!(names, ["v"], "{}", file.path.display());
                dictionaries.push(
                    builder.metadata().row_groups()[0]
                        .column(0)
                        .dictionary_page_offset()
                        .is_some(),
                );
                let reader = builder.build().expect("reader");
                for batch in reader {
                    let batch = batch.expect("batch");
                    values.extend(batch.column(0).as_primitive::<Int64Type>().values());
                }
            }
            read.push((partition.path.clone(), values, dictionaries));
        }
        let _ = std::fs::remove_dir_all(&dir);
        (ending, read)
    }

    /// Partitions are numbered in the order they come, and found again by their codes after
    /// the table has grown many times over (its rehashing reads the codes by id).
    #[test]
    fn partition_ids_find_each_partition_by_its_codes() {
        let mut ids = PartitionIds::new(4);
        let codes = |n: u64| [1, n / 4, 2, n % 4];
        for n in 0..5_000 {
            assert_eq!(ids.find(&codes(n)), None, "partition {n} before it came");
            assert_eq!(ids.insert(&codes(n)), n as u32);
        }
        for n in 0..5_000 {
            assert_eq!(ids.find(&codes(n)), Some(n as u32), "partition {n}");
        }
        assert_eq!(ids.find(&[1, 0, 2]), None, "codes of another width");
    }

    /// Whether nothing was spilled, or the last rows are regrouped in memory after spills, or
    /// spilled like the others, every partition holds its rows in their order.
    #[test]
    fn partitions_keep_their_rows_in_order_through_spills_and_memory() {
        for (budget, spilled, rest_in_memory) in
            [(1000.0, false, true), (9.5, true, true), (4.5, true, false)]
        {
            let (ending, read) = write_and_read_back(budget, &ParquetOptions::default());
            assert_eq!(
                ending,
                Ending {
                    spilled,
                    rest_in_memory
                },
                "a budget of {budget} batches"
            );
            let paths: Vec<&str> = read.iter().map(|(p, _, _)| p.as_str()).collect();
            assert_eq!(
                paths,
                [NULL_PARTITION, "0", "1", "2", "3", "4", "5"].map(|k| format!("k={k}")),
                "a budget of {budget} batches"
            );
            for (path, values, _) in &read {
                let key = path
                    .strip_prefix("k=")
                    .and_then(|k| k.parse::<i64>().ok())
                    .unwrap_or(6);
                let expected: Vec<i64> = (0..43 * 500).filter(|v| v % 7 == key).collect();
                assert_eq!(values, &expected, "a budget of {budget} batches, {path}");
            }
        }
    }

    /// A column with 3,000 values in the table's 21,500 rows keeps a dictionary in a file of
    /// the whole table, and has none in a partition's ~3,000 rows, which it mostly tells apart.
    #[test]
    fn a_partition_s_own_rows_say_whether_a_column_is_mostly_distinct() {
        let parquet = ParquetOptions {
            statistics: crate::source::ColumnStatistics {
                rows: 21_500.0,
                distinct_values: vec![("k".into(), 7.0), ("v".into(), 3000.0)],
            },
            ..ParquetOptions::default()
        };
        assert_eq!(parquet.statistics.mostly_distinct(21_500.0).count(), 0);
        let (_, read) = write_and_read_back(1000.0, &parquet);
        assert_eq!(read.len(), 7);
        for (path, _, dictionaries) in &read {
            assert_eq!(dictionaries, &[false], "{path}");
        }
        // Without statistics, every column keeps its dictionary.
        let (_, read) = write_and_read_back(1000.0, &ParquetOptions::default());
        for (path, _, dictionaries) in &read {
            assert_eq!(dictionaries, &[true], "{path}");
        }
    }

    #[test]
    fn values_render_and_escape_as_hive_does() {
        assert_eq!(hive_escape("a/b=c%"), "a%2Fb%3Dc%25");
        assert_eq!(hive_escape("été 2024"), "été 2024");
        let day = KeyValue::Number(bucket(19_753, PartitionTransform::Day));
        assert_eq!(
            render(&day, PartitionTransform::Day).as_deref(),
            Some("2024-01-31")
        );
        let month = KeyValue::Number(bucket(19_753, PartitionTransform::Month));
        assert_eq!(
            render(&month, PartitionTransform::Month).as_deref(),
            Some("2024-01")
        );
        let year = KeyValue::Number(bucket(-1, PartitionTransform::Year));
        assert_eq!(
            render(&year, PartitionTransform::Year).as_deref(),
            Some("1969")
        );
        assert_eq!(render(&KeyValue::Null, PartitionTransform::Day), None);
        // PostgreSQL's last timestamp day, past chrono's range, keeps its own directory.
        let last = KeyValue::Number(bucket(106_762_939, PartitionTransform::Day));
        assert_eq!(
            render(&last, PartitionTransform::Day).as_deref(),
            Some("294276-12-31")
        );
    }

    #[test]
    fn partitions_listed_by_their_values_sort_as_a_run_orders_them() {
        use arrow_schema::Field;
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("at", DataType::Date32, true),
            Field::new("flag", DataType::Boolean, true),
        ]);
        let keys = [
            PartitionKey {
                name: "id",
                column: 0,
                transform: PartitionTransform::Identity,
            },
            PartitionKey {
                name: "at_day",
                column: 1,
                transform: PartitionTransform::Day,
            },
            PartitionKey {
                name: "at_month",
                column: 1,
                transform: PartitionTransform::Month,
            },
            PartitionKey {
                name: "flag",
                column: 2,
                transform: PartitionTransform::Identity,
            },
        ];
        let day = |days: i64| KeyValue::Number(bucket(days, PartitionTransform::Day));
        let month = |days: i64| KeyValue::Number(bucket(days, PartitionTransform::Month));
        let mut keyed: Vec<Vec<KeyValue>> = Vec::new();
        for id in [
            KeyValue::Null,
            KeyValue::Number(-10),
            KeyValue::Number(9),
            KeyValue::Number(10),
        ] {
            // Days before year 0, in 1969, 2024, and past year 10,000 and chrono's range.
            for days in [-800_000, -1, 19_753, 3_000_000, 106_762_939] {
                for flag in [KeyValue::Null, KeyValue::Bool(false), KeyValue::Bool(true)] {
                    keyed.push(vec![id.clone(), day(days), month(days), flag]);
                }
            }
        }
        // A run lists its partitions by their keys' values.
        keyed.sort();
        let transforms: Vec<PartitionTransform> = keys.iter().map(|k| k.transform).collect();
        let listed: Vec<Vec<Option<String>>> = keyed
            .iter()
            .map(|key| {
                key.iter()
                    .zip(&transforms)
                    .map(|(v, t)| render(v, *t))
                    .collect()
            })
            .collect();
        // Listed in any other order (a shard's, the paths' text), they sort back the same.
        let mut shuffled = listed.clone();
        shuffled.reverse();
        shuffled.sort_by(|a, b| a[0].cmp(&b[0]));
        shuffled.sort_by_cached_key(|values| partition_order(values, &keys, &schema));
        assert_eq!(shuffled, listed);
    }
}
