//! Lifecycle hooks: callbacks told what each commit did to projects, scopes, tables,
//! accumulators and the event stream, once the commit is acknowledged.
//!
//! The commit pipeline hands each commit's events to the queue here once the commit is
//! acknowledged (durable under `Full`, written otherwise), in commit order, from the thread
//! leading the group (`LoggedTxn::after_publish`): hooks hear commits in order, never one a
//! failure may take back, and hear a commit even when its caller stopped waiting for it. One
//! thread of their own, started with the first hook, calls the hooks; a hook that panics is
//! logged and the others still run. The thread ends with the instance.
//!
//! The queue never blocks the pipeline, and no committing caller waits for it: a hook that
//! commits, itself or through another task it waits for, would otherwise wait on itself. It
//! is bounded instead: past `MAX_COMMITS` commits or `MAX_BYTES` bytes of events waiting,
//! events are dropped, counted (`lifecycle_events_dropped`) and logged. Hooks are
//! notifications; the event outbox and reactive processors are the durable record.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

pub use crate::commit::lifecycle::LifecycleEvent;
use crate::commit::lifecycle::LifecycleSink;

use super::AedbInstance;

/// A lifecycle callback (`add_lifecycle_hook`).
pub trait LifecycleHook: Send + Sync {
    fn on_event(&self, event: &LifecycleEvent);
}

/// Commits whose events may wait for the hooks before more are dropped.
const MAX_COMMITS: usize = 4_096;
/// Bytes of events that may wait for the hooks before more are dropped.
const MAX_BYTES: usize = 64 << 20;

#[derive(Default)]
struct Queue {
    commits: VecDeque<(usize, Vec<LifecycleEvent>)>,
    bytes: usize,
    closed: bool,
    thread_started: bool,
}

impl Queue {
    fn full(&self) -> bool {
        self.commits.len() >= MAX_COMMITS || self.bytes >= MAX_BYTES
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
        if queue.closed || queue.full() {
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
            self.queue.lock().bytes -= bytes;
        }
    }

    /// Start the hook thread unless it runs; whether it runs.
    fn start_thread(self: &Arc<Self>) -> bool {
        let mut queue = self.queue.lock();
        if queue.thread_started {
            return true;
        }
        let shared = Arc::clone(self);
        match std::thread::Builder::new()
            .name("aedb-lifecycle-hooks".into())
            .spawn(move || shared.run())
        {
            Ok(_) => queue.thread_started = true,
            Err(err) => tracing::warn!(%err, "lifecycle hooks thread did not start"),
        }
        queue.thread_started
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
    /// Call `hook` for what each later commit does, once it is acknowledged (durable under
    /// `Full`), in commit order, on a thread of the instance's own. (Should that thread not
    /// start, the failure is logged and no hook is called.)
    pub fn add_lifecycle_hook(&self, hook: Arc<dyn LifecycleHook>) {
        let shared = &self.hooks.shared;
        let running = shared.start_thread();
        let mut hooks = shared.hooks.write();
        hooks.push(hook);
        shared.any_hook.store(running, Ordering::Release);
    }

    pub fn remove_lifecycle_hook(&self, hook: &Arc<dyn LifecycleHook>) {
        let shared = &self.hooks.shared;
        let running = shared.queue.lock().thread_started;
        let mut hooks = shared.hooks.write();
        hooks.retain(|h| !Arc::ptr_eq(h, hook));
        shared
            .any_hook
            .store(running && !hooks.is_empty(), Ordering::Release);
    }

    /// Lifecycle events dropped because the hooks fell too far behind (see the module doc).
    pub fn lifecycle_events_dropped(&self) -> u64 {
        self.hooks.shared.dropped_events.load(Ordering::Relaxed)
    }
}
