//! The independent Parquet readers: a Python virtual environment with pinned pyarrow, DuckDB
//! and psycopg, created once and cached outside the clone (`~/.cache/etl-toolkit/`).

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::{Result, cache_dir, error};

/// Pinned so that a check means the same thing on every machine.
pub const REQUIREMENTS: &[&str] = &[
    "pyarrow==26.0.1",
    "duckdb==2.0.1",
    "psycopg[binary]==3.3.9",
    // The Glue API server of the S3/Glue tests (moto_server).
    "moto[server]==5.2.5",
];

/// The peers `cargo xtask bench` measures beside us, in a venv of their own: DuckDB's
/// postgres scanner, from PyPI (the extension ships in its wheel; nothing is downloaded at run
/// time).
pub const BENCH_PEERS: &[&str] = &["duckdb==1.5.5", "duckdb-extension-postgres-scanner==1.5.5"];

/// Spark, the third independent reader (a JVM engine, as Athena/Trino and EMR are), in a venv
/// of its own; it needs a Java runtime ([`java`]).
pub const SPARK: &[&str] = &["pyspark==3.5.7", "psycopg[binary]==3.3.9"];

/// The venv's Python if it was already created (by `cargo xtask ci` or a test).
pub fn existing() -> Option<PathBuf> {
    let venv = venv_dir(REQUIREMENTS);
    venv.join(".ready")
        .is_file()
        .then(|| venv.join("bin").join("python"))
}

fn venv_dir(requirements: &[&str]) -> PathBuf {
    let key = requirements.join(" ");
    cache_dir().join(format!("venv-{:016x}", crate::fnv1a(key.as_bytes())))
}

/// The readers' venv's Python, creating the venv first if needed.
pub fn python() -> Result<PathBuf> {
    venv(REQUIREMENTS)
}

/// The Python of a venv holding `requirements`, created once and cached. Safe to call from
/// several processes at once: creation happens under a file lock.
pub fn venv(requirements: &[&str]) -> Result<PathBuf> {
    let key = requirements.join(" ");
    let venv = venv_dir(requirements);
    let python = venv.join("bin").join("python");
    let ready = venv.join(".ready");
    if ready.is_file() {
        return Ok(python);
    }
    fs::create_dir_all(cache_dir())
        .map_err(|e| error(format!("cannot create {}: {e}", cache_dir().display())))?;
    let lock_path = cache_dir().join("venv.lock");
    let lock = fs::File::create(&lock_path)
        .map_err(|e| error(format!("cannot create {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| error(format!("cannot lock {}: {e}", lock_path.display())))?;
    if ready.is_file() {
        return Ok(python);
    }
    eprintln!(
        "creating the Python readers' venv at {} (once)",
        venv.display()
    );
    let _ = fs::remove_dir_all(&venv);
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(requirements),
        "pip install",
    )?;
    fs::write(&ready, key).map_err(|e| error(format!("cannot write {}: {e}", ready.display())))?;
    Ok(python)
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().map_err(|e| {
        error(format!(
            "cannot run {what} ({e}); install Python 3 with venv (Debian: apt-get install python3-venv)"
        ))
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(error(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// An incremental table's latest versions, through DuckDB and pyarrow
/// (`tests/interop/latest_versions.py`): `table_dir` holds the full export and its batches; each
/// `key`'s version of the largest `_etl_batch`, unless a deletion, must equal PostgreSQL's row,
/// for the `select` list, and no other key may be current.
pub fn latest_versions_equal_postgres(
    url: &str,
    table_dir: &std::path::Path,
    table: &str,
    (key, select): (&str, &str),
) -> std::result::Result<String, String> {
    let mut args = vec!["--dsn".into(), url.into(), "--dir".into(), table_dir.into()];
    for (flag, value) in [("--table", table), ("--key", key), ("--select", select)] {
        args.extend([flag.into(), value.into()]);
    }
    run_reader("latest_versions.py", &args)
        .map_err(|report| format!("latest versions differ from PostgreSQL:\n{report}"))
}

/// Compares the export in `dir` with PostgreSQL, value for value, through pyarrow and DuckDB
/// (`tests/interop/compare.py`, which reads partitions and S3 versions as their readers do);
/// `tables` comma-separated. The readers' report, or why they disagree.
pub fn compare_with_postgres(
    url: &str,
    dir: &std::path::Path,
    tables: &str,
) -> std::result::Result<String, String> {
    let args = [
        "--dsn".into(),
        url.into(),
        "--dir".into(),
        dir.into(),
        "--tables".into(),
        tables.into(),
    ];
    run_reader("compare.py", &args)
        .map_err(|report| format!("pyarrow/DuckDB disagree with PostgreSQL:\n{report}"))
}

/// Reads the export in `dir` with Spark (`tests/interop/spark_read.py`, hive partition
/// discovery) and compares it with PostgreSQL value for value. `tables`: `name:key` or, for a
/// table with incremental batches, `name:key:cursor` (the latest version of each key).
pub fn spark_equals_postgres(
    url: &str,
    dir: &std::path::Path,
    tables: &[&str],
) -> std::result::Result<String, String> {
    let python = venv(SPARK).map_err(|e| format!("Spark: {e}"))?;
    let java = java().map_err(|e| format!("Spark: {e}"))?;
    let mut args: Vec<std::ffi::OsString> =
        vec!["--dsn".into(), url.into(), "--dir".into(), dir.into()];
    for table in tables {
        args.extend(["--table".into(), (*table).into()]);
    }
    let mut command = Command::new(python);
    command.env("JAVA_HOME", java);
    run_script(command, "spark_read.py", &args)
        .map_err(|report| format!("Spark disagrees with PostgreSQL:\n{report}"))
}

/// A Java runtime's home for Spark: the one `java` on PATH belongs to, or Debian's
/// openjdk-17-jre-headless, installed with apt-get when there is none (as root, which CI is).
pub fn java() -> Result<PathBuf> {
    let home_of = |java: PathBuf| {
        fs::canonicalize(java)
            .ok()
            .and_then(|real| real.parent()?.parent().map(PathBuf::from))
    };
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("java"))
                .find(|java| java.is_file())
        })
    };
    if let Some(home) = on_path().and_then(home_of) {
        return Ok(home);
    }
    eprintln!("installing Debian's openjdk-17-jre-headless for Spark (once)");
    let installed = crate::apt_install("openjdk-17-jre-headless");
    match on_path().and_then(home_of) {
        Some(home) if installed || home.is_dir() => Ok(home),
        _ => Err(error(
            "no Java runtime for Spark and apt-get could not install one \
             (as root: apt-get install openjdk-17-jre-headless)",
        )),
    }
}

/// Runs `tests/interop/<script>` with `args` in the readers' venv: its report, or (Err) its
/// report when it fails.
fn run_reader(script: &str, args: &[std::ffi::OsString]) -> std::result::Result<String, String> {
    let python = python().map_err(|e| format!("the Python readers: {e}"))?;
    run_script(Command::new(python), script, args)
}

/// Runs `tests/interop/<script>` with `args` by `python` (a venv's, with its environment): its
/// report, or (Err) its report when it fails.
fn run_script(
    mut python: Command,
    script: &str,
    args: &[std::ffi::OsString],
) -> std::result::Result<String, String> {
    let output = python
        .arg(crate::workspace_root().join("tests/interop").join(script))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}
