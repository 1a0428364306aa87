//! Accumulators (README "Data model", behaviour spec section 6): exactly-once deltas, values
//! and lag, exposures with the margin rule, retention, TTL and compaction, across reopen.

use aedb::catalog::types::Value;
use aedb::commit::tx::{AssertionActual, ReadAssertion, TransactionEnvelope, WriteIntent};
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::{AedbError, AedbInstance};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn open(dir: &std::path::Path) -> Result<AedbInstance, AedbError> {
    AedbInstance::open(AedbConfig::default(), dir)
}

async fn fresh(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = open(dir).await?;
    db.create_project("casino").await?;
    Ok(db)
}

fn validation(result: Result<impl std::fmt::Debug, AedbError>) -> String {
    match result {
        Err(AedbError::Validation(message)) => message,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Rows of the accumulator's own tree (state, delta log, dedupe and exposure records).
fn stored_entries(db: &AedbInstance, name: &str) -> u64 {
    use aedb::storage::ReadTrees;
    db.engine()
        .snapshot()
        .len(&format!("acc:casino:app:{name}"))
        .expect("tree length")
}

#[tokio::test]
async fn deltas_apply_exactly_once_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = fresh(dir.path()).await?;
    db.create_accumulator("casino", "app", "bal", Some(86_400), 10_000)
        .await?;
    db.accumulate("casino", "app", "bal", 1_000, "fund".into(), 1)
        .await?;
    db.accumulate("casino", "app", "bal", -125, "settle_tx_123".into(), 42)
        .await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "bal", AtLatest)
            .await?,
        875
    );
    assert_eq!(
        db.accumulator_value_strong("casino", "app", "bal", AtLatest)
            .await?,
        875
    );

    // An exact retry commits (a new sequence) and changes nothing, even with an old order key.
    let before = db.engine().visible_head_seq();
    let retry = db
        .accumulate("casino", "app", "bal", -125, "settle_tx_123".into(), 42)
        .await?;
    assert!(retry.commit_seq > before);
    assert_eq!(
        db.accumulator_value("casino", "app", "bal", AtLatest)
            .await?,
        875
    );

    let reused = db
        .accumulate("casino", "app", "bal", -1, "settle_tx_123".into(), 50)
        .await;
    assert_eq!(
        validation(reused),
        "dedupe key already used with different payload: settle_tx_123"
    );
    let stale = db
        .accumulate("casino", "app", "bal", 5, "late".into(), 42)
        .await;
    assert_eq!(
        validation(stale),
        "order key must be strictly increasing (latest=42, got=42)"
    );
    let missing = db
        .accumulate("casino", "app", "nope", 5, "x".into(), 1)
        .await;
    assert_eq!(
        validation(missing),
        "accumulator does not exist: casino.app.nope"
    );
    assert!(db
        .accumulate("casino", "app", "bal", 5, " ".into(), 99)
        .await
        .is_err());

    let lag = db.accumulator_lag("casino", "app", "bal", AtLatest).await?;
    assert_eq!(lag.latest_order_key, 42);
    assert_eq!(lag.last_applied_order_key, 42);
    assert_eq!(
        (lag.lag_orders, lag.lag_commits, lag.unapplied_deltas),
        (0, 0, 0)
    );
    assert_eq!(lag.projector_error, None);

    // Created twice: AlreadyExists, as a table resource.
    match db
        .create_accumulator("casino", "app", "bal", None, 10)
        .await
    {
        Err(AedbError::AlreadyExists { resource_id, .. }) => {
            assert_eq!(resource_id, "casino.app.bal")
        }
        other => panic!("{other:?}"),
    }
    assert!(db
        .create_accumulator("casino", "app", "z", None, 0)
        .await
        .is_err());
    assert!(db
        .create_accumulator_with_options("casino", "app", "z", None, 1, 10_000, None)
        .await
        .is_err());
    assert!(db
        .create_accumulator("casino", "nope", "z", None, 1)
        .await
        .is_err());

    // Everything survives a reopen.
    db.shutdown().await?;
    let db = open(dir.path()).await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "bal", AtLatest)
            .await?,
        875
    );
    db.accumulate("casino", "app", "bal", -125, "settle_tx_123".into(), 42)
        .await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "bal", AtLatest)
            .await?,
        875
    );
    assert!(db
        .accumulate("casino", "app", "bal", 1, "n".into(), 42)
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn exposures_follow_the_margin_rule() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = fresh(dir.path()).await?;
    db.create_accumulator_with_options("casino", "app", "cb", None, 100, 1_000, None)
        .await?;
    // Nothing funded: the limit is 0.
    let refused = db
        .expose_accumulator("casino", "app", "cb", 500, "h0".into())
        .await;
    assert_eq!(
        validation(refused),
        "exposure margin exceeded: requested_total=500, allowed=0"
    );
    db.accumulate("casino", "app", "cb", 1_000, "fund".into(), 1)
        .await?;
    db.expose_accumulator("casino", "app", "cb", 400, "h1".into())
        .await?;
    db.expose_accumulator("casino", "app", "cb", 500, "h2".into())
        .await?;
    let over = db
        .expose_accumulator("casino", "app", "cb", 1, "h3".into())
        .await;
    assert_eq!(
        validation(over),
        "exposure margin exceeded: requested_total=901, allowed=900"
    );
    assert_eq!(
        db.accumulator_exposure("casino", "app", "cb", AtLatest)
            .await?,
        900
    );
    assert_eq!(
        db.accumulator_available("casino", "app", "cb", AtLatest)
            .await?,
        100
    );
    let metrics = db
        .accumulator_exposure_metrics("casino", "app", "cb", AtLatest)
        .await?;
    assert_eq!(metrics.total_exposure, 900);
    assert_eq!(metrics.available, 100);
    assert_eq!(metrics.open_exposure_count, 2);
    assert_eq!(metrics.rejection_count, 2, "every refusal is counted");

    // Same id and amount: no change; another amount: refused.
    db.expose_accumulator("casino", "app", "cb", 400, "h1".into())
        .await?;
    assert!(db
        .expose_accumulator("casino", "app", "cb", 300, "h1".into())
        .await
        .is_err());
    assert!(db
        .expose_accumulator("casino", "app", "cb", 0, "h9".into())
        .await
        .is_err());

    // Settle h2: -120 applied and the reservation released in one commit.
    db.accumulate_with_release(
        "casino",
        "app",
        "cb",
        -120,
        "settle_h2".into(),
        2,
        Some("h2".into()),
    )
    .await?;
    assert_eq!(
        db.accumulator_exposure("casino", "app", "cb", AtLatest)
            .await?,
        400
    );
    assert_eq!(
        db.accumulator_value_strong("casino", "app", "cb", AtLatest)
            .await?,
        880
    );
    // Releasing an unknown exposure fails the whole commit: the delta is not applied.
    let unknown = db
        .accumulate_with_release("casino", "app", "cb", -5, "s".into(), 3, Some("h2".into()))
        .await;
    assert_eq!(
        validation(unknown),
        "release requested for unknown exposure id: h2"
    );
    assert_eq!(
        db.accumulator_value("casino", "app", "cb", AtLatest)
            .await?,
        880
    );
    db.release_accumulator_exposure("casino", "app", "cb", "h1".into())
        .await?;
    assert!(db
        .release_accumulator_exposure("casino", "app", "cb", "h1".into())
        .await
        .is_err());

    // A batch is all or nothing (limit 792 = 880 * 0.9).
    let too_much = vec![(500, "b1".to_string()), (300, "b2".to_string())];
    assert!(db
        .expose_accumulator_many_atomic("casino", "app", "cb", too_much)
        .await
        .is_err());
    assert_eq!(
        db.accumulator_exposure("casino", "app", "cb", AtLatest)
            .await?,
        0
    );
    let clash = vec![(5, "b1".to_string()), (6, "b1".to_string())];
    assert!(db
        .expose_accumulator_many_atomic("casino", "app", "cb", clash)
        .await
        .is_err());
    let fits = vec![(500, "b1".to_string()), (292, "b2".to_string())];
    db.expose_accumulator_many_atomic("casino", "app", "cb", fits)
        .await?;
    assert_eq!(
        db.accumulator_exposure("casino", "app", "cb", AtLatest)
            .await?,
        792
    );
    let metrics = db
        .accumulator_exposure_metrics("casino", "app", "cb", AtLatest)
        .await?;
    assert_eq!(metrics.rejection_count, 3);

    db.shutdown().await?;
    let db = open(dir.path()).await?;
    assert_eq!(
        db.accumulator_exposure("casino", "app", "cb", AtLatest)
            .await?,
        792
    );
    assert_eq!(
        db.accumulator_exposure_metrics("casino", "app", "cb", AtLatest)
            .await?
            .rejection_count,
        3
    );
    Ok(())
}

#[tokio::test]
async fn retention_ttl_and_compaction_bound_what_is_stored() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = fresh(dir.path()).await?;
    db.create_accumulator_with_options("casino", "app", "r", Some(5), 10, 0, Some(3))
        .await?;
    db.accumulate("casino", "app", "r", 100, "k0".into(), 0)
        .await?;
    db.expose_accumulator("casino", "app", "r", 50, "old".into())
        .await?;
    for i in 1..=40u64 {
        db.accumulate("casino", "app", "r", 1, format!("k{i}"), i)
            .await?;
    }
    assert_eq!(
        db.accumulator_value("casino", "app", "r", AtLatest).await?,
        140
    );
    // The exposure outlived its TTL and was dropped by a later commit.
    assert_eq!(
        db.accumulator_exposure("casino", "app", "r", AtLatest)
            .await?,
        0
    );
    // k0 is past its retention: the same key is new again (a new order key is needed).
    db.accumulate("casino", "app", "r", 7, "k0".into(), 41)
        .await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "r", AtLatest).await?,
        147
    );
    // A recent key is still remembered.
    db.accumulate("casino", "app", "r", 1, "k40".into(), 40)
        .await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "r", AtLatest).await?,
        147
    );
    // State, at most `snapshot_every` deltas, and the retained dedupe records (two keys each).
    let entries = stored_entries(&db, "r");
    assert!(entries <= 1 + 10 + 2 * 7, "{entries} entries stored");
    Ok(())
}

#[tokio::test]
async fn assertions_read_the_accumulator() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = fresh(dir.path()).await?;
    db.create_accumulator("casino", "app", "a", None, 100)
        .await?;
    db.accumulate("casino", "app", "a", 1_000, "f".into(), 1)
        .await?;
    db.expose_accumulator("casino", "app", "a", 300, "e".into())
        .await?;
    let guarded = |assertion: ReadAssertion| TransactionEnvelope {
        assertions: vec![assertion],
        write_intent: WriteIntent {
            mutations: vec![Mutation::KvSet {
                project_id: "casino".into(),
                scope_id: "app".into(),
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            }],
        },
        ..TransactionEnvelope::default()
    };
    let available = |min_amount| ReadAssertion::AccumulatorAvailableAtLeast {
        project_id: "casino".into(),
        scope_id: "app".into(),
        accumulator_name: "a".into(),
        min_amount,
    };
    db.commit_envelope(guarded(available(700))).await?;
    match db.commit_envelope(guarded(available(701))).await {
        Err(AedbError::AssertionFailed { actual, .. }) => {
            assert_eq!(*actual, AssertionActual::Value(Value::Integer(700)))
        }
        other => panic!("{other:?}"),
    }
    let within = |additional_exposure| ReadAssertion::AccumulatorExposureWithinMargin {
        project_id: "casino".into(),
        scope_id: "app".into(),
        accumulator_name: "a".into(),
        additional_exposure,
    };
    db.commit_envelope(guarded(within(600))).await?;
    match db.commit_envelope(guarded(within(601))).await {
        Err(AedbError::AssertionFailed { actual, .. }) => {
            assert_eq!(*actual, AssertionActual::Value(Value::Integer(901)))
        }
        other => panic!("{other:?}"),
    }
    assert!(db.commit_envelope(guarded(within(0))).await.is_err());
    let missing = ReadAssertion::AccumulatorAvailableAtLeast {
        project_id: "casino".into(),
        scope_id: "app".into(),
        accumulator_name: "none".into(),
        min_amount: 0,
    };
    match db.commit_envelope(guarded(missing)).await {
        Err(AedbError::AssertionFailed { actual, .. }) => {
            assert_eq!(*actual, AssertionActual::Missing)
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn dropping_removes_everything() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = fresh(dir.path()).await?;
    db.create_accumulator("casino", "app", "d", None, 100)
        .await?;
    db.accumulate("casino", "app", "d", 5, "x".into(), 1)
        .await?;
    db.drop_accumulator("casino", "app", "d").await?;
    assert!(db
        .accumulator_value("casino", "app", "d", AtLatest)
        .await
        .is_err());
    db.drop_accumulator("casino", "app", "d").await?;
    db.create_accumulator("casino", "app", "d", None, 100)
        .await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "d", AtLatest).await?,
        0
    );
    db.accumulate("casino", "app", "d", 5, "x".into(), 1)
        .await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "d", AtLatest).await?,
        5
    );

    db.create_scope("casino", "other").await?;
    db.create_accumulator("casino", "other", "s", None, 100)
        .await?;
    db.drop_scope("casino", "other").await?;
    db.create_scope("casino", "other").await?;
    assert!(db
        .accumulator_value("casino", "other", "s", AtLatest)
        .await
        .is_err());
    Ok(())
}

/// Review findings: retention is exact, expiry does not depend on mutation order, a refusal
/// is counted on the accumulator that refused, an overflowing delta is refused, and cleanup
/// never makes a commit too large.
#[tokio::test]
async fn retention_is_exact_and_expiry_is_order_independent() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = fresh(dir.path()).await?;
    db.create_accumulator_with_options("casino", "app", "r", Some(2), 100, 0, Some(1))
        .await?;
    db.accumulate("casino", "app", "r", 10, "a".into(), 1)
        .await?;
    for i in 0..5 {
        db.kv_set("casino", "app", format!("k{i}").into_bytes(), b"v".to_vec())
            .await?;
    }
    // "a" is past its retention: a new delta under it is accepted, although nothing pruned it.
    db.accumulate("casino", "app", "r", 5, "a".into(), 2)
        .await?;
    assert_eq!(
        db.accumulator_value("casino", "app", "r", AtLatest).await?,
        15
    );
    // And remembered again from now on.
    assert!(db
        .accumulate("casino", "app", "r", 6, "a".into(), 3)
        .await
        .is_err());

    db.expose_accumulator("casino", "app", "r", 10, "x".into())
        .await?;
    db.expose_accumulator("casino", "app", "r", 1, "y".into())
        .await?;
    for i in 5..8 {
        db.kv_set("casino", "app", format!("k{i}").into_bytes(), b"v".to_vec())
            .await?;
    }
    // x and y are past their TTL: every path sees them closed, in any order.
    let release_x = Mutation::ReleaseAccumulatorExposure {
        project_id: "casino".into(),
        scope_id: "app".into(),
        accumulator_name: "r".into(),
        exposure_id: "x".into(),
    };
    let expose_z = Mutation::ExposeAccumulator {
        project_id: "casino".into(),
        scope_id: "app".into(),
        accumulator_name: "r".into(),
        amount: 15,
        exposure_id: "z".into(),
    };
    assert!(db
        .commit_many_atomic(vec![expose_z.clone(), release_x.clone()])
        .await
        .is_err());
    assert!(db
        .commit_many_atomic(vec![release_x, expose_z.clone()])
        .await
        .is_err());
    // The assertion sees the expired exposures closed too: 15 fits within the 15 available.
    let within = ReadAssertion::AccumulatorExposureWithinMargin {
        project_id: "casino".into(),
        scope_id: "app".into(),
        accumulator_name: "r".into(),
        additional_exposure: 15,
    };
    db.commit_envelope(TransactionEnvelope {
        assertions: vec![within],
        write_intent: WriteIntent {
            mutations: vec![expose_z],
        },
        ..TransactionEnvelope::default()
    })
    .await?;
    assert_eq!(
        db.accumulator_exposure("casino", "app", "r", AtLatest)
            .await?,
        15
    );
    Ok(())
}

#[tokio::test]
async fn a_delta_past_i64_is_refused_and_the_value_stays_readable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = fresh(dir.path()).await?;
    db.create_accumulator("casino", "app", "o", None, 100)
        .await?;
    db.accumulate("casino", "app", "o", i64::MAX, "k1".into(), 1)
        .await?;
    assert!(matches!(
        db.accumulate("casino", "app", "o", 1, "k2".into(), 2).await,
        Err(AedbError::Overflow)
    ));
    db.accumulate("casino", "app", "o", -100, "k3".into(), 3)
        .await?;
    assert_eq!(
        db.accumulator_value_strong("casino", "app", "o", AtLatest)
            .await?,
        i64::MAX - 100
    );
    // The refused key was not remembered.
    db.accumulate("casino", "app", "o", 1, "k2".into(), 4)
        .await?;
    let too_long = "k".repeat(513);
    assert!(matches!(
        db.accumulate("casino", "app", "o", 1, too_long, 5).await,
        Err(AedbError::Validation(_))
    ));
    Ok(())
}

#[tokio::test]
async fn cleanup_never_makes_a_commit_too_large() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        max_transaction_bytes: 16 << 10,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, dir.path())?;
    db.create_project("casino").await?;
    db.create_accumulator("casino", "app", "t", Some(400), 200)
        .await?;
    for i in 0..300u64 {
        db.accumulate("casino", "app", "t", 1, format!("settle-tx-{i:08}"), i)
            .await?;
    }
    for i in 0..400 {
        db.kv_set("casino", "app", format!("k{i}").into_bytes(), b"v".to_vec())
            .await?;
    }
    // 300 dedupe records and 300 folded deltas are due at once: writes go on regardless.
    for i in 300..320u64 {
        db.accumulate("casino", "app", "t", 1, format!("settle-tx-{i:08}"), i)
            .await?;
    }
    assert_eq!(
        db.accumulator_value("casino", "app", "t", AtLatest).await?,
        320
    );
    Ok(())
}
