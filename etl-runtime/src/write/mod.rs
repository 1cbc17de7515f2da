//! One Parquet file being written: arrow-rs `ArrowWriter` with the project's writer properties;
//! a partitioned table's files ([`partition`]).

pub mod partition;
mod scatter;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowWriterOptions, PageKey, PageStore, PageStoreArgs, PageStoreFactory,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Zstd(i32),
    Snappy,
    None,
}

impl Default for Codec {
    fn default() -> Self {
        // Level 1: on the benchmark table it wrote smaller files than level 3 (93.6 MB against
        // 95.1 MB per million rows, pages being small) in 20 % less time.
        Codec::Zstd(1)
    }
}

/// How row groups are cut and compressed.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    pub codec: Codec,
    /// A row group closes at this many rows ...
    pub row_group_rows: usize,
    /// ... or at this many encoded bytes, whichever comes first.
    pub row_group_bytes: usize,
    /// Columns PostgreSQL's statistics say are mostly distinct: written without a dictionary,
    /// which would be interned in vain until it overflows (measured on the bench table: 8.5 %
    /// fewer client instructions, 1.7 % smaller files, 19 MB less memory), in a delta
    /// encoding where their type has one ([`distinct_values_encoding`]).
    pub distinct_columns: Vec<String>,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            codec: Codec::default(),
            // Row groups of ~1M rows / 128 MB are what Athena, Spark and DuckDB read well.
            // Their pages are spilled to disk as they are encoded (see `SpillPageStore`), so
            // memory does not grow with the row group.
            row_group_rows: 1_048_576,
            row_group_bytes: 128 * 1024 * 1024,
            distinct_columns: Vec::new(),
        }
    }
}

impl ParquetOptions {
    fn writer_properties(
        &self,
        schema: &arrow_schema::Schema,
    ) -> Result<WriterProperties, parquet::errors::ParquetError> {
        let compression = match self.codec {
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level)?),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        };
        let mut builder = WriterProperties::builder();
        for column in &self.distinct_columns {
            let path = ColumnPath::from(column.as_str());
            builder = builder.set_column_dictionary_enabled(path.clone(), false);
            if let Some(encoding) = schema
                .field_with_name(column)
                .ok()
                .and_then(|field| distinct_values_encoding(field.data_type()))
            {
                builder = builder.set_column_encoding(path, encoding);
            }
        }
        Ok(builder
            .set_compression(compression)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_max_row_group_bytes(Some(self.row_group_bytes))
            .set_created_by(concat!("etl-toolkit ", env!("CARGO_PKG_VERSION")).to_string())
            .build())
    }
}

/// The encoding of a column without a dictionary, by its Arrow type, where PLAIN is not the
/// best: integers, dates, timestamps and decimals stored as integers are DELTA_BINARY_PACKED
/// (differences bit-packed: on the bench table, the ordered id 5.7 -> 1.2 MB, a random
/// timestamp 35.7 -> 30.9 MB, and less for zstd to do); text and bytes are
/// DELTA_LENGTH_BYTE_ARRAY (lengths apart from the bytes: uuid as text 99.2 -> 92.7 MB).
/// Both are read by pyarrow, DuckDB, Spark (>= 3.4 vectorized) and Trino/Athena v3.
fn distinct_values_encoding(data_type: &DataType) -> Option<Encoding> {
    match data_type {
        DataType::Int32
        | DataType::Int64
        | DataType::Date32
        | DataType::Timestamp(_, _)
        | DataType::Time64(_) => Some(Encoding::DELTA_BINARY_PACKED),
        // Stored as INT32 / INT64 up to 18 digits; wider ones are fixed-length bytes.
        DataType::Decimal128(precision, _) if *precision <= 18 => {
            Some(Encoding::DELTA_BINARY_PACKED)
        }
        DataType::Utf8 | DataType::Binary => Some(Encoding::DELTA_LENGTH_BYTE_ARRAY),
        _ => None,
    }
}

/// A Parquet file under construction at `path`.
pub struct ParquetFileWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl ParquetFileWriter {
    pub fn create(path: &Path, schema: SchemaRef, options: &ParquetOptions) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io("cannot create", path, e))?;
        let props = options.writer_properties(&schema).map_err(Error::Parquet)?;
        let spill_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let writer_options = ArrowWriterOptions::new()
            .with_properties(props)
            .with_page_store_factory(Arc::new(SpillPageStoreFactory::new(spill_dir)));
        let writer = ArrowWriter::try_new_with_options(file, schema, writer_options)
            .map_err(Error::Parquet)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        let row_groups = self.writer.flushed_row_groups().len();
        self.writer.write(batch).map_err(Error::Parquet)?;
        if self.writer.flushed_row_groups().len() > row_groups {
            crate::memory::release_free_memory();
        }
        Ok(())
    }

    /// Bytes written to the file so far plus those buffered for the open row group.
    pub fn approximate_size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Writes the footer; returns the path, its rows and its bytes. The file is not synced
    /// here: a local publication makes the whole staged table durable in one step
    /// ([`crate::sink::make_durable`]), and files bound for S3 need no sync at all.
    pub fn finish(self) -> Result<WrittenFile> {
        let file = self.writer.into_inner().map_err(Error::Parquet)?;
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

/// A directory's `part-00000.parquet`, `part-00001.parquet`, ...: a new file once one reaches
/// the size target. Used for a whole table and for each of a partitioned table's partitions.
pub struct RollingFiles {
    dir: PathBuf,
    schema: SchemaRef,
    parquet: ParquetOptions,
    max_file_bytes: Option<u64>,
    /// File names are this, then a number: `part-00000.parquet`.
    prefix: String,
    open: Option<ParquetFileWriter>,
    done: Vec<WrittenFile>,
}

impl RollingFiles {
    pub fn new(
        dir: &Path,
        schema: SchemaRef,
        parquet: &ParquetOptions,
        max_file_bytes: Option<u64>,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            schema,
            parquet: parquet.clone(),
            max_file_bytes,
            prefix: "part-".to_string(),
            open: None,
            done: Vec::new(),
        }
    }

    /// Names the files `<prefix>00000.parquet`, ... (an incremental batch's
    /// `batch-00003-part-00000.parquet`) instead of `part-00000.parquet`.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    fn open_next(&self) -> Result<ParquetFileWriter> {
        let name = format!("{}{:05}.parquet", self.prefix, self.done.len());
        ParquetFileWriter::create(&self.dir.join(name), self.schema.clone(), &self.parquet)
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.open.is_none() {
            self.open = Some(self.open_next()?);
        }
        let Some(writer) = self.open.as_mut() else {
            return Ok(());
        };
        writer.write(batch)?;
        if let Some(limit) = self.max_file_bytes
            && writer.approximate_size() as u64 >= limit
            && let Some(full) = self.open.take()
        {
            self.done.push(full.finish()?);
        }
        Ok(())
    }

    /// The files written; none if no batch was.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        if let Some(writer) = self.open.take() {
            self.done.push(writer.finish()?);
        }
        Ok(self.done)
    }

    /// The files written, or one file without rows, so that readers of an empty table see
    /// its schema.
    pub fn finish_with_schema(mut self) -> Result<Vec<WrittenFile>> {
        if self.open.is_none() && self.done.is_empty() {
            self.open = Some(self.open_next()?);
        }
        self.finish()
    }
}

/// A finished Parquet file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

/// Keeps a column chunk's finished pages (past the first 64 KB) in an unlinked temporary file
/// until its row group is written, instead of on the heap: the writer's memory is then a few
/// hundred KB per column, not a whole row group (~100 MB at the defaults). The pages are read back once, in
/// order.
#[derive(Debug)]
struct SpillPageStoreFactory {
    dir: PathBuf,
    counter: AtomicU64,
}

impl SpillPageStoreFactory {
    fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            counter: AtomicU64::new(0),
        }
    }
}

impl PageStoreFactory for SpillPageStoreFactory {
    fn create(&self, args: &PageStoreArgs<'_>) -> parquet::errors::Result<Box<dyn PageStore>> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!(
            ".spill-{}-{n}-{}",
            std::process::id(),
            args.column_index()
        ));
        Ok(Box::new(SpillPageStore {
            path,
            file: None,
            end: 0,
            in_memory: 0,
            pages: Vec::new(),
        }))
    }
}

/// A column chunk's pages are kept in memory up to this many bytes before the rest goes to
/// disk: small chunks (a partition's, a small table's) then create no file at all, which
/// costs more than the pages when there are thousands of them. 64 KB, not 256: 16 columns'
/// pages held at a row group's close were ~3 MB of a plain export's peak RSS.
const IN_MEMORY_PAGES: usize = 64 << 10;

enum StoredPage {
    InMemory(Bytes),
    OnDisk { offset: u64, len: usize },
}

struct SpillPageStore {
    path: PathBuf,
    /// Created at the first page past `IN_MEMORY_PAGES`.
    file: Option<File>,
    end: u64,
    in_memory: usize,
    /// Each page, indexed by its key.
    pages: Vec<StoredPage>,
}

impl SpillPageStore {
    fn file(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&self.path)?;
            // Unlinked at once: the space is freed when the store is dropped, even after a
            // crash.
            std::fs::remove_file(&self.path)?;
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the spill file is gone"))
    }
}

impl PageStore for SpillPageStore {
    fn put(&mut self, value: Bytes) -> parquet::errors::Result<PageKey> {
        let key = PageKey::new(self.pages.len() as u64);
        if self.in_memory + value.len() <= IN_MEMORY_PAGES {
            self.in_memory += value.len();
            self.pages.push(StoredPage::InMemory(value));
            return Ok(key);
        }
        let offset = self.end;
        let file = self.file()?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&value)?;
        self.pages.push(StoredPage::OnDisk {
            offset,
            len: value.len(),
        });
        self.end += value.len() as u64;
        Ok(key)
    }

    fn take(&mut self, key: PageKey) -> parquet::errors::Result<Bytes> {
        let unknown = || parquet::errors::ParquetError::General("unknown spilled page".into());
        let page = self.pages.get_mut(key.get() as usize).ok_or_else(unknown)?;
        match page {
            StoredPage::InMemory(bytes) => {
                let bytes = std::mem::take(bytes);
                self.in_memory -= bytes.len();
                Ok(bytes)
            }
            StoredPage::OnDisk { offset, len } => {
                let (offset, len) = (*offset, *len);
                let mut buf = vec![0u8; len];
                let file = self.file.as_mut().ok_or_else(unknown)?;
                file.seek(SeekFrom::Start(offset))?;
                file.read_exact(&mut buf)?;
                Ok(Bytes::from(buf))
            }
        }
    }
}
