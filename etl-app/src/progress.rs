//! Progress a person can read: on a terminal, a live bar per table being read (rows, rows/s,
//! and the time left from PostgreSQL's estimate of the table's size), drawn on stderr. Lines
//! written meanwhile (the run's events, warnings) are printed above the bars. Off a terminal,
//! or with `--log-format json`, there are no bars: the engine's periodic progress lines say
//! the same in a log.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use etl_runtime::run::progress::{Progress, ProgressObserver, TableProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Starts drawing bars on stderr; call once, before the first line is logged.
pub fn start_bars() {
    let _ = BARS.set(MultiProgress::with_draw_target(
        ProgressDrawTarget::stderr_with_hz(10),
    ));
}

/// What the run's exports report their reads to: the bars, if they are drawn.
pub fn observer() -> ProgressObserver {
    match BARS.get() {
        Some(bars) => ProgressObserver::new(Arc::new(Bars(bars.clone()))),
        None => ProgressObserver::default(),
    }
}

/// Whether bars are drawn (a person at a terminal).
pub fn drawing() -> bool {
    BARS.get().is_some()
}

/// Runs `print` (the summary table on stdout) with the bars out of the way.
pub fn above_bars<R>(print: impl FnOnce() -> R) -> R {
    match BARS.get() {
        Some(bars) => bars.suspend(print),
        None => print(),
    }
}

/// Writes `text` to stderr, above the bars when they are drawn.
pub fn write_stderr(text: &[u8]) -> std::io::Result<()> {
    let write = || std::io::stderr().lock().write_all(text);
    match BARS.get() {
        Some(bars) => bars.suspend(write),
        None => write(),
    }
}

/// stderr for the log subscriber: each event is written whole, above the bars.
pub struct StderrAboveBars;

impl Write for StderrAboveBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr(buf).map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

struct Bars(MultiProgress);

impl Progress for Bars {
    fn table_started(&self, table: &str, estimated_rows: Option<u64>) -> Box<dyn TableProgress> {
        // Without an estimate (a table never analyzed) a spinner still shows rows and rate.
        let (bar, template) = match estimated_rows {
            Some(rows) => (
                ProgressBar::new(rows.max(1)),
                "{prefix:<28} [{bar:30}] {human_pos:>11}/{human_len} rows  {rate}  ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{prefix:<28} {spinner} {human_pos:>11} rows  {rate}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
            .with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:>9.0} rows/s", state.per_sec());
                },
            );
        let bar = self
            .0
            .add(bar.with_style(style).with_prefix(table.to_string()));
        bar.enable_steady_tick(Duration::from_millis(200));
        Box::new(TableBar {
            bar,
            table: table.to_string(),
        })
    }
}

struct TableBar {
    bar: ProgressBar,
    table: String,
}

impl TableProgress for TableBar {
    fn rows_read(&self, rows: u64) {
        self.bar.set_position(rows);
    }

    fn finished(&self, rows: u64) {
        // The bar gives way to one line that stays: what was read, and how fast.
        let seconds = self.bar.elapsed().as_secs_f64();
        self.bar.finish_and_clear();
        let _ = write_stderr(
            format!(
                "{:<28} {rows} rows read in {seconds:.2} s ({:.0} rows/s)\n",
                self.table,
                rows as f64 / seconds.max(1e-6)
            )
            .as_bytes(),
        );
    }
}

impl Drop for TableBar {
    fn drop(&mut self) {
        // A read that failed or was stopped leaves no bar; its error is reported below.
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
