//! `etl-app compact`: each table's incremental batches folded into a new full version.

use std::process::ExitCode;

use etl_runtime::run::registry::ExportKind;
use etl_runtime::sink::s3::S3Sink;
use etl_runtime::{Export, LocalDirSink, Registry, Sink};

use crate::{Failure, cli, config, log};

/// `export`'s table compacted if it has at least `min_batches` batches.
pub(crate) async fn compact_one(
    sink: &dyn Sink,
    export: &Export,
    options: &etl_runtime::ExportOptions,
    min_batches: usize,
) -> etl_runtime::Result<Option<etl_runtime::run::compact::CompactReport>> {
    etl_runtime::run::compact::compact_table(
        sink,
        &export.info,
        (export.schema)(),
        options,
        min_batches,
    )
    .await
}

/// `etl-app compact`: each table's batches folded into a new full version.
pub(crate) async fn compact(
    registry: &Registry,
    args: cli::CompactArgs,
) -> Result<ExitCode, Failure> {
    let selected = registry.select(&args.tables)?;
    let exports: Vec<Export> = if args.tables.is_empty() {
        selected
            .into_iter()
            .filter(|e| e.kind == ExportKind::Table && e.info.cursor.is_some())
            .collect()
    } else {
        selected
    };
    let run_id = format!("compact-{}", std::process::id());
    let sink: Box<dyn Sink> = if args.output.starts_with("s3:") {
        let options = config::s3_options(&args.output, &args.s3)?;
        Box::new(S3Sink::new(options, &run_id).await?)
    } else {
        Box::new(
            LocalDirSink::new(&args.output, &run_id)?.keeping_versions(args.keep_versions as usize),
        )
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let options = etl_runtime::ExportOptions {
        converters: etl_runtime::run::export::Converters::new(threads)?,
        ..Default::default()
    };
    let mut failed = 0;
    for export in exports {
        let name = export.name();
        match compact_one(sink.as_ref(), &export, &options, 1).await {
            Ok(Some(done)) => log::info(
                "table_compacted",
                Some(&name),
                format_args!(
                    "{name}: {} batch(es) folded, {} current rows from {} versions, {:.2} s -> {}",
                    done.batches_folded, done.rows, done.versions_read, done.seconds, done.location
                ),
            ),
            Ok(None) => log::info(
                "table_compacted",
                Some(&name),
                format_args!("{name}: no batches to fold"),
            ),
            Err(e) => {
                failed += 1;
                log::error("table_failed", Some(&name), etl_runtime::error::report(&e));
            }
        }
    }
    Ok(ExitCode::from(u8::from(failed > 0)))
}
