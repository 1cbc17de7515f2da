//! Splits the byte stream of `COPY ... TO STDOUT (FORMAT binary)` into tuples.
//!
//! PostgreSQL sends one CopyData message per row, so the tuples are normally slices of the
//! messages, without copying; a tuple split across messages is reassembled in a buffer.

use bytes::{Buf, Bytes, BytesMut};

/// The binary COPY signature: `PGCOPY\n\377\r\n\0`.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

pub use crate::error::CopyError;

#[derive(Default)]
pub struct TupleSplitter {
    pending: BytesMut,
    header_read: bool,
    finished: bool,
}

impl TupleSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one message; appends each complete tuple to `out`.
    pub fn feed(&mut self, mut data: Bytes, out: &mut Vec<Bytes>) -> Result<(), CopyError> {
        if self.finished {
            return if data.is_empty() {
                Ok(())
            } else {
                Err(CopyError::TrailingData)
            };
        }
        if !self.pending.is_empty() || !self.header_read {
            self.pending.extend_from_slice(&data);
            let mut buffered = self.pending.split().freeze();
            if !self.header_read {
                match header_len(&buffered)? {
                    Some(len) => {
                        buffered.advance(len);
                        self.header_read = true;
                    }
                    None => {
                        self.pending.extend_from_slice(&buffered);
                        return Ok(());
                    }
                }
            }
            data = buffered;
        }
        // The fast path: whole tuples sliced out of `data`.
        loop {
            match tuple_len(&data) {
                Some(Tuple::End) => {
                    self.finished = true;
                    return if data.len() == 2 {
                        Ok(())
                    } else {
                        Err(CopyError::TrailingData)
                    };
                }
                Some(Tuple::Row(len)) => out.push(data.split_to(len)),
                None => {
                    self.pending.extend_from_slice(&data);
                    return Ok(());
                }
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
            let mut tuples = Vec::new();
            splitter
                .feed(Bytes::copy_from_slice(&whole[..cut]), &mut tuples)
                .unwrap();
            splitter
                .feed(Bytes::copy_from_slice(&whole[cut..]), &mut tuples)
                .unwrap();
            splitter.finish().unwrap();
            assert_eq!(tuples.len(), 2, "cut at {cut}");
            assert_eq!(&tuples[0][..], &[0, 1, 0, 0, 0, 4, 0, 0, 0, 7]);
        }
    }

    #[test]
    fn a_stream_cut_short_is_an_error() {
        let whole = stream();
        let mut splitter = TupleSplitter::new();
        let mut tuples = Vec::new();
        splitter
            .feed(
                Bytes::copy_from_slice(&whole[..whole.len() - 3]),
                &mut tuples,
            )
            .unwrap();
        assert!(splitter.finish().is_err());
    }
}
