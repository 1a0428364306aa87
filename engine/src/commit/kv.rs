//! Applying the KV and counter mutations: checks, version guards, and the overflow and
//! missing-key policies of the numeric read-modify-writes. What an entry is and where it lives
//! belongs to the KV owner (`stored::kv`) and the counter owner (`stored::counters`).

use super::apply::{apply as apply_any, rows, Applied, Limits};
use super::envelope::{AssertionActual, ReadAssertion};
use super::validation::*;
use super::wide::StoredUint;
use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::catalog::require_scope;
use crate::stored::{counters, kv};

pub use crate::stored::kv::KvEntry;

/// Apply one KV or counter mutation (the dispatcher sends no other kind here).
pub(crate) fn apply(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    use Mutation as M;
    match mutation {
        M::KvSet {
            project_id,
            scope_id,
            key,
            value,
        } => {
            kv_check(txn, project_id, scope_id, key, limits)?;
            if value.len() > limits.max_kv_value_bytes {
                return Err(AedbError::ValueTooLarge {
                    len: value.len(),
                    max: limits.max_kv_value_bytes,
                });
            }
            kv::put(txn, project_id, scope_id, key, value.clone()).map(|_| rows(1))
        }
        M::KvDel {
            project_id,
            scope_id,
            key,
        } => {
            kv_check(txn, project_id, scope_id, key, limits)?;
            let removed = kv::delete(txn, project_id, scope_id, key)?;
            Ok(rows(removed as u64))
        }
        M::KvIncU256 { .. }
        | M::KvDecU256 { .. }
        | M::KvAddU256Ex { .. }
        | M::KvSubU256Ex { .. }
        | M::KvMaxU256 { .. }
        | M::KvMinU256 { .. }
        | M::KvMutateU256 { .. } => apply_u256(txn, mutation, limits),
        M::KvAddU64Ex { .. }
        | M::KvSubU64Ex { .. }
        | M::KvMaxU64 { .. }
        | M::KvMinU64 { .. }
        | M::KvMutateU64 { .. } => apply_u64(txn, mutation, limits),
        M::KvSubIntEx {
            project_id,
            scope_id,
            key,
            amount,
            on_missing,
            on_underflow,
        } => {
            let sub = match amount {
                KvIntegerAmount::U64(amount_be) => Mutation::KvSubU64Ex {
                    project_id: project_id.clone(),
                    scope_id: scope_id.clone(),
                    key: key.clone(),
                    amount_be: *amount_be,
                    on_missing: match on_missing {
                        KvIntegerMissingPolicy::TreatAsZero => KvU64MissingPolicy::TreatAsZero,
                        KvIntegerMissingPolicy::Reject => KvU64MissingPolicy::Reject,
                    },
                    on_underflow: match on_underflow {
                        KvIntegerUnderflowPolicy::Reject => KvU64UnderflowPolicy::Reject,
                        KvIntegerUnderflowPolicy::NoOp => KvU64UnderflowPolicy::NoOp,
                    },
                },
                KvIntegerAmount::U256(amount_be) => Mutation::KvSubU256Ex {
                    project_id: project_id.clone(),
                    scope_id: scope_id.clone(),
                    key: key.clone(),
                    amount_be: *amount_be,
                    on_missing: match on_missing {
                        KvIntegerMissingPolicy::TreatAsZero => KvU256MissingPolicy::TreatAsZero,
                        KvIntegerMissingPolicy::Reject => KvU256MissingPolicy::Reject,
                    },
                    on_underflow: match on_underflow {
                        KvIntegerUnderflowPolicy::Reject => KvU256UnderflowPolicy::Reject,
                        KvIntegerUnderflowPolicy::NoOp => KvU256UnderflowPolicy::NoOp,
                    },
                },
            };
            apply_any(txn, &sub, limits)
        }
        M::CounterAdd {
            project_id,
            scope_id,
            key,
            amount_be,
            shard_count,
            shard_hint,
        } => {
            if *shard_count == 0 || *shard_count > MAX_COUNTER_SHARDS {
                return Err(AedbError::Validation(format!(
                    "shard_count must be in 1..={MAX_COUNTER_SHARDS}"
                )));
            }
            let physical = counters::shard_key(key, (*shard_hint % *shard_count as u32) as u16);
            let amount = u64::from_be_bytes(*amount_be);
            update::<u64>(txn, project_id, scope_id, &physical, limits, false, |cur| {
                cur.checked_add(amount).map(Some).ok_or(AedbError::Overflow)
            })
        }
        _ => Err(AedbError::Validation("not a KV or counter mutation".into())),
    }
}

/// The U256 read-modify-writes.
fn apply_u256(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    use Mutation as M;
    match mutation {
        M::KvIncU256 {
            project_id,
            scope_id,
            key,
            amount_be,
        } => update(
            txn,
            project_id,
            scope_id,
            key,
            limits,
            false,
            |cur: [u8; 32]| {
                cur.checked_add(*amount_be)
                    .map(Some)
                    .ok_or(AedbError::Overflow)
            },
        ),
        M::KvDecU256 {
            project_id,
            scope_id,
            key,
            amount_be,
        } => update(
            txn,
            project_id,
            scope_id,
            key,
            limits,
            false,
            |cur: [u8; 32]| {
                cur.checked_sub(*amount_be)
                    .map(Some)
                    .ok_or(AedbError::Underflow)
            },
        ),
        M::KvAddU256Ex {
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_overflow,
        } => update(
            txn,
            project_id,
            scope_id,
            key,
            limits,
            *on_missing == KvU256MissingPolicy::Reject,
            |cur: [u8; 32]| match (cur.checked_add(*amount_be), on_overflow) {
                (Some(v), _) => Ok(Some(v)),
                (None, KvU256OverflowPolicy::Saturate) => Ok(Some([0xff; 32])),
                (None, KvU256OverflowPolicy::Reject) => Err(AedbError::Overflow),
            },
        ),
        M::KvSubU256Ex {
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_underflow,
        } => update(
            txn,
            project_id,
            scope_id,
            key,
            limits,
            *on_missing == KvU256MissingPolicy::Reject,
            |cur: [u8; 32]| match (cur.checked_sub(*amount_be), on_underflow) {
                (Some(v), _) => Ok(Some(v)),
                (None, KvU256UnderflowPolicy::NoOp) => Ok(None),
                (None, KvU256UnderflowPolicy::Reject) => Err(AedbError::Underflow),
            },
        ),
        M::KvMaxU256 {
            project_id,
            scope_id,
            key,
            candidate_be,
            on_missing,
        }
        | M::KvMinU256 {
            project_id,
            scope_id,
            key,
            candidate_be,
            on_missing,
        } => {
            let max = matches!(mutation, M::KvMaxU256 { .. });
            update(
                txn,
                project_id,
                scope_id,
                key,
                limits,
                *on_missing == KvU256MissingPolicy::Reject,
                |cur: [u8; 32]| {
                    let next = if max {
                        cur.max(*candidate_be)
                    } else {
                        cur.min(*candidate_be)
                    };
                    Ok(Some(next))
                },
            )
        }
        M::KvMutateU256 {
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        } => {
            let operand = *operand_be;
            mutate(
                txn,
                project_id,
                scope_id,
                key,
                limits,
                *expected_seq,
                |cur: [u8; 32]| match op {
                    KvU256MutatorOp::Set => Ok(operand),
                    KvU256MutatorOp::Add => cur.checked_add(operand).ok_or(AedbError::Overflow),
                    KvU256MutatorOp::Sub => cur.checked_sub(operand).ok_or(AedbError::Underflow),
                },
            )
        }
        _ => Err(AedbError::Validation("not a U256 KV mutation".into())),
    }
}

/// The u64 read-modify-writes.
fn apply_u64(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    use Mutation as M;
    match mutation {
        M::KvAddU64Ex {
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_overflow,
        } => {
            let amount = u64::from_be_bytes(*amount_be);
            update::<u64>(
                txn,
                project_id,
                scope_id,
                key,
                limits,
                *on_missing == KvU64MissingPolicy::Reject,
                |cur| match (cur.checked_add(amount), on_overflow) {
                    (Some(v), _) => Ok(Some(v)),
                    (None, KvU64OverflowPolicy::Saturate) => Ok(Some(u64::MAX)),
                    (None, KvU64OverflowPolicy::Reject) => Err(AedbError::Overflow),
                },
            )
        }
        M::KvSubU64Ex {
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_underflow,
        } => {
            let amount = u64::from_be_bytes(*amount_be);
            update::<u64>(
                txn,
                project_id,
                scope_id,
                key,
                limits,
                *on_missing == KvU64MissingPolicy::Reject,
                |cur| match (cur.checked_sub(amount), on_underflow) {
                    (Some(v), _) => Ok(Some(v)),
                    (None, KvU64UnderflowPolicy::NoOp) => Ok(None),
                    (None, KvU64UnderflowPolicy::Reject) => Err(AedbError::Underflow),
                },
            )
        }
        M::KvMaxU64 {
            project_id,
            scope_id,
            key,
            candidate_be,
            on_missing,
        }
        | M::KvMinU64 {
            project_id,
            scope_id,
            key,
            candidate_be,
            on_missing,
        } => {
            let max = matches!(mutation, M::KvMaxU64 { .. });
            let candidate = u64::from_be_bytes(*candidate_be);
            update::<u64>(
                txn,
                project_id,
                scope_id,
                key,
                limits,
                *on_missing == KvU64MissingPolicy::Reject,
                |cur| {
                    Ok(Some(if max {
                        cur.max(candidate)
                    } else {
                        cur.min(candidate)
                    }))
                },
            )
        }
        M::KvMutateU64 {
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        } => {
            let operand = u64::from_be_bytes(*operand_be);
            mutate(
                txn,
                project_id,
                scope_id,
                key,
                limits,
                *expected_seq,
                |cur: u64| match op {
                    KvU64MutatorOp::Set => Ok(operand),
                    KvU64MutatorOp::Add => cur.checked_add(operand).ok_or(AedbError::Overflow),
                    KvU64MutatorOp::Sub => cur.checked_sub(operand).ok_or(AedbError::Underflow),
                },
            )
        }
        _ => Err(AedbError::Validation("not a u64 KV mutation".into())),
    }
}

fn kv_check(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    key: &[u8],
    limits: &Limits,
) -> Result<()> {
    if key.len() > limits.max_kv_key_bytes {
        return Err(AedbError::KeyTooLarge {
            len: key.len(),
            max: limits.max_kv_key_bytes,
        });
    }
    require_scope(txn, project, scope)
}

fn check_version(
    (project_id, scope_id, key): (&str, &str, &[u8]),
    entry: Option<&KvEntry>,
    expected: Option<u64>,
) -> Result<()> {
    if let Some(expected) = expected {
        let actual = entry.map_or(0, |e| e.version);
        if actual != expected {
            // As the original: a failed compare-and-swap is a failed KeyVersion assertion.
            return Err(AedbError::AssertionFailed {
                index: 0,
                assertion: Box::new(ReadAssertion::KeyVersion {
                    project_id: project_id.to_string(),
                    scope_id: scope_id.to_string(),
                    key: key.to_vec(),
                    expected_seq: expected,
                }),
                actual: Box::new(AssertionActual::Version(actual)),
            });
        }
    }
    Ok(())
}

/// Read-modify-write of a numeric KV value; `op` returns None for "leave it unchanged". A
/// missing key reads as zero unless `reject_missing`.
#[allow(clippy::too_many_arguments)]
fn update<N: StoredUint>(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    key: &[u8],
    limits: &Limits,
    reject_missing: bool,
    op: impl FnOnce(N) -> Result<Option<N>>,
) -> Result<Applied> {
    kv_check(txn, project, scope, key, limits)?;
    let entry = kv::get(txn, project, scope, key)?;
    let current = match &entry {
        Some(e) => N::decode(&e.value)?,
        None if reject_missing => {
            return Err(AedbError::Validation(format!(
                "{} key missing and policy is Reject",
                N::NAME
            )));
        }
        None => N::ZERO,
    };
    match op(current)? {
        Some(next) if entry.is_none() || next != current => {
            kv::put(txn, project, scope, key, next.encode()).map(|_| rows(1))
        }
        _ => Ok(rows(0)),
    }
}

/// Compare-and-set of a numeric KV value: fails unless the entry's version is `expected`
/// (when given); a missing key reads as zero.
#[allow(clippy::too_many_arguments)]
fn mutate<N: StoredUint>(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    key: &[u8],
    limits: &Limits,
    expected: Option<u64>,
    next: impl FnOnce(N) -> Result<N>,
) -> Result<Applied> {
    kv_check(txn, project, scope, key, limits)?;
    let entry = kv::get(txn, project, scope, key)?;
    check_version((project, scope, key), entry.as_ref(), expected)?;
    let current = entry
        .as_ref()
        .map(|e| N::decode(&e.value))
        .transpose()?
        .unwrap_or(N::ZERO);
    kv::put(txn, project, scope, key, next(current)?.encode()).map(|_| rows(1))
}
