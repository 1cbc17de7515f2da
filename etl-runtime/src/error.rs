//! Errors of the engine. Each carries the context a data engineer needs to act: the table, the
//! column, the row's primary key and the value. Binaries print them once, with their chain.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect {
        /// The connection string with its password replaced by `***`.
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("query on {table} failed: {source}")]
    Query {
        table: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("table {table}: {source}")]
    Row {
        table: String,
        #[source]
        source: crate::model::RowError,
    },
    #[error("table {table}: writing Parquet failed: {source}")]
    Parquet {
        table: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("table {table}: building the Arrow batch failed: {source}")]
    Arrow {
        table: String,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action} {location}: {reason}")]
    S3 {
        action: &'static str,
        location: String,
        reason: String,
    },
    #[error("Glue: cannot {action} {name}: {reason}")]
    Glue {
        action: &'static str,
        name: String,
        reason: String,
    },
    #[error("no table or task named `{name}` is registered (registered: {known})")]
    UnknownExport { name: String, known: String },
    #[error(
        "table {table} no longer matches its model: {}; regenerate it with `cargo xtask gen --table {table}`",
        drift.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    SchemaDrift {
        table: String,
        drift: Vec<crate::source::drift::Drift>,
    },
    #[error("task {task}{}: {reason}", key.as_ref().map(|k| format!(", source row {k}")).unwrap_or_default())]
    Task {
        task: String,
        /// The source row's key, when the failure is about one row.
        key: Option<String>,
        reason: String,
    },
    #[error("the export of {table} stopped: {reason}")]
    Aborted { table: String, reason: String },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The error and its causes as one line, each cause once: a cause whose text the message
/// already contains is not repeated. This is how binaries print errors.
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
