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
