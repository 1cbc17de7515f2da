//! A partition of a table's output, as manifests and shard outcomes list it.

use serde::{Deserialize, Serialize};

/// A partition: its directory under the table, and its key values as text (None for NULL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub path: String,
    pub values: Vec<Option<String>>,
}

impl Partition {
    /// As manifests list it: `{"path": ..., "values": [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "path": self.path, "values": self.values })
    }

    /// A partition as [`Partition::to_json`] wrote it.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        Partition::deserialize(value).ok()
    }
}
