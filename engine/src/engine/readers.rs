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
//! checkpoint between the two can miss it. Elsewhere no registration exists, and a read-only
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
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
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
    _file: Option<File>,
}

impl ReaderRegistration {
    /// Register as reading every generation, before the meta page is read.
    pub fn begin(dir: &Path) -> Result<Self> {
        let path = dir.join(READERS_FILE);
        let create = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path);
        // A directory this process may not write to: the file a writer made, read-only.
        let Ok(file) = create.or_else(|_| File::open(&path)) else {
            tracing::warn!(dir = %dir.display(), "read-only open is not registered: no READERS file and the directory is not writable");
            return Ok(ReaderRegistration { _file: None });
        };
        ofd::lock_shared(&file, 0)
            .map_err(|e| AedbError::Io(format!("{}: {e}", path.display())))?;
        Ok(ReaderRegistration { _file: Some(file) })
    }

    /// The meta page read was of `generation`: hold that one only.
    pub fn settle(&self, generation: u64) -> Result<()> {
        let Some(file) = &self._file else {
            return Ok(());
        };
        if generation != 0 {
            ofd::lock_shared(file, generation).map_err(|e| AedbError::Io(e.to_string()))?;
            ofd::unlock(file, 0).map_err(|e| AedbError::Io(e.to_string()))?;
        }
        Ok(())
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
        let first = ReaderRegistration::begin(dir.path()).expect("register");
        assert_eq!(
            table.oldest_generation().expect("ask"),
            Some(0),
            "unsettled: every generation"
        );
        first.settle(7).expect("settle");
        assert_eq!(table.oldest_generation().expect("ask"), Some(7));
        let second = ReaderRegistration::begin(dir.path()).expect("register");
        second.settle(12).expect("settle");
        let third = ReaderRegistration::begin(dir.path()).expect("register");
        third.settle(5).expect("settle");
        assert_eq!(table.oldest_generation().expect("ask"), Some(5));
        drop(third);
        assert_eq!(table.oldest_generation().expect("ask"), Some(7));
        drop(first);
        assert_eq!(table.oldest_generation().expect("ask"), Some(12));
        drop(second);
        assert_eq!(table.oldest_generation().expect("ask"), None);
    }
}
