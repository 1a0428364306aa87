//! Starting, pausing and resuming processors, and what they report: runtime status, health,
//! SLO status, the registry's list.

use std::future::Future;
use std::sync::Arc;

use crate::api::events::EventOutboxRecord;
use crate::commit::processors as rules;
use crate::error::{AedbError, ResourceType, Result};
use crate::query::plan::ConsistencyMode;
use crate::stored::processors::{self as stored, Registration};
use crate::CommitFinality;

use super::super::security::system_table;
use super::super::{now_micros, AedbInstance};
use super::runtime::{self, Handler};
use super::types::*;
use crate::permission::CallerContext;

/// Zero in any limit, or retries without a backoff, is refused.
fn check_options(options: &ReactiveProcessorOptions) -> Result<()> {
    let zero = options.max_events_per_run == 0
        || options.max_bytes_per_run == 0
        || options.max_run_duration_ms == 0
        || options.run_interval_ms == 0
        || options.idle_backoff_ms == 0
        || options.checkpoint_watermark_commits == 0
        || (options.max_retries > 0 && options.retry_backoff_ms == 0);
    if zero {
        return Err(AedbError::Validation(
            "reactive processor options must be > 0".into(),
        ));
    }
    if let Some(caller) = &options.caller_id {
        if caller.trim().is_empty() || caller == "system" {
            return Err(AedbError::PermissionDenied(format!(
                "reactive processor caller_id {caller:?} is reserved or blank"
            )));
        }
    }
    Ok(())
}

fn boxed<F, Fut>(handler: F) -> Handler
where
    F: Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |db, events| Box::pin(handler(db, events)))
}

fn not_registered(name: &str) -> AedbError {
    AedbError::NotFound {
        resource_type: ResourceType::Table,
        resource_id: format!("reactive processor {name}"),
    }
}

fn options_of(registration: &Registration) -> Result<ReactiveProcessorOptions> {
    serde_json::from_str(&registration.options_json).map_err(|e| {
        AedbError::Corruption(format!(
            "reactive processor {} options: {e}",
            registration.processor_name
        ))
    })
}

impl AedbInstance {
    /// Where the instance demands callers (`open_secure`), a processor runs as its
    /// `caller_id`, who must be able to read the event stream and write checkpoints; without
    /// one it is refused. Under `open` the processor was started by code that may do anything
    /// anonymously, so its `caller_id` names it without being checked (the README's
    /// processor example runs there without grants).
    pub(super) fn check_processor_caller(&self, options: &ReactiveProcessorOptions) -> Result<()> {
        if !self.requires_authenticated_calls() {
            return Ok(());
        }
        let caller = options.caller_id.as_deref().map(CallerContext::new);
        let read = system_table(crate::stored::events::OUTBOX_TABLE, false);
        self.check_caller(
            caller.as_ref(),
            read,
            "a reactive processor without caller_id",
        )?;
        let write = system_table(stored::CHECKPOINTS_TABLE, true);
        self.check_caller(
            caller.as_ref(),
            write,
            "a reactive processor without caller_id",
        )
    }

    /// Register processor `name` (durably, enabled) and run `handler` over the events after
    /// its checkpoint, on the current tokio runtime.
    pub async fn start_reactive_processor<F, Fut>(
        self: &Arc<Self>,
        name: &str,
        options: ReactiveProcessorOptions,
        handler: F,
    ) -> Result<()>
    where
        F: Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        rules::check_name(name)?;
        check_options(&options)?;
        self.check_processor_caller(&options)?;
        let _control = self.processors.control.lock().await;
        runtime::start(self, name, options, boxed(handler)).await
    }

    /// Give this process the handler of processor `name`; when the registry has it enabled
    /// (it was running when the process ended) and it is not running, start it and return
    /// true.
    pub async fn register_reactive_processor_handler<F, Fut>(
        self: &Arc<Self>,
        name: &str,
        handler: F,
    ) -> Result<bool>
    where
        F: Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        rules::check_name(name)?;
        let handler = boxed(handler);
        let _control = self.processors.control.lock().await;
        self.processors.set_handler(name, handler.clone());
        let Some(registration) = stored::registration(&self.engine.snapshot(), name)? else {
            return Ok(false);
        };
        if !registration.enabled || self.processors.is_running(name) {
            return Ok(false);
        }
        let options = options_of(&registration)?;
        self.check_processor_caller(&options)?;
        self.processors.spawn(self, name, options, handler)?;
        Ok(true)
    }

    /// Start a paused or stopped processor again, from its persisted checkpoint.
    pub async fn resume_reactive_processor(self: &Arc<Self>, name: &str) -> Result<()> {
        let _control = self.processors.control.lock().await;
        if self.processors.is_running(name) {
            return Ok(());
        }
        let registration = stored::registration(&self.engine.snapshot(), name)?
            .ok_or_else(|| not_registered(name))?;
        let handler = self.processors.handler(name).ok_or_else(|| {
            AedbError::Validation(format!(
                "no handler registered for reactive processor {name} in this process"
            ))
        })?;
        let options = options_of(&registration)?;
        self.check_processor_caller(&options)?;
        runtime::start(self, name, options, handler).await
    }

    /// Stop processor `name` after its current run (its position is persisted) and mark it
    /// disabled, so a restart does not resume it.
    pub async fn pause_reactive_processor(&self, name: &str) -> Result<()> {
        let _control = self.processors.control.lock().await;
        self.processors.stop(name).await;
        let owned = name.to_string();
        let now = now_micros();
        self.engine
            .commit(CommitFinality::Visible, move |txn| {
                rules::set_enabled(txn, &owned, false, now)
            })
            .await?;
        Ok(())
    }

    /// The same as [`Self::pause_reactive_processor`], as in the original.
    pub async fn stop_reactive_processor(&self, name: &str) -> Result<()> {
        self.pause_reactive_processor(name).await
    }

    /// The counters of processor `name` if it runs in this process.
    pub async fn reactive_processor_runtime_status(
        &self,
        name: &str,
    ) -> Option<ReactiveProcessorRuntimeStatus> {
        self.processors.status(name)
    }

    pub async fn reactive_processor_health(
        &self,
        name: &str,
        consistency: ConsistencyMode,
    ) -> Result<ReactiveProcessorHealth> {
        let lag = self.reactive_processor_lag(name, consistency).await?;
        let running = self.processors.is_running(name);
        let snapshot = self.snapshot_for(consistency)?;
        let enabled = stored::registration(&snapshot, name)?.map_or(running, |r| r.enabled);
        let s = self.processors.status(name).unwrap_or_default();
        Ok(ReactiveProcessorHealth {
            processor_name: name.to_string(),
            enabled,
            running,
            checkpoint_seq: lag.checkpoint_seq,
            head_seq: lag.head_seq,
            lag_commits: lag.lag_commits,
            runs_total: s.runs_total,
            processed_events_total: s.processed_events_total,
            failures_total: s.failures_total,
            retries_total: s.retries_total,
            dead_lettered_total: s.dead_lettered_total,
            last_processed_seq: s.last_processed_seq,
            last_error: s.last_error,
            last_run_started_micros: s.last_run_started_micros,
            last_run_completed_micros: s.last_run_completed_micros,
            last_success_micros: s.last_success_micros,
            last_failure_micros: s.last_failure_micros,
            last_retry_micros: s.last_retry_micros,
            last_sleep_ms: s.last_sleep_ms,
            last_batch_events: s.last_batch_events,
        })
    }

    /// Whether processor `name` meets its lag and stall limits; only an enabled processor can
    /// breach them.
    pub async fn reactive_processor_slo_status(
        &self,
        name: &str,
        consistency: ConsistencyMode,
    ) -> Result<ReactiveProcessorSloStatus> {
        let snapshot = self.snapshot_for(consistency)?;
        let registration =
            stored::registration(&snapshot, name)?.ok_or_else(|| not_registered(name))?;
        let options = options_of(&registration)?;
        let lag = self.reactive_processor_lag(name, consistency).await?;
        let status = self.processors.status(name);
        let last_progress = status
            .as_ref()
            .and_then(|s| s.last_success_micros.or(s.last_run_completed_micros));
        let stall_ms = last_progress.map(|at| now_micros().saturating_sub(at) / 1_000);
        let mut reasons = Vec::new();
        if registration.enabled {
            if let Some(max) = options.max_allowed_lag_commits {
                if lag.lag_commits > max {
                    reasons.push(format!("lag_commits {} > {max}", lag.lag_commits));
                }
            }
            if let Some(max) = options.max_allowed_stall_ms {
                match stall_ms {
                    Some(stall) if stall > max => reasons.push(format!("stall_ms {stall} > {max}")),
                    Some(_) => {}
                    None => reasons.push("stall_ms unavailable: no completed run".into()),
                }
            }
        }
        Ok(ReactiveProcessorSloStatus {
            processor_name: name.to_string(),
            breached: !reasons.is_empty(),
            enabled: registration.enabled,
            running: self.processors.is_running(name),
            lag_commits: lag.lag_commits,
            max_allowed_lag_commits: options.max_allowed_lag_commits,
            stall_ms,
            max_allowed_stall_ms: options.max_allowed_stall_ms,
            reasons,
        })
    }

    /// The SLO status of every registered processor, by name.
    pub async fn list_reactive_processor_slo_statuses(
        &self,
        consistency: ConsistencyMode,
    ) -> Result<Vec<ReactiveProcessorSloStatus>> {
        let snapshot = self.snapshot_for(consistency)?;
        let mut out = Vec::new();
        for registration in stored::registrations(&snapshot)? {
            out.push(
                self.reactive_processor_slo_status(&registration.processor_name, consistency)
                    .await?,
            );
        }
        Ok(out)
    }

    /// `Unavailable` naming every breach, if any processor breaches its SLO.
    pub async fn enforce_reactive_processor_slos(
        &self,
        consistency: ConsistencyMode,
    ) -> Result<()> {
        let breaches: Vec<String> = self
            .list_reactive_processor_slo_statuses(consistency)
            .await?
            .into_iter()
            .filter(|s| s.breached)
            .map(|s| format!("{}: {}", s.processor_name, s.reasons.join(", ")))
            .collect();
        if breaches.is_empty() {
            return Ok(());
        }
        Err(AedbError::Unavailable {
            message: format!("reactive processor SLO breach: {}", breaches.join(" | ")),
        })
    }

    /// Every registered processor, by name.
    pub async fn list_reactive_processors(
        &self,
        consistency: ConsistencyMode,
    ) -> Result<Vec<ReactiveProcessorInfo>> {
        self.anonymous("list_reactive_processors")?;
        let snapshot = self.snapshot_for(consistency)?;
        stored::registrations(&snapshot)?
            .into_iter()
            .map(|r| {
                Ok(ReactiveProcessorInfo {
                    options: options_of(&r)?,
                    running: self.processors.is_running(&r.processor_name),
                    processor_name: r.processor_name,
                    enabled: r.enabled,
                    updated_at_micros: r.updated_at_micros,
                })
            })
            .collect()
    }

    /// The events processor `name` gave up on, in (commit, key) order.
    pub async fn reactive_processor_dead_letters(
        &self,
        name: &str,
        consistency: ConsistencyMode,
    ) -> Result<Vec<stored::DeadLetter>> {
        // Dead letters hold event payloads.
        self.anonymous("reactive_processor_dead_letters")?;
        let snapshot = self.snapshot_for(consistency)?;
        stored::dead_letters(&snapshot, name)
    }
}
