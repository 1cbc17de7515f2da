//! Row versions: what the files of a table with a cursor say of each row, so that a reader can
//! tell the current rows from the earlier versions beside them.
//!
//! Every file of such a table carries two more columns: `_etl_batch`, the run that delivered
//! the row (0 for the full export, then each batch's number: the order of the runs'
//! snapshots), and `_etl_deleted`, true for a key that was deleted by then (its key columns
//! set, every other column NULL). A key's current version is the one with the largest
//! `_etl_batch`; the key is in the table if that version is not a deletion. A snapshot holds
//! one version of a key, so two versions never share a batch number.
//!
//! Deletions carry NULL in columns that are NOT NULL in PostgreSQL, so in these files only the
//! primary-key columns are REQUIRED.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::model::TableInfo;

/// The run that delivered a row: 0 for the full export, then the batch's number.
pub const BATCH_COLUMN: &str = "_etl_batch";
/// Whether the row is a deletion (the key was gone from the table at that run).
pub const DELETED_COLUMN: &str = "_etl_deleted";

/// Whether `info`'s files carry row versions: a table with a cursor does (a task's records
/// never have one).
pub fn has_row_versions(info: &TableInfo) -> bool {
    info.cursor.is_some()
}

/// The schema of `info`'s files given its model's: key columns as they are, the others
/// nullable (a deletion has no values for them), then the two version columns.
pub fn versioned_schema(schema: &Schema, info: &TableInfo) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let is_key = info.primary_key.contains(&field.name().as_str());
            field
                .as_ref()
                .clone()
                .with_nullable(field.is_nullable() || !is_key)
        })
        .collect();
    fields.push(Field::new(BATCH_COLUMN, DataType::Int64, false));
    fields.push(Field::new(DELETED_COLUMN, DataType::Boolean, false));
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` (the model's columns) with the version columns appended: delivered by run
/// `number`, a deletion or not. `schema` is [`versioned_schema`]'s.
pub fn with_versions(
    batch: &RecordBatch,
    schema: &SchemaRef,
    number: u32,
    deleted: bool,
) -> Result<RecordBatch, ArrowError> {
    let rows = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from_value(i64::from(number), rows)));
    columns.push(Arc::new(BooleanArray::from(vec![deleted; rows])));
    RecordBatch::try_new(schema.clone(), columns)
}

/// The name of a run's key file: `_keys-00003-20240131T101500123456Z.zst`. It starts with `_`
/// so that readers of the table's files (Hive, Spark, Athena, pyarrow) pass over it, and
/// carries the batch and snapshot so that two runs never write the same object.
pub fn keys_file_name(batch: u32, stamp: &str) -> String {
    format!("{KEYS_FILE_PREFIX}{batch:05}-{stamp}.zst")
}

/// What every key file's name starts with.
pub const KEYS_FILE_PREFIX: &str = "_keys-";

/// The batch a file of a table's version belongs to, by its name: a batch's data file
/// (`batch-00003-...`) or key file (`_keys-00003-...`); None for the full export's files.
pub fn file_batch(name: &str) -> Option<u32> {
    name.strip_prefix("batch-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.parse().ok())
        .or_else(|| keys_file_batch(name))
}

/// The batch number in a key file's name, if `name` is one.
pub fn keys_file_batch(name: &str) -> Option<u32> {
    name.strip_prefix(KEYS_FILE_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_names_carry_their_batch() {
        let name = keys_file_name(3, "20240131T101500123456Z");
        assert_eq!(name, "_keys-00003-20240131T101500123456Z.zst");
        assert_eq!(keys_file_batch(&name), Some(3));
        assert_eq!(keys_file_batch("batch-00003-x-part-00000.parquet"), None);
        assert_eq!(file_batch("batch-00003-x-part-00000.parquet"), Some(3));
        assert_eq!(file_batch(&name), Some(3));
        assert_eq!(file_batch("part-00000.parquet"), None);
    }
}
