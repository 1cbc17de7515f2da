//! A partition of a table's output, as manifests and shard outcomes list it (serde: the
//! manifest and the shard documents render and parse it), and which of a partitioned table's
//! columns its files hold.
//!
//! An identity key's column (`region`, `express`) is in the partitions' directory names only
//! (`region=eu/express=true/`), never inside the files: Hive, Spark, DuckDB and Athena write
//! partitions so, every reader that discovers partitions takes the column from the path, and
//! pyarrow refuses a dataset whose column is in both ("Unable to merge: Field express has
//! incompatible types"). A derived key (`created_at_day`) is a column of its own, in the path
//! only as well; its source column stays in the files. Where the engine reads its own files
//! back (compaction), [`restore_path_columns`] puts the identity columns back from the values.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int16Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use etl_types::PartitionTransform;
use serde::{Deserialize, Serialize};

use crate::model::PartitionKey;

/// A partition: its directory under the table, and its key values as text (None for NULL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub path: String,
    pub values: Vec<Option<String>>,
}

/// Whether the files of a table partitioned by `keys` hold column `column` (an index into its
/// schema): all but the columns of identity keys.
pub fn in_files(keys: &[PartitionKey], column: usize) -> bool {
    !keys
        .iter()
        .any(|key| key.transform == PartitionTransform::Identity && key.column == column)
}

/// The schema of the files of a table of `schema` partitioned by `keys`, and the indexes of
/// its columns in `schema`.
pub fn file_schema(schema: &SchemaRef, keys: &[PartitionKey]) -> (SchemaRef, Vec<usize>) {
    let columns: Vec<usize> = (0..schema.fields().len())
        .filter(|&column| in_files(keys, column))
        .collect();
    let fields = columns.iter().map(|&c| schema.field(c).clone());
    (Arc::new(Schema::new(fields.collect::<Vec<_>>())), columns)
}

/// `batch`, read from a file of `partition` of a table of `table` partitioned by `keys`, as
/// `target` (some or all of the table's columns, by name): the columns the file does not hold
/// are filled from the partition's values (identity keys, as this layout writes them). A file
/// that holds them (written before it) is taken as it is.
pub fn restore_path_columns(
    batch: &RecordBatch,
    target: &SchemaRef,
    (table, keys): (&SchemaRef, &[PartitionKey]),
    partition: &Partition,
) -> Result<RecordBatch, ArrowError> {
    let rows = batch.num_rows();
    let columns = target
        .fields()
        .iter()
        .map(|field| {
            if let Ok(found) = batch.schema().index_of(field.name()) {
                return Ok(batch.column(found).clone());
            }
            let value = keys
                .iter()
                .zip(&partition.values)
                .find(|(key, _)| {
                    key.transform == PartitionTransform::Identity
                        && table.fields().get(key.column).map(|f| f.name()) == Some(field.name())
                })
                .map(|(_, value)| value.as_deref())
                .ok_or_else(|| {
                    ArrowError::SchemaError(format!(
                        "column {} is neither in the file nor a partition key",
                        field.name()
                    ))
                })?;
            constant(field.data_type(), value, rows).map_err(|reason| {
                ArrowError::ParseError(format!(
                    "partition {}: {} = {value:?}: {reason}",
                    partition.path,
                    field.name()
                ))
            })
        })
        .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
    RecordBatch::try_new(target.clone(), columns)
}

/// `rows` copies of the partition value `value` (None: NULL) as an array of `data_type`.
fn constant(data_type: &DataType, value: Option<&str>, rows: usize) -> Result<ArrayRef, String> {
    fn parse<T: std::str::FromStr>(value: Option<&str>) -> Result<Option<T>, String> {
        value
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| format!("not a {}", std::any::type_name::<T>()))
            })
            .transpose()
    }
    Ok(match data_type {
        DataType::Boolean => {
            let value = match value {
                None => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                // Written before booleans were `true`/`false`.
                Some("1") => Some(true),
                Some("0") => Some(false),
                Some(_) => return Err("not a boolean".into()),
            };
            Arc::new(BooleanArray::from(vec![value; rows]))
        }
        DataType::Int16 => Arc::new(Int16Array::from(vec![parse::<i16>(value)?; rows])),
        DataType::Int32 => Arc::new(Int32Array::from(vec![parse::<i32>(value)?; rows])),
        DataType::Int64 => Arc::new(Int64Array::from(vec![parse::<i64>(value)?; rows])),
        DataType::Utf8 => Arc::new(arrow_array::StringArray::from(vec![value; rows])),
        other => {
            return Err(format!(
                "an identity partition key cannot be of type {other}"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_schema::Field;

    const KEYS: [PartitionKey; 2] = [
        PartitionKey {
            name: "express",
            column: 1,
            transform: PartitionTransform::Identity,
        },
        PartitionKey {
            name: "placed_at_day",
            column: 2,
            transform: PartitionTransform::Day,
        },
    ];

    #[test]
    fn identity_columns_live_in_the_path_and_come_back_from_it() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("express", DataType::Boolean, true),
            Field::new("placed_at", DataType::Date32, true),
        ]));
        let (files, columns) = file_schema(&schema, &KEYS);
        assert_eq!(columns, [0, 2], "the derived key's source column stays");
        let batch = RecordBatch::try_new(
            files,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(arrow_array::Date32Array::from(vec![0, 1])),
            ],
        )
        .unwrap();
        let partition = Partition {
            path: "express=true/placed_at_day=1970-01-01".into(),
            values: vec![Some("true".into()), Some("1970-01-01".into())],
        };
        let table = (&schema, &KEYS[..]);
        let full = restore_path_columns(&batch, &schema, table, &partition).unwrap();
        assert_eq!(full.schema(), schema);
        let express = full.column(1).as_boolean();
        assert!(express.value(0) && express.value(1));
        // A file that still holds the column is read as it is.
        assert_eq!(
            restore_path_columns(&full, &schema, table, &partition).unwrap(),
            full
        );
        let null = Partition {
            path: "express=__HIVE_DEFAULT_PARTITION__/placed_at_day=1970-01-01".into(),
            values: vec![None, Some("1970-01-01".into())],
        };
        let restored = restore_path_columns(&batch, &schema, table, &null).unwrap();
        assert_eq!(restored.column(1).null_count(), 2);
        let wrong = Partition {
            values: vec![Some("maybe".into()), None],
            ..partition
        };
        let error = restore_path_columns(&batch, &schema, table, &wrong).unwrap_err();
        assert!(
            error.to_string().contains("express = Some(\"maybe\")"),
            "{error}"
        );
    }
}
