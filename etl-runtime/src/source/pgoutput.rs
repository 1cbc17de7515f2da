//! pgoutput's change messages, as a logical replication stream carries them (protocol version
//! 1, `binary 'true'`): the first piece of changes from the WAL (#35), decoded here and nowhere
//! else, before any client crate is wired in.
//!
//! In binary mode a column's value comes in the form COPY's binary format gives it, so a
//! change's tuple becomes a COPY tuple ([`TupleData::copy_tuple`]) and goes through the same
//! codecs as a table's export: one reading of every type, whichever way the rows came.
//! Format: PostgreSQL's "Logical Replication Message Formats".

use bytes::{BufMut, Bytes, BytesMut};

/// A decoded change message (Begin and Commit are the client's to frame).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The columns of a relation, sent before its first change in a session and after its
    /// definition changed.
    Relation(Relation),
    Insert {
        relation: u32,
        new: TupleData,
    },
    /// `old` is the replica identity's key (`'K'`) or, with REPLICA IDENTITY FULL, the whole
    /// old row (`'O'`); absent when the key did not change.
    Update {
        relation: u32,
        old: Option<TupleData>,
        new: TupleData,
    },
    Delete {
        relation: u32,
        old: TupleData,
    },
    Truncate {
        relations: Vec<u32>,
        /// `CASCADE` (1) and `RESTART IDENTITY` (2).
        options: u8,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    /// `d` (default: the primary key), `n` (nothing), `f` (full), `i` (an index).
    pub replica_identity: u8,
    pub columns: Vec<RelationColumn>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationColumn {
    /// Part of the replica identity's key.
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// One column's value in a change.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A TOASTed value the update did not change, which pgoutput does not send (without
    /// REPLICA IDENTITY FULL): it has to come from the row's previous version.
    UnchangedToast,
    Text(Bytes),
    Binary(Bytes),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TupleData(pub Vec<Value>);

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("the message ended early, in its {0}")]
    Truncated(&'static str),
    #[error("unknown message kind `{0}`")]
    UnknownKind(char),
    #[error("unknown tuple column kind `{0}`")]
    UnknownColumnKind(char),
    #[error("expected `{expected}` in a {message} message, found `{found}`")]
    Unexpected {
        message: &'static str,
        expected: &'static str,
        found: char,
    },
    #[error("a name is not UTF-8")]
    Name,
}

/// Why a tuple cannot be written as a COPY tuple as it came.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CopyTupleError {
    #[error("column {0} is an unchanged TOASTed value, which the change does not carry")]
    UnchangedToast(usize),
    #[error("column {0} came as text; the stream must be read in binary mode")]
    Text(usize),
}

impl TupleData {
    /// The tuple as a COPY binary tuple (field count, then each field's length and bytes, -1
    /// for NULL): what the table's encoders read.
    pub fn copy_tuple(&self) -> Result<Bytes, CopyTupleError> {
        let mut out = BytesMut::with_capacity(
            2 + self
                .0
                .iter()
                .map(|v| match v {
                    Value::Binary(b) => 4 + b.len(),
                    _ => 4,
                })
                .sum::<usize>(),
        );
        out.put_i16(self.0.len() as i16);
        for (index, value) in self.0.iter().enumerate() {
            match value {
                Value::Null => out.put_i32(-1),
                Value::Binary(bytes) => {
                    out.put_i32(bytes.len() as i32);
                    out.put_slice(bytes);
                }
                Value::UnchangedToast => return Err(CopyTupleError::UnchangedToast(index)),
                Value::Text(_) => return Err(CopyTupleError::Text(index)),
            }
        }
        Ok(out.freeze())
    }
}

/// Reads a message's fields in order.
struct Reader<'a> {
    rest: &'a [u8],
    whole: &'a Bytes,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(self.i32(what)? as u32)
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Truncated(what))?;
        let text = std::str::from_utf8(&self.rest[..end]).map_err(|_| DecodeError::Name)?;
        self.rest = &self.rest[end + 1..];
        Ok(text.to_string())
    }

    /// `n` bytes as a slice of the message's own buffer (no copy).
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        let start = self.whole.len() - self.rest.len();
        self.take(n, what)?;
        Ok(self.whole.slice(start..start + n))
    }

    fn tuple(&mut self) -> Result<TupleData, DecodeError> {
        let count = self.i16("tuple's column count")?.max(0) as usize;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            let value = match self.u8("column kind")? {
                b'n' => Value::Null,
                b'u' => Value::UnchangedToast,
                kind @ (b't' | b'b') => {
                    let len = self.i32("value's length")?.max(0) as usize;
                    let bytes = self.bytes(len, "value")?;
                    if kind == b't' {
                        Value::Text(bytes)
                    } else {
                        Value::Binary(bytes)
                    }
                }
                other => return Err(DecodeError::UnknownColumnKind(other as char)),
            };
            values.push(value);
        }
        Ok(TupleData(values))
    }

    fn expect(
        &mut self,
        message: &'static str,
        expected: &'static str,
        allowed: &[u8],
    ) -> Result<u8, DecodeError> {
        let found = self.u8(message)?;
        if allowed.contains(&found) {
            Ok(found)
        } else {
            Err(DecodeError::Unexpected {
                message,
                expected,
                found: found as char,
            })
        }
    }
}

/// Decodes one pgoutput message (an XLogData's payload); `Ok(None)` for the kinds the client
/// frames or this export has no use for (Begin, Commit, Origin, Type, Message).
pub fn decode(message: &Bytes) -> Result<Option<Change>, DecodeError> {
    let mut r = Reader {
        rest: message,
        whole: message,
    };
    let change = match r.u8("kind")? {
        b'B' | b'C' | b'O' | b'Y' | b'M' => return Ok(None),
        b'R' => {
            let id = r.u32("relation id")?;
            let schema = r.string("schema")?;
            let name = r.string("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let count = r.i16("column count")?.max(0) as usize;
            let mut columns = Vec::with_capacity(count);
            for _ in 0..count {
                let flags = r.u8("column flags")?;
                columns.push(RelationColumn {
                    key: flags & 1 == 1,
                    name: r.string("column name")?,
                    type_oid: r.u32("column type")?,
                    type_modifier: r.i32("column type modifier")?,
                });
            }
            Change::Relation(Relation {
                id,
                schema,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32("relation id")?;
            r.expect("insert", "N", b"N")?;
            Change::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32("relation id")?;
            let (old, new) = match r.expect("update", "K, O or N", b"KON")? {
                b'N' => (None, r.tuple()?),
                _ => {
                    let old = r.tuple()?;
                    r.expect("update", "N", b"N")?;
                    (Some(old), r.tuple()?)
                }
            };
            Change::Update { relation, old, new }
        }
        b'D' => {
            let relation = r.u32("relation id")?;
            r.expect("delete", "K or O", b"KO")?;
            Change::Delete {
                relation,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let count = r.i32("relation count")?.max(0) as usize;
            let options = r.u8("truncate options")?;
            let relations = (0..count)
                .map(|_| r.u32("relation id"))
                .collect::<Result<_, _>>()?;
            Change::Truncate { relations, options }
        }
        other => return Err(DecodeError::UnknownKind(other as char)),
    };
    Ok(Some(change))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `b` + length + bytes, a binary column as pgoutput sends it.
    fn binary(value: &[u8]) -> Vec<u8> {
        let mut out = vec![b'b'];
        out.extend((value.len() as i32).to_be_bytes());
        out.extend(value);
        out
    }

    /// The messages PostgreSQL 15 sent for `t (id bigint PRIMARY KEY, v numeric(10,2), note
    /// text)` (read from a real slot in binary mode): the relation, `INSERT (6, 9.75, 'after
    /// slot')` and the delete of row 3; and an update of row 2's note as pgoutput sends one
    /// whose TOASTed column did not change.
    #[test]
    fn messages_of_a_real_stream_decode_and_become_copy_tuples() {
        let mut relation = vec![b'R', 0, 0, 64, 0];
        relation.extend(b"public\0t\0d");
        relation.extend(3i16.to_be_bytes());
        for (flags, name, oid, typmod) in [
            (1u8, "id", 20u32, -1i32),
            (0, "v", 1700, 0x000a_0006),
            (0, "note", 25, -1),
        ] {
            relation.push(flags);
            relation.extend(name.as_bytes());
            relation.push(0);
            relation.extend(oid.to_be_bytes());
            relation.extend(typmod.to_be_bytes());
        }
        let Some(Change::Relation(r)) = decode(&Bytes::from(relation)).expect("relation") else {
            panic!("not a relation");
        };
        assert_eq!(
            (r.id, r.schema.as_str(), r.name.as_str()),
            (16384, "public", "t")
        );
        assert_eq!(r.replica_identity, b'd');
        assert!(r.columns[0].key && !r.columns[1].key);
        assert_eq!(r.columns[1].type_modifier, 0x000a_0006);

        // 9.75 as numeric's binary form: 2 digits (base 10,000), weight 0, scale 2.
        let numeric = [0, 2, 0, 0, 0, 0, 0, 2, 0, 9, 29, 76];
        let mut insert = vec![b'I', 0, 0, 64, 0, b'N'];
        insert.extend(3i16.to_be_bytes());
        insert.extend(binary(&6i64.to_be_bytes()));
        insert.extend(binary(&numeric));
        insert.extend(binary(b"after slot"));
        let Some(Change::Insert { relation, new }) = decode(&Bytes::from(insert)).expect("insert")
        else {
            panic!("not an insert");
        };
        assert_eq!(relation, 16384);
        // The COPY tuple the table's encoders read, field for field.
        let mut copy = 3i16.to_be_bytes().to_vec();
        for value in [&6i64.to_be_bytes()[..], &numeric, b"after slot"] {
            copy.extend((value.len() as i32).to_be_bytes());
            copy.extend(value);
        }
        assert_eq!(new.copy_tuple().expect("binary").as_ref(), copy.as_slice());
        // ... which the codecs read as they read COPY's values.
        let Value::Binary(v) = &new.0[1] else {
            panic!("a binary value");
        };
        let numeric = crate::codec::Scalar::Numeric(Some(etl_types::NumericTypmod {
            precision: 10,
            scale: 2,
        }));
        assert_eq!(crate::codec::render_key_value(numeric, v), "9.75");

        let mut update = vec![b'U', 0, 0, 64, 0, b'N'];
        update.extend(3i16.to_be_bytes());
        update.extend(binary(&2i64.to_be_bytes()));
        update.push(b'u');
        update.extend(binary(b"updated"));
        let Some(Change::Update { old, new, .. }) = decode(&Bytes::from(update)).expect("update")
        else {
            panic!("not an update");
        };
        assert_eq!(old, None);
        assert_eq!(new.0[1], Value::UnchangedToast);
        assert_eq!(
            new.copy_tuple(),
            Err(CopyTupleError::UnchangedToast(1)),
            "an unchanged TOASTed value must come from elsewhere"
        );

        let mut delete = vec![b'D', 0, 0, 64, 0, b'K'];
        delete.extend(3i16.to_be_bytes());
        delete.extend(binary(&3i64.to_be_bytes()));
        delete.extend([b'n', b'n']);
        let Some(Change::Delete { old, .. }) = decode(&Bytes::from(delete)).expect("delete") else {
            panic!("not a delete");
        };
        assert_eq!(
            old.0[0],
            Value::Binary(Bytes::copy_from_slice(&3i64.to_be_bytes()))
        );
        assert_eq!(old.0[1..], [Value::Null, Value::Null]);
    }

    #[test]
    fn truncates_and_framing_messages_and_bad_input() {
        let mut truncate = vec![b'T'];
        truncate.extend(2i32.to_be_bytes());
        truncate.push(1);
        truncate.extend(16384u32.to_be_bytes());
        truncate.extend(16390u32.to_be_bytes());
        assert_eq!(
            decode(&Bytes::from(truncate)).expect("truncate"),
            Some(Change::Truncate {
                relations: vec![16384, 16390],
                options: 1
            })
        );
        assert_eq!(decode(&Bytes::from_static(b"B\0\0")), Ok(None));
        assert_eq!(
            decode(&Bytes::from_static(b"I\0\0@\0N\0\x01b\0\0\0\x08\0\0")),
            Err(DecodeError::Truncated("value"))
        );
        assert_eq!(
            decode(&Bytes::from_static(b"D\0\0@\0N")),
            Err(DecodeError::Unexpected {
                message: "delete",
                expected: "K or O",
                found: 'N'
            })
        );
        assert_eq!(
            decode(&Bytes::from_static(b"Z")),
            Err(DecodeError::UnknownKind('Z'))
        );
    }
}
