//! Keys sorted by this client, for a table whose key PostgreSQL cannot sort the way the key
//! file needs: a masked key column is known to the server only as its value, and its hash,
//! which the key file and deletions hold, exists only here. The keys of such a table are read
//! in any order, masked, and sorted in runs of a bounded size spilled as key files, then
//! merged: memory stays within the budget however many keys the table has.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::layout::keys::{KeyFileReader, KeyFileWriter};
use crate::source::keys::KeyOrder;

/// Key bytes held in memory before a sorted run is spilled. A key of one masked column is 70
/// bytes and about as many again in its allocation and handle: some 230,000 keys per run.
const RUN_BYTES: usize = 32 << 20;
/// What a key costs in memory beyond its bytes (its `Bytes` handle and allocation).
const KEY_OVERHEAD: usize = 64;

/// Sorts a table's keys, spilling sorted runs to `dir`.
pub(crate) struct KeySorter<'a> {
    order: &'a KeyOrder,
    dir: PathBuf,
    budget: usize,
    held: Vec<Bytes>,
    held_bytes: usize,
    runs: Vec<PathBuf>,
}

impl<'a> KeySorter<'a> {
    /// A sorter whose runs go to `dir` (made on the first spill; the caller removes it).
    pub(crate) fn new(order: &'a KeyOrder, dir: &Path) -> Self {
        Self::with_budget(order, dir, RUN_BYTES)
    }

    fn with_budget(order: &'a KeyOrder, dir: &Path, budget: usize) -> Self {
        Self {
            order,
            dir: dir.to_path_buf(),
            budget,
            held: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, key: Bytes) -> Result<()> {
        self.held_bytes += key.len() + KEY_OVERHEAD;
        self.held.push(key);
        if self.held_bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn sort_held(&mut self) -> Result<()> {
        // The comparison fails only on a malformed tuple; the first such failure is kept and
        // reported after the sort (which needs a total order meanwhile).
        let mut failed = None;
        let order = self.order;
        self.held.sort_unstable_by(|a, b| {
            order.compare(a, b).unwrap_or_else(|e| {
                failed.get_or_insert(e);
                Ordering::Equal
            })
        });
        match failed {
            Some(e) => Err(Error::KeyOrder {
                which: "the masked",
                detail: e.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn spill(&mut self) -> Result<()> {
        self.sort_held()?;
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io("cannot create", &self.dir, e))?;
        // In a scratch directory of its own beside the staged table, removed after the pass.
        let path = self.dir.join(format!("run-{:05}.keys", self.runs.len()));
        let mut writer = KeyFileWriter::create(&path)?;
        for key in self.held.drain(..) {
            writer.push(&key)?;
        }
        writer.finish()?;
        self.held_bytes = 0;
        self.runs.push(path);
        Ok(())
    }

    /// Hands every key to `each` in ascending order.
    pub(crate) fn finish(mut self, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if self.runs.is_empty() {
            self.sort_held()?;
            return self.held.iter().try_for_each(|key| each(key));
        }
        if !self.held.is_empty() {
            self.spill()?;
        }
        // Few runs (one per budget's worth of keys): the least head is found by a scan.
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heads: Vec<Option<Vec<u8>>> = Vec::with_capacity(self.runs.len());
        for path in &self.runs {
            let mut reader = KeyFileReader::open(path, &path.display().to_string())?;
            heads.push(reader.next_key()?.map(<[u8]>::to_vec));
            readers.push(reader);
        }
        loop {
            let mut least: Option<usize> = None;
            for (i, head) in heads.iter().enumerate() {
                let Some(key) = head.as_deref() else { continue };
                let better = match least.and_then(|l| heads[l].as_deref()) {
                    None => true,
                    Some(current) => {
                        self.order
                            .compare(key, current)
                            .map_err(|e| Error::KeyOrder {
                                which: "the masked",
                                detail: e.to_string(),
                            })?
                            == Ordering::Less
                    }
                };
                if better {
                    least = Some(i);
                }
            }
            let Some(i) = least else { break };
            if let Some(key) = heads[i].take() {
                each(&key)?;
                heads[i] = readers[i].next_key()?.map(<[u8]>::to_vec);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TableInfo;

    const INFO: TableInfo = crate::model::fixtures::BIGINT_KEYED;

    fn key(id: i64) -> Bytes {
        let mut out = 1i16.to_be_bytes().to_vec();
        out.extend(8i32.to_be_bytes());
        out.extend(id.to_be_bytes());
        Bytes::from(out)
    }

    fn sorted(ids: &[i64], budget: usize) -> (Vec<i64>, usize) {
        let order = KeyOrder::new(&INFO).expect("a key");
        let dir = std::env::temp_dir().join(format!(
            "etl-key-sort-{}-{budget}-{}",
            std::process::id(),
            ids.len()
        ));
        let mut sorter = KeySorter::with_budget(&order, &dir, budget);
        for &id in ids {
            sorter.push(key(id)).expect("push");
        }
        let runs = sorter.runs.len();
        let mut out = Vec::new();
        sorter
            .finish(|k| {
                out.push(i64::from_be_bytes(k[6..14].try_into().expect("8 bytes")));
                Ok(())
            })
            .expect("sorted");
        let _ = std::fs::remove_dir_all(&dir);
        (out, runs)
    }

    #[test]
    fn keys_come_out_ascending_from_memory_and_from_spilled_runs() {
        // A scrambled permutation of -500..500.
        let ids: Vec<i64> = (0..1000i64).map(|i| (i * 617) % 1000 - 500).collect();
        let expected: Vec<i64> = (-500..500).collect();
        let (in_memory, runs) = sorted(&ids, usize::MAX);
        assert_eq!(runs, 0);
        assert_eq!(in_memory, expected);
        // About 78 bytes a key: a run every 13 keys, 77 runs merged.
        let (merged, runs) = sorted(&ids, 1000);
        assert!(runs > 50, "{runs} runs");
        assert_eq!(merged, expected);
    }
}
