//! The commit pipeline: the writer applies a group of commits in arrival order, appends each
//! commit's frame, publishes it, and makes the whole group durable with one write and one
//! fsync. Whichever thread leads runs it (`leader.rs`): a committing caller or the writer
//! thread, one at a time.
//!
//! ```text
//! begin one txn → for each commit of the group: body (its own sequence) → seal: prepare →
//! append every commit's frame → publish → one write (+ one fsync, per durability mode) → answers
//! ```
//!
//! One write transaction carries the whole group (`group.rs`): a failed commit is taken out by
//! rebuilding it from the commits before.
//!
//! Invariants:
//! 1. Frames are appended in commit-sequence order and frame LSN = commit sequence.
//! 2. A frame is appended only after every step of its commit that can fail (`prepare`), so an
//!    appended frame is never taken back and no LSN is handed out twice. The one exception is
//!    a rotation failing inside a group (`seal_after_failed_append`): it latches, and a
//!    commit it appended is either republished (its frame synced) or told its outcome is
//!    unknown.
//! 3. A commit is answered only once its frame is written (Visible in `Batch`/`OsBuffered`) or
//!    synced (Durable, and every commit in `Full`); an answer that rests on an earlier commit
//!    (an idempotent replay) waits for that commit the same way. `finish_group` gathers the
//!    answers; the leader sends them (`answers.rs`).
//! 4. After any failed write or sync nothing is acknowledged again (the latch): every waiting
//!    and later commit gets an error (`Failed`, or the I/O error for one that never reached
//!    the log), except those the log had synced or a durable checkpoint covers.
//! 5. The queue is bounded (`max_inflight_commits`); a full queue is `QueueFull`, never memory.
//! 6. A commit's `after_publish` callbacks run once it is acknowledged (durable in `Full`,
//!    written otherwise), in commit order, on the leading thread; never for a commit whose
//!    outcome a latch left unknown.
//! 7. The mark signal (`Engine::watch_marks`) never names a commit before it is deliverable:
//!    durable, or written under `OsBuffered`; after a latch, durable only. It is a wake-up
//!    hint at or past the newest deliverable marked commit (the checkpoint after a replaying
//!    open raises it to the replayed head), not the seq of a marked commit.

mod checkpoints;

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aedb_pager::{PageStore, WriteTxn};
use aedb_wal::WalWriter;
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::answers::Answers;
use super::group::{self, Applied, CommitCall, GroupTxn};
use super::txn::{AfterPublish, LoggedTxn};
use crate::config::{AedbConfig, DurabilityMode};
use crate::error::{AedbError, Result};
use crate::CommitFinality;

pub(super) use checkpoints::delete_covered_segments;

/// Commits taken from the queue per group.
pub(crate) const GROUP_MAX: usize = 1024;
/// How long the idle writer sleeps before looking at checkpoint-driven log truncation (groups
/// truncate as they end; this covers a log that no commit follows).
const IDLE_WAKE: Duration = Duration::from_millis(100);
/// Marked commits waiting to become deliverable; past it the oldest are forgotten (a later
/// mark raises the signal past them anyway).
const MAX_PENDING_MARKS: usize = 4_096;
/// Size-triggered checkpoint requests are at least this far apart.
const CHECKPOINT_REQUEST_GAP: Duration = Duration::from_millis(100);

pub(crate) type Body = Box<dyn FnOnce(&mut LoggedTxn) -> Result<Box<dyn Any + Send>> + Send>;

pub(crate) struct Committed {
    pub commit_seq: u64,
    pub durable_head_seq: u64,
    pub value: Box<dyn Any + Send>,
}

pub(crate) enum Msg {
    Commit {
        body: Body,
        finality: CommitFinality,
        /// Run the body against the latest state and discard it (preflight).
        dry_run: bool,
        reply: oneshot::Sender<Result<Committed>>,
    },
    /// Make everything committed so far durable; replies with the durable head.
    Sync(oneshot::Sender<Result<u64>>),
}

/// State the writer shares with the engine's other threads.
pub(crate) struct Shared {
    pub store: PageStore,
    pub durable_seq: AtomicU64,
    pub failed: Mutex<Option<String>>,
    /// LSN a durable checkpoint covers; the writer deletes log segments up to it.
    pub covered_lsn: AtomicU64,
    /// Sequence of the newest durable checkpoint (ahead of `covered_lsn` while readers of
    /// other processes keep the log).
    pub checkpointed_seq: AtomicU64,
    pub checkpoint_request: Mutex<bool>,
    pub checkpoint_signal: Condvar,
    /// Signalled (with `checkpoint_request`) when the checkpointer finished a checkpoint.
    pub checkpoint_finished: Condvar,
    /// Set at shutdown: the checkpointer thread exits.
    pub stopping: std::sync::atomic::AtomicBool,
    /// The open replayed the log and left its checkpoint to the first leader, which runs it
    /// before its group (`Writer::recovery_checkpoint`). Cleared under `checkpoint_request`,
    /// with `checkpoint_finished` signalled, once it is durable or has failed and latched.
    pub recovery_checkpoint_due: std::sync::atomic::AtomicBool,
    pub groups: AtomicU64,
    pub syncs: AtomicU64,
    /// Snapshots of the most recent commits, so reads `AtSeq(n)` can find them.
    pub retained: Mutex<super::retained::RetainedVersions>,
    /// The trees whose writes are tracked (named by the layer above: the schema catalog,
    /// grants, read policies — small trees that caches decode).
    pub watched_trees: parking_lot::RwLock<Arc<[Arc<str>]>>,
    /// Sequence of the newest commit that wrote a watched tree (the head at open before
    /// any): caches of what was decoded from them trust only what was read at or after it.
    pub watched_changed_at: AtomicU64,
    pub structural: Arc<Mutex<super::structural::StructuralVersions>>,
    /// A deliverable seq at or past the newest marked commit (`Engine::watch_marks`).
    pub marks: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub fn check_failed(&self) -> Result<()> {
        match &*self.failed.lock() {
            Some(reason) => Err(AedbError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    pub fn latch(&self, reason: String) {
        let mut failed = self.failed.lock();
        if failed.is_none() {
            tracing::error!(%reason, "instance latched into the failed state");
            *failed = Some(reason);
        }
    }

    pub fn request_checkpoint(&self) {
        *self.checkpoint_request.lock() = true;
        self.checkpoint_signal.notify_one();
    }

    /// Wait until the checkpoint the open left due is over (at once when none is).
    pub fn wait_for_recovery_checkpoint(&self) {
        if !self.recovery_checkpoint_due.load(Ordering::Acquire) {
            return;
        }
        let mut request = self.checkpoint_request.lock();
        while self.recovery_checkpoint_due.load(Ordering::Acquire) {
            self.checkpoint_finished.wait(&mut request);
        }
    }
}

/// A commit waiting for its answer: until its frame is written (Visible in Batch and
/// OsBuffered), or synced (`durable`).
struct Waiter {
    wait_for: u64,
    commit_seq: u64,
    durable: bool,
    value: Box<dyn Any + Send>,
    reply: oneshot::Sender<Result<Committed>>,
}

impl Waiter {
    fn of(commit: Applied) -> Self {
        Waiter {
            wait_for: commit.wait_for,
            commit_seq: commit.seq,
            durable: commit.durable,
            value: commit.value,
            reply: commit.reply,
        }
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    wal: WalWriter,
    config: AedbConfig,
    waiters: Vec<Waiter>,
    sync_waiters: Vec<oneshot::Sender<Result<u64>>>,
    /// Answers gathered for the leader to send once it gives the writer up (`answers.rs`).
    answers: Answers,
    /// Published commits' `after_publish` callbacks, in commit order, until their commit is
    /// acknowledged (invariant 6).
    acknowledged_callbacks: VecDeque<(u64, Vec<AfterPublish>)>,
    /// Marked commits not yet deliverable, in order (at most `MAX_PENDING_MARKS`).
    pending_marks: VecDeque<u64>,
    last_sync: Instant,
    last_checkpoint_request: Instant,
    bytes_since_sync: u64,
    bytes_since_checkpoint_request: u64,
    truncated_through: u64,
    /// Whether the log's sync point says what is durable. Not from a replaying open until its
    /// checkpoint has succeeded: the replayed frames may be on no disk (a failed fsync of the
    /// process before left them only in the page cache), however the log syncs now.
    log_vouches: bool,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, wal: WalWriter, config: AedbConfig) -> Self {
        // The log recovery left counts as logged since a request.
        let logged = wal.live_bytes();
        let truncated_through = shared.covered_lsn.load(Ordering::Acquire);
        Writer {
            wal,
            config,
            waiters: Vec::new(),
            sync_waiters: Vec::new(),
            answers: Answers::default(),
            acknowledged_callbacks: VecDeque::new(),
            pending_marks: VecDeque::new(),
            last_sync: Instant::now(),
            last_checkpoint_request: Instant::now(),
            bytes_since_sync: 0,
            bytes_since_checkpoint_request: logged,
            truncated_through,
            log_vouches: !shared.recovery_checkpoint_due.load(Ordering::Acquire),
            shared,
        }
    }

    /// Run a group's messages (commits are applied and published; answers wait for
    /// `finish_group`). Returns whether a message asked for a sync.
    pub fn run(&mut self, group: Vec<Msg>) -> bool {
        if self.shared.recovery_checkpoint_due.load(Ordering::Acquire) {
            self.recovery_checkpoint();
        }
        let mut force_sync = false;
        // The transaction the group's commits are applied to, until it is sealed. It holds
        // the store's writer lock, so it never outlives this call (nor leaves this thread).
        let mut open: Option<GroupTxn> = None;
        let messages = group.len();
        for msg in group {
            match msg {
                Msg::Commit {
                    body,
                    dry_run: true,
                    reply,
                    ..
                } => {
                    // A dry run takes a transaction of its own, after the group's.
                    self.seal_group(open.take());
                    let _ = reply.send(self.dry_run(body));
                }
                Msg::Commit {
                    body,
                    finality,
                    reply,
                    ..
                } => {
                    open = self.apply(open, body, finality, reply);
                    if open.as_ref().is_some_and(GroupTxn::is_full) {
                        self.seal_group(open.take());
                    }
                }
                Msg::Sync(reply) => {
                    force_sync = true;
                    self.sync_waiters.push(reply);
                }
            }
        }
        self.seal_group(open);
        if messages > 0 {
            // The writer thread's timed runs (a Batch-mode sync) are not groups.
            self.shared.groups.fetch_add(1, Ordering::Relaxed);
        }
        force_sync
    }

    /// Latch the instance (a panic escaped the pipeline itself, not a commit body).
    pub fn latch(&self, reason: String) {
        self.shared.latch(reason);
    }

    /// The answers `finish_group` gathered, for the leader to send (`answers.rs`).
    pub fn take_answers(&mut self) -> Answers {
        std::mem::take(&mut self.answers)
    }

    /// The log writer, at shutdown (after a final synced `finish_group`).
    pub fn into_wal(self) -> WalWriter {
        self.wal
    }

    /// How long the writer thread may sleep before it has timed work to do.
    pub fn wait_time(&self) -> Duration {
        // In Batch mode never sleep past an interval, synced or not: a caller leading a
        // group may leave it unsynced without waking this thread.
        if self.config.durability_mode == DurabilityMode::Batch {
            let interval = Duration::from_millis(self.config.batch_interval_ms);
            let unsynced = self.wal.synced_lsn() < self.wal.next_lsn() - 1;
            let wait = if unsynced {
                interval.saturating_sub(self.last_sync.elapsed())
            } else {
                interval
            };
            wait.min(IDLE_WAKE).max(Duration::from_millis(1))
        } else {
            IDLE_WAKE
        }
    }

    /// Run one commit's body on the group's transaction (begun by the group's first commit);
    /// it is answered once the group is sealed and its frame written or synced, as the
    /// caller's finality and the durability mode ask.
    fn apply(
        &mut self,
        open: Option<GroupTxn>,
        body: Body,
        finality: CommitFinality,
        reply: oneshot::Sender<Result<Committed>>,
    ) -> Option<GroupTxn> {
        // Full makes every commit durable before it returns, whatever the finality asked;
        // otherwise Visible returns once its group is written to the OS (a killed process then
        // loses nothing acknowledged; only a power loss can).
        let durable = finality == CommitFinality::Durable
            || self.config.durability_mode == DurabilityMode::Full;
        if let Err(err) = self.shared.check_failed() {
            let _ = reply.send(Err(err));
            return open;
        }
        let mut group = match open {
            Some(group) => group,
            None => match GroupTxn::begin(&self.shared.store, self.seal_bytes()) {
                Ok(group) => group,
                Err(err) => {
                    let _ = reply.send(Err(err));
                    return None;
                }
            },
        };
        let max_bytes = self.config.max_transaction_bytes as usize;
        let structural = Arc::clone(&self.shared.structural);
        let watched = Arc::clone(&self.shared.watched_trees.read());
        let opened =
            group.open_commit(|txn, seq| LoggedTxn::new(txn, seq, max_bytes, structural, watched));
        let mut logged = match opened {
            Ok(logged) => logged,
            Err(err) => {
                let _ = reply.send(Err(err.clone()));
                group.fail(&err);
                return None;
            }
        };
        let ran = run_caught(body, &mut logged);
        let call = CommitCall { durable, reply };
        match group.close_commit(&self.shared.store, &self.shared, logged, ran, call) {
            Ok(()) => Some(group),
            // The group could not be rebuilt without a failed commit: nothing of it was
            // logged, so every commit of it fails.
            Err(err) => {
                group.fail(&err);
                None
            }
        }
    }

    /// Record bytes after which a group is sealed: a group's frames then fit one log segment
    /// unless its last commit alone is larger than a quarter of one (`WalWriter::reserve`).
    fn seal_bytes(&self) -> usize {
        let quarter = usize::try_from(self.config.max_segment_bytes / 4).unwrap_or(usize::MAX);
        group::SEAL_BYTES.min(quarter)
    }

    /// A write transaction for a dry run's body (no group is open: it was sealed).
    fn begin(&self) -> Result<LoggedTxn> {
        let txn = self.shared.store.begin_write()?;
        let seq = txn.seq();
        Ok(LoggedTxn::new(
            txn,
            seq,
            self.config.max_transaction_bytes as usize,
            Arc::clone(&self.shared.structural),
            Arc::clone(&self.shared.watched_trees.read()),
        ))
    }

    /// Run a body on a transaction that is then dropped: nothing is logged or published.
    fn dry_run(&mut self, body: Body) -> Result<Committed> {
        // After the latch nothing runs, previews included (they would read a head the log
        // may not hold).
        self.shared.check_failed()?;
        let mut logged = self.begin()?;
        let seq = logged.seq();
        let value = run_caught(body, &mut logged)?;
        if let Some(err) = logged.take_poison() {
            return Err(err);
        }
        Ok(Committed {
            commit_seq: seq,
            durable_head_seq: self.shared.durable_seq.load(Ordering::Acquire),
            value,
        })
    }

    /// Log and publish the open group: prepare its transaction (the last step that can fail),
    /// append each commit's frame, publish, and queue the answers for `finish_group`.
    fn seal_group(&mut self, open: Option<GroupTxn>) {
        let Some(group) = open else {
            return;
        };
        let (txn, applied) = group.into_parts();
        let Some(last) = group::last_logged(&applied) else {
            // Only discards: the transaction holds nothing (each discard was taken out).
            drop(txn);
            self.waiters.extend(applied.into_iter().map(Waiter::of));
            return;
        };
        let Some(mut txn) = txn else {
            let err = AedbError::Failed("a commit group lost its write transaction".into());
            group::fail_all(applied, &err);
            return;
        };
        if let Err(err) = txn.publish_as(last).and_then(|()| txn.prepare()) {
            drop(txn);
            group::fail_all(applied, &err.into());
            return;
        }
        if let Err((at, err)) = self.append_frames(&applied) {
            drop(txn);
            self.seal_after_failed_append(applied, at, err);
            return;
        }
        self.publish(txn, applied);
    }

    /// Publish a prepared transaction holding exactly `commits`' effects, queue their answers,
    /// and retain the new version.
    fn publish(&mut self, txn: WriteTxn, commits: Vec<Applied>) {
        let freed = txn.freed_page_count();
        let base = txn.base().seq;
        let published = txn.publish();
        // Invariant 1 of group.rs: the logged commits hold consecutive sequences after the base
        // (counted in debug builds only: the commit path does not pay for the check).
        debug_assert_eq!(
            published,
            base + commits.iter().filter(|c| c.payload.is_some()).count() as u64,
            "a group's sequences have a gap"
        );
        debug_assert_eq!(Some(published), group::last_logged(&commits));
        for commit in commits {
            self.queue_answer(commit);
        }
        self.retain_head(freed);
    }

    /// Append every logged commit's frame, in order; on failure, the sequence refused (the
    /// frames before it are appended).
    fn append_frames(&mut self, applied: &[Applied]) -> std::result::Result<(), (u64, AedbError)> {
        let first = applied
            .iter()
            .find(|c| c.payload.is_some())
            .map_or(0, |c| c.seq);
        let payloads = applied
            .iter()
            .filter_map(|c| c.payload.as_ref().map(Vec::len));
        self.wal
            .reserve(payloads)
            .map_err(|err| (first, AedbError::from(err)))?;
        for commit in applied {
            let Some(payload) = &commit.payload else {
                continue;
            };
            let lsn = self
                .wal
                .append(commit.seq, payload)
                .map_err(|err| (commit.seq, AedbError::from(err)))?;
            debug_assert_eq!(lsn, commit.seq, "frame LSN must equal the commit sequence");
        }
        Ok(())
    }

    /// Only a rotation's I/O can fail an append (sizes were checked as each body ended, and a
    /// group is sealed before it outgrows a segment, so only a commit larger than a quarter of
    /// a segment rotates inside its group), and it latches. The commits whose frames the
    /// rotation synced are published alone, so what is acknowledged is what readers and a
    /// reopen see. Those it appended but did not sync (its own flush failed) are answered as
    /// unknown; the others fail: nothing of them reached the log.
    fn seal_after_failed_append(&mut self, applied: Vec<Applied>, at: u64, err: AedbError) {
        self.shared.latch(format!("WAL rotation failed: {err}"));
        let synced = (at - 1).min(self.wal.synced_lsn());
        // Commits before this group's first are published already (its discards may rest on
        // one): `finish_group` answers those the usual way.
        let first = applied
            .iter()
            .find(|c| c.payload.is_some())
            .map_or(at, |c| c.seq);
        let (appended, refused): (Vec<Applied>, Vec<Applied>) =
            applied.into_iter().partition(|c| c.wait_for < at);
        group::fail_all(refused, &err);
        let (kept, unsynced): (Vec<Applied>, Vec<Applied>) = appended
            .into_iter()
            .partition(|c| c.wait_for <= synced || c.wait_for < first);
        let reason = format!("WAL rotation failed: {err}");
        answer_not_applied(unsynced, &reason);
        let Some(last) = group::last_logged(&kept) else {
            // Discards resting on the base only: answered as the base is.
            self.waiters.extend(kept.into_iter().map(Waiter::of));
            return;
        };
        let rebuilt = group::rebuild(&self.shared.store, &kept).and_then(|mut txn| {
            txn.publish_as(last)?;
            txn.prepare()?;
            Ok(txn)
        });
        match rebuilt {
            Ok(txn) => self.publish(txn, kept),
            Err(rebuild_err) => {
                // The durable head `finish_group` reports (the log's sync point) is then ahead
                // of the visible head until a reopen; the instance is latched meanwhile.
                tracing::error!(error = %rebuild_err, "republishing synced commits failed");
                answer_not_applied(kept, &reason);
            }
        }
    }

    /// A published commit's callbacks and mark wait for its acknowledgement; its answer waits
    /// for its frame's write or sync (`finish_group`).
    fn queue_answer(&mut self, mut commit: Applied) {
        if let Some(payload) = &commit.payload {
            self.bytes_since_sync += payload.len() as u64;
            self.bytes_since_checkpoint_request += payload.len() as u64;
            let after_publish = std::mem::take(&mut commit.after_publish);
            if !after_publish.is_empty() {
                // In commit order: only this thread publishes, one group at a time.
                self.acknowledged_callbacks
                    .push_back((commit.seq, after_publish));
            }
            if commit.marked {
                if self.pending_marks.len() >= MAX_PENDING_MARKS {
                    self.pending_marks.pop_front();
                }
                self.pending_marks.push_back(commit.seq);
            }
        }
        self.waiters.push(Waiter::of(commit));
    }

    fn retain_head(&self, freed_by_commit: u64) {
        let mut retained = self.shared.retained.lock();
        if retained.is_enabled() {
            retained.push(self.shared.store.snapshot(), freed_by_commit);
        }
    }

    /// Write the group's frames; sync as the durability mode (or a waiter) requires; answer
    /// the waiters the sync covers.
    pub fn finish_group(&mut self, force_sync: bool) {
        let unsynced = self.wal.synced_lsn() < self.wal.next_lsn() - 1;
        let sync = unsynced
            && match self.config.durability_mode {
                DurabilityMode::Full => true,
                DurabilityMode::Batch => {
                    // A Durable commit does not wait out the interval: it syncs its group.
                    force_sync
                        || self.waiters.iter().any(|w| w.durable)
                        || self.bytes_since_sync >= self.config.batch_max_bytes
                        || self.last_sync.elapsed()
                            >= Duration::from_millis(self.config.batch_interval_ms)
                }
                DurabilityMode::OsBuffered => force_sync || self.waiters.iter().any(|w| w.durable),
            };
        if self.shared.failed.lock().is_none() {
            if let Err(err) = self.wal.flush(sync) {
                self.shared.latch(format!("WAL write failed: {err}"));
            } else if sync {
                self.shared.syncs.fetch_add(1, Ordering::Relaxed);
                self.last_sync = Instant::now();
                self.bytes_since_sync = 0;
            }
        }
        // The log's sync point, whatever failed since (a rotation syncs the frames before it,
        // even when creating the next segment then fails).
        if self.log_vouches {
            self.shared
                .durable_seq
                .fetch_max(self.wal.synced_lsn(), Ordering::AcqRel);
        }
        let failed = self.shared.check_failed().err();
        let mut durable = self.shared.durable_seq.load(Ordering::Acquire);
        if failed.is_some() && !self.waiters.is_empty() {
            // A checkpoint that was already running when the log failed may still make some of
            // these commits durable: wait for it (the durable meta's lock is held throughout a
            // checkpoint, and one that starts after the latch refuses to run), then answer
            // those it covers as durable instead of failed.
            durable = durable.max(self.shared.store.durable_meta().seq);
        }
        let written = self.wal.written_lsn();
        self.run_acknowledged_callbacks(written, durable, failed.is_some());
        self.raise_marks(written, durable, failed.is_some());
        // Every published commit may survive a latch: its frame may have reached the OS, or a
        // checkpoint may have captured it and written its meta page before failing.
        let published = self.wal.next_lsn() - 1;
        let waiters = std::mem::take(&mut self.waiters);
        for waiter in waiters {
            // After the latch only durability answers Ok: a written frame whose sync failed
            // may be dropped from the cache without reaching the disk.
            let answered = if waiter.durable || failed.is_some() {
                durable
            } else {
                written.max(durable)
            };
            if waiter.wait_for <= answered {
                let committed = Committed {
                    commit_seq: waiter.commit_seq,
                    durable_head_seq: durable,
                    value: waiter.value,
                };
                self.answers.commit(waiter.reply, Ok(committed));
            } else if let Some(err) = &failed {
                let answer = Err(unknown_outcome(err, waiter.wait_for, published));
                self.answers.commit(waiter.reply, answer);
            } else {
                self.waiters.push(waiter);
            }
        }
        if failed.is_some() || !unsynced || sync {
            for reply in self.sync_waiters.drain(..) {
                let answer = match &failed {
                    Some(err) => Err(unknown_outcome(err, u64::MAX, published)),
                    None => Ok(durable),
                };
                self.answers.sync(reply, answer);
            }
        }
    }

    /// Run the callbacks of the commits now acknowledged — durable in `Full`, written
    /// otherwise, durable only after a latch — in commit order. The rest wait, or after a
    /// latch are dropped: their commits' outcome is unknown.
    fn run_acknowledged_callbacks(&mut self, written: u64, durable: u64, failed: bool) {
        let acknowledged = if failed || self.config.durability_mode == DurabilityMode::Full {
            durable
        } else {
            written.max(durable)
        };
        while let Some((seq, _)) = self.acknowledged_callbacks.front() {
            if *seq > acknowledged {
                break;
            }
            let Some((seq, callbacks)) = self.acknowledged_callbacks.pop_front() else {
                break;
            };
            for callback in callbacks {
                if catch_unwind(AssertUnwindSafe(callback)).is_err() {
                    tracing::warn!(seq, "an after-publish callback panicked");
                }
            }
        }
        if failed {
            self.acknowledged_callbacks.clear();
        }
    }

    /// Raise the mark signal to the newest marked commit now deliverable: durable, or under
    /// `OsBuffered` (which syncs only on request) written. After a latch only durable ones
    /// count; the rest are forgotten.
    fn raise_marks(&mut self, written: u64, durable: u64, failed: bool) {
        let deliverable = if !failed && self.config.durability_mode == DurabilityMode::OsBuffered {
            written.max(durable)
        } else {
            durable
        };
        let mut newest = None;
        while let Some(&seq) = self.pending_marks.front() {
            if seq > deliverable {
                break;
            }
            newest = Some(seq);
            self.pending_marks.pop_front();
        }
        if failed {
            self.pending_marks.clear();
        }
        if let Some(seq) = newest {
            self.shared
                .marks
                .send_modify(|mark| *mark = (*mark).max(seq));
        }
    }
}

/// Run a commit's body; a panic in it fails that commit (its transaction is dropped, so
/// nothing of it is applied) and the writer goes on.
fn run_caught(body: Body, txn: &mut LoggedTxn) -> Result<Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(|| body(txn))).unwrap_or_else(|panic| {
        let message = panic_message(&*panic);
        tracing::error!(%message, "a commit body panicked; the commit is abandoned");
        Err(AedbError::CommitPanicked(message))
    })
}

/// The text of a panic's payload.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_string())
}

/// Answer commits whose frames the log may hold but this process does not show (a rotation
/// failed around them): only a reopen can tell whether they survived.
fn answer_not_applied(commits: Vec<Applied>, reason: &str) {
    for commit in commits {
        let _ = commit.reply.send(Err(AedbError::Failed(format!(
            "{reason}; the outcome of commit {} is unknown: its frame may be in the log but \
             this process does not show it (reopen the database to see whether it survived)",
            commit.wait_for
        ))));
    }
}

/// The error a commit waiting for its answer gets after the latch. A published commit may
/// still be on disk (its frame's write, or part of it, went through; or a checkpoint captured
/// it), so the answer says the outcome is unknown rather than that it failed.
fn unknown_outcome(err: &AedbError, wait_for: u64, published: u64) -> AedbError {
    match err {
        AedbError::Failed(reason) if wait_for <= published => AedbError::Failed(format!(
            "{reason}; the outcome of commit {wait_for} is unknown: it was published but not \
             confirmed durable (reopen the database to see whether it survived)"
        )),
        other => other.clone(),
    }
}
