//! Where a column chunk's finished pages wait until their row group is written: in memory up
//! to a small budget, then in an unlinked scratch file.

use super::*;

/// Keeps a column chunk's finished pages (past the first 64 KB) in an unlinked temporary file
/// until its row group is written, instead of on the heap: the writer's memory is then a few
/// hundred KB per column, not a whole row group. The pages are read back once, in order.
#[derive(Debug)]
pub(super) struct SpillPageStoreFactory {
    dir: PathBuf,
    counter: AtomicU64,
}

impl SpillPageStoreFactory {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            counter: AtomicU64::new(0),
        }
    }
}

impl PageStoreFactory for SpillPageStoreFactory {
    fn create(&self, args: &PageStoreArgs<'_>) -> parquet::errors::Result<Box<dyn PageStore>> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(crate::layout::names::page_spill(
            std::process::id(),
            n,
            args.column_index(),
        ));
        Ok(Box::new(SpillPageStore {
            path,
            file: None,
            end: 0,
            in_memory: 0,
            pages: Vec::new(),
        }))
    }
}

/// A column chunk's pages are kept in memory up to this many bytes before the rest goes to
/// disk: small chunks (a partition's, a small table's) then create no file at all, which
/// costs more than the pages when there are thousands of them. Small, because every column's
/// pages are held at once when a row group closes.
const IN_MEMORY_PAGES: usize = 64 << 10;

enum StoredPage {
    InMemory(Bytes),
    OnDisk { offset: u64, len: usize },
}

struct SpillPageStore {
    path: PathBuf,
    /// Created at the first page past `IN_MEMORY_PAGES`.
    file: Option<File>,
    end: u64,
    in_memory: usize,
    /// Each page, indexed by its key.
    pages: Vec<StoredPage>,
}

impl SpillPageStore {
    fn file(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&self.path)?;
            // Unlinked at once: the space is freed when the store is dropped, even after a
            // crash.
            std::fs::remove_file(&self.path)?;
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the spill file is gone"))
    }
}

impl PageStore for SpillPageStore {
    fn put(&mut self, value: Bytes) -> parquet::errors::Result<PageKey> {
        let key = PageKey::new(self.pages.len() as u64);
        if self.in_memory + value.len() <= IN_MEMORY_PAGES {
            self.in_memory += value.len();
            self.pages.push(StoredPage::InMemory(value));
            return Ok(key);
        }
        let offset = self.end;
        let file = self.file()?;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&value)?;
        self.pages.push(StoredPage::OnDisk {
            offset,
            len: value.len(),
        });
        self.end += value.len() as u64;
        Ok(key)
    }

    fn take(&mut self, key: PageKey) -> parquet::errors::Result<Bytes> {
        let unknown = || parquet::errors::ParquetError::General("unknown spilled page".into());
        let page = self.pages.get_mut(key.get() as usize).ok_or_else(unknown)?;
        match page {
            StoredPage::InMemory(bytes) => {
                let bytes = std::mem::take(bytes);
                self.in_memory -= bytes.len();
                Ok(bytes)
            }
            StoredPage::OnDisk { offset, len } => {
                let (offset, len) = (*offset, *len);
                let mut buf = vec![0u8; len];
                let file = self.file.as_mut().ok_or_else(unknown)?;
                file.seek(SeekFrom::Start(offset))?;
                file.read_exact(&mut buf)?;
                Ok(Bytes::from(buf))
            }
        }
    }
}
