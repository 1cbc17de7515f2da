//! Your derived exports: one task per file, written by hand and registered here next to the
//! generated table models. The demo's tasks (`etl-app/demo/tasks/`) are examples of both kinds.

use etl_runtime::Export;

/// Every task of this directory.
pub fn exports() -> Vec<Export> {
    vec![]
}
