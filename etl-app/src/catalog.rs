//! The Glue catalog after a run: the published tables' definitions (and partitions), or a
//! crawler, once every table succeeded.

use etl_runtime::Export;
use etl_runtime::sink::glue::GluePartitions;
use etl_runtime::write::partition::Partition;

use crate::config::{Catalog, RunConfig};
use crate::log;
use crate::report::RunReport;

/// Updates the Glue catalog (if the run has one) once every table is published, and returns
/// the run's exit code: 1 if a table failed (the catalog is then left as it was) or the
/// catalog could not be updated.
pub(crate) async fn catalog_then_exit_code(
    config: &RunConfig,
    report: &mut RunReport,
    failed: usize,
    published: &[(Export, String, Vec<Partition>)],
) -> u8 {
    let catalog = !config.catalog.is_empty();
    if catalog && failed > 0 {
        log::info(
            "catalog_skipped",
            None,
            format_args!("the Glue catalog was not updated, because {failed} table(s) failed"),
        );
        1
    } else if catalog && let Err(e) = update_catalog(&config.catalog, published).await {
        log::error("catalog_failed", None, etl_runtime::error::report(&e));
        report.catalog_error(&e);
        1
    } else {
        u8::from(failed > 0)
    }
}

/// Glue, once every table of the run is uploaded: definitions and/or a crawl.
pub(crate) async fn update_catalog(
    catalog: &Catalog,
    published: &[(Export, String, Vec<Partition>)],
) -> etl_runtime::Result<()> {
    let client = etl_runtime::sink::glue::client().await;
    if let Some(database) = &catalog.database {
        for (export, location, partitions) in published {
            // Glue and Athena want lower-case names without dots.
            let name = export.name().to_lowercase().replace('.', "_");
            let partitioning = (!export.info.partition_by.is_empty()).then_some(GluePartitions {
                keys: export.info.partition_by,
                partitions,
                discovery: catalog.partitions,
            });
            let warnings = etl_runtime::sink::glue::put_table(
                &client,
                database,
                &name,
                location,
                &export.files_schema(),
                partitioning,
            )
            .await?;
            for warning in warnings {
                log::info(
                    "catalog_warning",
                    Some(&export.name()),
                    format_args!("warning: glue: {database}.{name}: {warning}"),
                );
            }
            log::info(
                "catalog_table",
                Some(&export.name()),
                format_args!("glue: {database}.{name} -> {location}"),
            );
        }
    }
    if let Some(crawler) = &catalog.crawler {
        // The tables' own prefixes, the same every run (a crawler's targets are not switched
        // from version to version); the crawler sees the kept versions as a `v` partition.
        let paths: Vec<String> = published
            .iter()
            .map(|(_, location, _)| format!("{}/", etl_runtime::sink::s3::table_root(location)))
            .collect();
        let wait = catalog.wait;
        let outcome = etl_runtime::sink::glue::run_crawler(&client, crawler, &paths, wait).await?;
        log::info(
            "catalog_crawler",
            None,
            format_args!(
                "glue: crawler {crawler} {}{}",
                if wait.is_some() {
                    "finished: "
                } else {
                    "started"
                },
                outcome.last_crawl.unwrap_or_default()
            ),
        );
    }
    Ok(())
}
