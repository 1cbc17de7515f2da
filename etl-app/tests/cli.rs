//! The binary as a scheduler sees it: exit statuses, messages, and what lands in the output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn etl_app() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_etl-app"));
    command.env_remove("DATABASE_URL").env_remove("ETL_OUTPUT");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A database with the demo tables the committed models were generated from.
fn demo_database(label: &str) -> etl_tests::TestDb {
    let db = etl_tests::fresh_database(label).expect("database");
    let sql = etl_tests::workspace_root().join("xtask/sql/demo.sql");
    etl_tests::postgres::psql_file(&db.url, &sql, &[]).expect("demo tables");
    db
}

fn out_dir(name: &str) -> PathBuf {
    let dir = etl_tests::target_dir().join("test-out").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
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
    for table in ["currencies", "notes", "purchase_orders", "tax_rates"] {
        assert!(listing.contains(table), "{listing}");
    }
    // Tasks are listed with their kind.
    assert!(
        listing.contains("purchase_orders_usd") && listing.contains("task"),
        "{listing}"
    );
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
    assert_eq!(parquet_files(&out), ["currencies", "notes"]);
    assert_eq!(
        parquet_files(&out.join("notes")),
        ["_manifest.json", "part-00000.parquet"]
    );
    // The report names table, rows and path.
    assert!(
        message.contains("notes") && message.contains("4000"),
        "{message}"
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
}
