//! Errors of the engine. Each carries the context a data engineer needs to act: the table, the
//! column, the row's primary key and the value. Binaries print them once, with their chain.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from outside the engine (the AWS SDK, a task's own code), kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{table} is being exported by another run (its lock {} is held); this run leaves it alone",
        lock.display()
    )]
    TableBusy { table: String, lock: PathBuf },
    #[error(
        "{table} was advanced by another run while this one exported it; this run's batch is \
         not published (the next run reads its rows again)"
    )]
    StateMoved { table: String },
    #[error("this output does not support {what}")]
    NotSupported { what: String },
    #[error("sharded run `{run}`: {reason}")]
    ShardRun { run: String, reason: String },
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect {
        /// The connection string with its password replaced by `***`.
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "cannot connect to PostgreSQL at {url} with {with} (a password it made was refused, or the server is unreachable): {source}"
    )]
    ConnectWith {
        /// The connection string with its password replaced by `***`.
        url: String,
        /// How the password was made ("RDS IAM authentication").
        with: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("{with}: {reason}")]
    Token { with: &'static str, reason: String },
    #[error("{context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Anything that went wrong while one table (or task) was exported, with its name: the
    /// one place a table's name is added to an error ([`Error::in_table`]).
    #[error("table {table}: {source}")]
    Table {
        table: String,
        #[source]
        source: Box<Error>,
    },
    #[error("reading the table failed: {0}")]
    Query(#[source] sqlx::Error),
    #[error("{0}")]
    Row(#[source] crate::model::RowError),
    #[error("writing Parquet failed: {0}")]
    Parquet(#[source] parquet::errors::ParquetError),
    #[error("building the Arrow batch failed: {0}")]
    Arrow(#[source] arrow_schema::ArrowError),
    #[error("the COPY stream is malformed: {0}")]
    Copy(#[source] CopyError),
    #[error("the {what} failed: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("cannot start {threads} converter threads: {source}")]
    ConverterThreads {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    #[error("cannot render the manifest: {0}")]
    Manifest(#[source] serde_json::Error),
    #[error(
        "cannot read the manifest {path} ({source}); its table's state is unknown, so nothing \
         is exported over it: repair or remove the file, or export the table anew with --full"
    )]
    ManifestUnreadable {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the manifest {path} is format {found}, written by a newer etl-toolkit; this one reads \
         format {supported} and older: upgrade, or export the table anew with --full"
    )]
    ManifestTooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "cannot read the key file {path} ({reason}); deleted rows cannot be found against it: \
         export the table anew with --full"
    )]
    KeysUnreadable { path: String, reason: String },
    #[error(
        "{which} keys are not in ascending order as this tool compares them ({detail}); \
         PostgreSQL sorts this key differently, so deleted rows cannot be found safely and \
         nothing is published"
    )]
    KeyOrder { which: &'static str, detail: String },
    #[error("deleted rows cannot be found: {reason}")]
    NoKeyForDeletes { reason: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The service's code and message are in the source's chain ("AccessDenied: ..."); they
    /// never contain the secret key.
    #[error("cannot {action} {location}")]
    S3 {
        action: &'static str,
        location: String,
        #[source]
        source: BoxError,
    },
    #[error("Glue: cannot {action} {name}")]
    Glue {
        action: &'static str,
        name: String,
        #[source]
        source: BoxError,
    },
    #[error("a row could not be masked: {0}")]
    Mask(#[source] crate::codec::ValueError),
    #[error(transparent)]
    MaskKeyMissing(#[from] crate::mask::MissingMaskKey),
    #[error("cancelled before it finished: nothing of it was published")]
    Cancelled,
    #[error("no table or task named `{name}` is registered (registered: {known})")]
    UnknownExport { name: String, known: String },
    #[error("{}", drift_message(table, drift))]
    SchemaDrift {
        table: String,
        drift: Vec<crate::model::Drift>,
    },
    #[error("task {task}{}: {source}", key.as_ref().map(|k| format!(", source row {k}")).unwrap_or_default())]
    Task {
        task: String,
        /// The source row's key, when the failure is about one row.
        key: Option<String>,
        #[source]
        source: BoxError,
    },
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

    /// The table or task the error is about, when it names one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Error::Table { table, .. } | Error::SchemaDrift { table, .. } => Some(table),
            Error::Task { task, .. } => Some(task),
            _ => None,
        }
    }

    /// The row error behind this error, when it is about one value: its column and key.
    pub fn row(&self) -> Option<&crate::model::RowError> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = current {
            if let Some(row) = error.downcast_ref::<crate::model::RowError>() {
                return Some(row);
            }
            current = error.source();
        }
        None
    }

    /// This error as part of `table`'s export; errors that already name it are kept as they are.
    pub fn in_table(self, table: &str) -> Self {
        match self {
            e @ (Error::Table { .. } | Error::SchemaDrift { .. } | Error::Task { .. }) => e,
            e => Error::Table {
                table: table.to_string(),
                source: Box::new(e),
            },
        }
    }
}

fn drift_message(table: &str, drift: &[crate::model::Drift]) -> String {
    if drift.contains(&crate::model::Drift::TableMissing) {
        return format!(
            "table {table} does not exist in the database: if it was dropped, remove its model with \
             `cargo xtask gen --remove {table}`; if it lives elsewhere, point DATABASE_URL there"
        );
    }
    format!(
        "table {table} no longer matches its model: {}; regenerate it with `cargo xtask gen --table {table}`",
        drift
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// The COPY stream broke PostgreSQL's binary format (see `source::copy`).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the COPY stream does not start with the binary signature")]
    BadSignature,
    #[error("the COPY stream ended inside a tuple")]
    Truncated,
    #[error("data after the end of the COPY stream")]
    TrailingData,
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
