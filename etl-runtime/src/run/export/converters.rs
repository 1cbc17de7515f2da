//! The converter pool and a table's processor: COPY tuples into Arrow record batches with one
//! model's generated encoder, in parts on the pool's threads, each part's buffers reserved from
//! the previous chunk's value sizes.

use super::*;

/// A pool of threads converting COPY tuples to Arrow arrays in parallel (`--threads`).
#[derive(Clone, Default)]
pub struct Converters {
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for Converters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Converters({})", self.threads())
    }
}

impl Converters {
    /// `threads` converting threads; with one, conversion runs on the table's own thread.
    pub fn new(threads: usize) -> Result<Self> {
        if threads <= 1 {
            return Ok(Self { pool: None });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("etl-convert-{i}"))
            .build()
            .map_err(|source| Error::ConverterThreads { threads, source })?;
        Ok(Self {
            pool: Some(Arc::new(pool)),
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }

    /// Runs `f` inside the pool (where rayon's parallel iterators use its threads), or on this
    /// thread without one.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            None => f(),
            Some(pool) => pool.install(f),
        }
    }

    /// Runs `a` and `b` at once on the pool's threads (and any parallel work they start), or
    /// one after the other on this thread without a pool.
    pub fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        match &self.pool {
            None => (a(), b()),
            Some(pool) => pool.join(a, b),
        }
    }

    /// Runs `f` on parts of `items`, in parallel on the pool's threads, results in order.
    pub fn map_parts<I: Sync, R: Send>(
        &self,
        items: &[I],
        f: impl Fn(&[I]) -> R + Sync + Send,
    ) -> Vec<R> {
        match &self.pool {
            None => vec![f(items)],
            Some(pool) => {
                let part_len = items.len().div_ceil(pool.current_num_threads()).max(1);
                pool.install(|| {
                    use rayon::prelude::*;
                    items.par_chunks(part_len).map(&f).collect()
                })
            }
        }
    }
}

/// A model's encoder: one part of a chunk of its table's COPY tuples into a record batch,
/// reserving per column the bytes of values given (see [`ValueSizes`]).
pub type EncodeFn = fn(&[Bytes], &[usize]) -> Result<RecordBatch>;

/// Encodes COPY tuples straight into Arrow with one model's generated encoder.
///
/// Not generic on purpose: the pipeline around it (reading, files, publishing) is compiled
/// once, not once per model, and each model adds only its [`encode_part`]. With many models
/// that is most of the binary's build time (`cargo xtask bench --models N`).
pub(crate) struct TableProcessor {
    converters: Converters,
    schema: SchemaRef,
    encode: EncodeFn,
    sizes: ValueSizes,
}

impl TableProcessor {
    pub(crate) fn new(converters: Converters, schema: SchemaRef, encode: EncodeFn) -> Self {
        Self {
            converters,
            schema,
            encode,
            sizes: ValueSizes::default(),
        }
    }
}

impl ChunkProcessor for TableProcessor {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, tuples: Vec<Bytes>) -> Result<Vec<RecordBatch>> {
        let (encode, sizes) = (self.encode, &self.sizes);
        let batches = self
            .converters
            .map_parts(&tuples, |part| encode(part, &sizes.for_rows(part.len())))
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        self.sizes.observe(&batches);
        Ok(batches)
    }
}

/// Per column, the bytes of text, JSON or bytes values per row in the last chunk: what the
/// next chunk's encoders reserve. From a guess per row instead, a part's value buffers
/// double, and are copied, several times as values come.
#[derive(Debug, Default)]
pub(crate) struct ValueSizes {
    /// Per column, bytes per 1,024 rows (0 for a fixed-width column).
    per_1024_rows: Vec<usize>,
}

impl ValueSizes {
    /// Per column, the bytes to reserve for `rows` rows: as many as the last chunk's and an
    /// eighth more (so that a part a little above the average is not regrown), rounded up to
    /// a power of two. Rounded, the buffers come in the few sizes that glibc's free lists hand
    /// back chunk after chunk; exact sizes fragment the heap, and peak RSS then grows with the
    /// table.
    /// Nothing before the first chunk (the encoders guess).
    fn for_rows(&self, rows: usize) -> Vec<usize> {
        self.per_1024_rows
            .iter()
            .map(|&bytes| match bytes.saturating_mul(rows) / 1024 {
                0 => 0,
                expected => expected
                    .saturating_add(expected / 8)
                    .checked_next_power_of_two()
                    .unwrap_or(usize::MAX),
            })
            .collect()
    }

    fn observe(&mut self, batches: &[RecordBatch]) {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let Some(first) = batches.first() else {
            return;
        };
        if rows == 0 {
            return;
        }
        self.per_1024_rows = (0..first.num_columns())
            .map(|column| {
                let bytes: usize = batches
                    .iter()
                    .map(|batch| value_bytes(batch.column(column).as_ref()))
                    .sum();
                bytes.saturating_mul(1024) / rows
            })
            .collect();
    }
}

/// The bytes of a text or bytes array's values (0 for other types).
pub(crate) fn value_bytes(array: &dyn arrow_array::Array) -> usize {
    use arrow_array::cast::AsArray;
    let span = |offsets: &[i32]| match (offsets.first(), offsets.last()) {
        (Some(&first), Some(&last)) => usize::try_from(last - first).unwrap_or(0),
        _ => 0,
    };
    match array.data_type() {
        arrow_schema::DataType::Utf8 => span(array.as_string::<i32>().value_offsets()),
        arrow_schema::DataType::Binary => span(array.as_binary::<i32>().value_offsets()),
        _ => 0,
    }
}

/// One part of a chunk of `T`'s COPY tuples as one record batch, its text and bytes columns
/// reserving `value_bytes` (per column).
pub(crate) fn encode_part<T: EtlTable>(
    part: &[Bytes],
    value_bytes: &[usize],
) -> Result<RecordBatch> {
    let mut encoder = T::Encoder::with_value_bytes(part.len(), value_bytes);
    for tuple in part {
        encoder.push_wire(tuple).map_err(Error::Row)?;
    }
    encoder.finish().map_err(Error::Arrow)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};

    use super::ValueSizes;

    fn batch(texts: &[Option<&str>], bytes: &[&[u8]]) -> RecordBatch {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..texts.len() as i64));
        let texts: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
        let bytes: ArrayRef = Arc::new(BinaryArray::from(bytes.to_vec()));
        RecordBatch::try_from_iter([("id", ids), ("text", texts), ("bytes", bytes)]).expect("batch")
    }

    #[test]
    fn value_sizes_follow_the_last_chunk_per_column_rounded_up() {
        let mut sizes = ValueSizes::default();
        assert!(
            sizes.for_rows(4096).is_empty(),
            "nothing known before a chunk"
        );
        // 4 rows: 8 + 0 (NULL) + 8 + 16 bytes of text, 4 x 2 bytes.
        let first = batch(
            &[
                Some("abcdefgh"),
                None,
                Some("12345678"),
                Some("0123456789abcdef"),
            ],
            &[b"ab", b"cd", b"ef", b"gh"],
        );
        sizes.observe(&[first.slice(0, 2), first.slice(2, 2)]);
        // Per row: 8 bytes of text, 2 of bytes; for 1,000 rows, an eighth more (9,000 and
        // 2,250), rounded up to a power of two.
        assert_eq!(sizes.for_rows(1000), vec![0, 16_384, 4096]);
        // The next chunk replaces what the first said.
        sizes.observe(&[batch(&[Some("a"), Some("b")], &[b"", b""])]);
        assert_eq!(sizes.for_rows(1000), vec![0, 2048, 0]);
        // A chunk of no rows says nothing.
        sizes.observe(&[]);
        assert_eq!(sizes.for_rows(1000), vec![0, 2048, 0]);
    }
}
