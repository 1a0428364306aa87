//! The ring thread: batches from the channel, ops submitted up to barriers and bounded by the
//! completion queue, completions reaped and batches answered in op order.

use super::*;

/// A batch in flight on the ring thread.
pub(super) struct Batch {
    file: Arc<File>,
    ops: Vec<Option<IoOp>>,
    /// Each op's kind and offset, to report it canceled after its buffer has come back.
    spans: Vec<(OpKind, u64)>,
    results: Vec<Option<IoResult>>,
    /// Index of the first op not yet submitted.
    next: usize,
    pub(super) inflight: usize,
    failed: bool,
    /// Whether the batch is in `RingLoop::parked`.
    parked: bool,
    done: Option<Completion>,
}

/// Why `advance` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Advance {
    /// The batch finished, or waits for its own completions (a barrier, or nothing left).
    Waiting,
    /// The batch has an op to push and the ring has no room for it.
    NoRoom,
}

pub(super) struct RingLoop {
    pub(super) ring: IoUring,
    rx: Receiver<Request>,
    pub(super) batches: Vec<Option<Batch>>,
    free_slots: Vec<usize>,
    /// Entries pushed (submitted or still queued) whose completions are not yet reaped.
    pub(super) inflight: usize,
    /// The completion queue's size, the bound of `inflight` (the module invariant).
    pub(super) cq_capacity: usize,
    /// Batches that stopped for lack of room, oldest first, each at most once.
    pub(super) parked: VecDeque<usize>,
    /// Rounds in a row in which `io_uring_enter` failed and nothing completed.
    stalls: u32,
    #[cfg(test)]
    pub(super) peak_inflight: usize,
}

impl RingLoop {
    pub(super) fn new(ring: IoUring, rx: Receiver<Request>) -> Self {
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

    pub(super) fn run(&mut self) {
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
pub(super) fn canceled(kind: OpKind, offset: u64) -> IoError {
    IoError::new(
        kind,
        offset,
        IoErrorKind::Canceled,
        "an earlier op of the batch failed",
    )
}

pub(super) fn build_entry(
    batch: &mut Batch,
    index: usize,
    slot: usize,
) -> Result<squeue::Entry, IoError> {
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
        Some(IoOp::WriteBack { offset, len }) => {
            // Longer than one entry can say: to the end of the file (0), a superset.
            let len = u32::try_from(*len).unwrap_or(0);
            opcode::SyncFileRange::new(fd, len)
                .offset(*offset)
                .flags(
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
                .build()
        }
        Some(IoOp::Grow { .. }) | None => return Err(IoError::os(OpKind::Grow, 0, libc::EINVAL)),
    };
    Ok(entry.user_data(user_data))
}

pub(super) fn complete_op(op: IoOp, res: i32) -> IoResult {
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
        IoOp::WriteBack { .. } => Ok(IoDone::WriteBack),
    }
}

/// A pause that grows with the rounds that moved nothing, so a failing ring is retried without
/// burning a core (0.2 ms, doubling, at most about 50 ms).
pub(super) fn back_off(stalls: u32) {
    std::thread::sleep(std::time::Duration::from_micros(100 << stalls.min(9)));
}
