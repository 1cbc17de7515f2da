//! date, time, timestamp, timestamptz -> DATE, TIME(MICROS), TIMESTAMP(MICROS) without and with
//! isAdjustedToUTC. PostgreSQL counts from 2000-01-01, Arrow from 1970-01-01; `±infinity` has
//! no Parquet representation and is a [`ValueError::Infinite`] (or NULL, when the model opts in).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{Date32Builder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder};
use arrow_schema::{DataType, Field, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

use super::{
    ColumnEncoder, Encode, FromWire, JsonElement, ValueError, primitive_encoder, wire_primitive,
};

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

primitive_encoder!(
    /// date -> INT32 / DATE
    DateEncoder, Date32Builder, NaiveDate, DataType::Date32, |v| days_since_unix_epoch(*v));
primitive_encoder!(
    /// time -> INT64 / TIME(MICROS)
    TimeEncoder, Time64MicrosecondBuilder, NaiveTime, DataType::Time64(TimeUnit::Microsecond),
    |v| time_micros(*v));
primitive_encoder!(
    /// timestamp -> INT64 / TIMESTAMP(MICROS, isAdjustedToUTC=false)
    TimestampEncoder, TimestampMicrosecondBuilder, NaiveDateTime,
    DataType::Timestamp(TimeUnit::Microsecond, None), |v| v.and_utc().timestamp_micros());

wire_primitive!(DateEncoder => |b| date_days(b)?);
wire_primitive!(TimeEncoder => |b| i64::from_be_bytes(super::fixed(b)?));
wire_primitive!(TimestampEncoder => |b| timestamp_micros(b)?);

/// timestamptz -> INT64 / TIMESTAMP(MICROS, isAdjustedToUTC=true)
pub struct TimestamptzEncoder(TimestampMicrosecondBuilder);

impl TimestamptzEncoder {
    pub fn new(capacity: usize) -> Self {
        Self(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"))
    }
}

impl ColumnEncoder for TimestamptzEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            nullable,
        )
    }
    fn push_null(&mut self) {
        self.0.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}

impl Encode<DateTime<Utc>> for TimestamptzEncoder {
    #[inline]
    fn push(&mut self, v: &DateTime<Utc>) -> Result<(), ValueError> {
        self.0.append_value(v.timestamp_micros());
        Ok(())
    }
}

wire_primitive!(TimestamptzEncoder => |b| timestamp_micros(b)?);

fn days_since_unix_epoch(date: NaiveDate) -> i32 {
    // NaiveDate's range (±262143 years) in days fits an i32.
    (date - NaiveDate::default()).num_days() as i32
}

fn time_micros(time: NaiveTime) -> i64 {
    i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1_000)
}

/// Days since 1970-01-01, or the `±infinity` error.
pub(super) fn date_days(bytes: &[u8]) -> Result<i32, ValueError> {
    match i32::from_be_bytes(super::fixed(bytes)?) {
        i32::MAX => Err(ValueError::Infinite("infinity")),
        i32::MIN => Err(ValueError::Infinite("-infinity")),
        days => days
            .checked_add(EPOCH_DAYS)
            .ok_or_else(|| ValueError::Wire(format!("date {days} out of range"))),
    }
}

/// Microseconds since 1970-01-01, or the `±infinity` error.
pub(super) fn timestamp_micros(bytes: &[u8]) -> Result<i64, ValueError> {
    match i64::from_be_bytes(super::fixed(bytes)?) {
        i64::MAX => Err(ValueError::Infinite("infinity")),
        i64::MIN => Err(ValueError::Infinite("-infinity")),
        micros => micros
            .checked_add(EPOCH_MICROS)
            .ok_or_else(|| ValueError::Wire(format!("timestamp {micros} out of range"))),
    }
}

impl FromWire for NaiveDate {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let days = date_days(bytes)?;
        DateTime::from_timestamp(i64::from(days) * 86_400, 0)
            .map(|t| t.date_naive())
            .ok_or_else(|| ValueError::Wire(format!("date {days} out of chrono's range")))
    }
}

impl FromWire for NaiveDateTime {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        DateTime::<Utc>::from_wire(bytes).map(|t| t.naive_utc())
    }
}

impl FromWire for DateTime<Utc> {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let micros = timestamp_micros(bytes)?;
        DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| ValueError::Wire(format!("timestamp {micros} out of chrono's range")))
    }
}

impl FromWire for NaiveTime {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        let micros = i64::from_be_bytes(super::fixed(bytes)?);
        let secs = u32::try_from(micros.div_euclid(1_000_000))
            .map_err(|_| ValueError::Wire(format!("time {micros} out of range")))?;
        let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
        NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
            .ok_or_else(|| ValueError::Wire(format!("time {micros} out of range")))
    }
}

impl JsonElement for NaiveDate {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        write_json_date(out, days_since_unix_epoch(*self))
    }
}

impl JsonElement for NaiveDateTime {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        write_json_timestamp(out, self.and_utc().timestamp_micros(), false)
    }
}

impl JsonElement for DateTime<Utc> {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        write_json_timestamp(out, self.timestamp_micros(), true)
    }
}

impl JsonElement for NaiveTime {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        write_json_time(out, time_micros(*self))
    }
}

/// `"2024-02-29"`, for every date PostgreSQL holds.
pub(super) fn write_json_date(out: &mut String, days: i32) -> Result<(), ValueError> {
    out.push('"');
    write_iso_date(out, i64::from(days));
    out.push('"');
    Ok(())
}

/// A day as ISO 8601 (`2024-02-29`): years outside 0-9999 with their sign (`+10000-01-01`,
/// `-0043-03-15`, astronomical numbering), as ISO 8601's expanded years and chrono write them.
fn write_iso_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    let _ = match year {
        0..=9999 => write!(out, "{year:04}-{month:02}-{day:02}"),
        10_000.. => write!(out, "+{year}-{month:02}-{day:02}"),
        _ => write!(out, "-{:04}-{month:02}-{day:02}", year.unsigned_abs()),
    };
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 in the proleptic Gregorian
/// calendar, for every day PostgreSQL can hold (4713 BC to 5874897 AD; chrono stops at
/// 262143): the one calendar of this crate, for Hive partition names and JSON text alike.
/// Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

/// `"2024-02-29T12:00:00.5"`, with `+00:00` for timestamptz (sessions run in UTC).
pub(super) fn write_json_timestamp(
    out: &mut String,
    micros: i64,
    utc: bool,
) -> Result<(), ValueError> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    out.push('"');
    write_iso_date(out, micros.div_euclid(MICROS_PER_DAY));
    let seconds = micros.rem_euclid(MICROS_PER_DAY) / 1_000_000;
    let _ = write!(
        out,
        "T{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    write_fraction(out, micros.rem_euclid(1_000_000));
    if utc {
        out.push_str("+00:00");
    }
    out.push('"');
    Ok(())
}

/// `"12:00:00.5"`; `24:00:00`, which PostgreSQL allows, included.
pub(super) fn write_json_time(out: &mut String, micros: i64) -> Result<(), ValueError> {
    if !(0..=86_400_000_000).contains(&micros) {
        return Err(ValueError::Wire(format!("time {micros} out of range")));
    }
    let secs = micros / 1_000_000;
    let _ = write!(
        out,
        "\"{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    write_fraction(out, micros % 1_000_000);
    out.push('"');
    Ok(())
}

/// `.5`, `.000001`: PostgreSQL's fraction of a second, without trailing zeros.
fn write_fraction(out: &mut String, micros: i64) {
    if micros != 0 {
        let text = format!(".{micros:06}");
        out.push_str(text.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_date(days: i64) -> String {
        let mut out = String::new();
        write_iso_date(&mut out, days);
        out
    }

    fn json_timestamp(micros: i64) -> String {
        let mut out = String::new();
        write_json_timestamp(&mut out, micros, false).expect("any timestamp");
        out
    }

    #[test]
    fn json_dates_and_timestamps_match_chrono_and_go_past_its_range() {
        // Where chrono reaches, the one calendar writes what chrono wrote.
        for days in (-2_500_000_i64..2_500_000).step_by(997) {
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(days as i32 + 719_163)
                .expect("in chrono's range");
            assert_eq!(
                json_date(days),
                date.format("%Y-%m-%d").to_string(),
                "{days}"
            );
            let micros = days * 86_400_000_000 + 45_296_789_000;
            let at = DateTime::from_timestamp_micros(micros).expect("in range");
            assert_eq!(
                json_timestamp(micros),
                format!("\"{}.789\"", at.format("%Y-%m-%dT%H:%M:%S")),
                "{micros}"
            );
        }
        // PostgreSQL's last date, and the last timestamp that has microseconds since 1970 in
        // an i64 (Parquet's TIMESTAMP), both past chrono's year 262143.
        assert_eq!(json_date(2_145_042_905), "+5874897-12-31");
        assert_eq!(
            json_timestamp(i64::MAX),
            "\"+294247-01-10T04:00:54.775807\""
        );
        assert_eq!(json_date(-719_528), "0000-01-01");
        assert_eq!(json_date(-719_528 - 365), "-0001-01-01");
        assert_eq!(json_date(19_782), "2024-02-29");
    }
}
