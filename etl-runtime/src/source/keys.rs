//! A table's primary key, read on the run's snapshot in an order this tool can check: what
//! delete detection walks beside the previous run's key file.
//!
//! PostgreSQL sorts (`ORDER BY` the key, through the primary key's index when it can) and the
//! client only compares neighbours. The comparison here must agree with PostgreSQL's order, so
//! it is defined only for key types whose order is their bytes': integers, dates and
//! timestamps (signed big-endian), booleans, uuids and bytea (bytewise), and text compared
//! under the `C` collation (bytewise; `ORDER BY ... COLLATE "C"`). Both lists are checked to
//! be strictly ascending as they are read, so a disagreement is an error, never a row wrongly
//! taken for deleted.
//!
//! A key with a masked column is the exception: the key file holds its hash, which the server
//! never sees, so this client sorts those keys itself (`run::key_sort`), bytewise.

use std::cmp::Ordering;

use crate::codec::{Scalar, ValueError, render_key_value, take_field, tuple_fields};
use crate::error::{Error, Result};
use crate::model::{TableInfo, quote_ident};
use etl_types::VersionKeyOrder;

/// How a table's key columns are read and compared.
#[derive(Debug, Clone)]
pub struct KeyOrder {
    columns: Vec<KeyColumn>,
    /// A key column is masked: the keys are read unsorted and sorted here, by their hashes.
    client_sorted: bool,
}

/// A key column: its index in the model's columns, name, wire type, and order (the type
/// table's rule, `etl_types::version_key_order`, which the derive and `gen` apply too).
#[derive(Debug, Clone, Copy)]
struct KeyColumn {
    index: usize,
    name: &'static str,
    wire: Scalar,
    order: VersionKeyOrder,
}

impl KeyColumn {
    fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        match self.order {
            VersionKeyOrder::SignedBigEndian => signed_big_endian(a, b),
            VersionKeyOrder::Bytes | VersionKeyOrder::BytesCollateC => a.cmp(b),
        }
    }
}

/// Two's-complement big-endian integers of one width: the sign bit flipped, then bytewise.
fn signed_big_endian(a: &[u8], b: &[u8]) -> Ordering {
    match (a.split_first(), b.split_first()) {
        (Some((a0, a_rest)), Some((b0, b_rest))) => {
            (a0 ^ 0x80, a.len(), a_rest).cmp(&(b0 ^ 0x80, b.len(), b_rest))
        }
        _ => a.len().cmp(&b.len()),
    }
}

impl KeyOrder {
    /// The key of `info`, or why its deleted rows cannot be found: no primary key, or a key
    /// column of a type whose order this tool does not share with PostgreSQL.
    pub fn new(info: &TableInfo) -> Result<Self> {
        if info.primary_key.is_empty() {
            return Err(Error::NoKeyForDeletes {
                reason: format!(
                    "{} has no primary key in its model; a table with a cursor needs one \
                     (or a unique NOT NULL index declared as `primary_key(...)`)",
                    info.display_name()
                ),
            });
        }
        let mut columns = Vec::new();
        for key in info.primary_key {
            let Some(index) = info.columns.iter().position(|c| c.name == *key) else {
                return Err(Error::NoKeyForDeletes {
                    reason: format!("the key column {key} is not among the model's columns"),
                });
            };
            let column = &info.columns[index];
            let order = match column.mask {
                // Its hash: text of hex digits, compared bytewise where it is sorted, here.
                Some(_) => VersionKeyOrder::Bytes,
                None => etl_types::version_key_order(column.wire).map_err(|why| {
                    Error::NoKeyForDeletes {
                        reason: format!("the key column {key} ({}): {why}", column.sql_type),
                    }
                })?,
            };
            columns.push(KeyColumn {
                index,
                name: column.name,
                wire: column.wire,
                order,
            });
        }
        let client_sorted = info.primary_key.iter().any(|key| {
            info.columns
                .iter()
                .any(|c| c.name == *key && c.mask.is_some())
        });
        Ok(Self {
            columns,
            client_sorted,
        })
    }

    /// Whether PostgreSQL cannot sort these keys as the key file holds them (a masked key
    /// column): [`copy_sql`](Self::copy_sql) then reads them unsorted, for the client to sort.
    pub fn client_sorted(&self) -> bool {
        self.client_sorted
    }

    /// The model's columns of the key, in key order.
    pub fn key_columns<'a>(
        &'a self,
        info: &'a TableInfo,
    ) -> impl Iterator<Item = &'a crate::model::ColumnInfo> + 'a {
        self.columns.iter().map(move |c| &info.columns[c.index])
    }

    /// `COPY (SELECT <key> FROM <table> ORDER BY <key>) TO STDOUT (FORMAT binary)`.
    pub fn copy_sql(&self, info: &TableInfo) -> String {
        let mut select = Vec::new();
        let mut order = Vec::new();
        for column in &self.columns {
            let expr = info.columns[column.index].select;
            select.push(format!("{expr} AS {}", quote_ident(column.name)));
            order.push(match column.order {
                VersionKeyOrder::BytesCollateC => format!("({expr}) COLLATE \"C\""),
                _ => expr.to_string(),
            });
        }
        if self.client_sorted {
            return format!(
                "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
                select.join(", "),
                info.qualified_sql(),
            );
        }
        format!(
            "COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT (FORMAT binary)",
            select.join(", "),
            info.qualified_sql(),
            order.join(", ")
        )
    }

    /// Per key column, its index in the model's columns and wire type.
    pub fn columns(&self) -> impl Iterator<Item = (usize, Scalar)> + '_ {
        self.columns.iter().map(|c| (c.index, c.wire))
    }

    /// The values of a key tuple, column by column.
    pub fn values<'a>(&self, tuple: &'a [u8]) -> Result<Vec<&'a [u8]>, ValueError> {
        let mut rest = tuple_fields(tuple, self.columns.len())?;
        let mut values = Vec::with_capacity(self.columns.len());
        for &KeyColumn { name, .. } in &self.columns {
            match take_field(&mut rest)? {
                Some(value) => values.push(value),
                None => {
                    return Err(ValueError::Wire(format!("the key column {name} is NULL")));
                }
            }
        }
        Ok(values)
    }

    /// Compares two key tuples.
    pub fn compare(&self, a: &[u8], b: &[u8]) -> Result<Ordering, ValueError> {
        let count = self.columns.len();
        let (mut a, mut b) = (tuple_fields(a, count)?, tuple_fields(b, count)?);
        for column in &self.columns {
            let null = || ValueError::Wire(format!("the key column {} is NULL", column.name));
            let x = take_field(&mut a)?.ok_or_else(null)?;
            let y = take_field(&mut b)?.ok_or_else(null)?;
            match column.compare(x, y) {
                Ordering::Equal => {}
                other => return Ok(other),
            }
        }
        Ok(Ordering::Equal)
    }

    /// A key for messages: `id=42, region="eu"`.
    pub fn render(&self, tuple: &[u8]) -> String {
        match self.values(tuple) {
            Ok(values) => self
                .columns
                .iter()
                .zip(values)
                .map(|(column, value)| {
                    format!("{}={}", column.name, render_key_value(column.wire, value))
                })
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("(unreadable key: {e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(fields: &[&[u8]]) -> Vec<u8> {
        let mut out = (fields.len() as i16).to_be_bytes().to_vec();
        for field in fields {
            out.extend((field.len() as i32).to_be_bytes());
            out.extend(*field);
        }
        out
    }

    #[test]
    fn integers_compare_by_value_and_text_by_bytes() {
        let column = |index, name, wire| KeyColumn {
            index,
            name,
            wire,
            order: etl_types::version_key_order(wire).expect("a key type"),
        };
        let order = KeyOrder {
            columns: vec![
                column(0, "id", Scalar::Int8),
                column(1, "name", Scalar::Text),
            ],
            client_sorted: false,
        };
        let key = |id: i64, name: &str| tuple(&[&id.to_be_bytes(), name.as_bytes()]);
        let mut keys = [
            key(5, "b"),
            key(-3, "z"),
            key(5, "a"),
            key(i64::MIN, ""),
            key(0, "é"),
            key(0, "e"),
            key(i64::MAX, "a"),
        ];
        keys.sort_by(|a, b| order.compare(a, b).expect("compares"));
        let rendered: Vec<String> = keys.iter().map(|k| order.render(k)).collect();
        assert_eq!(
            rendered,
            [
                "id=-9223372036854775808, name=\"\"",
                "id=-3, name=\"z\"",
                "id=0, name=\"e\"",
                "id=0, name=\"é\"",
                "id=5, name=\"a\"",
                "id=5, name=\"b\"",
                "id=9223372036854775807, name=\"a\"",
            ]
        );
    }
}
