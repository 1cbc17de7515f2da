//! The encoder thread: chunks through the table's processor into its files, one rolling
//! sequence or Hive partitions.

use super::*;

/// Runs on a blocking thread: chunks through the processor, batches into Parquet files (into
/// partition directories when the table has partition keys).
/// `layout`: the partition keys, the file names' prefix, and whether this is an incremental
/// batch (which writes no file when no row changed; an export writes one, for its schema).
pub(crate) fn encode_chunks(
    mut received: mpsc::Receiver<Vec<Bytes>>,
    dir: &Path,
    options: &ExportOptions,
    layout: (&'static [PartitionKey], &str, bool),
    (mut processor, listener): (Box<dyn ChunkProcessor>, Option<FileListener>),
) -> Result<Encoded> {
    let (partition_by, file_prefix, batch) = layout;
    let mut out = FileSequence::new(
        dir,
        processor.schema(),
        (partition_by, file_prefix),
        options,
        listener,
    );
    // A chunk is converted while the one before it is written: the pool's threads take
    // both stages' work (rows, and then columns), instead of one stage waiting for the other.
    let mut converted: Vec<RecordBatch> = Vec::new();
    while let Some(tuples) = received.blocking_recv() {
        options.cancel.check()?;
        let (next, written) = options.converters.join(
            || processor.process(tuples),
            || converted.iter().try_for_each(|batch| out.write(batch)),
        );
        written?;
        converted = next?;
    }
    options.cancel.check()?;
    converted.extend(processor.finish()?);
    // Inside the pool: the last batches' columns, and the last row group's, in parallel too.
    let (files, partitions, warnings) = options.converters.install(|| -> Result<_> {
        converted.iter().try_for_each(|batch| out.write(batch))?;
        out.finish(options, batch)
    })?;
    Ok(Encoded {
        files,
        partitions,
        warnings,
        skipped_rows: processor.skipped(),
    })
}

/// What the encoder thread wrote.
pub(crate) struct Encoded {
    pub(crate) files: Vec<WrittenFile>,
    pub(crate) partitions: Vec<Partition>,
    /// Said of the data as it was written (empty partition values).
    pub(crate) warnings: Vec<String>,
    pub(crate) skipped_rows: u64,
}

/// A table's files as they are written: one rolling sequence, or Hive partitions.
// One per table being exported, on its stack: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum FileSequence {
    Plain(RollingFiles),
    Partitioned(PartitionedWriter),
}

impl FileSequence {
    /// Files of `schema` in `dir`, named `<file_prefix>NNNNN.parquet`, in partitions when the
    /// table has partition keys. `listener` hears of each file of a table without partitions
    /// as soon as it is complete (a partitioned table's files all close at the end).
    pub(crate) fn new(
        dir: &Path,
        schema: SchemaRef,
        (partition_by, file_prefix): (&'static [PartitionKey], &str),
        options: &ExportOptions,
        listener: Option<FileListener>,
    ) -> Self {
        if partition_by.is_empty() {
            FileSequence::Plain(
                RollingFiles::new(dir, schema, &options.parquet, options.max_file_bytes)
                    .with_prefix(file_prefix)
                    .with_listener(listener),
            )
        } else {
            FileSequence::Partitioned(
                PartitionedWriter::new(
                    dir,
                    schema,
                    partition_by,
                    &options.parquet,
                    options.max_file_bytes,
                    options.partition_buffer_bytes,
                )
                .with_file_prefix(file_prefix),
            )
        }
    }

    /// The files written, the partitions and what was said of the data. A batch writes no
    /// file when it has no row; an export writes one, for its schema.
    pub(crate) fn finish(
        self,
        options: &ExportOptions,
        batch: bool,
    ) -> Result<(Vec<WrittenFile>, Vec<Partition>, Vec<String>)> {
        Ok(match self {
            FileSequence::Plain(files) if batch => (files.finish()?, Vec::new(), Vec::new()),
            FileSequence::Plain(files) => (files.finish_with_schema()?, Vec::new(), Vec::new()),
            FileSequence::Partitioned(writer) => {
                let written = writer.finish(options.converters.threads() > 1, !batch)?;
                (written.files, written.partitions, written.warnings)
            }
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            FileSequence::Plain(files) => files.write(batch),
            FileSequence::Partitioned(writer) => writer.write(batch),
        }
    }
}
