//! Watching a table's read while it runs: the command line draws its progress bars from these
//! calls. The engine's own periodic `etl_runtime::progress` events are independent of them.

use std::sync::Arc;

/// Told when a table's read starts; what it returns is told the rows as they arrive.
pub trait Progress: Send + Sync {
    /// `estimated_rows` is PostgreSQL's estimate of the table's size (`pg_class.reltuples`,
    /// kept by ANALYZE and autovacuum; a partitioned table's leaves' together), if the table
    /// has one.
    fn table_started(&self, table: &str, estimated_rows: Option<u64>) -> Box<dyn TableProgress>;
}

/// One table's read. Dropped when the read ends, whatever its outcome.
pub trait TableProgress: Send + Sync {
    /// The rows read so far.
    fn rows_read(&self, rows: u64);
    /// The read reached the end of the table (not called if it failed or was stopped).
    fn finished(&self, rows: u64);
}

/// The observer of a run's reads, if any (`ExportOptions::progress`).
#[derive(Clone, Default)]
pub struct ProgressObserver(Option<Arc<dyn Progress>>);

impl ProgressObserver {
    pub fn new(progress: Arc<dyn Progress>) -> Self {
        Self(Some(progress))
    }

    pub fn is_watching(&self) -> bool {
        self.0.is_some()
    }

    pub(crate) fn table_started(
        &self,
        table: &str,
        estimated_rows: Option<u64>,
    ) -> Option<Box<dyn TableProgress>> {
        self.0
            .as_ref()
            .map(|progress| progress.table_started(table, estimated_rows))
    }
}

impl std::fmt::Debug for ProgressObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.is_watching() { "on" } else { "off" };
        write!(f, "ProgressObserver({state})")
    }
}
