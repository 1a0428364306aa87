//! `Mutation` (`aedb::commit::validation::Mutation`): every write, as in the original aedb
//! (variants 1–34; the original's order-book variants are not part of this product).

/// Where the original has it.
pub use super::envelope::CompareOp;

use aedb_catalog::expr::Expr;
use aedb_catalog::types::{Row, Value};
use aedb_catalog::DdlOperation;

impl Mutation {
    /// The table a row mutation writes: (project, scope, table).
    pub fn target_table(&self) -> Option<(&str, &str, &str)> {
        use Mutation as M;
        match self {
            M::Insert {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::InsertBatch {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::Upsert {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::UpsertBatch {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::UpsertOnConflict {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::UpsertBatchOnConflict {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::Delete {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::DeleteWhere {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::UpdateWhere {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::UpdateWhereExpr {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::TableIncU256 {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | M::TableDecU256 {
                project_id,
                scope_id,
                table_name,
                ..
            } => Some((project_id, scope_id, table_name)),
            _ => None,
        }
    }

    /// The bytes a KV-shaped write must be allowed to write, with its place: the key of a KV
    /// write or counter, an accumulator's name, an event's topic.
    pub fn kv_write_target(&self) -> Option<(&str, &str, &[u8])> {
        use Mutation as M;
        match self {
            M::KvSet {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvDel {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvIncU256 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvDecU256 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvAddU256Ex {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvSubU256Ex {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvMaxU256 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvMinU256 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvMutateU256 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvAddU64Ex {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvSubU64Ex {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvMaxU64 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvMinU64 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvMutateU64 {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::KvSubIntEx {
                project_id,
                scope_id,
                key,
                ..
            }
            | M::CounterAdd {
                project_id,
                scope_id,
                key,
                ..
            } => Some((project_id, scope_id, key)),
            M::Accumulate {
                project_id,
                scope_id,
                accumulator_name,
                ..
            }
            | M::ExposeAccumulator {
                project_id,
                scope_id,
                accumulator_name,
                ..
            }
            | M::ExposeAccumulatorBatch {
                project_id,
                scope_id,
                accumulator_name,
                ..
            }
            | M::ReleaseAccumulatorExposure {
                project_id,
                scope_id,
                accumulator_name,
                ..
            } => Some((project_id, scope_id, accumulator_name.as_bytes())),
            M::EmitEvent {
                project_id,
                scope_id,
                topic,
                ..
            } => Some((project_id, scope_id, topic.as_bytes())),
            _ => None,
        }
    }

    /// Adds whose result does not depend on the value they find (no read to revalidate).
    pub fn is_commutative(&self) -> bool {
        use Mutation as M;
        matches!(
            self,
            M::KvIncU256 { .. }
                | M::KvAddU256Ex { .. }
                | M::KvAddU64Ex { .. }
                | M::KvMaxU256 { .. }
                | M::KvMinU256 { .. }
                | M::KvMaxU64 { .. }
                | M::KvMinU64 { .. }
                | M::CounterAdd { .. }
                | M::TableIncU256 { .. }
        )
    }

    /// Writes every row a predicate selects: it read the whole table.
    pub fn selects_by_predicate(&self) -> bool {
        matches!(
            self,
            Mutation::DeleteWhere { .. }
                | Mutation::UpdateWhere { .. }
                | Mutation::UpdateWhereExpr { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Mutation {
    Insert {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
        row: Row,
    },
    InsertBatch {
        project_id: String,
        scope_id: String,
        table_name: String,
        rows: Vec<Row>,
    },
    Upsert {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
        row: Row,
    },
    UpsertBatch {
        project_id: String,
        scope_id: String,
        table_name: String,
        rows: Vec<Row>,
    },
    UpsertOnConflict {
        project_id: String,
        scope_id: String,
        table_name: String,
        row: Row,
        conflict_target: ConflictTarget,
        conflict_action: ConflictAction,
    },
    UpsertBatchOnConflict {
        project_id: String,
        scope_id: String,
        table_name: String,
        rows: Vec<Row>,
        conflict_target: ConflictTarget,
        conflict_action: ConflictAction,
    },
    Delete {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
    },
    DeleteWhere {
        project_id: String,
        scope_id: String,
        table_name: String,
        predicate: Expr,
        limit: Option<usize>,
    },
    UpdateWhere {
        project_id: String,
        scope_id: String,
        table_name: String,
        predicate: Expr,
        updates: Vec<(String, Value)>,
        limit: Option<usize>,
    },
    UpdateWhereExpr {
        project_id: String,
        scope_id: String,
        table_name: String,
        predicate: Expr,
        updates: Vec<(String, TableUpdateExpr)>,
        limit: Option<usize>,
    },
    Ddl(DdlOperation),
    KvSet {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    KvDel {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
    },
    KvIncU256 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount_be: [u8; 32],
    },
    KvDecU256 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount_be: [u8; 32],
    },
    KvAddU256Ex {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount_be: [u8; 32],
        on_missing: KvU256MissingPolicy,
        on_overflow: KvU256OverflowPolicy,
    },
    KvSubU256Ex {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount_be: [u8; 32],
        on_missing: KvU256MissingPolicy,
        on_underflow: KvU256UnderflowPolicy,
    },
    KvMaxU256 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        candidate_be: [u8; 32],
        on_missing: KvU256MissingPolicy,
    },
    KvMinU256 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        candidate_be: [u8; 32],
        on_missing: KvU256MissingPolicy,
    },
    KvMutateU256 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        op: KvU256MutatorOp,
        operand_be: [u8; 32],
        expected_seq: Option<u64>,
    },
    KvAddU64Ex {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_overflow: KvU64OverflowPolicy,
    },
    KvSubU64Ex {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_underflow: KvU64UnderflowPolicy,
    },
    KvMaxU64 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        candidate_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
    },
    KvMinU64 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        candidate_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
    },
    KvMutateU64 {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        op: KvU64MutatorOp,
        operand_be: [u8; 8],
        expected_seq: Option<u64>,
    },
    KvSubIntEx {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount: KvIntegerAmount,
        on_missing: KvIntegerMissingPolicy,
        on_underflow: KvIntegerUnderflowPolicy,
    },
    CounterAdd {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        amount_be: [u8; 8],
        shard_count: u16,
        shard_hint: u32,
    },
    TableIncU256 {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
        column: String,
        amount_be: [u8; 32],
    },
    TableDecU256 {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
        column: String,
        amount_be: [u8; 32],
    },
    Accumulate {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        delta: i64,
        dedupe_key: String,
        order_key: u64,
        release_exposure_id: Option<String>,
    },
    ExposeAccumulator {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        amount: i64,
        exposure_id: String,
    },
    ExposeAccumulatorBatch {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        exposures: Vec<(i64, String)>,
    },
    ReleaseAccumulatorExposure {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        exposure_id: String,
    },
    EmitEvent {
        project_id: String,
        scope_id: String,
        topic: String,
        event_key: String,
        payload_json: String,
    },
}

impl Mutation {
    /// The project the mutation writes to (`None`: a grant or revoke).
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Mutation::Ddl(op) => op.project_id(),
            Mutation::Insert { project_id, .. }
            | Mutation::InsertBatch { project_id, .. }
            | Mutation::Upsert { project_id, .. }
            | Mutation::UpsertBatch { project_id, .. }
            | Mutation::UpsertOnConflict { project_id, .. }
            | Mutation::UpsertBatchOnConflict { project_id, .. }
            | Mutation::Delete { project_id, .. }
            | Mutation::DeleteWhere { project_id, .. }
            | Mutation::UpdateWhere { project_id, .. }
            | Mutation::UpdateWhereExpr { project_id, .. }
            | Mutation::KvSet { project_id, .. }
            | Mutation::KvDel { project_id, .. }
            | Mutation::KvIncU256 { project_id, .. }
            | Mutation::KvDecU256 { project_id, .. }
            | Mutation::KvAddU256Ex { project_id, .. }
            | Mutation::KvSubU256Ex { project_id, .. }
            | Mutation::KvMaxU256 { project_id, .. }
            | Mutation::KvMinU256 { project_id, .. }
            | Mutation::KvMutateU256 { project_id, .. }
            | Mutation::KvAddU64Ex { project_id, .. }
            | Mutation::KvSubU64Ex { project_id, .. }
            | Mutation::KvMaxU64 { project_id, .. }
            | Mutation::KvMinU64 { project_id, .. }
            | Mutation::KvMutateU64 { project_id, .. }
            | Mutation::KvSubIntEx { project_id, .. }
            | Mutation::CounterAdd { project_id, .. }
            | Mutation::TableIncU256 { project_id, .. }
            | Mutation::TableDecU256 { project_id, .. }
            | Mutation::Accumulate { project_id, .. }
            | Mutation::ExposeAccumulator { project_id, .. }
            | Mutation::ExposeAccumulatorBatch { project_id, .. }
            | Mutation::ReleaseAccumulatorExposure { project_id, .. }
            | Mutation::EmitEvent { project_id, .. } => Some(project_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ConflictTarget {
    PrimaryKey,
    Index(String),
    Columns(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ConflictAction {
    DoNothing,
    /// Copy the proposed row's non-Null values over the existing row.
    DoMerge,
    DoUpdate(Vec<(String, Value)>),
    DoUpdateWith(Vec<(String, UpdateExpr)>),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum UpdateExpr {
    Value(Value),
    Existing(String),
    Proposed(String),
    AddI64 {
        existing_column: String,
        proposed_column: String,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum TableUpdateExpr {
    Value(Value),
    CopyColumn(String),
    AddI64(i64),
    Coalesce(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU256MissingPolicy {
    TreatAsZero,
    Reject,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU256OverflowPolicy {
    Reject,
    Saturate,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU256UnderflowPolicy {
    Reject,
    NoOp,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU256MutatorOp {
    Set,
    Add,
    Sub,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU64MissingPolicy {
    TreatAsZero,
    Reject,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU64OverflowPolicy {
    Reject,
    Saturate,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU64UnderflowPolicy {
    Reject,
    NoOp,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvU64MutatorOp {
    Set,
    Add,
    Sub,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvIntegerAmount {
    U64([u8; 8]),
    U256([u8; 32]),
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvIntegerMissingPolicy {
    TreatAsZero,
    Reject,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvIntegerUnderflowPolicy {
    Reject,
    NoOp,
}

/// The number of counter shards allowed.
pub const MAX_COUNTER_SHARDS: u16 = 4096;
