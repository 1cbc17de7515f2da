//! uuid -> canonical lower-case text (UTF8) by default, or FIXED_LEN_BYTE_ARRAY(16) / UUID when
//! the model opts into `uuid = "bytes"`.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::FixedSizeBinaryBuilder;
use arrow_schema::{DataType, Field};
use uuid::Uuid;

use super::{ColumnEncoder, Encode, FromWire, JsonElement, Utf8Encoder, ValueError, WireEncode};

/// uuid opt-in -> FIXED_LEN_BYTE_ARRAY(16) / UUID
pub struct UuidBytesEncoder(FixedSizeBinaryBuilder);

impl UuidBytesEncoder {
    pub fn new(capacity: usize) -> Self {
        Self(FixedSizeBinaryBuilder::with_capacity(capacity, 16))
    }

    fn append(&mut self, bytes: &[u8; 16]) -> Result<(), ValueError> {
        // A 16-byte value always fits a 16-byte column.
        self.0
            .append_value(bytes)
            .map_err(|e| ValueError::Wire(e.to_string()))
    }
}

impl ColumnEncoder for UuidBytesEncoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(name, DataType::FixedSizeBinary(16), nullable)
            .with_extension_type(arrow_schema::extension::Uuid)
    }
    fn push_null(&mut self) {
        self.0.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}

impl Encode<Uuid> for UuidBytesEncoder {
    #[inline]
    fn push(&mut self, v: &Uuid) -> Result<(), ValueError> {
        self.append(v.as_bytes())
    }
}

impl WireEncode for UuidBytesEncoder {
    #[inline]
    fn push_wire(&mut self, bytes: &[u8]) -> Result<(), ValueError> {
        self.append(&super::fixed::<16>(bytes)?)
    }
}

impl Encode<Uuid> for Utf8Encoder {
    #[inline]
    fn push(&mut self, v: &Uuid) -> Result<(), ValueError> {
        let mut buf = Uuid::encode_buffer();
        self.append_str(v.hyphenated().encode_lower(&mut buf));
        Ok(())
    }
}

impl FromWire for Uuid {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        Ok(Uuid::from_bytes(super::fixed(bytes)?))
    }
}

/// Appends the canonical text of a uuid read off the wire.
pub(super) fn push_text_wire(encoder: &mut Utf8Encoder, bytes: &[u8]) -> Result<(), ValueError> {
    encoder.push(&Uuid::from_wire(bytes)?)
}

impl JsonElement for Uuid {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        let _ = write!(out, "\"{}\"", self.hyphenated());
        Ok(())
    }
}
