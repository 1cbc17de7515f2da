//! Masked columns (`#[etl(mask = "hmac_sha256")]`): a column holding personal data leaves the
//! database host as a keyed hash of its value, never as the value.
//!
//! A masked column is selected as PostgreSQL's text of the value (`::text`, whatever its type),
//! and each COPY tuple is rewritten before anything else sees it: the masked field's bytes
//! become the 64 lowercase hex digits of HMAC-SHA256(key, text). Every later stage (the
//! encoders, the partition router, the key pass and its key file, deletions, error messages
//! that render a key) sees only the hash, so no path can write the value by mistake. The same
//! text under the same key hashes the same in every table and run, so masked columns still
//! join; without the key the hash cannot be recomputed from a guessed value.

use std::path::Path;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::codec::{ValueError, take_field, tuple_fields};
use crate::model::TableInfo;

/// The fewest key bytes taken: a shorter key is a mistake (an empty file, a placeholder), and
/// a key that can be guessed makes every hash a lookup away from its value.
pub const MIN_KEY_BYTES: usize = 16;

/// Why a mask key cannot be used; never holds the key.
#[derive(Debug, thiserror::Error)]
pub enum MaskKeyError {
    #[error(
        "the mask key is {0} bytes; at least {MIN_KEY_BYTES} are needed (32 random bytes, for \
         example `openssl rand -hex 32`)"
    )]
    TooShort(usize),
    #[error("cannot read the mask key file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The key masked columns are hashed with. Its `Debug` shows no byte of it.
#[derive(Clone)]
pub struct MaskKey {
    /// HMAC's state with the key absorbed: each value clones it.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaskKey(***)")
    }
}

impl MaskKey {
    /// A key from its bytes, one trailing newline left out (as a file or an environment
    /// variable written by `echo` has it).
    pub fn new(key: &[u8]) -> Result<Self, MaskKeyError> {
        let key = key
            .strip_suffix(b"\n")
            .map(|k| k.strip_suffix(b"\r").unwrap_or(k))
            .unwrap_or(key);
        if key.len() < MIN_KEY_BYTES {
            return Err(MaskKeyError::TooShort(key.len()));
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .map_err(|_| MaskKeyError::TooShort(key.len()))?;
        Ok(Self { mac })
    }

    /// The key in the file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, MaskKeyError> {
        let bytes = std::fs::read(path).map_err(|source| MaskKeyError::File {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&bytes)
    }

    /// The mask of `value`: HMAC-SHA256 as 64 lowercase hex digits, appended to `out`.
    pub fn hash_into(&self, value: &[u8], out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(value);
        for byte in mac.finalize().into_bytes() {
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        }
    }

    /// What tells this key from another in a manifest, revealing nothing of it: the first 16
    /// hex digits of the HMAC of a constant.
    pub fn id(&self) -> String {
        let mut id = self.hash(b"etl-toolkit mask key id");
        id.truncate(16);
        id
    }

    /// The mask of `value` as text.
    pub fn hash(&self, value: &[u8]) -> String {
        let mut out = Vec::with_capacity(HASH_LEN);
        self.hash_into(value, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The length of a mask: 32 bytes of HMAC-SHA256 in hex.
const HASH_LEN: usize = 64;

/// The masked columns of a table, by their place in a tuple, and the key.
#[derive(Clone, Debug)]
pub(crate) struct Masker {
    key: MaskKey,
    /// Per field of the tuples masked: whether it is masked.
    masked: Vec<bool>,
    /// How many bytes a tuple grows by at most: a hash per masked field.
    growth: usize,
}

impl Masker {
    /// The masker of tuples of `columns` (a table's columns, or the subset a query selects),
    /// or `None` when none is masked.
    pub(crate) fn new<'a>(
        columns: impl IntoIterator<Item = &'a crate::model::ColumnInfo>,
        key: Option<&MaskKey>,
    ) -> Result<Option<Self>, MissingMaskKey> {
        let masked: Vec<bool> = columns.into_iter().map(|c| c.mask.is_some()).collect();
        if !masked.contains(&true) {
            return Ok(None);
        }
        let key = key.ok_or(MissingMaskKey)?;
        let growth = masked.iter().filter(|&&m| m).count() * HASH_LEN;
        Ok(Some(Self {
            key: key.clone(),
            masked,
            growth,
        }))
    }

    /// The masker of `info`'s full tuples.
    pub(crate) fn for_table(
        info: &TableInfo,
        key: Option<&MaskKey>,
    ) -> Result<Option<Self>, MissingMaskKey> {
        Self::new(info.columns, key)
    }

    /// `tuple` with every masked field's value replaced by its hash (NULL stays NULL).
    pub(crate) fn mask(&self, tuple: &[u8]) -> Result<Bytes, ValueError> {
        let mut out = Vec::with_capacity(tuple.len() + self.growth);
        let mut rest = tuple_fields(tuple, self.masked.len())?;
        out.extend_from_slice(&tuple[..2]);
        for &masked in &self.masked {
            match take_field(&mut rest)? {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(value) if masked => {
                    out.extend_from_slice(&(HASH_LEN as i32).to_be_bytes());
                    self.key.hash_into(value, &mut out);
                }
                Some(value) => {
                    // A value of COPY's binary format: its length fits an i32 as it came.
                    out.extend_from_slice(&(value.len() as i32).to_be_bytes());
                    out.extend_from_slice(value);
                }
            }
        }
        Ok(Bytes::from(out))
    }

    /// Every tuple of `tuples` masked.
    pub(crate) fn mask_all(&self, tuples: &[Bytes]) -> Result<Vec<Bytes>, ValueError> {
        tuples.iter().map(|t| self.mask(t)).collect()
    }
}

/// A table with masked columns run without a mask key.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "it has masked columns and no mask key was given (--mask-key-file or ETL_MASK_KEY); nothing \
     is exported unmasked"
)]
pub struct MissingMaskKey;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Scalar;
    use crate::model::ColumnInfo;

    fn column(name: &'static str, masked: bool) -> ColumnInfo {
        ColumnInfo {
            name,
            field: name,
            sql_type: "text",
            nullable: true,
            select: name,
            wire: Scalar::Text,
            mask: masked.then_some(etl_types::Mask::HmacSha256),
        }
    }

    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = (fields.len() as i16).to_be_bytes().to_vec();
        for field in fields {
            match field {
                Some(value) => {
                    out.extend((value.len() as i32).to_be_bytes());
                    out.extend(*value);
                }
                None => out.extend((-1i32).to_be_bytes()),
            }
        }
        out
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231, test case 2 ("Jefe" is below the minimum, so the check is on the MAC).
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").expect("any length");
        let key = MaskKey { mac };
        assert_eq!(
            key.hash(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keys_are_checked_and_never_shown() {
        assert!(matches!(
            MaskKey::new(b"short\n"),
            Err(MaskKeyError::TooShort(5))
        ));
        let key = MaskKey::new(b"0123456789abcdef0123\n").expect("20 bytes");
        assert_eq!(format!("{key:?}"), "MaskKey(***)");
        // One trailing newline is not part of the key.
        let same = MaskKey::new(b"0123456789abcdef0123").expect("20 bytes");
        assert_eq!(key.hash(b"a@example.com"), same.hash(b"a@example.com"));
        let other = MaskKey::new(b"0123456789abcdef0124").expect("20 bytes");
        assert_ne!(key.hash(b"a@example.com"), other.hash(b"a@example.com"));
    }

    #[test]
    fn only_masked_fields_change_and_nulls_stay_null() {
        let key = MaskKey::new(b"0123456789abcdef").expect("16 bytes");
        let columns = [
            column("id", false),
            column("email", true),
            column("ssn", true),
        ];
        let masker = Masker::new(&columns, Some(&key))
            .expect("a key")
            .expect("masked columns");
        let masked = masker
            .mask(&tuple(&[Some(b"42"), Some(b"a@example.com"), None]))
            .expect("a tuple");
        let hash = key.hash(b"a@example.com");
        assert_eq!(
            masked.as_ref(),
            tuple(&[Some(b"42"), Some(hash.as_bytes()), None])
        );
        assert!(Masker::new(&columns, None).is_err(), "no key, no export");
        assert!(
            Masker::new(&columns[..1], None)
                .expect("nothing masked")
                .is_none()
        );
    }
}
