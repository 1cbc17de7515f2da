//! How Parquet files are written: the codec, row group sizes, and the writer properties
//! chosen per column (dictionaries by the columns' statistics, encodings, statistics).

use arrow_schema::DataType;
use arrow_schema::extension::ExtensionType;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::source::ColumnStatistics;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Zstd(i32),
    Snappy,
    None,
}

impl Default for Codec {
    fn default() -> Self {
        // Level 1: Parquet pages are small, so higher levels find little more to save and
        // cost more time (see PERFORMANCE.md).
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
    /// For files published where they are written (a local output, [`WRITE_BACK_BYTES`]):
    /// their row groups start for the disk as they are written, this many bytes or more at a
    /// time ([`start_writeback`]), rather than all at publication.
    pub write_back: Option<u64>,
    /// What PostgreSQL's statistics say of the table's columns ([`ColumnStatistics`]): a
    /// column whose values in a row group would be mostly distinct is written without a
    /// dictionary, which would be interned in vain, in a delta encoding where its type has
    /// one ([`distinct_values_encoding`]).
    pub statistics: ColumnStatistics,
    /// Rows the next file is expected to hold where the writer knows better than the
    /// statistics (a partition's rows, counted before its file is written).
    pub file_rows: Option<u64>,
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
            write_back: None,
            statistics: ColumnStatistics::default(),
            file_rows: None,
        }
    }
}

impl ParquetOptions {
    pub(crate) fn writer_properties(
        &self,
        schema: &arrow_schema::Schema,
    ) -> Result<WriterProperties, parquet::errors::ParquetError> {
        let compression = match self.codec {
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level)?),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        };
        let mut builder = WriterProperties::builder();
        // A dictionary is per row group.
        let rows = self
            .file_rows
            .map_or(self.statistics.rows, |rows| rows as f64)
            .min(self.row_group_rows as f64);
        for column in self.statistics.mostly_distinct(rows) {
            let path = ColumnPath::from(column);
            builder = builder.set_column_dictionary_enabled(path.clone(), false);
            if let Some(encoding) = schema
                .field_with_name(column)
                .ok()
                .and_then(|field| distinct_values_encoding(field.data_type()))
            {
                builder = builder.set_column_encoding(path, encoding);
            }
        }
        // No statistics on JSON columns: no engine prunes on a JSON text's min and max, and
        // they cost a comparison of every value.
        for field in schema.fields() {
            if field.extension_type_name() == Some(arrow_schema::extension::Json::NAME) {
                builder = builder.set_column_statistics_enabled(
                    ColumnPath::from(field.name().as_str()),
                    EnabledStatistics::None,
                );
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
/// (differences bit-packed: an ordered key shrinks to a fraction, and zstd has less to do);
/// text and bytes are DELTA_LENGTH_BYTE_ARRAY (the lengths apart from the bytes, each
/// compressed with its kind).
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
