//! A run: what to export ([`registry`]), a table's export from COPY to published files
//! ([`export`]), and the tasks that transform or aggregate a table on the way ([`task`]).

pub mod export;
pub mod registry;
pub mod task;
