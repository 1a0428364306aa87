//! What the accumulator model suites share: a reference model of accumulators (behaviour spec
//! section 6 as built: every margin refusal counted, the projector folding in the committing
//! transaction, a delta that would take the value past i64 refused with `Overflow`), random
//! operations resolved against it into concrete calls, the calls run on an `AedbInstance`, and
//! the comparison of every readable value with the model.
//!
//! Dedupe retention and the exposure TTL are modelled exactly, by commit sequence: a call's
//! commit is the one after the visible head when it is made. A dedupe record is remembered
//! while `now − seq ≤ retain`, and is forgotten (pruned, oldest first, at most 64 a commit) by
//! each accepted delta once past that; an exposure opened at `seq` is closed (oldest first, at
//! most 64 a commit) by the first accumulator operation of the accumulator that commits at
//! `now > seq + ttl`, before anything else it does.
#![allow(dead_code)]

use std::collections::BTreeMap;

use aedb::commit::{CommitResult, IdempotencyOutcome};
use aedb::query::plan::ConsistencyMode;
use aedb::{AccumulatorLag, AedbError, AedbInstance};
use proptest::prelude::*;

pub const PROJECT: &str = "m";
pub const SCOPE: &str = "app";
pub const NAMES: [&str; 2] = ["a0", "a1"];
/// Names no accumulator is ever created under.
pub const MISSING: &str = "nope";
/// Dedupe keys and exposure ids come from small pools, so retries, reuse with another
/// payload, and releases of open and unknown ids all happen.
pub const KEY_POOL: u8 = 24;
pub const ID_POOL: u8 = 10;
/// Ids drawn at or above [`ID_POOL`] name an open exposure (the n-th, cyclically), if any.
const ID_PICKS: u8 = ID_POOL + 4;
const BPS: i128 = 10_000;
/// Records pruned and exposures expired per commit at most.
const UPKEEP_BATCH: usize = 64;
/// Longest dedupe key or exposure id.
pub const MAX_ID_BYTES: usize = 512;

/// How an accumulator is created (fixed per test case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccDef {
    pub margin_bps: u32,
    pub snapshot_every: u64,
    pub retain: Option<u64>,
    pub ttl: Option<u64>,
}

impl AccDef {
    /// No retention limit, no TTL.
    pub fn plain(margin_bps: u32, snapshot_every: u64) -> Self {
        AccDef {
            margin_bps,
            snapshot_every,
            retain: None,
            ttl: None,
        }
    }
}

/// One accumulator's state as the model sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccModel {
    /// The value: every accepted delta, folded in its own commit.
    pub value: i64,
    pub latest_order: Option<u64>,
    pub last_applied: u64,
    /// Commit of the newest accepted delta (and of the newest fold: the same).
    pub latest_seq: u64,
    /// Folded deltas still in the delta log (compacted once `snapshot_every` gather).
    pub applied_in_log: u64,
    /// dedupe key → (order key, delta, commit): the records stored (remembered or not).
    pub dedupe: BTreeMap<String, (u64, i64, u64)>,
    /// exposure id → (amount, opening commit)
    pub exposures: BTreeMap<String, (i64, u64)>,
    pub total_exposure: i64,
    pub rejections: u64,
}

impl AccModel {
    /// floor(value × (10 000 − margin) / 10 000), clamped to i64.
    pub fn limit(&self, margin_bps: u32) -> i64 {
        let keep = BPS - i128::from(margin_bps);
        (i128::from(self.value) * keep)
            .div_euclid(BPS)
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The value less the open exposure, clamped to i64.
    pub fn available(&self) -> i64 {
        (i128::from(self.value) - i128::from(self.total_exposure))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Rows of the accumulator's tree: the state, the folded deltas not compacted yet, two
    /// per dedupe record and two per open exposure.
    pub fn stored_entries(&self) -> u64 {
        1 + self.applied_in_log + 2 * self.dedupe.len() as u64 + 2 * self.exposures.len() as u64
    }

    /// Close the exposures past their TTL at commit `now`, oldest first, a batch at most.
    fn expire(&mut self, def: &AccDef, now: u64) {
        let Some(before) = def.ttl.and_then(|ttl| now.checked_sub(ttl)) else {
            return;
        };
        let mut due: Vec<(u64, String)> = self
            .exposures
            .iter()
            .filter(|(_, (_, opened))| *opened < before)
            .map(|(id, (_, opened))| (*opened, id.clone()))
            .collect();
        due.sort();
        for (_, id) in due.into_iter().take(UPKEEP_BATCH) {
            if let Some((amount, _)) = self.exposures.remove(&id) {
                self.total_exposure -= amount;
            }
        }
    }

    /// Forget the dedupe records past their retention at commit `now`, oldest first, a batch
    /// at most; compact the delta log.
    fn clean_up(&mut self, def: &AccDef, now: u64) {
        if let Some(before) = def.retain.and_then(|retain| now.checked_sub(retain)) {
            let mut due: Vec<(u64, String)> = self
                .dedupe
                .iter()
                .filter(|(_, (_, _, seq))| *seq < before)
                .map(|(key, (_, _, seq))| (*seq, key.clone()))
                .collect();
            due.sort();
            for (_, key) in due.into_iter().take(UPKEEP_BATCH) {
                self.dedupe.remove(&key);
            }
        }
        if self.applied_in_log >= def.snapshot_every {
            self.applied_in_log -= self.applied_in_log.min(256);
        }
    }
}

/// What a call returned, by kind (and the numbers the spec puts in the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Ok,
    DedupeConflict,
    OrderKey { latest: u64, got: u64 },
    UnknownExposure,
    Margin { total: i64, allowed: i64 },
    BatchDuplicate,
    ExposureIdDifferent,
    AmountNotPositive,
    Blank,
    TooLong,
    Unhealthy,
    Missing,
    AlreadyExists,
    Overflow,
    Other(String),
}

fn number(text: &str) -> i64 {
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

pub fn classify<T>(result: &Result<T, AedbError>) -> Class {
    let err = match result {
        Ok(_) => return Class::Ok,
        Err(err) => err,
    };
    match err {
        AedbError::Overflow => Class::Overflow,
        AedbError::AlreadyExists { .. } => Class::AlreadyExists,
        AedbError::Validation(m) => {
            if m.starts_with("dedupe key already used with different payload") {
                Class::DedupeConflict
            } else if let Some(rest) =
                m.strip_prefix("order key must be strictly increasing (latest=")
            {
                let (latest, rest) = rest.split_once(", got=").expect("order key message");
                let got = rest.trim_end_matches(')');
                Class::OrderKey {
                    latest: latest.parse().expect("latest"),
                    got: got.parse().expect("got"),
                }
            } else if m.starts_with("release requested for unknown exposure id") {
                Class::UnknownExposure
            } else if let Some(rest) = m.strip_prefix("exposure margin exceeded: requested_total=")
            {
                let (total, allowed) = rest.split_once(", allowed=").expect("margin message");
                Class::Margin {
                    total: number(total),
                    allowed: number(allowed),
                }
            } else if m.starts_with("duplicate exposure id with different amount in batch") {
                Class::BatchDuplicate
            } else if m.starts_with("exposure id already exists with different amount") {
                Class::ExposureIdDifferent
            } else if m.starts_with("exposure amount must be > 0") {
                Class::AmountNotPositive
            } else if m.contains("must not be blank") {
                Class::Blank
            } else if m.ends_with(&format!("bytes exceeds {MAX_ID_BYTES}")) {
                Class::TooLong
            } else if m.starts_with("accumulator projector unhealthy") {
                Class::Unhealthy
            } else if m.starts_with("accumulator does not exist") {
                Class::Missing
            } else {
                Class::Other(m.clone())
            }
        }
        other => Class::Other(other.to_string()),
    }
}

/// A random operation; resolved against the model into a [`Call`].
#[derive(Debug, Clone)]
pub enum Op {
    /// `key`: a pool key, or `None` for a key never used before. `order`: how the order key
    /// relates to the newest accepted one.
    Accumulate {
        acc: usize,
        delta: i64,
        key: Option<u8>,
        order: OrderPick,
        release: Option<u8>,
    },
    /// Repeat a stored delta exactly (its key, order key and delta), the `key`-th one
    /// cyclically; with none stored, a new delta under pool key `key`.
    Retry {
        acc: usize,
        key: u8,
        release: Option<u8>,
    },
    Expose {
        acc: usize,
        amount: i64,
        id: u8,
        preflight: bool,
    },
    ExposeBatch {
        acc: usize,
        items: Vec<(i64, u8)>,
    },
    Release {
        acc: usize,
        id: u8,
    },
    /// Expose an open exposure again with its amount (a retry: no change), if any is open.
    ExposeAgain {
        acc: usize,
        pick: u8,
    },
    /// Drop and create again: a fresh accumulator under the same name.
    Recreate {
        acc: usize,
    },
    Drop {
        acc: usize,
    },
    Create {
        acc: usize,
    },
    /// An operation on an accumulator that does not exist.
    OnMissing {
        delta: i64,
    },
    /// Shut down and open the same directory again.
    Reopen,
}

#[derive(Debug, Clone, Copy)]
pub enum OrderPick {
    /// The newest accepted order key plus this (≥ 1).
    After(u64),
    /// The newest accepted order key minus this (0: the same key): refused unless a retry.
    Stale(u64),
}

/// A concrete call of the API.
#[derive(Debug, Clone)]
pub enum Call {
    Accumulate {
        name: String,
        delta: i64,
        key: String,
        order: u64,
        release: Option<String>,
    },
    Expose {
        name: String,
        amount: i64,
        id: String,
        preflight: bool,
    },
    ExposeBatch {
        name: String,
        items: Vec<(i64, String)>,
    },
    Release {
        name: String,
        id: String,
    },
    Create {
        name: String,
        def: AccDef,
    },
    Drop {
        name: String,
    },
}

pub fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        30 => -300i64..1_500,
        2 => (i64::MAX / 3)..=i64::MAX,
        1 => i64::MIN..=(i64::MIN / 3),
        1 => Just(0i64),
    ]
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        20 => 1i64..400,
        1 => -3i64..=0,
        1 => (i64::MAX - 10)..=i64::MAX,
        1 => 1_000_000i64..(1i64 << 62),
    ]
}

fn order_pick() -> impl Strategy<Value = OrderPick> {
    prop_oneof![
        8 => (1u64..4).prop_map(OrderPick::After),
        1 => (1u64 << 40..1u64 << 41).prop_map(OrderPick::After),
        2 => (0u64..3).prop_map(OrderPick::Stale),
    ]
}

pub fn op(reopen_weight: u32) -> impl Strategy<Value = Op> {
    let acc = 0usize..NAMES.len();
    let id = 0u8..ID_PICKS;
    let key = proptest::option::weighted(0.6, 0u8..KEY_POOL);
    prop_oneof![
        12 => (acc.clone(), delta(), key, order_pick(), proptest::option::weighted(0.2, id.clone()))
            .prop_map(|(acc, delta, key, order, release)| Op::Accumulate { acc, delta, key, order, release }),
        4 => (acc.clone(), any::<u8>(), proptest::option::weighted(0.3, id.clone()))
            .prop_map(|(acc, key, release)| Op::Retry { acc, key, release }),
        7 => (acc.clone(), amount(), id.clone(), any::<bool>())
            .prop_map(|(acc, amount, id, preflight)| Op::Expose { acc, amount, id, preflight }),
        2 => (acc.clone(), any::<u8>()).prop_map(|(acc, pick)| Op::ExposeAgain { acc, pick }),
        3 => (acc.clone(), proptest::collection::vec((amount(), id.clone()), 0..5))
            .prop_map(|(acc, items)| Op::ExposeBatch { acc, items }),
        6 => (acc.clone(), 0u8..ID_PICKS + 8).prop_map(|(acc, id)| Op::Release { acc, id }),
        1 => acc.clone().prop_map(|acc| Op::Recreate { acc }),
        1 => acc.clone().prop_map(|acc| Op::Drop { acc }),
        3 => acc.prop_map(|acc| Op::Create { acc }),
        1 => delta().prop_map(|delta| Op::OnMissing { delta }),
        reopen_weight => Just(Op::Reopen),
    ]
}

pub fn defs() -> impl Strategy<Value = Vec<AccDef>> {
    proptest::collection::vec(
        (
            prop_oneof![3 => Just(0u32), 3 => Just(1_000u32), 3 => 1u32..10_000, 1 => Just(9_999u32)],
            1u64..6,
            prop_oneof![2 => Just(None), 1 => (0u64..12).prop_map(Some)],
            prop_oneof![2 => Just(None), 1 => (0u64..16).prop_map(Some)],
        )
            .prop_map(|(margin_bps, snapshot_every, retain, ttl)| AccDef {
                margin_bps,
                snapshot_every,
                retain,
                ttl,
            }),
        NAMES.len(),
    )
}

fn pool_id(id: u8) -> String {
    // The last id of the pool is blank and the one before too long: refused wherever an id
    // is given. The one before that is as long as an id may be.
    match ID_POOL - id {
        1 => " ".into(),
        2 => "e".repeat(MAX_ID_BYTES + 1),
        3 => "e".repeat(MAX_ID_BYTES),
        _ => format!("e{id}"),
    }
}

fn pool_key(key: u8) -> String {
    // The last key is too long, the one before as long as a key may be.
    match KEY_POOL - key {
        1 => "d".repeat(MAX_ID_BYTES + 1),
        2 => "d".repeat(MAX_ID_BYTES),
        _ => format!("d{key}"),
    }
}

/// `Blank` or `TooLong` for an id the engine refuses to store.
fn bad_id(id: &str) -> Option<Class> {
    if id.trim().is_empty() {
        Some(Class::Blank)
    } else if id.len() > MAX_ID_BYTES {
        Some(Class::TooLong)
    } else {
        None
    }
}

/// The accumulators (by index into [`NAMES`]) and what they hold.
#[derive(Debug, Clone)]
pub struct Model {
    pub defs: Vec<AccDef>,
    pub accs: BTreeMap<String, AccModel>,
    fresh: u64,
}

impl Model {
    /// Every accumulator of `defs` created and empty.
    pub fn new(defs: Vec<AccDef>) -> Self {
        let accs = NAMES
            .iter()
            .take(defs.len())
            .map(|n| (n.to_string(), AccModel::default()))
            .collect();
        Model {
            defs,
            accs,
            fresh: 0,
        }
    }

    pub fn def_of(&self, name: &str) -> Option<AccDef> {
        NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.defs.get(i).copied())
    }

    /// The exposure id `id` names on accumulator `name`: one of the pool, or an open one.
    fn id_name(&self, name: &str, id: u8) -> String {
        if id < ID_POOL {
            return pool_id(id);
        }
        match self.accs.get(name) {
            Some(acc) if !acc.exposures.is_empty() => {
                let n = usize::from(id - ID_POOL) % acc.exposures.len();
                acc.exposures.keys().nth(n).cloned().unwrap_or_default()
            }
            _ => pool_id(0),
        }
    }

    /// The calls `op` makes (none for `Reopen`; two for `Recreate`).
    pub fn resolve(&mut self, op: &Op) -> Vec<Call> {
        let name = |acc: usize| NAMES[acc % NAMES.len()].to_string();
        match op {
            Op::Accumulate {
                acc,
                delta,
                key,
                order,
                release,
            } => {
                let name = name(*acc);
                let latest = self.accs.get(&name).and_then(|a| a.latest_order);
                let order = match (order, latest) {
                    (OrderPick::After(n), Some(l)) => l.saturating_add(*n),
                    (OrderPick::After(n), None) => *n,
                    (OrderPick::Stale(n), Some(l)) => l.saturating_sub(*n),
                    (OrderPick::Stale(n), None) => *n,
                };
                let key = match key {
                    Some(k) => pool_key(*k),
                    None => {
                        self.fresh += 1;
                        format!("fresh{}", self.fresh)
                    }
                };
                vec![Call::Accumulate {
                    delta: *delta,
                    key,
                    order,
                    release: release.map(|id| self.id_name(&name, id)),
                    name,
                }]
            }
            Op::Retry { acc, key, release } => {
                let release = release.map(|id| self.id_name(&name(*acc), id));
                let name = name(*acc);
                let acc = self.accs.get(&name);
                // A stored record (the n-th, remembered or not) repeated exactly; with none, a
                // new delta under a pool key.
                let stored = acc
                    .filter(|a| !a.dedupe.is_empty())
                    .and_then(|a| a.dedupe.iter().nth(usize::from(*key) % a.dedupe.len()))
                    .map(|(k, (o, d, _))| (k.clone(), *o, *d));
                let (key, order, delta) = stored.unwrap_or_else(|| {
                    let next = acc.and_then(|a| a.latest_order).map_or(0, |l| l + 1);
                    (pool_key(*key % KEY_POOL), next, 7)
                });
                vec![Call::Accumulate {
                    name,
                    delta,
                    key,
                    order,
                    release,
                }]
            }
            Op::Expose {
                acc,
                amount,
                id,
                preflight,
            } => vec![Call::Expose {
                name: name(*acc),
                amount: *amount,
                id: self.id_name(&name(*acc), *id),
                preflight: *preflight,
            }],
            Op::ExposeAgain { acc, pick } => {
                let name = name(*acc);
                let open = self
                    .accs
                    .get(&name)
                    .filter(|a| !a.exposures.is_empty())
                    .map(|a| {
                        let n = usize::from(*pick) % a.exposures.len();
                        a.exposures
                            .iter()
                            .nth(n)
                            .map(|(id, (amount, _))| (id.clone(), *amount))
                    });
                let (id, amount) = open.flatten().unwrap_or_else(|| (pool_id(0), 50));
                vec![Call::Expose {
                    name,
                    amount,
                    id,
                    preflight: false,
                }]
            }
            Op::ExposeBatch { acc, items } => vec![Call::ExposeBatch {
                name: name(*acc),
                items: items
                    .iter()
                    .map(|(a, id)| (*a, self.id_name(&name(*acc), *id)))
                    .collect(),
            }],
            Op::Release { acc, id } => vec![Call::Release {
                name: name(*acc),
                id: self.id_name(&name(*acc), *id),
            }],
            Op::Recreate { acc } => {
                let def = self.defs[*acc % self.defs.len()];
                vec![
                    Call::Drop { name: name(*acc) },
                    Call::Create {
                        name: name(*acc),
                        def,
                    },
                ]
            }
            Op::Drop { acc } => vec![Call::Drop { name: name(*acc) }],
            Op::Create { acc } => {
                let def = self.defs[*acc % self.defs.len()];
                vec![Call::Create {
                    name: name(*acc),
                    def,
                }]
            }
            Op::OnMissing { delta } => {
                self.fresh += 1;
                vec![Call::Accumulate {
                    name: MISSING.into(),
                    delta: *delta,
                    key: format!("fresh{}", self.fresh),
                    order: 1,
                    release: None,
                }]
            }
            Op::Reopen => vec![],
        }
    }

    /// What `call` must return, applying its effect; `now` is the sequence its commit gets
    /// (the one after the visible head).
    pub fn apply(&mut self, call: &Call, now: u64) -> Class {
        match call {
            Call::Create { name, .. } => {
                if self.accs.contains_key(name) {
                    return Class::AlreadyExists;
                }
                self.accs.insert(name.clone(), AccModel::default());
                Class::Ok
            }
            Call::Drop { name } => {
                self.accs.remove(name);
                Class::Ok
            }
            Call::Accumulate {
                name,
                delta,
                key,
                order,
                release,
            } => {
                if let Some(bad) = bad_id(key).or_else(|| release.as_deref().and_then(bad_id)) {
                    return bad;
                }
                let def = self.def_of(name);
                let (Some(acc), Some(def)) = (self.accs.get_mut(name), def) else {
                    return Class::Missing;
                };
                // What the commit does, kept only if it commits.
                let mut next = acc.clone();
                next.expire(&def, now);
                if let Some(&(o, d, seq)) = next.dedupe.get(key) {
                    let remembered = def.retain.is_none_or(|r| now.saturating_sub(seq) <= r);
                    if remembered {
                        if (o, d) != (*order, *delta) {
                            return Class::DedupeConflict;
                        }
                        // An exact retry: nothing but expiry, the release skipped.
                        *acc = next;
                        return Class::Ok;
                    }
                    next.dedupe.remove(key);
                }
                if let Some(latest) = next.latest_order {
                    if *order <= latest {
                        return Class::OrderKey {
                            latest,
                            got: *order,
                        };
                    }
                }
                // The release is looked up before the delta is folded.
                if let Some(id) = release {
                    match next.exposures.remove(id) {
                        Some((amount, _)) => next.total_exposure -= amount,
                        None => return Class::UnknownExposure,
                    }
                }
                let Some(value) = next.value.checked_add(*delta) else {
                    return Class::Overflow;
                };
                next.dedupe.insert(key.clone(), (*order, *delta, now));
                next.value = value;
                next.latest_order = Some(*order);
                next.last_applied = *order;
                next.latest_seq = now;
                next.applied_in_log += 1;
                next.clean_up(&def, now);
                *acc = next;
                Class::Ok
            }
            Call::Expose {
                name, amount, id, ..
            } => self.expose(name, &[(*amount, id.clone())], now),
            Call::ExposeBatch { name, items } => {
                if items.is_empty() {
                    // Refused at the API, before anything else.
                    return Class::Other(
                        "expose_accumulator_many_atomic requires at least one exposure".into(),
                    );
                }
                self.expose(name, items, now)
            }
            Call::Release { name, id } => {
                let def = self.def_of(name);
                let (Some(acc), Some(def)) = (self.accs.get_mut(name), def) else {
                    return Class::Missing;
                };
                let mut next = acc.clone();
                next.expire(&def, now);
                match next.exposures.remove(id) {
                    Some((amount, _)) => {
                        next.total_exposure -= amount;
                        *acc = next;
                        Class::Ok
                    }
                    None => Class::UnknownExposure,
                }
            }
        }
    }

    fn expose(&mut self, name: &str, items: &[(i64, String)], now: u64) -> Class {
        for (amount, id) in items {
            if *amount <= 0 {
                return Class::AmountNotPositive;
            }
            if let Some(bad) = bad_id(id) {
                return bad;
            }
        }
        let def = self.def_of(name);
        let (Some(acc), Some(def)) = (self.accs.get_mut(name), def) else {
            return Class::Missing;
        };
        let mut next = acc.clone();
        next.expire(&def, now);
        let limit = next.limit(def.margin_bps);
        let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
        for (amount, id) in items {
            if let Some(earlier) = seen.insert(id, *amount) {
                if earlier != *amount {
                    return Class::BatchDuplicate;
                }
                continue;
            }
            if let Some((open, _)) = next.exposures.get(id) {
                if open != amount {
                    return Class::ExposureIdDifferent;
                }
                continue;
            }
            let Some(total) = next.total_exposure.checked_add(*amount) else {
                return Class::Overflow;
            };
            if total > limit {
                // Counted in a commit of its own, which changes nothing else.
                acc.rejections += 1;
                return Class::Margin {
                    total,
                    allowed: limit,
                };
            }
            next.total_exposure = total;
            next.exposures.insert(id.clone(), (*amount, now));
        }
        *acc = next;
        Class::Ok
    }
}

/// Run `call` on `db`.
pub async fn run(db: &AedbInstance, call: &Call) -> Result<Option<CommitResult>, AedbError> {
    match call.clone() {
        Call::Accumulate {
            name,
            delta,
            key,
            order,
            release,
        } => db
            .accumulate_with_release(PROJECT, SCOPE, &name, delta, key, order, release)
            .await
            .map(Some),
        Call::Expose {
            name,
            amount,
            id,
            preflight: false,
        } => db
            .expose_accumulator(PROJECT, SCOPE, &name, amount, id)
            .await
            .map(Some),
        Call::Expose {
            name,
            amount,
            id,
            preflight: true,
        } => db
            .expose_accumulator_with_preflight(PROJECT, SCOPE, &name, amount, id)
            .await
            .map(Some),
        Call::ExposeBatch { name, items } => db
            .expose_accumulator_many_atomic(PROJECT, SCOPE, &name, items)
            .await
            .map(Some),
        Call::Release { name, id } => db
            .release_accumulator_exposure(PROJECT, SCOPE, &name, id)
            .await
            .map(Some),
        Call::Create { name, def } => db
            .create_accumulator_with_options(
                PROJECT,
                SCOPE,
                &name,
                def.retain,
                def.snapshot_every,
                def.margin_bps,
                def.ttl,
            )
            .await
            .map(Some),
        Call::Drop { name } => db.drop_accumulator(PROJECT, SCOPE, &name).await.map(Some),
    }
}

/// Run `call` on `db` and on `model`, and hold the answer to the model's; returns it.
pub async fn step(db: &AedbInstance, model: &mut Model, call: &Call, label: &str) -> Class {
    // One writer: this call's commit, if it commits, is the next one.
    let now = db.engine().visible_head_seq() + 1;
    let result = run(db, call).await;
    if let Ok(Some(r)) = &result {
        assert_eq!(
            r.idempotency,
            IdempotencyOutcome::Applied,
            "{label}: {call:?}"
        );
        assert_eq!(r.commit_seq, now, "{label}: {call:?} committed out of turn");
    }
    let got = classify(&result);
    let want = model.apply(call, now);
    assert_eq!(got, want, "{label}: {call:?} returned {result:?}");
    got
}

/// Create the project and every accumulator of `model` (fresh).
pub async fn setup(db: &AedbInstance, model: &Model) {
    db.create_project(PROJECT).await.expect("project");
    for (name, def) in NAMES.iter().zip(&model.defs) {
        db.create_accumulator_with_options(
            PROJECT,
            SCOPE,
            name,
            def.retain,
            def.snapshot_every,
            def.margin_bps,
            def.ttl,
        )
        .await
        .expect("create accumulator");
    }
}

fn value_class<T: std::fmt::Debug>(result: Result<T, AedbError>) -> Result<T, Class> {
    result.map_err(|e| classify::<()>(&Err(e)))
}

/// Every readable value of every accumulator (and of one never created) equals the model's.
pub async fn check_reads(db: &AedbInstance, model: &Model, label: &str) {
    use aedb::storage::ReadTrees;
    let at = ConsistencyMode::AtLatest;
    let mut names: Vec<&str> = NAMES.to_vec();
    names.push(MISSING);
    for name in names {
        let label = format!("{label}: {name}");
        let value = value_class(db.accumulator_value(PROJECT, SCOPE, name, at).await);
        let strong = value_class(db.accumulator_value_strong(PROJECT, SCOPE, name, at).await);
        let exposure = value_class(db.accumulator_exposure(PROJECT, SCOPE, name, at).await);
        let available = value_class(db.accumulator_available(PROJECT, SCOPE, name, at).await);
        let metrics = value_class(
            db.accumulator_exposure_metrics(PROJECT, SCOPE, name, at)
                .await,
        );
        let lag = value_class(db.accumulator_lag(PROJECT, SCOPE, name, at).await);
        let Some(acc) = model.accs.get(name) else {
            for (what, class) in [
                ("value", value.err()),
                ("strong", strong.err()),
                ("exposure", exposure.err()),
                ("available", available.err()),
                ("metrics", metrics.err()),
                ("lag", lag.err()),
            ] {
                assert_eq!(class, Some(Class::Missing), "{label}: {what}");
            }
            continue;
        };
        assert_eq!(value, Ok(acc.value), "{label}: value");
        assert_eq!(strong, Ok(acc.value), "{label}: strong value");
        assert_eq!(exposure, Ok(acc.total_exposure), "{label}: exposure");
        assert_eq!(available, Ok(acc.available()), "{label}: available");
        let metrics = metrics.unwrap_or_else(|e| panic!("{label}: metrics: {e:?}"));
        assert_eq!(
            (
                metrics.total_exposure,
                metrics.available,
                metrics.rejection_count,
                metrics.open_exposure_count
            ),
            (
                acc.total_exposure,
                acc.available(),
                acc.rejections,
                acc.exposures.len()
            ),
            "{label}: metrics (total, available, rejections, open)"
        );
        let lag = lag.unwrap_or_else(|e| panic!("{label}: lag: {e:?}"));
        let latest = acc.latest_order.unwrap_or(0);
        let want_lag = AccumulatorLag {
            latest_order_key: latest,
            last_applied_order_key: acc.last_applied,
            lag_orders: latest - acc.last_applied,
            latest_seq: acc.latest_seq,
            materialized_seq: acc.latest_seq,
            lag_commits: 0,
            unapplied_deltas: 0,
            projector_error: None,
        };
        assert_eq!(lag, want_lag, "{label}: lag");
        let tree = format!("acc:{PROJECT}:{SCOPE}:{name}");
        let entries = db.engine().snapshot().len(&tree).expect("tree length");
        assert_eq!(entries, acc.stored_entries(), "{label}: rows stored");
    }
}
