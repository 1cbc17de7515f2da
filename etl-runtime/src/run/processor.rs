//! The blocking side of a table's pipeline, as the export drives it: what turns a chunk of COPY
//! tuples into record batches (a model's encoder, a task, the row versions around either).

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::mask::Masker;
use crate::model::TableInfo;
use crate::run::export::{Converters, ExportOptions};

/// What a run does with the source's COPY tuples, on the blocking side of the pipeline: a
/// table export encodes them, a task transforms or aggregates them first.
pub trait ChunkProcessor: Send + 'static {
    /// The Arrow schema of what it writes.
    fn schema(&self) -> SchemaRef;
    /// Turns one chunk of tuples into record batches (possibly none).
    fn process(&mut self, tuples: Vec<Bytes>) -> Result<Vec<RecordBatch>>;
    /// Record batches to write after the last chunk (an aggregation's groups).
    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }
    /// Rows left out on purpose (a task that skips bad rows).
    fn skipped(&self) -> u64 {
        0
    }
}

/// Masks a table's masked columns in each chunk (in parts on the converter pool) before the
/// processor it wraps sees the tuples: everything after it sees only hashes.
pub(crate) struct Masking {
    inner: Box<dyn ChunkProcessor>,
    masker: Masker,
    converters: Converters,
}

impl Masking {
    /// `inner` behind the masker of `info`'s masked columns, or as it is without any. A
    /// table with masked columns and no key is an error: nothing is read unmasked.
    pub(crate) fn wrap(
        inner: Box<dyn ChunkProcessor>,
        info: &TableInfo,
        options: &ExportOptions,
    ) -> Result<Box<dyn ChunkProcessor>> {
        Ok(match Masker::for_table(info, options.mask_key.as_ref())? {
            None => inner,
            Some(masker) => Box::new(Self {
                inner,
                masker,
                converters: options.converters.clone(),
            }),
        })
    }
}

impl ChunkProcessor for Masking {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn process(&mut self, tuples: Vec<Bytes>) -> Result<Vec<RecordBatch>> {
        let masker = &self.masker;
        let parts = self
            .converters
            .map_parts(&tuples, |part| masker.mask_all(part));
        drop(tuples);
        let mut masked = Vec::new();
        for part in parts {
            masked.extend(part.map_err(Error::Mask)?);
        }
        self.inner.process(masked)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        self.inner.finish()
    }

    fn skipped(&self) -> u64 {
        self.inner.skipped()
    }
}
