//! Readers in other processes, registered with the writer through the file `READERS`.
//!
//! A read-only open (`aedb` inspections, the explorer) reads the newest durable meta page and
//! then that checkpoint's pages, lazily. A live writer reuses the pages a checkpoint reaches
//! once a newer checkpoint is durable, so without registration such a reader could read a
//! reused page (valid checksum, wrong tree). Each reader holds a shared byte-range lock on
//! `READERS` at the byte whose offset is the generation of the meta page it read; after each
//! checkpoint the writer asks for the lowest locked byte and reuses nothing that generation
//! reaches, and deletes no log segment while any reader is registered.
//!
//! The locks are open-file-description locks (`F_OFD_SETLK`, Linux): they belong to the open
//! file, not the process, so a reader and a writer in one process still see each other, and
//! the kernel drops them when the reader's process dies. A reader registers at byte 0 (every
//! generation) before it reads the meta page and moves to its generation after, so no
//! checkpoint between the two can miss it. A writer that opens while readers are registered
//! holds back the free list it loaded when they read an older generation. Elsewhere (not Linux,
//! or a database no writer of this version has opened) no registration exists, and a read-only
//! open beside a live writer carries the risk the module describes (see ARCHITECTURE.md).

use std::fs::File;
use std::path::Path;

use aedb_pager::ReaderRegistry;

use crate::error::{AedbError, Result};

pub const READERS_FILE: &str = "READERS";

/// The writer's side: asks which generation the oldest reader reads.
pub struct ReaderTable {
    file: File,
}

impl ReaderTable {
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(READERS_FILE);
        let created = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path);
        // Asking needs no write access: a file another user made is opened for reading.
        let file = created
            .or_else(|_| File::open(&path))
            .map_err(|e| AedbError::Io(format!("{}: {e}", path.display())))?;
        Ok(ReaderTable { file })
    }
}

impl ReaderRegistry for ReaderTable {
    fn oldest_generation(&self) -> std::io::Result<Option<u64>> {
        ofd::lowest_shared_lock(&self.file)
    }
}

/// A reader's registration; dropping it (or the process dying) ends it.
pub struct ReaderRegistration {
    /// Held for the locks it carries (None: not registered).
    file: Option<File>,
}

impl ReaderRegistration {
    /// Register as reading every generation, before the meta page is read.
    pub fn begin(dir: &Path) -> Self {
        let path = dir.join(READERS_FILE);
        // Never created here: a read-only open writes nothing. A writer of this version makes
        // the file as it opens; a database no such writer has opened has no writer to tell.
        let registered = File::open(&path).and_then(|file| {
            ofd::lock_shared(&file, 0)?;
            Ok(file)
        });
        match registered {
            Ok(file) => ReaderRegistration { file: Some(file) },
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "read-only open is not registered with writers");
                ReaderRegistration { file: None }
            }
        }
    }

    /// The meta page read was of `generation`: hold that one only. Should moving the lock
    /// fail, the hold on every generation stays, which only keeps more pages from reuse.
    pub fn settle(&self, generation: u64) {
        let Some(file) = &self.file else {
            return;
        };
        if generation == 0 {
            return;
        }
        match ofd::lock_shared(file, generation).and_then(|()| ofd::unlock(file, 0)) {
            Ok(()) => {}
            Err(err) => {
                tracing::warn!(error = %err, generation, "reader keeps its hold on every generation")
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod ofd {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    fn flock(kind: i32, start: u64, len: u64) -> std::io::Result<libc::flock> {
        let overflow = || std::io::Error::from_raw_os_error(libc::EOVERFLOW);
        // SAFETY: a plain C struct; every field that matters is set below.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = kind as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = libc::off_t::try_from(start).map_err(|_| overflow())?;
        lock.l_len = libc::off_t::try_from(len).map_err(|_| overflow())?;
        lock.l_pid = 0; // required for OFD locks
        Ok(lock)
    }

    fn fcntl(file: &File, cmd: i32, lock: &mut libc::flock) -> std::io::Result<()> {
        // SAFETY: a valid descriptor and a valid, initialised flock.
        if unsafe { libc::fcntl(file.as_raw_fd(), cmd, lock as *mut libc::flock) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn lock_shared(file: &File, byte: u64) -> std::io::Result<()> {
        fcntl(file, libc::F_OFD_SETLK, &mut flock(libc::F_RDLCK, byte, 1)?)
    }

    pub fn unlock(file: &File, byte: u64) -> std::io::Result<()> {
        fcntl(file, libc::F_OFD_SETLK, &mut flock(libc::F_UNLCK, byte, 1)?)
    }

    /// The lowest byte anyone holds a shared lock on, or None. `F_OFD_GETLK` names one
    /// conflicting lock, not necessarily the lowest: ask again below it until none is left.
    pub fn lowest_shared_lock(file: &File) -> std::io::Result<Option<u64>> {
        let mut below: Option<u64> = None;
        loop {
            // len 0 means "to the end of any file".
            let len = below.unwrap_or(0);
            if below == Some(0) {
                return Ok(below);
            }
            let mut probe = flock(libc::F_WRLCK, 0, len)?;
            fcntl(file, libc::F_OFD_GETLK, &mut probe)?;
            if probe.l_type == libc::F_UNLCK as libc::c_short {
                return Ok(below);
            }
            let start = u64::try_from(probe.l_start).unwrap_or(0);
            debug_assert!(
                below.is_none_or(|b| start < b),
                "GETLK answered outside its range"
            );
            below = Some(start);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod ofd {
    use std::fs::File;

    pub fn lock_shared(_file: &File, _byte: u64) -> std::io::Result<()> {
        Ok(())
    }

    pub fn unlock(_file: &File, _byte: u64) -> std::io::Result<()> {
        Ok(())
    }

    pub fn lowest_shared_lock(_file: &File) -> std::io::Result<Option<u64>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_writer_sees_the_oldest_registered_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = ReaderTable::open(dir.path()).expect("table");
        assert_eq!(table.oldest_generation().expect("ask"), None);
        let first = ReaderRegistration::begin(dir.path());
        assert_eq!(
            table.oldest_generation().expect("ask"),
            Some(0),
            "unsettled: every generation"
        );
        first.settle(7);
        assert_eq!(table.oldest_generation().expect("ask"), Some(7));
        let second = ReaderRegistration::begin(dir.path());
        second.settle(12);
        let third = ReaderRegistration::begin(dir.path());
        third.settle(5);
        assert_eq!(table.oldest_generation().expect("ask"), Some(5));
        drop(third);
        assert_eq!(table.oldest_generation().expect("ask"), Some(7));
        drop(first);
        assert_eq!(table.oldest_generation().expect("ask"), Some(12));
        drop(second);
        assert_eq!(table.oldest_generation().expect("ask"), None);
    }
}
