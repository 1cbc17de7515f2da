//! Parquet files: one file being written (here), with the writer's options (`options.rs`), its
//! pages waiting for their row group (`pages.rs`), a table's rolling sequence of files
//! (`rolling.rs`), and a partitioned table's files ([`partition`]).

mod options;
mod pages;
pub mod partition;
mod rolling;
mod scatter;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{FieldRef, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, ArrowWriterOptions, PageKey,
    PageStore, PageStoreArgs, PageStoreFactory, compute_leaves,
};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;

use crate::error::{Error, Result};

pub use self::options::{Codec, ParquetOptions};
use self::pages::SpillPageStoreFactory;
pub use self::rolling::{FileListener, RollingFiles, WrittenFile};

/// A Parquet file under construction at `path`.
///
/// Columns are encoded and compressed by parquet-rs's column writers directly (not through its
/// `ArrowWriter`) so that they can work at once: called from a thread of a rayon pool (the
/// run's converters), a batch's columns are encoded in parallel on the pool; from any other
/// thread, one after the other. The bytes written are the same either way, and the same as
/// `ArrowWriter`'s for the same row groups.
pub struct ParquetFileWriter {
    path: PathBuf,
    file: SerializedFileWriter<File>,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// How many Parquet leaf columns each Arrow field has (one, unless nested).
    leaves_per_field: Vec<usize>,
    max_group_rows: usize,
    max_group_bytes: usize,
    write_back: Option<u64>,
    /// Bytes of the file already started for the disk.
    written_back: u64,
    open: Option<OpenRowGroup>,
    rows: u64,
}

/// The column writers of the row group being written, and its rows so far.
struct OpenRowGroup {
    writers: Vec<ArrowColumnWriter>,
    rows: usize,
}

impl OpenRowGroup {
    fn estimated_bytes(&self) -> usize {
        self.writers
            .iter()
            .map(ArrowColumnWriter::get_estimated_total_bytes)
            .sum()
    }
}

impl ParquetFileWriter {
    pub fn create(path: &Path, schema: SchemaRef, options: &ParquetOptions) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io("cannot create", path, e))?;
        let props = options.writer_properties(&schema).map_err(Error::Parquet)?;
        let spill_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let writer_options = ArrowWriterOptions::new()
            .with_properties(props)
            .with_page_store_factory(Arc::new(SpillPageStoreFactory::new(spill_dir)));
        // `ArrowWriter` sets the file up (Parquet schema, the Arrow schema in the footer, the
        // page store); its lower-level parts then write the columns.
        let (file, columns) =
            ArrowWriter::try_new_with_options(file, schema.clone(), writer_options)
                .and_then(ArrowWriter::into_serialized_writer)
                .map_err(Error::Parquet)?;
        let leaves_per_field = leaves_per_field(&schema, file.schema_descr());
        Ok(Self {
            path: path.to_path_buf(),
            file,
            columns,
            schema,
            leaves_per_field,
            max_group_rows: options.row_group_rows.max(1),
            max_group_bytes: options.row_group_bytes,
            write_back: options.write_back,
            written_back: 0,
            open: None,
            rows: 0,
        })
    }

    /// Appends the batch's rows; a row group is closed (written to the file) once it has
    /// `row_group_rows` rows or `row_group_bytes` encoded bytes (checked after each batch).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            let group = match &mut self.open {
                Some(group) => group,
                open => open.insert(OpenRowGroup {
                    writers: self
                        .columns
                        .create_column_writers(self.file.flushed_row_groups().len())
                        .map_err(Error::Parquet)?,
                    rows: 0,
                }),
            };
            let room = self.max_group_rows - group.rows;
            let now = if rest.num_rows() > room {
                let now = rest.slice(0, room);
                rest = rest.slice(room, rest.num_rows() - room);
                now
            } else {
                std::mem::replace(&mut rest, batch.slice(0, 0))
            };
            write_columns(&self.schema, &self.leaves_per_field, group, &now)?;
            group.rows += now.num_rows();
            if group.rows >= self.max_group_rows || group.estimated_bytes() >= self.max_group_bytes
            {
                self.close_row_group()?;
                // Only for a full row group: a trim walks every arena, and a partitioned
                // export closes thousands of small files.
                crate::memory::release_free_memory();
            }
        }
        Ok(())
    }

    /// Closes the open row group's columns (their last pages, in parallel like their
    /// encoding) and appends them to the file in order.
    fn close_row_group(&mut self) -> Result<()> {
        let Some(group) = self.open.take() else {
            return Ok(());
        };
        let chunks: Vec<ArrowColumnChunk> =
            each_column(group.writers, ArrowColumnWriter::close).map_err(Error::Parquet)?;
        let mut row_group = self.file.next_row_group().map_err(Error::Parquet)?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut row_group)
                .map_err(Error::Parquet)?;
        }
        row_group.close().map_err(Error::Parquet)?;
        let written = self.file.bytes_written() as u64;
        if let Some(step) = self.write_back
            && written >= self.written_back.saturating_add(step)
        {
            self.file
                .flush()
                .map_err(|e| Error::io("cannot write", &self.path, e))?;
            start_writeback(self.file.inner(), self.written_back);
            self.written_back = written;
        }
        Ok(())
    }

    /// Bytes written to the file so far plus those buffered for the open row group.
    pub fn approximate_size(&self) -> usize {
        self.file.bytes_written() + self.open.as_ref().map_or(0, OpenRowGroup::estimated_bytes)
    }

    /// Writes the footer; returns the path, its rows and its bytes. The file is not synced
    /// here: a local publication makes the whole staged table durable in one step
    /// ([`crate::sink::make_durable`]), and files bound for S3 need no sync at all.
    pub fn finish(mut self) -> Result<WrittenFile> {
        self.close_row_group()?;
        let file = self.file.into_inner().map_err(Error::Parquet)?;
        let bytes = file
            .metadata()
            .map_err(|e| Error::io("cannot stat", &self.path, e))?
            .len();
        Ok(WrittenFile {
            path: self.path,
            rows: self.rows,
            bytes,
        })
    }
}

/// Starts writing `file`'s dirty pages from `offset` on to disk, without waiting for them. A
/// local export is made durable at publication by one `syncfs` (`sink::make_durable`), which
/// then waited for every byte of the table: with the kernel's default thresholds nothing has
/// been written before. Started as each large row group closes, the writing overlaps the
/// encoding of the
/// next, and the final sync waits for the last one only. Linux starts it for
/// `POSIX_FADV_DONTNEED` (dropping only pages already clean). An error costs nothing but the
/// head start: publication still syncs.
fn start_writeback(file: &File, offset: u64) {
    let _ = rustix::fs::fadvise(file, offset, None, rustix::fs::Advice::DontNeed);
}

/// A local file is started for the disk by this many new bytes at least: the work of
/// starting it is the process's own (at publication it is the kernel's flusher's), which for
/// thousands of small partition files costs more system time than the sync it spares.
pub const WRITE_BACK_BYTES: u64 = 32 << 20;

/// How many Parquet leaf columns each field of `schema` became in `parquet`.
fn leaves_per_field(schema: &arrow_schema::Schema, parquet: &SchemaDescriptor) -> Vec<usize> {
    let mut counts = vec![0; schema.fields().len()];
    for leaf in 0..parquet.num_columns() {
        if let Some(count) = counts.get_mut(parquet.get_column_root_idx(leaf)) {
            *count += 1;
        }
    }
    counts
}

/// Encodes each column of `batch` with its writers ([`each_column`]).
fn write_columns(
    schema: &arrow_schema::Schema,
    leaves_per_field: &[usize],
    group: &mut OpenRowGroup,
    batch: &RecordBatch,
) -> Result<()> {
    let mut writers = group.writers.as_mut_slice();
    let mut work = Vec::with_capacity(leaves_per_field.len());
    for ((field, column), &leaves) in schema
        .fields()
        .iter()
        .zip(batch.columns())
        .zip(leaves_per_field)
    {
        let (these, rest) = std::mem::take(&mut writers).split_at_mut(leaves);
        writers = rest;
        work.push((field, column, these));
    }
    let encode = |(field, column, writers): (&FieldRef, &ArrayRef, &mut [ArrowColumnWriter])| {
        let leaves = compute_leaves(field, column)?;
        writers
            .iter_mut()
            .zip(&leaves)
            .try_for_each(|(writer, leaf)| writer.write(leaf))
    };
    each_column(work, encode)
        .map(|_: Vec<()>| ())
        .map_err(Error::Parquet)
}

/// `f` on each column's work, results in order: in parallel on the current rayon pool when
/// called from one of its threads (a column's encoding and compression are independent of the
/// others'), else one after the other on this thread (not on rayon's global pool).
fn each_column<T: Send, R: Send>(
    work: Vec<T>,
    f: impl Fn(T) -> parquet::errors::Result<R> + Send + Sync,
) -> parquet::errors::Result<Vec<R>> {
    if rayon::current_thread_index().is_some() {
        use rayon::prelude::*;
        work.into_par_iter().map(f).collect()
    } else {
        work.into_iter().map(f).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Int32Builder, ListBuilder};
    use arrow_array::{
        ArrayRef, Decimal128Array, FixedSizeBinaryArray, Int64Array, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::{ParquetFileWriter, ParquetOptions};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("d", DataType::Decimal128(12, 3), true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
                true,
            ),
            Field::new("u", DataType::FixedSizeBinary(2), true),
        ]))
    }

    /// 700 rows from `first`: nulls, repeated and distinct text, nested lists (empty, NULL,
    /// with NULL elements).
    fn batch(first: i64) -> RecordBatch {
        let ids = first..first + 700;
        let mut lists = ListBuilder::new(Int32Builder::new());
        for i in ids.clone() {
            match i % 4 {
                0 => lists.append_null(),
                1 => lists.append(true),
                _ => {
                    lists.values().append_value(i as i32);
                    lists.values().append_null();
                    lists.append(true);
                }
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter(ids.clone().map(|i| {
                (i % 5 != 0).then(|| format!("value {} {}", i % 3, i * 7919 % 1000))
            }))),
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    ids.clone()
                        .map(|i| (i % 6 != 0).then_some(i * 86_400_000_000)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(
                Decimal128Array::from_iter(
                    ids.clone()
                        .map(|i| (i % 7 != 0).then_some(i as i128 * 1001)),
                )
                .with_precision_and_scale(12, 3)
                .expect("decimal"),
            ),
            Arc::new(lists.finish()),
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    ids.map(|i| (i % 8 != 0).then(|| (i as u16).to_be_bytes())),
                    2,
                )
                .expect("binary"),
            ),
        ];
        RecordBatch::try_new(schema(), columns).expect("batch")
    }

    fn options(row_group_bytes: usize) -> ParquetOptions {
        ParquetOptions {
            row_group_rows: 1000,
            row_group_bytes,
            statistics: crate::source::ColumnStatistics {
                rows: 2100.0,
                distinct_values: vec![("id".into(), 2100.0), ("s".into(), 2100.0)],
            },
            ..ParquetOptions::default()
        }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("etl-write-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    /// Writes three batches with our writer, from the calling thread; returns the file's bytes.
    fn write_ours(path: &std::path::Path, options: &ParquetOptions) -> Vec<u8> {
        let mut writer = ParquetFileWriter::create(path, schema(), options).expect("create");
        for first in [0, 700, 1400] {
            writer.write(&batch(first)).expect("write");
        }
        let written = writer.finish().expect("finish");
        assert_eq!(written.rows, 2100);
        std::fs::read(path).expect("read")
    }

    /// A file's row groups' row counts, and a reader of it.
    fn row_groups(file: Vec<u8>) -> (Vec<i64>, ParquetRecordBatchReaderBuilder<bytes::Bytes>) {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file)).expect("reader");
        let groups = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        (groups, reader)
    }

    /// A file started for the disk row group by row group (a local output's) is the same
    /// file, byte for byte: flushing it between row groups changes nothing in it.
    #[test]
    fn a_file_written_back_row_group_by_row_group_is_the_same_file() {
        let dir = dir("write-back");
        let plain = write_ours(&dir.join("plain.parquet"), &options(128 << 20));
        let options = ParquetOptions {
            write_back: Some(1),
            ..options(128 << 20)
        };
        let path = dir.join("written-back.parquet");
        let mut writer = ParquetFileWriter::create(&path, schema(), &options).expect("create");
        for first in [0, 700, 1400] {
            writer.write(&batch(first)).expect("write");
        }
        // Two row groups of 1,000 rows closed so far, each started for the disk.
        assert!(writer.written_back > 0, "started for the disk");
        assert_eq!(writer.written_back, writer.file.bytes_written() as u64);
        writer.finish().expect("finish");
        let written_back = std::fs::read(&path).expect("read");
        assert_eq!(row_groups(written_back.clone()).0, vec![1000, 1000, 100]);
        assert!(plain == written_back, "the same bytes");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The column writers driven directly write what `ArrowWriter` writes for the same rows
    /// and properties, byte for byte: with the columns encoded in order (no pool) and at once
    /// on a pool's threads, row groups cut inside a batch at `row_group_rows`.
    #[test]
    fn columns_written_in_parallel_or_in_order_make_arrow_writers_file() {
        let dir = dir("same");
        let options = options(128 << 20);
        let props = options.writer_properties(&schema()).expect("properties");
        let mut arrow = ArrowWriter::try_new(Vec::new(), schema(), Some(props)).expect("writer");
        for first in [0, 700, 1400] {
            arrow.write(&batch(first)).expect("write");
        }
        let expected = arrow.into_inner().expect("finish");

        let in_order = write_ours(&dir.join("in-order.parquet"), &options);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        let parallel = pool.install(|| write_ours(&dir.join("parallel.parquet"), &options));
        assert!(in_order == expected, "in order: not ArrowWriter's bytes");
        assert!(parallel == expected, "parallel: not ArrowWriter's bytes");

        let (groups, reader) = row_groups(parallel);
        assert_eq!(groups, [1000, 1000, 100]);
        let read: Vec<RecordBatch> = reader
            .build()
            .expect("read")
            .collect::<Result<_, _>>()
            .expect("batches");
        let read = arrow_select::concat::concat_batches(&read[0].schema(), &read).expect("concat");
        let written =
            arrow_select::concat::concat_batches(&schema(), &[batch(0), batch(700), batch(1400)])
                .expect("concat");
        assert_eq!(read, written);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// JSON columns are written without statistics (no engine prunes on a JSON text's min
    /// and max, and they cost a comparison per value); every other column keeps them.
    #[test]
    fn json_columns_have_no_statistics() {
        use arrow_schema::extension::Json;
        let dir = dir("json");
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("j", DataType::Utf8, true).with_extension_type(Json::default()),
        ]));
        let text = || Arc::new(StringArray::from(vec![Some("{\"a\": 1}"), None])) as ArrayRef;
        let batch = RecordBatch::try_new(schema.clone(), vec![text(), text()]).expect("batch");
        let path = dir.join("json.parquet");
        let mut writer =
            ParquetFileWriter::create(&path, schema, &ParquetOptions::default()).expect("create");
        writer.write(&batch).expect("write");
        writer.finish().expect("finish");
        let (_, reader) = row_groups(std::fs::read(&path).expect("read"));
        let group = &reader.metadata().row_groups()[0];
        assert!(group.column(0).statistics().is_some(), "text: statistics");
        assert!(
            group.column(1).statistics().is_none(),
            "JSON: no statistics"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A row group also closes once its encoded bytes reach `row_group_bytes`: here after
    /// every batch.
    #[test]
    fn a_row_group_closes_at_its_byte_target() {
        let dir = dir("bytes");
        let path = dir.join("small-groups.parquet");
        let (groups, _) = row_groups(write_ours(&path, &options(1)));
        assert_eq!(groups, [700, 700, 700]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
