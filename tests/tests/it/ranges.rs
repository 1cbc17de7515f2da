//! One table read by several connections on block ranges of one snapshot: every row once,
//! whatever was committed meanwhile, however bloated the table; a partitioned table leaf by
//! leaf; servers without TID Range Scans on one stream, saying why.

use crate::common;

use std::sync::{Arc, Mutex};

use etl_runtime::run::export::ExportOptions;
use etl_runtime::run::progress::{Progress, ProgressObserver, TableProgress};
use etl_runtime::source::SourceOptions;
use etl_runtime::source::ranges::{ReadOptions, ReadParallelism, ReadRange};
use etl_runtime::{EtlTable, LocalDirSink, PgSource, TableReport};
use etl_tests::TestDb;

const SCHEMA: &str = r#"
CREATE TABLE readings (id bigint PRIMARY KEY, sensor text NOT NULL, value integer);
INSERT INTO readings SELECT i, 'sensor-' || (i % 37), i % 1000 FROM generate_series(1, 60000) i;
-- Large deleted regions: pages full of dead rows that no range may trip over.
DELETE FROM readings WHERE id BETWEEN 5001 AND 25000 OR id BETWEEN 40001 AND 45000;

CREATE TABLE events (id bigint NOT NULL, day date NOT NULL, label text,
    PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_later PARTITION OF events DEFAULT;
-- The same ids in every leaf: their ctids repeat across leaves too.
INSERT INTO events SELECT i, d, 'event ' || i
    FROM generate_series(1, 8000) i,
         (VALUES (date '2023-06-01'), (date '2024-06-01'), (date '2026-06-01')) AS days(d);
-- As autovacuum does: every table but a partitioned parent.
ANALYZE readings, events_2023, events_2024, events_later;
"#;

#[derive(Debug, EtlTable)]
#[etl(table = "readings", primary_key(id))]
pub struct Reading {
    pub id: i64,
    pub sensor: String,
    pub value: Option<i32>,
}

#[derive(Debug, EtlTable)]
#[etl(table = "events", primary_key(id, day))]
pub struct Event {
    pub id: i64,
    pub day: chrono::NaiveDate,
    pub label: Option<String>,
}

/// Ranges of 8 pages, `connections` connections (and the pool to hold them).
fn ranged(connections: usize) -> (SourceOptions, ExportOptions) {
    let source = SourceOptions {
        max_connections: connections as u32 + 1,
        ..SourceOptions::default()
    };
    let export = ExportOptions {
        chunk_rows: 500,
        read: ReadOptions {
            parallelism: ReadParallelism::Connections(connections),
            range_pages: 8,
            ..ReadOptions::default()
        },
        ..ExportOptions::default()
    };
    (source, export)
}

async fn export<T: EtlTable>(
    db: &TestDb,
    dir: &std::path::Path,
    (source_options, options): (SourceOptions, ExportOptions),
    meanwhile: &str,
) -> TableReport {
    let mut source = PgSource::connect(&db.url, &source_options)
        .await
        .expect("connect");
    source.export_snapshot().await.expect("snapshot");
    // Another session commits after the run's snapshot: no range may see it.
    if !meanwhile.is_empty() {
        etl_tests::postgres::psql(&db.url, meanwhile).expect("concurrent writes");
    }
    let sink = LocalDirSink::new(dir, "test").expect("sink");
    let report = etl_runtime::export_table::<T>(&source, &sink, &options)
        .await
        .expect("export");
    source.close().await;
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_read_every_row_once_on_the_run_snapshot() {
    let db = common::database("ranges", SCHEMA);
    let dir = common::out_dir(&db.name);
    // New rows, and new versions of old rows (written at the end of the table, past the
    // blocks the old versions are in), all committed after the snapshot.
    let meanwhile = "INSERT INTO readings SELECT i, 'late', 0 FROM generate_series(60001, 61000) i; \
                     UPDATE readings SET value = value + 5000 WHERE id % 10 = 0";
    let report = export::<Reading>(&db, &dir, ranged(3), meanwhile).await;
    assert_eq!(report.read.connections, 3, "{:?}", report.read);
    assert!(report.read.ranges > 10, "{:?}", report.read);
    assert_eq!(report.read.single_stream_reason, None);
    assert_eq!(report.rows, 35_000, "rows lost, doubled or leaked in");
    // Undo the writes so that PostgreSQL holds what the snapshot saw, then compare value for
    // value (a doubled or missing id fails the comparison too).
    etl_tests::postgres::psql(
        &db.url,
        "DELETE FROM readings WHERE id > 60000; \
         UPDATE readings SET value = value - 5000 WHERE id % 10 = 0",
    )
    .expect("undo");
    common::assert_readers_agree(&db, &dir, &["readings"]);
}

/// Remembers the estimate each table's read started with.
#[derive(Default)]
struct Estimates(Mutex<Vec<(String, Option<u64>)>>);

impl Progress for Estimates {
    fn table_started(&self, table: &str, estimated_rows: Option<u64>) -> Box<dyn TableProgress> {
        if let Ok(mut estimates) = self.0.lock() {
            estimates.push((table.to_string(), estimated_rows));
        }
        Box::new(NoBar)
    }
}

struct NoBar;

impl TableProgress for NoBar {
    fn rows_read(&self, _: u64) {}
    fn finished(&self, _: u64) {}
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_table_is_read_leaf_by_leaf() {
    let db = common::database("ranges_leaves", SCHEMA);
    let dir = common::out_dir(&db.name);
    let estimates = Arc::new(Estimates::default());
    let (source, mut options) = ranged(2);
    options.progress = ProgressObserver::new(estimates.clone());
    let report = export::<Event>(&db, &dir, (source, options), "").await;
    // The progress bar's length: the leaves' rows together (the parent, never analyzed,
    // has no estimate of its own).
    assert_eq!(
        *estimates.0.lock().expect("estimates"),
        [("events".to_string(), Some(24_000))]
    );
    assert_eq!(report.read.connections, 2, "{:?}", report.read);
    // At least one range per leaf: the parent has no blocks of its own.
    assert!(report.read.ranges >= 3, "{:?}", report.read);
    assert_eq!(report.rows, 24_000, "a leaf was skipped or read twice");
    // The parent has no statistics of its own: its leaves' say that `id` is mostly distinct
    // (written delta-encoded) and `day` is not (one value per leaf: a dictionary).
    let encodings = common::column_encodings(&dir.join("events"));
    let has = |column: &str, encoding: &str| {
        encodings[column]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e == encoding))
    };
    assert!(
        has("id", "DELTA_BINARY_PACKED") && !has("id", "RLE_DICTIONARY"),
        "{encodings}"
    );
    assert!(has("day", "RLE_DICTIONARY"), "{encodings}");
    common::assert_readers_agree(&db, &dir, &["events"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_tid_range_scans_is_read_on_one_stream_and_says_why() {
    let db = common::database("ranges_pg13", SCHEMA);
    let dir = common::out_dir(&db.name);
    let (source, mut options) = ranged(2);
    options.read.assume_server_version = Some(130_015);
    let report = export::<Reading>(&db, &dir, (source, options), "").await;
    assert_eq!(report.read.connections, 1);
    assert_eq!(report.read.ranges, 1);
    let reason = report.read.single_stream_reason.as_deref().unwrap_or("");
    assert!(
        reason.contains("PostgreSQL 13.0 has no TID Range Scans"),
        "{reason}"
    );
    assert!(
        report.warnings.iter().any(|w| w.contains(reason)),
        "the run does not say why: {:?}",
        report.warnings
    );
    assert_eq!(report.rows, 35_000);
    common::assert_readers_agree(&db, &dir, &["readings"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_range_is_a_tid_range_scan() {
    let db = common::database("ranges_plan", SCHEMA);
    let range = ReadRange {
        relation: Reading::INFO.qualified_sql(),
        blocks: Some((8, Some(16))),
    };
    let copy = range.copy_sql(&Reading::INFO, None);
    let select = copy
        .strip_prefix("COPY (")
        .and_then(|s| s.strip_suffix(") TO STDOUT (FORMAT binary)"))
        .expect("a COPY of a SELECT");
    let plan = etl_tests::postgres::psql(&db.url, &format!("EXPLAIN {select}")).expect("explain");
    assert!(plan.contains("Tid Range Scan"), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_is_read_on_one_stream_and_says_why() {
    let pair = etl_tests::postgres::replicated_pair().expect("a primary and its standby");
    let name = "etl_ranges_standby";
    etl_tests::postgres::psql(&pair.primary.url, &format!("CREATE DATABASE {name}"))
        .expect("create the database on the primary");
    let primary = etl_tests::postgres::with_database(&pair.primary.url, name);
    let dir = common::out_dir(name);
    let schema = dir.join("schema.sql");
    std::fs::write(&schema, SCHEMA).expect("write the schema");
    etl_tests::postgres::psql_file(&primary, &schema, &[]).expect("schema loads");
    pair.wait_for_replay().expect("the standby catches up");

    let standby = etl_tests::postgres::with_database(&pair.standby.url, name);
    let (source_options, options) = ranged(2);
    let mut source = PgSource::connect(&standby, &source_options)
        .await
        .expect("connect to the standby");
    source
        .export_snapshot()
        .await
        .expect("a snapshot on the standby");
    let sink = LocalDirSink::new(&dir, "test").expect("sink");
    let report = etl_runtime::export_table::<Reading>(&source, &sink, &options)
        .await
        .expect("export from the standby");
    source.close().await;
    assert_eq!(report.read.connections, 1);
    let reason = report.read.single_stream_reason.as_deref().unwrap_or("");
    assert!(reason.contains("standby"), "{reason}");
    assert_eq!(report.rows, 35_000);
    let compared = etl_tests::python::compare_with_postgres(&standby, &dir, "readings")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(compared.contains("interop readings: "), "{compared}");
}
