//! Helpers shared by the integration tests: a fresh database with a schema, an export into a
//! directory of the test's own, and the independent readers' verdict.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use etl_runtime::run::export::ExportOptions;
use etl_runtime::source::SourceOptions;
use etl_runtime::{EtlTable, LocalDirSink, PgSource, TableReport};
use etl_tests::TestDb;

/// A fresh database holding `schema_sql`.
pub fn database(label: &str, schema_sql: &str) -> TestDb {
    etl_tests::database_with(label, schema_sql).expect("a fresh database with the schema")
}

/// A directory under target/ for one test's output, emptied.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = etl_tests::target_dir().join("test-out").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the output directory");
    dir
}

/// Exports `T` from `db` into `dir` on one snapshot, as `etl-app run` does.
pub async fn export<T: EtlTable>(db: &TestDb, dir: &Path) -> etl_runtime::Result<TableReport> {
    let mut source = PgSource::connect(&db.url, &SourceOptions::default()).await?;
    source.export_snapshot().await?;
    let sink = LocalDirSink::new(dir, "test")?;
    let result = etl_runtime::export_table::<T>(&source, &sink, &ExportOptions::default()).await;
    source.close().await;
    result
}

/// Runs the pyarrow + DuckDB comparison; panics with its report when anything differs.
pub fn assert_readers_agree(db: &TestDb, dir: &Path, tables: &[&str]) {
    let report = etl_tests::python::compare_with_postgres(&db.url, dir, &tables.join(","))
        .unwrap_or_else(|e| panic!("{e}"));
    for table in tables {
        assert!(report.contains(&format!("interop {table}: ")), "{report}");
    }
}

/// Each column's encodings in a table's one file, as pyarrow reads them from the footer.
pub fn column_encodings(table_dir: &std::path::Path) -> serde_json::Value {
    let python = etl_tests::python::python().expect("python");
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import glob, json, sys, pyarrow.parquet as pq\n\
             [path] = glob.glob(sys.argv[1] + '/*.parquet')\n\
             group = pq.ParquetFile(path).metadata.row_group(0)\n\
             print(json.dumps({group.column(i).path_in_schema: list(group.column(i).encodings)\n\
                               for i in range(group.num_columns)}))",
        ])
        .arg(table_dir)
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("encodings as JSON")
}

/// Held while a test runs trybuild: every case builds in one project under
/// `target/tests/trybuild/etl-tests/`, which two runs at once would overwrite. (Under nextest,
/// where each test is a process of its own, the `trybuild` test group does the same.)
pub fn trybuild_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
