//! `aedb::engine_interface`: effect batches with preconditions, keyed state (a table with a
//! one-column primary key, read and written by key), and processors that pull events and
//! commit their state together with their checkpoint (behaviour spec section 8).
//!
//! Everything here is built on the public commit and query paths: an effect batch is one
//! envelope, keyed state is ordinary rows, a processor's checkpoint is the reactive
//! processors' checkpoint table.

use aedb_catalog::types::{Row, Value};

use crate::commit::envelope::ReadAssertion;
use crate::commit::tx::{AssertionActual, TransactionEnvelope, WriteIntent};
use crate::commit::{CommitResult, Mutation};
use crate::error::{AedbError, Result};

use super::AedbInstance;

mod keyed_state;
mod processor;

pub use processor::ProcessorContext;

/// What an effect batch requires, changes and emits: all in one commit, or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectBatch {
    pub preconditions: Vec<EffectPrecondition>,
    pub effects: Vec<EffectOperation>,
    pub events: Vec<EffectEvent>,
}

/// A condition checked in the batch's commit before any effect.
#[derive(Debug, Clone, PartialEq)]
pub enum EffectPrecondition {
    /// The accumulator's effective value less its open exposure is at least `min_amount`.
    RequireAvailable {
        accumulator: String,
        min_amount: i64,
    },
    /// Exposing `amount` more would stay within the accumulator's margin.
    RequireExposureOk { accumulator: String, amount: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum EffectOperation {
    Accumulate {
        accumulator: String,
        delta: i64,
        dedupe_id: String,
        order_key: u64,
    },
    /// `dedupe_id` is the exposure id.
    Expose {
        accumulator: String,
        amount: i64,
        dedupe_id: String,
    },
    ReleaseExposure {
        accumulator: String,
        dedupe_id: String,
    },
    /// Upsert the row of `key` in the keyed-state table (its key column must equal `key`).
    Write {
        keyed_state: String,
        key: Value,
        value: Row,
    },
    Delete {
        keyed_state: String,
        key: Value,
    },
}

/// An event emitted with the batch (`event_name` is its topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectEvent {
    pub event_name: String,
    pub event_key: String,
    pub data_json: String,
}

/// Why a batch was not applied: the precondition that failed and the value it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRejected {
    /// `"available_below_min"` or `"exposure_margin_exceeded"`.
    pub error_code: &'static str,
    pub failed_precondition: String,
    /// The accumulator's available amount, or its open exposure.
    pub actual_value: i64,
}

#[derive(Debug, Clone)]
pub enum EffectBatchCommitResult {
    Applied(CommitResult),
    Rejected(BatchRejected),
}

/// Events a processor pulled (`processor_pull`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorPullResult {
    pub events: Vec<crate::api::EventOutboxRecord>,
    /// The processor's checkpoint the pull started after, as the newest commit left it (in
    /// Batch mode it may not be durable yet, and may be past `head_seq`).
    pub checkpoint_seq: u64,
    /// The commit of the last event pulled, or where the pull started (the checkpoint, or the
    /// caller's own position past it) when there was none.
    pub last_commit_seq: u64,
    /// The snapshot the events were read from: the durable head (the visible one under
    /// `OsBuffered`), or the last checkpoint when that head is no longer retained.
    pub head_seq: u64,
}

/// A walk of a keyed-state table's BTree index (`keyed_state_query_index`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedStateQueryRequest {
    pub index_name: String,
    /// Leading index values the entries must start with.
    pub prefix: Vec<Value>,
    pub offset: usize,
    pub limit: usize,
}

const AVAILABLE_BELOW_MIN: &str = "available_below_min";
const EXPOSURE_MARGIN_EXCEEDED: &str = "exposure_margin_exceeded";

fn precondition_assertion(project: &str, scope: &str, p: &EffectPrecondition) -> ReadAssertion {
    match p {
        EffectPrecondition::RequireAvailable {
            accumulator,
            min_amount,
        } => ReadAssertion::AccumulatorAvailableAtLeast {
            project_id: project.into(),
            scope_id: scope.into(),
            accumulator_name: accumulator.clone(),
            min_amount: *min_amount,
        },
        EffectPrecondition::RequireExposureOk {
            accumulator,
            amount,
        } => ReadAssertion::AccumulatorExposureWithinMargin {
            project_id: project.into(),
            scope_id: scope.into(),
            accumulator_name: accumulator.clone(),
            additional_exposure: *amount,
        },
    }
}

/// The rejection a failed precondition's assertion stands for.
fn rejection(precondition: &EffectPrecondition, actual: &AssertionActual) -> BatchRejected {
    let found = match actual {
        AssertionActual::Value(Value::Integer(n)) => Some(*n),
        _ => None,
    };
    match precondition {
        EffectPrecondition::RequireAvailable { .. } => BatchRejected {
            error_code: AVAILABLE_BELOW_MIN,
            failed_precondition: format!("{precondition:?}"),
            actual_value: found.unwrap_or(0),
        },
        // The assertion reports the exposure the batch would reach; the rejection reports
        // the exposure already open (0 for a missing accumulator).
        EffectPrecondition::RequireExposureOk { amount, .. } => BatchRejected {
            error_code: EXPOSURE_MARGIN_EXCEEDED,
            failed_precondition: format!("{precondition:?}"),
            actual_value: found.map_or(0, |requested| requested.saturating_sub(*amount)),
        },
    }
}

impl AedbInstance {
    /// Check the preconditions and apply the effects and events in one commit; a failed
    /// precondition is `Ok(Rejected)` with what it found, anything else an error.
    pub async fn commit_effect_batch(
        &self,
        project_id: &str,
        scope_id: &str,
        batch: EffectBatch,
    ) -> Result<EffectBatchCommitResult> {
        if batch.effects.is_empty() && batch.events.is_empty() {
            return Err(AedbError::Validation("effect batch is empty".into()));
        }
        let snapshot = self.engine.snapshot();
        let mut mutations = Vec::with_capacity(batch.effects.len() + batch.events.len());
        for effect in &batch.effects {
            mutations.push(keyed_state::effect_mutation(
                &snapshot, project_id, scope_id, effect,
            )?);
        }
        for event in &batch.events {
            mutations.push(Mutation::EmitEvent {
                project_id: project_id.into(),
                scope_id: scope_id.into(),
                topic: event.event_name.clone(),
                event_key: event.event_key.clone(),
                payload_json: event.data_json.clone(),
            });
        }
        let envelope = TransactionEnvelope {
            assertions: batch
                .preconditions
                .iter()
                .map(|p| precondition_assertion(project_id, scope_id, p))
                .collect(),
            write_intent: WriteIntent { mutations },
            base_seq: snapshot.seq(),
            ..TransactionEnvelope::default()
        };
        match self.commit_envelope(envelope).await {
            Ok(result) => Ok(EffectBatchCommitResult::Applied(result)),
            // A precondition's own assertion failed (a compare-and-set inside a mutation also
            // reports index 0, with another assertion: that is an error, not a rejection).
            Err(AedbError::AssertionFailed {
                index,
                assertion,
                actual,
            }) if batch
                .preconditions
                .get(index)
                .is_some_and(|p| precondition_assertion(project_id, scope_id, p) == *assertion) =>
            {
                let precondition = &batch.preconditions[index];
                Ok(EffectBatchCommitResult::Rejected(rejection(
                    precondition,
                    &actual,
                )))
            }
            Err(err) => Err(err),
        }
    }
}
