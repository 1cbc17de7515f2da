//! The key file a run of a table with a cursor leaves beside its files: every primary key of
//! the table at the run's snapshot, in ascending order, as the COPY tuples PostgreSQL sent
//! them. The next run reads the keys again and walks both lists side by side: a key in the
//! file and no longer in the table was deleted in between.
//!
//! Format: the 8 bytes `ETLKEYS1`, then a zstd stream of records, each a tuple's length (u32,
//! big-endian) and the tuple (field count and length-prefixed fields, as COPY's binary
//! format has them). Sorted keys compress well: the file is a small fraction of the table.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ETLKEYS1";
/// zstd's level: the fastest, which was the compressor's CPU halved against level 3 for a
/// file a quarter larger (sorted keys compress to under a byte each either way).
const LEVEL: i32 = 1;
/// Bytes moved into and out of zstd's streams at a time.
const BUFFER: usize = 128 << 10;

/// Writes a key file, tuple by tuple, in the order given.
pub struct KeyFileWriter {
    path: PathBuf,
    /// Buffered in front of the compressor: a record is a few bytes, and each write into
    /// zstd's stream is a call into the compressor.
    encoder: BufWriter<zstd::stream::write::Encoder<'static, BufWriter<File>>>,
    keys: u64,
}

impl KeyFileWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let io = |e| Error::io("cannot write", path, e);
        let mut file = BufWriter::new(File::create(path).map_err(io)?);
        file.write_all(MAGIC).map_err(io)?;
        let encoder = BufWriter::with_capacity(
            BUFFER,
            zstd::stream::write::Encoder::new(file, LEVEL).map_err(io)?,
        );
        Ok(Self {
            path: path.to_path_buf(),
            encoder,
            keys: 0,
        })
    }

    pub fn push(&mut self, tuple: &[u8]) -> Result<()> {
        let len = u32::try_from(tuple.len()).map_err(|_| {
            Error::io(
                "cannot write",
                &self.path,
                std::io::Error::other("a key of 4 GiB or more"),
            )
        })?;
        let io = |e| Error::io("cannot write", &self.path, e);
        self.encoder.write_all(&len.to_be_bytes()).map_err(io)?;
        self.encoder.write_all(tuple).map_err(io)?;
        self.keys += 1;
        Ok(())
    }

    /// Ends the stream; returns how many keys the file holds.
    pub fn finish(self) -> Result<u64> {
        let io = |e| Error::io("cannot write", &self.path, e);
        let encoder = self.encoder.into_inner().map_err(|e| io(e.into_error()))?;
        let mut file = encoder.finish().map_err(io)?;
        file.flush().map_err(io)?;
        Ok(self.keys)
    }
}

/// Reads a key file's tuples back, in order.
pub struct KeyFileReader {
    /// Where the file came from, for errors.
    origin: String,
    /// Buffered behind the decompressor, for the same reason as the writer.
    decoder: BufReader<zstd::stream::read::Decoder<'static, BufReader<File>>>,
    tuple: Vec<u8>,
}

impl KeyFileReader {
    /// The key file at `path`; `origin` names it in errors (a path, or the URL it came from).
    pub fn open(path: &Path, origin: &str) -> Result<Self> {
        let unreadable = |reason: String| Error::KeysUnreadable {
            path: origin.to_string(),
            reason,
        };
        let mut file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
        let mut magic = [0u8; MAGIC.len()];
        if file.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Err(unreadable("not a key file of this format".into()));
        }
        let decoder =
            zstd::stream::read::Decoder::new(file).map_err(|e| unreadable(e.to_string()))?;
        Ok(Self {
            origin: origin.to_string(),
            decoder: BufReader::with_capacity(BUFFER, decoder),
            tuple: Vec::new(),
        })
    }

    /// The next key's tuple, or None at the end.
    pub fn next_key(&mut self) -> Result<Option<&[u8]>> {
        let unreadable = |origin: &str, e: std::io::Error| Error::KeysUnreadable {
            path: origin.to_string(),
            reason: e.to_string(),
        };
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < len.len() {
            match self.decoder.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(unreadable(
                        &self.origin,
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(unreadable(&self.origin, e)),
            }
        }
        self.tuple.resize(u32::from_be_bytes(len) as usize, 0);
        self.decoder
            .read_exact(&mut self.tuple)
            .map_err(|e| unreadable(&self.origin, e))?;
        Ok(Some(&self.tuple))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_in_order_and_a_cut_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("etl-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("_keys-00000-x.zst");
        let mut writer = KeyFileWriter::create(&path).expect("create");
        let keys: Vec<Vec<u8>> = (0u32..10_000).map(|k| k.to_be_bytes().to_vec()).collect();
        for key in &keys {
            writer.push(key).expect("push");
        }
        assert_eq!(writer.finish().expect("finish"), 10_000);
        let bytes = std::fs::read(&path).expect("read");
        let mut reader = KeyFileReader::open(&path, "k").expect("open");
        let mut read = Vec::new();
        while let Some(key) = reader.next_key().expect("next") {
            read.push(key.to_vec());
        }
        assert_eq!(read, keys);

        let cut = dir.join("cut.zst");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let mut reader = KeyFileReader::open(&cut, "out/t/_keys-00000-x.zst").expect("open");
        let e = loop {
            match reader.next_key() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a cut file read to its end"),
                Err(e) => break e,
            }
        };
        assert!(e.to_string().contains("out/t/_keys-00000-x.zst"), "{e}");
        let parquet = dir.join("part-00000.parquet");
        std::fs::write(&parquet, b"PAR1").expect("write");
        let e = KeyFileReader::open(&parquet, "p")
            .err()
            .expect("not a key file");
        assert!(e.to_string().contains("not a key file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
