//! A model test of accumulators (behaviour spec section 6): random sequences of deltas (retries,
//! reused dedupe keys with other payloads, stale order keys, deltas that overflow the value,
//! blank and over-long keys), exposures single and batched (in-batch duplicates, ids open or
//! not, amounts refused by the margin rule), releases, drop and re-create, and reopen, on two
//! accumulators with random margins, compaction periods, dedupe retention and exposure TTL.
//! After every call its answer (Ok, or the kind of error) is held to the model's, and after
//! every step every readable value — value, strong value, exposure, available, metrics, lag,
//! and the rows the accumulator keeps — to the model's (`accumulator_support`).
//!
//! `AEDB_SOAK=<cases>` runs that many cases instead of the default few.

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::AedbInstance;
use proptest::prelude::*;

mod accumulator_support;
use accumulator_support::{
    check_reads, defs, op, setup, step, AccDef, Call, Class, Model, Op, NAMES,
};

fn config() -> AedbConfig {
    AedbConfig {
        // Durability is the crash suites' business; here every step is a commit.
        durability_mode: DurabilityMode::OsBuffered,
        ..AedbConfig::default()
    }
}

fn cases() -> u32 {
    match std::env::var("AEDB_SOAK") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("AEDB_SOAK must be a number of cases, not {text:?}")),
        Err(_) => 24,
    }
}

/// Run `ops` on a fresh database and on the model; returns what each call returned.
async fn run_case(defs: Vec<AccDef>, ops: Vec<Op>) -> Vec<Class> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = AedbInstance::open(config(), dir.path()).expect("open");
    let mut model = Model::new(defs);
    let mut classes = Vec::new();
    setup(&db, &model).await;
    check_reads(&db, &model, "created").await;
    for (i, op) in ops.iter().enumerate() {
        let label = format!("step {i} {op:?}");
        if let Op::Reopen = op {
            db.shutdown().await.expect("shutdown");
            db = AedbInstance::open(config(), dir.path()).expect("reopen");
        }
        let calls = model.resolve(op);
        for call in &calls {
            classes.push(step(&db, &mut model, call, &label).await);
        }
        check_reads(&db, &model, &label).await;
    }
    db.shutdown().await.expect("shutdown");
    let db = AedbInstance::open(config(), dir.path()).expect("reopen at the end");
    check_reads(&db, &model, "reopened at the end").await;
    db.shutdown().await.expect("shutdown");
    classes
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn accumulators_match_the_model(defs in defs(), ops in proptest::collection::vec(op(1), 1..80)) {
        block_on(run_case(defs, ops));
    }
}

fn accumulate(delta: i64, key: &str, order: u64, release: Option<&str>) -> Call {
    Call::Accumulate {
        name: "a0".into(),
        delta,
        key: key.into(),
        order,
        release: release.map(str::to_string),
    }
}

fn expose(amount: i64, id: &str) -> Call {
    Call::Expose {
        name: "a0".into(),
        amount,
        id: id.into(),
        preflight: false,
    }
}

/// The model itself on the spec's examples: what the random runs rely on it to say.
#[test]
fn the_model_follows_the_spec_examples() {
    let mut model = Model::new(vec![AccDef::plain(1_000, 2); NAMES.len()]);
    assert_eq!(
        model.apply(&accumulate(1_000, "fund", 1, None), 10),
        Class::Ok
    );
    assert_eq!(model.apply(&expose(400, "h1"), 11), Class::Ok);
    assert_eq!(model.apply(&expose(500, "h2"), 12), Class::Ok);
    assert_eq!(
        model.apply(&expose(1, "h3"), 13),
        Class::Margin {
            total: 901,
            allowed: 900
        }
    );
    // The exact retry commits (a new sequence) and changes nothing.
    assert_eq!(
        model.apply(&accumulate(1_000, "fund", 1, None), 14),
        Class::Ok
    );
    assert_eq!(
        model.apply(&accumulate(5, "fund", 2, None), 15),
        Class::DedupeConflict
    );
    assert_eq!(
        model.apply(&accumulate(5, "late", 1, None), 15),
        Class::OrderKey { latest: 1, got: 1 }
    );
    assert_eq!(
        model.apply(&accumulate(-120, "settle", 2, Some("h2")), 15),
        Class::Ok
    );
    assert_eq!(
        model.apply(&accumulate(-5, "s", 3, Some("h2")), 16),
        Class::UnknownExposure
    );
    let a0 = &model.accs["a0"];
    assert_eq!((a0.value, a0.total_exposure, a0.rejections), (880, 400, 1));
    assert_eq!(a0.available(), 480);
    assert_eq!(a0.latest_seq, 15);
    // Two deltas folded with snapshot_every 2: the log was compacted.
    assert_eq!(a0.applied_in_log, 0);
    assert_eq!(a0.stored_entries(), 1 + 2 * 2 + 2);
    // Past i64: refused, and the key is not remembered.
    assert_eq!(
        model.apply(&accumulate(i64::MAX, "big", 5, None), 16),
        Class::Overflow
    );
    assert_eq!(model.apply(&accumulate(1, "big", 5, None), 16), Class::Ok);
    assert_eq!(model.accs["a0"].value, 881);
    assert_eq!(
        model.apply(&accumulate(1, "x".repeat(513).as_str(), 6, None), 17),
        Class::TooLong
    );
    assert_eq!(model.apply(&expose(1, " "), 17), Class::Blank);
}

/// Retention and the TTL as the engine's own test shows them (`accumulators.rs`,
/// `retention_is_exact_and_expiry_is_order_independent`), by commit sequence.
#[test]
fn the_model_ages_dedupe_records_and_exposures_by_commit() {
    let def = AccDef {
        retain: Some(2),
        ttl: Some(1),
        ..AccDef::plain(0, 100)
    };
    let mut model = Model::new(vec![def; NAMES.len()]);
    assert_eq!(model.apply(&accumulate(10, "a", 1, None), 3), Class::Ok);
    // Five commits elsewhere: "a" is past its retention, unpruned but forgotten.
    assert_eq!(model.accs["a0"].stored_entries(), 1 + 1 + 2);
    assert_eq!(model.apply(&accumulate(5, "a", 2, None), 9), Class::Ok);
    assert_eq!(model.accs["a0"].value, 15);
    assert_eq!(
        model.apply(&accumulate(6, "a", 3, None), 10),
        Class::DedupeConflict,
        "remembered again"
    );
    // Remembered while now - seq <= retain; an exact retry past it is a new delta, and its
    // order key is no longer new.
    assert_eq!(model.apply(&accumulate(5, "a", 2, None), 11), Class::Ok);
    assert_eq!(
        model.apply(&accumulate(5, "a", 2, None), 12),
        Class::OrderKey { latest: 2, got: 2 }
    );
    assert_eq!(model.apply(&expose(10, "x"), 12), Class::Ok);
    assert_eq!(model.apply(&expose(1, "y"), 13), Class::Ok);
    // Read without a commit, the exposures stay until one closes them.
    assert_eq!(model.accs["a0"].total_exposure, 11);
    assert_eq!(
        model.apply(
            &Call::Release {
                name: "a0".into(),
                id: "x".into()
            },
            17
        ),
        Class::UnknownExposure
    );
    assert_eq!(
        model.accs["a0"].total_exposure, 11,
        "a failed commit closes nothing"
    );
    assert_eq!(model.apply(&expose(15, "z"), 17), Class::Ok);
    assert_eq!(model.accs["a0"].total_exposure, 15);
    // An accepted delta prunes the records past retention: "a" (written at 9) is gone.
    assert_eq!(model.apply(&accumulate(1, "b", 4, None), 20), Class::Ok);
    assert_eq!(model.accs["a0"].dedupe.len(), 1);
}

/// A delta that would take the value past i64 is refused whole: its key is not remembered,
/// the exposure it names stays open, and later deltas (the key reused) go on.
#[test]
fn a_delta_past_i64_is_refused_whole() {
    use accumulator_support::OrderPick::After;
    let acc = |delta, key, release| Op::Accumulate {
        acc: 0,
        delta,
        key: Some(key),
        order: After(1),
        release,
    };
    let ops = vec![
        acc(i64::MAX - 5, 1, None),
        Op::Expose {
            acc: 0,
            amount: 100,
            id: 1,
            preflight: false,
        },
        acc(10, 2, Some(1)),
        // The refused delta's key is free: another delta under it is refused the same way.
        acc(7, 2, None),
        acc(-20, 2, Some(1)),
        Op::Reopen,
        acc(i64::MIN, 3, None),
        acc(i64::MIN, 4, None),
        // Nothing open: a new exposure of 50, refused by the margin of a negative value.
        Op::ExposeAgain { acc: 0, pick: 0 },
    ];
    let classes = block_on(run_case(vec![AccDef::plain(1_000, 2); NAMES.len()], ops));
    use Class::{Ok, Overflow};
    // The value is i64::MAX - 5 - 20 + i64::MIN = -26; its limit rounds down to -24.
    let margin = Class::Margin {
        total: 50,
        allowed: -24,
    };
    assert_eq!(
        classes,
        [Ok, Ok, Overflow, Overflow, Ok, Ok, Overflow, margin]
    );
}

/// Retention and the TTL through the engine, on a fixed sequence: a record past retention is
/// forgotten when its key comes again (pruned or not), an exposure past its TTL is closed by
/// the next operation on its accumulator.
#[test]
fn records_and_exposures_age_by_commit() {
    use accumulator_support::OrderPick::{After, Stale};
    let def = AccDef {
        retain: Some(2),
        ttl: Some(3),
        ..AccDef::plain(1_000, 3)
    };
    let on = |acc, delta, key, order| Op::Accumulate {
        acc,
        delta,
        key: Some(key),
        order,
        release: None,
    };
    let ops = vec![
        on(0, 1_000, 1, After(1)),
        Op::Expose {
            acc: 0,
            amount: 100,
            id: 1,
            preflight: false,
        },
        on(1, 5, 1, After(1)),
        on(1, 5, 2, After(1)),
        on(1, 5, 3, After(1)),
        // Key 1 of a0 is past retention: the exact retry is a new delta with a stale order.
        Op::Retry {
            acc: 0,
            key: 1,
            release: None,
        },
        on(0, 7, 1, After(1)),
        // Exposure 1 is past its TTL: the delta above closed it.
        Op::Release { acc: 0, id: 1 },
        on(0, 1, 2, Stale(0)),
        Op::Reopen,
        on(0, 2, 3, After(1)),
    ];
    let classes = block_on(run_case(vec![def; NAMES.len()], ops));
    assert!(matches!(classes[5], Class::OrderKey { .. }), "{classes:?}");
    assert_eq!(classes[6], Class::Ok);
    assert_eq!(classes[7], Class::UnknownExposure);
    assert!(matches!(classes[8], Class::OrderKey { .. }), "{classes:?}");
    assert_eq!(classes[9], Class::Ok);
}
