//! The engine's promises to the production database and to readers: one snapshot for every
//! table of a run, read-only sessions, files split by size, empty tables still readable.

use crate::common;

use etl_runtime::run::export::ExportOptions;
use etl_runtime::source::SourceOptions;
use etl_runtime::{EtlTable, LocalDirSink, PgSource};

const SCHEMA: &str = r#"
CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL);
CREATE TABLE lines (id bigint PRIMARY KEY, order_id bigint NOT NULL, qty integer);
INSERT INTO orders SELECT i, repeat('x', i % 50) || i FROM generate_series(1, 20000) i;
INSERT INTO lines SELECT i, 1 + i % 20000, i % 7 FROM generate_series(1, 50000) i;
CREATE TABLE nothing_yet (id bigint PRIMARY KEY, label text);
"#;

#[derive(Debug, EtlTable)]
#[etl(table = "orders", primary_key(id))]
pub struct Order {
    pub id: i64,
    pub note: String,
}

#[derive(Debug, EtlTable)]
#[etl(table = "lines", primary_key(id))]
pub struct Line {
    pub id: i64,
    pub order_id: i64,
    pub qty: Option<i32>,
}

#[derive(Debug, EtlTable)]
#[etl(table = "nothing_yet", primary_key(id))]
pub struct NothingYet {
    pub id: i64,
    pub label: Option<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_table_of_a_run_reads_the_same_snapshot() {
    let db = common::database("snapshot", SCHEMA);
    let dir = common::out_dir(&db.name);
    let mut source = PgSource::connect(&db.url, &SourceOptions::default())
        .await
        .expect("connect");
    source.export_snapshot().await.expect("snapshot");
    let sink = LocalDirSink::new(&dir, "test").expect("sink");
    let options = ExportOptions::default();

    let orders = etl_runtime::export_table::<Order>(&source, &sink, &options)
        .await
        .expect("orders");
    // Another session commits between the two tables of the run ...
    etl_tests::postgres::psql(
        &db.url,
        "INSERT INTO lines SELECT i, 1, 1 FROM generate_series(50001, 50100) i; \
         DELETE FROM orders WHERE id <= 10",
    )
    .expect("concurrent writes");
    // ... and the second table still reads the snapshot the run started with.
    let lines = etl_runtime::export_table::<Line>(&source, &sink, &options)
        .await
        .expect("lines");
    source.close().await;
    assert_eq!(orders.rows, 20_000);
    assert_eq!(
        lines.rows, 50_000,
        "rows committed after the snapshot leaked in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_read_only_and_say_who_they_are() {
    let db = common::database("readonly", SCHEMA);
    let source = PgSource::connect(&db.url, &SourceOptions::default())
        .await
        .expect("connect");
    let mut tx = source.begin_read().await.expect("read transaction");
    let (read_only, name, timeout): (String, String, String) = sqlx::query_as(
        "SELECT current_setting('transaction_read_only'), current_setting('application_name'), \
                current_setting('statement_timeout')",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("settings");
    assert_eq!(read_only, "on");
    assert_eq!(name, "etl-app");
    assert_eq!(timeout, "6h");
    let write = sqlx::query("DELETE FROM orders").execute(&mut *tx).await;
    assert!(write.is_err(), "a write went through a read-only session");
    drop(tx);
    source.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn large_tables_split_into_files_that_read_back_whole() {
    let db = common::database("split", SCHEMA);
    let dir = common::out_dir(&db.name);
    let mut source = PgSource::connect(&db.url, &SourceOptions::default())
        .await
        .expect("connect");
    source.export_snapshot().await.expect("snapshot");
    let sink = LocalDirSink::new(&dir, "test").expect("sink");
    let options = ExportOptions {
        max_file_bytes: Some(64 * 1024),
        chunk_rows: 1000,
        converters: etl_runtime::run::export::Converters::new(2).expect("pool"),
        ..ExportOptions::default()
    };
    let report = etl_runtime::export_table::<Line>(&source, &sink, &options)
        .await
        .expect("export");
    source.close().await;
    assert!(
        report.files.len() > 1,
        "expected several files: {:?}",
        report.files
    );
    assert_eq!(report.rows, 50_000);
    common::assert_readers_agree(&db, &dir, &["lines"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_table_still_has_a_file_with_its_schema() {
    let db = common::database("empty", SCHEMA);
    let dir = common::out_dir(&db.name);
    let report = common::export::<NothingYet>(&db, &dir)
        .await
        .expect("export");
    assert_eq!(report.rows, 0);
    assert_eq!(report.files, ["part-00000.parquet"]);
    common::assert_readers_agree(&db, &dir, &["nothing_yet"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_taken_from_the_url_and_verify_full_checks_the_server() {
    let server = etl_tests::postgres::tls_server().expect("a TLS cluster");
    let ca = server.ca.as_ref().expect("its CA");
    etl_tests::postgres::psql(&server.url, SCHEMA).expect("schema");
    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        server.url,
        ca.display()
    );
    let source = PgSource::connect(&verified, &SourceOptions::default())
        .await
        .expect("verify-full with the right CA connects");
    let mut tx = source.begin_read().await.expect("read");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await
        .expect("pg_stat_ssl");
    assert!(ssl, "the session is not encrypted");
    drop(tx);
    source.close().await;

    // Another CA: verify-full must refuse the server, not fall back to plain text.
    let other_ca = etl_tests::target_dir()
        .join("test-out")
        .join("other-ca.pem");
    std::fs::create_dir_all(other_ca.parent().expect("dir")).expect("dir");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other",
        ])
        .arg("-keyout")
        .arg(other_ca.with_extension("key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .expect("openssl");
    assert!(made.status.success());
    let wrong = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        server.url,
        other_ca.display()
    );
    let refused = PgSource::connect(&wrong, &SourceOptions::default()).await;
    let message = etl_runtime::error::report(&refused.err().expect("a server the CA did not sign"));
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

const EVENTS: &str = r#"
CREATE TABLE events (
    id bigint PRIMARY KEY,
    shard integer,
    happened_at timestamp,
    happened_on date NOT NULL,
    payload text NOT NULL
);
-- Heap order interleaves every partition: consecutive rows fall in different months.
INSERT INTO events
SELECT i,
       CASE WHEN i % 50 = 0 THEN NULL ELSE i % 3 END,
       CASE WHEN i % 41 = 0 THEN NULL
            ELSE timestamp '2021-01-01' + (i * 7919 % 730) * interval '1 day' + (i % 86400) * interval '1 second' END,
       date '1999-06-30' + (i * 31 % 1000),
       repeat(md5(i::text), 1 + i % 3)
FROM generate_series(1, 30000) i;
"#;

#[derive(Debug, EtlTable)]
#[etl(
    table = "events",
    primary_key(id),
    partition_by = "happened_at:month, shard"
)]
pub struct EventByMonth {
    pub id: i64,
    pub shard: Option<i32>,
    pub happened_at: Option<chrono::NaiveDateTime>,
    pub happened_on: chrono::NaiveDate,
    pub payload: String,
}

/// Rows interleaved across 25 months x 4 shards, with a memory budget of 64 KB: partitions
/// are spilled to disk over and over, each is written in turn (and split at the file-size
/// target), and pyarrow and DuckDB read the Hive layout back equal to the table, every row
/// in the partition its values say.
#[tokio::test(flavor = "multi_thread")]
async fn partitions_spill_and_read_back_equal() {
    let db = common::database("partitions", EVENTS);
    let mut source = PgSource::connect(&db.url, &SourceOptions::default())
        .await
        .expect("connect");
    source.export_snapshot().await.expect("snapshot");
    let options = ExportOptions {
        max_file_bytes: Some(32 * 1024),
        chunk_rows: 1000,
        partition_buffer_bytes: 64 * 1024,
        ..ExportOptions::default()
    };
    let by_month = common::out_dir(&format!("{}-month", db.name));
    let sink = LocalDirSink::new(&by_month, "month").expect("sink");
    let report = etl_runtime::export_table::<EventByMonth>(&source, &sink, &options)
        .await
        .expect("export by month");
    assert_eq!(report.rows, 30_000);
    // 24 months and NULL, times shards 0-2 and NULL.
    assert_eq!(report.partitions.len(), 25 * 4, "{:?}", report.partitions);
    assert!(
        report.files.len() > report.partitions.len(),
        "{:?}",
        report.files
    );
    assert!(
        by_month
            .join("events/happened_at_month=2021-01/shard=__HIVE_DEFAULT_PARTITION__")
            .is_dir()
    );
    common::assert_readers_agree(&db, &by_month, &["events"]);

    let by_year = common::out_dir(&format!("{}-year", db.name));
    let sink = LocalDirSink::new(&by_year, "year").expect("sink");
    let report = etl_runtime::export_table::<by_year::EventByYear>(&source, &sink, &options)
        .await
        .expect("export by year");
    source.close().await;
    assert_eq!(
        report.partitions.len(),
        4,
        "1999 to 2002: {:?}",
        report.partitions
    );
    assert!(by_year.join("events/happened_on_year=1999").is_dir());
    common::assert_readers_agree(&db, &by_year, &["events"]);
    // Nothing of the spill is left beside the data.
    let leftovers: Vec<_> = walk(&by_month.join("events"))
        .into_iter()
        .chain(walk(&by_year.join("events")))
        .filter(|p| !p.ends_with("_manifest.json") && p.extension().is_none_or(|e| e != "parquet"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A second model of the same table in a module of its own (each model has its Diesel
/// `table!` module, named after the table).
mod by_year {
    use etl_runtime::EtlTable;

    #[derive(Debug, EtlTable)]
    #[etl(table = "events", primary_key(id), partition_by = "happened_on:year")]
    pub struct EventByYear {
        pub id: i64,
        pub shard: Option<i32>,
        pub happened_at: Option<chrono::NaiveDateTime>,
        pub happened_on: chrono::NaiveDate,
        pub payload: String,
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
