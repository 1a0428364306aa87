//! Lifecycle hooks: callbacks told what each commit did to projects, scopes, tables,
//! accumulators and the event stream, once the commit is visible.
//!
//! The commit pipeline hands each published commit's events to the queue here, in commit
//! order, from the thread leading the group (`LoggedTxn::after_publish`): hooks hear commits
//! in order, and hear a commit even when its caller stopped waiting for it. One thread of
//! their own, started with the first events, calls the hooks; a hook that panics is logged
//! and the others still run. The thread ends with the instance.
//!
//! The queue never blocks the pipeline: a hook that commits would otherwise wait on itself.
//! It is bounded instead in two steps. Past `SOFT_COMMITS` or `SOFT_BYTES`, committing callers
//! wait (asynchronously, after their commit) until the hooks catch up — except calls from the
//! hook thread itself. Past four times those, events are dropped, counted and logged: hooks are
//! notifications; the event outbox and reactive processors are the durable record.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::Notify;

pub use crate::commit::lifecycle::LifecycleEvent;
use crate::commit::lifecycle::LifecycleSink;

use super::AedbInstance;

/// A lifecycle callback (`add_lifecycle_hook`).
pub trait LifecycleHook: Send + Sync {
    fn on_event(&self, event: &LifecycleEvent);
}

/// Commits whose events may wait for the hooks before committing callers wait too.
const SOFT_COMMITS: usize = 1_024;
/// Bytes of events that may wait before committing callers wait too.
const SOFT_BYTES: usize = 16 << 20;
/// How far past the soft limits the queue grows (callers that do not wait: the hook thread's
/// own commits, callers that gave up) before events are dropped.
const HARD_FACTOR: usize = 4;

std::thread_local! {
    /// Set on the hook thread: its commits must not wait for the hooks (themselves).
    static ON_HOOK_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[derive(Default)]
struct Queue {
    commits: VecDeque<(usize, Vec<LifecycleEvent>)>,
    bytes: usize,
    closed: bool,
    thread_started: bool,
}

impl Queue {
    fn over(&self, factor: usize) -> bool {
        self.commits.len() >= SOFT_COMMITS * factor || self.bytes >= SOFT_BYTES * factor
    }
}

/// The hooks of an instance and the queue to their thread.
#[derive(Default)]
struct Shared {
    hooks: RwLock<Vec<Arc<dyn LifecycleHook>>>,
    any_hook: AtomicBool,
    queue: Mutex<Queue>,
    /// Wakes the hook thread.
    work: Condvar,
    /// Wakes callers waiting for room.
    room: Notify,
    dropped_events: AtomicU64,
}

/// An instance's hooks; dropping it ends the hook thread once the queue is drained.
#[derive(Default)]
pub(crate) struct Hooks {
    shared: Arc<Shared>,
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.shared.queue.lock().closed = true;
        self.shared.work.notify_all();
    }
}

impl Hooks {
    /// The sink the commits of this instance hand their events to.
    pub(crate) fn sink(&self) -> Arc<dyn LifecycleSink> {
        self.shared.clone()
    }

    /// Wait until the hooks have caught up below the soft limits (never on the hook thread).
    pub(crate) async fn wait_for_room(&self) {
        if ON_HOOK_THREAD.with(|on| on.get()) {
            return;
        }
        loop {
            let notified = self.shared.room.notified();
            if !self.shared.queue.lock().over(1) {
                return;
            }
            notified.await;
        }
    }
}

fn approximate_bytes(events: &[LifecycleEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            LifecycleEvent::AppEventEmitted {
                payload_json,
                event_key,
                topic,
                ..
            } => 128 + payload_json.len() + event_key.len() + topic.len(),
            _ => 128,
        })
        .sum()
}

impl LifecycleSink for Shared {
    fn listening(&self) -> bool {
        self.any_hook.load(Ordering::Acquire)
    }

    fn publish(&self, events: Vec<LifecycleEvent>) {
        let bytes = approximate_bytes(&events);
        let mut queue = self.queue.lock();
        if queue.closed {
            return;
        }
        if queue.over(HARD_FACTOR) {
            drop(queue);
            let before = self
                .dropped_events
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            if before == 0 {
                tracing::warn!("lifecycle hooks fell too far behind: events are being dropped");
            }
            return;
        }
        queue.bytes += bytes;
        queue.commits.push_back((bytes, events));
        drop(queue);
        self.work.notify_one();
    }
}

impl Shared {
    /// The hook thread: calls the hooks for each queued commit, in order, until closed.
    fn run(self: Arc<Self>) {
        ON_HOOK_THREAD.with(|on| on.set(true));
        loop {
            let (bytes, events) = {
                let mut queue = self.queue.lock();
                loop {
                    if let Some(next) = queue.commits.pop_front() {
                        break next;
                    }
                    if queue.closed {
                        return;
                    }
                    self.work.wait(&mut queue);
                }
            };
            let hooks = self.hooks.read().clone();
            call_all(&hooks, &events);
            let mut queue = self.queue.lock();
            queue.bytes -= bytes;
            let roomy = !queue.over(1);
            drop(queue);
            if roomy {
                self.room.notify_waiters();
            }
        }
    }

    fn start_thread(self: &Arc<Self>) {
        let mut queue = self.queue.lock();
        if queue.thread_started {
            return;
        }
        let shared = Arc::clone(self);
        match std::thread::Builder::new()
            .name("aedb-lifecycle-hooks".into())
            .spawn(move || shared.run())
        {
            Ok(_) => queue.thread_started = true,
            Err(err) => tracing::warn!(%err, "lifecycle hooks thread did not start"),
        }
    }
}

fn call_all(hooks: &[Arc<dyn LifecycleHook>], events: &[LifecycleEvent]) {
    for event in events {
        for hook in hooks {
            if catch_unwind(AssertUnwindSafe(|| hook.on_event(event))).is_err() {
                tracing::warn!(?event, "a lifecycle hook panicked");
            }
        }
    }
}

impl AedbInstance {
    /// Call `hook` for what each later visible commit does, in commit order, on a thread of
    /// the instance's own.
    pub fn add_lifecycle_hook(&self, hook: Arc<dyn LifecycleHook>) {
        let shared = &self.hooks.shared;
        shared.start_thread();
        let mut hooks = shared.hooks.write();
        hooks.push(hook);
        shared.any_hook.store(true, Ordering::Release);
    }

    pub fn remove_lifecycle_hook(&self, hook: &Arc<dyn LifecycleHook>) {
        let shared = &self.hooks.shared;
        let mut hooks = shared.hooks.write();
        hooks.retain(|h| !Arc::ptr_eq(h, hook));
        shared.any_hook.store(!hooks.is_empty(), Ordering::Release);
    }

    /// Lifecycle events dropped because the hooks fell too far behind (see the module doc).
    pub fn lifecycle_events_dropped(&self) -> u64 {
        self.hooks.shared.dropped_events.load(Ordering::Relaxed)
    }

    /// After a commit: hold the caller while the hooks are too far behind.
    pub(super) async fn wait_for_hooks(&self) {
        if self.hooks.shared.listening() {
            self.hooks.wait_for_room().await;
        }
    }
}
