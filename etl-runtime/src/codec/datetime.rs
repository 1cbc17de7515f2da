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

/// `"2024-02-29"`
pub(super) fn write_json_date(out: &mut String, days: i32) -> Result<(), ValueError> {
    let date = DateTime::from_timestamp(i64::from(days) * 86_400, 0)
        .ok_or_else(|| ValueError::Wire(format!("date {days} out of range")))?;
    let _ = write!(out, "\"{}\"", date.format("%Y-%m-%d"));
    Ok(())
}

/// `"2024-02-29T12:00:00.5"`, with `+00:00` for timestamptz (sessions run in UTC).
pub(super) fn write_json_timestamp(
    out: &mut String,
    micros: i64,
    utc: bool,
) -> Result<(), ValueError> {
    let t = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| ValueError::Wire(format!("timestamp {micros} out of range")))?;
    let _ = write!(out, "\"{}", t.format("%Y-%m-%dT%H:%M:%S"));
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
