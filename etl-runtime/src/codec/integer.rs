//! smallint, integer, bigint -> INT32 (INT(16)), INT32, INT64.

use std::fmt::Write as _;

use arrow_array::builder::{Int16Builder, Int32Builder, Int64Builder};
use arrow_schema::DataType;

use super::{JsonElement, ValueError, from_wire_be, primitive_encoder, wire_primitive};

primitive_encoder!(
    /// smallint -> INT32 / INT(16)
    Int16Encoder, Int16Builder, i16, DataType::Int16, |v| *v);
primitive_encoder!(
    /// integer -> INT32
    Int32Encoder, Int32Builder, i32, DataType::Int32, |v| *v);
primitive_encoder!(
    /// bigint -> INT64
    Int64Encoder, Int64Builder, i64, DataType::Int64, |v| *v);

wire_primitive!(Int16Encoder => |b| i16::from_be_bytes(super::fixed(b)?));
wire_primitive!(Int32Encoder => |b| i32::from_be_bytes(super::fixed(b)?));
wire_primitive!(Int64Encoder => |b| i64::from_be_bytes(super::fixed(b)?));

from_wire_be!(i16, i32, i64);

macro_rules! json_display {
    ($($ty:ty),*) => {$(
        impl JsonElement for $ty {
            fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
                let _ = write!(out, "{self}");
                Ok(())
            }
        }
    )*};
}
json_display!(i16, i32, i64);
