//! The io_uring backend: one dedicated thread owns the ring; callers hand it batches through a
//! bounded channel and are called back on that thread when a batch completes.
//!
//! Ordering: the thread submits every read/write up to the next barrier at once, and submits a
//! barrier (`Sync`, `Grow`) only after all earlier ops of its batch have completed successfully
//! (the "wait for the write's completion" variant of ordering, rather than IOSQE_IO_LINK: it
//! needs no special handling of -ECANCELED chains and lets writes of one batch run in parallel).
//! A short read or write fails the op; ops after a failure complete as canceled.
//!
//! While ops are in flight the thread waits in the kernel for a completion, then drains new
//! requests; when idle it blocks on the channel. A new batch therefore waits at most for the
//! completion of one in-flight op before it is submitted.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use io_uring::{opcode, types, IoUring};

use super::sync::{
    create_os_dir_all, grow_os_file, list_os_dir, open_os_file, os_file_len, remove_os_file,
    sync_os_dir,
};
use super::{
    BackendKind, Completion, IoDone, IoError, IoErrorKind, IoFile, IoOp, IoResult, OpKind,
    OpenOptions, Vfs,
};

/// Submission queue entries of the ring.
const RING_ENTRIES: u32 = 256;
/// Batches that may wait in the channel before submitters block (backpressure, not memory).
const REQUEST_QUEUE_MAX: usize = 1024;

struct Request {
    file: Arc<File>,
    ops: Vec<IoOp>,
    done: Completion,
}

/// The io_uring file system. Cloning the handle shares one ring thread.
pub struct UringVfs {
    tx: SyncSender<Request>,
}

pub struct UringFile {
    file: Arc<File>,
    tx: SyncSender<Request>,
}

impl UringVfs {
    /// Set up a ring and its thread; fails (so the caller can fall back) when the kernel refuses
    /// io_uring (ENOSYS, EPERM from seccomp or `kernel.io_uring_disabled`, ENOMEM).
    pub fn new() -> Result<Self, IoError> {
        let mut ring =
            IoUring::new(RING_ENTRIES).map_err(|e| IoError::from_os(OpKind::Read, 0, &e))?;
        probe_round_trip(&mut ring)?;
        let (tx, rx) = sync_channel(REQUEST_QUEUE_MAX);
        std::thread::Builder::new()
            .name("aedb-io-uring".into())
            .spawn(move || RingLoop::new(ring, rx).run())
            .map_err(|e| IoError::from_os(OpKind::Read, 0, &e))?;
        tracing::info!(
            backend = "io_uring",
            entries = RING_ENTRIES,
            "I/O backend ready"
        );
        Ok(UringVfs { tx })
    }
}

/// A ring can be created yet unusable (seccomp filtering io_uring_enter): submit one no-op.
fn probe_round_trip(ring: &mut IoUring) -> Result<(), IoError> {
    let nop = opcode::Nop::new().build().user_data(u64::MAX);
    // SAFETY: a NOP references no memory.
    unsafe { ring.submission().push(&nop) }
        .map_err(|_| IoError::os(OpKind::Read, 0, libc::EBUSY))?;
    ring.submit_and_wait(1)
        .map_err(|e| IoError::from_os(OpKind::Read, 0, &e))?;
    let cqe = ring.completion().next();
    match cqe {
        Some(cqe) if cqe.result() >= 0 => Ok(()),
        Some(cqe) => Err(IoError::os(OpKind::Read, 0, -cqe.result())),
        None => Err(IoError::os(OpKind::Read, 0, libc::EIO)),
    }
}

impl Vfs for UringVfs {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }
    fn open(&self, path: &Path, opts: OpenOptions) -> Result<Arc<dyn IoFile>, IoError> {
        Ok(Arc::new(UringFile {
            file: Arc::new(open_os_file(path, opts)?),
            tx: self.tx.clone(),
        }))
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn remove(&self, path: &Path) -> Result<(), IoError> {
        remove_os_file(path)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<(), IoError> {
        create_os_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<(), IoError> {
        sync_os_dir(dir)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, IoError> {
        list_os_dir(dir)
    }
}

impl IoFile for UringFile {
    fn submit(&self, ops: Vec<IoOp>, done: Completion) {
        let request = Request {
            file: Arc::clone(&self.file),
            ops,
            done,
        };
        if let Err(err) = self.tx.send(request) {
            let request = err.0;
            let results = request
                .ops
                .iter()
                .map(|op| {
                    Err(IoError::new(
                        op.kind(),
                        0,
                        IoErrorKind::Closed,
                        "io_uring thread has stopped",
                    ))
                })
                .collect();
            (request.done)(results);
        }
    }
    fn len(&self) -> Result<u64, IoError> {
        os_file_len(&self.file)
    }
    fn read_now(&self, offset: u64, buf: super::AlignedBuf) -> Result<super::AlignedBuf, IoError> {
        super::sync::pread_now(&self.file, offset, buf)
    }

    fn submit_now(&self, ops: Vec<IoOp>) -> Vec<IoResult> {
        let linkable = ops.len() <= LOCAL_RING_ENTRIES as usize
            && ops.iter().all(|op| !matches!(op, IoOp::Grow { .. }));
        if linkable {
            if let Some(results) =
                LOCAL_RING.with(|ring| run_linked(&mut ring.borrow_mut(), &self.file, &ops))
            {
                return results
                    .into_iter()
                    .zip(ops)
                    .map(|(res, op)| complete_or_cancel(op, res))
                    .collect();
            }
        }
        super::submit_wait(self, ops)
    }
}

/// Entries of the small ring each thread that calls `submit_now` owns.
const LOCAL_RING_ENTRIES: u32 = 8;

thread_local! {
    static LOCAL_RING: std::cell::RefCell<LocalRing> = const { std::cell::RefCell::new(LocalRing::Untried) };
}

enum LocalRing {
    Untried,
    Ready(Box<IoUring>),
    Unavailable,
}

/// Submit `ops` linked (IOSQE_IO_LINK: each starts only after the previous one succeeded; after
/// a failure or short transfer the rest complete with -ECANCELED) and wait for all of them on
/// this thread. None when this thread cannot have a ring (the caller falls back).
fn run_linked(slot: &mut LocalRing, file: &File, ops: &[IoOp]) -> Option<Vec<i32>> {
    if matches!(slot, LocalRing::Untried) {
        *slot = match IoUring::new(LOCAL_RING_ENTRIES) {
            Ok(ring) => LocalRing::Ready(Box::new(ring)),
            Err(_) => LocalRing::Unavailable,
        };
    }
    let LocalRing::Ready(ring) = slot else {
        return None;
    };
    let fd = types::Fd(file.as_raw_fd());
    for (i, op) in ops.iter().enumerate() {
        let entry = match op {
            IoOp::Read { offset, buf } => {
                opcode::Read::new(fd, buf.as_ptr() as *mut u8, u32::try_from(buf.len()).ok()?)
                    .offset(*offset)
                    .build()
            }
            IoOp::Write { offset, buf } => {
                opcode::Write::new(fd, buf.as_ptr(), u32::try_from(buf.len()).ok()?)
                    .offset(*offset)
                    .build()
            }
            IoOp::Sync => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build(),
            IoOp::Grow { .. } => return None,
        };
        let mut entry = entry.user_data(i as u64);
        if i + 1 < ops.len() {
            entry = entry.flags(io_uring::squeue::Flags::IO_LINK);
        }
        // SAFETY: every buffer lives in `ops`, which the caller keeps until this returns, and
        // this function waits for every completion before returning.
        if unsafe { ring.submission().push(&entry) }.is_err() {
            return None;
        }
    }
    let mut results = vec![-libc::ECANCELED; ops.len()];
    let mut seen = 0;
    while seen < ops.len() {
        if let Err(err) = ring.submit_and_wait(ops.len() - seen) {
            if err.raw_os_error() != Some(libc::EINTR) {
                // The entries are in the kernel's hands: wait them out before failing.
                tracing::error!(error = %err, "io_uring_enter failed on a thread ring");
            }
        }
        for cqe in ring.completion() {
            if let Some(slot) = results.get_mut(cqe.user_data() as usize) {
                *slot = cqe.result();
                seen += 1;
            }
        }
    }
    Some(results)
}

/// Turn a raw completion into the op's result (a canceled link becomes `Canceled`).
fn complete_or_cancel(op: IoOp, res: i32) -> IoResult {
    if res == -libc::ECANCELED {
        return Err(op.canceled());
    }
    complete_op(op, res)
}

/// A batch in flight on the ring thread.
struct Batch {
    file: Arc<File>,
    ops: Vec<Option<IoOp>>,
    results: Vec<Option<IoResult>>,
    /// Index of the first op not yet submitted.
    next: usize,
    inflight: usize,
    failed: bool,
    done: Option<Completion>,
}

struct RingLoop {
    ring: IoUring,
    rx: Receiver<Request>,
    batches: Vec<Option<Batch>>,
    free_slots: Vec<usize>,
    inflight: usize,
    /// SQEs pushed since the last submit.
    queued: usize,
}

impl RingLoop {
    fn new(ring: IoUring, rx: Receiver<Request>) -> Self {
        RingLoop {
            ring,
            rx,
            batches: Vec::new(),
            free_slots: Vec::new(),
            inflight: 0,
            queued: 0,
        }
    }

    fn run(mut self) {
        loop {
            if self.inflight == 0 && self.queued == 0 {
                match self.rx.recv() {
                    Ok(request) => self.accept(request),
                    Err(_) => return, // every handle is gone
                }
            }
            loop {
                match self.rx.try_recv() {
                    Ok(request) => self.accept(request),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) if self.inflight == 0 && self.queued == 0 => {
                        return
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            }
            if self.inflight == 0 {
                continue;
            }
            let wait_result = self.ring.submit_and_wait(1);
            self.queued = 0;
            if let Err(err) = wait_result {
                if err.raw_os_error() != Some(libc::EINTR)
                    && err.raw_os_error() != Some(libc::EBUSY)
                {
                    tracing::error!(error = %err, "io_uring_enter failed");
                }
            }
            self.reap();
        }
    }

    fn accept(&mut self, request: Request) {
        let count = request.ops.len();
        let batch = Batch {
            file: request.file,
            ops: request.ops.into_iter().map(Some).collect(),
            results: (0..count).map(|_| None).collect(),
            next: 0,
            inflight: 0,
            failed: false,
            done: Some(request.done),
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.batches[slot] = Some(batch);
                slot
            }
            None => {
                self.batches.push(Some(batch));
                self.batches.len() - 1
            }
        };
        self.advance(slot);
    }

    /// Submit what the batch contract allows next, or finish the batch.
    fn advance(&mut self, slot: usize) {
        loop {
            let Some(batch) = self.batches[slot].as_mut() else {
                return;
            };
            if batch.failed {
                while batch.next < batch.ops.len() {
                    let i = batch.next;
                    if let Some(op) = batch.ops[i].take() {
                        batch.results[i] = Some(Err(op.canceled()));
                    }
                    batch.next += 1;
                }
            }
            if batch.next == batch.ops.len() {
                if batch.inflight == 0 {
                    self.finish(slot);
                }
                return;
            }
            let i = batch.next;
            let is_barrier = batch.ops[i].as_ref().is_some_and(IoOp::is_barrier);
            if is_barrier && batch.inflight > 0 {
                return; // wait for the ops before the barrier
            }
            if let Some(IoOp::Grow { len }) = batch.ops[i] {
                // fallocate has no benefit from the ring here; run it inline on this thread.
                let result = grow_os_file(&batch.file, len).map(|()| IoDone::Grow);
                batch.failed = result.is_err();
                batch.ops[i] = None;
                batch.results[i] = Some(result);
                batch.next += 1;
                continue;
            }
            let entry = match build_entry(batch, i, slot) {
                Ok(entry) => entry,
                Err(err) => {
                    batch.ops[i] = None;
                    batch.results[i] = Some(Err(err));
                    batch.failed = true;
                    batch.next += 1;
                    continue;
                }
            };
            // SAFETY: the entry's buffer lives in `batch.ops[i]`, which stays in place (heap
            // memory owned by the batch) until its completion is reaped.
            while unsafe { self.ring.submission().push(&entry) }.is_err() {
                // Full submission queue: hand what is queued to the kernel and retry.
                if let Err(err) = self.ring.submit() {
                    tracing::error!(error = %err, "io_uring submit failed");
                }
                self.queued = 0;
            }
            self.queued += 1;
            self.inflight += 1;
            let Some(batch) = self.batches[slot].as_mut() else {
                return;
            };
            batch.inflight += 1;
            batch.next += 1;
            if is_barrier {
                return;
            }
        }
    }

    fn reap(&mut self) {
        let completed: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        let mut touched = Vec::new();
        for (user_data, res) in completed {
            let slot = (user_data >> 32) as usize;
            let index = (user_data & 0xffff_ffff) as usize;
            self.inflight -= 1;
            let Some(batch) = self.batches.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            batch.inflight -= 1;
            let Some(op) = batch.ops[index].take() else {
                continue;
            };
            let result = complete_op(op, res);
            if result.is_err() {
                batch.failed = true;
            }
            batch.results[index] = Some(result);
            touched.push(slot);
        }
        touched.dedup();
        for slot in touched {
            self.advance(slot);
        }
    }

    fn finish(&mut self, slot: usize) {
        let Some(mut batch) = self.batches[slot].take() else {
            return;
        };
        self.free_slots.push(slot);
        let results = batch
            .results
            .drain(..)
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(IoError::new(
                        OpKind::Read,
                        0,
                        IoErrorKind::Canceled,
                        "op never ran",
                    ))
                })
            })
            .collect();
        if let Some(done) = batch.done.take() {
            done(results);
        }
    }
}

fn build_entry(
    batch: &mut Batch,
    index: usize,
    slot: usize,
) -> Result<io_uring::squeue::Entry, IoError> {
    let fd = types::Fd(batch.file.as_raw_fd());
    let user_data = ((slot as u64) << 32) | index as u64;
    let too_large = |kind, offset| IoError::os(kind, offset, libc::EINVAL);
    let entry = match batch.ops[index].as_mut() {
        Some(IoOp::Read { offset, buf }) => {
            let len = u32::try_from(buf.len()).map_err(|_| too_large(OpKind::Read, *offset))?;
            opcode::Read::new(fd, buf.as_mut_ptr(), len)
                .offset(*offset)
                .build()
        }
        Some(IoOp::Write { offset, buf }) => {
            let len = u32::try_from(buf.len()).map_err(|_| too_large(OpKind::Write, *offset))?;
            opcode::Write::new(fd, buf.as_ptr(), len)
                .offset(*offset)
                .build()
        }
        Some(IoOp::Sync) => opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build(),
        Some(IoOp::Grow { .. }) | None => return Err(IoError::os(OpKind::Grow, 0, libc::EINVAL)),
    };
    Ok(entry.user_data(user_data))
}

fn complete_op(op: IoOp, res: i32) -> IoResult {
    let kind = op.kind();
    let offset = op.offset();
    if res < 0 {
        return Err(IoError::os(kind, offset, -res));
    }
    let moved = res as usize;
    match op {
        IoOp::Read { buf, .. } if moved == buf.len() => Ok(IoDone::Read(buf)),
        IoOp::Write { buf, .. } if moved == buf.len() => Ok(IoDone::Write(buf)),
        IoOp::Read { buf, .. } | IoOp::Write { buf, .. } => Err(IoError::new(
            kind,
            offset,
            IoErrorKind::Short,
            format!("moved {moved} of {} bytes", buf.len()),
        )),
        IoOp::Sync => Ok(IoDone::Sync),
        IoOp::Grow { .. } => Ok(IoDone::Grow),
    }
}
