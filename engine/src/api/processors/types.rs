//! The public shapes of reactive processors: options, lag, runtime status, health, SLO status
//! and the registry's view, as the original names them.

use serde::{Deserialize, Serialize};

/// How a reactive processor runs (`start_reactive_processor`). Stored in the registry as JSON,
/// so a restart resumes with the same options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReactiveProcessorOptions {
    /// The caller the processor reads and acks as: it needs `TableRead` of
    /// `_system.app.event_outbox` and `TableWrite` of `_system.app.reactive_processor_checkpoints`
    /// (checked at start and before every run where the instance demands callers, i.e.
    /// `open_secure`, which requires it).
    pub caller_id: Option<String>,
    /// Only events of this topic; `None`: every topic.
    pub topic_filter: Option<String>,
    /// Call the handler with an empty batch on every idle tick too.
    pub run_on_interval: bool,
    /// SLO: the most commits the checkpoint may trail the head.
    pub max_allowed_lag_commits: Option<u64>,
    /// SLO: the longest time without a completed run, in milliseconds.
    pub max_allowed_stall_ms: Option<u64>,
    pub max_events_per_run: usize,
    /// Approximate bytes (payload, topic and key, plus 64 per event) a batch may hold; the
    /// first event is always admitted.
    pub max_bytes_per_run: usize,
    pub max_run_duration_ms: u64,
    /// Pause after a run that found events.
    pub run_interval_ms: u64,
    /// Pause after a run that found none.
    pub idle_backoff_ms: u64,
    /// Persist the checkpoint once it has advanced by this many commits (and on the first ack).
    pub checkpoint_watermark_commits: u64,
    /// Retries of a failed batch before it is dead-lettered (0: dead-letter at once).
    pub max_retries: u32,
    /// The first retry's backoff; it doubles per attempt (exponent capped at 8).
    pub retry_backoff_ms: u64,
}

impl Default for ReactiveProcessorOptions {
    fn default() -> Self {
        ReactiveProcessorOptions {
            caller_id: None,
            topic_filter: None,
            run_on_interval: false,
            max_allowed_lag_commits: None,
            max_allowed_stall_ms: None,
            max_events_per_run: 256,
            max_bytes_per_run: 2 << 20,
            max_run_duration_ms: 250,
            run_interval_ms: 20,
            idle_backoff_ms: 50,
            checkpoint_watermark_commits: 64,
            max_retries: 3,
            retry_backoff_ms: 100,
        }
    }
}

/// How far a processor's durable checkpoint trails the head (`reactive_processor_lag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactiveProcessorLag {
    pub processor_name: String,
    /// 0 when the processor has no checkpoint.
    pub checkpoint_seq: u64,
    /// The snapshot's sequence.
    pub head_seq: u64,
    /// Every commit counts, not only those with events.
    pub lag_commits: u64,
}

/// The counters of a processor running in this process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReactiveProcessorRuntimeStatus {
    pub processor_name: String,
    pub running: bool,
    pub runs_total: u64,
    pub processed_events_total: u64,
    pub failures_total: u64,
    pub retries_total: u64,
    pub dead_lettered_total: u64,
    pub last_processed_seq: u64,
    pub last_error: Option<String>,
    pub last_run_started_micros: Option<u64>,
    pub last_run_completed_micros: Option<u64>,
    pub last_success_micros: Option<u64>,
    pub last_failure_micros: Option<u64>,
    pub last_retry_micros: Option<u64>,
    pub last_sleep_ms: u64,
    pub last_batch_events: u64,
}

/// A processor as the registry and this process see it (`list_reactive_processors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactiveProcessorInfo {
    pub processor_name: String,
    pub options: ReactiveProcessorOptions,
    pub enabled: bool,
    pub running: bool,
    pub updated_at_micros: u64,
}

/// The registry flag, the lag and the runtime counters (`reactive_processor_health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactiveProcessorHealth {
    pub processor_name: String,
    pub enabled: bool,
    pub running: bool,
    pub checkpoint_seq: u64,
    pub head_seq: u64,
    pub lag_commits: u64,
    pub runs_total: u64,
    pub processed_events_total: u64,
    pub failures_total: u64,
    pub retries_total: u64,
    pub dead_lettered_total: u64,
    pub last_processed_seq: u64,
    pub last_error: Option<String>,
    pub last_run_started_micros: Option<u64>,
    pub last_run_completed_micros: Option<u64>,
    pub last_success_micros: Option<u64>,
    pub last_failure_micros: Option<u64>,
    pub last_retry_micros: Option<u64>,
    pub last_sleep_ms: u64,
    pub last_batch_events: u64,
}

/// Whether a processor meets its lag and stall limits (`reactive_processor_slo_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactiveProcessorSloStatus {
    pub processor_name: String,
    pub breached: bool,
    pub enabled: bool,
    pub running: bool,
    pub lag_commits: u64,
    pub max_allowed_lag_commits: Option<u64>,
    pub stall_ms: Option<u64>,
    pub max_allowed_stall_ms: Option<u64>,
    pub reasons: Vec<String>,
}
