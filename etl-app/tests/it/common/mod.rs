//! What the command-line tests share: the demo binary, its output as text, a database with the
//! demo's tables, a fresh output directory.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The command line over the demo's models and tasks (`etl-demo`, the same library as
/// `etl-app`).
pub fn etl_app() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_etl-demo"));
    command.env_remove("DATABASE_URL").env_remove("ETL_OUTPUT");
    command
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A database with the demo tables the committed models were generated from.
pub fn demo_database(label: &str) -> etl_tests::TestDb {
    etl_tests::demo_database(label).expect("a database with the demo tables")
}

/// An empty `target/test-out/<name>`.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = etl_tests::target_dir().join("test-out").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
