//! How the process's allocator holds memory: the one place with `unsafe` (glibc FFI calls with
//! nothing of ours to uphold), and only on glibc.
//!
//! An export allocates and frees the same large buffers (a chunk's Arrow arrays, pages) over
//! and over. glibc's defaults give them back to the system and take them again each time: on
//! the bench table that was 1.2 s of system time per million rows of page faults and zeroed
//! pages, 0.5 s once freed memory is kept ([`hold_freed_memory`]). What is kept is handed
//! back once per row group ([`release_free_memory`]), so a long export stays flat.

/// How many malloc arenas the process's threads share ([`hold_freed_memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arenas {
    /// One arena for every thread, not glibc's eight per core: buffers are allocated on one
    /// thread and freed on another (a chunk's on a converter, its pages on a column writer),
    /// and each arena kept its own free memory and fragments. Measured on the bench table (2
    /// cores, same-hour interleaved runs): peak RSS of one stream 61-67 MB at 1M rows and 63-73
    /// MB at 5M with one arena per core, 63 and 64-65 MB with one; two connections 67-77 -> 67
    /// MB; client CPU within noise (small blocks come from each thread's cache without the
    /// arena's lock, and big ones are a few per chunk).
    One,
    /// An arena for each of the run's threads (the main thread, a tokio worker and a converter
    /// per core, a table's encoder), for a run that writes a partitioned table: after its last
    /// row, the threads write the partitions' small files at once, allocating and freeing
    /// column writers, pages and zstd contexts at high rates, and on one arena they waited on
    /// its lock. 1,000-partition bench table, same-hour interleaved runs, 4 each, medians: the
    /// write phase 1.25-1.47 -> 0.77-0.86 s, its CPU 2.07-2.26 -> 1.48-1.60 s (3, 4 or 8 arenas
    /// alike on 2 cores); peak RSS 75 -> 96-104 MB, 71-97 MB with a trim after each spill
    /// ([`release_free_memory`] in `write::partition`). Not for every run: a plain export gains
    /// no CPU from it and its peak RSS would grow with the table (one stream: 69 MB at 1M rows,
    /// 82 MB at 5M, against 60 and 62 MB on one arena).
    PerThread,
}

/// Keeps freed memory for reuse instead of returning it at once: blocks up to 32 MB come
/// from the heap, and its top is trimmed past 64 MB free; the threads share `arenas`. Called
/// once, at the start of the process, before other threads exist: glibc fixes its arena limit
/// when a second thread first allocates.
#[allow(unsafe_code)]
pub fn hold_freed_memory(arenas: Arenas) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = match arenas {
            Arenas::One => 1,
            Arenas::PerThread => {
                2 * std::thread::available_parallelism().map_or(2, usize::from) + 2
            }
        };
        let arenas = i32::try_from(arenas).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets glibc's tuning parameters; it takes no pointer.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Hands the free pages of every arena back to the system (once a row group is written, and
/// once a partitioned table's buffer is spilled).
/// Transient buffers and a file's growing metadata fragment glibc's arenas: peak RSS of a
/// plain export grew ~9 MB from 1M to 5M rows while the live heap grew 0.7 MB (heaptrack).
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks glibc's own arenas under their locks; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}
