//! Lifecycle hooks: callbacks told what each commit did to projects, scopes, tables,
//! accumulators and the event stream, once the commit is visible. Hooks run on one thread of
//! their own, started with the first hook, in commit order; the queue to it is bounded
//! (`HOOK_QUEUE_COMMITS`), so hooks slower than the commits hold the committing calls back
//! rather than grow memory. A hook that panics is logged and the others still run. The thread
//! ends with the instance.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::Mutex;

pub use crate::commit::lifecycle::LifecycleEvent;

use super::AedbInstance;

/// A lifecycle callback (`add_lifecycle_hook`).
pub trait LifecycleHook: Send + Sync {
    fn on_event(&self, event: &LifecycleEvent);
}

/// Commits whose events may wait for the hook thread.
const HOOK_QUEUE_COMMITS: usize = 1_024;

type HookList = Arc<parking_lot::RwLock<Vec<Arc<dyn LifecycleHook>>>>;

/// The hooks of an instance and the queue to their thread.
#[derive(Default)]
pub(crate) struct Hooks {
    hooks: HookList,
    queue: Mutex<Option<std::sync::mpsc::SyncSender<Vec<LifecycleEvent>>>>,
}

impl Hooks {
    /// The queue to the hook thread, starting it on first use.
    fn sender(&self) -> Option<std::sync::mpsc::SyncSender<Vec<LifecycleEvent>>> {
        let mut queue = self.queue.lock();
        if queue.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<LifecycleEvent>>(HOOK_QUEUE_COMMITS);
            let hooks = self.hooks.clone();
            let started = std::thread::Builder::new()
                .name("aedb-lifecycle-hooks".into())
                .spawn(move || {
                    for events in rx {
                        let hooks = hooks.read().clone();
                        call_all(&hooks, &events);
                    }
                });
            match started {
                Ok(_) => *queue = Some(tx),
                Err(err) => tracing::warn!(%err, "lifecycle hooks thread did not start"),
            }
        }
        queue.clone()
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
    pub fn add_lifecycle_hook(&self, hook: Arc<dyn LifecycleHook>) {
        self.hooks.hooks.write().push(hook);
    }

    pub fn remove_lifecycle_hook(&self, hook: &Arc<dyn LifecycleHook>) {
        self.hooks.hooks.write().retain(|h| !Arc::ptr_eq(h, hook));
    }

    /// Hand a visible commit's lifecycle events to the hooks.
    pub(super) fn run_lifecycle_hooks(&self, events: &Mutex<Vec<LifecycleEvent>>) {
        let events = std::mem::take(&mut *events.lock());
        if events.is_empty() {
            return;
        }
        if self.hooks.hooks.read().is_empty() {
            return;
        }
        if let Some(queue) = self.hooks.sender() {
            // Fails only when the thread is gone, which only the instance's end causes.
            let _ = queue.send(events);
        }
    }
}
