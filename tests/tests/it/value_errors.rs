//! A value the target cannot hold exactly fails the export with table, column, key and value,
//! and nothing is published. Nothing is rounded, truncated or turned into NULL.

use crate::common;

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};
use etl_runtime::EtlTable;

const SCHEMA: &str = r#"
-- Unconstrained, as gen sizes them from the data: later data can outgrow the model's choice.
CREATE TABLE amounts (id integer PRIMARY KEY, amount numeric, fine numeric);
INSERT INTO amounts VALUES (1, 1.50, 1.5), (2, 123456.78, 2.25), (3, NULL, NULL);
CREATE TABLE nan_amounts (id integer PRIMARY KEY, amount numeric);
INSERT INTO nan_amounts VALUES (1, 1), (7, 'NaN');
CREATE TABLE events (id integer PRIMARY KEY, at timestamp, day date);
INSERT INTO events VALUES (1, '2020-01-01', '2020-01-01'), (2, 'infinity', '-infinity'), (3, '-infinity', 'infinity');
CREATE TABLE nullable_now (id integer PRIMARY KEY, label text);
INSERT INTO nullable_now VALUES (1, 'a'), (9, NULL);
"#;

/// The model says numeric(5,2); the column holds 123456.78.
#[derive(Debug, EtlTable)]
#[etl(table = "amounts", primary_key(id))]
pub struct NarrowAmount {
    pub id: i32,
    #[etl(sql_type = "numeric(5,2)")]
    pub amount: Option<BigDecimal>,
}

/// Each model generates its table's `table!` module, so two models of one table live in
/// modules of their own.
mod coarse {
    use super::*;

    /// The model says scale 1; the column holds 2.25 in `fine`.
    #[derive(Debug, EtlTable)]
    #[etl(table = "amounts", primary_key(id))]
    pub struct CoarseAmount {
        pub id: i32,
        #[etl(sql_type = "numeric(12,1)")]
        pub fine: Option<BigDecimal>,
    }
}
use coarse::CoarseAmount;

#[derive(Debug, EtlTable)]
#[etl(table = "nan_amounts", primary_key(id))]
pub struct NanAmount {
    pub id: i32,
    #[etl(sql_type = "numeric(10,2)")]
    pub amount: Option<BigDecimal>,
}

#[derive(Debug, EtlTable)]
#[etl(table = "events", primary_key(id))]
pub struct Event {
    pub id: i32,
    pub at: Option<NaiveDateTime>,
}

mod infinity_as_null {
    use super::*;

    #[derive(Debug, EtlTable)]
    #[etl(table = "events", primary_key(id))]
    pub struct EventInfinityAsNull {
        pub id: i32,
        #[etl(infinity = "null")]
        pub at: Option<NaiveDateTime>,
        #[etl(infinity = "null")]
        pub day: Option<NaiveDate>,
    }
}
use infinity_as_null::EventInfinityAsNull;

/// The model was generated when `label` was NOT NULL.
#[derive(Debug, EtlTable)]
#[etl(table = "nullable_now", primary_key(id))]
pub struct StaleNotNull {
    pub id: i32,
    pub label: String,
}

async fn export_error<T: EtlTable>(label: &str) -> String {
    let db = common::database(label, SCHEMA);
    let dir = common::out_dir(&db.name);
    let error = common::export::<T>(&db, &dir)
        .await
        .expect_err("the export must fail");
    let table_dir = dir.join(T::INFO.name);
    assert!(!table_dir.exists(), "nothing is published after a failure");
    let text = etl_runtime::error::report(&error);
    eprintln!("{text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn decimal_overflow_names_table_column_key_and_value() {
    let message = export_error::<NarrowAmount>("overflow").await;
    for part in [
        "amounts",
        "column amount",
        "id=2",
        "123456.78",
        "DECIMAL(5,2)",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn extra_decimal_places_are_an_error_not_rounding() {
    let message = export_error::<CoarseAmount>("scale").await;
    for part in ["amounts", "column fine", "id=2", "2.25", "rounded"] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nan_into_a_decimal_is_an_error() {
    let message = export_error::<NanAmount>("nan").await;
    for part in ["nan_amounts", "column amount", "id=7", "NaN"] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn infinity_into_a_timestamp_is_an_error() {
    let message = export_error::<Event>("infinity").await;
    for part in [
        "events",
        "column at",
        "id=2",
        "infinity",
        "infinity = \"null\"",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_that_became_nullable_is_refused_before_export() {
    let message = export_error::<StaleNotNull>("stale").await;
    for part in [
        "nullable_now",
        "column label",
        "accepts NULL",
        "cargo xtask gen",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn infinity_opt_in_writes_null() {
    let db = common::database("infinity_null", SCHEMA);
    let dir = common::out_dir(&db.name);
    let report = common::export::<EventInfinityAsNull>(&db, &dir)
        .await
        .expect("export");
    assert_eq!(report.rows, 3);
    let python = etl_tests::python().expect("python");
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]).sort_by('id'); \
             print(t.column('at').to_pylist()); print(t.column('day').to_pylist())",
        ])
        .arg(dir.join("events"))
        .output()
        .expect("pyarrow");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.trim(),
        "[datetime.datetime(2020, 1, 1, 0, 0), None, None]\n[datetime.date(2020, 1, 1), None, None]",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
