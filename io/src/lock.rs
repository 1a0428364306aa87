//! Locks of the OS backends: `flock` for a whole file, open-file-description byte locks
//! (`F_OFD_SETLK`, Linux) for single bytes. Both belong to the open file, not the process, so
//! two opens in one process exclude each other, and the kernel drops them when the process dies.

use std::fs::File;
use std::path::Path;

use crate::{IoError, LockFile, OpKind, OpenOptions};

/// A file of the OS opened for its locks.
pub(crate) struct OsLockFile {
    file: File,
}

/// Open (creating when asked and allowed) `path` for locking. Read access suffices for every
/// lock kind used here (a shared byte lock needs it; flock needs none).
pub(crate) fn open_os_lock(path: &Path, opts: OpenOptions) -> Result<Box<dyn LockFile>, IoError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if !opts.read_only {
        options.write(true).create(opts.create).truncate(false);
    }
    let file = options
        .open(path)
        .map_err(|e| IoError::from_os(OpKind::Lock, 0, &e).with_path(path))?;
    Ok(Box::new(OsLockFile { file }))
}

impl LockFile for OsLockFile {
    fn try_lock_exclusive(&self) -> Result<bool, IoError> {
        flock_exclusive(&self.file)
    }

    fn lock_shared_byte(&self, offset: u64) -> Result<(), IoError> {
        ofd::lock_shared(&self.file, offset).map_err(|e| IoError::from_os(OpKind::Lock, offset, &e))
    }

    fn unlock_byte(&self, offset: u64) -> Result<(), IoError> {
        ofd::unlock(&self.file, offset).map_err(|e| IoError::from_os(OpKind::Lock, offset, &e))
    }

    fn lowest_locked_byte(&self) -> Result<Option<u64>, IoError> {
        ofd::lowest_shared_lock(&self.file).map_err(|e| IoError::from_os(OpKind::Lock, 0, &e))
    }
}

#[cfg(unix)]
fn flock_exclusive(file: &File) -> Result<bool, IoError> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(errno) if errno == libc::EWOULDBLOCK || errno == libc::EAGAIN => return Ok(false),
            _ => return Err(IoError::from_os(OpKind::Lock, 0, &err)),
        }
    }
}

#[cfg(not(unix))]
fn flock_exclusive(_file: &File) -> Result<bool, IoError> {
    Ok(true)
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
