//! real, double precision -> FLOAT, DOUBLE. NaN, ±Infinity and -0.0 are kept.

use std::fmt::Write as _;

use arrow_array::builder::{Float32Builder, Float64Builder};
use arrow_schema::DataType;

use super::{JsonElement, ValueError, from_wire_be, primitive_encoder, wire_primitive};

primitive_encoder!(
    /// real -> FLOAT; NaN and ±Infinity are kept
    Float32Encoder, Float32Builder, f32, DataType::Float32, |v| *v);
primitive_encoder!(
    /// double precision -> DOUBLE; NaN, ±Infinity and -0.0 are kept
    Float64Encoder, Float64Builder, f64, DataType::Float64, |v| *v);

wire_primitive!(Float32Encoder => |b| f32::from_be_bytes(super::fixed(b)?));
wire_primitive!(Float64Encoder => |b| f64::from_be_bytes(super::fixed(b)?));

from_wire_be!(f32, f64);

macro_rules! json_float {
    ($($ty:ty),*) => {$(
        impl JsonElement for $ty {
            fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
                if self.is_nan() {
                    out.push_str("\"NaN\"");
                } else if self.is_infinite() {
                    out.push_str(if *self > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
                } else {
                    // Debug prints the shortest text that reads back to the same float, and
                    // keeps -0.0.
                    let _ = write!(out, "{self:?}");
                }
                Ok(())
            }
        }
    )*};
}
json_float!(f32, f64);
