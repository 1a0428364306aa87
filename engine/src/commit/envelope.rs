//! Transaction envelopes (`aedb::commit::envelope`): many mutations in one atomic commit, guarded
//! by read assertions and made idempotent by a key.
//!
//! Inside the commit, in order: (1) an empty envelope is refused; (2) an idempotency key seen
//! before with the same request returns the first commit as `Duplicate` and writes nothing
//! (with a different request it is refused); (3) the read set is revalidated — anything
//! changed since it was read aborts with `Conflict` (`read_set.rs`); (4) the assertions are
//! evaluated against the latest state — any failure aborts with `AssertionFailed` and writes
//! nothing; (5) the mutations apply; (6) the key is recorded with the commit's sequence.
//!
//! Idempotency records live in the system tree `sys:idempotency`, keyed by caller and key, so
//! they are durable, replayed by recovery, and scoped per caller (the same key from two callers
//! is two requests). A record answers while it is within both windows of the configuration
//! (`idempotency_window_commits` commits and `idempotency_window_seconds` seconds old); an
//! older one is as if never written. `sys:idempotency_by_seq` orders the records by sequence so
//! each keyed commit can delete up to [`PRUNE_PER_COMMIT`] expired ones: the records kept stay
//! bounded by the window.

use std::ops::Bound;

use aedb_catalog::expr::Expr;
use aedb_catalog::keys::encode_key;
use aedb_catalog::types::Value;
use sha2::{Digest, Sha256};

use super::apply::Limits;
use super::read_set::{point_version, revalidate, ReadKey, ReadSet};
use super::tables::column_of;
use super::validation::Mutation;
use super::wide::{i128_to_i256, i256_add, u256_add};
use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::stored::accumulators::Acc;
use crate::stored::catalog::load_table;
use crate::stored::idempotency::{self, FingerprintKind, IdempotencyRecord};
use crate::stored::kv;
use crate::stored::rows::read_row;

use super::accumulators;

pub use crate::stored::idempotency::{
    IdempotencyWindow, IDEMPOTENCY_BY_SEQ_TREE, IDEMPOTENCY_TREE, PRUNE_PER_COMMIT,
};

/// Deeper assertion trees are refused.
pub const MAX_ASSERTION_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(pub [u8; 16]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum WriteClass {
    /// Forces an fsync of its commit even in `Batch` mode.
    Economic,
    #[default]
    Standard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CompareOp {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CompareOp::Eq => ordering == Equal,
            CompareOp::Ne => ordering != Equal,
            CompareOp::Gt => ordering == Greater,
            CompareOp::Gte => ordering != Less,
            CompareOp::Lt => ordering == Less,
            CompareOp::Lte => ordering != Greater,
        }
    }
}

/// What a failed [`ReadAssertion`] found (`AedbError::AssertionFailed::actual`): the value,
/// version, existence, count or sum it compared, or `Missing` when there was nothing to compare.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum AssertionActual {
    Missing,
    Bool(bool),
    Version(u64),
    Bytes(Vec<u8>),
    Value(Value),
    Count(u64),
}

impl AssertionActual {
    /// A stored value, or `Missing`.
    pub fn of_bytes(value: Option<Vec<u8>>) -> AssertionActual {
        value.map_or(AssertionActual::Missing, AssertionActual::Bytes)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ReadAssertion {
    KeyEquals {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        expected: Vec<u8>,
    },
    /// Byte-wise comparison of the stored value with `threshold`.
    KeyCompare {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        op: CompareOp,
        threshold: Vec<u8>,
    },
    KeyExists {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        expected: bool,
    },
    /// The sequence of the key's last write (0 when missing).
    KeyVersion {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
        expected_seq: u64,
    },
    /// The sequence of the row's last write (0 when missing).
    RowVersion {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
        expected_seq: u64,
    },
    RowExists {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
        expected: bool,
    },
    RowColumnCompare {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
        column: String,
        op: CompareOp,
        threshold: Value,
    },
    CountCompare {
        project_id: String,
        scope_id: String,
        table_name: String,
        filter: Option<Expr>,
        op: CompareOp,
        threshold: u64,
    },
    /// The sum of a numeric column over the rows passing `filter` (Nulls skipped; an
    /// empty sum is 0), compared with `threshold`.
    SumCompare {
        project_id: String,
        scope_id: String,
        table_name: String,
        column: String,
        filter: Option<Expr>,
        op: CompareOp,
        threshold: Value,
    },
    All(Vec<ReadAssertion>),
    Any(Vec<ReadAssertion>),
    Not(Box<ReadAssertion>),
    // The accumulator assertions follow the others: the idempotency fingerprint encodes a
    // variant by its position, so new variants go last.
    /// The accumulator's effective value less its open exposure is at least `min_amount`.
    AccumulatorAvailableAtLeast {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        min_amount: i64,
    },
    /// Opening `additional_exposure` (> 0) more would stay within the accumulator's margin.
    AccumulatorExposureWithinMargin {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        additional_exposure: i64,
    },
}

impl ReadAssertion {
    fn depth(&self) -> usize {
        match self {
            ReadAssertion::All(v) | ReadAssertion::Any(v) => {
                1 + v.iter().map(Self::depth).max().unwrap_or(0)
            }
            ReadAssertion::Not(a) => 1 + a.depth(),
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct WriteIntent {
    pub mutations: Vec<Mutation>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransactionEnvelope {
    pub caller: Option<CallerContext>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub write_class: WriteClass,
    pub assertions: Vec<ReadAssertion>,
    /// What the transaction read, with the versions it saw: revalidated at commit.
    pub read_set: ReadSet,
    pub write_intent: WriteIntent,
    /// The sequence the transaction read at (0: not given).
    pub base_seq: u64,
}

/// `commit_action_envelope`'s request: an envelope whose idempotency key is mandatory.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionEnvelopeRequest {
    pub caller: Option<CallerContext>,
    pub idempotency_key: IdempotencyKey,
    pub write_class: WriteClass,
    pub base_seq: u64,
    pub assertions: Vec<ReadAssertion>,
    pub mutations: Vec<Mutation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionCommitOutcome {
    Applied,
    /// The key was seen: nothing was written; the sequence is the first commit's.
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionCommitResult {
    pub commit_seq: u64,
    pub durable_head_seq: u64,
    pub outcome: ActionCommitOutcome,
}

/// What the envelope's commit did.
pub(crate) enum EnvelopeOutcome {
    Applied,
    Duplicate(u64),
}

/// The request's fingerprint: SHA-256 over a domain tag and the canonical (postcard) encoding
/// of everything but the caller and the key. The encoding follows the declared order of each
/// type's fields and variants: that order is part of the stored format, pinned by
/// `the_fingerprint_is_pinned` below.
pub(crate) fn fingerprint(envelope: &TransactionEnvelope) -> Result<[u8; 32]> {
    let canonical = postcard::to_stdvec(&(
        &envelope.write_class,
        &envelope.assertions,
        &envelope.read_set,
        &envelope.write_intent,
        envelope.base_seq,
    ))
    .map_err(|e| AedbError::Validation(format!("request cannot be encoded: {e}")))?;
    let mut hash = Sha256::new();
    hash.update(b"aedb idempotency v2\0");
    hash.update(&canonical);
    Ok(hash.finalize().into())
}

/// The fingerprint of records written before the canonical encoding: the `Debug` text.
fn debug_text_fingerprint(envelope: &TransactionEnvelope) -> [u8; 32] {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        envelope.write_class,
        envelope.assertions,
        envelope.read_set,
        envelope.write_intent,
        envelope.base_seq
    );
    Sha256::digest(text.as_bytes()).into()
}

/// Whether a stored record was written for this same request.
fn same_request(
    record: &IdempotencyRecord,
    envelope: &TransactionEnvelope,
    canonical: &[u8; 32],
) -> bool {
    match record.kind {
        FingerprintKind::Canonical => &record.fingerprint == canonical,
        FingerprintKind::DebugText => record.fingerprint == debug_text_fingerprint(envelope),
    }
}

pub(crate) fn apply_envelope(
    txn: &mut LoggedTxn,
    envelope: &TransactionEnvelope,
    limits: &Limits,
) -> Result<EnvelopeOutcome> {
    if envelope.write_intent.mutations.is_empty() {
        return Err(AedbError::Validation(
            "transaction envelope has no mutations".into(),
        ));
    }
    // An envelope with a caller is that caller's: every mutation is authorized, in the
    // commit, before anything is read for it (a caller may not probe data through assertions
    // on a write it may not make).
    if let Some(caller) = &envelope.caller {
        caller.check_external()?;
        for mutation in &envelope.write_intent.mutations {
            super::authz::authorize(txn, caller, mutation)?;
        }
        super::read_authz::authorize_envelope_reads(
            txn,
            caller,
            &envelope.assertions,
            &envelope.read_set,
        )?;
    }
    let fingerprint = fingerprint(envelope)?;
    let record_key = envelope.idempotency_key.as_ref().map(|k| {
        idempotency::record_key(envelope.caller.as_ref().map(|c| c.caller_id.as_str()), &k.0)
    });
    let window = limits.idempotency_window;
    let mut replaced: Option<u64> = None;
    if let Some(record_key) = &record_key {
        if let Some(record) = idempotency::lookup(txn, record_key)? {
            if window.expired(
                record.seq,
                record.written_at_micros,
                txn.seq(),
                limits.now_micros,
            ) {
                replaced = Some(record.seq);
            } else if !same_request(&record, envelope, &fingerprint) {
                return Err(AedbError::Validation(
                    "idempotency key reuse with different request".into(),
                ));
            } else {
                txn.discard();
                return Ok(EnvelopeOutcome::Duplicate(record.seq));
            }
        }
    }
    revalidate(
        txn,
        &envelope.read_set,
        envelope.base_seq,
        limits.rows.max_scan_rows,
    )?;
    check_assertions(txn, &envelope.assertions)?;
    let mut applied = Vec::with_capacity(envelope.write_intent.mutations.len());
    let mut events = Vec::new();
    let wanted = super::lifecycle::wanted(&envelope.write_intent.mutations, limits);
    for mutation in &envelope.write_intent.mutations {
        let caller = envelope.caller.as_ref();
        // Who made a change of grants is the envelope's caller; its read policy narrows what
        // its predicate-driven writes touch.
        let stamped =
            super::authz::stamp_actor(mutation.clone(), caller.map(|c| c.caller_id.as_str()));
        let mutation = match caller {
            Some(caller) => super::policies::restrict(txn, caller, stamped)?,
            None => stamped,
        };
        let noted = wanted.then_some(&mut events);
        applied.push(super::lifecycle::apply_noting(
            txn, &mutation, limits, noted,
        )?);
    }
    super::lifecycle::record(txn, events, limits)?;
    if let Some(record_key) = record_key {
        idempotency::record(
            txn,
            &record_key,
            replaced,
            fingerprint,
            window,
            limits.now_micros,
        )?;
    }
    Ok(EnvelopeOutcome::Applied)
}

/// Evaluate `assertions` in order against the commit's state: the first that does not hold
/// fails the commit with `AssertionFailed` (its index and what was found).
pub(crate) fn check_assertions(txn: &mut LoggedTxn, assertions: &[ReadAssertion]) -> Result<()> {
    for (index, assertion) in assertions.iter().enumerate() {
        if assertion.depth() > MAX_ASSERTION_DEPTH {
            return Err(AedbError::Validation(format!(
                "assertion deeper than {MAX_ASSERTION_DEPTH}"
            )));
        }
        let (holds, actual) = evaluate(txn, assertion)?;
        if !holds {
            return Err(AedbError::AssertionFailed {
                index,
                assertion: Box::new(assertion.clone()),
                actual: Box::new(actual),
            });
        }
    }
    Ok(())
}

/// The sum of one column's values (Nulls skipped; an empty sum is Integer 0): exact for
/// integer kinds (an Integer when it fits, else U64, else I256), IEEE for floats, 256-bit for
/// U256 and I256.
fn sum_values<'a>(values: impl Iterator<Item = &'a Value>) -> Result<Value> {
    enum Sum {
        Empty,
        Int(i128),
        Float(f64),
        Unsigned(U256Bytes),
        Signed(U256Bytes),
    }
    type U256Bytes = [u8; 32];
    let overflow = || AedbError::Validation("SumCompare: the sum overflows".into());
    let mixed = |v: &Value| {
        AedbError::Validation(format!(
            "SumCompare over a non-numeric or mixed value {v:?}"
        ))
    };
    let mut sum = Sum::Empty;
    for value in values {
        sum = match (sum, value) {
            (sum, Value::Null) => sum,
            (Sum::Empty, Value::Float(f)) => Sum::Float(*f),
            (Sum::Float(total), Value::Float(f)) => Sum::Float(total + f),
            (Sum::Empty, Value::U256(v)) => Sum::Unsigned(*v),
            (Sum::Unsigned(total), Value::U256(v)) => {
                Sum::Unsigned(u256_add(&total, v).ok_or_else(overflow)?)
            }
            (Sum::Empty, Value::I256(v)) => Sum::Signed(*v),
            (Sum::Signed(total), Value::I256(v)) => {
                Sum::Signed(i256_add(&total, v).ok_or_else(overflow)?)
            }
            (Sum::Empty, v) => Sum::Int(v.as_i128().ok_or_else(|| mixed(v))?),
            (Sum::Int(total), v) => {
                let i = v.as_i128().ok_or_else(|| mixed(v))?;
                Sum::Int(total.checked_add(i).ok_or_else(overflow)?)
            }
            (_, v) => return Err(mixed(v)),
        };
    }
    Ok(match sum {
        Sum::Empty => Value::Integer(0),
        Sum::Float(f) => Value::Float(f),
        Sum::Unsigned(v) => Value::U256(v),
        Sum::Signed(v) => Value::I256(v),
        Sum::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
            (Ok(small), _) => Value::Integer(small),
            (_, Ok(unsigned)) => Value::U64(unsigned),
            _ => Value::I256(i128_to_i256(i)),
        },
    })
}

/// Whether the assertion holds, and what was found (for the error).
fn evaluate(txn: &mut LoggedTxn, assertion: &ReadAssertion) -> Result<(bool, AssertionActual)> {
    use ReadAssertion as A;
    Ok(match assertion {
        A::KeyEquals {
            project_id,
            scope_id,
            key,
            expected,
        } => {
            let entry = kv::get(txn, project_id, scope_id, key)?;
            (
                entry.as_ref().is_some_and(|e| &e.value == expected),
                AssertionActual::of_bytes(entry.map(|e| e.value)),
            )
        }
        A::KeyCompare {
            project_id,
            scope_id,
            key,
            op,
            threshold,
        } => {
            let entry = kv::get(txn, project_id, scope_id, key)?;
            (
                entry
                    .as_ref()
                    .is_some_and(|e| op.holds(e.value.cmp(threshold))),
                AssertionActual::of_bytes(entry.map(|e| e.value)),
            )
        }
        A::KeyExists {
            project_id,
            scope_id,
            key,
            expected,
        } => {
            let exists = kv::get(txn, project_id, scope_id, key)?.is_some();
            (exists == *expected, AssertionActual::Bool(exists))
        }
        A::KeyVersion {
            project_id,
            scope_id,
            key,
            expected_seq,
        } => {
            let version = kv::get(txn, project_id, scope_id, key)?.map_or(0, |e| e.version);
            (version == *expected_seq, AssertionActual::Version(version))
        }
        A::AccumulatorAvailableAtLeast {
            project_id,
            scope_id,
            accumulator_name,
            min_amount,
        } => {
            let acc = Acc {
                project: project_id,
                scope: scope_id,
                name: accumulator_name,
            };
            accumulators::expire_for_read(txn, acc)?;
            match accumulators::available(txn, acc)? {
                Some(available) => (
                    available >= i128::from(*min_amount),
                    AssertionActual::Value(Value::Integer(clamp_i64(available))),
                ),
                None => (false, AssertionActual::Missing),
            }
        }
        A::AccumulatorExposureWithinMargin {
            project_id,
            scope_id,
            accumulator_name,
            additional_exposure,
        } => {
            if *additional_exposure <= 0 {
                return Err(AedbError::Validation(
                    "additional_exposure must be > 0".into(),
                ));
            }
            let acc = Acc {
                project: project_id,
                scope: scope_id,
                name: accumulator_name,
            };
            accumulators::expire_for_read(txn, acc)?;
            match accumulators::exposure_headroom(txn, acc)? {
                Some((exposure, limit)) => {
                    let requested = exposure + i128::from(*additional_exposure);
                    (
                        requested <= i128::from(limit),
                        AssertionActual::Value(Value::Integer(clamp_i64(requested))),
                    )
                }
                None => (false, AssertionActual::Missing),
            }
        }
        A::RowVersion { .. }
        | A::SumCompare { .. }
        | A::RowExists { .. }
        | A::RowColumnCompare { .. }
        | A::CountCompare { .. } => evaluate_on_table(txn, assertion)?,
        A::All(all) => {
            for a in all {
                let (holds, actual) = evaluate(txn, a)?;
                if !holds {
                    return Ok((false, actual));
                }
            }
            (true, AssertionActual::Bool(true))
        }
        A::Any(any) => {
            let mut last = AssertionActual::Missing;
            for a in any {
                let (holds, actual) = evaluate(txn, a)?;
                if holds {
                    return Ok((true, actual));
                }
                last = actual;
            }
            (false, last)
        }
        A::Not(inner) => {
            // As the original: a `Not` fails because its inner assertion held.
            let (holds, _) = evaluate(txn, inner)?;
            (!holds, AssertionActual::Bool(holds))
        }
    })
}

/// The assertions on a table's rows.
fn evaluate_on_table(
    txn: &mut LoggedTxn,
    assertion: &ReadAssertion,
) -> Result<(bool, AssertionActual)> {
    use ReadAssertion as A;
    Ok(match assertion {
        A::RowVersion {
            project_id,
            scope_id,
            table_name,
            primary_key,
            expected_seq,
        } => {
            let key = ReadKey::TableRow {
                project_id: project_id.clone(),
                scope_id: scope_id.clone(),
                table_name: table_name.clone(),
                primary_key: primary_key.clone(),
            };
            let version = point_version(txn, &key)?.unwrap_or(0);
            (version == *expected_seq, AssertionActual::Version(version))
        }
        A::SumCompare {
            project_id,
            scope_id,
            table_name,
            column,
            filter,
            op,
            threshold,
        } => {
            let schema = load_table(txn, project_id, scope_id, table_name)?;
            let i = column_of(&schema, column)?;
            let everything = Expr::IsNotNull(column.clone());
            let rows = super::row_rules::matching_rows(
                txn,
                &schema,
                filter.as_ref().unwrap_or(&everything),
                None,
                u64::MAX,
            )?;
            let sum = sum_values(rows.iter().filter_map(|(_, r)| r.values.get(i)))?;
            let holds = aedb_catalog::eval::compare(&sum, threshold).is_some_and(|o| op.holds(o));
            (holds, AssertionActual::Value(sum))
        }
        A::RowExists {
            project_id,
            scope_id,
            table_name,
            primary_key,
            expected,
        } => {
            let schema = load_table(txn, project_id, scope_id, table_name)?;
            let exists = read_row(txn, &schema, &encode_key(primary_key))?.is_some();
            (exists == *expected, AssertionActual::Bool(exists))
        }
        A::RowColumnCompare {
            project_id,
            scope_id,
            table_name,
            primary_key,
            column,
            op,
            threshold,
        } => {
            let schema = load_table(txn, project_id, scope_id, table_name)?;
            let i = column_of(&schema, column)?;
            let row = read_row(txn, &schema, &encode_key(primary_key))?;
            let value = row.and_then(|r| r.values.get(i).cloned());
            let holds = value
                .as_ref()
                .and_then(|v| aedb_catalog::eval::compare(v, threshold))
                .is_some_and(|o| op.holds(o));
            (
                holds,
                value.map_or(AssertionActual::Missing, AssertionActual::Value),
            )
        }
        A::CountCompare {
            project_id,
            scope_id,
            table_name,
            filter,
            op,
            threshold,
        } => {
            let schema = load_table(txn, project_id, scope_id, table_name)?;
            let tree = aedb_catalog::namespace::table_tree(schema.table_id);
            let count = match filter {
                None => txn.count(&tree, Bound::Unbounded, Bound::Unbounded)?,
                Some(expr) => super::row_rules::matching_rows(txn, &schema, expr, None, u64::MAX)?
                    .len() as u64,
            };
            (
                op.holds(count.cmp(threshold)),
                AssertionActual::Count(count),
            )
        }
        _ => return Err(AedbError::Validation("not a table assertion".into())),
    })
}

fn clamp_i64(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_by_kind_with_overflow_checks() {
        let sum = |values: Vec<Value>| sum_values(values.iter());
        assert_eq!(sum(vec![]).unwrap(), Value::Integer(0));
        assert_eq!(
            sum(vec![Value::Integer(2), Value::Null, Value::Integer(-5)]).unwrap(),
            Value::Integer(-3)
        );
        assert_eq!(
            sum(vec![Value::U64(u64::MAX - 1), Value::U64(1)]).unwrap(),
            Value::U64(u64::MAX),
            "past i64, still exact"
        );
        assert_eq!(
            sum(vec![Value::U64(u64::MAX), Value::U64(u64::MAX)]).unwrap(),
            Value::I256(i128_to_i256(2 * u64::MAX as i128))
        );
        assert_eq!(
            sum(vec![Value::Float(0.5), Value::Float(1.0)]).unwrap(),
            Value::Float(1.5)
        );
        let minus_one = [0xff; 32];
        let mut two = [0u8; 32];
        two[31] = 2;
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(
            sum(vec![Value::I256(minus_one), Value::I256(two)]).unwrap(),
            Value::I256(one)
        );
        let mut max = [0xff; 32];
        max[0] = 0x7f;
        assert!(
            sum(vec![Value::I256(max), Value::I256(one)]).is_err(),
            "signed overflow"
        );
        assert!(sum(vec![Value::U256([0xff; 32]), Value::U256(one)]).is_err());
        assert!(
            sum(vec![Value::Integer(1), Value::Float(1.0)]).is_err(),
            "mixed kinds"
        );
        assert!(sum(vec![Value::Text("x".into())]).is_err());
    }

    fn sample_envelope() -> TransactionEnvelope {
        TransactionEnvelope {
            caller: Some(CallerContext::new("svc")),
            idempotency_key: Some(IdempotencyKey([7; 16])),
            write_class: WriteClass::Economic,
            assertions: vec![ReadAssertion::KeyExists {
                project_id: "p".into(),
                scope_id: "app".into(),
                key: b"k".to_vec(),
                expected: false,
            }],
            read_set: ReadSet::default(),
            write_intent: WriteIntent {
                mutations: vec![Mutation::KvSet {
                    project_id: "p".into(),
                    scope_id: "app".into(),
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                }],
            },
            base_seq: 3,
        }
    }

    /// The fingerprint is stored: its encoding must not change by accident (a reordered
    /// variant or field, a new dependency version). If this fails on purpose, add a new
    /// `FingerprintKind` rather than changing the bytes old records were written with.
    #[test]
    fn the_fingerprint_is_pinned() {
        let envelope = sample_envelope();
        let print = fingerprint(&envelope).expect("encodable");
        assert_eq!(
            hex::encode(print),
            "2d8c3d9d392dd22857cce3177c5ad242f70be6277e0949c402bf0de8f2e1939b"
        );
        let mut other = sample_envelope();
        other.caller = None;
        other.idempotency_key = None;
        assert_eq!(
            fingerprint(&other).ok(),
            Some(print),
            "caller and key are not part of it"
        );
        other.base_seq = 4;
        assert_ne!(fingerprint(&other).ok(), Some(print));
    }

    /// A record written before the canonical encoding still recognises its own replay.
    #[test]
    fn records_of_the_debug_text_kind_still_match() {
        let envelope = sample_envelope();
        let canonical = fingerprint(&envelope).expect("encodable");
        let old = IdempotencyRecord {
            seq: 1,
            fingerprint: debug_text_fingerprint(&envelope),
            written_at_micros: 0,
            kind: FingerprintKind::DebugText,
        };
        assert!(same_request(&old, &envelope, &canonical));
        let mut changed = sample_envelope();
        changed.base_seq = 9;
        assert!(!same_request(
            &old,
            &changed,
            &fingerprint(&changed).expect("encodable")
        ));
    }
}
