//! boolean -> BOOLEAN.

use arrow_array::builder::BooleanBuilder;
use arrow_schema::DataType;

use super::{FromWire, JsonElement, ValueError, primitive_encoder, wire_primitive};

primitive_encoder!(
    /// boolean -> BOOLEAN
    BoolEncoder, BooleanBuilder, bool, DataType::Boolean, |v| *v);

wire_primitive!(BoolEncoder => |b| super::fixed::<1>(b)?[0] != 0);

impl FromWire for bool {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        Ok(super::fixed::<1>(bytes)?[0] != 0)
    }
}

impl JsonElement for bool {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        out.push_str(if *self { "true" } else { "false" });
        Ok(())
    }
}
