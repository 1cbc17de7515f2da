//! The test harness, shared by the integration tests and by `cargo xtask` (demo, ci, bench):
//! a real, throwaway PostgreSQL server and the independent Parquet readers (pyarrow, DuckDB).
//!
//! It depends on `std` only, so that `xtask` builds it in seconds.

pub mod faulty_proxy;
pub mod garage;
pub mod moto;
pub mod postgres;
pub mod pushgateway;
pub mod python;

pub use postgres::{
    PgServer, TestDb, database_from_file, database_with, demo_database, fresh_database, server,
    with_database,
};
pub use python::python;

use std::path::PathBuf;

/// The workspace's `target/` directory (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// The root of the workspace this crate belongs to.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// A harness failure: what went wrong and what to do about it.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

pub type Result<T> = std::result::Result<T, HarnessError>;

fn error(message: impl Into<String>) -> HarnessError {
    HarnessError(message.into())
}

/// Where tools built or installed for the tests are cached, outside the clone
/// (`ETL_CACHE_DIR`, or `~/.cache/etl-toolkit`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ETL_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("etl-toolkit")
}

/// A stable hash for cache keys and shared names (std's hasher is randomly seeded).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `label` as a name part PostgreSQL and S3 both take: ASCII letters and digits in lower
/// case, anything else as `separator`, at most `max` characters.
pub(crate) fn name_part(label: &str, separator: char, max: usize) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                separator
            }
        })
        .take(max)
        .collect()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| error(format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| error(format!("cannot find a free port: {e}")))
}

/// Sends `signal` (a name such as `TERM`, `INT`, `STOP`, `CONT`) to a child process; whether
/// `kill` accepted it. (The shell's `kill`: every machine has a shell, not every one procps.)
pub fn signal(child: &std::process::Child, signal: &str) -> Result<()> {
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{signal} {}", child.id())])
        .status()
        .map_err(|e| error(format!("cannot run kill -{signal}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(error(format!(
            "kill -{signal} {} failed: {status}",
            child.id()
        )))
    }
}

/// A number unique within this process, for directory names.
pub fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Installs a Debian package with apt-get (as root, which CI is), updating the package lists
/// first if the package is not found; whether it worked.
pub fn apt_install(package: &str) -> bool {
    let install = || {
        std::process::Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    install()
        || (std::process::Command::new("apt-get")
            .arg("update")
            .status()
            .is_ok_and(|s| s.success())
            && install())
}

/// Starts `program` with `args` under a small shell that stops it (SIGINT, then waits for it)
/// when the returned pipe closes, which the kernel does when this process exits, however it
/// exits. Output goes to `log`. `as_postgres` runs it as the `postgres` OS user (PostgreSQL
/// refuses to run as root).
pub(crate) fn spawn_supervised(
    as_postgres: bool,
    log: &std::path::Path,
    program: &std::path::Path,
    args: &[std::ffi::OsString],
    envs: &[(&str, &str)],
) -> Result<(std::process::Child, std::process::ChildStdin)> {
    use std::process::{Command, Stdio};
    const SCRIPT: &str = r#"
        log="$1"; shift
        "$@" >>"$log" 2>&1 &
        pid=$!
        trap 'kill -INT $pid 2>/dev/null; wait $pid; exit 0' INT TERM HUP
        cat >/dev/null
        kill -INT $pid 2>/dev/null
        wait $pid
    "#;
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "/bin/sh"]);
        c
    } else {
        Command::new("/bin/sh")
    };
    let mut child = command
        .args(["-c", SCRIPT, "supervisor"])
        .arg(log)
        .arg(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| error(format!("cannot start {}: {e}", program.display())))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| error("no pipe to the supervisor"))?;
    Ok((child, stdin))
}

/// Removes the per-process directories (`<pid>` or `<pid>-<n>`) of processes that no longer
/// exist, which a killed test run leaves behind.
pub(crate) fn remove_stale(harness: &std::path::Path) {
    for entry in std::fs::read_dir(harness).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// One plain HTTP exchange with a loopback server (moto, the Pushgateway): sends `request`
/// whole and returns the whole answer, status line first.
pub(crate) fn http_exchange(server: &str, port: u16, request: &str) -> Result<String> {
    use std::io::{Read, Write};
    let fail = |e: std::io::Error| error(format!("{server}: {e}"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(fail)?;
    Ok(response)
}

/// What GNU time says of one run: its output, its peak resident set size in KiB (the kernel's
/// high-water mark for that one process, not a sample), and its user + system CPU seconds.
pub struct Timed {
    pub output: std::process::Output,
    pub peak_rss_kib: u64,
    pub cpu_seconds: f64,
}

/// Runs `command` to its end under GNU time (Debian's `time`, installed when missing): the one
/// place the tests and the bench measure a process's memory and CPU.
pub fn run_timed(command: &std::process::Command) -> Result<Timed> {
    const TIME: &str = "/usr/bin/time";
    if !std::path::Path::new(TIME).exists() && !apt_install("time") {
        return Err(error(
            "GNU time is missing and apt-get could not install it",
        ));
    }
    let report =
        std::env::temp_dir().join(format!("etl-timed-{}-{}", std::process::id(), unique()));
    let mut timed = std::process::Command::new(TIME);
    timed
        .args(["--format", "%M %U %S", "--output"])
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    let output = timed
        .output()
        .map_err(|e| error(format!("cannot run {TIME}: {e}")))?;
    let text = std::fs::read_to_string(&report)
        .map_err(|e| error(format!("{TIME} wrote no report: {e}")))?;
    let _ = std::fs::remove_file(&report);
    // A command that failed gets a first line "Command exited with non-zero status N".
    let fields: Vec<&str> = text
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let number = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    let (Some(peak), Some(user), Some(system)) = (number(0), number(1), number(2)) else {
        return Err(error(format!(
            "{TIME}'s report is not `%M %U %S`: {text:?}"
        )));
    };
    Ok(Timed {
        output,
        peak_rss_kib: peak as u64,
        cpu_seconds: user + system,
    })
}

/// The file `name` in a directory of PATH, if there is one.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
