//! The directory lock: one process at a time opens a database directory for writing.
//!
//! An advisory `flock` on `LOCK`, released by the kernel when the process dies. After a kill -9
//! the dead process's io_uring workers keep its descriptors (and so the lock) until their
//! in-flight I/O completes, which on a slow device under writeback can take seconds: taking the
//! lock is retried with backoff for up to `LOCK_WAIT` before reporting it held.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{AedbError, Result};

const LOCK_WAIT: Duration = Duration::from_secs(3);
const LOCK_RETRY_FIRST: Duration = Duration::from_millis(10);
const LOCK_RETRY_MAX: Duration = Duration::from_millis(250);

pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("LOCK");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| AedbError::Io(format!("{}: {e}", path.display())))?;
        let started = Instant::now();
        let mut pause = LOCK_RETRY_FIRST;
        loop {
            if try_lock(&file) {
                return Ok(DirLock { _file: file, path });
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(AedbError::Locked { path });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(LOCK_RETRY_MAX);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description: a second open conflicts.
        match DirLock::acquire(dir.path()) {
            Err(AedbError::Locked { path }) => assert_eq!(path, first.path()),
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(DirLock::acquire(dir.path()).is_ok());
    }
}
