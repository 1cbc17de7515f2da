//! Deleted rows of a table with a cursor, found on the run's snapshot, and the row versions
//! every file of such a table carries ([`crate::layout::versions`]).
//!
//! A cursor finds the rows that changed, never the rows that are gone. So each run also reads
//! the table's primary key, sorted by PostgreSQL (through the key's index where it can), and
//! walks it beside the key file the previous run left (sorted the same way): a key in the
//! file and not in the table was deleted in between, and the batch carries a deletion for it.
//! The keys read become the run's own key file, published with the batch in the same step. The
//! walk holds two keys at a time; only the deleted keys are kept until they are written.

use std::cmp::Ordering;
use std::path::Path;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::layout::Manifest;
use crate::layout::keys::{KeyFileReader, KeyFileWriter};
use crate::layout::versions;
use crate::mask::{MaskKey, Masker};
use crate::model::TableInfo;
use crate::run::incremental::Plan;
use crate::run::key_sort::KeySorter;
use crate::run::processor::ChunkProcessor;
use crate::sink::Sink;
use crate::source::PgSource;
use crate::source::copy::TupleSplitter;
use crate::source::keys::KeyOrder;

/// Deletions are written this many to a record batch.
const DELETIONS_PER_BATCH: usize = 8192;

/// What the key pass found.
pub(crate) struct KeyPass {
    /// The keys gone since the previous run, ascending.
    pub(crate) deleted: Vec<Vec<u8>>,
    /// Keys in the table at this run's snapshot (and in its key file).
    pub(crate) live: u64,
}

/// The row versions of a table with a cursor, for one run.
pub(crate) struct RowVersions {
    /// The files' schema: the model's with the version columns.
    pub(crate) schema: SchemaRef,
    /// The run's `_etl_batch`.
    pub(crate) number: u32,
    /// The run's key file, and the deletions found against the previous one.
    pub(crate) keys: Option<String>,
    pub(crate) deleted: u64,
    pub(crate) deletions: Vec<RecordBatch>,
}

/// The row versions of `info`'s run: for a run that keeps state, its keys read into a key file
/// in `staged_dir` and the deletions since the previous run's key file, masked keys hashed
/// with `mask_key`.
pub(crate) async fn row_versions(
    source: &PgSource,
    sink: &dyn Sink,
    (cancel, mask_key): (&Cancel, Option<&MaskKey>),
    info: &TableInfo,
    (table_dir, staged_dir): (&str, &Path),
    (plan, previous): (Option<&Plan>, Option<&Manifest>),
    model_schema: SchemaRef,
) -> Result<RowVersions> {
    let schema = crate::layout::versions::versioned_schema(&model_schema, info);
    let (Some(plan), Some(snapshot)) = (plan, source.snapshot()) else {
        return Ok(RowVersions {
            schema,
            number: 0,
            keys: None,
            deleted: 0,
            deletions: Vec::new(),
        });
    };
    let order = KeyOrder::new(info)?;
    // The previous key file where it is (locally), or downloaded beside the staged table (S3).
    let scratch = staged_dir.with_extension("inputs");
    let previous_keys = match (plan.previous_keys(), previous) {
        (Some(name), Some(manifest)) => {
            let path = sink
                .fetch_published(table_dir, manifest, name, &scratch)
                .await?;
            Some(KeyFileReader::open(&path, &path.display().to_string())?)
        }
        _ => None,
    };
    let keys = plan.keys_file(snapshot);
    // Beside the staged table, never in it: what is in it is published.
    let sort_dir = staged_dir.with_extension("keysort");
    let pass = read_keys(
        source,
        info,
        &order,
        (previous_keys, mask_key),
        (&staged_dir.join(&keys), &sort_dir),
        cancel,
    )
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(&sort_dir);
    let pass = pass?;
    let deletions = deletion_batches(&order, &schema, &pass.deleted, plan.number())?;
    tracing::debug!(
        table = %info.display_name(),
        "{} keys read, {} deleted since the last run",
        pass.live,
        pass.deleted.len()
    );
    Ok(RowVersions {
        schema,
        number: plan.number(),
        keys: Some(keys),
        deleted: pass.deleted.len() as u64,
        deletions,
    })
}

/// Reads `info`'s keys on the run's snapshot into a new key file at `keys_path`, and, given
/// the previous run's key file, the keys deleted since. A key with a masked column is masked
/// with `mask_key` and sorted here, its sorted runs spilled to `sort_dir`.
pub(crate) async fn read_keys(
    source: &PgSource,
    info: &TableInfo,
    order: &KeyOrder,
    (previous, mask_key): (Option<KeyFileReader>, Option<&MaskKey>),
    (keys_path, sort_dir): (&Path, &Path),
    cancel: &Cancel,
) -> Result<KeyPass> {
    // A masked key: each tuple masked, then sorted here (PostgreSQL never sees the hashes).
    let mut client_sort = match order.client_sorted() {
        true => Masker::new(order.key_columns(info), mask_key)?
            .map(|masker| (masker, KeySorter::new(order, sort_dir))),
        false => None,
    };
    let mut tx = source.begin_read().await?;
    // A dropped or changed key column is the drift error the data read gives, not a failed
    // query: check first, on the same snapshot.
    crate::source::drift::check(&mut tx, info).await?;
    let mut merge = Merge::new(order, previous)?;
    let mut writer = KeyFileWriter::create(keys_path)?;
    let mut tuples: Vec<Bytes> = Vec::new();
    {
        let mut stream = tx
            .copy_out_raw(&order.copy_sql(info))
            .await
            .map_err(Error::Query)?;
        let mut splitter = TupleSplitter::new();
        while let Some(data) = stream.try_next().await.map_err(Error::Query)? {
            splitter.feed(data, &mut tuples).map_err(Error::Copy)?;
            if tuples.len() >= 4096 {
                cancel.check()?;
            }
            for tuple in tuples.drain(..) {
                match &mut client_sort {
                    Some((masker, sorter)) => {
                        sorter.push(masker.mask(&tuple).map_err(Error::Mask)?)?;
                    }
                    None => {
                        merge.live(&tuple)?;
                        writer.push(&tuple)?;
                    }
                }
            }
        }
        splitter.finish().map_err(Error::Copy)?;
    }
    let _ = tx.commit().await;
    if let Some((_, sorter)) = client_sort {
        sorter.finish(|key| {
            merge.live(key)?;
            writer.push(key)
        })?;
    }
    let live = writer.finish()?;
    Ok(KeyPass {
        deleted: merge.finish()?,
        live,
    })
}

/// The walk of the previous keys beside the live ones, both ascending.
struct Merge<'a> {
    order: &'a KeyOrder,
    previous: Option<KeyFileReader>,
    /// The previous key not yet matched, and the one before it (for the order check).
    pending: Option<Vec<u8>>,
    last_previous: Vec<u8>,
    last_live: Option<Vec<u8>>,
    deleted: Vec<Vec<u8>>,
}

impl<'a> Merge<'a> {
    fn new(order: &'a KeyOrder, previous: Option<KeyFileReader>) -> Result<Self> {
        let mut merge = Self {
            order,
            previous,
            pending: None,
            last_previous: Vec::new(),
            last_live: None,
            deleted: Vec::new(),
        };
        merge.advance()?;
        Ok(merge)
    }

    fn compare(&self, a: &[u8], b: &[u8]) -> Result<Ordering> {
        self.order.compare(a, b).map_err(|e| Error::KeyOrder {
            which: "stored",
            detail: e.to_string(),
        })
    }

    /// The next previous key into `pending`, checked to come after the one before.
    fn advance(&mut self) -> Result<()> {
        // The key done with becomes the last one; the buffer of the one before takes the next
        // (no allocation per key).
        let mut next = match self.pending.take() {
            Some(done) => std::mem::replace(&mut self.last_previous, done),
            None => Vec::new(),
        };
        let Some(reader) = self.previous.as_mut() else {
            return Ok(());
        };
        let Some(read) = reader.next_key()? else {
            self.previous = None;
            return Ok(());
        };
        next.clear();
        next.extend_from_slice(read);
        if !self.last_previous.is_empty()
            && self.compare(&self.last_previous, &next)? != Ordering::Less
        {
            return Err(Error::KeyOrder {
                which: "the key file's",
                detail: format!(
                    "{} after {}",
                    self.order.render(&next),
                    self.order.render(&self.last_previous)
                ),
            });
        }
        self.pending = Some(next);
        Ok(())
    }

    /// A key of the table, in PostgreSQL's order: the previous keys before it are deleted.
    fn live(&mut self, key: &[u8]) -> Result<()> {
        if let Some(last) = &self.last_live
            && self.compare(last, key)? != Ordering::Less
        {
            return Err(Error::KeyOrder {
                which: "PostgreSQL's",
                detail: format!(
                    "{} after {}",
                    self.order.render(key),
                    self.order.render(last)
                ),
            });
        }
        while let Some(pending) = &self.pending {
            match self.compare(pending, key)? {
                Ordering::Less => {
                    let gone = pending.clone();
                    self.deleted.push(gone);
                    self.advance()?;
                }
                Ordering::Equal => {
                    self.advance()?;
                    break;
                }
                Ordering::Greater => break,
            }
        }
        match &mut self.last_live {
            Some(last) => {
                last.clear();
                last.extend_from_slice(key);
            }
            None => self.last_live = Some(key.to_vec()),
        }
        Ok(())
    }

    /// The previous keys after the last live one are deleted too.
    fn finish(mut self) -> Result<Vec<Vec<u8>>> {
        while let Some(pending) = self.pending.clone() {
            self.deleted.push(pending);
            self.advance()?;
        }
        Ok(self.deleted)
    }
}

/// The record batches of `deleted` keys for the files of `schema` (a versioned schema):
/// key columns set, every other column NULL, delivered by batch `number`.
pub(crate) fn deletion_batches(
    order: &KeyOrder,
    schema: &SchemaRef,
    deleted: &[Vec<u8>],
    number: u32,
) -> Result<Vec<RecordBatch>> {
    let model_columns = schema.fields().len() - 2;
    let mut batches = Vec::new();
    for chunk in deleted.chunks(DELETIONS_PER_BATCH) {
        let keys = chunk
            .iter()
            .map(|k| order.values(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::KeyOrder {
                which: "stored",
                detail: e.to_string(),
            })?;
        let mut columns: Vec<ArrayRef> = (0..model_columns)
            .map(|i| arrow_array::new_null_array(schema.field(i).data_type(), chunk.len()))
            .collect();
        for (position, (index, wire)) in order.columns().enumerate() {
            let field = schema.field(index);
            let values: Vec<&[u8]> = keys.iter().map(|k| k[position]).collect();
            columns[index] = crate::codec::wire_array(wire, field.data_type(), &values)
                .ok_or_else(|| Error::NoKeyForDeletes {
                    reason: format!(
                        "the key column {} is written as {}, which deletions cannot carry",
                        field.name(),
                        field.data_type()
                    ),
                })?
                .map_err(|e| Error::KeyOrder {
                    which: "stored",
                    detail: format!("{}: {e}", field.name()),
                })?;
        }
        let model = RecordBatch::try_new(
            std::sync::Arc::new(arrow_schema::Schema::new(
                schema.fields()[..model_columns].to_vec(),
            )),
            columns,
        )
        .map_err(Error::Arrow)?;
        batches.push(versions::with_versions(&model, schema, number, true).map_err(Error::Arrow)?);
    }
    Ok(batches)
}

/// A table's processor whose batches carry the row-version columns, followed by the run's
/// deletions.
pub(crate) struct Versioned {
    inner: Box<dyn ChunkProcessor>,
    schema: SchemaRef,
    number: u32,
    deletions: Vec<RecordBatch>,
}

impl Versioned {
    pub(crate) fn new(
        inner: Box<dyn ChunkProcessor>,
        schema: SchemaRef,
        number: u32,
        deletions: Vec<RecordBatch>,
    ) -> Self {
        Self {
            inner,
            schema,
            number,
            deletions,
        }
    }

    fn versioned(&self, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        batches
            .iter()
            .map(|b| versions::with_versions(b, &self.schema, self.number, false))
            .collect::<Result<_, _>>()
            .map_err(Error::Arrow)
    }
}

impl ChunkProcessor for Versioned {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, tuples: Vec<Bytes>) -> Result<Vec<RecordBatch>> {
        let batches = self.inner.process(tuples)?;
        self.versioned(batches)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        let batches = self.inner.finish()?;
        let mut out = self.versioned(batches)?;
        out.append(&mut self.deletions);
        Ok(out)
    }

    fn skipped(&self) -> u64 {
        self.inner.skipped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: TableInfo = crate::model::fixtures::BIGINT_KEYED;

    fn key(id: i64) -> Vec<u8> {
        let mut out = 1i16.to_be_bytes().to_vec();
        out.extend(8i32.to_be_bytes());
        out.extend(id.to_be_bytes());
        out
    }

    fn key_file(ids: &[i64]) -> KeyFileReader {
        let dir = std::env::temp_dir().join(format!("etl-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(format!("{}.zst", ids.len()));
        let mut writer = KeyFileWriter::create(&path).expect("create");
        for &id in ids {
            writer.push(&key(id)).expect("push");
        }
        writer.finish().expect("finish");
        KeyFileReader::open(&path, "k").expect("open")
    }

    fn deleted(previous: &[i64], live: &[i64]) -> Result<Vec<i64>> {
        let order = KeyOrder::new(&INFO)?;
        let mut merge = Merge::new(&order, Some(key_file(previous)))?;
        for &id in live {
            merge.live(&key(id))?;
        }
        Ok(merge
            .finish()?
            .iter()
            .map(|k| i64::from_be_bytes(k[6..14].try_into().expect("8 bytes")))
            .collect())
    }

    #[test]
    fn keys_missing_from_the_table_are_deleted_wherever_they_fall() {
        assert_eq!(
            deleted(&[-5, 1, 2, 3, 9], &[1, 3, 4, 10]).expect("walks"),
            [-5, 2, 9]
        );
        assert_eq!(deleted(&[], &[1, 2]).expect("walks"), Vec::<i64>::new());
        assert_eq!(deleted(&[1, 2], &[]).expect("walks"), [1, 2]);
    }

    #[test]
    fn keys_out_of_order_stop_the_walk() {
        let e = deleted(&[1, 2, 3], &[1, 3, 2]).expect_err("descending live keys");
        assert!(e.to_string().contains("id=2 after id=3"), "{e}");
        let e = deleted(&[1, 3, 2], &[1]).expect_err("descending stored keys");
        assert!(e.to_string().contains("the key file's"), "{e}");
    }
}
