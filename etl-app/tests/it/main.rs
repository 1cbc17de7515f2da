//! The binary's integration tests, in one test binary so that the workspace links it once:
//! each module is what was a test file of its own, and shares the servers `common` starts.

mod common;

mod cli;
mod incremental;
mod real_conditions;
mod s3;
mod secrets;
mod shards;
mod signals;
mod spark;
mod tasks;
