//! The processors of one instance: handlers registered in this process, the running workers
//! (`worker.rs`) on the caller's tokio runtime, and the batched-ack cache.
//!
//! Start, stop and resume of any processor are serialized (one async lock), and a stopping
//! worker stays registered until its task has ended, so a resume racing a stop never runs two
//! workers. Dropping the instance ends every worker.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::api::events::EventOutboxRecord;
use crate::commit::processors as rules;
use crate::error::{AedbError, Result};
use crate::stored::processors::Registration;
use crate::CommitFinality;

use super::super::{now_micros, AedbInstance};
use super::types::{ReactiveProcessorOptions, ReactiveProcessorRuntimeStatus};
use super::worker::{Shared, Worker};
use super::AckCache;

type HandlerFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;
/// A processor's handler, boxed.
pub(crate) type Handler =
    Arc<dyn Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> HandlerFuture + Send + Sync>;

struct Running {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub(crate) struct Processors {
    handlers: Mutex<HashMap<String, Handler>>,
    running: Mutex<HashMap<String, Running>>,
    /// Serializes start, stop and resume.
    pub(super) control: tokio::sync::Mutex<()>,
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

    /// Whether a worker of `name` is running (or still stopping).
    pub(super) fn is_running(&self, name: &str) -> bool {
        self.running
            .lock()
            .get(name)
            .is_some_and(|r| !r.task.is_finished())
    }

    /// The counters of a worker that is running, `None` otherwise.
    pub(super) fn status(&self, name: &str) -> Option<ReactiveProcessorRuntimeStatus> {
        let running = self.running.lock();
        let r = running.get(name).filter(|r| !r.task.is_finished())?;
        let mut status = r.shared.status.lock().clone();
        status.running = true;
        Some(status)
    }

    /// Spawn a worker for `name` on the current tokio runtime (the caller holds `control`).
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
        let shared = Arc::new(Shared::new(name));
        let worker = Worker {
            db: Arc::downgrade(db),
            name: name.to_string(),
            options,
            handler,
            shared: shared.clone(),
            position: None,
            new_events: db.engine.watch_marks(),
        };
        let task = runtime.spawn(worker.run());
        running.insert(name.to_string(), Running { shared, task });
        Ok(())
    }

    /// Stop `name`'s worker after its current batch (it persists its position) and wait for
    /// it — except from inside its own handler, which would wait for itself: then only the
    /// stop is signalled. The caller holds `control`.
    pub(super) async fn stop(&self, name: &str) {
        let (shared, finished) = {
            let running = self.running.lock();
            let Some(r) = running.get(name) else { return };
            r.shared.stopping.store(true, Ordering::SeqCst);
            r.shared.stop.notify_one();
            (r.shared.clone(), r.task.is_finished())
        };
        let inside =
            tokio::task::try_id().is_some_and(|id| *shared.handler_task.lock() == Some(id));
        if inside || finished {
            if finished {
                self.running.lock().remove(name);
            }
            return;
        }
        let task = self.running.lock().remove(name).map(|r| r.task);
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Register and start `name`: the registry row (enabled), a first checkpoint of 0 (an existing
/// checkpoint is kept), then the worker. The caller holds `control`.
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
