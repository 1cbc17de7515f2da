//! Hive-style partitioning by data columns: `#[etl(partition_by = "region, created_at:month")]`,
//! read by the derive (checked at compile time), written by `cargo xtask gen --partition-by`,
//! and followed by the engine when it lays out a table's files.

use crate::{ColumnEncoding, Encoding, Shape};

/// How a partition key is derived from its column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionTransform {
    /// The column's own value: `status=shipped/` (text, integer and boolean columns).
    Identity,
    /// `created_at_year=2024/` (date, timestamp and timestamptz columns; timestamptz in UTC).
    Year,
    /// `created_at_month=2024-01/`.
    Month,
    /// `created_at_day=2024-01-31/`.
    Day,
}

/// One key of a model's partitioning, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSpec {
    /// The PostgreSQL column it is derived from.
    pub column: String,
    pub transform: PartitionTransform,
}

impl PartitionTransform {
    fn from_suffix(text: &str) -> Option<Self> {
        Some(match text {
            "year" => Self::Year,
            "month" => Self::Month,
            "day" => Self::Day,
            _ => return None,
        })
    }

    /// `day`, `month`, `year`, or none for identity.
    pub fn granularity(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Year => Some("year"),
            Self::Month => Some("month"),
            Self::Day => Some("day"),
        }
    }

    /// Whether a column written as `encoding` can be partitioned this way; the error says why
    /// not, for the user.
    pub fn check(self, encoding: &ColumnEncoding) -> Result<(), String> {
        if encoding.shape != Shape::Scalar {
            return Err("an array column cannot be a partition key".into());
        }
        let dated = matches!(
            encoding.element,
            Encoding::Date | Encoding::Timestamp | Encoding::Timestamptz
        );
        let identity = matches!(
            encoding.element,
            Encoding::Int16 | Encoding::Int32 | Encoding::Int64 | Encoding::Utf8 | Encoding::Bool
        );
        match self {
            Self::Identity if identity => Ok(()),
            Self::Identity if dated => Err(
                "a date or timestamp column is partitioned by `:year`, `:month` or `:day`".into(),
            ),
            Self::Identity => Err(
                "identity partitioning takes a text, integer or boolean column (a partition per \
                 distinct value)"
                    .into(),
            ),
            _ if dated => Ok(()),
            _ => Err(format!(
                "`:{}` applies to date, timestamp and timestamptz columns only",
                self.granularity().unwrap_or_default()
            )),
        }
    }
}

impl PartitionSpec {
    /// The partition column's name: the column itself for identity, `<column>_<granularity>`
    /// for a derived key (which is a partition column only, never a column of the files).
    pub fn key_name(&self) -> String {
        match self.transform.granularity() {
            None => self.column.clone(),
            Some(g) => format!("{}_{g}", self.column),
        }
    }
}

/// Reads `"region, created_at:month"`: keys in order, each a column name with an optional
/// `:year`, `:month` or `:day`.
pub fn parse_partition_by(text: &str) -> Result<Vec<PartitionSpec>, String> {
    let mut specs: Vec<PartitionSpec> = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!(
                "`{text}`: expected column names separated by commas, e.g. \"region, created_at:day\""
            ));
        }
        let (column, transform) = match part.split_once(':') {
            None => (part, PartitionTransform::Identity),
            Some((column, suffix)) => match PartitionTransform::from_suffix(suffix.trim()) {
                Some(t) => (column.trim(), t),
                None => {
                    return Err(format!(
                        "`{part}`: unknown granularity `{}`; expected `year`, `month` or `day`",
                        suffix.trim()
                    ));
                }
            },
        };
        let spec = PartitionSpec {
            column: column.to_string(),
            transform,
        };
        if specs.iter().any(|s| s.key_name() == spec.key_name()) {
            return Err(format!("`{part}` is named twice"));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The text of `partition_by` for `specs` (what `cargo xtask gen --partition-by` writes).
pub fn render_partition_by(specs: &[PartitionSpec]) -> String {
    specs
        .iter()
        .map(|s| match s.transform.granularity() {
            None => s.column.clone(),
            Some(g) => format!("{}:{g}", s.column),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_in_order_with_granularities() {
        let specs = parse_partition_by("region, created_at:month").expect("parses");
        assert_eq!(specs[0].key_name(), "region");
        assert_eq!(specs[1].key_name(), "created_at_month");
        assert_eq!(render_partition_by(&specs), "region, created_at:month");
        assert!(parse_partition_by("a:week").is_err());
        assert!(parse_partition_by("a,,b").is_err());
        assert!(parse_partition_by("a:day, a:day").is_err());
    }
}
