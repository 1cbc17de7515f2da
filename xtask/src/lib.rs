//! The project's tooling as a library, so that the integration tests drive `gen` exactly as
//! `cargo xtask gen` does. `main.rs` only parses arguments and dispatches.

pub mod bench;
pub mod bench_models;
mod bench_s3;
pub mod ci;
pub mod demo;
pub mod gen_models;
pub mod image;
mod measure;
