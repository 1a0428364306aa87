//! Read sets and version assertions: a transaction planned at one version commits only if what
//! it read is unchanged; rows carry the sequence of their last write, also after a reopen.

use aedb::catalog::expr::col;
use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::envelope::CompareOp;
use aedb::commit::tx::AssertionActual;
use aedb::commit::validation::{KvU64MissingPolicy, KvU64OverflowPolicy, Mutation};
use aedb::commit::{
    ReadAssertion, ReadBound, ReadRange, ReadRangeEntry, ReadSet, TransactionEnvelope,
};
use aedb::config::AedbConfig;
use aedb::{AedbError, AedbInstance, PreflightPlan};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn open(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    Ok(AedbInstance::open(AedbConfig::default(), dir)?)
}

async fn setup(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = open(dir).await?;
    db.create_project("p").await?;
    db.commit(create_accounts()).await?;
    for id in 1..=5 {
        db.commit(upsert(id, id * 10)).await?;
    }
    Ok(db)
}

fn create_accounts() -> Mutation {
    let column = |name: &str| ColumnDef {
        name: name.into(),
        col_type: ColumnType::Integer,
        nullable: false,
    };
    Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "accounts".into(),
        owner_id: None,
        columns: vec![column("id"), column("balance")],
        primary_key: vec!["id".into()],
    })
}

fn upsert(id: i64, balance: i64) -> Mutation {
    Mutation::Upsert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "accounts".into(),
        primary_key: vec![Value::Integer(id)],
        row: Row::from_values(vec![Value::Integer(id), Value::Integer(balance)]),
    }
}

fn delete(id: i64) -> Mutation {
    Mutation::Delete {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "accounts".into(),
        primary_key: vec![Value::Integer(id)],
    }
}

fn row_version(id: i64, expected_seq: u64) -> ReadAssertion {
    ReadAssertion::RowVersion {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "accounts".into(),
        primary_key: vec![Value::Integer(id)],
        expected_seq,
    }
}

fn guarded(plan: PreflightPlan) -> TransactionEnvelope {
    assert!(plan.valid, "{:?}", plan.errors);
    TransactionEnvelope {
        read_set: plan.read_set,
        base_seq: plan.base_seq,
        write_intent: plan.write_intent,
        ..TransactionEnvelope::default()
    }
}

async fn balance(db: &AedbInstance, id: i64) -> Result<Option<Value>, Box<dyn std::error::Error>> {
    let result = db
        .query(
            "p",
            "app",
            aedb::query::plan::Query::select(&["balance"])
                .from("accounts")
                .where_(col("id").eq(Value::Integer(id))),
        )
        .await?;
    Ok(result.rows.first().map(|r| r.values[0].clone()))
}

fn conflict(result: Result<aedb::commit::CommitResult, AedbError>, what: &str) {
    match result {
        Err(err @ AedbError::Conflict(_)) => {
            assert!(err.to_string().contains(what), "{err} should say {what}");
            assert_eq!(err.code_str(), "conflict");
        }
        other => panic!("expected a conflict ({what}), got {other:?}"),
    }
}

#[tokio::test]
async fn row_versions_are_commit_sequences_and_survive_a_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let written = db.commit(upsert(2, 99)).await?.commit_seq;
    let check = |assertion| TransactionEnvelope {
        assertions: vec![assertion],
        write_intent: aedb::commit::WriteIntent {
            mutations: vec![upsert(9, 0)],
        },
        ..TransactionEnvelope::default()
    };
    // An older version fails and writes nothing.
    let head = db.engine().visible_head_seq();
    match db.commit_envelope(check(row_version(2, written - 1))).await {
        Err(AedbError::AssertionFailed { actual, .. }) => {
            assert_eq!(*actual, AssertionActual::Version(written))
        }
        other => panic!("{other:?}"),
    }
    // Nothing of it; one commit records the failure in assertion_audit.
    assert_eq!(db.engine().visible_head_seq(), head + 1);
    assert_eq!(balance(&db, 9).await?, None);
    db.shutdown().await?;

    let db = open(dir.path()).await?;
    db.commit_envelope(check(ReadAssertion::All(vec![
        row_version(2, written),
        row_version(42, 0),
    ])))
    .await?;
    assert_eq!(balance(&db, 9).await?, Some(Value::Integer(0)));
    Ok(())
}

#[tokio::test]
async fn sum_compare_over_a_filtered_column() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let sum_at_least = |threshold: i64| ReadAssertion::SumCompare {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "accounts".into(),
        column: "balance".into(),
        filter: Some(col("id").gt(Value::Integer(2))),
        op: CompareOp::Gte,
        threshold: Value::Integer(threshold),
    };
    let envelope = |threshold| TransactionEnvelope {
        assertions: vec![sum_at_least(threshold)],
        write_intent: aedb::commit::WriteIntent {
            mutations: vec![upsert(1, 1)],
        },
        ..TransactionEnvelope::default()
    };
    // Rows 3, 4, 5: 30 + 40 + 50.
    match db.commit_envelope(envelope(121)).await {
        Err(AedbError::AssertionFailed { actual, .. }) => {
            assert_eq!(*actual, AssertionActual::Value(Value::Integer(120)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(balance(&db, 1).await?, Some(Value::Integer(10)));
    db.commit_envelope(envelope(120)).await?;
    assert_eq!(balance(&db, 1).await?, Some(Value::Integer(1)));
    Ok(())
}

#[tokio::test]
async fn a_planned_point_write_conflicts_when_its_row_or_key_changed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;

    // Unchanged since the plan: commits.
    let plan = db.preflight_plan(upsert(3, 33)).await;
    assert_eq!(plan.read_set.points.len(), 1);
    db.commit_envelope(guarded(plan)).await?;
    assert_eq!(balance(&db, 3).await?, Some(Value::Integer(33)));

    // Changed by another commit in between: Conflict, and the other commit's value stays.
    let plan = db.preflight_plan(upsert(3, 300)).await;
    db.commit(upsert(3, 31)).await?;
    conflict(db.commit_envelope(guarded(plan)).await, "read set conflict");
    assert_eq!(balance(&db, 3).await?, Some(Value::Integer(31)));

    // Deleted in between.
    let plan = db.preflight_plan(upsert(4, 400)).await;
    db.commit(delete(4)).await?;
    conflict(db.commit_envelope(guarded(plan)).await, "deleted since");
    assert_eq!(balance(&db, 4).await?, None);

    // Inserted in between (the plan saw no row).
    let plan = db.preflight_plan(upsert(7, 700)).await;
    assert_eq!(plan.read_set.points[0].version_at_read, 0);
    db.commit(upsert(7, 70)).await?;
    conflict(db.commit_envelope(guarded(plan)).await, "read set conflict");

    // KV keys too; a commutative add reads nothing.
    let kv_set = |value: &[u8]| Mutation::KvSet {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"k".to_vec(),
        value: value.to_vec(),
    };
    db.commit(kv_set(b"a")).await?;
    let plan = db.preflight_plan(kv_set(b"b")).await;
    assert_eq!(plan.read_set.points.len(), 1);
    db.commit(kv_set(b"c")).await?;
    conflict(db.commit_envelope(guarded(plan)).await, "read set conflict");
    let add = db
        .preflight_plan(Mutation::KvAddU64Ex {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"n".to_vec(),
            amount_be: 1u64.to_be_bytes(),
            on_missing: KvU64MissingPolicy::TreatAsZero,
            on_overflow: KvU64OverflowPolicy::Reject,
        })
        .await;
    assert!(add.valid && add.read_set.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_planned_predicate_write_conflicts_on_any_change_in_its_table() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let delete_small = || Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "accounts".into(),
        predicate: col("balance").lt(Value::Integer(25)),
        limit: None,
    };
    // A row inserted into the table after the plan.
    let plan = db.preflight_plan(delete_small()).await;
    assert_eq!(plan.read_set.ranges.len(), 1);
    db.commit(upsert(8, 5)).await?;
    conflict(
        db.commit_envelope(guarded(plan)).await,
        "range read set conflict",
    );

    // A row deleted from the table after the plan.
    let plan = db.preflight_plan(delete_small()).await;
    db.commit(delete(5)).await?;
    conflict(
        db.commit_envelope(guarded(plan)).await,
        "range structural conflict",
    );
    assert_eq!(
        balance(&db, 1).await?,
        Some(Value::Integer(10)),
        "nothing deleted"
    );

    // The table dropped and created again (empty) after the plan: its rows are gone.
    let plan = db.preflight_plan(delete_small()).await;
    let dropped_at = db
        .commit(Mutation::Ddl(DdlOperation::DropTable {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "accounts".into(),
            if_exists: false,
        }))
        .await?
        .commit_seq;
    db.commit(create_accounts()).await?;
    // The planned rows' points catch it first ("deleted since"); either way, a conflict.
    conflict(db.commit_envelope(guarded(plan)).await, "conflict");
    // A range alone (no point read) catches it by the catalog's delete.
    let range_only = TransactionEnvelope {
        read_set: ReadSet {
            points: Vec::new(),
            ranges: vec![ReadRangeEntry {
                range: ReadRange::TableRange {
                    project_id: "p".into(),
                    scope_id: "app".into(),
                    table_name: "accounts".into(),
                    start: ReadBound::Unbounded,
                    end: ReadBound::Unbounded,
                },
                max_version_at_read: dropped_at - 1,
                structural_version_at_read: dropped_at - 1,
            }],
        },
        base_seq: dropped_at - 1,
        write_intent: aedb::commit::WriteIntent {
            mutations: vec![upsert(1, 1)],
        },
        ..TransactionEnvelope::default()
    };
    conflict(
        db.commit_envelope(range_only).await,
        "catalog lost an entry",
    );
    for id in 1..=5 {
        db.commit(upsert(id, id * 10)).await?;
    }

    // Planned, the database reopened with nothing changed: the plan still commits.
    let plan = db.preflight_plan(delete_small()).await;
    db.shutdown().await?;
    let db = open(dir.path()).await?;
    db.commit_envelope(guarded(plan)).await?;
    assert_eq!(balance(&db, 1).await?, None);
    assert_eq!(balance(&db, 2).await?, None);
    assert_eq!(balance(&db, 3).await?, Some(Value::Integer(30)));
    Ok(())
}

#[tokio::test]
async fn a_kv_range_conflicts_only_on_writes_inside_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    for key in [b"a1", b"a2", b"b1"] {
        db.kv_set("p", "app", key.to_vec(), b"v".to_vec()).await?;
    }
    let read_at = db.engine().visible_head_seq();
    let range = |max_version_at_read| ReadRangeEntry {
        range: ReadRange::KvRange {
            project_id: "p".into(),
            scope_id: "app".into(),
            start: ReadBound::Included(b"a".to_vec()),
            end: ReadBound::Excluded(b"b".to_vec()),
        },
        max_version_at_read,
        structural_version_at_read: read_at,
    };
    let envelope = || TransactionEnvelope {
        read_set: ReadSet {
            points: Vec::new(),
            ranges: vec![range(read_at)],
        },
        base_seq: read_at,
        write_intent: aedb::commit::WriteIntent {
            mutations: vec![upsert(1, 11)],
        },
        ..TransactionEnvelope::default()
    };
    db.kv_set("p", "app", b"b2".to_vec(), b"v".to_vec()).await?;
    db.commit_envelope(envelope()).await?;
    db.kv_set("p", "app", b"a3".to_vec(), b"v".to_vec()).await?;
    conflict(
        db.commit_envelope(envelope()).await,
        "range read set conflict",
    );
    Ok(())
}
