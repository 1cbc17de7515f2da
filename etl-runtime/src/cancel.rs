//! Stopping a run from outside (SIGTERM from a scheduler, Ctrl-C): every stage of an export
//! checks the run's [`Cancel`] and stops with [`Error::Cancelled`](crate::Error::Cancelled), so
//! that the usual error path cleans up (staged files removed, multipart uploads aborted) and
//! nothing new is published.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Whether the run was asked to stop. Cloned into every part of the run; cheap to check.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// Asks every holder of a clone to stop.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the run is cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// `Err(Error::Cancelled)` once the run is cancelled.
    pub fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cancel;

    #[tokio::test]
    async fn a_cancel_wakes_every_waiter_and_later_ones() {
        let cancel = Cancel::default();
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        assert!(cancel.check().is_ok());
        cancel.cancel();
        waiter.await.expect("the waiter ends");
        cancel.cancelled().await;
        assert!(cancel.check().is_err());
    }
}
