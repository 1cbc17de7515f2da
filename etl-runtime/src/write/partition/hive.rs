//! Hive's naming of partition values: the NULL partition, date buckets rendered as Hive and
//! Athena write them (a civil calendar that reaches PostgreSQL's last day), and escaping.

use super::*;
use crate::codec::civil_from_days;

/// Hive's name for the partition of NULL (and empty text) keys; Athena, Spark, pyarrow and
/// DuckDB read it back as NULL.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One value of a partition key, as rendered and ordered once per partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum KeyValue {
    Null,
    /// Written `false`/`true`, as Hive, Spark and Athena write and read a boolean.
    Bool(bool),
    /// An integer, or a date bucket: a year, months or days since 1970.
    Number(i64),
    Text(String),
}

/// Days since 1970-01-01 into the key's bucket: a year, months since year 0, or the day.
pub(crate) fn bucket(days: i64, transform: PartitionTransform) -> i64 {
    match transform {
        PartitionTransform::Day | PartitionTransform::Identity => days,
        PartitionTransform::Year => civil_from_days(days).0,
        PartitionTransform::Month => {
            let (year, month, _) = civil_from_days(days);
            year * 12 + i64::from(month) - 1
        }
    }
}

/// A key value as its partition directory shows it, before escaping (None: NULL).
pub(crate) fn render(value: &KeyValue, transform: PartitionTransform) -> Option<String> {
    match (value, transform) {
        (KeyValue::Null, _) => None,
        (KeyValue::Text(text), _) => Some(text.clone()),
        (KeyValue::Bool(value), _) => Some(value.to_string()),
        (KeyValue::Number(n), PartitionTransform::Identity) => Some(n.to_string()),
        (KeyValue::Number(year), PartitionTransform::Year) => Some(format!("{year:04}")),
        (KeyValue::Number(months), PartitionTransform::Month) => Some(format!(
            "{:04}-{:02}",
            months.div_euclid(12),
            months.rem_euclid(12) + 1
        )),
        (KeyValue::Number(days), PartitionTransform::Day) => {
            let (year, month, day) = civil_from_days(*days);
            Some(format!("{year:04}-{month:02}-{day:02}"))
        }
    }
}

/// The order of partitions listed by their rendered values (a manifest's, a shard's outcome):
/// the order of their keys' values, as a run orders the partitions it writes ([`KeyValue`]'s
/// order: NULL first, integers and dates as numbers, text bytewise), not their paths' text,
/// where `id=10` would come before `id=9`.
pub(crate) fn partition_order(
    values: &[Option<String>],
    keys: &[PartitionKey],
    schema: &Schema,
) -> Vec<KeyValue> {
    keys.iter()
        .zip(values)
        .map(|(key, value)| {
            let Some(text) = value else {
                return KeyValue::Null;
            };
            let data_type = schema.fields().get(key.column).map(|f| f.data_type());
            match (key.transform, data_type) {
                (PartitionTransform::Identity, Some(DataType::Boolean)) => {
                    KeyValue::Bool(text == "true")
                }
                (
                    PartitionTransform::Identity,
                    Some(DataType::Int16 | DataType::Int32 | DataType::Int64),
                ) => text
                    .parse()
                    .map_or_else(|_| KeyValue::Text(text.clone()), KeyValue::Number),
                (PartitionTransform::Identity, _) => KeyValue::Text(text.clone()),
                // A date rendered `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (a year may have a sign
                // and more digits): its fields in order, as one number that sorts the same.
                _ => {
                    let (sign, unsigned) = match text.strip_prefix('-') {
                        Some(rest) => (-1, rest),
                        None => (1, text.trim_start_matches('+')),
                    };
                    let mut fields = unsigned.split('-').map(|f| f.parse::<i64>().unwrap_or(0));
                    let year = sign * fields.next().unwrap_or(0);
                    let month = fields.next().unwrap_or(0);
                    let day = fields.next().unwrap_or(0);
                    KeyValue::Number((year * 13 + month) * 32 + day)
                }
            }
        })
        .collect()
}

/// Escapes a partition value as Hive does (`FileUtils.escapePathName`): control characters and
/// `"#%'*/:=?\{[]^` and DEL become `%XX`.
pub fn hive_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        let special = matches!(
            c,
            '\u{01}'
                ..='\u{1F}'
                    | '"'
                    | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\u{7F}'
                    | '{'
                    | '['
                    | ']'
                    | '^'
        );
        if special {
            escaped.push_str(&format!("%{:02X}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    escaped
}
