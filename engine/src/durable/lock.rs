//! The directory lock: one process at a time opens a database directory for writing.
//!
//! An advisory `flock` on `LOCK`, taken through the I/O layer (`Vfs::open_lock`), released by
//! the kernel when the process dies (the simulator keeps it in memory). After a kill -9
//! the dead process's io_uring workers keep its descriptors (and so the lock) until their
//! in-flight I/O completes, which on a slow device under writeback can take seconds: taking the
//! lock is retried with backoff for up to `LOCK_WAIT` before reporting it held.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aedb_pager::io::{BackendKind, LockFile, OpenOptions, Vfs};

use crate::error::{AedbError, Result};

const LOCK_FILE: &str = "LOCK";
const LOCK_WAIT: Duration = Duration::from_secs(3);
const LOCK_RETRY_FIRST: Duration = Duration::from_millis(10);
const LOCK_RETRY_MAX: Duration = Duration::from_millis(250);

pub struct DirLock {
    _file: Box<dyn LockFile>,
    path: PathBuf,
}

impl DirLock {
    /// The lock through `vfs`. The simulator has no dying process whose workers could still
    /// hold it, so there it is refused at once.
    pub fn acquire_in(vfs: &dyn Vfs, dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let io = |e: aedb_pager::io::IoError| AedbError::Io(e.to_string());
        let opts = OpenOptions {
            create: true,
            ..OpenOptions::default()
        };
        let file = vfs.open_lock(&path, opts).map_err(io)?;
        let wait = match vfs.kind() {
            BackendKind::Simulated => Duration::ZERO,
            BackendKind::IoUring | BackendKind::Sync => LOCK_WAIT,
        };
        let started = Instant::now();
        let mut pause = LOCK_RETRY_FIRST;
        loop {
            if file.try_lock_exclusive().map_err(io)? {
                return Ok(DirLock { _file: file, path });
            }
            if started.elapsed() >= wait {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire_in(&aedb_pager::io::sync::SyncVfs, dir.path()).unwrap();
        // flock locks belong to the open file description: a second open conflicts.
        match DirLock::acquire_in(&aedb_pager::io::sync::SyncVfs, dir.path()) {
            Err(AedbError::Locked { path }) => assert_eq!(path, first.path()),
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(DirLock::acquire_in(&aedb_pager::io::sync::SyncVfs, dir.path()).is_ok());
    }

    #[test]
    fn the_simulator_refuses_a_second_lock_at_once() {
        use aedb_pager::io::sim::SimVfs;
        let sim = SimVfs::new();
        let dir = Path::new("/db");
        let first = DirLock::acquire_in(&sim, dir).unwrap();
        assert!(
            sim.exists(&dir.join(LOCK_FILE)),
            "the lock file is the simulator's"
        );
        let started = Instant::now();
        match DirLock::acquire_in(&sim, dir) {
            Err(AedbError::Locked { path }) => assert_eq!(path, first.path()),
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
        assert!(
            started.elapsed() < LOCK_WAIT,
            "no waiting for a dying process"
        );
        drop(first);
        assert!(DirLock::acquire_in(&sim, dir).is_ok());
        // A crash kills the holder: the next machine may lock again.
        let held = DirLock::acquire_in(&sim, dir).unwrap();
        let image = sim.crash_image(aedb_pager::io::sim::CrashMode::ProcessCrash, 0);
        assert!(DirLock::acquire_in(&image, dir).is_ok());
        drop(held);
    }
}
