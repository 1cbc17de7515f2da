//! Sharded runs as Kubernetes would run them, with local processes: a coordinator holding the
//! snapshot and K shards reading their share of the ranges into a shared output. The union is
//! the table; a retried shard replaces its own files; a shard that keeps failing, or a
//! coordinator that dies, publishes nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{demo_database, etl_app, out_dir, text};

const TABLES: &str = "purchase_orders,shipments";

fn start_coordinator(url: &str, out: &Path, run: &str, shards: u32, extra: &[&str]) -> Child {
    etl_app()
        .args(["coordinate", "--tables", TABLES, "--range-pages", "8"])
        .args(["--shards", &shards.to_string(), "--run-name", run])
        .arg("--output")
        .arg(out)
        .args(extra)
        .env("DATABASE_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the coordinator")
}

fn shard(url: &str, out: &Path, run: &str, index: u32) -> Command {
    let mut command = etl_app();
    command
        .args(["shard", "--run-name", run])
        .arg("--output")
        .arg(out)
        // As a Kubernetes Indexed Job gives it.
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .env("DATABASE_URL", url);
    command
}

fn area(out: &Path, run: &str) -> PathBuf {
    out.join(".etl-shards").join(run)
}

/// Waits until the coordinator has published its plan (or has exited).
fn wait_for_plan(out: &Path, run: &str, coordinator: &mut Child) {
    wait_for_plan_of(out, run, coordinator, None);
}

/// Waits for the plan of `shards` shards, if given (a restarted coordinator's, not the dead
/// one's).
fn wait_for_plan_of(out: &Path, run: &str, coordinator: &mut Child, shards: Option<u64>) {
    let plan = area(out, run).join("plan.json");
    let published = || {
        std::fs::read(&plan)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|p| shards.is_none_or(|k| p["shards"] == k))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !published() {
        if let Ok(Some(status)) = coordinator.try_wait() {
            panic!("the coordinator exited ({status}) before publishing its plan");
        }
        assert!(Instant::now() < deadline, "no plan after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_tables_equal_postgres(url: &str, out: &Path) {
    let report = etl_tests::python::compare_with_postgres(url, out, TABLES)
        .unwrap_or_else(|e| panic!("{e}"));
    for table in TABLES.split(',') {
        assert!(report.contains(&format!("interop {table}: ")), "{report}");
    }
}

/// Writes committed after the coordinator's snapshot (no shard may see them), and their undoing
/// (after which PostgreSQL holds again what the snapshot saw).
const MEANWHILE: &str = "CREATE TABLE shipments_gone AS SELECT * FROM shipments WHERE id % 5 = 0; \
    DELETE FROM shipments WHERE id % 5 = 0; \
    UPDATE purchase_orders SET quantity = quantity + 1000000 WHERE id % 7 = 0";
const UNDO: &str = "INSERT INTO shipments SELECT * FROM shipments_gone; \
    DROP TABLE shipments_gone; \
    UPDATE purchase_orders SET quantity = quantity - 1000000 WHERE id % 7 = 0";

fn manifest(out: &Path, table: &str) -> serde_json::Value {
    let path = out.join(table).join("_manifest.json");
    serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json")
}

#[test]
fn three_shards_export_each_table_once_on_the_coordinators_snapshot() {
    let db = demo_database("shards");
    let out = out_dir("shards");
    let run = "nightly-1";
    let mut coordinator = start_coordinator(&db.url, &out, run, 3, &[]);
    wait_for_plan(&out, run, &mut coordinator);
    etl_tests::postgres::psql(&db.url, MEANWHILE).expect("concurrent writes");
    for index in 0..3 {
        let output = shard(&db.url, &out, run, index).output().expect("shard");
        assert!(output.status.success(), "shard {index}: {}", text(&output));
    }
    let output = coordinator.wait_with_output().expect("coordinator");
    assert!(output.status.success(), "{}", text(&output));
    assert!(!area(&out, run).exists(), "the run's area was left behind");
    // Every shard wrote some of the table's files.
    let manifest = manifest(&out, "purchase_orders");
    assert_eq!(manifest["rows"], 5000);
    let files = manifest["files"].to_string();
    for index in 0..3 {
        assert!(
            files.contains(&format!("shard-{index:05}-part-")),
            "no file of shard {index}: {files}"
        );
    }
    etl_tests::postgres::psql(&db.url, UNDO).expect("undo");
    assert_tables_equal_postgres(&db.url, &out);
}

#[test]
fn a_retried_shard_replaces_its_own_files_and_a_failing_one_fails_the_run() {
    let db = demo_database("shards_retry");
    let out = out_dir("shards_retry");
    let run = "retry-1";
    let mut coordinator = start_coordinator(&db.url, &out, run, 2, &["--shard-attempts", "2"]);
    wait_for_plan(&out, run, &mut coordinator);
    // Shard 1's first attempt dies before it could say it was done: its files are written,
    // with a stale one of an attempt that wrote more, and no done marker. The coordinator is
    // stopped meanwhile, so that it never sees the marker this test then removes (it once did,
    // and published while shard 1's retry was replacing its files).
    etl_tests::signal(&coordinator, "STOP").expect("kill");
    let output = shard(&db.url, &out, run, 1).output().expect("shard 1");
    let removed = std::fs::remove_file(area(&out, run).join("shard-00001.done.json"));
    let shard_dir = area(&out, run).join("tables/purchase_orders/shard-00001");
    let planted = std::fs::write(shard_dir.join("shard-00001-part-00099.parquet"), b"stale");
    etl_tests::signal(&coordinator, "CONT").expect("kill");
    assert!(output.status.success(), "{}", text(&output));
    removed.expect("marker");
    planted.expect("stale");
    // Shard 0 fails once (its database is gone for it) and succeeds on its retry.
    let output = shard(&format!("{}_missing", db.url), &out, run, 0)
        .output()
        .expect("shard 0");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    for index in [0, 1] {
        let output = shard(&db.url, &out, run, index).output().expect("retry");
        assert!(output.status.success(), "shard {index}: {}", text(&output));
    }
    let output = coordinator.wait_with_output().expect("coordinator");
    assert!(output.status.success(), "{}", text(&output));
    let files = manifest(&out, "purchase_orders")["files"].to_string();
    assert!(
        !files.contains("part-00099"),
        "a stale file was published: {files}"
    );
    assert_tables_equal_postgres(&db.url, &out);

    // A shard that fails as many times as allowed fails the run: nothing is published.
    let out = out_dir("shards_failing");
    let run = "failing-1";
    let mut coordinator = start_coordinator(&db.url, &out, run, 2, &["--shard-attempts", "1"]);
    wait_for_plan(&out, run, &mut coordinator);
    let output = shard(&format!("{}_missing", db.url), &out, run, 1)
        .output()
        .expect("shard 1");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let output = coordinator.wait_with_output().expect("coordinator");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("shard 1 failed 1 time(s)"), "{message}");
    assert!(
        !out.join("purchase_orders").exists(),
        "a table was published"
    );
    assert!(!area(&out, run).exists(), "the run's area was left behind");
}

#[test]
fn a_coordinator_killed_mid_run_publishes_nothing() {
    let db = demo_database("shards_killed");
    let out = out_dir("shards_killed");
    let run = "killed-1";
    let mut first = start_coordinator(&db.url, &out, run, 2, &[]);
    wait_for_plan(&out, run, &mut first);
    // Shard 0 finishes while the coordinator lives ...
    let output = shard(&db.url, &out, run, 0).output().expect("shard 0");
    assert!(output.status.success(), "{}", text(&output));
    // ... then the coordinator dies (SIGKILL: no cleanup at all), and its snapshot with it.
    first.kill().expect("kill the coordinator");
    let _ = first.wait();
    let output = shard(&db.url, &out, run, 1).output().expect("shard 1");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("the coordinator's snapshot is gone"),
        "{}",
        text(&output)
    );
    assert!(
        !out.join("purchase_orders").exists(),
        "a table was published"
    );
    assert!(!out.join("shipments").exists(), "a table was published");
    // The next coordinator of the same run name starts over; the dead one's area is removed.
    let mut second = start_coordinator(&db.url, &out, run, 1, &[]);
    wait_for_plan_of(&out, run, &mut second, Some(1));
    assert!(
        !area(&out, run).join("shard-00000.done.json").exists(),
        "the dead coordinator's shard outcome survived"
    );
    let output = shard(&db.url, &out, run, 0).output().expect("shard");
    assert!(output.status.success(), "{}", text(&output));
    let output = second.wait_with_output().expect("coordinator");
    assert!(output.status.success(), "{}", text(&output));
    assert_tables_equal_postgres(&db.url, &out);
}

/// A sharded run and a plain run of the same tables list the same partitions in the same
/// order (by their keys' values: the NULL partition first, as `run` orders them, not by the
/// paths' text) and, for an empty partitioned table, publish the same schema file.
#[test]
fn coordinate_lists_partitions_and_an_empty_table_as_run_does() {
    let db = demo_database("shards_as_run");
    let both = |label: &str| -> (serde_json::Value, serde_json::Value) {
        let plain = out_dir(&format!("shards_as_run_{label}_plain"));
        let output = etl_app()
            .args(["run", "--tables", TABLES, "--output"])
            .arg(&plain)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run");
        assert!(output.status.success(), "{}", text(&output));
        let sharded = out_dir(&format!("shards_as_run_{label}_sharded"));
        let run = format!("as-run-{label}");
        let mut coordinator = start_coordinator(&db.url, &sharded, &run, 2, &[]);
        wait_for_plan(&sharded, &run, &mut coordinator);
        for index in 0..2 {
            let output = shard(&db.url, &sharded, &run, index)
                .output()
                .expect("shard");
            assert!(output.status.success(), "shard {index}: {}", text(&output));
        }
        let output = coordinator.wait_with_output().expect("coordinator");
        assert!(output.status.success(), "{}", text(&output));
        assert_tables_equal_postgres(&db.url, &sharded);
        (
            manifest(&plain, "shipments"),
            manifest(&sharded, "shipments"),
        )
    };
    let (plain, sharded) = both("full");
    let partitions = &plain["partitions"];
    assert!(
        partitions
            .to_string()
            .contains("__HIVE_DEFAULT_PARTITION__"),
        "the demo has NULL keys: {partitions}"
    );
    assert_eq!(&sharded["partitions"], partitions);

    etl_tests::postgres::psql(&db.url, "TRUNCATE shipments").expect("empty the table");
    let (plain, sharded) = both("empty");
    assert_eq!(plain["rows"], 0);
    assert_eq!(sharded["rows"], 0);
    let files = &plain["files"];
    assert_eq!(files.as_array().map(Vec::len), Some(1), "{files}");
    assert_eq!(&sharded["files"], files);
}
