//! What a preflight reports: whether a mutation would apply now, and what it would read and
//! touch (`AedbInstance::preflight`, `preflight_plan`).

use super::read_set::ReadSet;
use super::WriteIntent;

/// Advisory outcome of `preflight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightResult {
    Ok { affected_rows: u64 },
    Err { reason: String },
}

/// Advisory plan of a mutation: whether it would apply now, and what it would touch. Commit
/// it guarded with `TransactionEnvelope { read_set, base_seq, write_intent, .. }` to have it
/// abort with `Conflict` if anything it read changes first.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightPlan {
    pub valid: bool,
    /// What the mutation reads, at the versions seen at `base_seq`.
    pub read_set: ReadSet,
    pub write_intent: WriteIntent,
    /// The version the plan was made against.
    pub base_seq: u64,
    pub estimated_affected_rows: u64,
    pub errors: Vec<String>,
    /// (B+tree, key) pairs the mutation would write or delete.
    pub touched_keys: Vec<(String, Vec<u8>)>,
}
