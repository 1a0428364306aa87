//! The scheduler: one task per running processor, on the caller's tokio runtime. A task holds
//! only a weak reference to the instance between runs, so a running processor never keeps the
//! database open: dropping the instance (or `shutdown`) ends every task.
//!
//! A run reads the events after the processor's position (its own, in memory, so a running
//! processor receives each event once), within the run's limits, and hands them to the
//! handler. Success moves the position and acks it in batches; failure retries the same batch
//! with a doubling backoff, then dead-letters it and moves past it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::api::events::EventOutboxRecord;
use crate::commit::processors as rules;
use crate::error::{AedbError, Result};
use crate::stored::events;
use crate::stored::processors::{self as stored, DeadLetter, Registration};
use crate::CommitFinality;

use super::super::{now_micros, AedbInstance};
use super::types::{ReactiveProcessorOptions, ReactiveProcessorRuntimeStatus};
use super::AckCache;

type HandlerFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;
/// A processor's handler, boxed.
pub(crate) type Handler =
    Arc<dyn Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> HandlerFuture + Send + Sync>;

/// Events read per page while filling a batch.
const PAGE_EVENTS: usize = 128;
/// Bytes counted per event beside its payload, topic and key.
const EVENT_OVERHEAD_BYTES: usize = 64;
/// The retry backoff doubles at most this many times.
const MAX_BACKOFF_DOUBLINGS: u32 = 8;

struct Running {
    stop: Arc<Notify>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    status: Arc<Mutex<ReactiveProcessorRuntimeStatus>>,
}

/// The processors of one instance: handlers registered in this process, running tasks, and
/// the batched-ack cache.
#[derive(Default)]
pub(crate) struct Processors {
    handlers: Mutex<HashMap<String, Handler>>,
    running: Mutex<HashMap<String, Running>>,
    pub(super) acks: AckCache,
}

impl Drop for Processors {
    fn drop(&mut self) {
        for (_, running) in self.running.get_mut().drain() {
            running.task.abort();
        }
    }
}

impl Processors {
    pub(super) fn set_handler(&self, name: &str, handler: Handler) {
        self.handlers.lock().insert(name.to_string(), handler);
    }

    pub(super) fn handler(&self, name: &str) -> Option<Handler> {
        self.handlers.lock().get(name).cloned()
    }

    pub(super) fn is_running(&self, name: &str) -> bool {
        self.running
            .lock()
            .get(name)
            .is_some_and(|r| !r.task.is_finished())
    }

    pub(super) fn status(&self, name: &str) -> Option<ReactiveProcessorRuntimeStatus> {
        let running = self.running.lock();
        let r = running.get(name)?;
        let mut status = r.status.lock().clone();
        status.running = !r.task.is_finished();
        Some(status)
    }

    /// Spawn processor `name` on the current tokio runtime.
    pub(super) fn spawn(
        &self,
        db: &Arc<AedbInstance>,
        name: &str,
        options: ReactiveProcessorOptions,
        handler: Handler,
    ) -> Result<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            AedbError::Validation("reactive processors need a tokio runtime".into())
        })?;
        let mut running = self.running.lock();
        if running.get(name).is_some_and(|r| !r.task.is_finished()) {
            return Err(AedbError::Validation(
                "reactive processor already running".into(),
            ));
        }
        let status = Arc::new(Mutex::new(ReactiveProcessorRuntimeStatus {
            processor_name: name.to_string(),
            running: true,
            ..Default::default()
        }));
        let stop = Arc::new(Notify::new());
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = Worker {
            db: Arc::downgrade(db),
            name: name.to_string(),
            options,
            handler,
            status: status.clone(),
            stop: stop.clone(),
            stopping: stopping.clone(),
            position: None,
        };
        let task = runtime.spawn(worker.run());
        running.insert(
            name.to_string(),
            Running {
                stop,
                stopping,
                task,
                status,
            },
        );
        Ok(())
    }

    /// Stop processor `name` after its current run, which persists its position; waits for it.
    pub(super) async fn stop(&self, name: &str) {
        let running = self.running.lock().remove(name);
        if let Some(running) = running {
            running
                .stopping
                .store(true, std::sync::atomic::Ordering::SeqCst);
            running.stop.notify_one();
            let _ = running.task.await;
        }
    }
}

struct Worker {
    db: Weak<AedbInstance>,
    name: String,
    options: ReactiveProcessorOptions,
    handler: Handler,
    status: Arc<Mutex<ReactiveProcessorRuntimeStatus>>,
    stop: Arc<Notify>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// The last commit whose events were handled (or dead-lettered) in this run of the task.
    position: Option<u64>,
}

enum Outcome {
    Worked,
    Idle,
    Gone,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn run(mut self) {
        while !self.stopping() {
            let pause = match self.run_once().await {
                Outcome::Worked => self.options.run_interval_ms,
                Outcome::Idle => self.options.idle_backoff_ms,
                Outcome::Gone => return,
            };
            self.status.lock().last_sleep_ms = pause;
            self.sleep(pause).await;
        }
        self.persist_position().await;
    }

    /// Sleep, woken early by a stop.
    async fn sleep(&self, ms: u64) {
        if self.stopping() {
            return;
        }
        // Either the pause passes or a stop's notification ends it early.
        let _ = tokio::time::timeout(Duration::from_millis(ms), self.stop.notified()).await;
    }

    /// On stop: persist how far this task got, so a resume continues from there.
    async fn persist_position(&self) {
        let (Some(position), Some(db)) = (self.position, self.db.upgrade()) else {
            return;
        };
        let durable = stored::checkpoint(&db.engine.snapshot(), &self.name)
            .ok()
            .flatten()
            .unwrap_or(0);
        if position > durable {
            if let Err(err) = db
                .ack_reactive_processor_checkpoint(&self.name, position)
                .await
            {
                tracing::warn!(processor = %self.name, %err, "stopping: checkpoint not persisted");
            }
        }
    }

    async fn run_once(&mut self) -> Outcome {
        let Some(db) = self.db.upgrade() else {
            return Outcome::Gone;
        };
        {
            let mut status = self.status.lock();
            status.runs_total += 1;
            status.last_run_started_micros = Some(now_micros());
        }
        let batch = match self.fetch(&db) {
            Ok(batch) => batch,
            Err(err) => {
                self.note_failure(&err);
                return Outcome::Idle;
            }
        };
        if batch.is_empty() {
            if self.options.run_on_interval {
                let _ = self.call(&db, Vec::new()).await;
            }
            self.status.lock().last_run_completed_micros = Some(now_micros());
            return Outcome::Idle;
        }
        let last = batch.iter().map(|e| e.commit_seq).max().unwrap_or(0);
        self.deliver(&db, batch).await;
        self.position = Some(last);
        let watermark = self.options.checkpoint_watermark_commits;
        if let Err(err) = db
            .ack_reactive_processor_checkpoint_batched(&self.name, last, watermark)
            .await
        {
            self.note_failure(&err);
        }
        let mut status = self.status.lock();
        status.last_processed_seq = last;
        status.last_run_completed_micros = Some(now_micros());
        Outcome::Worked
    }

    /// The next batch: events after the position, within the run's limits.
    fn fetch(&mut self, db: &Arc<AedbInstance>) -> Result<Vec<EventOutboxRecord>> {
        let snapshot = db.engine.snapshot();
        let from = match self.position {
            Some(position) => position,
            None => {
                let durable = stored::checkpoint(&snapshot, &self.name)?.unwrap_or(0);
                self.position = Some(durable);
                durable
            }
        };
        let started = Instant::now();
        let limit = Duration::from_millis(self.options.max_run_duration_ms);
        let topic = self.options.topic_filter.as_deref();
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        let mut after = from;
        'pages: loop {
            let want = PAGE_EVENTS.min(self.options.max_events_per_run - batch.len());
            let page = events::read_after(&snapshot, topic, after, want)?;
            let exhausted = page.len() < want;
            for event in page {
                let size = event.payload_json.len()
                    + event.topic.len()
                    + event.event_key.len()
                    + EVENT_OVERHEAD_BYTES;
                if !batch.is_empty() && bytes + size > self.options.max_bytes_per_run {
                    break 'pages;
                }
                // Events of one commit go together: a batch never ends inside a commit, so
                // the position (a commit sequence) never skips part of one.
                after = event.commit_seq;
                bytes += size;
                batch.push(event);
            }
            if exhausted
                || batch.len() >= self.options.max_events_per_run
                || started.elapsed() >= limit
            {
                break;
            }
        }
        trim_to_whole_commits(&mut batch, &snapshot, topic)?;
        Ok(batch)
    }

    /// Hand `batch` to the handler, retrying with backoff; dead-letter it when retries run out.
    async fn deliver(&self, db: &Arc<AedbInstance>, batch: Vec<EventOutboxRecord>) {
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            match self.call(db, batch.clone()).await {
                Ok(()) => {
                    let mut status = self.status.lock();
                    status.processed_events_total += batch.len() as u64;
                    status.last_batch_events = batch.len() as u64;
                    status.last_success_micros = Some(now_micros());
                    return;
                }
                Err(err) => {
                    self.note_failure(&err);
                    if attempts > self.options.max_retries || self.stopping() {
                        self.dead_letter(db, &batch, &err, attempts).await;
                        return;
                    }
                    let doublings = (attempts - 1).min(MAX_BACKOFF_DOUBLINGS);
                    let backoff = self.options.retry_backoff_ms.saturating_mul(1 << doublings);
                    {
                        let mut status = self.status.lock();
                        status.retries_total += 1;
                        status.last_retry_micros = Some(now_micros());
                    }
                    self.sleep(backoff).await;
                }
            }
        }
    }

    /// Run the handler in a task of its own, so a panic fails the batch, not the processor.
    async fn call(&self, db: &Arc<AedbInstance>, batch: Vec<EventOutboxRecord>) -> Result<()> {
        let future = (self.handler)(db.clone(), batch);
        match tokio::spawn(future).await {
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

    async fn dead_letter(
        &self,
        db: &Arc<AedbInstance>,
        batch: &[EventOutboxRecord],
        err: &AedbError,
        attempts: u32,
    ) {
        let now = now_micros();
        let letters: Vec<DeadLetter> = batch
            .iter()
            .map(|event| DeadLetter {
                processor_name: self.name.clone(),
                commit_seq: event.commit_seq,
                topic: event.topic.clone(),
                event_key: event.event_key.clone(),
                payload_json: event.payload_json.clone(),
                error: err.to_string(),
                attempts: u64::from(attempts),
                failed_at_micros: now,
            })
            .collect();
        let count = letters.len() as u64;
        let stored = db
            .engine
            .commit(CommitFinality::Visible, move |txn| {
                rules::dead_letter(txn, &letters, now)
            })
            .await;
        match stored {
            Ok(_) => self.status.lock().dead_lettered_total += count,
            Err(err) => self.note_failure(&err),
        }
    }

    fn note_failure(&self, err: &AedbError) {
        let mut status = self.status.lock();
        status.failures_total += 1;
        status.last_error = Some(err.to_string());
        status.last_failure_micros = Some(now_micros());
        tracing::warn!(processor = %self.name, %err, "reactive processor run failed");
    }
}

/// Keep a batch to whole commits, since the position is a commit sequence: drop the last
/// commit's events when the limits cut it, or, when the batch holds part of one commit only,
/// take all of that commit (a commit's events are never split, whatever the limits).
fn trim_to_whole_commits(
    batch: &mut Vec<EventOutboxRecord>,
    snapshot: &aedb_pager::Snapshot,
    topic: Option<&str>,
) -> Result<()> {
    let Some(last) = batch.last().map(|e| e.commit_seq) else {
        return Ok(());
    };
    let in_batch = batch.iter().filter(|e| e.commit_seq == last).count();
    let whole = events::read_commit(snapshot, topic, last)?;
    if whole.len() > in_batch {
        if batch.iter().any(|e| e.commit_seq != last) {
            batch.retain(|e| e.commit_seq != last);
        } else {
            *batch = whole;
        }
    }
    Ok(())
}

/// Register and start `name`: the registry row (enabled), a first checkpoint of 0 (an existing
/// checkpoint is kept), then the task.
pub(super) async fn start(
    db: &Arc<AedbInstance>,
    name: &str,
    options: ReactiveProcessorOptions,
    handler: Handler,
) -> Result<()> {
    if db.processors.is_running(name) {
        return Err(AedbError::Validation(
            "reactive processor already running".into(),
        ));
    }
    let options_json = serde_json::to_string(&options)
        .map_err(|e| AedbError::Validation(format!("reactive processor options: {e}")))?;
    let registration = Registration {
        processor_name: name.to_string(),
        options_json,
        enabled: true,
        updated_at_micros: now_micros(),
    };
    db.engine
        .commit(CommitFinality::Visible, move |txn| {
            rules::register(txn, &registration)
        })
        .await?;
    db.processors.set_handler(name, handler.clone());
    db.processors.spawn(db, name, options, handler)
}
