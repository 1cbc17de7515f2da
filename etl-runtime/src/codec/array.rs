//! One-dimensional arrays of any mapped type: JSON text (`["a",null,"b"]`, the default) or, when
//! the model opts into `array = "list"`, a native Parquet LIST of the element's mapping. The
//! elements are written by their own family: as JSON by [`JsonElement`] / [`write_json_wire`],
//! into a LIST by the element's encoder.

use std::sync::Arc;

use arrow_array::{ArrayRef, ListArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::{DataType, Field};

use super::{
    ColumnEncoder, Encode, FromWire, JsonElement, Scalar, Utf8Encoder, ValueError, take_field,
    write_json_wire,
};

/// The elements of a one-dimensional array in PostgreSQL's binary format.
pub struct ArrayReader<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> ArrayReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, ValueError> {
        let header = |at: usize| -> Result<i32, ValueError> {
            bytes
                .get(at..at + 4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| ValueError::Wire("truncated array".into()))
        };
        match header(0)? {
            0 => Ok(Self {
                rest: &[],
                remaining: 0,
            }),
            1 => {
                let len = usize::try_from(header(12)?)
                    .map_err(|_| ValueError::Wire("negative array length".into()))?;
                Ok(Self {
                    rest: &bytes[20.min(bytes.len())..],
                    remaining: len,
                })
            }
            n => Err(ValueError::Wire(format!(
                "a {n}-dimensional array; only one-dimensional arrays are exported"
            ))),
        }
    }
}

impl<'a> Iterator for ArrayReader<'a> {
    type Item = Result<Option<&'a [u8]>, ValueError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(take_field(&mut self.rest))
    }
}

impl<T: FromWire> FromWire for Vec<Option<T>> {
    fn from_wire(bytes: &[u8]) -> Result<Self, ValueError> {
        ArrayReader::new(bytes)?
            .map(|value| value?.map(T::from_wire).transpose())
            .collect()
    }
}

/// `[e1,null,e3]` around elements written by `write`.
fn write_json_array<I>(
    out: &mut String,
    elements: I,
    mut write: impl FnMut(&mut String, I::Item) -> Result<(), ValueError>,
) -> Result<(), ValueError>
where
    I: IntoIterator,
{
    out.push('[');
    for (i, element) in elements.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(out, element)?;
    }
    out.push(']');
    Ok(())
}

impl<T: JsonElement> Encode<Vec<Option<T>>> for Utf8Encoder {
    fn push(&mut self, v: &Vec<Option<T>>) -> Result<(), ValueError> {
        let mut out = String::with_capacity(2 + v.len() * 8);
        write_json_array(&mut out, v, |out, element| element.write_json(out))?;
        self.append_str(&out);
        Ok(())
    }
}

impl Utf8Encoder {
    /// Appends a one-dimensional array as the JSON PostgreSQL's `to_json` would write.
    pub fn push_wire_json_array(
        &mut self,
        element: Scalar,
        bytes: &[u8],
    ) -> Result<(), ValueError> {
        // One buffer for every row's JSON, not an allocation per row.
        let mut out = self.take_scratch();
        out.reserve(bytes.len() + 2);
        let written = write_json_array(
            &mut out,
            ArrayReader::new(bytes)?,
            |out, value| match value? {
                None => {
                    out.push_str("null");
                    Ok(())
                }
                Some(value) => write_json_wire(out, element, value),
            },
        );
        if written.is_ok() {
            self.append_str(&out);
        }
        self.return_scratch(out);
        written
    }
}

/// Arrays opted into `array = "list"` -> a native Parquet LIST of the element's mapping.
pub struct ListEncoder<E> {
    element: E,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl<E: ColumnEncoder> ListEncoder<E> {
    pub fn new(capacity: usize, element: E) -> Self {
        let mut offsets = Vec::with_capacity(capacity + 1);
        offsets.push(0);
        Self {
            element,
            offsets,
            nulls: NullBufferBuilder::new(capacity),
        }
    }

    /// PostgreSQL array elements can always be NULL.
    fn element_field(&self) -> Field {
        self.element.field("element", true)
    }

    /// Ends the current list after `len` elements were pushed into the element encoder.
    fn close_list(&mut self, len: usize) {
        let last = self.offsets.last().copied().unwrap_or(0);
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        self.offsets.push(last.saturating_add(len));
        self.nulls.append_non_null();
    }

    /// Appends a one-dimensional array as a LIST, each element written by `push`.
    pub fn push_wire_list(
        &mut self,
        bytes: &[u8],
        push: impl Fn(&mut E, &[u8]) -> Result<(), ValueError>,
    ) -> Result<(), ValueError> {
        let mut len = 0usize;
        for value in ArrayReader::new(bytes)? {
            match value? {
                Some(value) => push(&mut self.element, value)?,
                None => self.element.push_null(),
            }
            len += 1;
        }
        self.close_list(len);
        Ok(())
    }
}

impl<E: ColumnEncoder> ColumnEncoder for ListEncoder<E> {
    fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(
            name,
            DataType::List(Arc::new(self.element_field())),
            nullable,
        )
    }
    fn push_null(&mut self) {
        let last = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(last);
        self.nulls.append_null();
    }
    fn finish(&mut self) -> ArrayRef {
        let field = Arc::new(self.element_field());
        let values = self.element.finish();
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let nulls = self.nulls.finish();
        Arc::new(ListArray::new(
            field,
            OffsetBuffer::new(offsets.into()),
            values,
            nulls,
        ))
    }
}

impl<T, E: Encode<T>> Encode<Vec<Option<T>>> for ListEncoder<E> {
    fn push(&mut self, v: &Vec<Option<T>>) -> Result<(), ValueError> {
        for element in v {
            match element {
                Some(element) => self.element.push(element)?,
                None => self.element.push_null(),
            }
        }
        self.close_list(v.len());
        Ok(())
    }
}
