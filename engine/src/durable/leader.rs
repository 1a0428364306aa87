//! Who runs the commit pipeline: leader/follower group commit.
//!
//! A blocking committer pushes its commit onto the queue, then tries to take the writer. When
//! the writer is free the committer becomes the leader: it drains the queue, runs the group
//! (its own commit among them), writes and syncs the log on its own thread and answers every
//! commit of the group. A lone commit therefore never leaves its thread: no hop to a writer
//! thread and back (as in RocksDB's write thread and MySQL's binlog group commit). When another
//! thread is leading, the commit waits for its answer and joins the next group.
//!
//! The writer thread leads too: for async committers (an async task must not block a runtime
//! thread in fsync; `Engine::enqueue` says why not `block_in_place`), for groups that
//! queued while a caller led, and for timed work (Batch-mode syncs, log truncation after
//! checkpoints while no commit comes, checkpoint requests by age).
//! Every group, whoever leads it, ends by deleting the log segments a new checkpoint covers
//! (tried once per checkpoint), and the first one starts with the checkpoint a replaying open
//! left due (`Writer::recovery_checkpoint`).
//!
//! ```text
//! commit_blocking: push → try_lock(writer)? ── yes → drain, run group, write+fsync, answer
//!                                          └─ no ──→ wait for the answer
//! after leading:   queue not empty? → wake the writer thread
//! ```
//!
//! Invariants:
//! 1. No commit is stranded: every pusher either tries to lead after pushing or wakes the
//!    writer thread, and every leader looks at the queue after giving the writer up and wakes
//!    the writer thread when it is not empty. A queued commit always has a leader after it.
//! 2. The queue is bounded (`max_inflight_commits`); a full queue answers `QueueFull`.
//! 3. Once closed, nothing more is queued; the writer thread drains what is there, syncs, and
//!    takes the writer out, so no leader runs after shutdown.
//! 4. Every answer a group gathers is sent: by the caller that led it before it gives the
//!    writer up, or for the writer thread by its notifier (or by itself: a lone answer with no
//!    next group waiting and an empty backlog, a full backlog, a closed notifier), the
//!    notifier sending what it holds before the writer thread returns, even by a panic
//!    (`answers.rs`). Answers of different groups may reach their callers in any order; each
//!    was true when gathered.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use aedb_wal::WalWriter;
use parking_lot::{Condvar, Mutex};

use super::answers::{with_notifier, Notifier};
use super::pipeline::{panic_message, Msg, Writer, GROUP_MAX};
use crate::error::{AedbError, Result};

struct QueueState {
    msgs: VecDeque<Msg>,
    closed: bool,
}

pub(crate) struct Pipeline {
    queue: Mutex<QueueState>,
    /// Wakes the writer thread: work queued that no caller leads, or shutdown.
    wake: Condvar,
    capacity: usize,
    /// The writer state; `None` once the writer thread has shut it down.
    writer: Mutex<Option<Writer>>,
}

impl Pipeline {
    pub fn new(writer: Writer, capacity: usize) -> Self {
        Pipeline {
            queue: Mutex::new(QueueState {
                msgs: VecDeque::new(),
                closed: false,
            }),
            wake: Condvar::new(),
            capacity,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Messages waiting in the queue (not yet taken by a leader).
    pub fn queued(&self) -> usize {
        self.queue.lock().msgs.len()
    }

    /// Queue `msg`. `wake_writer`: the caller will not lead (async callers), so the writer
    /// thread must.
    pub fn push(&self, msg: Msg, wake_writer: bool) -> Result<()> {
        let mut queue = self.queue.lock();
        if queue.closed {
            return Err(AedbError::Closed);
        }
        if queue.msgs.len() >= self.capacity {
            return Err(AedbError::QueueFull);
        }
        queue.msgs.push_back(msg);
        drop(queue);
        if wake_writer {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Lead one group if the writer is free (the caller's own commit is in it unless more than
    /// a group's worth queued before it); then hand what is left to the writer thread.
    pub fn lead(&self) {
        if let Some(mut guard) = self.writer.try_lock() {
            if let Some(writer) = guard.as_mut() {
                self.run_group(writer);
                // Answered holding the writer: woken committers queue for the writer thread's
                // next group instead of each leading a small one (`answers.rs`).
                writer.take_answers().send();
                writer.after_group();
            }
        }
        // Invariant 1: after the writer is free again.
        if !self.queue.lock().msgs.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Drain up to a group's worth of messages, run them, write (and sync) the log, answer.
    /// A panic outside the commit bodies (which `Writer::run` catches one by one) leaves the
    /// writer in an unknown state and the group's callers unanswered: the instance latches, so
    /// nothing is acknowledged again until a reopen recovers.
    fn run_group(&self, writer: &mut Writer) {
        let group: Vec<Msg> = {
            let mut queue = self.queue.lock();
            let n = queue.msgs.len().min(GROUP_MAX);
            queue.msgs.drain(..n).collect()
        };
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let force_sync = writer.run(group);
            writer.finish_group(force_sync);
        }));
        if let Err(panic) = ran {
            let message = panic_message(&*panic);
            tracing::error!(%message, "the commit pipeline panicked");
            writer.latch(format!("the commit pipeline panicked: {message}"));
        }
    }

    /// Stop taking commits and wake the writer thread to finish.
    pub fn close(&self) {
        self.queue.lock().closed = true;
        self.wake.notify_one();
    }

    /// The writer thread's body; returns the log writer at shutdown. Its groups' answers are
    /// sent by a notifier thread of its own (`answers.rs`), or by itself: a lone answer with
    /// no next group waiting and nothing in the notifier's backlog, a full backlog, or a
    /// notifier closed or never started.
    pub fn run_writer_thread(&self) -> Option<WalWriter> {
        with_notifier(|notifier| self.lead_until_closed(notifier))
    }

    fn lead_until_closed(&self, notifier: &Notifier) -> Option<WalWriter> {
        let mut wait = Duration::ZERO;
        loop {
            {
                let mut queue = self.queue.lock();
                if queue.msgs.is_empty() && !queue.closed && !wait.is_zero() {
                    self.wake.wait_for(&mut queue, wait);
                }
            }
            let mut guard = self.writer.lock();
            let writer = guard.as_mut()?;
            // At least one group even when nothing is queued: a timed Batch sync.
            loop {
                self.run_group(writer);
                let next_group_waits = !self.queue.lock().msgs.is_empty();
                notifier.hand_off(writer.take_answers(), next_group_waits);
                // After every group: callers that lead nothing (their `try_lock` fails while
                // this thread runs group after group) must not keep the space check and the
                // log's truncation away.
                writer.after_group();
                if self.queue.lock().msgs.is_empty() {
                    break;
                }
            }
            let closing = {
                let queue = self.queue.lock();
                queue.closed && queue.msgs.is_empty()
            };
            if closing {
                // Invariant 3: nothing can be queued any more; everything run is synced.
                writer.finish_group(true);
                notifier.hand_off(writer.take_answers(), true);
                return guard.take().map(Writer::into_wal);
            }
            wait = writer.wait_time();
        }
    }
}
