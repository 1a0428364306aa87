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

use aedb::commit::{CommitResult, IdempotencyOutcome};
use aedb::query::plan::ConsistencyMode;
use aedb::{AccumulatorLag, AedbError, AedbInstance};
use proptest::prelude::*;

mod model;
// As with `dead_code` above: no suite names every item.
#[allow(unused_imports)]
pub use model::{AccModel, Model};

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
