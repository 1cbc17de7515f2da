//! How the process's allocator holds memory: the one place with `unsafe` (glibc FFI calls with
//! nothing of ours to uphold), and only on glibc.
//!
//! An export allocates and frees the same large buffers (a chunk's Arrow arrays, pages) over
//! and over. glibc's defaults give them back to the system and take them again each time,
//! paying page faults and zeroed pages for every chunk; freed memory is kept instead
//! ([`hold_freed_memory`]), and handed back once per row group ([`release_free_memory`]), so
//! a long export stays flat.

/// How many malloc arenas the process's threads share ([`hold_freed_memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arenas {
    /// One arena for every thread, not glibc's eight per core: buffers are allocated on one
    /// thread and freed on another (a chunk's on a converter, its pages on a column writer),
    /// and each arena kept its own free memory and fragments, so peak RSS grew with the
    /// threads. It costs no CPU: small blocks come from each thread's cache without the
    /// arena's lock, and big ones are a few per chunk.
    One,
    /// An arena for each of the run's threads (the main thread, a tokio worker and a converter
    /// per core, a table's encoder), for a run that writes a partitioned table: after its last
    /// row, the threads write the partitions' small files at once, allocating and freeing
    /// column writers, pages and zstd contexts at high rates, and on one arena they waited on
    /// its lock (a trim after each spill, [`release_free_memory`] in `write::partition`, keeps
    /// the extra arenas' free memory down). Not for every run: a plain export gains no CPU
    /// from it and its peak RSS would grow with the table.
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
/// Transient buffers and a file's growing metadata fragment glibc's arenas: without it, peak
/// RSS grows with the table while the live heap does not.
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks glibc's own arenas under their locks; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}
