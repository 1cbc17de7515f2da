//! The exports a binary knows about: every generated model registers itself here (see
//! `etl-app/src/models/mod.rs`, written by `cargo xtask gen`).

use std::future::Future;
use std::pin::Pin;

use super::export::{EncodeFn, ExportOptions, TableReport, encode_part, export_encoded};
use crate::error::{Error, Result};
use arrow_schema::SchemaRef;

use super::task::{Aggregate, Transform, output_info, run_aggregate, run_transform};
use crate::model::{EtlTable, OutputRecord, RecordBatchEncoder, TableInfo};
use crate::sink::Sink;
use crate::source::PgSource;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type RunFn =
    for<'a> fn(&'a PgSource, &'a dyn Sink, &'a ExportOptions) -> BoxFuture<'a, Result<TableReport>>;

/// What an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// A copy of one table.
    Table,
    /// Records a task derives from a table (a transform or an aggregation).
    Task,
}

impl std::fmt::Display for ExportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExportKind::Table => "table",
            ExportKind::Task => "task",
        })
    }
}

/// How an export runs.
#[derive(Clone, Copy)]
enum Runner {
    /// A table, by its model's encoder: the pipeline around it is compiled once for every
    /// model, which keeps the build time each model adds small.
    Table(EncodeFn),
    /// A task, by its own pipeline.
    Task(RunFn),
}

/// One registered export.
#[derive(Clone, Copy)]
pub struct Export {
    pub info: TableInfo,
    pub kind: ExportKind,
    /// The Arrow schema of the files it writes (for catalog definitions).
    pub schema: fn() -> SchemaRef,
    run: Runner,
}

impl Export {
    /// The Arrow schema of the files it writes: the model's, with the row-version columns
    /// for a table with a cursor (see `layout::versions`).
    pub fn files_schema(&self) -> SchemaRef {
        let schema = (self.schema)();
        if crate::layout::versions::has_row_versions(&self.info) {
            crate::layout::versions::versioned_schema(&schema, &self.info)
        } else {
            schema
        }
    }

    /// The export of model `T`'s table.
    pub fn table<T: EtlTable>() -> Self {
        Export {
            info: T::INFO,
            kind: ExportKind::Table,
            schema: <T::Encoder as RecordBatchEncoder<T>>::schema,
            run: Runner::Table(encode_part::<T>),
        }
    }

    /// A row-transform task.
    pub fn transform<T: Transform>() -> Self {
        Export {
            info: output_info::<T::Output>(T::NAME),
            kind: ExportKind::Task,
            schema: <<T::Output as OutputRecord>::Encoder as RecordBatchEncoder<T::Output>>::schema,
            run: Runner::Task(|source, sink, options| {
                Box::pin(run_transform::<T>(source, sink, options))
            }),
        }
    }

    /// An aggregation task.
    pub fn aggregate<A: Aggregate>() -> Self {
        Export {
            info: output_info::<A::Output>(A::NAME),
            kind: ExportKind::Task,
            schema: <<A::Output as OutputRecord>::Encoder as RecordBatchEncoder<A::Output>>::schema,
            run: Runner::Task(|source, sink, options| {
                Box::pin(run_aggregate::<A>(source, sink, options))
            }),
        }
    }

    /// A table's encoder of COPY tuples (None for a task, which has its own pipeline).
    pub fn table_encoder(&self) -> Option<EncodeFn> {
        match self.run {
            Runner::Table(encode) => Some(encode),
            Runner::Task(_) => None,
        }
    }

    /// The name used on the command line: `notes`, or `schema.table` outside `public`.
    pub fn name(&self) -> String {
        self.info.display_name()
    }

    pub async fn run(
        &self,
        source: &PgSource,
        sink: &dyn Sink,
        options: &ExportOptions,
    ) -> Result<TableReport> {
        let result = match self.run {
            Runner::Table(encode) => {
                let schema = (self.schema)();
                export_encoded(source, sink, options, &self.info, schema, encode).await
            }
            Runner::Task(run) => run(source, sink, options).await,
        };
        result.map_err(|e| e.in_table(&self.name()))
    }
}

/// All registered exports, in registration order.
#[derive(Clone, Default)]
pub struct Registry {
    exports: Vec<Export>,
}

impl Registry {
    pub fn new(exports: Vec<Export>) -> Self {
        Registry { exports }
    }

    /// Adds exports after the registered ones (tasks after the generated models).
    pub fn extend(&mut self, exports: impl IntoIterator<Item = Export>) {
        self.exports.extend(exports);
    }

    pub fn all(&self) -> &[Export] {
        &self.exports
    }

    /// The exports named in `names` (`notes`, `public.notes` and `sales.orders` all work), in
    /// the order given, or all of them when `names` is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<Export>> {
        if names.is_empty() {
            return Ok(self.exports.clone());
        }
        names
            .iter()
            .map(|name| {
                let wanted = name.strip_prefix("public.").unwrap_or(name);
                self.exports
                    .iter()
                    .find(|e| e.name() == wanted)
                    .copied()
                    .ok_or_else(|| Error::UnknownExport {
                        name: name.clone(),
                        known: self
                            .exports
                            .iter()
                            .map(Export::name)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            })
            .collect()
    }
}
