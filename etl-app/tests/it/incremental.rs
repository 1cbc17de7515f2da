//! Incremental runs of a table with a cursor (the demo's `accounts`, whose trigger sets
//! `updated_at = now()` on every change), on a real PostgreSQL, read back by DuckDB and
//! pyarrow with the README's latest-version query.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::common::{demo_database, etl_app, out_dir, text};

fn sql(url: &str, statement: &str) -> String {
    etl_tests::postgres::psql(url, statement).expect(statement)
}

/// Runs `accounts` incrementally; returns the output and the run report's table entry.
fn run(url: &str, out: &Path, extra: &[&str]) -> (String, serde_json::Value) {
    let report = out.with_extension("report.json");
    let output = etl_app()
        .args(["run", "--tables", "accounts", "--output"])
        .arg(out)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .env("DATABASE_URL", url)
        .output()
        .expect("run etl-app");
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("report JSON");
    (said, report["tables"][0].clone())
}

/// `etl-demo run --tables accounts` into `out`, which must fail (exit 1); what it said.
fn run_failing(url: &str, out: &Path) -> String {
    let output = etl_app()
        .args(["run", "--tables", "accounts", "--output"])
        .arg(out)
        .env("DATABASE_URL", url)
        .output()
        .expect("run etl-app");
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    said
}

/// A psql session kept open, to hold a transaction across runs.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Session {
    fn open(url: &str) -> Self {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("psql");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends `statements` and waits until psql has run them.
    fn run(&mut self, statements: &str) {
        writeln!(self.stdin, "{statements}\n\\echo done").expect("write to psql");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).expect("read psql");
            assert!(read > 0, "psql ended before `{statements}` was done");
            if line.trim() == "done" {
                return;
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The latest version of each row across the full export and its batches, by DuckDB (the
/// README's query) and pyarrow, against PostgreSQL, value for value.
fn latest_versions_equal_postgres(url: &str, table_dir: &Path) -> String {
    etl_tests::python::latest_versions_equal_postgres(
        url,
        table_dir,
        "accounts",
        ("id", "id, owner, balance::text, updated_at"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_late_commit_is_delivered_by_the_next_run() {
    let db = demo_database("incremental_late_commit");
    let out = out_dir("incremental-late-commit");
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "full", "{said}");
    assert_eq!(table["rows"], 1000);

    // A transaction takes now() for updated_at, then stays open while others commit later
    // changes: its row carries an earlier cursor than rows committed before it.
    let mut late = Session::open(&db.url);
    late.run("BEGIN; UPDATE accounts SET balance = -7 WHERE id = 7;");
    sql(&db.url, "UPDATE accounts SET balance = 8.5 WHERE id = 8");
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "batch", "{said}");
    assert_eq!(table["incremental"]["watermark_from"], "snapshot", "{said}");
    assert_eq!(table["rows"], 1, "only id 8 is visible: {said}");
    late.run("COMMIT;");
    sql(&db.url, "UPDATE accounts SET balance = 9.25 WHERE id = 9");

    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "batch", "{said}");
    // id 7 committed late with the earlier cursor; id 8 again (a boundary repeat), id 9 new.
    let rows = table["rows"].as_u64().unwrap_or(0);
    assert!(rows >= 2, "{said}");
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(verdict.contains("equal: 1000 rows"), "{verdict}");
    let balance_7 = sql(&db.url, "SELECT balance FROM accounts WHERE id = 7");
    assert_eq!(balance_7, "-7.00");

    // The state says where the next run starts and which batches the version holds.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("accounts/_manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let state = &manifest["incremental"];
    assert_eq!(state["cursor"], "updated_at");
    assert_eq!(state["batches"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        manifest["files"].as_array().map(Vec::len),
        Some(3),
        "{manifest}"
    );

    // `state` shows the same without a database: version, next lower bound, batches.
    let shown = etl_app()
        .args(["state", "--tables", "accounts,notes", "--output"])
        .arg(&out)
        .output()
        .expect("etl-app state");
    let said = text(&shown);
    assert_eq!(shown.status.code(), Some(0), "{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("accounts"))
        .unwrap_or_default();
    let watermark = state["watermark"].as_str().unwrap_or("?");
    assert!(
        line.contains(&format!("{watermark} (snapshot)"))
            && line.split_whitespace().nth(4) == Some("2"),
        "{said}"
    );
    assert!(
        said.contains("notes") && said.contains("not exported yet"),
        "{said}"
    );
    // The same for scripts, as one JSON document.
    let json = etl_app()
        .args([
            "state",
            "--format",
            "json",
            "--tables",
            "accounts,notes",
            "--output",
        ])
        .arg(&out)
        .output()
        .expect("etl-app state");
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let tables: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let accounts = &tables[0];
    assert_eq!(accounts["table"], "accounts", "{tables}");
    assert_eq!(accounts["incremental"]["batches"], 2, "{tables}");
    assert_eq!(
        accounts["incremental"]["next_run_from"], watermark,
        "{tables}"
    );
    assert_eq!(accounts["incremental"]["next_run_from_because"], "snapshot");
    assert_eq!(tables[1]["exported"], false, "{tables}");
    // `state` only reads: an output that does not exist is not created.
    let nowhere = out.with_extension("never-written");
    let shown = etl_app()
        .args(["state", "--tables", "accounts", "--output"])
        .arg(&nowhere)
        .output()
        .expect("etl-app state");
    let said = text(&shown);
    assert_eq!(shown.status.code(), Some(0), "{said}");
    assert!(said.contains("not exported yet"), "{said}");
    assert!(!nowhere.exists(), "state created {}", nowhere.display());
}

#[test]
fn a_role_that_cannot_see_other_sessions_falls_back_to_the_lookback() {
    let db = demo_database("incremental_lookback");
    sql(
        &db.url,
        "CREATE ROLE etl_blind LOGIN; GRANT SELECT ON accounts TO etl_blind",
    );
    let blind_url = db.url.replacen("postgres@", "etl_blind@", 1);
    assert_ne!(blind_url, db.url, "the test URL names the postgres user");
    let out = out_dir("incremental-lookback");
    run(&blind_url, &out, &[]);

    let mut late = Session::open(&db.url);
    late.run("BEGIN; UPDATE accounts SET balance = -3 WHERE id = 3;");
    sql(&db.url, "UPDATE accounts SET balance = 4 WHERE id = 4");
    let (said, table) = run(&blind_url, &out, &["--lookback", "1h"]);
    assert_eq!(table["incremental"]["watermark_from"], "lookback", "{said}");
    assert!(said.contains("--lookback"), "the run says so: {said}");
    late.run("COMMIT;");
    let (said, _) = run(&blind_url, &out, &["--lookback", "1h"]);
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(verdict.contains("equal: 1000 rows"), "{said}\n{verdict}");
    let _ = sql(&db.url, "DROP OWNED BY etl_blind");
}

#[test]
fn bounds_keep_microseconds_and_ties_are_read_again() {
    let db = demo_database("incremental_ties");
    let out = out_dir("incremental-ties");
    run(&db.url, &out, &[]);
    let manifest = |out: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join("accounts/_manifest.json")).expect("m"))
            .expect("manifest JSON")
    };
    let bound = manifest(&out)["incremental"]["watermark"]
        .as_str()
        .expect("watermark")
        .to_string();
    // Rows exactly at the bound, 1 µs before and 1 µs after it, inserted as if by
    // transactions that started there (and invisible to the first run).
    sql(
        &db.url,
        &format!(
            "INSERT INTO accounts (id, owner, balance, updated_at) VALUES \
             (2001, 'at', 1, '{bound}'), \
             (2002, 'before', 2, '{bound}'::timestamptz - interval '1 microsecond'), \
             (2003, 'after', 3, '{bound}'::timestamptz + interval '1 microsecond')"
        ),
    );
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "batch", "{said}");
    let python = etl_tests::python::python().expect("python readers");
    let ids = Command::new(python)
        .arg("-c")
        .arg(
            "import sys, duckdb; print(sorted(r[0] for r in duckdb.sql(\
             f\"SELECT id FROM read_parquet('{sys.argv[1]}/batch-*.parquet')\").fetchall()))",
        )
        .arg(out.join("accounts"))
        .output()
        .expect("python");
    // The closed lower bound takes the row at it and after it, not the one before.
    assert_eq!(
        String::from_utf8_lossy(&ids.stdout).trim(),
        "[2001, 2003]",
        "{}",
        text(&ids)
    );
}

#[test]
fn two_runs_of_one_table_at_once_do_not_both_advance_it() {
    let db = demo_database("incremental_lock");
    let out = out_dir("incremental-lock");
    run(&db.url, &out, &[]);
    // Another run holds the table's lock (as a run in progress does).
    let lock_path = out.join(".etl-locks/accounts.lock");
    let lock = std::fs::File::open(&lock_path).expect("the table's lock file");
    lock.lock().expect("lock");
    let before = std::fs::read(out.join("accounts/_manifest.json")).expect("manifest");
    sql(&db.url, "UPDATE accounts SET balance = 1 WHERE id = 1");
    let said = run_failing(&db.url, &out);
    assert!(said.contains("being exported by another run"), "{said}");
    let after = std::fs::read(out.join("accounts/_manifest.json")).expect("manifest");
    assert_eq!(before, after, "the state did not move");
    lock.unlock().expect("unlock");
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "batch", "{said}");
    assert_eq!(table["rows"], 1, "{said}");
}

#[test]
fn full_and_a_changed_model_start_a_new_version() {
    let db = demo_database("incremental_full");
    let out = out_dir("incremental-full");
    run(&db.url, &out, &[]);
    sql(&db.url, "UPDATE accounts SET balance = 2 WHERE id = 2");
    let (_, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "batch");
    let (said, table) = run(&db.url, &out, &["--full"]);
    assert_eq!(table["mode"], "full", "{said}");
    assert_eq!(table["incremental"]["reason"], "--full", "{said}");
    let names: Vec<String> = std::fs::read_dir(out.join("accounts"))
        .expect("table dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert_eq!(
        names,
        ["part-00000.parquet"],
        "the batches are compacted away"
    );
    // A state written by another model (its fingerprint differs) is not added to.
    let manifest_path = out.join("accounts/_manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("m")).expect("json");
    manifest["incremental"]["schema_fingerprint"] = "0000000000000000".into();
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "full", "{said}");
    assert!(
        said.contains("the model's columns or types changed"),
        "the run says why: {said}"
    );
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(verdict.contains("equal: 1000 rows"), "{verdict}");
}

#[test]
fn a_damaged_manifest_stops_the_table_until_full_exports_it_anew() {
    let db = demo_database("incremental_damaged");
    let out = out_dir("incremental-damaged");
    run(&db.url, &out, &[]);
    let manifest_path = out.join("accounts/_manifest.json");
    let written = std::fs::read(&manifest_path).expect("manifest");
    let batches_before: Vec<String> = parquet_files(&out.join("accounts"));

    // Cut in half: the table's state is unknown, so the run neither exports it in full nor
    // restarts its state; it fails, naming the file.
    std::fs::write(&manifest_path, &written[..written.len() / 2]).expect("damage the manifest");
    sql(&db.url, "UPDATE accounts SET balance = 3 WHERE id = 3");
    let said = run_failing(&db.url, &out);
    assert!(said.contains("cannot read the manifest"), "{said}");
    assert!(said.contains("accounts/_manifest.json"), "{said}");
    assert!(said.contains("--full"), "the way out is named: {said}");
    assert_eq!(
        parquet_files(&out.join("accounts")),
        batches_before,
        "nothing was published"
    );

    // A manifest from a newer etl-toolkit is refused the same way, with both versions named.
    let mut newer: serde_json::Value = serde_json::from_slice(&written).expect("manifest JSON");
    newer["format_version"] = 9.into();
    std::fs::write(&manifest_path, newer.to_string()).expect("write manifest");
    let said = run_failing(&db.url, &out);
    assert!(said.contains("format 9"), "{said}");

    // --full exports the table anew over it.
    let (said, table) = run(&db.url, &out, &["--full"]);
    assert_eq!(table["mode"], "full", "{said}");
    assert_eq!(table["incremental"]["reason"], "--full", "{said}");
    assert!(
        table["warnings"]
            .to_string()
            .contains("--full exports the table anew"),
        "the report says what was set aside: {table}"
    );
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(verdict.contains("equal: 1000 rows"), "{verdict}");
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("table dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    names
}

/// Four writers through pgbench: hot rows updated by many transactions, inserts, deletes and
/// re-inserts, some transactions held open for a while (the workload's shape, not a wait).
const CHURN: &str = r"
\set id random(1, 1200)
\set hot random(1, 20)
\set op random(1, 10)
BEGIN;
\if :op <= 4
UPDATE accounts SET balance = balance + 1 WHERE id = :hot;
\elif :op <= 6
INSERT INTO accounts (id, owner, balance) VALUES (:id, 'churn', 1)
  ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + 1;
\elif :op <= 8
DELETE FROM accounts WHERE id = :id;
\else
UPDATE accounts SET owner = 'moved ' || :op WHERE id = :id;
SELECT pg_sleep(0.05);
\endif
COMMIT;
";

/// The lake holds the table: a transaction that starts first and writes last, deletions of
/// every kind, a transaction open across runs and concurrent writers while runs go on; after
/// each run the current rows (the README's query, in DuckDB and pyarrow) equal PostgreSQL's.
#[test]
fn the_current_rows_equal_the_table_under_concurrent_writers_and_deletes() {
    let db = demo_database("incremental_churn");
    let out = out_dir("incremental-churn");
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "full", "{said}");

    // A starts first; B writes row 1 and commits; a run exports B's version; then A writes
    // row 1 and commits. A's version is current but has the older cursor (now() is its
    // transaction's start): only the order of the runs tells.
    let mut first = Session::open(&db.url);
    first.run("BEGIN; SELECT 1;");
    sql(&db.url, "UPDATE accounts SET balance = 111 WHERE id = 1");
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "batch", "{said}");
    first.run("UPDATE accounts SET balance = -1 WHERE id = 1; COMMIT;");
    // Deleted rows; a key deleted and inserted again (a row, not a deletion); a row inserted
    // and deleted between runs (nothing); one deleted by a transaction left open across runs.
    sql(
        &db.url,
        "DELETE FROM accounts WHERE id BETWEEN 10 AND 19; \
         DELETE FROM accounts WHERE id = 30; \
         INSERT INTO accounts (id, owner, balance) VALUES (30, 'again', 3); \
         INSERT INTO accounts (id, owner, balance) VALUES (5000, 'brief', 1); \
         DELETE FROM accounts WHERE id = 5000",
    );
    let mut open = Session::open(&db.url);
    open.run("BEGIN; DELETE FROM accounts WHERE id = 40; UPDATE accounts SET owner = 'held' WHERE id = 41;");
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["incremental"]["deleted_rows"], 10, "{said}");
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(verdict.contains("equal: 990 rows"), "{verdict}");
    // Row 1 is A's version, whose cursor is older than B's.
    assert_eq!(
        sql(&db.url, "SELECT balance FROM accounts WHERE id = 1"),
        "-1.00"
    );

    // Writers while runs go on; the open transaction commits in the middle.
    let script = out.with_extension("churn.sql");
    std::fs::write(&script, CHURN).expect("write the workload");
    let mut writers = etl_tests::postgres::pgbench()
        .expect("pgbench")
        .args(["-n", "-c", "4", "-j", "2", "-t", "300", "-f"])
        .arg(&script)
        .arg(&db.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgbench");
    let mut runs_while_writing = 0;
    while writers.try_wait().expect("pgbench").is_none() {
        let (said, table) = run(&db.url, &out, &[]);
        assert_eq!(table["mode"], "batch", "{said}");
        runs_while_writing += 1;
        if runs_while_writing == 1 {
            open.run("COMMIT;");
            // A compaction in the middle: the next runs add to the compacted version.
            compact(&out);
        }
    }
    let ended = writers.wait_with_output().expect("pgbench");
    assert!(
        ended.status.success(),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );
    if runs_while_writing == 0 {
        open.run("COMMIT;");
        compact(&out);
    }
    let (said, _) = run(&db.url, &out, &[]);
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(verdict.contains("equal: "), "{said}\n{verdict}");
    // Every reader of the compare (pyarrow, DuckDB), on the whole table's values.
    let report = etl_tests::python::compare_with_postgres(&db.url, &out, "accounts")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.contains("ok"), "{report}");

    // Compacted with nothing changed since: one version per row, as a full export has, and
    // the next run goes on from the same state (its batch is empty).
    compact(&out);
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    let rows = sql(&db.url, "SELECT count(*) FROM accounts");
    assert!(
        verdict.contains(&format!(
            "equal: {rows} rows from {rows} versions (0 deletions)"
        )),
        "{verdict}"
    );
    let fresh = out_dir("incremental-churn-full");
    run(&db.url, &fresh, &[]);
    let report = etl_tests::python::compare_with_postgres(&db.url, &fresh, "accounts")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.contains("ok"), "{report}");
    // Rows changed since the watermark come again (a boundary repeat, never a miss); nothing
    // was deleted.
    let (said, table) = run(&db.url, &out, &[]);
    assert_eq!(table["mode"], "batch", "{said}");
    assert_eq!(table["incremental"]["deleted_rows"], 0, "{said}");
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(
        verdict.contains(&format!("equal: {rows} rows")),
        "{verdict}"
    );
}

/// `etl-app compact --tables accounts` on `out`, which must succeed.
fn compact(out: &Path) {
    let output = etl_app()
        .args(["compact", "--tables", "accounts", "--output"])
        .arg(out)
        .output()
        .expect("etl-app compact");
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("batch(es) folded"), "{said}");
}

/// `run --compact-after 2`: the second batch's run folds the batches into a new version (and
/// says so); the state goes on; `compact` of a table without a cursor is refused.
#[test]
fn compact_after_folds_the_batches_once_there_are_enough() {
    let db = demo_database("incremental_compact_after");
    let out = out_dir("incremental-compact-after");
    run(&db.url, &out, &[]);
    sql(&db.url, "UPDATE accounts SET balance = 1 WHERE id <= 10");
    let (said, table) = run(&db.url, &out, &["--compact-after", "2"]);
    assert_eq!(table["mode"], "batch", "{said}");
    assert_eq!(table["warnings"], serde_json::json!([]), "{said}");
    sql(&db.url, "DELETE FROM accounts WHERE id <= 5");
    let (said, table) = run(&db.url, &out, &["--compact-after", "2"]);
    assert_eq!(table["incremental"]["deleted_rows"], 5, "{said}");
    let warnings = table["warnings"].to_string();
    assert!(
        warnings.contains("compacted after its batch: 995 current rows"),
        "{warnings}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("accounts/_manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["incremental"]["batches"], serde_json::json!([]));
    assert_eq!(manifest["rows"], 995);
    let verdict = latest_versions_equal_postgres(&db.url, &out.join("accounts"));
    assert!(
        verdict.contains("equal: 995 rows from 995 versions"),
        "{verdict}"
    );

    let refused = etl_app()
        .args(["compact", "--tables", "notes", "--output"])
        .arg(&out)
        .output()
        .expect("etl-app compact");
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("notes") && said.contains("no cursor"),
        "{said}"
    );
}
