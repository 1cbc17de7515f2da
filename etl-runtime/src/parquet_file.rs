//! One Parquet file being written: arrow-rs `ArrowWriter` with the project's writer properties.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

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
        // Level 3 is zstd's own default: most of the size win at a fraction of the CPU of
        // higher levels.
        Codec::Zstd(3)
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
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            codec: Codec::default(),
            // ~1M rows is what Athena/Spark read well; the byte cap keeps wide rows from
            // holding hundreds of MB in memory before a group is flushed.
            row_group_rows: 1_048_576,
            row_group_bytes: 64 * 1024 * 1024,
        }
    }
}

impl ParquetOptions {
    fn writer_properties(&self) -> Result<WriterProperties, parquet::errors::ParquetError> {
        let compression = match self.codec {
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level)?),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        };
        Ok(WriterProperties::builder()
            .set_compression(compression)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_max_row_group_bytes(Some(self.row_group_bytes))
            .set_created_by(concat!("etl-toolkit ", env!("CARGO_PKG_VERSION")).to_string())
            .build())
    }
}

/// A Parquet file under construction at `path`.
pub struct ParquetFileWriter {
    table: String,
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl ParquetFileWriter {
    pub fn create(
        table: &str,
        path: &Path,
        schema: SchemaRef,
        options: &ParquetOptions,
    ) -> Result<Self> {
        let parquet_err = |source| Error::Parquet {
            table: table.to_string(),
            source,
        };
        let file = File::create(path).map_err(|e| Error::io("cannot create", path, e))?;
        let props = options.writer_properties().map_err(parquet_err)?;
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet_err)?;
        Ok(Self {
            table: table.to_string(),
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(|source| Error::Parquet {
            table: self.table.clone(),
            source,
        })
    }

    /// Bytes written to the file so far plus those buffered for the open row group.
    pub fn approximate_size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Writes the footer and syncs the file; returns the path, its rows and its bytes.
    pub fn finish(self) -> Result<WrittenFile> {
        let file = self.writer.into_inner().map_err(|source| Error::Parquet {
            table: self.table.clone(),
            source,
        })?;
        file.sync_all()
            .map_err(|e| Error::io("cannot sync", &self.path, e))?;
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

/// A finished Parquet file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}
