//! The pread/pwrite backend: every batch runs on the submitting thread, op by op.
//! Also home of the OS directory operations both OS backends share.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    run_in_order, AlignedBuf, BackendKind, Completion, IoDone, IoError, IoFile, IoOp, IoResult,
    OpKind, OpenOptions, Vfs,
};

pub struct SyncVfs;

pub struct SyncFile {
    file: File,
}

impl Vfs for SyncVfs {
    fn kind(&self) -> BackendKind {
        BackendKind::Sync
    }
    fn open(&self, path: &Path, opts: OpenOptions) -> Result<Arc<dyn IoFile>, IoError> {
        Ok(Arc::new(SyncFile {
            file: open_os_file(path, opts)?,
        }))
    }
    crate::sync::os_namespace_ops!();
}

impl IoFile for SyncFile {
    fn submit(&self, ops: Vec<IoOp>, done: Completion) {
        done(run_in_order(ops, |op| exec_blocking(&self.file, op)))
    }
    fn len(&self) -> Result<u64, IoError> {
        os_file_len(&self.file)
    }
    fn read_now(&self, offset: u64, buf: AlignedBuf) -> Result<AlignedBuf, IoError> {
        pread_now(&self.file, offset, buf)
    }
    fn submit_now(&self, ops: Vec<IoOp>) -> Vec<IoResult> {
        run_in_order(ops, |op| exec_blocking(&self.file, op))
    }
}

/// One blocking pread of a whole buffer.
pub(crate) fn pread_now(
    file: &File,
    offset: u64,
    mut buf: AlignedBuf,
) -> Result<AlignedBuf, IoError> {
    file.read_exact_at(&mut buf, offset)
        .map(|()| buf)
        .map_err(|e| IoError::from_os(OpKind::Read, offset, &e))
}

/// One op with blocking syscalls.
pub(crate) fn exec_blocking(file: &File, op: IoOp) -> IoResult {
    match op {
        IoOp::Read { offset, mut buf } => file
            .read_exact_at(&mut buf, offset)
            .map(|()| IoDone::Read(buf))
            .map_err(|e| IoError::from_os(OpKind::Read, offset, &e)),
        IoOp::Write { offset, buf } => file
            .write_all_at(&buf, offset)
            .map(|()| IoDone::Write(buf))
            .map_err(|e| IoError::from_os(OpKind::Write, offset, &e)),
        IoOp::Sync => file
            .sync_data()
            .map(|()| IoDone::Sync)
            .map_err(|e| IoError::from_os(OpKind::Sync, 0, &e)),
        IoOp::Grow { len } => grow_os_file(file, len).map(|()| IoDone::Grow),
        IoOp::WriteBack { offset, len } => write_back_range(file, offset, len),
    }
}

/// `sync_file_range` (write, waiting before and after) where Linux has it; elsewhere nothing
/// (it only paces writes: durability comes from `Sync`).
fn write_back_range(file: &File, offset: u64, len: u64) -> IoResult {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        let (Ok(start), Ok(count)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(IoError::os(OpKind::WriteBack, offset, libc::EINVAL));
        };
        // SAFETY: a plain syscall on a descriptor `file` keeps open.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), start, count, flags) };
        if rc != 0 {
            return Err(IoError::from_os(
                OpKind::WriteBack,
                offset,
                &std::io::Error::last_os_error(),
            ));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
    Ok(IoDone::WriteBack)
}

pub(crate) fn open_os_file(path: &Path, opts: OpenOptions) -> Result<File, IoError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if !opts.read_only {
        options.write(true).create(opts.create);
    }
    #[cfg(target_os = "linux")]
    if opts.direct {
        options.custom_flags(libc::O_DIRECT);
    }
    options
        .open(path)
        .map_err(|e| IoError::from_os(OpKind::Read, 0, &e).with_path(path))
}

pub(crate) fn os_file_len(file: &File) -> Result<u64, IoError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| IoError::from_os(OpKind::Read, 0, &e))
}

/// Extend to `len` with the blocks allocated (so a later write cannot hit ENOSPC), falling back
/// to ftruncate where the file system has no fallocate.
pub(crate) fn grow_os_file(file: &File, len: u64) -> Result<(), IoError> {
    let current = os_file_len(file)?;
    if current >= len {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let Ok(off) = libc::off_t::try_from(current) else {
            return Err(IoError::os(OpKind::Grow, len, libc::EFBIG));
        };
        let Ok(add) = libc::off_t::try_from(len - current) else {
            return Err(IoError::os(OpKind::Grow, len, libc::EFBIG));
        };
        // SAFETY: plain syscall on a valid descriptor.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, off, add) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(IoError::from_os(OpKind::Grow, len, &err));
        }
    }
    file.set_len(len)
        .map_err(|e| IoError::from_os(OpKind::Grow, len, &e))
}

/// The `Vfs` methods on names, directories and locks that every OS backend runs the same way
/// (plain syscalls on the calling thread): only how files are read and written differs.
macro_rules! os_namespace_ops {
    () => {
        fn exists(&self, path: &std::path::Path) -> bool {
            path.exists()
        }
        fn remove(&self, path: &std::path::Path) -> Result<(), $crate::IoError> {
            $crate::sync::remove_os_file(path)
        }
        fn create_dir_all(&self, dir: &std::path::Path) -> Result<(), $crate::IoError> {
            $crate::sync::create_os_dir_all(dir)
        }
        fn sync_dir(&self, dir: &std::path::Path) -> Result<(), $crate::IoError> {
            $crate::sync::sync_os_dir(dir)
        }
        fn list_dir(
            &self,
            dir: &std::path::Path,
        ) -> Result<Vec<std::path::PathBuf>, $crate::IoError> {
            $crate::sync::list_os_dir(dir)
        }
        fn rename(
            &self,
            from: &std::path::Path,
            to: &std::path::Path,
        ) -> Result<(), $crate::IoError> {
            $crate::sync::rename_os(from, to)
        }
        fn open_lock(
            &self,
            path: &std::path::Path,
            opts: $crate::OpenOptions,
        ) -> Result<Box<dyn $crate::LockFile>, $crate::IoError> {
            $crate::lock::open_os_lock(path, opts)
        }
    };
}
pub(crate) use os_namespace_ops;

pub(crate) fn rename_os(from: &Path, to: &Path) -> Result<(), IoError> {
    std::fs::rename(from, to).map_err(|e| IoError::from_os(OpKind::Write, 0, &e).with_path(from))
}

pub(crate) fn remove_os_file(path: &Path) -> Result<(), IoError> {
    std::fs::remove_file(path).map_err(|e| IoError::from_os(OpKind::Remove, 0, &e).with_path(path))
}

/// Create `dir` and any missing ancestors, each made durable in its parent: a new directory
/// entry is only in the page cache until its parent is synced, and a power loss would take the
/// database directory (or `wal/`) and everything in it along.
pub(crate) fn create_os_dir_all(dir: &Path) -> Result<(), IoError> {
    // A relative path's last ancestor is the empty path, which never "exists": stop there.
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .collect();
    // Owner-only (0700, less the umask): a database directory is nobody else's business, and
    // the parents created for it are as private as it is.
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    for created in missing.into_iter().rev() {
        match builder.create(created) {
            Ok(()) => {}
            // Another process (or thread) made it meanwhile: it still needs its parent synced.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(IoError::from_os(OpKind::Write, 0, &e).with_path(created)),
        }
        match created.parent() {
            Some(parent) if parent.as_os_str().is_empty() => sync_os_dir(Path::new("."))?,
            Some(parent) => sync_os_dir(parent)?,
            None => {}
        }
    }
    Ok(())
}

pub(crate) fn sync_os_dir(dir: &Path) -> Result<(), IoError> {
    let handle =
        File::open(dir).map_err(|e| IoError::from_os(OpKind::Sync, 0, &e).with_path(dir))?;
    handle
        .sync_all()
        .map_err(|e| IoError::from_os(OpKind::Sync, 0, &e).with_path(dir))
}

pub(crate) fn list_os_dir(dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| IoError::from_os(OpKind::Read, 0, &e).with_path(dir))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IoError::from_os(OpKind::Read, 0, &e).with_path(dir))?;
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

impl IoError {
    /// Name the file in the message, for errors that happen before an op has an offset.
    pub fn with_path(mut self, path: &Path) -> Self {
        self.message = format!("{}: {}", path.display(), self.message);
        self
    }
}
