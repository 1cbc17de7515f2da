//! A partition of a table's output, as manifests and shard outcomes list it (serde: the
//! manifest and the shard documents render and parse it).

use serde::{Deserialize, Serialize};

/// A partition: its directory under the table, and its key values as text (None for NULL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub path: String,
    pub values: Vec<Option<String>>,
}
