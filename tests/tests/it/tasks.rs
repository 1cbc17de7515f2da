//! Task failures: an error inside a transform names the task, the source row's key and the
//! cause, and publishes nothing; a task that skips bad rows counts them instead.

use crate::common;

use diesel::prelude::*;
use etl_runtime::EtlTable;
use etl_runtime::run::export::ExportOptions;
use etl_runtime::run::task::{BadRows, TaskError, Transform, run_transform};
use etl_runtime::source::SourceOptions;
use etl_runtime::{LocalDirSink, PgSource};

const SCHEMA: &str = r#"
CREATE TABLE readings (id integer PRIMARY KEY, sensor text NOT NULL, value double precision NOT NULL);
CREATE TABLE sensors (name text PRIMARY KEY, scale double precision NOT NULL);
INSERT INTO sensors VALUES ('a', 2.0), ('b', 10.0);
INSERT INTO readings VALUES (1, 'a', 1.5), (2, 'b', 2.0), (3, 'a', -1.0), (4, 'c', 5.0), (5, 'b', -3.0);
"#;

#[derive(Debug, Clone, EtlTable)]
#[etl(table = "readings", primary_key(id))]
pub struct Reading {
    pub id: i32,
    pub sensor: String,
    pub value: f64,
}

mod sensors_table {
    use etl_runtime::EtlTable;

    #[derive(Debug, Clone, EtlTable)]
    #[etl(table = "sensors", primary_key(name))]
    pub struct Sensor {
        pub name: String,
        pub scale: f64,
    }
}
use sensors_table::{Sensor, sensors};

#[derive(Debug, Clone, EtlTable)]
#[etl(output, primary_key(id))]
pub struct Scaled {
    pub id: i32,
    pub scaled: f64,
}

fn scale(
    reading: &Reading,
    scales: &[(String, f64)],
    out: &mut Vec<Scaled>,
) -> Result<(), TaskError> {
    if reading.value < 0.0 {
        return Err(format!("negative reading {}", reading.value).into());
    }
    // Readings of unknown sensors are dropped: zero output rows for one source row.
    if let Some((_, factor)) = scales.iter().find(|(name, _)| *name == reading.sensor) {
        out.push(Scaled {
            id: reading.id,
            scaled: reading.value * factor,
        });
    }
    Ok(())
}

fn load_scales(conn: &mut PgConnection) -> Result<Vec<(String, f64)>, TaskError> {
    // The derive's Selectable: only the model's columns, typed.
    Ok(sensors::table
        .select(Sensor::as_select())
        .load::<Sensor>(conn)?
        .into_iter()
        .map(|s| (s.name, s.scale))
        .collect())
}

struct Strict;

impl Transform for Strict {
    const NAME: &'static str = "scaled_strict";
    type Source = Reading;
    type Lookups = Vec<(String, f64)>;
    type Output = Scaled;
    fn load(conn: &mut PgConnection) -> Result<Self::Lookups, TaskError> {
        load_scales(conn)
    }
    fn transform(row: &Reading, l: &Self::Lookups, out: &mut Vec<Scaled>) -> Result<(), TaskError> {
        scale(row, l, out)
    }
}

struct Lenient;

impl Transform for Lenient {
    const NAME: &'static str = "scaled_lenient";
    const BAD_ROWS: BadRows = BadRows::Skip;
    type Source = Reading;
    type Lookups = Vec<(String, f64)>;
    type Output = Scaled;
    fn load(conn: &mut PgConnection) -> Result<Self::Lookups, TaskError> {
        load_scales(conn)
    }
    fn transform(row: &Reading, l: &Self::Lookups, out: &mut Vec<Scaled>) -> Result<(), TaskError> {
        scale(row, l, out)
    }
}

async fn run<T: Transform>(
    db: &etl_tests::TestDb,
) -> (
    std::path::PathBuf,
    etl_runtime::Result<etl_runtime::TableReport>,
) {
    let dir = common::out_dir(&format!("{}-{}", db.name, T::NAME));
    let mut source = PgSource::connect(&db.url, &SourceOptions::default())
        .await
        .expect("connect");
    source.export_snapshot().await.expect("snapshot");
    let sink = LocalDirSink::new(&dir, "test").expect("sink");
    let result = run_transform::<T>(&source, &sink, &ExportOptions::default()).await;
    source.close().await;
    (dir, result)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_row_names_task_key_and_cause_and_publishes_nothing() {
    let db = common::database("task_fail", SCHEMA);
    let (dir, result) = run::<Strict>(&db).await;
    let error = result.expect_err("the task must fail");
    let message = etl_runtime::error::report(&error);
    for part in ["task scaled_strict", "source row id=", "negative reading"] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert!(
        !dir.join("scaled_strict").exists(),
        "a failed task published output"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_skips_bad_rows_counts_them() {
    let db = common::database("task_skip", SCHEMA);
    let (dir, result) = run::<Lenient>(&db).await;
    let report = result.expect("the task skips its bad rows");
    assert_eq!(report.skipped_rows, 2, "ids 3 and 5 are negative");
    assert_eq!(
        report.rows, 2,
        "id 4's sensor is unknown, so only ids 1 and 2 remain"
    );
    assert!(dir.join("scaled_lenient/part-00000.parquet").exists());
}
