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
    /// A value being rendered (an array as JSON), kept between values.
    scratch: String,
}

impl Utf8Encoder {
    /// A plain UTF8 / STRING column.
    pub fn new(capacity: usize) -> Self {
        Self::sized(capacity, None)
    }

    /// A plain UTF8 / STRING column with room for `value_bytes` bytes of text (when known;
    /// else 16 per row).
    pub fn sized(capacity: usize, value_bytes: Option<usize>) -> Self {
        Self {
            builder: StringBuilder::with_capacity(capacity, value_bytes.unwrap_or(capacity * 16)),
            json: false,
            scratch: String::new(),
        }
    }

    /// A column whose text is JSON, annotated as Parquet's JSON logical type.
    pub fn json(capacity: usize) -> Self {
        Self::json_sized(capacity, None)
    }

    /// A JSON column with room for `value_bytes` bytes of text (when known; else 32 per row).
    pub fn json_sized(capacity: usize, value_bytes: Option<usize>) -> Self {
        Self {
            builder: StringBuilder::with_capacity(capacity, value_bytes.unwrap_or(capacity * 32)),
            json: true,
            scratch: String::new(),
        }
    }

    /// The scratch buffer, empty; give it back with [`Self::return_scratch`].
    pub(super) fn take_scratch(&mut self) -> String {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch
    }

    pub(super) fn return_scratch(&mut self, scratch: String) {
        self.scratch = scratch;
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
                self.append_str(super::json_text_from_wire(wire, bytes)?)
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
    // Runs of bytes that need no escape are copied whole; every byte that does is ASCII, so
    // each cut falls on a character boundary.
    let mut run_start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run_start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escaped);
        }
        run_start = i + 1;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
    Ok(())
}

/// Text in a message about its row: quoted as Rust prints strings (`"EUR"`).
pub(super) fn write_key_str(out: &mut String, s: &str) {
    let _ = write!(out, "{s:?}");
}

#[cfg(test)]
mod tests {
    use super::write_json_str;

    #[test]
    fn json_strings_are_escaped_as_postgres_escapes_them() {
        let mut out = String::new();
        write_json_str(&mut out, "a\"b\\c\u{8}\u{c}\n\r\t\u{1}\u{1f} é ✓ end").unwrap();
        assert_eq!(out, r#""a\"b\\c\b\f\n\r\t\u0001\u001f é ✓ end""#);
        out.clear();
        write_json_str(&mut out, "").unwrap();
        assert_eq!(out, r#""""#);
    }
}
