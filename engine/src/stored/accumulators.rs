//! Accumulators: the owner of the registry `sys:accumulators` and of each accumulator's tree
//! `acc:<project>:<scope>:<name>` (`namespace::{ACCUMULATOR_REGISTRY_TREE, accumulator_tree}`).
//! Everything is a B+tree in the data file, logged through the one WAL path, so an
//! accumulator's size on disk is bounded by its options, and in memory by the buffer pool.
//!
//! Registry: key `project \0 scope \0 name`; value, 39 bytes (integers little-endian):
//!
//! | offset | size | field                                                  |
//! |-------:|-----:|--------------------------------------------------------|
//! | 0      | 1    | format version, 1                                      |
//! | 1      | 1    | value type: 0 = BigInt                                 |
//! | 2      | 1    | flags: bit 0 dedupe retention set, bit 1 TTL set       |
//! | 3      | 4    | `exposure_margin_bps` u32                              |
//! | 7      | 8    | `dedupe_retain_commits` u64 (0 when unset)             |
//! | 15     | 8    | `snapshot_every` u64                                   |
//! | 23     | 8    | `exposure_ttl_commits` u64 (0 when unset)              |
//! | 31     | 8    | sequence of the creating commit                        |
//!
//! Accumulator tree, keys by their first byte:
//!
//! | key                                    | value                                          |
//! |----------------------------------------|------------------------------------------------|
//! | `S`                                    | the state ([`State`], layout at `State::encode`) |
//! | `D` ‖ order key u64 BE                 | delta i64 ‖ commit seq u64: the delta log      |
//! | `K` ‖ dedupe key bytes                 | order key u64 ‖ delta i64 ‖ commit seq u64     |
//! | `k` ‖ commit seq u64 BE ‖ dedupe key   | empty: dedupe records by age, for pruning      |
//! | `E` ‖ exposure id bytes                | amount i64 ‖ opening commit seq u64            |
//! | `e` ‖ opening seq u64 BE ‖ exposure id | empty: open exposures by age, for the TTL      |
//!
//! The delta log holds deltas in order-key order; those at or below `last_applied_order_key`
//! are folded into `value` and are deleted once `snapshot_every` of them have gathered.

use std::ops::Bound;

use aedb_catalog::namespace::{accumulator_tree, ACCUMULATOR_REGISTRY_TREE};
use aedb_catalog::schema::AccumulatorValueType;
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};

const DEF_VERSION: u8 = 1;
const DEF_BYTES: usize = 39;
const STATE_KEY: &[u8] = b"S";
const DELTA: u8 = b'D';
/// A kind of record kept with an age index beside it: the record under `tag ‖ id`, and an
/// empty entry under `age_tag ‖ seq BE ‖ id`, so the oldest are found without a scan.
#[derive(Clone, Copy)]
struct Aged {
    tag: u8,
    age_tag: u8,
}

const DEDUPES: Aged = Aged {
    tag: b'K',
    age_tag: b'k',
};
const EXPOSURES: Aged = Aged {
    tag: b'E',
    age_tag: b'e',
};

impl Aged {
    fn key(self, id: &[u8]) -> Vec<u8> {
        tagged(self.tag, &[id])
    }

    fn age_key(self, seq: u64, id: &[u8]) -> Vec<u8> {
        tagged(self.age_tag, &[&seq.to_be_bytes(), id])
    }

    fn get(self, reader: &impl ReadTrees, acc: Acc<'_>, id: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(reader.get(&acc.tree(), &self.key(id))?)
    }

    fn put(
        self,
        txn: &mut LoggedTxn,
        acc: Acc<'_>,
        id: &[u8],
        seq: u64,
        value: &[u8],
    ) -> Result<()> {
        let tree = acc.tree();
        txn.insert(&tree, &self.key(id), value)?;
        txn.insert(&tree, &self.age_key(seq, id), &[])?;
        Ok(())
    }

    fn remove(self, txn: &mut LoggedTxn, acc: Acc<'_>, id: &[u8], seq: u64) -> Result<()> {
        let tree = acc.tree();
        txn.remove(&tree, &self.key(id))?;
        txn.remove(&tree, &self.age_key(seq, id))?;
        Ok(())
    }
}

/// An accumulator's definition, as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccumulatorDef {
    pub value_type: AccumulatorValueType,
    pub dedupe_retain_commits: Option<u64>,
    pub snapshot_every: u64,
    pub exposure_margin_bps: u32,
    pub exposure_ttl_commits: Option<u64>,
    pub created_seq: u64,
}

/// The running state of an accumulator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// The materialized value: every delta up to `last_applied_order_key` folded.
    pub value: i64,
    /// The sum of the deltas not folded yet.
    pub pending: i128,
    /// The greatest order key accepted, if any.
    pub latest_order_key: Option<u64>,
    pub last_applied_order_key: u64,
    /// The commit of the last accepted delta, and of the last fold.
    pub latest_seq: u64,
    pub materialized_seq: u64,
    pub unapplied_deltas: u64,
    /// Folded deltas still in the delta log.
    pub applied_in_log: u64,
    pub total_exposure: i64,
    pub open_exposures: u64,
    pub rejections: u64,
    /// Why folding stopped (the materialized value would overflow).
    pub projector_error: Option<String>,
}

/// An accepted delta's dedupe record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeRecord {
    pub order_key: u64,
    pub delta: i64,
    pub seq: u64,
}

/// An open exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    pub amount: i64,
    pub opened_seq: u64,
}

fn corrupt(what: &str, len: usize) -> AedbError {
    AedbError::Corruption(format!("accumulator {what} of {len} bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn i64_at(bytes: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn registry_key(project: &str, scope: &str, name: &str) -> Vec<u8> {
    [
        project.as_bytes(),
        b"\0",
        scope.as_bytes(),
        b"\0",
        name.as_bytes(),
    ]
    .concat()
}

fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = vec![tag];
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

impl AccumulatorDef {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DEF_BYTES);
        out.push(DEF_VERSION);
        out.push(match self.value_type {
            AccumulatorValueType::BigInt => 0,
        });
        let flags = u8::from(self.dedupe_retain_commits.is_some())
            | (u8::from(self.exposure_ttl_commits.is_some()) << 1);
        out.push(flags);
        out.extend_from_slice(&self.exposure_margin_bps.to_le_bytes());
        out.extend_from_slice(&self.dedupe_retain_commits.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.snapshot_every.to_le_bytes());
        out.extend_from_slice(&self.exposure_ttl_commits.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.created_seq.to_le_bytes());
        debug_assert_eq!(out.len(), DEF_BYTES);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = || corrupt("definition", bytes.len());
        if bytes.len() != DEF_BYTES || bytes[0] != DEF_VERSION || bytes[1] != 0 {
            return Err(bad());
        }
        let flags = bytes[2];
        let margin = u32::from_le_bytes(bytes[3..7].try_into().map_err(|_| bad())?);
        let retain = u64_at(bytes, 7).ok_or_else(bad)?;
        let ttl = u64_at(bytes, 23).ok_or_else(bad)?;
        Ok(AccumulatorDef {
            value_type: AccumulatorValueType::BigInt,
            dedupe_retain_commits: (flags & 1 != 0).then_some(retain),
            snapshot_every: u64_at(bytes, 15).ok_or_else(bad)?,
            exposure_margin_bps: margin,
            exposure_ttl_commits: (flags & 2 != 0).then_some(ttl),
            created_seq: u64_at(bytes, 31).ok_or_else(bad)?,
        })
    }
}

impl State {
    /// `value` i64 ‖ `pending` i128 ‖ flags u8 (bit 0: an order key was accepted) ‖
    /// `latest_order_key` ‖ `last_applied_order_key` ‖ `latest_seq` ‖ `materialized_seq` ‖
    /// `unapplied_deltas` ‖ `applied_in_log` (u64 each) ‖ `total_exposure` i64 ‖
    /// `open_exposures` ‖ `rejections` (u64 each) ‖ projector error (UTF-8, the rest; none
    /// when empty). 97 bytes and the error.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(97);
        out.extend_from_slice(&self.value.to_le_bytes());
        out.extend_from_slice(&self.pending.to_le_bytes());
        out.push(u8::from(self.latest_order_key.is_some()));
        for n in [
            self.latest_order_key.unwrap_or(0),
            self.last_applied_order_key,
            self.latest_seq,
            self.materialized_seq,
            self.unapplied_deltas,
            self.applied_in_log,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.total_exposure.to_le_bytes());
        out.extend_from_slice(&self.open_exposures.to_le_bytes());
        out.extend_from_slice(&self.rejections.to_le_bytes());
        if let Some(err) = &self.projector_error {
            out.extend_from_slice(err.as_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = || corrupt("state", bytes.len());
        let pending = i128::from_le_bytes(
            bytes
                .get(8..24)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        let has_latest = *bytes.get(24).ok_or_else(bad)? != 0;
        let n = |i: usize| u64_at(bytes, 25 + 8 * i).ok_or_else(bad);
        let error = bytes.get(97..).ok_or_else(bad)?;
        Ok(State {
            value: i64_at(bytes, 0).ok_or_else(bad)?,
            pending,
            latest_order_key: has_latest.then_some(n(0)?),
            last_applied_order_key: n(1)?,
            latest_seq: n(2)?,
            materialized_seq: n(3)?,
            unapplied_deltas: n(4)?,
            applied_in_log: n(5)?,
            total_exposure: i64_at(bytes, 73).ok_or_else(bad)?,
            open_exposures: n(7)?,
            rejections: n(8)?,
            projector_error: if error.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(error).into_owned())
            },
        })
    }

    /// Materialized value plus the deltas not folded yet.
    pub fn effective(&self) -> i128 {
        i128::from(self.value) + self.pending
    }
}

/// One accumulator, named: the handle every read and write below takes.
#[derive(Debug, Clone, Copy)]
pub struct Acc<'a> {
    pub project: &'a str,
    pub scope: &'a str,
    pub name: &'a str,
}

impl Acc<'_> {
    fn tree(&self) -> String {
        accumulator_tree(self.project, self.scope, self.name)
    }

    /// `p.s.n`, as errors name it.
    pub fn dotted(&self) -> String {
        format!("{}.{}.{}", self.project, self.scope, self.name)
    }
}

// ---- the registry ----

pub fn definition(reader: &impl ReadTrees, acc: Acc<'_>) -> Result<Option<AccumulatorDef>> {
    reader
        .get(
            ACCUMULATOR_REGISTRY_TREE,
            &registry_key(acc.project, acc.scope, acc.name),
        )?
        .map(|bytes| AccumulatorDef::decode(&bytes))
        .transpose()
}

/// The names of a scope's accumulators, in order.
pub fn names_in_scope(reader: &impl ReadTrees, project: &str, scope: &str) -> Result<Vec<String>> {
    let prefix = [project.as_bytes(), b"\0", scope.as_bytes(), b"\0"].concat();
    let mut names = Vec::new();
    for item in reader.prefix(ACCUMULATOR_REGISTRY_TREE, &prefix, false)? {
        let (key, _) = item?;
        let name = String::from_utf8(key[prefix.len()..].to_vec())
            .map_err(|_| AedbError::Corruption("accumulator name is not UTF-8".into()))?;
        names.push(name);
    }
    Ok(names)
}

/// Register `acc` with an empty state.
pub fn create(txn: &mut LoggedTxn, acc: Acc<'_>, def: &AccumulatorDef) -> Result<()> {
    txn.insert(
        ACCUMULATOR_REGISTRY_TREE,
        &registry_key(acc.project, acc.scope, acc.name),
        &def.encode(),
    )?;
    let tree = acc.tree();
    txn.drop_tree(&tree)?;
    txn.create_tree(&tree)?;
    put_state(txn, acc, &State::default())
}

/// Remove `acc` and everything it holds.
pub fn drop(txn: &mut LoggedTxn, acc: Acc<'_>) -> Result<()> {
    txn.remove(
        ACCUMULATOR_REGISTRY_TREE,
        &registry_key(acc.project, acc.scope, acc.name),
    )?;
    txn.drop_tree(&acc.tree())?;
    Ok(())
}

// ---- state ----

pub fn state(reader: &impl ReadTrees, acc: Acc<'_>) -> Result<State> {
    match reader.get(&acc.tree(), STATE_KEY)? {
        Some(bytes) => State::decode(&bytes),
        None => Err(AedbError::Corruption(format!(
            "accumulator {} has no state record",
            acc.dotted()
        ))),
    }
}

pub fn put_state(txn: &mut LoggedTxn, acc: Acc<'_>, state: &State) -> Result<()> {
    txn.insert(&acc.tree(), STATE_KEY, &state.encode())?;
    Ok(())
}

// ---- the delta log ----

pub fn append_delta(txn: &mut LoggedTxn, acc: Acc<'_>, order_key: u64, delta: i64) -> Result<()> {
    let mut value = delta.to_le_bytes().to_vec();
    value.extend_from_slice(&txn.seq().to_le_bytes());
    txn.insert(
        &acc.tree(),
        &tagged(DELTA, &[&order_key.to_be_bytes()]),
        &value,
    )?;
    Ok(())
}

/// Deltas after `after` in order-key order, at most `limit`: (order key, delta).
pub fn deltas_after(
    reader: &impl ReadTrees,
    acc: Acc<'_>,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<(u64, i64)>> {
    let lower = match after {
        Some(k) => Bound::Excluded(tagged(DELTA, &[&k.to_be_bytes()])),
        None => Bound::Included(vec![DELTA]),
    };
    let upper = vec![DELTA + 1];
    let mut out = Vec::new();
    let range = reader.range(
        &acc.tree(),
        lower.as_ref().map(Vec::as_slice),
        Bound::Excluded(upper.as_slice()),
        false,
    )?;
    for item in range.take(limit) {
        let (key, value) = item?;
        let order = key
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt("delta key", key.len()))?;
        let delta = i64_at(&value, 0).ok_or_else(|| corrupt("delta", value.len()))?;
        out.push((order, delta));
    }
    Ok(out)
}

/// Delete the oldest deltas of the log up to and including `through`, at most `limit`; how
/// many.
pub fn compact_deltas(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    through: u64,
    limit: usize,
) -> Result<u64> {
    let keys: Vec<Vec<u8>> = {
        let upper = tagged(DELTA, &[&through.to_be_bytes()]);
        let lower = vec![DELTA];
        txn.range(
            &acc.tree(),
            Bound::Included(lower.as_slice()),
            Bound::Included(upper.as_slice()),
            false,
        )?
        .take(limit)
        .map(|item| item.map(|(k, _)| k))
        .collect::<std::result::Result<_, _>>()?
    };
    let tree = acc.tree();
    for key in &keys {
        txn.remove(&tree, key)?;
    }
    Ok(keys.len() as u64)
}

// ---- dedupe records ----

pub fn dedupe(reader: &impl ReadTrees, acc: Acc<'_>, key: &str) -> Result<Option<DedupeRecord>> {
    let Some(value) = DEDUPES.get(reader, acc, key.as_bytes())? else {
        return Ok(None);
    };
    let bad = || corrupt("dedupe record", value.len());
    Ok(Some(DedupeRecord {
        order_key: u64_at(&value, 0).ok_or_else(bad)?,
        delta: i64_at(&value, 8).ok_or_else(bad)?,
        seq: u64_at(&value, 16).ok_or_else(bad)?,
    }))
}

pub fn put_dedupe(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    key: &str,
    record: DedupeRecord,
) -> Result<()> {
    let mut value = record.order_key.to_le_bytes().to_vec();
    value.extend_from_slice(&record.delta.to_le_bytes());
    value.extend_from_slice(&record.seq.to_le_bytes());
    DEDUPES.put(txn, acc, key.as_bytes(), record.seq, &value)
}

/// Forget one dedupe record (past its retention, before its key is used again).
pub fn forget_dedupe(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    key: &str,
    record: DedupeRecord,
) -> Result<()> {
    DEDUPES.remove(txn, acc, key.as_bytes(), record.seq)
}

/// The entries of an age index (`age_tag` ‖ seq BE ‖ id) with a seq below `before`, oldest
/// first, at most `limit`: (seq, id).
fn aged(
    txn: &LoggedTxn,
    acc: Acc<'_>,
    kind: Aged,
    before: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>> {
    let lower = vec![kind.age_tag];
    let upper = kind.age_key(before, &[]);
    let mut out = Vec::new();
    let range = txn.range(
        &acc.tree(),
        Bound::Included(lower.as_slice()),
        Bound::Excluded(upper.as_slice()),
        false,
    )?;
    for item in range.take(limit) {
        let (key, _) = item?;
        let seq = key
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt("age key", key.len()))?;
        out.push((seq, key[9..].to_vec()));
    }
    Ok(out)
}

/// Forget at most `limit` dedupe records written before commit `before`; how many.
pub fn prune_dedupe(txn: &mut LoggedTxn, acc: Acc<'_>, before: u64, limit: usize) -> Result<usize> {
    let old = aged(txn, acc, DEDUPES, before, limit)?;
    for (seq, key) in &old {
        DEDUPES.remove(txn, acc, key, *seq)?;
    }
    Ok(old.len())
}

// ---- exposures ----

pub fn exposure(reader: &impl ReadTrees, acc: Acc<'_>, id: &str) -> Result<Option<Exposure>> {
    let Some(value) = EXPOSURES.get(reader, acc, id.as_bytes())? else {
        return Ok(None);
    };
    let bad = || corrupt("exposure", value.len());
    Ok(Some(Exposure {
        amount: i64_at(&value, 0).ok_or_else(bad)?,
        opened_seq: u64_at(&value, 8).ok_or_else(bad)?,
    }))
}

pub fn open_exposure(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    id: &str,
    exposure: Exposure,
) -> Result<()> {
    let mut value = exposure.amount.to_le_bytes().to_vec();
    value.extend_from_slice(&exposure.opened_seq.to_le_bytes());
    EXPOSURES.put(txn, acc, id.as_bytes(), exposure.opened_seq, &value)
}

pub fn close_exposure(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    id: &str,
    exposure: Exposure,
) -> Result<()> {
    EXPOSURES.remove(txn, acc, id.as_bytes(), exposure.opened_seq)
}

/// Open exposures opened before commit `before`, oldest first, at most `limit`: (id, exposure).
pub fn exposures_opened_before(
    txn: &LoggedTxn,
    acc: Acc<'_>,
    before: u64,
    limit: usize,
) -> Result<Vec<(String, Exposure)>> {
    let mut out = Vec::new();
    for (_, id) in aged(txn, acc, EXPOSURES, before, limit)? {
        let id = String::from_utf8(id)
            .map_err(|_| AedbError::Corruption("exposure id is not UTF-8".into()))?;
        match exposure(txn, acc, &id)? {
            Some(e) => out.push((id, e)),
            None => {
                return Err(AedbError::Corruption(format!(
                    "accumulator {}: exposure {id} aged but not open",
                    acc.dotted()
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip_with_pinned_bytes() {
        let def = AccumulatorDef {
            value_type: AccumulatorValueType::BigInt,
            dedupe_retain_commits: Some(86_400),
            snapshot_every: 10_000,
            exposure_margin_bps: 1_000,
            exposure_ttl_commits: None,
            created_seq: 7,
        };
        let bytes = def.encode();
        assert_eq!(
            hex::encode(&bytes),
            "010001e803000080510100000000001027000000000000000000000000000007000000000000\
             00"
        );
        assert_eq!(AccumulatorDef::decode(&bytes).unwrap(), def);
        assert!(AccumulatorDef::decode(&bytes[..38]).is_err());
    }

    #[test]
    fn states_round_trip() {
        let state = State {
            value: -5,
            pending: i128::from(i64::MAX) * 3,
            latest_order_key: Some(9),
            last_applied_order_key: 8,
            latest_seq: 20,
            materialized_seq: 19,
            unapplied_deltas: 1,
            applied_in_log: 4,
            total_exposure: 300,
            open_exposures: 2,
            rejections: 6,
            projector_error: Some("overflow at order key 9".into()),
        };
        assert_eq!(State::decode(&state.encode()).unwrap(), state);
        let empty = State::default();
        assert_eq!(empty.encode().len(), 97);
        assert_eq!(State::decode(&empty.encode()).unwrap(), empty);
        assert!(State::decode(&empty.encode()[..90]).is_err());
    }
}
