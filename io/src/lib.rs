//! The one I/O seam of the engine.
//!
//! Every byte the engine reads or writes goes through [`IoFile::submit`]: a batch of operations
//! and a completion callback. The three backends behind it are
//! - [`uring`]: io_uring on a dedicated thread that owns the ring (Linux);
//! - [`sync`]: pread/pwrite, chosen when the ring cannot be set up and on other targets;
//! - [`sim`]: a deterministic, seeded simulator that can crash and inject faults.
//!
//! Batch contract (all backends):
//! 1. Reads and writes between two barriers may run concurrently and complete in any order.
//! 2. `Sync` and `Grow` are barriers: they start only after every earlier op of the batch has
//!    completed successfully, and later ops start only after them.
//! 3. Once any op fails (including a short read or write), every later op of the batch completes
//!    with [`IoErrorKind::Canceled`]; the batch never "half succeeds" silently.
//! 4. Results come back in op order, exactly one per op, through one call of the completion.

pub mod buf;
pub mod files;
mod lock;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sync;
#[cfg(target_os = "linux")]
pub mod uring;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

pub use buf::{AlignedBuf, IO_ALIGN};
pub use files::{read_whole_file, write_file_durably};

/// One operation of a batch.
#[derive(Debug)]
pub enum IoOp {
    /// Fill `buf` from `offset`; fewer bytes than `buf.len()` is an error (a short read).
    Read { offset: u64, buf: AlignedBuf },
    /// Write all of `buf` at `offset`.
    Write { offset: u64, buf: AlignedBuf },
    /// Make every completed write and the file's length durable (fdatasync semantics).
    Sync,
    /// Make the file at least `len` bytes long, with the space allocated. Not durable until `Sync`.
    Grow { len: u64 },
    /// Start writing the range's cached pages to the device and wait until they are written
    /// (Linux `sync_file_range`). Durable only after a `Sync`: this paces large writes so the
    /// final sync has little left and other files' syncs do not queue behind all of them.
    WriteBack { offset: u64, len: u64 },
}

impl IoOp {
    pub fn kind(&self) -> OpKind {
        match self {
            IoOp::Read { .. } => OpKind::Read,
            IoOp::Write { .. } => OpKind::Write,
            IoOp::Sync => OpKind::Sync,
            IoOp::Grow { .. } => OpKind::Grow,
            IoOp::WriteBack { .. } => OpKind::WriteBack,
        }
    }

    fn is_barrier(&self) -> bool {
        matches!(
            self,
            IoOp::Sync | IoOp::Grow { .. } | IoOp::WriteBack { .. }
        )
    }

    fn offset(&self) -> u64 {
        match self {
            IoOp::Read { offset, .. } | IoOp::Write { offset, .. } => *offset,
            IoOp::Grow { len } => *len,
            IoOp::WriteBack { offset, .. } => *offset,
            IoOp::Sync => 0,
        }
    }

    /// The error every op after a failed one completes with.
    fn canceled(&self) -> IoError {
        IoError::new(
            self.kind(),
            self.offset(),
            IoErrorKind::Canceled,
            "an earlier op of the batch failed",
        )
    }
}

/// What a successful op gives back: buffers return to the caller for reuse.
#[derive(Debug)]
pub enum IoDone {
    Read(AlignedBuf),
    Write(AlignedBuf),
    Sync,
    Grow,
    WriteBack,
}

impl IoDone {
    /// The buffer of a read or write.
    pub fn into_buf(self) -> Option<AlignedBuf> {
        match self {
            IoDone::Read(buf) | IoDone::Write(buf) => Some(buf),
            IoDone::Sync | IoDone::Grow | IoDone::WriteBack => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Read,
    Write,
    Sync,
    Grow,
    WriteBack,
    /// A lock operation of a [`LockFile`].
    Lock,
    /// Deleting a file's name ([`Vfs::remove`]).
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoErrorKind {
    /// The OS (or the simulator playing it) returned this errno.
    Os(i32),
    /// A read or write moved fewer bytes than asked.
    Short,
    /// An earlier op of the same batch failed.
    Canceled,
    /// The simulated machine has crashed; nothing more reaches the disk.
    Crashed,
    /// The backend is shutting down.
    Closed,
}

/// An I/O failure, with the op and the offset it concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op:?} at offset {offset} failed: {kind:?}: {message}")]
pub struct IoError {
    pub op: OpKind,
    pub offset: u64,
    pub kind: IoErrorKind,
    pub message: String,
}

impl IoError {
    pub fn new(op: OpKind, offset: u64, kind: IoErrorKind, message: impl Into<String>) -> Self {
        IoError {
            op,
            offset,
            kind,
            message: message.into(),
        }
    }

    pub fn from_os(op: OpKind, offset: u64, err: &std::io::Error) -> Self {
        let kind = match err.raw_os_error() {
            Some(errno) => IoErrorKind::Os(errno),
            None if err.kind() == std::io::ErrorKind::UnexpectedEof => IoErrorKind::Short,
            None => IoErrorKind::Os(libc::EIO),
        };
        IoError::new(op, offset, kind, err.to_string())
    }

    /// A plain errno, e.g. for directory operations.
    pub fn os(op: OpKind, offset: u64, errno: i32) -> Self {
        let text = std::io::Error::from_raw_os_error(errno).to_string();
        IoError::new(op, offset, IoErrorKind::Os(errno), text)
    }
}

pub type IoResult = Result<IoDone, IoError>;

/// Called once with one result per op, in op order.
pub type Completion = Box<dyn FnOnce(Vec<IoResult>) + Send>;

/// An open file of some backend.
#[allow(clippy::len_without_is_empty)]
pub trait IoFile: Send + Sync {
    /// Start a batch; `done` runs when every op has completed (possibly on another thread,
    /// possibly before `submit` returns).
    fn submit(&self, ops: Vec<IoOp>, done: Completion);

    /// The file's current (not necessarily durable) length.
    fn len(&self) -> Result<u64, IoError>;

    /// Fill `buf` from `offset` on the calling thread, now. A buffer-pool miss needs one page
    /// before it can go on; sending it through the ring thread only adds a thread hop (measured:
    /// about half of a cold read's time was wakeups), so the OS backends `pread` here.
    fn read_now(&self, offset: u64, buf: AlignedBuf) -> Result<AlignedBuf, IoError>;

    /// Run a batch on the calling thread and return its results (the contract of `submit`).
    /// The WAL's write + fsync uses it: plain blocking syscalls, so no other thread is woken
    /// (io_uring would hand the fsync of a buffered write to a kernel worker thread).
    fn submit_now(&self, ops: Vec<IoOp>) -> Vec<IoResult>;
}

/// Which backend a [`Vfs`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    IoUring,
    Sync,
    Simulated,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Sync => "pread/pwrite",
            BackendKind::Simulated => "simulated",
        })
    }
}

/// What the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoBackendChoice {
    /// io_uring when the kernel allows it, else pread/pwrite.
    #[default]
    Auto,
    /// io_uring or an error.
    IoUring,
    /// pread/pwrite.
    Sync,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    pub create: bool,
    pub read_only: bool,
    /// O_DIRECT: bypass the page cache. Every offset, length and buffer must be 4096-aligned.
    pub direct: bool,
}

/// Files and directories, as one backend sees them.
pub trait Vfs: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn open(&self, path: &Path, opts: OpenOptions) -> Result<Arc<dyn IoFile>, IoError>;
    fn exists(&self, path: &Path) -> bool;
    fn remove(&self, path: &Path) -> Result<(), IoError>;
    fn create_dir_all(&self, dir: &Path) -> Result<(), IoError>;
    /// Make the directory's entries (files created or removed in it) durable.
    fn sync_dir(&self, dir: &Path) -> Result<(), IoError>;
    fn list_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, IoError>;
    /// Rename `from` to `to`, replacing `to` if it exists, atomically (rename(2)). The new name
    /// is durable once its directory is synced ([`Vfs::sync_dir`]); until then a power loss may
    /// leave the old one.
    fn rename(&self, from: &Path, to: &Path) -> Result<(), IoError>;
    /// Open `path` to hold locks on it (created when `opts.create` and not `opts.read_only`;
    /// `direct` is ignored). The locks are those of the open file (flock and open-file-
    /// description locks), so two opens in one process exclude each other as two processes do;
    /// dropping the [`LockFile`] releases its locks, and so does the death of its process.
    fn open_lock(&self, path: &Path, opts: OpenOptions) -> Result<Box<dyn LockFile>, IoError>;
}

/// A file held for its locks. Two kinds, independent of each other as on Linux: the whole
/// file's exclusive lock (`flock`) and shared locks on single bytes (open-file-description
/// locks, `F_OFD_SETLK`; elsewhere than Linux the OS backends take none and see none).
pub trait LockFile: Send + Sync {
    /// Take the whole file's exclusive lock without waiting: `Ok(false)` when another open file
    /// holds it.
    fn try_lock_exclusive(&self) -> Result<bool, IoError>;
    /// Hold a shared lock on the byte at `offset` (no-op if this file holds it already).
    fn lock_shared_byte(&self, offset: u64) -> Result<(), IoError>;
    /// Release this file's shared lock on the byte at `offset`, if it holds one.
    fn unlock_byte(&self, offset: u64) -> Result<(), IoError>;
    /// The lowest byte on which another open file holds a shared lock (this file's own locks
    /// do not count), or None.
    fn lowest_locked_byte(&self) -> Result<Option<u64>, IoError>;
}

/// Set (to anything but `0`) to make `Auto` skip io_uring.
pub const DISABLE_IO_URING_ENV: &str = "AEDB_DISABLE_IO_URING";

/// The OS file system with io_uring or pread/pwrite, as chosen.
pub fn os_vfs(choice: IoBackendChoice) -> Result<Arc<dyn Vfs>, IoError> {
    match choice {
        IoBackendChoice::Sync => Ok(Arc::new(sync::SyncVfs)),
        #[cfg(target_os = "linux")]
        IoBackendChoice::IoUring => Ok(Arc::new(uring::UringVfs::new()?)),
        #[cfg(not(target_os = "linux"))]
        IoBackendChoice::IoUring => Err(IoError::os(OpKind::Read, 0, libc::ENOSYS)),
        IoBackendChoice::Auto => {
            // An operator's switch (and the tests' way to force the fallback path of Auto).
            let disabled = std::env::var_os(DISABLE_IO_URING_ENV).is_some_and(|v| v != "0");
            #[cfg(target_os = "linux")]
            if disabled {
                tracing::info!("io_uring disabled by {DISABLE_IO_URING_ENV}; using pread/pwrite");
            } else {
                match uring::UringVfs::new() {
                    Ok(vfs) => return Ok(Arc::new(vfs)),
                    Err(err) => {
                        tracing::warn!(error = %err, "io_uring unavailable, falling back to pread/pwrite")
                    }
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = disabled;
            Ok(Arc::new(sync::SyncVfs))
        }
    }
}

/// Submit a batch and block the calling thread until it completes.
pub fn submit_wait(file: &dyn IoFile, ops: Vec<IoOp>) -> Vec<IoResult> {
    let slot = Arc::new((Mutex::new(None::<Vec<IoResult>>), Condvar::new()));
    let filler = Arc::clone(&slot);
    file.submit(
        ops,
        Box::new(move |results| {
            *filler.0.lock() = Some(results);
            filler.1.notify_one();
        }),
    );
    let mut guard = slot.0.lock();
    loop {
        if let Some(results) = guard.take() {
            return results;
        }
        slot.1.wait(&mut guard);
    }
}

/// Submit a batch and wait for it without blocking an async runtime's worker thread.
pub fn submit_async(file: &dyn IoFile, ops: Vec<IoOp>) -> BatchFuture {
    let shared = Arc::new(Mutex::new(FutureSlot::default()));
    let filler = Arc::clone(&shared);
    file.submit(
        ops,
        Box::new(move |results| {
            let waker = {
                let mut slot = filler.lock();
                slot.results = Some(results);
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }),
    );
    BatchFuture { shared }
}

#[derive(Default)]
struct FutureSlot {
    results: Option<Vec<IoResult>>,
    waker: Option<Waker>,
}

/// The future of [`submit_async`].
pub struct BatchFuture {
    shared: Arc<Mutex<FutureSlot>>,
}

impl Future for BatchFuture {
    type Output = Vec<IoResult>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.shared.lock();
        match slot.results.take() {
            Some(results) => Poll::Ready(results),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Collapse a batch's results into the first error, if any, keeping the outcomes otherwise.
pub fn all_ok(results: Vec<IoResult>) -> Result<Vec<IoDone>, IoError> {
    results.into_iter().collect()
}

/// Run a batch op by op with `exec`, honouring the batch contract (used by the synchronous
/// backends; io_uring has its own scheduler with the same rules).
pub(crate) fn run_in_order(
    ops: Vec<IoOp>,
    mut exec: impl FnMut(IoOp) -> IoResult,
) -> Vec<IoResult> {
    let mut results = Vec::with_capacity(ops.len());
    let mut failed = false;
    for op in ops {
        if failed {
            results.push(Err(op.canceled()));
            continue;
        }
        let result = exec(op);
        failed = result.is_err();
        results.push(result);
    }
    results
}
