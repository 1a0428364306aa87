//! The io_uring backend: one dedicated thread owns the ring; callers hand it batches through a
//! bounded channel and are called back on that thread when a batch completes.
//!
//! Ordering: the thread submits every read/write up to the next barrier (as room allows, see
//! below), and submits a barrier (`Sync`, `Grow`) only after all earlier ops of its batch have
//! completed successfully (the "wait for the write's completion" variant of ordering, rather than
//! IOSQE_IO_LINK: it needs no special handling of -ECANCELED chains and lets writes of one batch
//! run in parallel). A short read or write fails the op; every later op of the batch reports
//! canceled, including ops of the same barrier segment that were already in flight.
//!
//! While ops are in flight the thread waits in the kernel for a completion, reaps, then drains
//! new requests; when idle it blocks on the channel. A new batch therefore waits at most for the
//! completion of one in-flight op before it is submitted, unless the ring is at its bound.
//!
//! Invariant (both the thread's ring and the per-thread rings of `submit_now`): the entries
//! pushed to a ring and not yet reaped never outnumber its completion queue. The completion
//! queue therefore cannot overflow: no completion is dropped (kernels without
//! IORING_FEAT_NODROP drop them silently) and submission never meets the EBUSY that a pending
//! overflow causes. Ops beyond the bound wait in their batch, and such a batch waits in the
//! thread's `parked` queue; while any batch is parked the thread takes no new request, so the
//! channel's bound, not the thread's memory, holds submitters back.
//!
//! The per-thread rings keep a second invariant: their submission queue is empty whenever
//! `run_linked` is not running. An entry left there would point at a buffer the caller frees,
//! and the next submission on that thread would hand it to the kernel.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};

use super::sync::{
    create_os_dir_all, exec_blocking, grow_os_file, list_os_dir, open_os_file, os_file_len,
    remove_os_file, sync_os_dir,
};
use super::{
    run_in_order, BackendKind, Completion, IoDone, IoError, IoErrorKind, IoFile, IoOp, IoResult,
    OpKind, OpenOptions, Vfs,
};

/// Submission queue entries of the ring.
const RING_ENTRIES: u32 = 256;
/// Batches that may wait in the channel before submitters block (backpressure, not memory).
const REQUEST_QUEUE_MAX: usize = 1024;
/// `io_uring_enter` rounds in a row that move nothing before a thread ring gives up on its ops.
const MAX_ENTER_STALLS: u32 = 16;
/// The kernel's flag for "wait for completions" (`IORING_ENTER_GETEVENTS` in the UAPI header;
/// neither libc nor io-uring exports it).
const IORING_ENTER_GETEVENTS: u32 = 1;
/// The longest transfer one SQE can describe.
const MAX_SQE_LEN: usize = u32::MAX as usize;

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
        // The ring leaves the thread-local while in use: a thread whose thread-locals are being
        // destroyed, or a nested call, finds `Unavailable` and falls back.
        let mut slot = LOCAL_RING
            .try_with(|ring| ring.replace(LocalRing::Unavailable))
            .unwrap_or(LocalRing::Unavailable);
        let linked = run_linked(&mut slot, &self.file, ops, enter_kernel);
        // Fails only during thread teardown; the ring then closes with `slot`.
        let _ = LOCAL_RING.try_with(|ring| ring.set(slot));
        match linked {
            Ok(results) => results,
            // Still on the calling thread, as promised, and independent of io_uring, which may
            // be what just failed.
            Err(ops) => run_in_order(ops, |op| exec_blocking(&self.file, op)),
        }
    }
}

/// Entries of the small ring each thread that calls `submit_now` owns.
const LOCAL_RING_ENTRIES: u32 = 8;

thread_local! {
    static LOCAL_RING: std::cell::Cell<LocalRing> = const { std::cell::Cell::new(LocalRing::Untried) };
}

enum LocalRing {
    Untried,
    Ready(Box<IoUring>),
    Unavailable,
}

impl LocalRing {
    fn queue_is_empty(&mut self) -> bool {
        match self {
            LocalRing::Ready(ring) => ring.submission().is_empty(),
            LocalRing::Untried | LocalRing::Unavailable => true,
        }
    }
}

/// How `drive_linked` enters the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enter {
    /// Submit what is queued and wait for this many completions.
    SubmitAndWait(usize),
    /// Only wait for this many completions; never submit.
    Wait(usize),
}

/// `io_uring_enter`, behind a function pointer so tests can make it fail.
type EnterFn = fn(&IoUring, Enter) -> io::Result<usize>;

fn enter_kernel(ring: &IoUring, how: Enter) -> io::Result<usize> {
    match how {
        Enter::SubmitAndWait(want) => ring.submit_and_wait(want),
        Enter::Wait(want) => {
            let want = u32::try_from(want).unwrap_or(u32::MAX);
            // SAFETY: submits nothing and passes no argument; the call only waits.
            unsafe {
                ring.submitter()
                    .enter::<libc::sigset_t>(0, want, IORING_ENTER_GETEVENTS, None)
            }
        }
    }
}

/// Submit `ops` linked (IOSQE_IO_LINK: each starts only after the previous one succeeded; after
/// a failure or short transfer the rest complete with -ECANCELED) and wait for all of them on
/// this thread. The ops come back untouched, for the caller to run another way, when this
/// thread has no ring, the batch does not fit one, or the ring refuses it; nothing of theirs
/// reached the kernel then.
fn run_linked(
    slot: &mut LocalRing,
    file: &File,
    ops: Vec<IoOp>,
    enter: EnterFn,
) -> Result<Vec<IoResult>, Vec<IoOp>> {
    debug_assert!(slot.queue_is_empty(), "a thread ring kept entries");
    let outcome = run_linked_inner(slot, file, ops, enter);
    debug_assert!(slot.queue_is_empty(), "a thread ring kept entries");
    outcome
}

fn run_linked_inner(
    slot: &mut LocalRing,
    file: &File,
    mut ops: Vec<IoOp>,
    enter: EnterFn,
) -> Result<Vec<IoResult>, Vec<IoOp>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    // Everything is checked before the first push: once an entry is in the queue it can only
    // leave through the kernel (or with the ring).
    let fd = types::Fd(file.as_raw_fd());
    let Some(entries) = linked_entries(fd, &mut ops, MAX_SQE_LEN) else {
        return Err(ops);
    };
    if matches!(slot, LocalRing::Untried) {
        *slot = match IoUring::new(LOCAL_RING_ENTRIES) {
            Ok(ring) => LocalRing::Ready(Box::new(ring)),
            Err(_) => LocalRing::Unavailable,
        };
    }
    let LocalRing::Ready(ring) = slot else {
        return Err(ops);
    };
    let room = {
        let sq = ring.submission();
        sq.capacity() - sq.len()
    };
    if entries.len() > room || entries.len() > ring.completion().capacity() {
        return Err(ops);
    }
    // SAFETY: every buffer lives in `ops`, on the heap; `drive_linked` returns only once every
    // entry the kernel took has completed, or after `linked_results` leaks the buffers of those
    // it gave up on. Entries the kernel never took are destroyed with the ring below.
    if unsafe { ring.submission().push_multiple(&entries) }.is_err() {
        return Err(ops);
    }
    match drive_linked(ring, entries.len(), enter) {
        LinkedRun::NotTaken => {
            *slot = LocalRing::Unavailable;
            Err(ops)
        }
        LinkedRun::Ran { outcomes, whole } => {
            if !whole {
                // Entries may remain queued (the kernel took a prefix), or the kernel may still
                // hold some: either way this ring is done.
                *slot = LocalRing::Unavailable;
            }
            Ok(linked_results(ops, outcomes))
        }
    }
}

/// The linked entries for `ops`, or None when one cannot be linked (a `Grow`, which the ring
/// does not run, or a buffer longer than `max_len`).
fn linked_entries(fd: types::Fd, ops: &mut [IoOp], max_len: usize) -> Option<Vec<squeue::Entry>> {
    let last = ops.len().checked_sub(1)?;
    let sqe_len = |len: usize| u32::try_from(len).ok().filter(|_| len <= max_len);
    ops.iter_mut()
        .enumerate()
        .map(|(i, op)| {
            let entry = match op {
                IoOp::Read { offset, buf } => {
                    opcode::Read::new(fd, buf.as_mut_ptr(), sqe_len(buf.len())?)
                        .offset(*offset)
                        .build()
                }
                IoOp::Write { offset, buf } => {
                    opcode::Write::new(fd, buf.as_ptr(), sqe_len(buf.len())?)
                        .offset(*offset)
                        .build()
                }
                IoOp::Sync => opcode::Fsync::new(fd)
                    .flags(types::FsyncFlags::DATASYNC)
                    .build(),
                IoOp::Grow { .. } => return None,
            };
            let entry = entry.user_data(i as u64);
            Some(if i < last {
                entry.flags(squeue::Flags::IO_LINK)
            } else {
                entry
            })
        })
        .collect()
}

/// What became of one linked entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linked {
    /// Its completion, as the kernel reported it.
    Done(i32),
    /// The kernel never took it.
    NotRun,
    /// The kernel took it but no completion came while waiting kept failing with this errno.
    Lost(i32),
}

#[derive(Debug)]
enum LinkedRun {
    /// The kernel refused every entry; they are all still queued.
    NotTaken,
    /// One outcome per entry; `whole` when the kernel took every entry and completed them all.
    Ran { outcomes: Vec<Linked>, whole: bool },
}

/// Hand `n` queued entries to the kernel and wait for them, in bounded rounds.
fn drive_linked(ring: &mut IoUring, n: usize, enter: EnterFn) -> LinkedRun {
    let mut outcomes = vec![Linked::NotRun; n];
    let mut seen = 0;
    let mut stalls = 0;
    let submitted = loop {
        let entered = enter(ring, Enter::SubmitAndWait(n));
        seen += reap_linked(ring, &mut outcomes);
        let left = ring.submission().len();
        if left < n {
            break n - left;
        }
        stalls += 1;
        let transient = match &entered {
            Ok(_) => true,
            Err(err) => matches!(
                err.raw_os_error(),
                Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
            ),
        };
        if !transient || stalls >= MAX_ENTER_STALLS {
            tracing::warn!(result = ?entered, "a thread ring does not take entries; using pread/pwrite");
            return LinkedRun::NotTaken;
        }
        back_off(stalls);
    };
    // Entries the kernel left queued are never submitted: they would start a new chain, no
    // longer ordered after the ones taken (a write's fsync could run before the write).
    stalls = 0;
    let mut errno = libc::EIO;
    while seen < submitted {
        let entered = enter(ring, Enter::Wait(submitted - seen));
        let reaped = reap_linked(ring, &mut outcomes);
        seen += reaped;
        if reaped > 0 {
            stalls = 0;
            continue;
        }
        match entered {
            // A signal, not a failing ring: waiting again makes progress.
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(err) => {
                if stalls == 0 {
                    tracing::error!(error = %err, "io_uring_enter failed on a thread ring");
                }
                errno = err.raw_os_error().unwrap_or(libc::EIO);
            }
            Ok(_) => {}
        }
        stalls += 1;
        if stalls >= MAX_ENTER_STALLS {
            tracing::error!(errno, "giving up on a thread ring's in-flight ops");
            for outcome in &mut outcomes[..submitted] {
                if *outcome == Linked::NotRun {
                    *outcome = Linked::Lost(errno);
                }
            }
            return LinkedRun::Ran {
                outcomes,
                whole: false,
            };
        }
        back_off(stalls);
    }
    LinkedRun::Ran {
        outcomes,
        whole: submitted == n,
    }
}

/// Record the completions available; returns how many were new.
fn reap_linked(ring: &mut IoUring, outcomes: &mut [Linked]) -> usize {
    let mut fresh = 0;
    for cqe in ring.completion() {
        let slot = usize::try_from(cqe.user_data())
            .ok()
            .and_then(|i| outcomes.get_mut(i));
        if let Some(slot @ Linked::NotRun) = slot {
            *slot = Linked::Done(cqe.result());
            fresh += 1;
        }
    }
    fresh
}

/// A pause that grows with the rounds that moved nothing, so a failing ring is retried without
/// burning a core (0.2 ms, doubling, at most about 50 ms).
fn back_off(stalls: u32) {
    std::thread::sleep(Duration::from_micros(100 << stalls.min(9)));
}

/// The batch's results from the outcomes of its linked entries, with the batch contract's
/// cancellation applied in op order.
fn linked_results(ops: Vec<IoOp>, outcomes: Vec<Linked>) -> Vec<IoResult> {
    let mut failed = false;
    ops.into_iter()
        .zip(outcomes)
        .map(|(op, outcome)| {
            let result = match outcome {
                Linked::Lost(errno) => {
                    let err = if failed {
                        op.canceled()
                    } else {
                        IoError::os(op.kind(), op.offset(), errno)
                    };
                    // The kernel may still write into (or read from) this buffer.
                    std::mem::forget(op);
                    Err(err)
                }
                _ if failed => Err(op.canceled()),
                Linked::Done(res) => complete_or_cancel(op, res),
                Linked::NotRun => Err(IoError::new(
                    op.kind(),
                    op.offset(),
                    IoErrorKind::Os(libc::EAGAIN),
                    "the kernel did not take the op",
                )),
            };
            failed |= result.is_err();
            result
        })
        .collect()
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
    /// Each op's kind and offset, to report it canceled after its buffer has come back.
    spans: Vec<(OpKind, u64)>,
    results: Vec<Option<IoResult>>,
    /// Index of the first op not yet submitted.
    next: usize,
    inflight: usize,
    failed: bool,
    /// Whether the batch is in `RingLoop::parked`.
    parked: bool,
    done: Option<Completion>,
}

/// Why `advance` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advance {
    /// The batch finished, or waits for its own completions (a barrier, or nothing left).
    Waiting,
    /// The batch has an op to push and the ring has no room for it.
    NoRoom,
}

struct RingLoop {
    ring: IoUring,
    rx: Receiver<Request>,
    batches: Vec<Option<Batch>>,
    free_slots: Vec<usize>,
    /// Entries pushed (submitted or still queued) whose completions are not yet reaped.
    inflight: usize,
    /// The completion queue's size, the bound of `inflight` (the module invariant).
    cq_capacity: usize,
    /// Batches that stopped for lack of room, oldest first, each at most once.
    parked: VecDeque<usize>,
    /// Rounds in a row in which `io_uring_enter` failed and nothing completed.
    stalls: u32,
    #[cfg(test)]
    peak_inflight: usize,
}

impl RingLoop {
    fn new(ring: IoUring, rx: Receiver<Request>) -> Self {
        let cq_capacity = ring.params().cq_entries() as usize;
        RingLoop {
            ring,
            rx,
            batches: Vec::new(),
            free_slots: Vec::new(),
            inflight: 0,
            cq_capacity,
            parked: VecDeque::new(),
            stalls: 0,
            #[cfg(test)]
            peak_inflight: 0,
        }
    }

    fn run(&mut self) {
        loop {
            if self.inflight == 0 {
                // Parking needs a full ring, and reaping unparks before the ring empties.
                debug_assert!(self.parked.is_empty(), "parked batches on an idle ring");
                match self.rx.recv() {
                    Ok(request) => self.accept(request),
                    Err(_) => return, // every handle is gone
                }
            }
            // New requests wait in the channel while the ring is at its bound: the channel is
            // bounded, this thread's queues would not be.
            while self.parked.is_empty() && self.inflight < self.cq_capacity {
                match self.rx.try_recv() {
                    Ok(request) => self.accept(request),
                    Err(_) => break,
                }
            }
            if self.inflight == 0 {
                continue;
            }
            let waited = self.ring.submit_and_wait(1);
            // Reap whatever the outcome: EBUSY and EAGAIN ask for exactly that.
            let reaped = self.reap();
            match waited {
                Ok(_) => self.stalls = 0,
                Err(_) if reaped > 0 => self.stalls = 0,
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                Err(err) => {
                    if self.stalls == 0 {
                        tracing::error!(error = %err, inflight = self.inflight, "io_uring_enter failed");
                    }
                    self.stalls = self.stalls.saturating_add(1);
                    back_off(self.stalls);
                }
            }
        }
    }

    fn accept(&mut self, request: Request) {
        let count = request.ops.len();
        let batch = Batch {
            file: request.file,
            spans: request
                .ops
                .iter()
                .map(|op| (op.kind(), op.offset()))
                .collect(),
            ops: request.ops.into_iter().map(Some).collect(),
            results: (0..count).map(|_| None).collect(),
            next: 0,
            inflight: 0,
            failed: false,
            parked: false,
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
        if self.advance(slot) == Advance::NoRoom {
            self.park(slot);
        }
    }

    /// Whether one more entry may be pushed: the bound leaves room, and so does the submission
    /// queue, after one submit if it was full.
    fn make_room(&mut self) -> bool {
        if self.inflight >= self.cq_capacity {
            return false;
        }
        if !self.ring.submission().is_full() {
            return true;
        }
        // One attempt only: when the kernel cannot take entries now (EBUSY, EAGAIN) the batch
        // parks, and the main loop reaps before anything is submitted again.
        if let Err(err) = self.ring.submit() {
            if !matches!(
                err.raw_os_error(),
                Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
            ) {
                tracing::error!(error = %err, "io_uring submit failed");
            }
        }
        !self.ring.submission().is_full()
    }

    /// Submit what the batch contract and the ring's room allow next, or finish the batch.
    fn advance(&mut self, slot: usize) -> Advance {
        loop {
            let Some(batch) = self.batches.get_mut(slot).and_then(Option::as_mut) else {
                return Advance::Waiting;
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
                return Advance::Waiting;
            }
            let i = batch.next;
            let is_barrier = batch.ops[i].as_ref().is_some_and(IoOp::is_barrier);
            if is_barrier && batch.inflight > 0 {
                return Advance::Waiting; // wait for the ops before the barrier
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
            if !self.make_room() {
                return Advance::NoRoom;
            }
            debug_assert!(
                self.inflight < self.cq_capacity,
                "in-flight entries would outnumber the completion queue"
            );
            // SAFETY: the entry's buffer lives in `batch.ops[i]`, which stays in place (heap
            // memory owned by the batch) until its completion is reaped.
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                return Advance::NoRoom; // make_room just saw a free slot; kept for safety
            }
            self.inflight += 1;
            #[cfg(test)]
            {
                self.peak_inflight = self.peak_inflight.max(self.inflight);
            }
            let Some(batch) = self.batches[slot].as_mut() else {
                return Advance::Waiting;
            };
            batch.inflight += 1;
            batch.next += 1;
            if is_barrier {
                return Advance::Waiting;
            }
        }
    }

    fn park(&mut self, slot: usize) {
        if let Some(batch) = self.batches.get_mut(slot).and_then(Option::as_mut) {
            if !batch.parked {
                batch.parked = true;
                self.parked.push_back(slot);
            }
        }
    }

    /// Give the room completions freed to parked batches, oldest first.
    fn unpark(&mut self) {
        while let Some(&slot) = self.parked.front() {
            if self.advance(slot) == Advance::NoRoom {
                return;
            }
            // `finish` may already have taken the batch off the queue.
            if self.parked.front() == Some(&slot) {
                self.parked.pop_front();
            }
            if let Some(batch) = self.batches.get_mut(slot).and_then(Option::as_mut) {
                batch.parked = false;
            }
        }
    }

    /// Take every available completion; returns how many there were.
    fn reap(&mut self) -> usize {
        let completed: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        let mut touched = Vec::new();
        for &(user_data, res) in &completed {
            let slot = (user_data >> 32) as usize;
            let index = (user_data & 0xffff_ffff) as usize;
            self.inflight = self.inflight.saturating_sub(1);
            let Some(batch) = self.batches.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            batch.inflight = batch.inflight.saturating_sub(1);
            let Some(op) = batch.ops.get_mut(index).and_then(Option::take) else {
                continue;
            };
            let result = complete_op(op, res);
            if result.is_err() {
                batch.failed = true;
            }
            batch.results[index] = Some(result);
            touched.push(slot);
        }
        // Parked batches first: they have waited longest for the room just freed.
        self.unpark();
        touched.dedup();
        for slot in touched {
            // A parked batch keeps its place in the queue, unless it failed and has only
            // cancellations left to do.
            let queued = self
                .batches
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|batch| batch.parked && !batch.failed);
            if queued {
                continue;
            }
            if self.advance(slot) == Advance::NoRoom {
                self.park(slot);
            }
        }
        completed.len()
    }

    fn finish(&mut self, slot: usize) {
        let Some(mut batch) = self.batches[slot].take() else {
            return;
        };
        self.free_slots.push(slot);
        if batch.parked {
            self.parked.retain(|&parked| parked != slot);
        }
        // Ops of a failed op's barrier segment may have been in flight and finished either way;
        // the contract still reports every op after the first failure as canceled.
        let mut failed = false;
        let results = batch
            .results
            .drain(..)
            .zip(&batch.spans)
            .map(|(result, &(kind, offset))| {
                let result = match result {
                    Some(_) if failed => Err(canceled(kind, offset)),
                    Some(result) => result,
                    None => Err(IoError::new(
                        kind,
                        offset,
                        IoErrorKind::Canceled,
                        "op never ran",
                    )),
                };
                failed |= result.is_err();
                result
            })
            .collect();
        if let Some(done) = batch.done.take() {
            done(results);
        }
    }
}

/// The error of an op canceled by an earlier failure, once the op itself is gone.
fn canceled(kind: OpKind, offset: u64) -> IoError {
    IoError::new(
        kind,
        offset,
        IoErrorKind::Canceled,
        "an earlier op of the batch failed",
    )
}

fn build_entry(batch: &mut Batch, index: usize, slot: usize) -> Result<squeue::Entry, IoError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::AlignedBuf;
    use std::os::fd::OwnedFd;
    use std::sync::Mutex;

    fn pattern(len: usize, seed: u64) -> AlignedBuf {
        let mut buf = AlignedBuf::zeroed(len);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed as u8).wrapping_mul(31).wrapping_add((i % 251) as u8);
        }
        buf
    }

    fn temp_file() -> (tempfile::TempDir, Arc<File>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .expect("create");
        (dir, Arc::new(file))
    }

    fn file_len(file: &File) -> u64 {
        file.metadata().expect("metadata").len()
    }

    /// Run `batches` through a ring thread loop on this thread, with a ring of 4 submission and
    /// 8 completion entries, and hand back each batch's results and the loop's final state.
    fn run_small_ring(file: &Arc<File>, batches: Vec<Vec<IoOp>>) -> (Vec<Vec<IoResult>>, RingLoop) {
        let ring = IoUring::new(4).expect("ring");
        let (tx, rx) = sync_channel(REQUEST_QUEUE_MAX);
        let slots: Arc<Mutex<Vec<Option<Vec<IoResult>>>>> =
            Arc::new(Mutex::new((0..batches.len()).map(|_| None).collect()));
        for (i, ops) in batches.into_iter().enumerate() {
            let slots = Arc::clone(&slots);
            let done: Completion = Box::new(move |results| {
                slots.lock().expect("results")[i] = Some(results);
            });
            tx.send(Request {
                file: Arc::clone(file),
                ops,
                done,
            })
            .expect("send");
        }
        drop(tx);
        let mut ring_loop = RingLoop::new(ring, rx);
        ring_loop.run();
        let results = std::mem::take(&mut *slots.lock().expect("results"))
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|| panic!("batch {i} never completed")))
            .collect();
        (results, ring_loop)
    }

    #[test]
    fn batches_larger_than_the_completion_queue_stay_within_it() {
        let (_dir, file) = temp_file();
        let mut big: Vec<IoOp> = (0..300u64)
            .map(|i| IoOp::Write {
                offset: i * 512,
                buf: pattern(512, i),
            })
            .collect();
        big.push(IoOp::Sync);
        big.extend((0..300u64).map(|i| IoOp::Read {
            offset: i * 512,
            buf: AlignedBuf::zeroed(512),
        }));
        let mut batches = vec![big];
        for b in 1..=6u64 {
            batches.push(
                (0..40u64)
                    .map(|i| IoOp::Write {
                        offset: (1000 * b + i) * 512,
                        buf: pattern(512, 1000 * b + i),
                    })
                    .collect(),
            );
        }
        let (results, mut ring_loop) = run_small_ring(&file, batches);

        let cq = ring_loop.cq_capacity;
        assert_eq!(cq, 8, "the test ring's completion queue");
        assert!(
            ring_loop.peak_inflight <= cq,
            "{} in flight",
            ring_loop.peak_inflight
        );
        assert_eq!(
            ring_loop.peak_inflight, cq,
            "the batches never reached the bound"
        );
        assert_eq!(ring_loop.inflight, 0);
        assert!(ring_loop.parked.is_empty());
        assert!(ring_loop.ring.submission().is_empty());
        assert!(ring_loop.batches.iter().all(Option::is_none));

        assert_eq!(results[0].len(), 601);
        for (i, result) in results[0].iter().enumerate() {
            match (i, result) {
                (0..300, Ok(IoDone::Write(_))) | (300, Ok(IoDone::Sync)) => {}
                (301.., Ok(IoDone::Read(buf))) => {
                    let seed = (i - 301) as u64;
                    assert_eq!(&buf[..], &pattern(512, seed)[..], "read {seed}");
                }
                other => panic!("op {i}: {other:?}"),
            }
        }
        for (b, batch) in results.iter().enumerate().skip(1) {
            assert_eq!(batch.len(), 40);
            assert!(
                batch.iter().all(|r| matches!(r, Ok(IoDone::Write(_)))),
                "batch {b}"
            );
        }
        for (b, i) in [(1u64, 0u64), (3, 17), (6, 39)] {
            let mut back = AlignedBuf::zeroed(512);
            std::os::unix::fs::FileExt::read_exact_at(&*file, &mut back, (1000 * b + i) * 512)
                .expect("read back");
            assert_eq!(&back[..], &pattern(512, 1000 * b + i)[..]);
        }
    }

    #[test]
    fn a_failure_cancels_every_later_op_even_those_in_flight() {
        let (_dir, file) = temp_file();
        let mut ops: Vec<IoOp> = (0..8u64)
            .map(|i| IoOp::Write {
                offset: i * 512,
                buf: pattern(512, i),
            })
            .collect();
        // Past the end: a short read, while the writes around it may be in flight.
        ops.push(IoOp::Read {
            offset: 1 << 20,
            buf: AlignedBuf::zeroed(512),
        });
        ops.extend((8..28u64).map(|i| IoOp::Write {
            offset: i * 512,
            buf: pattern(512, i),
        }));
        ops.push(IoOp::Sync);
        ops.push(IoOp::Write {
            offset: 1 << 21,
            buf: pattern(512, 99),
        });
        let (mut results, _) = run_small_ring(&file, vec![ops]);
        let results = results.remove(0);
        assert_eq!(results.len(), 31);
        // Submitted before the read, with room in the ring: they ran and succeeded.
        for (i, r) in results[..8].iter().enumerate() {
            assert!(matches!(r, Ok(IoDone::Write(_))), "op {i}: {r:?}");
        }
        assert_eq!(
            results[8].as_ref().map(|_| ()).map_err(|e| e.kind),
            Err(IoErrorKind::Short)
        );
        for (i, r) in results.iter().enumerate().skip(9) {
            let err = r.as_ref().map(|_| ()).expect_err("canceled");
            assert_eq!(err.kind, IoErrorKind::Canceled, "op {i}");
        }
        assert_eq!(
            results[30]
                .as_ref()
                .map(|_| ())
                .map_err(|e| (e.op, e.offset)),
            Err((OpKind::Write, 1 << 21))
        );
        assert!(file_len(&file) < 1 << 21, "the write after the barrier ran");
    }

    #[test]
    fn run_linked_declines_before_queueing_anything() {
        let (_dir, file) = temp_file();
        let mut slot = LocalRing::Untried;

        // A Grow cannot be linked; the valid write before it must not be queued either.
        let ops = vec![
            IoOp::Write {
                offset: 1 << 20,
                buf: pattern(512, 1),
            },
            IoOp::Grow { len: 1 << 21 },
        ];
        let back = run_linked(&mut slot, &file, ops, enter_kernel).expect_err("declined");
        assert!(
            matches!(&back[0], IoOp::Write { offset, buf } if *offset == 1 << 20 && buf[..] == pattern(512, 1)[..])
        );
        assert!(matches!(back[1], IoOp::Grow { len } if len == 1 << 21));
        assert!(slot.queue_is_empty());

        // More ops than the ring has entries.
        let ops: Vec<IoOp> = (0..=LOCAL_RING_ENTRIES as u64)
            .map(|i| IoOp::Write {
                offset: (1 << 20) + i * 512,
                buf: pattern(512, i),
            })
            .collect();
        let back = run_linked(&mut slot, &file, ops, enter_kernel).expect_err("declined");
        assert_eq!(back.len(), LOCAL_RING_ENTRIES as usize + 1);
        assert!(
            matches!(slot, LocalRing::Ready(_)),
            "declining keeps the ring"
        );
        assert!(slot.queue_is_empty());
        assert_eq!(file_len(&file), 0, "a declined op reached the disk");

        // The ring still works, and only this batch's write lands: nothing stale was queued.
        let results = run_linked(
            &mut slot,
            &file,
            vec![
                IoOp::Write {
                    offset: 0,
                    buf: pattern(512, 7),
                },
                IoOp::Sync,
            ],
            enter_kernel,
        )
        .expect("ran");
        assert!(matches!(&results[0], Ok(IoDone::Write(buf)) if buf[..] == pattern(512, 7)[..]));
        assert!(matches!(results[1], Ok(IoDone::Sync)));
        assert!(slot.queue_is_empty());
        assert_eq!(file_len(&file), 512);
    }

    #[test]
    fn linked_entries_refuse_buffers_longer_than_an_entry_can_say() {
        let (_dir, file) = temp_file();
        let fd = types::Fd(file.as_raw_fd());
        let mut ops = vec![
            IoOp::Write {
                offset: 0,
                buf: pattern(4096, 1),
            },
            IoOp::Read {
                offset: 0,
                buf: AlignedBuf::zeroed(8192),
            },
        ];
        assert!(linked_entries(fd, &mut ops, 4096).is_none());
        let entries = linked_entries(fd, &mut ops, 8192).expect("fits");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].get_user_data(), 1);
        assert!(linked_entries(fd, &mut [], MAX_SQE_LEN).is_none());
    }

    #[test]
    fn a_ring_that_refuses_entries_is_dropped_and_the_ops_come_back() {
        let (_dir, file) = temp_file();
        // A disabled ring answers every io_uring_enter with EBADFD.
        let ring = IoUring::builder()
            .setup_r_disabled()
            .build(LOCAL_RING_ENTRIES)
            .expect("disabled ring");
        let mut slot = LocalRing::Ready(Box::new(ring));
        let ops = vec![
            IoOp::Write {
                offset: 0,
                buf: pattern(512, 3),
            },
            IoOp::Sync,
        ];
        let back = run_linked(&mut slot, &file, ops, enter_kernel).expect_err("fell back");
        assert!(matches!(&back[0], IoOp::Write { buf, .. } if buf[..] == pattern(512, 3)[..]));
        assert!(matches!(back[1], IoOp::Sync));
        assert!(matches!(slot, LocalRing::Unavailable));
        assert_eq!(file_len(&file), 0);
        // Later calls on this thread go straight to the fallback.
        let back = run_linked(&mut slot, &file, back, enter_kernel).expect_err("fell back");
        assert_eq!(back.len(), 2);
    }

    /// Submits without waiting, then fails every wait: a ring whose `io_uring_enter` broke after
    /// the kernel took the entries.
    fn enter_then_fail(ring: &IoUring, how: Enter) -> io::Result<usize> {
        match how {
            Enter::SubmitAndWait(_) => ring.submit(),
            Enter::Wait(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
        }
    }

    #[test]
    fn waiting_that_keeps_failing_gives_up_with_errors() {
        let (_dir, file) = temp_file();
        let (read_end, write_end) = pipe();
        // A read of an empty pipe whose writer stays open never completes.
        let pipe = File::from(read_end);
        let mut slot = LocalRing::Untried;
        let started = std::time::Instant::now();
        let results = run_linked(
            &mut slot,
            &pipe,
            vec![
                IoOp::Read {
                    offset: 0,
                    buf: AlignedBuf::zeroed(512),
                },
                IoOp::Sync,
            ],
            enter_then_fail,
        )
        .expect("gave up with results");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(results.len(), 2);
        assert_eq!(
            results[0].as_ref().map(|_| ()).map_err(|e| e.kind),
            Err(IoErrorKind::Os(libc::EIO))
        );
        assert_eq!(
            results[1].as_ref().map(|_| ()).map_err(|e| e.kind),
            Err(IoErrorKind::Canceled)
        );
        assert!(matches!(slot, LocalRing::Unavailable));
        drop(write_end);
        // The thread's calls now fall back; this file still works through the fallback path.
        let back = run_linked(&mut slot, &file, vec![IoOp::Sync], enter_kernel);
        assert!(back.is_err());
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        unsafe {
            (
                std::os::fd::FromRawFd::from_raw_fd(fds[0]),
                std::os::fd::FromRawFd::from_raw_fd(fds[1]),
            )
        }
    }
}
