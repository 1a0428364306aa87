//! The thread rings of `submit_now`: a WAL write and its fsync as one linked submission on the
//! calling thread, validated before anything is pushed, and bounded in how long it waits.

use super::*;
use std::io;
use std::time::Duration;

/// Entries of the small ring each thread that calls `submit_now` owns.
pub(super) const LOCAL_RING_ENTRIES: u32 = 8;

thread_local! {
    pub(super) static LOCAL_RING: std::cell::Cell<LocalRing> = const { std::cell::Cell::new(LocalRing::Untried) };
}

pub(super) enum LocalRing {
    Untried,
    Ready(Box<IoUring>),
    Unavailable,
}

impl LocalRing {
    pub(super) fn queue_is_empty(&mut self) -> bool {
        match self {
            LocalRing::Ready(ring) => ring.submission().is_empty(),
            LocalRing::Untried | LocalRing::Unavailable => true,
        }
    }
}

/// How `drive_linked` enters the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Enter {
    /// Submit what is queued and wait for this many completions.
    SubmitAndWait(usize),
    /// Only wait for this many completions; never submit.
    Wait(usize),
}

/// `io_uring_enter`, behind a function pointer so tests can make it fail.
pub(super) type EnterFn = fn(&IoUring, Enter) -> io::Result<usize>;

pub(super) fn enter_kernel(ring: &IoUring, how: Enter) -> io::Result<usize> {
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
pub(super) fn run_linked(
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

pub(super) fn run_linked_inner(
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
pub(super) fn linked_entries(
    fd: types::Fd,
    ops: &mut [IoOp],
    max_len: usize,
) -> Option<Vec<squeue::Entry>> {
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
pub(super) enum Linked {
    /// Its completion, as the kernel reported it.
    Done(i32),
    /// The kernel never took it.
    NotRun,
    /// The kernel took it but no completion came while waiting kept failing with this errno.
    Lost(i32),
}

#[derive(Debug)]
pub(super) enum LinkedRun {
    /// The kernel refused every entry; they are all still queued.
    NotTaken,
    /// One outcome per entry; `whole` when the kernel took every entry and completed them all.
    Ran { outcomes: Vec<Linked>, whole: bool },
}

/// Hand `n` queued entries to the kernel and wait for them, in bounded rounds.
pub(super) fn drive_linked(ring: &mut IoUring, n: usize, enter: EnterFn) -> LinkedRun {
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
pub(super) fn reap_linked(ring: &mut IoUring, outcomes: &mut [Linked]) -> usize {
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
pub(super) fn back_off(stalls: u32) {
    std::thread::sleep(Duration::from_micros(100 << stalls.min(9)));
}

/// The batch's results from the outcomes of its linked entries, with the batch contract's
/// cancellation applied in op order.
pub(super) fn linked_results(ops: Vec<IoOp>, outcomes: Vec<Linked>) -> Vec<IoResult> {
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
pub(super) fn complete_or_cancel(op: IoOp, res: i32) -> IoResult {
    if res == -libc::ECANCELED {
        return Err(op.canceled());
    }
    complete_op(op, res)
}
