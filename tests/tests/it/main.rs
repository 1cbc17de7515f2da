//! The runtime's and the derive's integration tests, in one test binary so that the workspace
//! links it once: each module is what was a test file of its own.

mod common;

mod derive_smoke;
mod engine;
mod generate;
mod incremental_partitioned;
mod masking;
mod partition_readers;
mod paths_agree;
mod ranges;
mod roundtrip;
mod tasks;
mod ui;
mod value_errors;
