//! A partitioned table's files: rows go to Hive-style directories (`created_at_day=2024-01-31/
//! status=shipped/part-00000.parquet`) by the model's partition keys.
//!
//! Memory stays bounded however many partitions there are and however the rows interleave in
//! heap order: rows are kept per partition in memory up to a budget; past it, the largest
//! partitions' rows are appended to one local spill file (Arrow IPC, which reads back any batch
//! by its index). When the table has been read, each partition is written in turn from its
//! spilled and kept rows, one Parquet file open at a time, so there are few files per partition
//! (one, unless it passes the file-size target).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, SchemaRef};
use chrono::{Datelike, NaiveDate};
use etl_types::PartitionTransform;

use super::{ParquetFileWriter, ParquetOptions, WrittenFile};
use crate::error::{Error, Result};
use crate::model::PartitionKey;

/// Hive's name for the partition of NULL (and empty text) keys; Athena, Spark, pyarrow and
/// DuckDB read it back as NULL.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One value of a partition key, as compared and ordered while rows are routed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum KeyValue {
    Null,
    /// An integer, a boolean (0/1), or a date bucket: a year, months or days since 1970.
    Number(i64),
    Text(String),
}

/// A partition: its directory under the table, and its key values as text (None for NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub path: String,
    pub values: Vec<Option<String>>,
}

/// What a partitioned table's writer wrote.
pub struct PartitionedFiles {
    pub files: Vec<WrittenFile>,
    pub partitions: Vec<Partition>,
    pub warnings: Vec<String>,
}

#[derive(Default)]
struct Rows {
    kept: Vec<RecordBatch>,
    kept_bytes: usize,
    /// Indexes of this partition's batches in the spill file, in order.
    spilled: Vec<usize>,
}

pub struct PartitionedWriter {
    dir: PathBuf,
    schema: SchemaRef,
    keys: &'static [PartitionKey],
    parquet: ParquetOptions,
    max_file_bytes: Option<u64>,
    partitions: BTreeMap<Vec<KeyValue>, Rows>,
    kept_bytes: usize,
    /// Rows per key whose text was `''`, which Hive files under NULL's partition.
    empty_as_null: Vec<u64>,
    /// Rows kept in memory across all partitions before the largest are spilled.
    memory_budget: usize,
    spill: Option<Spill>,
}

struct Spill {
    path: PathBuf,
    writer: arrow_ipc::writer::FileWriter<std::io::BufWriter<File>>,
    batches: usize,
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
        Self {
            dir: dir.to_path_buf(),
            schema,
            keys,
            parquet: parquet.clone(),
            max_file_bytes,
            partitions: BTreeMap::new(),
            kept_bytes: 0,
            empty_as_null: vec![0; keys.len()],
            memory_budget,
            spill: None,
        }
    }

    /// Routes each row of `batch` to its partition.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns: Vec<KeyColumn<'_>> = self
            .keys
            .iter()
            .map(|key| KeyColumn::new(batch.column(key.column), key))
            .collect::<Result<_>>()?;
        // Rows of one partition often come together: group runs, then look up once per run.
        let mut groups: BTreeMap<Vec<KeyValue>, Vec<u32>> = BTreeMap::new();
        let mut previous: Option<Vec<KeyValue>> = None;
        let mut run: Vec<u32> = Vec::new();
        for row in 0..batch.num_rows() {
            let key: Vec<KeyValue> = columns.iter().map(|c| c.value(row)).collect();
            if previous.as_ref() != Some(&key) {
                if let Some(done) = previous.take() {
                    groups.entry(done).or_default().append(&mut run);
                }
                previous = Some(key);
            }
            run.push(row as u32);
        }
        if let Some(done) = previous {
            groups.entry(done).or_default().append(&mut run);
        }
        for (count, column) in self.empty_as_null.iter_mut().zip(&columns) {
            *count += column.empty_text.get();
        }
        for (key, rows) in groups {
            let part = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows))
                    .map_err(Error::Arrow)?
            };
            let bytes = part.get_array_memory_size();
            let entry = self.partitions.entry(key).or_default();
            entry.kept.push(part);
            entry.kept_bytes += bytes;
            self.kept_bytes += bytes;
        }
        if self.kept_bytes > self.memory_budget {
            self.spill_largest()?;
        }
        Ok(())
    }

    /// Moves the largest partitions' rows to the spill file until half the budget is left.
    fn spill_largest(&mut self) -> Result<()> {
        let mut by_size: Vec<(usize, Vec<KeyValue>)> = self
            .partitions
            .iter()
            .filter(|(_, rows)| !rows.kept.is_empty())
            .map(|(key, rows)| (rows.kept_bytes, key.clone()))
            .collect();
        by_size.sort_unstable_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
        for (_, key) in by_size {
            if self.kept_bytes <= self.memory_budget / 2 {
                break;
            }
            let spill = match &mut self.spill {
                Some(spill) => spill,
                None => self.spill.insert(Spill::create(&self.dir, &self.schema)?),
            };
            let Some(rows) = self.partitions.get_mut(&key) else {
                continue;
            };
            let kept = std::mem::take(&mut rows.kept);
            // One batch per spill: few, large batches read back fast.
            let merged =
                arrow_select::concat::concat_batches(&self.schema, &kept).map_err(Error::Arrow)?;
            spill
                .writer
                .write(&merged)
                .map_err(|e| spill.error("cannot write", e))?;
            rows.spilled.push(spill.batches);
            spill.batches += 1;
            self.kept_bytes -= rows.kept_bytes;
            rows.kept_bytes = 0;
        }
        Ok(())
    }

    /// Writes every partition's files; returns them (paths under the table's directory), the
    /// partitions, and a warning per key whose `''` values readers will see as NULL. A table
    /// without rows is one file at its root, so that readers see its schema.
    pub fn finish(mut self) -> Result<PartitionedFiles> {
        let mut reader = match self.spill.take() {
            Some(mut spill) => {
                spill
                    .writer
                    .finish()
                    .map_err(|e| spill.error("cannot write", e))?;
                let file = File::open(&spill.path)
                    .map_err(|e| Error::io("cannot open", &spill.path, e))?;
                // Unlinked at once: nothing is left behind whatever happens next.
                let _ = std::fs::remove_file(&spill.path);
                Some(
                    arrow_ipc::reader::FileReader::try_new_buffered(file, None)
                        .map_err(|e| spill.error("cannot read", e))?,
                )
            }
            None => None,
        };
        let mut files = Vec::new();
        let mut partitions = Vec::new();
        let entries = std::mem::take(&mut self.partitions);
        for (key, rows) in entries {
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
            let mut file: Option<ParquetFileWriter> = None;
            let mut index = 0;
            let mut write = |batch: &RecordBatch, files: &mut Vec<WrittenFile>| -> Result<()> {
                let writer = match &mut file {
                    Some(writer) => writer,
                    None => {
                        let name = format!("part-{index:05}.parquet");
                        index += 1;
                        file.insert(ParquetFileWriter::create(
                            &dir.join(name),
                            self.schema.clone(),
                            &self.parquet,
                        )?)
                    }
                };
                writer.write(batch)?;
                if let Some(limit) = self.max_file_bytes
                    && writer.approximate_size() as u64 >= limit
                    && let Some(full) = file.take()
                {
                    files.push(full.finish()?);
                }
                Ok(())
            };
            for batch_index in rows.spilled {
                let Some(reader) = reader.as_mut() else {
                    break;
                };
                reader.set_index(batch_index).map_err(Error::Arrow)?;
                if let Some(batch) = reader.next() {
                    write(&batch.map_err(Error::Arrow)?, &mut files)?;
                }
            }
            for batch in &rows.kept {
                write(batch, &mut files)?;
            }
            if let Some(writer) = file {
                files.push(writer.finish()?);
            }
            partitions.push(Partition { path, values });
        }
        if files.is_empty() {
            let writer = ParquetFileWriter::create(
                &self.dir.join("part-00000.parquet"),
                self.schema.clone(),
                &self.parquet,
            )?;
            files.push(writer.finish()?);
        }
        let warnings = self
            .keys
            .iter()
            .zip(&self.empty_as_null)
            .filter(|(_, count)| **count > 0)
            .map(|(key, count)| {
                format!(
                    "{count} row(s) have '' in partition key {}: Hive has no empty partition \
                     value, so they are in {NULL_PARTITION} and Hive-partition readers see NULL \
                     (the files keep '')",
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

impl Spill {
    fn create(dir: &Path, schema: &SchemaRef) -> Result<Self> {
        let path = dir.join(".spill-partitions.arrow");
        let file = File::create(&path).map_err(|e| Error::io("cannot create", &path, e))?;
        let writer =
            arrow_ipc::writer::FileWriter::try_new_buffered(file, schema).map_err(Error::Arrow)?;
        Ok(Self {
            path,
            writer,
            batches: 0,
        })
    }

    fn error(&self, what: &'static str, e: arrow_schema::ArrowError) -> Error {
        Error::io(what, &self.path, std::io::Error::other(e))
    }
}

/// A partition key's column in one batch, read as [`KeyValue`]s.
struct KeyColumn<'a> {
    array: &'a ArrayRef,
    transform: PartitionTransform,
    /// Rows of this batch whose text is `''`.
    empty_text: std::cell::Cell<u64>,
}

impl<'a> KeyColumn<'a> {
    fn new(array: &'a ArrayRef, key: &PartitionKey) -> Result<Self> {
        let supported = matches!(
            array.data_type(),
            DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Boolean
                | DataType::Utf8
                | DataType::Date32
                | DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _)
        );
        if !supported {
            return Err(Error::Arrow(
                arrow_schema::ArrowError::InvalidArgumentError(format!(
                    "partition key {} cannot be read from a {} column",
                    key.name,
                    array.data_type()
                )),
            ));
        }
        Ok(Self {
            array,
            transform: key.transform,
            empty_text: std::cell::Cell::new(0),
        })
    }

    fn value(&self, row: usize) -> KeyValue {
        let array = self.array;
        if array.is_null(row) {
            return KeyValue::Null;
        }
        match array.data_type() {
            DataType::Int16 => {
                KeyValue::Number(array.as_primitive::<Int16Type>().value(row).into())
            }
            DataType::Int32 => {
                KeyValue::Number(array.as_primitive::<Int32Type>().value(row).into())
            }
            DataType::Int64 => KeyValue::Number(array.as_primitive::<Int64Type>().value(row)),
            DataType::Boolean => KeyValue::Number(array.as_boolean().value(row).into()),
            DataType::Utf8 => match array.as_string::<i32>().value(row) {
                // Hive keeps no empty partition value: it is the NULL partition.
                "" => {
                    self.empty_text.set(self.empty_text.get() + 1);
                    KeyValue::Null
                }
                text => KeyValue::Text(text.to_string()),
            },
            DataType::Date32 => bucket(
                array.as_primitive::<Date32Type>().value(row).into(),
                self.transform,
            ),
            // Microseconds since 1970 in UTC (timestamptz is stored in UTC).
            _ => {
                let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
                bucket(micros.div_euclid(86_400_000_000), self.transform)
            }
        }
    }
}

/// Days since 1970-01-01 into the key's bucket: a year, months since 1970-01, or the day.
fn bucket(days: i64, transform: PartitionTransform) -> KeyValue {
    let Some(date) = i32::try_from(days)
        .ok()
        .and_then(|d| NaiveDate::from_num_days_from_ce_opt(d + 719_163))
    else {
        return KeyValue::Null;
    };
    KeyValue::Number(match transform {
        PartitionTransform::Year => date.year().into(),
        PartitionTransform::Month => i64::from(date.year()) * 12 + i64::from(date.month0()),
        PartitionTransform::Day | PartitionTransform::Identity => days,
    })
}

/// A key value as its partition directory shows it, before escaping (None: NULL).
fn render(value: &KeyValue, transform: PartitionTransform) -> Option<String> {
    match (value, transform) {
        (KeyValue::Null, _) => None,
        (KeyValue::Text(text), _) => Some(text.clone()),
        (KeyValue::Number(n), PartitionTransform::Identity) => Some(n.to_string()),
        (KeyValue::Number(year), PartitionTransform::Year) => Some(format!("{year:04}")),
        (KeyValue::Number(months), PartitionTransform::Month) => Some(format!(
            "{:04}-{:02}",
            months.div_euclid(12),
            months.rem_euclid(12) + 1
        )),
        (KeyValue::Number(days), PartitionTransform::Day) => i32::try_from(*days)
            .ok()
            .and_then(|d| NaiveDate::from_num_days_from_ce_opt(d + 719_163))
            .map(|date| date.format("%Y-%m-%d").to_string()),
    }
}

/// Escapes a partition value as Hive does (`FileUtils.escapePathName`): control characters and
/// `"#%'*/:=?\{[]^` and DEL become `%XX`.
pub fn hive_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        let special = matches!(
            c,
            '\u{01}'
                ..='\u{1F}'
                    | '"'
                    | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\u{7F}'
                    | '{'
                    | '['
                    | ']'
                    | '^'
        );
        if special {
            escaped.push_str(&format!("%{:02X}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_and_escape_as_hive_does() {
        assert_eq!(hive_escape("a/b=c%"), "a%2Fb%3Dc%25");
        assert_eq!(hive_escape("été 2024"), "été 2024");
        let day = bucket(19_753, PartitionTransform::Day);
        assert_eq!(
            render(&day, PartitionTransform::Day).as_deref(),
            Some("2024-01-31")
        );
        let month = bucket(19_753, PartitionTransform::Month);
        assert_eq!(
            render(&month, PartitionTransform::Month).as_deref(),
            Some("2024-01")
        );
        let year = bucket(-1, PartitionTransform::Year);
        assert_eq!(
            render(&year, PartitionTransform::Year).as_deref(),
            Some("1969")
        );
        assert_eq!(render(&KeyValue::Null, PartitionTransform::Day), None);
    }
}
