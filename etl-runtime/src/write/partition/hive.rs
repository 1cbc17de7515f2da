//! Hive's naming of partition values: the NULL partition, date buckets rendered as Hive and
//! Athena write them (a civil calendar that reaches PostgreSQL's last day), and escaping.

use super::*;

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

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 in the proleptic Gregorian
/// calendar, for every day PostgreSQL can hold (4713 BC to 5874897 AD; chrono stops at
/// 262143, and two days rendered alike would be two partitions in one directory). Howard
/// Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
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
