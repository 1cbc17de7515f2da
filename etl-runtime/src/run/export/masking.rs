//! The first stage of a table's blocking side: its masked columns' values replaced by their
//! hashes ([`crate::mask`]) before any other processor sees the tuples.

use super::*;
use crate::mask::Masker;

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
