//! Splits the byte stream of `COPY ... TO STDOUT (FORMAT binary)` into tuples.
//!
//! PostgreSQL sends one CopyData message per row. Each tuple is copied out of its message into
//! one buffer per chunk of rows ([`Tuples`]): the message's bytes go back to the connection's
//! read buffer at once. (Tuples kept as slices of the messages instead held the buffer's
//! reference count on two cores, one counting up as rows came and the other down as chunks
//! were dropped, and kept the connection allocating a new read buffer every few rows.)

/// The binary COPY signature: `PGCOPY\n\377\r\n\0`.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

pub use crate::error::CopyError;

/// A chunk of COPY tuples, each tuple's bytes following the one before it in one buffer.
#[derive(Debug, Default)]
pub struct Tuples {
    bytes: Vec<u8>,
    /// Where each tuple ends in `bytes` (and the next one starts).
    ends: Vec<usize>,
}

impl Tuples {
    /// Room for `rows` tuples of `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, tuple: &[u8]) {
        self.bytes.extend_from_slice(tuple);
        self.ends.push(self.bytes.len());
    }

    /// Tuples in the chunk.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of all the tuples.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Every tuple of the chunk, in order.
    pub fn rows(&self) -> TupleRows<'_> {
        TupleRows {
            bytes: &self.bytes,
            start: 0,
            ends: &self.ends,
        }
    }
}

/// Consecutive tuples of a chunk; iterates over each tuple's bytes.
#[derive(Debug, Clone, Copy)]
pub struct TupleRows<'a> {
    bytes: &'a [u8],
    /// Where the first tuple starts in `bytes`.
    start: usize,
    ends: &'a [usize],
}

impl<'a> TupleRows<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The tuples in parts of `rows` (the last one may be shorter), in order.
    pub fn parts(self, rows: usize) -> impl Iterator<Item = TupleRows<'a>> {
        let rows = rows.max(1);
        let mut start = self.start;
        self.ends.chunks(rows).map(move |ends| {
            let part = TupleRows {
                bytes: self.bytes,
                start,
                ends,
            };
            start = ends.last().copied().unwrap_or(start);
            part
        })
    }
}

impl<'a> IntoIterator for TupleRows<'a> {
    type Item = &'a [u8];
    type IntoIter = TupleIter<'a>;

    fn into_iter(self) -> TupleIter<'a> {
        TupleIter {
            bytes: self.bytes,
            start: self.start,
            ends: self.ends.iter(),
        }
    }
}

/// The bytes of each tuple of a [`TupleRows`].
pub struct TupleIter<'a> {
    bytes: &'a [u8],
    start: usize,
    ends: std::slice::Iter<'a, usize>,
}

impl<'a> Iterator for TupleIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let end = *self.ends.next()?;
        let tuple = self.bytes.get(self.start..end);
        self.start = end;
        tuple
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

#[derive(Default)]
pub struct TupleSplitter {
    /// The start of a tuple (or of the header) whose end has not come yet.
    pending: Vec<u8>,
    header_read: bool,
    finished: bool,
}

impl TupleSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one message; appends each complete tuple to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Tuples) -> Result<(), CopyError> {
        if self.finished {
            return if data.is_empty() {
                Ok(())
            } else {
                Err(CopyError::TrailingData)
            };
        }
        // The usual case: whole tuples, copied straight from the message.
        if self.pending.is_empty() && self.header_read {
            let rest = self.split(data, out)?;
            self.pending.extend_from_slice(rest);
            return Ok(());
        }
        let mut buffered = std::mem::take(&mut self.pending);
        buffered.extend_from_slice(data);
        let mut from = 0;
        if !self.header_read {
            match header_len(&buffered)? {
                Some(len) => {
                    from = len;
                    self.header_read = true;
                }
                None => {
                    self.pending = buffered;
                    return Ok(());
                }
            }
        }
        let rest = self.split(&buffered[from..], out)?.len();
        buffered.drain(..buffered.len() - rest);
        self.pending = buffered;
        Ok(())
    }

    /// Appends the whole tuples at the start of `data` to `out`; returns what follows them.
    fn split<'d>(&mut self, mut data: &'d [u8], out: &mut Tuples) -> Result<&'d [u8], CopyError> {
        loop {
            match tuple_len(data) {
                Some(Tuple::End) => {
                    self.finished = true;
                    return if data.len() == 2 {
                        Ok(&[])
                    } else {
                        Err(CopyError::TrailingData)
                    };
                }
                Some(Tuple::Row(len)) => {
                    let (tuple, rest) = data.split_at(len);
                    out.push(tuple);
                    data = rest;
                }
                None => return Ok(data),
            }
        }
    }

    /// Checks that the stream ended where a stream may end.
    pub fn finish(&self) -> Result<(), CopyError> {
        if self.finished && self.pending.is_empty() {
            Ok(())
        } else {
            Err(CopyError::Truncated)
        }
    }
}

/// The header's length, once the whole header is in `data`.
fn header_len(data: &[u8]) -> Result<Option<usize>, CopyError> {
    if data.len() < SIGNATURE.len() + 8 {
        return if SIGNATURE.starts_with(&data[..data.len().min(SIGNATURE.len())]) {
            Ok(None)
        } else {
            Err(CopyError::BadSignature)
        };
    }
    if &data[..SIGNATURE.len()] != SIGNATURE {
        return Err(CopyError::BadSignature);
    }
    let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
    let len = SIGNATURE.len() + 8 + ext;
    Ok((data.len() >= len).then_some(len))
}

enum Tuple {
    Row(usize),
    End,
}

/// The length of the tuple at the start of `data`, if all of it is there.
fn tuple_len(data: &[u8]) -> Option<Tuple> {
    let count = i16::from_be_bytes([*data.first()?, *data.get(1)?]);
    if count == -1 {
        return Some(Tuple::End);
    }
    let mut at = 2usize;
    for _ in 0..count {
        let len = data.get(at..at + 4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len > 0 {
            at += len as usize;
        }
    }
    (at <= data.len()).then_some(Tuple::Row(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut s = SIGNATURE.to_vec();
        s.extend(0u32.to_be_bytes());
        s.extend(0u32.to_be_bytes());
        for value in [7i32, -1] {
            s.extend(1i16.to_be_bytes());
            if value < 0 {
                s.extend((-1i32).to_be_bytes());
            } else {
                s.extend(4i32.to_be_bytes());
                s.extend(value.to_be_bytes());
            }
        }
        s.extend((-1i16).to_be_bytes());
        s
    }

    #[test]
    fn tuples_come_out_whole_however_the_stream_is_cut() {
        let whole = stream();
        for cut in 1..whole.len() {
            let mut splitter = TupleSplitter::new();
            let mut tuples = Tuples::default();
            splitter.feed(&whole[..cut], &mut tuples).unwrap();
            splitter.feed(&whole[cut..], &mut tuples).unwrap();
            splitter.finish().unwrap();
            let rows: Vec<&[u8]> = tuples.rows().into_iter().collect();
            assert_eq!(
                rows,
                [
                    &[0, 1, 0, 0, 0, 4, 0, 0, 0, 7][..],
                    &[0, 1, 255, 255, 255, 255]
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_stream_cut_short_is_an_error() {
        let whole = stream();
        let mut splitter = TupleSplitter::new();
        let mut tuples = Tuples::default();
        splitter
            .feed(&whole[..whole.len() - 3], &mut tuples)
            .unwrap();
        assert!(splitter.finish().is_err());
    }

    #[test]
    fn parts_cover_every_tuple_once_in_order() {
        let mut tuples = Tuples::with_capacity(10, 0);
        for row in 0..10u8 {
            tuples.push(&vec![row; usize::from(row)]);
        }
        for rows in 1..=11 {
            let parts: Vec<TupleRows> = tuples.rows().parts(rows).collect();
            assert_eq!(parts.len(), 10usize.div_ceil(rows), "parts of {rows}");
            let seen: Vec<&[u8]> = parts.into_iter().flatten().collect();
            let expected: Vec<Vec<u8>> = (0..10u8).map(|row| vec![row; usize::from(row)]).collect();
            assert_eq!(seen, expected, "parts of {rows}");
        }
    }
}
