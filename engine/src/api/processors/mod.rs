//! Reactive processors (README "Data model", behaviour spec 7.2 and 7.3): durable checkpoints
//! over the event stream, and the scheduler that runs a handler over new events (`runtime`).
//!
//! Delivery: while a processor runs, each event reaches its handler once (the runtime keeps
//! its own position, not only the persisted checkpoint). Stop, pause and shutdown persist that
//! position; after a crash, events after the last persisted checkpoint may be delivered again
//! (at-least-once across crashes), so handlers should be idempotent.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::commit::processors as rules;
use crate::commit::CommitResult;
use crate::error::{AedbError, Result};
use crate::query::plan::ConsistencyMode;
use crate::stored::processors as stored;
use crate::CommitFinality;

use super::security::system_table;
use super::{now_micros, AedbInstance};
use crate::permission::CallerContext;

mod runtime;
mod status;
mod types;
mod worker;

/// An event a processor gave up on (`reactive_processor_dead_letters`).
pub use crate::stored::processors::DeadLetter as ReactiveProcessorDeadLetter;
pub(crate) use runtime::Processors;
pub use types::{
    ReactiveProcessorHealth, ReactiveProcessorInfo, ReactiveProcessorLag, ReactiveProcessorOptions,
    ReactiveProcessorRuntimeStatus, ReactiveProcessorSloStatus,
};
pub(crate) use worker::delivery_snapshot;

/// Batched acks remembered per processor; past this many, an arbitrary eighth is forgotten
/// (a forgotten processor's next batched ack reads its durable checkpoint instead).
const ACK_CACHE_ENTRIES: usize = 1_024;

/// The last persisted checkpoint of each processor acking in batches.
#[derive(Default)]
pub(crate) struct AckCache {
    persisted: Mutex<HashMap<String, u64>>,
}

impl AckCache {
    fn get(&self, name: &str) -> Option<u64> {
        self.persisted.lock().get(name).copied()
    }

    fn set(&self, name: &str, seq: u64) {
        let mut map = self.persisted.lock();
        if map.len() >= ACK_CACHE_ENTRIES && !map.contains_key(name) {
            let evict: Vec<String> = map.keys().take(ACK_CACHE_ENTRIES / 8).cloned().collect();
            for key in evict {
                map.remove(&key);
            }
        }
        map.insert(name.to_string(), seq);
    }
}

/// A processor's name must not be blank.
pub(crate) fn check_processor_name(name: &str) -> Result<()> {
    rules::check_name(name)
}

impl AedbInstance {
    /// Persist processor `name`'s checkpoint at `checkpoint_seq` (it may not go back). Works
    /// whether or not a processor was ever started.
    pub async fn ack_reactive_processor_checkpoint(
        &self,
        processor_name: &str,
        checkpoint_seq: u64,
    ) -> Result<CommitResult> {
        self.ack_by(None, processor_name, checkpoint_seq).await
    }

    /// [`Self::ack_reactive_processor_checkpoint`] as `caller`, who needs `TableWrite` of
    /// `_system.app.reactive_processor_checkpoints`.
    pub async fn ack_reactive_processor_checkpoint_as(
        &self,
        caller: &CallerContext,
        processor_name: &str,
        checkpoint_seq: u64,
    ) -> Result<CommitResult> {
        self.ack_by(Some(caller), processor_name, checkpoint_seq)
            .await
    }

    async fn ack_by(
        &self,
        caller: Option<&CallerContext>,
        processor_name: &str,
        checkpoint_seq: u64,
    ) -> Result<CommitResult> {
        let need = system_table(stored::CHECKPOINTS_TABLE, true);
        self.check_caller(caller, need, "ack_reactive_processor_checkpoint")?;
        rules::check_name(processor_name)?;
        let name = processor_name.to_string();
        let now = now_micros();
        let outcome = self
            .engine
            .commit(CommitFinality::Visible, move |txn| {
                rules::ack(txn, &name, checkpoint_seq, now)
            })
            .await?;
        self.processors.acks.set(processor_name, checkpoint_seq);
        Ok(CommitResult::applied(
            outcome.commit_seq,
            outcome.durable_head_seq,
        ))
    }

    /// Persist the checkpoint only when it has advanced `watermark_commits` past the last
    /// persisted one (or nothing was persisted yet); `Ok(None)` when nothing was written.
    pub async fn ack_reactive_processor_checkpoint_batched(
        &self,
        processor_name: &str,
        checkpoint_seq: u64,
        watermark_commits: u64,
    ) -> Result<Option<CommitResult>> {
        self.ack_batched_by(None, processor_name, checkpoint_seq, watermark_commits)
            .await
    }

    /// [`Self::ack_reactive_processor_checkpoint_batched`] as `caller`.
    pub async fn ack_reactive_processor_checkpoint_batched_as(
        &self,
        caller: &CallerContext,
        processor_name: &str,
        checkpoint_seq: u64,
        watermark_commits: u64,
    ) -> Result<Option<CommitResult>> {
        let caller = Some(caller);
        self.ack_batched_by(caller, processor_name, checkpoint_seq, watermark_commits)
            .await
    }

    async fn ack_batched_by(
        &self,
        caller: Option<&CallerContext>,
        processor_name: &str,
        checkpoint_seq: u64,
        watermark_commits: u64,
    ) -> Result<Option<CommitResult>> {
        let need = system_table(stored::CHECKPOINTS_TABLE, true);
        self.check_caller(caller, need, "ack_reactive_processor_checkpoint_batched")?;
        rules::check_name(processor_name)?;
        if watermark_commits == 0 {
            return Err(AedbError::Validation(
                "checkpoint watermark must be > 0".into(),
            ));
        }
        let persisted = match self.processors.acks.get(processor_name) {
            Some(seq) => Some(seq),
            None => stored::checkpoint(&self.engine.snapshot(), processor_name)?,
        };
        let due = match persisted {
            None | Some(0) => true,
            Some(last) => checkpoint_seq > last && checkpoint_seq - last >= watermark_commits,
        };
        if !due {
            return Ok(None);
        }
        self.ack_by(caller, processor_name, checkpoint_seq)
            .await
            .map(Some)
    }

    /// How far processor `name`'s durable checkpoint trails the head.
    pub async fn reactive_processor_lag(
        &self,
        processor_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<ReactiveProcessorLag> {
        self.lag_by(None, processor_name, consistency)
    }

    /// [`Self::reactive_processor_lag`] as `caller`, who needs `TableRead` of
    /// `_system.app.reactive_processor_checkpoints`.
    pub async fn reactive_processor_lag_as(
        &self,
        caller: &CallerContext,
        processor_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<ReactiveProcessorLag> {
        self.lag_by(Some(caller), processor_name, consistency)
    }

    fn lag_by(
        &self,
        caller: Option<&CallerContext>,
        processor_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<ReactiveProcessorLag> {
        let need = system_table(stored::CHECKPOINTS_TABLE, false);
        self.check_caller(caller, need, "reactive_processor_lag")?;
        let snapshot = self.snapshot_for(consistency)?;
        let checkpoint_seq = stored::checkpoint(&snapshot, processor_name)?.unwrap_or(0);
        let head_seq = snapshot.seq();
        Ok(ReactiveProcessorLag {
            processor_name: processor_name.to_string(),
            checkpoint_seq,
            head_seq,
            lag_commits: head_seq.saturating_sub(checkpoint_seq),
        })
    }
}
