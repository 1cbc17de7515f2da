//! A run: what to export ([`registry`]), a table's export from COPY to published files
//! ([`export`]), the tasks that transform or aggregate a table on the way ([`task`]), and
//! what watches the reads ([`progress`]), the state of incremental runs ([`incremental`]), and
//! runs split into shards across machines ([`shard`]).

pub mod compact;
pub(crate) mod deletes;
pub mod export;
pub mod incremental;
pub(crate) mod key_sort;
pub mod processor;
pub mod progress;
pub mod registry;
pub mod shard;
pub mod task;
