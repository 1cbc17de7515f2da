//! Each row's partition: key values as codes (a tag and a number, or a text's number),
//! partitions found by their codes in one table of ids over one array of codes.

use super::*;

/// A partition key's column in one batch, read as [`KeyValue`]s.
pub(crate) struct KeyColumn<'a> {
    pub(crate) values: TypedValues<'a>,
    pub(crate) nulls: Option<&'a arrow_buffer::NullBuffer>,
    pub(crate) transform: PartitionTransform,
    /// Rows of this batch whose text is `''`.
    pub(crate) empty_text: std::cell::Cell<u64>,
}

/// The column downcast once per batch, not once per row.
pub(crate) enum TypedValues<'a> {
    Int16(&'a arrow_array::Int16Array),
    Int32(&'a arrow_array::Int32Array),
    Int64(&'a arrow_array::Int64Array),
    Boolean(&'a arrow_array::BooleanArray),
    Text(&'a arrow_array::StringArray),
    Date(&'a arrow_array::Date32Array),
    /// Microseconds since 1970 in UTC (timestamptz is stored in UTC).
    Micros(&'a arrow_array::TimestampMicrosecondArray),
}

impl<'a> KeyColumn<'a> {
    pub(crate) fn new(array: &'a ArrayRef, key: &PartitionKey) -> Result<Self> {
        let values = match array.data_type() {
            DataType::Int16 => TypedValues::Int16(array.as_primitive::<Int16Type>()),
            DataType::Int32 => TypedValues::Int32(array.as_primitive::<Int32Type>()),
            DataType::Int64 => TypedValues::Int64(array.as_primitive::<Int64Type>()),
            DataType::Boolean => TypedValues::Boolean(array.as_boolean()),
            DataType::Utf8 => TypedValues::Text(array.as_string::<i32>()),
            DataType::Date32 => TypedValues::Date(array.as_primitive::<Date32Type>()),
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => {
                TypedValues::Micros(array.as_primitive::<TimestampMicrosecondType>())
            }
            other => {
                return Err(Error::Arrow(
                    arrow_schema::ArrowError::InvalidArgumentError(format!(
                        "partition key {} cannot be read from a {other} column",
                        key.name
                    )),
                ));
            }
        };
        Ok(Self {
            values,
            nulls: array.nulls(),
            transform: key.transform,
            empty_text: std::cell::Cell::new(0),
        })
    }

    /// The row's value as two words, compared and hashed while rows are routed: a tag (NULL,
    /// number, text) and the number, or the text's number in `texts`.
    pub(crate) fn code(&self, row: usize, texts: &mut TextCodes) -> (u64, u64) {
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            return (0, 0);
        }
        let number = match self.values {
            TypedValues::Int16(a) => a.value(row).into(),
            TypedValues::Int32(a) => a.value(row).into(),
            TypedValues::Int64(a) => a.value(row),
            TypedValues::Boolean(a) => a.value(row).into(),
            TypedValues::Text(a) => {
                let text = a.value(row);
                if text.is_empty() {
                    // Hive keeps no empty partition value: it is the NULL partition.
                    self.empty_text.set(self.empty_text.get() + 1);
                    return (0, 0);
                }
                return (2, texts.number(text));
            }
            TypedValues::Date(a) => bucket(a.value(row).into(), self.transform),
            TypedValues::Micros(a) => {
                bucket(a.value(row).div_euclid(86_400_000_000), self.transform)
            }
        };
        (1, number as u64)
    }

    /// The row's value, for its partition's directory and order.
    pub(crate) fn value(&self, row: usize) -> KeyValue {
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            return KeyValue::Null;
        }
        match self.values {
            TypedValues::Int16(a) => KeyValue::Number(a.value(row).into()),
            TypedValues::Int32(a) => KeyValue::Number(a.value(row).into()),
            TypedValues::Int64(a) => KeyValue::Number(a.value(row)),
            TypedValues::Boolean(a) => KeyValue::Bool(a.value(row)),
            TypedValues::Text(a) => match a.value(row) {
                "" => KeyValue::Null,
                text => KeyValue::Text(text.to_string()),
            },
            TypedValues::Date(a) => KeyValue::Number(bucket(a.value(row).into(), self.transform)),
            TypedValues::Micros(a) => KeyValue::Number(bucket(
                a.value(row).div_euclid(86_400_000_000),
                self.transform,
            )),
        }
    }
}

/// Partition ids by their keys' codes, two words per key ([`KeyColumn::code`]), looked up
/// once per row whose partition differs from the previous row's (in heap order, nearly every
/// row). The codes are one array, indexed by id, and the table holds ids only: with a map from
/// boxed codes, each lookup's comparison read a separate allocation: a cache miss per row.
pub(crate) struct PartitionIds {
    pub(crate) words: usize,
    pub(crate) table: hashbrown::HashTable<u32>,
    /// Partition `id`'s codes are `codes[id * words..(id + 1) * words]`.
    pub(crate) codes: Vec<u64>,
}

impl PartitionIds {
    pub(crate) fn new(words: usize) -> Self {
        Self {
            words,
            table: hashbrown::HashTable::new(),
            codes: Vec::new(),
        }
    }

    pub(crate) fn find(&self, codes: &[u64]) -> Option<u32> {
        let known = &self.codes;
        let words = self.words;
        self.table
            .find(hash_words(codes), |&id| {
                same_words(&known[id as usize * words..][..words], codes)
            })
            .copied()
    }

    /// Numbers a partition not yet known.
    pub(crate) fn insert(&mut self, codes: &[u64]) -> u32 {
        let id = self.table.len() as u32;
        let Self {
            words,
            table,
            codes: known,
        } = self;
        table.insert_unique(hash_words(codes), id, |&id| {
            hash_words(&known[id as usize * *words..][..*words])
        });
        known.extend_from_slice(codes);
        id
    }
}

pub(crate) fn hash_words(words: &[u64]) -> u64 {
    let mut hasher = WordHasher::default();
    for &word in words {
        hasher.add(word);
    }
    hasher.finish()
}

/// Word by word: `==` on slices calls `memcmp`, whose call costs more than comparing a few
/// words, and rows are compared twice each (with the previous row's, then in the table).
pub(crate) fn same_words(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a == b)
}

/// A text key's values, numbered in order of appearance.
#[derive(Default)]
pub(crate) struct TextCodes {
    pub(crate) numbers: HashMap<Box<str>, u64, BuildHasherDefault<WordHasher>>,
    /// The last value looked up and its number: rows of one value often come together.
    pub(crate) last: Option<(String, u64)>,
}

impl TextCodes {
    pub(crate) fn number(&mut self, text: &str) -> u64 {
        if let Some((last, number)) = &self.last
            && last == text
        {
            return *number;
        }
        let next = self.numbers.len() as u64;
        let number = match self.numbers.get(text) {
            Some(&number) => number,
            None => {
                self.numbers.insert(text.into(), next);
                next
            }
        };
        match &mut self.last {
            Some((last, last_number)) => {
                last.clear();
                last.push_str(text);
                *last_number = number;
            }
            None => self.last = Some((text.to_string(), number)),
        }
        number
    }
}

/// A word-at-a-time multiplicative hash (rustc's FxHash): partition keys are a few words
/// looked up once per row; SipHash's resistance to crafted keys buys nothing here and costs a
/// measurable share of a partitioned export.
#[derive(Default)]
pub(crate) struct WordHasher(u64);

impl WordHasher {
    pub(crate) fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}
