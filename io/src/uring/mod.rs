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
//! `submit_now` (the WAL's write + fsync) does not use the ring: see there.
//!
//! Invariant: the entries pushed to the ring and not yet reaped never outnumber its completion
//! queue. The completion queue therefore cannot overflow: no completion is dropped (kernels
//! without IORING_FEAT_NODROP drop them silently) and submission never meets the EBUSY that a
//! pending overflow causes. Ops beyond the bound wait in their batch, and such a batch waits in the
//! thread's `parked` queue; while any batch is parked the thread takes no new request, so the
//! channel's bound, not the thread's memory, holds submitters back.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};

use super::sync::{exec_blocking, grow_os_file, open_os_file, os_file_len};
use super::{
    run_in_order, BackendKind, Completion, IoDone, IoError, IoErrorKind, IoFile, IoOp, IoResult,
    OpKind, OpenOptions, Vfs,
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
    crate::sync::os_namespace_ops!();
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
        // Plain syscalls on the calling thread: io_uring hands a buffered write's fsync to an
        // io-wq worker, which costs two thread wakeups per WAL flush (measured: about 20 % of
        // a one-row commit's CPU), while the caller blocks for the result either way.
        run_in_order(ops, |op| exec_blocking(&self.file, op))
    }
}

mod ring;
#[cfg(test)]
mod tests;

use ring::*;
