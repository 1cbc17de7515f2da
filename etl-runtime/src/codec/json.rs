//! json, jsonb -> UTF8 annotated JSON. From the wire, the text PostgreSQL sends is written as
//! it is (jsonb's text is normalised by the server; json's is the text as stored). A model's
//! `serde_json::Value` is written the way jsonb prints itself: `{"a": 1, "b": [1, 2]}`, keys in
//! the order read (serde_json's `preserve_order`), numbers with every digit PostgreSQL sent
//! (`arbitrary_precision`). So a jsonb value and a json value stored as jsonb would print it are
//! the same text through both paths.

use serde_json::Value;

use super::{Encode, FromWire, JsonElement, Scalar, Utf8Encoder, ValueError};

impl Encode<Value> for Utf8Encoder {
    fn push(&mut self, v: &Value) -> Result<(), ValueError> {
        let mut out = String::new();
        v.write_json(&mut out)?;
        self.append_str(&out);
        Ok(())
    }
}

impl FromWire for Value {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        // JSON text never starts with a control character other than white space, and jsonb's
        // binary form starts with its version byte: a model's field may be either.
        let wire = match bytes.first() {
            Some(&b) if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') => Scalar::Jsonb,
            _ => Scalar::Json,
        };
        serde_json::from_str(super::json_text_from_wire(wire, bytes)?)
            .map_err(|e| ValueError::Json(e.to_string()))
    }
}

impl JsonElement for Value {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => b.write_json(out)?,
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => super::text::write_json_str(out, s)?,
            Value::Array(values) => {
                out.push('[');
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    value.write_json(out)?;
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (key, value)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    super::text::write_json_str(out, key)?;
                    out.push_str(": ");
                    value.write_json(out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }
}
