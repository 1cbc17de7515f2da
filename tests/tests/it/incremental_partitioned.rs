//! A table with a cursor and Hive partitions: its batches land in the partitions of the rows
//! they carry (new partitions too), and the latest version of each row across the full export
//! and the batches equals PostgreSQL, through DuckDB and pyarrow.

use crate::common;

use chrono::{DateTime, Utc};
use etl_runtime::EtlTable;

const SCHEMA: &str = r#"
CREATE TABLE events (
    id          bigint      PRIMARY KEY,
    region      text        NOT NULL,
    happened_at timestamptz NOT NULL,
    note        text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO events (id, region, happened_at, note)
SELECT i, (ARRAY['eu', 'us', 'apac'])[1 + i % 3],
       timestamptz '2025-01-01 00:00:00+00' + (i % 180) * interval '1 day', 'event ' || i
FROM generate_series(1, 3000) i;
ANALYZE events;
"#;

#[derive(Debug, EtlTable)]
#[etl(
    table = "events",
    primary_key(id),
    partition_by = "region, happened_at:month",
    cursor = "updated_at"
)]
pub struct Event {
    pub id: i64,
    pub region: String,
    pub happened_at: DateTime<Utc>,
    pub note: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_of_a_partitioned_table_land_in_their_partitions_and_miss_nothing() {
    let db = common::database("incremental_partitioned", SCHEMA);
    let dir = common::out_dir(&db.name);
    let full = common::export::<Event>(&db, &dir)
        .await
        .expect("full export");
    assert_eq!(full.incremental.as_ref().map(|i| i.mode), Some("full"));
    assert_eq!(full.rows, 3000);

    // Changes in old partitions, rows in a region and a month the table never had, rows
    // moved to another partition, and deletions (one of a row inserted since: never seen).
    etl_tests::postgres::psql(
        &db.url,
        "UPDATE events SET note = 'changed', updated_at = clock_timestamp() WHERE id % 10 = 0; \
         INSERT INTO events (id, region, happened_at, note) \
         SELECT i, 'latam', timestamptz '2026-11-01 12:00:00+00', 'new' \
         FROM generate_series(3001, 3050) i; \
         UPDATE events SET region = 'moved', happened_at = happened_at + interval '400 days', \
                updated_at = clock_timestamp() WHERE id % 10 = 5 AND id < 1000; \
         DELETE FROM events WHERE id % 100 = 1",
    )
    .expect("changes");
    let batch = common::export::<Event>(&db, &dir).await.expect("batch");
    let outcome = batch.incremental.as_ref().expect("incremental outcome");
    assert_eq!(outcome.mode, "batch", "{outcome:?}");
    assert!(batch.rows >= 350, "{} rows in the batch", batch.rows);
    // The manifest lists the table's partitions, old and new.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("events/_manifest.json")).expect("manifest"),
    )
    .expect("json");
    let partitions = manifest["partitions"].to_string();
    for path in [
        "region=eu/happened_at_month=2025-01",
        "region=latam/happened_at_month=2026-11",
    ] {
        assert!(partitions.contains(path), "{path} missing: {partitions}");
    }
    let report = etl_tests::python::latest_versions_equal_postgres(
        &db.url,
        &dir.join("events"),
        "events",
        ("id", "id, region, happened_at, note, updated_at"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.contains("equal: 3019 rows"), "{report}");
    assert!(report.contains("(30 deletions)"), "{report}");
    assert_eq!(outcome.deleted, 30, "{outcome:?}");

    // Compacted: one version per current row, each in the partition of its current values
    // (a moved row only in its new one), as the readers' compare checks row by row.
    let sink = etl_runtime::LocalDirSink::new(&dir, "compact").expect("sink");
    let compacted = etl_runtime::run::compact::compact_table(
        &sink,
        &Event::INFO,
        <<Event as EtlTable>::Encoder as etl_runtime::model::RecordBatchEncoder<Event>>::schema(),
        &etl_runtime::ExportOptions::default(),
        1,
    )
    .await
    .expect("compaction")
    .expect("a batch to fold");
    assert_eq!(compacted.rows, 3019, "{compacted:?}");
    let report = etl_tests::python::latest_versions_equal_postgres(
        &db.url,
        &dir.join("events"),
        "events",
        ("id", "id, region, happened_at, note, updated_at"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.contains("equal: 3019 rows from 3019 versions (0 deletions)"),
        "{report}"
    );
    common::assert_readers_agree(&db, &dir, &["events"]);
    // The next batch adds to the compacted version from the same state.
    etl_tests::postgres::psql(&db.url, "DELETE FROM events WHERE id = 2").expect("one more change");
    let next = common::export::<Event>(&db, &dir).await.expect("batch");
    assert_eq!(next.incremental.as_ref().map(|i| i.deleted), Some(1));
}
