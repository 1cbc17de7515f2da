//! A directory's sequence of Parquet files, rolled at a size target.

use super::*;

/// Told of each file of a sequence as soon as it is complete, while later ones are still being
/// written (an object store then uploads it meanwhile). Called on the writing thread.
pub type FileListener = Arc<dyn Fn(&WrittenFile) + Send + Sync>;

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
    listener: Option<FileListener>,
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
            prefix: crate::layout::names::DATA_PREFIX.to_string(),
            open: None,
            done: Vec::new(),
            listener: None,
        }
    }

    /// Tells `listener` of each file once it is complete.
    pub fn with_listener(mut self, listener: Option<FileListener>) -> Self {
        self.listener = listener;
        self
    }

    fn done(&mut self, file: WrittenFile) {
        if let Some(listener) = &self.listener {
            listener(&file);
        }
        self.done.push(file);
    }

    /// Names the files `<prefix>00000.parquet`, ... (an incremental batch's
    /// `batch-00003-part-00000.parquet`) instead of `part-00000.parquet`.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    fn open_next(&self) -> Result<ParquetFileWriter> {
        let name = crate::layout::names::data_file(&self.prefix, self.done.len());
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
            let file = full.finish()?;
            self.done(file);
        }
        Ok(())
    }

    /// The files written; none if no batch was.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        if let Some(writer) = self.open.take() {
            let file = writer.finish()?;
            self.done(file);
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
