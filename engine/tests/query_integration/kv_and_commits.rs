//! KV operations, envelopes with assertions and idempotency, preflight plans.

use aedb::catalog::expr::col;
use aedb::catalog::types::Value;
use aedb::catalog::DdlOperation;
use aedb::commit::validation::*;
use aedb::error::ResourceType;
use aedb::query::plan::{ConsistencyMode, Query};
use aedb::query::QueryError;
use aedb::{AedbError, CallerContext};

use super::support::*;

#[tokio::test]
async fn kv_operations() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await;
    db.create_project("p").await?;
    let caller = CallerContext::new("reader");
    let latest = ConsistencyMode::AtLatest;
    let first = db.kv_set("p", "app", b"a".to_vec(), b"1".to_vec()).await?;
    let second = db.kv_set("p", "app", b"a".to_vec(), b"2".to_vec()).await?;
    // A caller's read needs a KvRead grant, also on an instance opened with `open`.
    assert!(matches!(
        db.kv_get("p", "app", b"a", latest, &caller).await,
        Err(QueryError::PermissionDenied { .. })
    ));
    db.commit_ddl(DdlOperation::GrantPermission {
        caller_id: "reader".into(),
        permission: aedb::permission::Permission::KvRead {
            project_id: "p".into(),
            scope_id: None,
            prefix: None,
        },
        actor_id: None,
        delegable: false,
    })
    .await?;
    let entry = db
        .kv_get("p", "app", b"a", latest, &caller)
        .await?
        .expect("entry");
    assert_eq!(
        (entry.value.as_slice(), entry.version, entry.created_at),
        (&b"2"[..], second.commit_seq, first.commit_seq)
    );
    assert!(matches!(
        db.kv_set("p", "nope", b"k".to_vec(), b"v".to_vec()).await,
        Err(AedbError::NotFound {
            resource_type: ResourceType::Scope,
            ..
        })
    ));
    assert!(matches!(
        db.kv_set("p", "app", vec![0; 2000], b"v".to_vec()).await,
        Err(AedbError::KeyTooLarge { .. })
    ));
    for i in 0..25u8 {
        db.kv_set("p", "app", vec![b'x', i], vec![i]).await?;
    }
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .kv_scan_prefix("p", "app", b"x", 10, cursor, latest, &caller)
            .await?;
        keys.extend(page.entries.iter().map(|(k, _)| k[1]));
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(keys, (0..25).collect::<Vec<u8>>());
    let range = db
        .kv_scan_range(
            "p",
            "app",
            std::ops::Bound::Included(vec![b'x', 5]),
            std::ops::Bound::Excluded(vec![b'x', 8]),
            100,
            None,
            latest,
            &caller,
        )
        .await?;
    assert_eq!(range.entries.len(), 3);
    db.kv_del("p", "app", b"a".to_vec()).await?;
    assert!(db.kv_get_no_auth("p", "app", b"a", latest).await?.is_none());

    let u256 = |v: u64| {
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&v.to_be_bytes());
        out
    };
    let kv = |m: fn(Vec<u8>, [u8; 32]) -> Mutation, v| m(b"bal".to_vec(), u256(v));
    fn inc(key: Vec<u8>, amount_be: [u8; 32]) -> Mutation {
        Mutation::KvIncU256 {
            project_id: "p".into(),
            scope_id: "app".into(),
            key,
            amount_be,
        }
    }
    fn dec(key: Vec<u8>, amount_be: [u8; 32]) -> Mutation {
        Mutation::KvDecU256 {
            project_id: "p".into(),
            scope_id: "app".into(),
            key,
            amount_be,
        }
    }
    assert!(matches!(
        db.commit(kv(dec, 1)).await,
        Err(AedbError::Underflow)
    ));
    db.commit(kv(inc, 10)).await?;
    db.commit(kv(dec, 3)).await?;
    assert!(matches!(
        db.commit(Mutation::KvAddU256Ex {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"bal".to_vec(),
            amount_be: [0xff; 32],
            on_missing: KvU256MissingPolicy::Reject,
            on_overflow: KvU256OverflowPolicy::Reject
        })
        .await,
        Err(AedbError::Overflow)
    ));
    db.commit(Mutation::KvSubU256Ex {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"bal".to_vec(),
        amount_be: u256(100),
        on_missing: KvU256MissingPolicy::Reject,
        on_underflow: KvU256UnderflowPolicy::NoOp,
    })
    .await?;
    assert!(matches!(
        db.commit(Mutation::KvSubU256Ex {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"missing".to_vec(),
            amount_be: u256(1),
            on_missing: KvU256MissingPolicy::Reject,
            on_underflow: KvU256UnderflowPolicy::NoOp
        })
        .await,
        Err(AedbError::Validation(_))
    ));
    db.commit(Mutation::KvMaxU256 {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"bal".to_vec(),
        candidate_be: u256(5),
        on_missing: KvU256MissingPolicy::TreatAsZero,
    })
    .await?;
    assert_eq!(
        db.kv_get_no_auth("p", "app", b"bal", latest)
            .await?
            .expect("bal")
            .value,
        u256(7).to_vec()
    );
    let version = db
        .kv_get_no_auth("p", "app", b"bal", latest)
        .await?
        .expect("bal")
        .version;
    assert!(matches!(
        db.commit(Mutation::KvMutateU256 {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"bal".to_vec(),
            op: KvU256MutatorOp::Set,
            operand_be: u256(1),
            expected_seq: Some(version + 1)
        })
        .await,
        Err(AedbError::AssertionFailed { .. })
    ));
    db.commit(Mutation::KvMutateU256 {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"bal".to_vec(),
        op: KvU256MutatorOp::Add,
        operand_be: u256(1),
        expected_seq: Some(version),
    })
    .await?;

    db.commit(Mutation::KvAddU64Ex {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"n".to_vec(),
        amount_be: u64::MAX.to_be_bytes(),
        on_missing: KvU64MissingPolicy::TreatAsZero,
        on_overflow: KvU64OverflowPolicy::Reject,
    })
    .await?;
    db.commit(Mutation::KvAddU64Ex {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"n".to_vec(),
        amount_be: 5u64.to_be_bytes(),
        on_missing: KvU64MissingPolicy::TreatAsZero,
        on_overflow: KvU64OverflowPolicy::Saturate,
    })
    .await?;
    db.commit(Mutation::KvSubIntEx {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"n".to_vec(),
        amount: KvIntegerAmount::U64(1u64.to_be_bytes()),
        on_missing: KvIntegerMissingPolicy::Reject,
        on_underflow: KvIntegerUnderflowPolicy::Reject,
    })
    .await?;
    assert_eq!(
        db.kv_get_no_auth("p", "app", b"n", latest)
            .await?
            .expect("n")
            .value,
        (u64::MAX - 1).to_be_bytes().to_vec()
    );
    for hint in 0..10u32 {
        db.counter_add_sharded("p", "app", b"hits".to_vec(), 2u64.to_be_bytes(), 4, hint)
            .await?;
    }
    let db = reopen(db, dir.path()).await;
    assert_eq!(
        db.counter_read_sharded("p", "app", b"hits", 4, latest)
            .await?,
        20
    );
    assert_eq!(
        db.kv_get_no_auth("p", "app", b"bal", latest)
            .await?
            .expect("bal")
            .value,
        u256(8).to_vec()
    );
    Ok(())
}

#[tokio::test]
async fn envelopes_assertions_and_idempotency() -> TestResult {
    use aedb::commit::envelope::CompareOp;
    use aedb::commit::{
        ActionCommitOutcome, ActionEnvelopeRequest, IdempotencyKey, IdempotencyOutcome,
        ReadAssertion, TransactionEnvelope, WriteClass, WriteIntent,
    };
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 3).await;
    db.kv_set("p", "app", b"flag".to_vec(), b"on".to_vec())
        .await?;
    let head = db.engine().visible_head_seq();
    let guarded = |expected: &[u8], key: u8| TransactionEnvelope {
        idempotency_key: Some(IdempotencyKey([key; 16])),
        assertions: vec![
            ReadAssertion::KeyEquals {
                project_id: "p".into(),
                scope_id: "app".into(),
                key: b"flag".to_vec(),
                expected: expected.to_vec(),
            },
            ReadAssertion::RowColumnCompare {
                project_id: "p".into(),
                scope_id: "app".into(),
                table_name: "people".into(),
                primary_key: vec![Value::Integer(2)],
                column: "age".into(),
                op: CompareOp::Gte,
                threshold: Value::Integer(1),
            },
        ],
        write_intent: WriteIntent {
            mutations: vec![insert(10, "ten", None), insert(11, "eleven", None)],
        },
        ..TransactionEnvelope::default()
    };
    match db.commit_envelope(guarded(b"off", 1)).await {
        Err(err @ AedbError::AssertionFailed { index: 0, .. }) => {
            assert_eq!(err.code_str(), "assertion_failed")
        }
        other => panic!("{other:?}"),
    }
    // The failed commit wrote nothing; one commit after it records the failure in
    // _system.app.assertion_audit.
    assert_eq!(
        db.engine().visible_head_seq(),
        head + 1,
        "a failed assertion writes only its audit row"
    );
    let audit = db
        .query(
            "_system",
            "app",
            Query::select(&["*"]).from("assertion_audit"),
        )
        .await?;
    assert_eq!(audit.rows.len(), 1);
    let first = db.commit_envelope(guarded(b"on", 2)).await?;
    assert_eq!(first.idempotency, IdempotencyOutcome::Applied);
    assert_eq!(
        ids(&db, Query::select(&["*"]).from("people")).await?,
        vec![1, 2, 3, 10, 11]
    );
    let replay = db.commit_envelope(guarded(b"on", 2)).await?;
    assert_eq!(
        (
            replay.idempotency,
            replay.commit_seq,
            replay.canonical_commit_seq
        ),
        (
            IdempotencyOutcome::Duplicate,
            first.commit_seq,
            first.commit_seq
        )
    );
    assert_eq!(
        db.engine().visible_head_seq(),
        first.commit_seq,
        "a duplicate consumes no sequence"
    );
    let mut changed = guarded(b"on", 2);
    changed.write_intent.mutations.pop();
    assert!(matches!(
        db.commit_envelope(changed).await,
        Err(AedbError::Validation(_))
    ));
    let count_guard = TransactionEnvelope {
        assertions: vec![ReadAssertion::Not(Box::new(ReadAssertion::CountCompare {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "people".into(),
            filter: Some(col("id").gt(Value::Integer(5))),
            op: CompareOp::Eq,
            threshold: 2,
        }))],
        write_intent: WriteIntent {
            mutations: vec![insert(12, "twelve", None)],
        },
        ..TransactionEnvelope::default()
    };
    assert!(matches!(
        db.commit_envelope(count_guard).await,
        Err(AedbError::AssertionFailed { .. })
    ));
    assert!(matches!(
        db.commit_envelope(TransactionEnvelope::default()).await,
        Err(AedbError::Validation(_))
    ));
    let action = |n: i64| ActionEnvelopeRequest {
        caller: None,
        idempotency_key: IdempotencyKey([9; 16]),
        write_class: WriteClass::Economic,
        base_seq: 0,
        assertions: vec![],
        mutations: vec![insert(n, "action", None)],
    };
    let applied = db.commit_action_envelope(action(20)).await?;
    assert_eq!(applied.outcome, ActionCommitOutcome::Applied);
    assert!(
        applied.durable_head_seq >= applied.commit_seq,
        "Economic commits are durable"
    );
    let db = reopen(db, dir.path()).await;
    let again = db.commit_action_envelope(action(20)).await?;
    assert_eq!(
        (again.outcome, again.commit_seq),
        (ActionCommitOutcome::Duplicate, applied.commit_seq),
        "idempotency survives a restart"
    );
    Ok(())
}

#[tokio::test]
async fn preflight_plan_lists_touched_keys_and_commits_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 2).await;
    let head = db.engine().visible_head_seq();
    let plan = db.preflight_plan(insert(5, "five", None)).await;
    assert!(plan.valid, "{plan:?}");
    assert_eq!(plan.estimated_affected_rows, 1);
    assert_eq!(plan.base_seq, head);
    assert_eq!(plan.touched_keys.len(), 1);
    assert_eq!(
        plan.touched_keys[0].1,
        aedb::encode_primary_key(&[Value::Integer(5)])
    );
    let invalid = db.preflight_plan(insert(1, "dup", None)).await;
    assert!(
        !invalid.valid && invalid.errors[0].contains("duplicate"),
        "{invalid:?}"
    );
    assert_eq!(db.engine().visible_head_seq(), head);
    assert_eq!(
        ids(&db, Query::select(&["*"]).from("people")).await?,
        vec![1, 2]
    );
    Ok(())
}
