//! The blocking side of a table's pipeline, as the export drives it: what turns a chunk of COPY
//! tuples into record batches (a model's encoder, a task, the row versions around either).

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;

use crate::error::Result;

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
