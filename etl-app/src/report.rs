//! The run report: one JSON document per run, written at the end whatever the outcome, beside
//! the data (`<output>/_runs/<run id>.json`) and to `--report FILE`. Its exit code is the
//! process's. The shape (README, "Run report"):
//!
//! ```json
//! { "report_version": 1, "tool": "etl-toolkit 0.1.0",
//!   "run_id": "...", "snapshot_taken_at": "...", "output": "...",
//!   "started_at": "...", "finished_at": "...", "seconds": 1.5,
//!   "status": "succeeded" | "failed" | "cancelled", "exit_code": 0, "signal": null,
//!   "error": null,
//!   "tables": [ { "name": "notes", "kind": "table" | "task", "mode": "full" | "batch",
//!                 "status": "published" | "failed" | "cancelled",
//!                 "rows": 4000, "bytes": 81234, "files": ["part-00000.parquet"],
//!                 "location": "...", "seconds": 0.4, "rows_per_second": 10000.0,
//!                 "watermark": null, "warnings": [], "skipped_rows": 0,
//!                 "read": null | { "connections": 2, "ranges": 118,
//!                                  "single_stream_reason": null | "..." },
//!                 "incremental": null | { "mode": "full" | "batch", "reason": "...",
//!                                         "batch": 3, "deleted_rows": 12,
//!                                         "next_lower_bound": "...",
//!                                         "watermark_from": "snapshot" | "lookback" },
//!                 "error": null | { "message": "...", "column": "...", "key": "id=42" } } ] }
//! ```

use chrono::{DateTime, SecondsFormat, Utc};
use etl_runtime::{Error, Export, TableReport};
use serde_json::{Value, json};

use crate::metrics::TableMetrics;

pub struct RunReport {
    output: String,
    started_at: DateTime<Utc>,
    run_id: Option<String>,
    snapshot_taken_at: Option<String>,
    tables: Vec<Value>,
    metrics: Vec<TableMetrics>,
    catalog_error: Option<String>,
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl RunReport {
    pub fn new(output: &str) -> Self {
        Self {
            output: output.to_string(),
            started_at: Utc::now(),
            run_id: None,
            snapshot_taken_at: None,
            tables: Vec::new(),
            metrics: Vec::new(),
            catalog_error: None,
        }
    }

    /// The run has its snapshot (and so its id).
    pub fn started(&mut self, run_id: &str, snapshot_taken_at: &str) {
        self.run_id = Some(run_id.to_string());
        self.snapshot_taken_at = Some(snapshot_taken_at.to_string());
    }

    /// One table's (or task's) outcome.
    pub fn table(&mut self, export: &Export, result: &etl_runtime::Result<TableReport>) {
        self.metrics.push(match result {
            Ok(table) => TableMetrics {
                table: export.name(),
                rows: table.rows,
                deleted_rows: table.incremental.as_ref().map_or(0, |i| i.deleted),
                bytes: table.bytes,
                seconds: table.seconds,
                success: true,
            },
            Err(_) => TableMetrics {
                table: export.name(),
                rows: 0,
                deleted_rows: 0,
                bytes: 0,
                seconds: 0.0,
                success: false,
            },
        });
        let mut entry = json!({
            "name": export.name(),
            "kind": export.kind.to_string(),
            "mode": "full",
            "watermark": Value::Null,
        });
        let fields = match result {
            Ok(table) => json!({
                "mode": table.incremental.as_ref().map_or("full", |i| i.mode),
                "watermark": table.incremental.as_ref().and_then(|i| i.watermark.as_ref())
                    .map(|w| etl_runtime::run::incremental::render_micros(w.micros)),
                "incremental": table.incremental.as_ref().map(|i| i.to_json()),
                "status": "published",
                "rows": table.rows,
                "bytes": table.bytes,
                "files": table.files,
                "location": table.location,
                "seconds": table.seconds,
                "rows_per_second": if table.seconds > 0.0 { table.rows as f64 / table.seconds } else { 0.0 },
                "warnings": table.warnings,
                "skipped_rows": table.skipped_rows,
                "read": {
                    "connections": table.read.connections,
                    "ranges": table.read.ranges,
                    "single_stream_reason": table.read.single_stream_reason,
                },
                "error": Value::Null,
            }),
            Err(e) => json!({
                "status": if matches!(e, Error::Cancelled) || is_cancelled(e) { "cancelled" } else { "failed" },
                "rows": 0,
                "bytes": 0,
                "files": [],
                "location": Value::Null,
                "seconds": Value::Null,
                "rows_per_second": Value::Null,
                "warnings": [],
                "skipped_rows": 0,
                "read": Value::Null,
                "error": error_entry(e),
            }),
        };
        if let (Value::Object(entry), Value::Object(fields)) = (&mut entry, fields) {
            entry.extend(fields);
        }
        self.tables.push(entry);
    }

    /// Each table's metrics; `exports` that never ran (the run failed before them) count as
    /// failed.
    pub fn metrics(&self, exports: &[Export]) -> Vec<TableMetrics> {
        let mut metrics = self.metrics.clone();
        for export in exports {
            let name = export.name();
            if !metrics.iter().any(|m| m.table == name) {
                metrics.push(TableMetrics {
                    table: name,
                    rows: 0,
                    deleted_rows: 0,
                    bytes: 0,
                    seconds: 0.0,
                    success: false,
                });
            }
        }
        metrics
    }

    /// The Glue catalog could not be updated after the tables were published.
    pub fn catalog_error(&mut self, e: &Error) {
        self.catalog_error = Some(etl_runtime::error::report(e));
    }

    /// The report as JSON, for a run that ends with `exit_code`.
    pub fn document(&self, exit_code: u8, signal: Option<&str>, error: Option<String>) -> Vec<u8> {
        let finished_at = Utc::now();
        let status = match (exit_code, signal) {
            (_, Some(_)) => "cancelled",
            (0, None) => "succeeded",
            _ => "failed",
        };
        let document = json!({
            "report_version": 1,
            "tool": concat!("etl-toolkit ", env!("CARGO_PKG_VERSION")),
            "run_id": self.run_id,
            "snapshot_taken_at": self.snapshot_taken_at,
            "output": self.output,
            "started_at": timestamp(self.started_at),
            "finished_at": timestamp(finished_at),
            "seconds": (finished_at - self.started_at).num_microseconds().unwrap_or(0) as f64 / 1e6,
            "status": status,
            "exit_code": exit_code,
            "signal": signal,
            "error": error.or_else(|| self.catalog_error.clone()),
            "tables": self.tables,
        });
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

fn is_cancelled(e: &Error) -> bool {
    matches!(e, Error::Table { source, .. } if matches!(**source, Error::Cancelled))
}

/// The error with what a reader needs to act: the message, and the column and key when it is
/// about one value.
fn error_entry(e: &Error) -> Value {
    let row = e.row();
    json!({
        "message": etl_runtime::error::report(e),
        "column": row.map(|r| r.column),
        "key": row.and_then(|r| r.key.clone()),
    })
}
