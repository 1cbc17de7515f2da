//! What an export leaves in its output, as types: the table's manifest ([`manifest`]) and its
//! partitions ([`Partition`]). Writers (`run`, `write`) build these and sinks publish them;
//! every reader (the next incremental run, the S3 sink, `etl-app state`) reads them back
//! through the same types.

pub mod keys;
pub mod manifest;
pub mod names;
pub mod partition;
pub mod versions;

pub use manifest::{MANIFEST_FILE, Manifest};
pub use partition::Partition;
