//! Stopping a run as schedulers do: SIGTERM or SIGINT mid-export stops it cleanly and quickly;
//! staging a killed run left behind is removed by the next run, never a live run's.
//!
//! The exports are held mid-COPY by a proxy that stops forwarding PostgreSQL's replies, so the
//! signal arrives at a known point, and a stalled server cannot delay the exit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use etl_tests::faulty_proxy::{Fault, FaultyProxy};

use crate::common::demo_database;

fn etl_demo(url: &str, out: &Path, tables: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_etl-demo"));
    command
        .args(["run", "--tables", tables, "--output"])
        .arg(out)
        .env("DATABASE_URL", url)
        .env_remove("ETL_OUTPUT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The same database, reached through `proxy`.
fn through(url: &str, proxy: &FaultyProxy) -> String {
    let (scheme_user, rest) = url.split_once('@').expect("a URL with a host");
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    format!("{scheme_user}@127.0.0.1:{}{path}", proxy.port)
}

fn server_port(url: &str) -> u16 {
    let host = url.split_once('@').expect("host").1;
    let host = host.split('/').next().unwrap_or_default();
    host.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// An export of `tables` that hangs mid-COPY; returns once it does.
fn hanging_export(
    db: &etl_tests::TestDb,
    out: &Path,
    tables: &str,
    report: Option<&Path>,
) -> (Child, FaultyProxy) {
    let proxy = FaultyProxy::start(
        server_port(&db.url),
        Fault::StallRepliesAfterBytes(64 << 10),
    )
    .expect("proxy");
    let mut command = etl_demo(&through(&db.url, &proxy), out, tables);
    if let Some(report) = report {
        command.arg("--report").arg(report);
    }
    let child = command.spawn().expect("start etl-demo");
    assert!(
        proxy.wait_stalled(Duration::from_secs(60)),
        "the export never reached the stall"
    );
    (child, proxy)
}

/// The process's output, if it exits within `limit`.
fn exit_within(child: Child, limit: Duration) -> Option<Output> {
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    exited.recv_timeout(limit).ok().and_then(Result::ok)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn out_dir(name: &str) -> PathBuf {
    let dir = etl_tests::target_dir().join("test-out").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The run directories in the staging area (`<snapshot time>-<pid>`).
fn staged_runs(out: &Path) -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(out.join(".etl-staging"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    runs
}

fn run_of(child_id: u32, runs: &[String]) -> bool {
    runs.iter().any(|r| r.ends_with(&format!("-{child_id}")))
}

fn published(out: &Path, table: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join(table))
        .expect("a published table")
        .flatten()
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("read");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn sigterm_mid_export_stops_within_seconds_and_publishes_nothing() {
    let db = demo_database("signal_term");
    let out = out_dir(&db.name);
    let first = etl_demo(&db.url, &out, "purchase_orders")
        .output()
        .expect("run");
    assert!(first.status.success(), "{}", text(&first));
    let before = published(&out, "purchase_orders");

    let report = out.with_extension("report.json");
    let (child, _proxy) = hanging_export(&db, &out, "purchase_orders", Some(&report));
    let runs = staged_runs(&out);
    assert!(
        run_of(child.id(), &runs),
        "no staging for the run: {runs:?}"
    );
    etl_tests::signal(&child, "TERM").expect("kill");
    let output = exit_within(child, Duration::from_secs(5)).expect("exits within 5 s of SIGTERM");
    let message = text(&output);
    assert_eq!(output.status.code(), Some(143), "{message}");
    assert!(message.contains("SIGTERM"), "{message}");
    assert!(
        !out.join(".etl-staging").exists(),
        "staging left: {:?}",
        staged_runs(&out)
    );
    assert_eq!(published(&out, "purchase_orders"), before);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("a report")).expect("JSON");
    assert_eq!(report["status"], "cancelled");
    assert_eq!(report["exit_code"], 143);
    assert_eq!(report["signal"], "SIGTERM");
    assert_eq!(report["tables"][0]["status"], "cancelled", "{report:#}");
}

#[test]
fn a_killed_runs_staging_is_removed_by_the_next_run_but_never_a_live_runs() {
    let db = demo_database("signal_kill");
    let out = out_dir(&db.name);
    let (live, _live_proxy) = hanging_export(&db, &out, "purchase_orders", None);
    let (mut killed, _killed_proxy) = hanging_export(&db, &out, "notes", None);
    let killed_id = killed.id();
    killed.kill().expect("SIGKILL");
    killed.wait().expect("reaped");
    let runs = staged_runs(&out);
    assert!(
        run_of(killed_id, &runs) && run_of(live.id(), &runs),
        "{runs:?}"
    );

    let next = etl_demo(&db.url, &out, "currencies").output().expect("run");
    assert!(next.status.success(), "{}", text(&next));
    let runs = staged_runs(&out);
    assert!(
        !run_of(killed_id, &runs),
        "the killed run's staging is still there: {runs:?}"
    );
    assert!(
        run_of(live.id(), &runs),
        "a live run's staging was removed: {runs:?}"
    );

    etl_tests::signal(&live, "INT").expect("kill");
    let output = exit_within(live, Duration::from_secs(5)).expect("exits within 5 s of SIGINT");
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(staged_runs(&out).is_empty(), "{:?}", staged_runs(&out));
    assert!(!out.join("purchase_orders").exists());
}

/// A batch killed (SIGKILL) while it reads the table's keys, after rows were deleted: nothing
/// of it is published (the files and the state stay the previous run's, byte for byte), and
/// the next run finds the same deletions and its readers equal PostgreSQL.
#[test]
fn a_batch_killed_mid_key_read_publishes_nothing_and_the_next_finds_the_deletions() {
    let db = demo_database("signal_kill_batch");
    let out = out_dir(&db.name);
    let sql = |statement: &str| etl_tests::postgres::psql(&db.url, statement).expect(statement);
    // Enough keys that their read outlasts the proxy's first 64 KB of replies.
    sql("INSERT INTO accounts (id, owner, balance) \
         SELECT i, 'more ' || i, i FROM generate_series(1001, 40000) i");
    let first = etl_demo(&db.url, &out, "accounts").output().expect("run");
    assert!(first.status.success(), "{}", text(&first));
    let before = published(&out, "accounts");

    sql("DELETE FROM accounts WHERE id % 1000 = 7; UPDATE accounts SET balance = 0 WHERE id = 1");
    let proxy = FaultyProxy::start(
        server_port(&db.url),
        Fault::StallRepliesAfterBytes(64 << 10),
    )
    .expect("proxy");
    let mut killed = etl_demo(&through(&db.url, &proxy), &out, "accounts")
        .spawn()
        .expect("start etl-demo");
    assert!(
        proxy.wait_stalled(Duration::from_secs(60)),
        "the batch never reached the stall"
    );
    killed.kill().expect("SIGKILL");
    killed.wait().expect("reaped");
    assert_eq!(published(&out, "accounts"), before, "nothing of the batch");

    let next = etl_demo(&db.url, &out, "accounts").output().expect("run");
    assert!(next.status.success(), "{}", text(&next));
    assert!(text(&next).contains("40 deleted"), "{}", text(&next));
    let verdict = etl_tests::python::latest_versions_equal_postgres(
        &db.url,
        &out.join("accounts"),
        "accounts",
        ("id", "id, owner, balance::text, updated_at"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(verdict.contains("equal: 39960 rows"), "{verdict}");
}
