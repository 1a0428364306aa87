//! One running processor: its loop of runs. The worker holds only a weak reference to the
//! instance except while it reads or commits, and never across a sleep or a handler's retry
//! backoff, so a processor never keeps the database open.
//!
//! Its position is the last commit whose events it has handled (or dead-lettered) entirely.
//! A run reads the outbox after the position, within the run's limits, and covers whole
//! commits only: when the limits cut a commit, its events wait for the next run, unless that
//! commit is the first, which is then taken whole. Rows of other topics move the position too,
//! so a processor whose topic is rare does not fall behind. The position moves only when the
//! handler succeeded or the batch was dead-lettered; the batched ack persists it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::api::events::EventOutboxRecord;
use crate::commit::processors as rules;
use crate::error::{AedbError, Result};
use crate::stored::events::{self, ScanFrom};
use crate::stored::processors::{self as stored, DeadLetter};
use crate::CommitFinality;

use super::super::{now_micros, AedbInstance};
use super::runtime::Handler;
use super::types::{ReactiveProcessorOptions, ReactiveProcessorRuntimeStatus};

/// Events read per page while filling a batch.
const PAGE_EVENTS: usize = 128;
/// Outbox rows a run examines at most (matching its topic or not).
const EXAMINE_PER_RUN: usize = 4_096;
/// Bytes counted per event beside its payload, topic and key.
const EVENT_OVERHEAD_BYTES: usize = 64;
/// The retry backoff doubles at most this many times.
const MAX_BACKOFF_DOUBLINGS: u32 = 8;

/// What a worker shares with the processor's controller.
pub(super) struct Shared {
    pub status: Mutex<ReactiveProcessorRuntimeStatus>,
    pub stop: Notify,
    pub stopping: AtomicBool,
    /// The task running the handler now, so a handler that stops its own processor is not
    /// waited for (it would wait for itself).
    pub handler_task: Mutex<Option<tokio::task::Id>>,
}

impl Shared {
    pub fn new(name: &str) -> Self {
        Shared {
            status: Mutex::new(ReactiveProcessorRuntimeStatus {
                processor_name: name.to_string(),
                running: true,
                ..Default::default()
            }),
            stop: Notify::new(),
            stopping: AtomicBool::new(false),
            handler_task: Mutex::new(None),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// A batch and the commit it covers the outbox through.
struct Batch {
    events: Vec<EventOutboxRecord>,
    through: u64,
    /// Nothing after `through` was left for the next run.
    drained: bool,
}

pub(super) struct Worker {
    pub db: Weak<AedbInstance>,
    pub name: String,
    pub options: ReactiveProcessorOptions,
    pub handler: Handler,
    pub shared: Arc<Shared>,
    /// Unknown until the first run reads the durable checkpoint.
    pub position: Option<u64>,
    /// Changes when a commit that emitted events may have become deliverable (a wake-up hint:
    /// `Engine::watch_marks`).
    pub new_events: tokio::sync::watch::Receiver<u64>,
}

enum Outcome {
    /// A batch was handled; `drained` when nothing was left after it.
    Worked {
        drained: bool,
    },
    Idle,
    Gone,
}

impl Worker {
    pub async fn run(mut self) {
        let mut woken = false;
        while !self.shared.stopping() {
            // Commits deliverable from here on are looked for by this run, or wake the pause.
            self.new_events.borrow_and_update();
            // Caught up, the pause ends early when new events become deliverable; over a
            // backlog it paces the runs. A run that woke for events and found none of its own
            // (other topics; an interval handler's output on another topic) pauses in full, so
            // such wakes cost at most one run per pause. (A handler that emits on its own topic
            // feeds itself, as it would by polling, only faster.)
            let (pause, wake_on_events) = match self.run_once(woken).await {
                Outcome::Worked { drained } => (self.options.run_interval_ms, drained),
                Outcome::Idle => (self.options.idle_backoff_ms, !woken),
                Outcome::Gone => return,
            };
            self.shared.status.lock().last_sleep_ms = pause;
            woken = if wake_on_events {
                self.sleep_until_events(pause).await
            } else {
                self.sleep(pause).await;
                false
            };
        }
        self.persist_position().await;
    }

    /// Sleep, woken early by a stop.
    async fn sleep(&self, ms: u64) {
        if self.shared.stopping() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(ms), self.shared.stop.notified()).await;
    }

    /// [`Self::sleep`], woken early too by a commit with events past this worker's position
    /// becoming deliverable; whether that is what ended it. A mark at or before the position
    /// (events a run already took) does not end the pause.
    async fn sleep_until_events(&mut self, ms: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            if self.shared.stopping() {
                return false;
            }
            let outcome = {
                let mut events = std::pin::pin!(self.new_events.changed());
                let mut stop = std::pin::pin!(self.shared.stop.notified());
                let either = std::future::poll_fn(|cx| {
                    if let std::task::Poll::Ready(changed) = events.as_mut().poll(cx) {
                        std::task::Poll::Ready(Some(changed.is_ok()))
                    } else if stop.as_mut().poll(cx).is_ready() {
                        std::task::Poll::Ready(None)
                    } else {
                        std::task::Poll::Pending
                    }
                });
                tokio::time::timeout_at(deadline, either).await
            };
            match outcome {
                // The instance is gone (the next run finds it), a stop, or the pause is over.
                Ok(Some(false)) | Ok(None) | Err(_) => return false,
                Ok(Some(true)) => {}
            }
            let mark = *self.new_events.borrow_and_update();
            if mark > self.position.unwrap_or(0) {
                return true;
            }
        }
    }

    /// Persist how far this worker got when the checkpoint is behind it: on stop, so a resume
    /// continues from there, and when idle, so a quiet processor's lag does not stay up to a
    /// watermark behind.
    async fn persist_position(&self) {
        let (Some(position), Some(db)) = (self.position, self.db.upgrade()) else {
            return;
        };
        let durable = stored::checkpoint(&db.engine.snapshot(), &self.name)
            .ok()
            .flatten()
            .unwrap_or(0);
        if position > durable {
            let acked = match self.acting_as(&db) {
                Some(caller) => {
                    db.ack_reactive_processor_checkpoint_as(&caller, &self.name, position)
                        .await
                }
                None => {
                    db.ack_reactive_processor_checkpoint(&self.name, position)
                        .await
                }
            };
            if let Err(err) = acked {
                self.note_failure(&err);
            }
        }
    }

    /// One run; `woken` when a new deliverable event ended the pause before it (such a run
    /// neither calls an interval handler nor persists an idle position: those keep to the
    /// timed pauses).
    async fn run_once(&mut self, woken: bool) -> Outcome {
        {
            let mut status = self.shared.status.lock();
            status.runs_total += 1;
            status.last_run_started_micros = Some(now_micros());
        }
        let batch = {
            let Some(db) = self.db.upgrade() else {
                return Outcome::Gone;
            };
            match self.fetch(&db) {
                Ok(batch) => batch,
                Err(err) => {
                    self.note_failure(&err);
                    return Outcome::Idle;
                }
            }
        };
        let from = self.position.unwrap_or(0);
        if batch.events.is_empty() {
            if self.options.run_on_interval && !woken {
                if let Err(err) = self.call(Vec::new()).await {
                    self.note_failure(&err);
                }
            }
            if batch.through > from {
                // Only rows of other topics: the position moves past them all the same.
                self.advance(batch.through).await;
            }
            // Idle: persist the position the watermark held back, once.
            if !woken {
                self.persist_position().await;
            }
            self.shared.status.lock().last_run_completed_micros = Some(now_micros());
            return Outcome::Idle;
        }
        match self.deliver(&batch.events).await {
            Some(true) => self.advance(batch.through).await,
            Some(false) => return Outcome::Idle,
            None => return Outcome::Gone,
        }
        let mut status = self.shared.status.lock();
        status.last_processed_seq = batch.through;
        status.last_run_completed_micros = Some(now_micros());
        Outcome::Worked {
            drained: batch.drained,
        }
    }

    /// Whom the worker acks as: its `caller_id` where the instance demands callers (where it
    /// does not, the caller is a name only, and acks are anonymous, as its reads).
    fn acting_as(&self, db: &AedbInstance) -> Option<crate::permission::CallerContext> {
        let id = self.options.caller_id.as_deref()?;
        db.requires_authenticated_calls()
            .then(|| crate::permission::CallerContext::new(id))
    }

    /// Move the position and ack it in batches.
    async fn advance(&mut self, through: u64) {
        self.position = Some(through);
        let Some(db) = self.db.upgrade() else {
            return;
        };
        let watermark = self.options.checkpoint_watermark_commits;
        let acked = match self.acting_as(&db) {
            Some(caller) => {
                db.ack_reactive_processor_checkpoint_batched_as(
                    &caller, &self.name, through, watermark,
                )
                .await
            }
            None => {
                db.ack_reactive_processor_checkpoint_batched(&self.name, through, watermark)
                    .await
            }
        };
        if let Err(err) = acked {
            self.note_failure(&err);
        }
    }

    /// The next batch: whole commits after the position, within the run's limits.
    fn fetch(&mut self, db: &Arc<AedbInstance>) -> Result<Batch> {
        // Every run, so a revoked grant stops the processor (a cache lookup).
        db.check_processor_caller(&self.options)?;
        let snapshot = delivery_snapshot(db);
        let from = match self.position {
            Some(position) => position,
            None => {
                // From the newest commit, not the delivery snapshot (see `pull_after`).
                let acked = stored::checkpoint(&db.engine.snapshot(), &self.name)?.unwrap_or(0);
                self.position = Some(acked);
                acked
            }
        };
        let started = Instant::now();
        let budget = Duration::from_millis(self.options.max_run_duration_ms);
        let topic = self.options.topic_filter.as_deref();
        let max_events = self.options.max_events_per_run;
        let mut events: Vec<EventOutboxRecord> = Vec::new();
        let mut bytes = 0usize;
        let mut examined = 0usize;
        let mut at = ScanFrom::AfterCommit(from);
        // The commit the limits stopped in, which may have more rows than were read.
        let mut cut = from;
        loop {
            let want = PAGE_EVENTS.min(max_events - events.len());
            let page = events::scan(&snapshot, topic, &at, want, EXAMINE_PER_RUN - examined)?;
            examined += page.examined;
            let mut full = None;
            for event in page.events {
                let size = event.payload_json.len()
                    + event.topic.len()
                    + event.event_key.len()
                    + EVENT_OVERHEAD_BYTES;
                if !events.is_empty() && bytes + size > self.options.max_bytes_per_run {
                    full = Some(event.commit_seq);
                    break;
                }
                bytes += size;
                events.push(event);
            }
            if let Some(seq) = full {
                cut = seq;
                break;
            }
            if page.exhausted {
                // Everything up to the snapshot is covered.
                return Ok(Batch {
                    events,
                    through: snapshot.seq().max(from),
                    drained: true,
                });
            }
            cut = page.last_seq.unwrap_or(cut);
            let spent = events.len() >= max_events
                || examined >= EXAMINE_PER_RUN
                || started.elapsed() >= budget;
            match page.last_key {
                Some(key) if !spent => at = ScanFrom::AfterKey(key),
                _ => break,
            }
        }
        self.whole_commits(&snapshot, events, from, cut)
    }

    /// Cut a batch the limits ended inside commit `cut` back to whole commits: that commit
    /// waits for the next run — unless it is the first after the position, which is then
    /// taken whole (a commit's events are never split).
    fn whole_commits(
        &self,
        snapshot: &aedb_pager::Snapshot,
        mut events: Vec<EventOutboxRecord>,
        from: u64,
        cut: u64,
    ) -> Result<Batch> {
        if cut <= from {
            return Ok(Batch {
                events: Vec::new(),
                through: from,
                drained: false,
            });
        }
        if cut > from + 1 {
            events.retain(|e| e.commit_seq < cut);
            return Ok(Batch {
                events,
                through: cut - 1,
                drained: false,
            });
        }
        let topic = self.options.topic_filter.as_deref();
        Ok(Batch {
            events: events::read_commit(snapshot, topic, cut)?,
            through: cut.max(from),
            drained: false,
        })
    }

    /// Hand `events` to the handler, retrying with backoff, then dead-letter them. `Some(true)`
    /// when they were handled or dead-lettered (the position may move), `Some(false)` when
    /// dead-lettering failed (they are tried again later), `None` when the instance is gone.
    async fn deliver(&self, events: &[EventOutboxRecord]) -> Option<bool> {
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            match self.call(events.to_vec()).await {
                Ok(()) => {
                    let mut status = self.shared.status.lock();
                    status.processed_events_total += events.len() as u64;
                    status.last_batch_events = events.len() as u64;
                    status.last_success_micros = Some(now_micros());
                    return Some(true);
                }
                Err(AedbError::Closed) if self.db.strong_count() == 0 => return None,
                Err(err) => {
                    self.note_failure(&err);
                    if attempts > self.options.max_retries {
                        return Some(self.dead_letter(events, &err, attempts).await);
                    }
                    if self.shared.stopping() {
                        // Left for the next start: not handled, not dead-lettered.
                        return Some(false);
                    }
                    let doublings = (attempts - 1).min(MAX_BACKOFF_DOUBLINGS);
                    let backoff = self.options.retry_backoff_ms.saturating_mul(1 << doublings);
                    {
                        let mut status = self.shared.status.lock();
                        status.retries_total += 1;
                        status.last_retry_micros = Some(now_micros());
                    }
                    self.sleep(backoff).await;
                    if self.db.strong_count() == 0 {
                        return None;
                    }
                }
            }
        }
    }

    /// Run the handler in a task of its own, so a panic — while building its future or while
    /// running it — fails the batch, not the processor.
    async fn call(&self, events: Vec<EventOutboxRecord>) -> Result<()> {
        let db = self.db.upgrade().ok_or(AedbError::Closed)?;
        let handler = self.handler.clone();
        let task = tokio::spawn(async move { handler(db, events).await });
        *self.shared.handler_task.lock() = Some(task.id());
        let outcome = task.await;
        *self.shared.handler_task.lock() = None;
        match outcome {
            Ok(result) => result,
            Err(join) if join.is_panic() => Err(AedbError::Validation(format!(
                "reactive processor {} handler panicked",
                self.name
            ))),
            Err(_) => Err(AedbError::Validation(format!(
                "reactive processor {} handler was cancelled",
                self.name
            ))),
        }
    }

    /// Store the events as dead letters, in commits that fit the transaction limit; true
    /// when all were stored.
    async fn dead_letter(
        &self,
        events: &[EventOutboxRecord],
        err: &AedbError,
        attempts: u32,
    ) -> bool {
        let Some(db) = self.db.upgrade() else {
            return false;
        };
        let now = now_micros();
        let chunk_bytes = (db.config.max_transaction_bytes as usize / 4).max(1);
        let mut chunk: Vec<DeadLetter> = Vec::new();
        let mut size = 0;
        for (i, event) in events.iter().enumerate() {
            let letter = DeadLetter {
                processor_name: self.name.clone(),
                commit_seq: event.commit_seq,
                topic: event.topic.clone(),
                event_key: event.event_key.clone(),
                payload_json: event.payload_json.clone(),
                error: err.to_string(),
                attempts: u64::from(attempts),
                failed_at_micros: now,
            };
            size += letter.payload_json.len() + letter.error.len() + letter.event_key.len() + 128;
            chunk.push(letter);
            if size >= chunk_bytes || i + 1 == events.len() {
                let letters = std::mem::take(&mut chunk);
                size = 0;
                let count = letters.len() as u64;
                let stored = db
                    .engine
                    .commit(CommitFinality::Visible, move |txn| {
                        rules::dead_letter(txn, &letters)
                    })
                    .await;
                match stored {
                    Ok(_) => self.shared.status.lock().dead_lettered_total += count,
                    Err(err) => {
                        self.note_failure(&err);
                        return false;
                    }
                }
            }
        }
        true
    }

    fn note_failure(&self, err: &AedbError) {
        let mut status = self.shared.status.lock();
        status.failures_total += 1;
        status.last_error = Some(err.to_string());
        status.last_failure_micros = Some(now_micros());
        tracing::warn!(processor = %self.name, %err, "reactive processor run failed");
    }
}

/// The commits a processor may deliver. Under `Full` and `Batch` durability, the durable ones:
/// a commit is visible a moment before it is durable, and a handler must never act on an event
/// a power loss could still take back (its emitter has not been answered yet). Under
/// `OsBuffered`, commits become durable only on request, so there the visible ones — that mode
/// already accepts losing acknowledged commits to a power loss.
pub(crate) fn delivery_snapshot(db: &AedbInstance) -> aedb_pager::Snapshot {
    let latest = db.engine.snapshot();
    if db.config.durability_mode == crate::config::DurabilityMode::OsBuffered {
        return latest;
    }
    let durable = db.engine.durable_head_seq();
    if latest.seq() <= durable {
        return latest;
    }
    // The durable head is among the recent versions the writer keeps; if not, the newest
    // checkpoint is durable too (and older, which only delays delivery).
    db.engine
        .snapshot_at(durable)
        .unwrap_or_else(|_| db.engine.checkpoint_snapshot())
}
