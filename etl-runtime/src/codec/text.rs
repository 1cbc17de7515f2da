//! text, varchar, char(n), and everything selected through `::text` (interval, enums, inet, ...)
//! -> UTF8 / STRING. The same Arrow column carries the text forms of other families: uuid's
//! canonical text, numeric's exact decimal text, json/jsonb as JSON text ([`Utf8Encoder::json`]).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::StringBuilder;
use arrow_schema::{DataType, Field};

use super::{ColumnEncoder, Encode, FromWire, JsonElement, Scalar, ValueError};

/// A UTF8 column, plain or annotated as Parquet's JSON logical type.
pub struct Utf8Encoder {
    builder: StringBuilder,
    json: bool,
}

impl Utf8Encoder {
    /// A plain UTF8 / STRING column.
    pub fn new(capacity: usize) -> Self {
        Self {
            builder: StringBuilder::with_capacity(capacity, capacity * 16),
            json: false,
        }
    }

    /// A column whose text is JSON, annotated as Parquet's JSON logical type.
    pub fn json(capacity: usize) -> Self {
        Self {
            builder: StringBuilder::with_capacity(capacity, capacity * 32),
            json: true,
        }
    }

    #[inline]
    pub(super) fn append_str(&mut self, value: &str) {
        self.builder.append_value(value);
    }

    /// Appends a value of wire type `wire` as its text: text as it is, json and jsonb as their
    /// JSON text, uuid as canonical text, numeric as its exact decimal text.
    pub fn push_wire_as(&mut self, wire: Scalar, bytes: &[u8]) -> Result<(), ValueError> {
        match wire {
            Scalar::Text | Scalar::Cast(_) => self.append_str(super::utf8(bytes)?),
            Scalar::Json | Scalar::Jsonb => {
                self.append_str(super::json::text_from_wire(wire, bytes)?)
            }
            Scalar::Uuid => super::uuid::push_text_wire(self, bytes)?,
            Scalar::Numeric(_) => self.append_str(&super::numeric::text_from_wire(bytes)?),
            other => {
                return Err(ValueError::Wire(format!(
                    "a {other:?} value cannot be written as text"
                )));
            }
        }
        Ok(())
    }
}

impl ColumnEncoder for Utf8Encoder {
    fn field(&self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, DataType::Utf8, nullable);
        if self.json {
            field.with_extension_type(arrow_schema::extension::Json::default())
        } else {
            field
        }
    }
    fn push_null(&mut self) {
        self.builder.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

impl Encode<String> for Utf8Encoder {
    #[inline]
    fn push(&mut self, v: &String) -> Result<(), ValueError> {
        self.builder.append_value(v);
        Ok(())
    }
}

impl FromWire for String {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        super::utf8(bytes).map(str::to_string)
    }
}

impl JsonElement for String {
    fn write_json(&self, out: &mut String) -> Result<(), ValueError> {
        write_json_str(out, self)
    }

    fn write_key(&self, out: &mut String) {
        write_key_str(out, self);
    }
}

/// A JSON string, escaped as PostgreSQL's `escape_json` does: `\"`, `\\`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, other control characters as `\u00XX`, everything else as it is.
pub(super) fn write_json_str(out: &mut String, s: &str) -> Result<(), ValueError> {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

/// Text in a message about its row: quoted as Rust prints strings (`"EUR"`).
pub(super) fn write_key_str(out: &mut String, s: &str) {
    let _ = write!(out, "{s:?}");
}
