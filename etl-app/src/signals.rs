//! SIGTERM and SIGINT, as schedulers send them (a deadline, an eviction, a new deploy) and as a
//! person at a terminal does: the first cancels the run cleanly (reads stop, staged files are
//! removed, multipart uploads aborted, nothing new is published) and the process exits with the
//! shell's code for the signal (143, 130); a second exits at once.

use std::sync::{Arc, OnceLock};

use etl_runtime::Cancel;
use tokio::signal::unix::{SignalKind, signal};

/// The signal that stopped the run, once one did.
#[derive(Clone, Default)]
pub struct Stop {
    received: Arc<OnceLock<Signal>>,
}

#[derive(Clone, Copy, Debug)]
enum Signal {
    Term,
    Int,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        }
    }

    /// 128 + the signal's number, as shells report a process a signal ended.
    fn exit_code(self) -> u8 {
        match self {
            Signal::Term => 143,
            Signal::Int => 130,
        }
    }
}

impl Stop {
    pub fn name(&self) -> &'static str {
        self.received.get().map_or("a signal", |s| s.name())
    }

    /// 143 after SIGTERM, 130 after SIGINT.
    pub fn exit_code(&self) -> u8 {
        self.received.get().map_or(1, |s| s.exit_code())
    }

    /// The signal's name, once one was received.
    pub fn signal(&self) -> Option<&'static str> {
        self.received.get().map(|s| s.name())
    }
}

/// Cancels `cancel` on the first SIGTERM or SIGINT and exits on the second.
pub fn stop_on_signals(cancel: Cancel) -> std::io::Result<Stop> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stop = Stop::default();
    let received = Arc::clone(&stop.received);
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => Signal::Term,
            _ = int.recv() => Signal::Int,
        };
        let _ = received.set(first);
        crate::log::info(
            "signal",
            None,
            format_args!(
                "{}: stopping; staged files are removed and nothing more is published ({} again to exit at once)",
                first.name(),
                first.name()
            ),
        );
        cancel.cancel();
        let second = tokio::select! {
            _ = term.recv() => Signal::Term,
            _ = int.recv() => Signal::Int,
        };
        crate::log::info(
            "signal",
            None,
            format_args!("{}: exiting at once", second.name()),
        );
        std::process::exit(i32::from(second.exit_code()));
    });
    Ok(stop)
}
