//! Rows kept under the memory budget: the Arrow IPC spill file a partitioned table's rows are
//! regrouped into, and the gathering of a partition's pieces into few writes.

use super::*;

/// Bytes gathered before each write to the spill file.
pub(crate) const SPILL_BUFFER: usize = 1 << 20;

pub(crate) struct Spill {
    pub(crate) path: PathBuf,
    pub(crate) writer: arrow_ipc::writer::FileWriter<std::io::BufWriter<File>>,
    pub(crate) batches: usize,
}

/// A partition's batches (one per spill, a few hundred rows each) gathered into one before
/// they are written: each write costs per column whatever its rows.
pub(crate) struct Gathered {
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) bytes: usize,
    /// At most [`GATHER_BYTES`], and at most the file-size target: a file is cut only
    /// between writes, and a write's Parquet bytes are at most about its Arrow bytes, so a
    /// file ends within about twice its target.
    pub(crate) limit: usize,
}

/// Bytes of a partition's batches gathered before they are written as one.
pub(crate) const GATHER_BYTES: usize = 4 << 20;

impl Gathered {
    pub(crate) fn new(max_file_bytes: Option<u64>) -> Self {
        let limit = max_file_bytes.map_or(GATHER_BYTES, |max| {
            GATHER_BYTES.min(usize::try_from(max).unwrap_or(usize::MAX))
        });
        Self {
            batches: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    pub(crate) fn push(
        &mut self,
        batch: RecordBatch,
        schema: &SchemaRef,
        out: &mut RollingFiles,
    ) -> Result<()> {
        self.bytes += batch.get_array_memory_size();
        self.batches.push(batch);
        if self.bytes >= self.limit {
            self.flush(schema, out)?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self, schema: &SchemaRef, out: &mut RollingFiles) -> Result<()> {
        self.bytes = 0;
        match self.batches.len() {
            0 => Ok(()),
            1 => out.write(&self.batches.remove(0)),
            _ => {
                let batch = arrow_select::concat::concat_batches(schema, &self.batches)
                    .map_err(Error::Arrow)?;
                self.batches.clear();
                out.write(&batch)
            }
        }
    }
}

/// Rows regrouped by partition in memory: pieces of up to `PIECE_ROWS` rows, and each
/// partition's slices of them, in order.
pub(crate) struct Regrouped {
    pub(crate) pieces: Vec<RecordBatch>,
    pub(crate) slices: Vec<Vec<RowSlice>>,
}

#[derive(Clone, Copy)]
pub(crate) struct RowSlice {
    pub(crate) piece: usize,
    pub(crate) offset: usize,
    pub(crate) len: usize,
}

impl Regrouped {
    pub(crate) fn batch(&self, slice: &RowSlice) -> RecordBatch {
        self.pieces[slice.piece].slice(slice.offset, slice.len)
    }
}

impl Spill {
    pub(crate) fn create(dir: &Path, schema: &SchemaRef) -> Result<Self> {
        let path = dir.join(crate::layout::names::PARTITION_SPILL);
        let file = File::create(&path).map_err(|e| Error::io("cannot create", &path, e))?;
        // 1 MB, not `BufWriter`'s 8 KB: a spill is tens of MB, in many small Arrow buffers.
        let file = std::io::BufWriter::with_capacity(SPILL_BUFFER, file);
        let writer = arrow_ipc::writer::FileWriter::try_new(file, schema).map_err(Error::Arrow)?;
        Ok(Self {
            path,
            writer,
            batches: 0,
        })
    }

    pub(crate) fn error(&self, what: &'static str, e: arrow_schema::ArrowError) -> Error {
        Error::io(what, &self.path, std::io::Error::other(e))
    }
}
