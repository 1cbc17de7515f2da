//! What a run says while it runs: human lines on stderr by default, or, with
//! `--log-format json`, one JSON object per line for log collectors, each with the run id, the
//! table and an `event` name (`run_started`, `table_started`, `table_published`,
//! `table_failed`, `run_finished`, ...) beside the message. The engine's own events (progress,
//! schema warnings) go through the same subscriber.

use std::fmt::Display;
use std::sync::OnceLock;

use crate::cli::LogFormat;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();
static RUN_ID: OnceLock<String> = OnceLock::new();

/// Sets the format and installs the subscriber for the engine's events (`ETL_LOG` filters).
pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let _ = FORMAT.set(format);
    // A person at a terminal watches bars; a log gets a progress line per table every 10 s.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bars = format == LogFormat::Human && terminal;
    if bars {
        crate::progress::start_bars();
    }
    // Warnings and the progress lines; ETL_LOG=info or debug for more.
    let filter = EnvFilter::try_from_env("ETL_LOG").unwrap_or_else(|_| {
        EnvFilter::new(if bars {
            "warn,etl_app=info"
        } else {
            "warn,etl_runtime::progress=info,etl_app=info"
        })
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::progress::StderrAboveBars);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        // Colours only for a person at a terminal, not in a scheduler's log.
        LogFormat::Human => builder.with_ansi(terminal).init(),
    }
}

fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// The run's id, once it has one, for every later event.
pub fn set_run_id(run_id: &str) {
    let _ = RUN_ID.set(run_id.to_string());
}

fn run_id() -> &'static str {
    RUN_ID.get().map_or("", String::as_str)
}

/// An event of the run: a line for a person, or a JSON object.
pub fn info(event: &'static str, table: Option<&str>, message: impl Display) {
    if json() {
        tracing::info!(target: "etl_app", event, run_id = run_id(), table = table.unwrap_or_default(), "{message}");
    } else {
        let _ = crate::progress::write_stderr(format!("{message}\n").as_bytes());
    }
}

/// A warning about how etl-app was called; people read `warning: ...`.
pub fn warn(event: &'static str, message: impl Display) {
    if json() {
        tracing::warn!(target: "etl_app", event, run_id = run_id(), "{message}");
    } else {
        let _ = crate::progress::write_stderr(format!("warning: {message}\n").as_bytes());
    }
}

/// An error of the run; people read `error: ...`.
pub fn error(event: &'static str, table: Option<&str>, message: impl Display) {
    if json() {
        tracing::error!(target: "etl_app", event, run_id = run_id(), table = table.unwrap_or_default(), "{message}");
    } else {
        let _ = crate::progress::write_stderr(format!("error: {message}\n").as_bytes());
    }
}

/// A table's outcome with its numbers (JSON only: people read the summary table).
pub fn table_published(table: &str, rows: u64, bytes: u64, seconds: f64, location: &str) {
    if json() {
        tracing::info!(
            target: "etl_app",
            event = "table_published",
            run_id = run_id(),
            table,
            rows,
            bytes,
            seconds,
            location,
            "{table}: {rows} rows, {bytes} bytes in {seconds:.2} s"
        );
    }
}

/// Whether people get the summary table on stdout.
pub fn human() -> bool {
    !json()
}
