//! A local output's staging area and durable writes: a run's claim on its staging directory
//! (a lock the OS releases when the process dies), abandoned runs' staging removed, the area
//! marked as the top of unrelated trees, and files and trees made durable or swapped whole.

use super::*;

/// A run's claim on its staging directory: an exclusive lock on `.etl-staging/<run>.lock`,
/// held while the run's sink lives and released by the OS when the process dies however it
/// dies. Staging whose lock nobody holds belongs to a run that was killed (SIGKILL, OOM) and is
/// removed by the next run; staging whose lock is held is another run's, in progress.
#[derive(Debug)]
pub(crate) struct StagingClaim {
    lock: File,
    lock_path: PathBuf,
    run_dir: PathBuf,
    staging: PathBuf,
}

impl Drop for StagingClaim {
    fn drop(&mut self) {
        // Whatever the run left (a cancelled table's files are already discarded).
        let _ = fs::remove_dir_all(&self.run_dir);
        let _ = fs::remove_file(&self.lock_path);
        let _ = self.lock.unlock();
        let _ = fs::remove_dir(&self.staging);
    }
}

impl StagingClaim {
    /// The directory claimed: `<staging>/<run>/` (not created here).
    pub(crate) fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub(crate) fn take(staging: &Path, run_id: &str) -> Result<Self> {
        fs::create_dir_all(staging).map_err(|e| Error::io("cannot create", staging, e))?;
        mark_top_of_unrelated_trees(staging);
        remove_abandoned_runs(staging);
        let lock_path = staging.join(format!("{run_id}.lock"));
        let lock = loop {
            let lock =
                File::create(&lock_path).map_err(|e| Error::io("cannot create", &lock_path, e))?;
            lock.lock()
                .map_err(|e| Error::io("cannot lock", &lock_path, e))?;
            // Another run's cleanup may have removed the file between its creation and our
            // lock: a lock on a file no longer at `lock_path` protects nothing; take a new one.
            if same_file(&lock, &lock_path) {
                break lock;
            }
        };
        Ok(Self {
            lock,
            lock_path,
            run_dir: staging.join(run_id),
            staging: staging.to_path_buf(),
        })
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Marks the staging area as the top of unrelated trees (ext4's `FS_TOPDIR_FL`, `chattr +T`),
/// so that each run's directory, and the export made in it, starts in a block group of its own
/// rather than in its parent's, where the previous export was just removed: on ext4 without a
/// journal, each new inode's allocation checks one by one the group's free inodes deleted in
/// the last minutes (seconds once written back), so a re-export of thousands of partitions
/// would walk past every inode the previous one freed, for each of its own. Best effort:
/// other file systems have no such flag, and nothing depends on it.
fn mark_top_of_unrelated_trees(staging: &Path) {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let Ok(dir) = File::open(staging) else {
        return;
    };
    if let Ok(flags) = ioctl_getflags(&dir)
        && !flags.contains(IFlags::TOPDIR)
    {
        let _ = ioctl_setflags(&dir, flags | IFlags::TOPDIR);
    }
}

/// Whether a live process holds the lock file at `path`.
pub(crate) fn lock_is_held(path: &Path) -> bool {
    File::open(path)
        .is_ok_and(|lock| matches!(lock.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// Removes the staging of runs that died: a run directory or lock file whose lock is free.
fn remove_abandoned_runs(staging: &Path) {
    let Ok(entries) = fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let run = name.strip_suffix(".lock").unwrap_or(&name).to_string();
        let lock_path = staging.join(format!("{run}.lock"));
        if lock_is_held(&lock_path) {
            continue;
        }
        let run_dir = staging.join(&run);
        if run_dir.exists() {
            tracing::warn!(
                "removing {}: staging of a run that did not finish",
                run_dir.display()
            );
            let _ = fs::remove_dir_all(&run_dir);
        }
        if path == lock_path {
            let _ = fs::remove_file(&lock_path);
        }
    }
}

/// Puts on disk everything written to the file system holding `dir`: one `syncfs`, which
/// costs one journal commit however many files and directories a table has (synced one by
/// one, each file's fsync is a commit of its own), and also covers the directory entries.
pub fn make_durable(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
    rustix::fs::syncfs(&handle).map_err(|e| Error::io("cannot sync", dir, e.into()))
}

/// Swaps two directories in one step (Linux's `renameat2(RENAME_EXCHANGE)`).
pub(super) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

/// Writes `bytes` to `target` through a temporary file and a rename: readers see the old file
/// or the new one, never half of it.
pub fn write_whole(target: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let temporary = target.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&temporary, bytes).map_err(|e| Error::io("cannot write", &temporary, e))?;
    fs::rename(&temporary, target).map_err(|e| {
        let _ = fs::remove_file(&temporary);
        Error::io("cannot write", target, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{IFlags, ioctl_getflags};

    fn has_topdir(dir: &Path) -> bool {
        File::open(dir)
            .ok()
            .and_then(|dir| ioctl_getflags(&dir).ok())
            .is_some_and(|flags| flags.contains(IFlags::TOPDIR))
    }

    /// Where the file system keeps the flag (ext4), the staging area has it, so that each run's
    /// export starts in a block group of its own.
    #[test]
    fn the_staging_area_is_the_top_of_unrelated_trees() {
        let root = std::env::temp_dir().join(format!("etl-sink-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let probe = root.join("probe");
        fs::create_dir_all(&probe).unwrap();
        // Whether this file system keeps the flag at all, on a directory of the test's.
        mark_top_of_unrelated_trees(&probe);
        let kept = has_topdir(&probe);

        let sink = LocalDirSink::new(&root, "run-1").unwrap();
        sink.stage("notes").unwrap();
        assert_eq!(has_topdir(&root.join(".etl-staging")), kept);
        // Not inherited: only the staging area's children are spread.
        assert!(!has_topdir(&root.join(".etl-staging/run-1")));
        drop(sink);
        fs::remove_dir_all(&root).unwrap();
    }
}
