//! The binary as a scheduler sees it: exit statuses, messages, and what lands in the output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{demo_database, etl_app, out_dir, text};

/// `etl-app` as a new user has it: none of the demo's models, none of their own yet.
fn etl_app_without_models() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_etl-app"));
    command.env_remove("DATABASE_URL").env_remove("ETL_OUTPUT");
    command
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn without_a_database_it_says_how_to_set_one() {
    let output = etl_app().arg("run").output().expect("run etl-app");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(message.contains("cargo xtask demo"), "{message}");
}

#[test]
fn an_unreachable_database_fails_without_printing_the_password() {
    let output = etl_app()
        .args(["run", "--output"])
        .arg(out_dir("unreachable"))
        .env(
            "DATABASE_URL",
            "postgres://etl:hunter2-secret@127.0.0.1:1/prod",
        )
        .output()
        .expect("run etl-app");
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(!message.contains("hunter2"), "password leaked: {message}");
    assert!(
        message.contains("postgres://etl:***@127.0.0.1:1/prod"),
        "{message}"
    );
}

#[test]
fn list_shows_every_registered_table() {
    let output = etl_app().arg("list").output().expect("run etl-app");
    assert!(output.status.success());
    let listing = String::from_utf8_lossy(&output.stdout);
    for table in [
        "currencies",
        "notes",
        "purchase_orders",
        "shipments",
        "tax_rates",
    ] {
        assert!(listing.contains(table), "{listing}");
    }
    // Tasks are listed with their kind.
    assert!(
        listing.contains("purchase_orders_usd") && listing.contains("task"),
        "{listing}"
    );
    // For scripts: one JSON document.
    let json = etl_app()
        .args(["list", "--format", "json"])
        .output()
        .expect("run etl-app");
    assert!(json.status.success(), "{}", text(&json));
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let notes = listed
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == "notes"))
        .expect("notes listed");
    assert_eq!(notes["kind"], "table");
    assert_eq!(notes["primary_key"], serde_json::json!(["id"]));
    assert!(notes["columns"].as_array().is_some_and(|c| !c.is_empty()));
}

#[test]
fn help_teaches_the_commands() {
    let output = etl_app()
        .args(["run", "--help"])
        .output()
        .expect("run etl-app");
    let help = text(&output);
    for flag in [
        "--tables",
        "--output",
        "--database-url",
        "--compression",
        "DATABASE_URL",
    ] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
}

#[test]
fn run_exports_the_chosen_tables_and_nothing_else() {
    let db = demo_database("cli_run");
    let out = out_dir(&db.name);
    let output = etl_app()
        .args(["run", "--tables", "notes,currencies", "--output"])
        .arg(&out)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    let message = text(&output);
    assert!(output.status.success(), "{message}");
    // The tables asked for, and the run's report.
    assert_eq!(parquet_files(&out), ["_runs", "currencies", "notes"]);
    assert_eq!(
        parquet_files(&out.join("notes")),
        ["_manifest.json", "part-00000.parquet"]
    );
    // The report names table, rows and path.
    assert!(
        message.contains("notes") && message.contains("4000"),
        "{message}"
    );
    // Off a terminal: no bars, no terminal control sequences in the log.
    assert!(
        !message.contains("rows/s") && !message.contains('\x1b'),
        "{message:?}"
    );
}

#[test]
fn an_unknown_table_is_a_usage_error_listing_the_known_ones() {
    let db = demo_database("cli_unknown");
    let output = etl_app()
        .args(["run", "--tables", "invoices", "--output"])
        .arg(out_dir(&db.name))
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("invoices") && message.contains("purchase_orders"),
        "{message}"
    );
}

#[test]
fn a_failing_table_keeps_its_previous_export_and_fails_the_run() {
    let db = demo_database("cli_dropped");
    let out = out_dir(&db.name);
    let first = etl_app()
        .args(["run", "--output"])
        .arg(&out)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    assert!(first.status.success(), "{}", text(&first));
    let before = std::fs::read(out.join("notes/part-00000.parquet")).expect("first export");

    // A column the model reads is dropped: the run must fail for that table, name it, and
    // leave the previous export of it in place; other tables are still exported.
    etl_tests::postgres::psql(&db.url, "ALTER TABLE notes DROP COLUMN body").expect("drop");
    let second = etl_app()
        .args(["run", "--output"])
        .arg(&out)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    let message = text(&second);
    assert_eq!(second.status.code(), Some(1), "{message}");
    assert!(
        message.contains("table notes no longer matches its model: column body was dropped"),
        "{message}"
    );
    let after = std::fs::read(out.join("notes/part-00000.parquet")).expect("previous export");
    assert_eq!(before, after, "the previous export of notes is intact");
    assert!(message.contains("table(s) exported, 1 failed"), "{message}");
    assert!(!out.join(".etl-staging").exists(), "no staging left behind");
}

#[test]
fn check_lists_each_kind_of_drift() {
    let db = demo_database("cli_check");
    let check = || {
        etl_app()
            .arg("check")
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run etl-app")
    };
    let clean = check();
    assert!(clean.status.success(), "{}", text(&clean));

    etl_tests::postgres::psql(
        &db.url,
        "ALTER TABLE notes DROP COLUMN body; \
         ALTER TABLE notes ADD COLUMN priority integer; \
         ALTER TABLE purchase_orders ALTER COLUMN amount TYPE numeric(14,2); \
         ALTER TABLE purchase_orders ALTER COLUMN quantity TYPE bigint; \
         ALTER TABLE purchase_orders ALTER COLUMN created_at DROP NOT NULL; \
         UPDATE currencies SET symbol = coalesce(symbol, '?'); \
         ALTER TABLE currencies ALTER COLUMN symbol SET NOT NULL",
    )
    .expect("alter");
    let drifted = check();
    let message = text(&drifted);
    assert_eq!(drifted.status.code(), Some(1), "{message}");
    for expected in [
        "notes: column body was dropped",
        "notes: column priority (integer) was added",
        "purchase_orders: column amount is now numeric(14,2), the model says numeric(12,2)",
        "purchase_orders: column quantity is now bigint",
        "purchase_orders: column created_at now accepts NULL",
        "currencies: column symbol is now NOT NULL",
    ] {
        assert!(
            message.contains(expected),
            "`{expected}` missing from: {message}"
        );
    }
    // The same as one JSON document, with the same exit status.
    let json = etl_app()
        .args(["check", "--format", "json"])
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(report["differences"], 6, "{report}");
    let notes = report["tables"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["table"] == "notes"))
        .expect("notes");
    assert_eq!(notes["matches"], false);
    assert!(
        notes["differences"]
            .as_array()
            .is_some_and(|d| d
                .iter()
                .any(|d| d["difference"] == "column body was dropped"
                    && d["breaks_the_export"] == true)),
        "{notes}"
    );
}

/// A "database" that records whether anything connected to it: a listening socket nobody
/// answers on.
struct Unreachable {
    listener: std::net::TcpListener,
}

impl Unreachable {
    fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        Self { listener }
    }

    fn url(&self) -> String {
        let port = self.listener.local_addr().expect("address").port();
        format!("postgres://etl:s3cret@127.0.0.1:{port}/prod")
    }

    /// Whether a connection was attempted (it waits in the backlog until accepted).
    fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// Mistakes in how `run` is called are usage errors (exit 2) naming the flag, found before
/// any connection is attempted.
#[test]
fn a_bad_output_or_a_flag_that_does_not_apply_fails_before_connecting() {
    let cases: &[(&[&str], &str)] = &[
        (&["--output", "s3:/bad"], "--output `s3:/bad`"),
        (&["--output", "s3://"], "--output `s3://`"),
        (&["--output", "s3://Bad_Bucket/x"], "not an S3 bucket name"),
        (
            &["--sse", "AES256", "--output", "./x"],
            "--sse applies to S3 output only",
        ),
        (
            &["--glue-database", "analytics", "--output", "./x"],
            "--glue-database applies to S3 output only",
        ),
        (
            &["--staging-dir", "/tmp/s", "--output", "./x"],
            "--staging-dir applies to S3 output only",
        ),
        (
            &["--output", "s3://bucket/p", "--s3-part-size", "1MB"],
            "--s3-part-size",
        ),
        (
            &["--tables", "no_such_table", "--output", "./x"],
            "no_such_table",
        ),
        (
            &["--pushgateway", "https://pgw:9091", "--output", "./x"],
            "--pushgateway",
        ),
        // Sizes that would reach parquet as 0 (which panics there) stop at the command line.
        (
            &["--row-group-rows", "0", "--output", "./x"],
            "--row-group-rows",
        ),
        (
            &["--row-group-bytes", "0", "--output", "./x"],
            "--row-group-bytes",
        ),
    ];
    for (args, expected) in cases {
        let database = Unreachable::new();
        let output = etl_app()
            .arg("run")
            .args(*args)
            .env("DATABASE_URL", database.url())
            .output()
            .expect("run etl-app");
        let message = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!message.contains("s3cret"), "{args:?}: {message}");
        assert!(
            !database.was_contacted(),
            "{args:?}: a connection was attempted before the arguments were checked"
        );
    }
    // A shard publishes nothing of its own: what the coordinator publishes is refused, not
    // silently ignored, and so is a shard without its index.
    let shard_cases: &[(&[&str], &str)] = &[
        (&["--shard", "0", "--report", "r.json"], "--report"),
        (
            &["--shard", "0", "--glue-database", "lake"],
            "--glue-database",
        ),
        (
            &["--shard", "0", "--metrics-file", "m.prom"],
            "--metrics-file",
        ),
        (&[], "needs its index"),
    ];
    for (args, expected) in shard_cases {
        let database = Unreachable::new();
        let output = etl_app()
            .args(["shard", "--run-name", "nightly-1", "--output", "./x"])
            .args(*args)
            .env("DATABASE_URL", database.url())
            .env_remove("JOB_COMPLETION_INDEX")
            .output()
            .expect("run etl-app");
        let message = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!database.was_contacted(), "{args:?}");
    }
}

/// The check above can fail: a correct command line does try to connect (here to a server
/// that hangs up at once, so the run fails at run time: exit 1).
#[test]
fn a_correct_command_line_does_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let hang_up = std::thread::spawn(move || listener.accept().is_ok());
    let output = etl_app()
        .args(["run", "--output"])
        .arg(out_dir("connects"))
        .env(
            "DATABASE_URL",
            format!("postgres://etl:s3cret@127.0.0.1:{port}/prod"),
        )
        .output()
        .expect("run etl-app");
    assert!(hang_up.join().expect("listener thread"), "no connection");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}

#[test]
fn a_malformed_database_url_is_a_usage_error_without_its_password() {
    let output = etl_app()
        .args(["run", "--output", "./x"])
        .env("DATABASE_URL", "postgres://etl:s3cret@db:notaport/prod")
        .output()
        .expect("run etl-app");
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

/// Before a user generates any model, `etl-app` says what to do, and nothing of the demo's is
/// in it to fail against their database.
#[test]
fn without_models_etl_app_says_how_to_generate_them() {
    let listing = etl_app_without_models()
        .arg("list")
        .output()
        .expect("run etl-app");
    assert!(listing.status.success());
    let listing = text(&listing);
    assert!(listing.contains("cargo xtask gen"), "{listing}");
    assert!(!listing.contains("purchase_orders"), "{listing}");

    let run = etl_app_without_models()
        .args(["run", "--output", "./x"])
        .env("DATABASE_URL", "postgres://etl@127.0.0.1:1/prod")
        .output()
        .expect("run etl-app");
    let message = text(&run);
    assert_eq!(run.status.code(), Some(2), "{message}");
    assert!(message.contains("cargo xtask gen --table"), "{message}");
}

/// A model whose table is gone says so, and how to remove the model.
#[test]
fn a_model_whose_table_is_gone_says_how_to_remove_it() {
    let db = demo_database("cli_table_gone");
    etl_tests::postgres::psql(&db.url, "DROP TABLE notes").expect("drop");
    let check = etl_app()
        .args(["check", "--tables", "notes"])
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    let message = text(&check);
    assert_eq!(check.status.code(), Some(1), "{message}");
    assert!(
        message.contains("notes: the table does not exist"),
        "{message}"
    );
    assert!(
        message.contains("cargo xtask gen --remove notes"),
        "{message}"
    );

    let run = etl_app()
        .args(["run", "--tables", "notes", "--output"])
        .arg(out_dir(&db.name))
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    let message = text(&run);
    assert_eq!(run.status.code(), Some(1), "{message}");
    assert!(
        message.contains("cargo xtask gen --remove notes"),
        "{message}"
    );
    assert!(!message.contains("gen --table notes"), "{message}");
}

/// The run report of a run with one good and one failing table: written to `--report` and
/// beside the data, agreeing with the exit status and with PostgreSQL.
#[test]
fn the_run_report_tells_each_tables_outcome() {
    let db = demo_database("cli_report");
    etl_tests::postgres::psql(
        &db.url,
        "UPDATE notes SET created_at = 'infinity' WHERE id = 7",
    )
    .expect("update");
    let out = out_dir(&db.name);
    let report_file = out.with_extension("report.json");
    let output = etl_app()
        .args(["run", "--tables", "notes,currencies", "--output"])
        .arg(&out)
        .arg("--report")
        .arg(&report_file)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");

    let read = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).expect("a report")).expect("JSON")
    };
    let report = read(&report_file);
    assert_eq!(report["report_version"], 1);
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["status"], "failed");
    assert!(report["signal"].is_null());
    let run_id = report["run_id"].as_str().expect("a run id");
    assert!(report["snapshot_taken_at"].is_string());
    let tables = report["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 2, "{report:#}");
    let table = |name: &str| {
        tables
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {report:#}"))
    };
    let currencies = table("currencies");
    let count =
        etl_tests::postgres::psql(&db.url, "SELECT count(*) FROM currencies").expect("count");
    assert_eq!(currencies["status"], "published");
    assert_eq!(currencies["kind"], "table");
    assert_eq!(currencies["mode"], "full");
    assert_eq!(currencies["rows"].to_string(), count);
    assert_eq!(currencies["files"][0], "part-00000.parquet");
    assert!(currencies["error"].is_null());
    let notes = table("notes");
    assert_eq!(notes["status"], "failed");
    assert_eq!(notes["error"]["column"], "created_at");
    assert_eq!(notes["error"]["key"], "id=7");
    let error = notes["error"]["message"].as_str().expect("message");
    assert!(error.contains("infinity"), "{error}");

    // The same report beside the data.
    let beside = read(&out.join("_runs").join(format!("{run_id}.json")));
    assert_eq!(beside["tables"], report["tables"]);
    assert_eq!(beside["exit_code"], 1);
}

/// The value of `name` for `table` in a text exposition (`name{...table="x"...} value`).
fn sample(metrics: &str, name: &str, table: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!("{name}{{"))
                && l.contains(&format!("table=\"{table}\""))
                && l.contains("job=\"etl\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Metrics of a run with one good and one failing table, pushed to a real Pushgateway and
/// written for the textfile collector; a later failure keeps the last success time.
#[test]
fn metrics_reach_the_pushgateway_and_the_textfile_collector() {
    let gateway = etl_tests::pushgateway::Pushgateway::start().expect("pushgateway");
    let db = demo_database("cli_metrics");
    etl_tests::postgres::psql(
        &db.url,
        "UPDATE notes SET created_at = 'infinity' WHERE id = 7",
    )
    .expect("update");
    let out = out_dir(&db.name);
    let textfile = out.with_extension("prom");
    let run = || {
        etl_app()
            .args(["run", "--tables", "notes,currencies", "--output"])
            .arg(&out)
            .args(["--pushgateway", &gateway.url(), "--metrics-file"])
            .arg(&textfile)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run etl-app")
    };
    let first = run();
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let count: f64 = etl_tests::postgres::psql(&db.url, "SELECT count(*) FROM currencies")
        .expect("count")
        .parse()
        .expect("a number");

    for (what, metrics) in [
        ("pushgateway", gateway.get("/metrics").expect("/metrics")),
        (
            "textfile",
            std::fs::read_to_string(&textfile).expect("textfile"),
        ),
    ] {
        assert_eq!(
            sample(&metrics, "etl_table_rows", "currencies"),
            Some(count),
            "{what}:\n{metrics}"
        );
        assert_eq!(
            sample(&metrics, "etl_table_success", "currencies"),
            Some(1.0),
            "{what}"
        );
        assert_eq!(
            sample(&metrics, "etl_table_success", "notes"),
            Some(0.0),
            "{what}"
        );
        assert!(
            sample(&metrics, "etl_table_bytes", "currencies").is_some_and(|b| b > 0.0),
            "{what}"
        );
        assert!(
            sample(&metrics, "etl_last_success_timestamp_seconds", "currencies").is_some(),
            "{what}"
        );
        assert_eq!(
            sample(&metrics, "etl_last_success_timestamp_seconds", "notes"),
            None,
            "{what}"
        );
    }
    let first_success = sample(
        &gateway.get("/metrics").expect("/metrics"),
        "etl_last_success_timestamp_seconds",
        "currencies",
    );

    // currencies fails the next time: its success is 0, its last success time stays.
    etl_tests::postgres::psql(&db.url, "ALTER TABLE currencies DROP COLUMN updated_at")
        .expect("drop");
    let second = run();
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let metrics = gateway.get("/metrics").expect("/metrics");
    assert_eq!(
        sample(&metrics, "etl_table_success", "currencies"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "etl_last_success_timestamp_seconds", "currencies"),
        first_success,
        "{metrics}"
    );
}

/// `--log-format json`: every line on stderr is a JSON object, and the run's events carry the
/// run id, the table and the event's name.
#[test]
fn json_logs_carry_run_id_table_and_event() {
    let db = demo_database("cli_json_logs");
    let out = out_dir(&db.name);
    let output = etl_app()
        .args([
            "run",
            "--log-format",
            "json",
            "--tables",
            "notes,currencies",
            "--output",
        ])
        .arg(&out)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    assert!(output.status.success(), "{}", text(&output));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let run_ids: std::collections::BTreeSet<&str> =
        events.iter().filter_map(|e| e["run_id"].as_str()).collect();
    assert_eq!(run_ids.len(), 1, "one run id: {events:#?}");
    let run_id = run_ids.into_iter().next().expect("a run id");
    assert!(out.join("_runs").join(format!("{run_id}.json")).is_file());
    let find = |event: &str, table: &str| {
        events
            .iter()
            .find(|e| e["event"] == event && e["table"] == table)
            .unwrap_or_else(|| panic!("no {event} for {table}: {events:#?}"))
    };
    find("run_started", "");
    find("table_started", "notes");
    let published = find("table_published", "notes");
    assert_eq!(published["rows"], 4000);
    assert_eq!(published["level"], "INFO");
    find("table_published", "currencies");
    find("run_finished", "");
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "no summary table on stdout"
    );
}

/// On a terminal a person sees a bar per table (rows against PostgreSQL's estimate, rows/s,
/// time left), and no periodic progress lines; the run is run under a pseudo-terminal by
/// util-linux's `script`.
#[test]
fn a_terminal_shows_a_progress_bar_per_table() {
    let db = demo_database("cli_progress_bar");
    // The estimate the bar's length comes from.
    etl_tests::postgres::psql(&db.url, "ANALYZE notes").expect("analyze");
    let out = out_dir(&db.name);
    let command = format!(
        "{} run --tables notes,currencies --output {}",
        env!("CARGO_BIN_EXE_etl-demo"),
        out.display()
    );
    let output = Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--flush",
            "--command",
            &command,
            "/dev/null",
        ])
        .env("DATABASE_URL", &db.url)
        .env("TERM", "xterm")
        .env_remove("ETL_OUTPUT")
        .env_remove("ETL_LOG")
        .output()
        .expect("run etl-app under script(1)");
    let screen = text(&output);
    assert!(output.status.success(), "{screen}");
    // The bar of an analyzed table: the rows read against the estimate, the rate, time left.
    let bar = screen
        .split(['\r', '\n'])
        .find(|line| line.starts_with("notes ") && line.contains("/4,000 rows"))
        .unwrap_or_else(|| panic!("no bar for notes in: {screen:?}"));
    assert!(bar.contains("rows/s") && bar.contains("ETA"), "{bar:?}");
    // Once read, the bar gives way to a line that stays.
    assert!(
        screen.contains("notes                        4000 rows read in "),
        "{screen:?}"
    );
    // Then the summary table.
    assert!(
        screen.contains("table") && screen.contains("currencies"),
        "{screen:?}"
    );
}

fn assert_matches_postgres(db: &etl_tests::TestDb, dir: &Path, tables: &str) {
    if let Err(e) = etl_tests::python::compare_with_postgres(&db.url, dir, tables) {
        panic!("{e}");
    }
}

/// Every file under `dir` with its bytes, for "nothing changed" assertions.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(tree(&path));
        } else {
            let bytes = std::fs::read(&path).expect("read");
            files.push((path, bytes));
        }
    }
    files.sort();
    files
}

/// A directory output keeps the exports that runs replaced, as `--keep-versions` says (2 by
/// default): each in `.etl-versions/<table>/`, hidden from readers of `<table>/`, whole and
/// unchanged, so that a reader that started on one can finish; the oldest go.
#[test]
fn a_directory_keeps_the_exports_replaced_as_keep_versions_says() {
    let db = demo_database("cli_versions");
    let out = out_dir(&db.name);
    let kept = out.join(".etl-versions/notes");
    let relative = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        tree(dir)
            .into_iter()
            .map(|(path, bytes)| (path.strip_prefix(dir).expect("under").to_path_buf(), bytes))
            .collect()
    };
    let versions = || -> Vec<Vec<(PathBuf, Vec<u8>)>> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&kept)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs.iter().map(|dir| relative(dir)).collect()
    };
    // Each run changes a row first, so that every export differs from the one before; it
    // returns the export published and the versions kept.
    let run = |keep: &str| {
        etl_tests::postgres::psql(
            &db.url,
            "UPDATE notes SET title = title || '+' WHERE id = 1",
        )
        .expect("update");
        let output = etl_app()
            .args([
                "run",
                "--tables",
                "notes",
                "--keep-versions",
                keep,
                "--output",
            ])
            .arg(&out)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run etl-app");
        assert!(output.status.success(), "{}", text(&output));
        (relative(&out.join("notes")), versions())
    };
    let (first, kept) = run("2");
    assert!(kept.is_empty(), "nothing replaced yet");
    let (second, kept) = run("2");
    assert_eq!(kept, [first], "the first export, kept whole");
    let (third, kept) = run("2");
    assert_eq!(
        kept,
        std::slice::from_ref(&second),
        "the second; the first is gone"
    );
    let (_, kept) = run("3");
    assert_eq!(
        kept,
        [second, third],
        "with 3: the two before the current one"
    );
    let (_, kept) = run("1");
    assert!(kept.is_empty(), "with 1: none");
    assert_eq!(parquet_files(&out), [".etl-versions", "_runs", "notes"]);
    assert_matches_postgres(&db, &out, "notes");
}

/// `shipments` is partitioned by `region, shipped_at:day`: Hive directories with escaped
/// values and NULL keys in `__HIVE_DEFAULT_PARTITION__`, days in UTC, read back equal by
/// pyarrow and DuckDB with Hive partitioning. A new export replaces the whole tree at once (a
/// partition that no longer has rows is gone); a failed one leaves it untouched.
#[test]
fn a_partitioned_table_is_published_whole_in_hive_directories() {
    let db = demo_database("cli_partitions");
    let out = out_dir(&db.name);
    let run = || {
        etl_app()
            .args(["run", "--tables", "shipments", "--output"])
            .arg(&out)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("run etl-app")
    };
    let first = run();
    assert!(first.status.success(), "{}", text(&first));
    let table = out.join("shipments");
    for dir in [
        "region=eu-west/shipped_at_day=2019-03-01",
        // 2019-03-01 23:30 UTC + 37 days 5 hours: the next morning in UTC.
        "region=us%2Feast/shipped_at_day=2019-04-08",
        "region=ap%3Asouth/shipped_at_day=__HIVE_DEFAULT_PARTITION__",
        "region=sa%3Dnorth 50%25/shipped_at_day=2019-06-21",
        "region=__HIVE_DEFAULT_PARTITION__/shipped_at_day=2019-03-01",
    ] {
        assert!(
            table.join(dir).join("part-00000.parquet").is_file(),
            "{dir}"
        );
    }
    assert!(
        text(&first).contains("partitions"),
        "the summary counts partitions: {}",
        text(&first)
    );
    assert!(
        text(&first).contains("19 row(s) have '' in partition key region"),
        "an empty key that readers will see as NULL is said: {}",
        text(&first)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(table.join("_manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["partition_keys"][1]["name"], "shipped_at_day");
    assert_eq!(manifest["partition_keys"][1]["transform"], "day");
    assert_matches_postgres(&db, &out, "shipments");

    etl_tests::postgres::psql(&db.url, "DELETE FROM shipments WHERE region = 'eu-west'")
        .expect("delete");
    let second = run();
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        !table.join("region=eu-west").exists(),
        "a partition without rows is gone"
    );
    assert_matches_postgres(&db, &out, "shipments");

    let before = tree(&table);
    etl_tests::postgres::psql(&db.url, "ALTER TABLE shipments DROP COLUMN weight_kg")
        .expect("drop");
    let failed = run();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert_eq!(tree(&table), before, "the previous export is untouched");
}
