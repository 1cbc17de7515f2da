//! bytea -> BYTE_ARRAY; in JSON, PostgreSQL's hex text `"\\x0a1b"`.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::BinaryBuilder;
use arrow_schema::{DataType, Field};

use super::{ColumnEncoder, Encode, FromWire, JsonElement, ValueError, WireEncode};

/// bytea -> BYTE_ARRAY
pub struct BytesEncoder(BinaryBuilder);

impl BytesEncoder {
    pub fn new(capacity: usize) -> Self {
        Self::sized(capacity, None)
    }

    /// With room for `value_bytes` bytes of values (when known; else 32 per row).
    pub fn sized(capacity: usize, value_bytes: Option<usize>) -> Self {
        Self(BinaryBuilder::with_capacity(
            capacity,
            value_bytes.unwrap_or(capacity * 32),
        ))
    }
}

impl ColumnEncoder for BytesEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(name, DataType::Binary, nullable)
    }
    fn push_null(&mut self) {
        self.0.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}

impl Encode<Vec<u8>> for BytesEncoder {
    #[inline]
    fn push(&mut self, v: &Vec<u8>) -> Result<(), ValueError> {
        self.0.append_value(v);
        Ok(())
    }
}

impl WireEncode for BytesEncoder {
    #[inline]
    fn push_wire(&mut self, bytes: &[u8]) -> Result<(), ValueError> {
        self.0.append_value(bytes);
        Ok(())
    }
}

impl FromWire for Vec<u8> {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        Ok(bytes.to_vec())
    }
}

impl JsonElement for Vec<u8> {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        write_json_bytes(out, self);
        Ok(())
    }
}

/// `"\\x0a1b"`: bytea's hex text as a JSON string.
pub(super) fn write_json_bytes(out: &mut String, bytes: &[u8]) {
    out.push_str("\"\\\\x");
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out.push('"');
}
