//! The manifest a table's export leaves beside its files, and the publication around it: the
//! one path by which a table's run, a sharded run's coordinator and (with a batch) an
//! incremental run make a staged table what readers see.

use super::*;
use crate::sink::StagedTable;

/// What a publication replaces: the whole table, or (a batch) the files of `manifest`'s
/// version that stay, with the batch's added.
pub(crate) enum Publication<'a> {
    Table,
    Batch {
        manifest: &'a Manifest,
        previous_files: &'a [String],
    },
}

/// Writes `listing`'s manifest into `staged` and publishes it, unless the run was cancelled
/// first; where either fails before the publication, the staged table is discarded. Returns
/// where the table was published.
pub(crate) async fn publish_listing(
    (sink, cancel): (&dyn Sink, &Cancel),
    staged: StagedTable,
    (info, listing): (&TableInfo, &Listing<'_>),
    snapshot_taken_at: Option<String>,
    publication: Publication<'_>,
) -> Result<String> {
    // A cancelled run publishes nothing more, even a table it finished reading.
    let written = cancel
        .check()
        .and_then(|()| write_manifest(&staged.dir, info, listing, snapshot_taken_at));
    if let Err(e) = written {
        sink.discard(staged).await;
        return Err(e);
    }
    match publication {
        Publication::Table => sink.publish(staged).await,
        Publication::Batch {
            manifest,
            previous_files,
        } => sink.publish_batch(staged, manifest, previous_files).await,
    }
}

/// What a table's export wrote, for its manifest.
pub(crate) struct Listing<'a> {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) files: &'a [String],
    pub(crate) partitions: &'a [Partition],
    pub(crate) incremental: Option<&'a TableState>,
}

pub(crate) fn write_manifest(
    dir: &Path,
    info: &TableInfo,
    listing: &Listing<'_>,
    snapshot_taken_at: Option<String>,
) -> Result<()> {
    use crate::layout::manifest;
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        table: info.display_name(),
        schema: info.schema.to_string(),
        rows: listing.rows,
        bytes: listing.bytes,
        files: listing.files.to_vec(),
        snapshot_taken_at,
        columns: info
            .columns
            .iter()
            .map(|c| manifest::Column {
                name: c.name.to_string(),
                sql_type: c.sql_type.to_string(),
                nullable: c.nullable,
                mask: c.mask.map(|m| m.name().to_string()),
            })
            .collect(),
        partition_keys: info
            .partition_by
            .iter()
            .map(|k| manifest::PartitionKey {
                name: k.name.to_string(),
                column: info.columns.get(k.column).map(|c| c.name.to_string()),
                transform: k.transform.granularity().unwrap_or("identity").to_string(),
            })
            .collect(),
        partitions: listing.partitions.to_vec(),
        incremental: listing.incremental.map(TableState::to_section),
        tool: concat!("etl-toolkit ", env!("CARGO_PKG_VERSION")).to_string(),
        version: None,
        location: None,
    };
    manifest.write_into(dir)
}
