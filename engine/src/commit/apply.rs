//! Applying a `Mutation` inside a commit: this file only dispatches each kind to the module
//! that applies it (`ddl`, `tables`, `kv`, `accumulators`, `events`). Every check happens before the first write that
//! could be observed; an error aborts the whole commit (a failed write operation also poisons
//! the transaction), so a failed mutation commits nothing.

use super::ddl::apply_ddl;
use super::validation::*;
use crate::durable::LoggedTxn;
use crate::error::Result;
use crate::stored::catalog::refuse_system;

pub struct Limits {
    pub rows: super::row_rules::RowLimits,
    pub max_kv_key_bytes: usize,
    pub max_kv_value_bytes: usize,
    pub max_event_payload_bytes: usize,
    pub now_micros: u64,
    pub idempotency_window: super::envelope::IdempotencyWindow,
    /// Accumulators whose exposure this commit refused: the caller counts them in a commit
    /// of their own once this one has failed.
    pub refused_exposures: RefusedExposures,
    /// Where what the commit did goes once it is visible (`commit::lifecycle::record`).
    pub lifecycle_sink: Option<std::sync::Arc<dyn super::lifecycle::LifecycleSink>>,
}

/// An exposure the margin rule refused: the accumulator, named and identified by the commit
/// that created it (a re-created one of the same name did not refuse it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedExposure {
    pub project: String,
    pub scope: String,
    pub name: String,
    pub created_seq: u64,
}

/// The exposures a commit refused, shared with the caller that counts them.
pub type RefusedExposures = std::sync::Arc<parking_lot::Mutex<Vec<RefusedExposure>>>;

/// What a mutation did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applied {
    /// For DDL: false when an if-(not-)exists guard made it a no-op.
    pub ddl_applied: Option<bool>,
    pub affected_rows: u64,
}

pub(crate) fn rows(n: u64) -> Applied {
    Applied {
        ddl_applied: None,
        affected_rows: n,
    }
}

pub fn apply(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    use Mutation as M;
    // The system project holds the engine's own tables: no caller's mutation reaches it.
    if let Some(project) = mutation.project_id() {
        refuse_system(project)?;
    }
    match mutation {
        M::Ddl(op) => Ok(Applied {
            ddl_applied: Some(apply_ddl(txn, op, limits.now_micros)?),
            affected_rows: 0,
        }),
        M::Insert { .. }
        | M::Upsert { .. }
        | M::InsertBatch { .. }
        | M::UpsertBatch { .. }
        | M::UpsertOnConflict { .. }
        | M::UpsertBatchOnConflict { .. }
        | M::Delete { .. }
        | M::DeleteWhere { .. }
        | M::UpdateWhere { .. }
        | M::UpdateWhereExpr { .. }
        | M::TableIncU256 { .. }
        | M::TableDecU256 { .. } => super::tables::apply(txn, mutation, limits),
        M::KvSet { .. }
        | M::KvDel { .. }
        | M::KvIncU256 { .. }
        | M::KvDecU256 { .. }
        | M::KvAddU256Ex { .. }
        | M::KvSubU256Ex { .. }
        | M::KvMaxU256 { .. }
        | M::KvMinU256 { .. }
        | M::KvMutateU256 { .. }
        | M::KvAddU64Ex { .. }
        | M::KvSubU64Ex { .. }
        | M::KvMaxU64 { .. }
        | M::KvMinU64 { .. }
        | M::KvMutateU64 { .. }
        | M::KvSubIntEx { .. }
        | M::CounterAdd { .. } => super::kv::apply(txn, mutation, limits),
        M::Accumulate { .. }
        | M::ExposeAccumulator { .. }
        | M::ExposeAccumulatorBatch { .. }
        | M::ReleaseAccumulatorExposure { .. } => super::accumulators::apply(txn, mutation, limits),
        M::EmitEvent { .. } => super::events::apply(txn, mutation, limits),
    }
}
