//! `aedb::engine_interface` (behaviour spec section 8): effect batches and their rejection
//! codes, keyed state, and pull-based processors.

use aedb::catalog::schema::{ColumnDef, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::engine_interface::{
    EffectBatch, EffectBatchCommitResult, EffectEvent, EffectOperation, EffectPrecondition,
    KeyedStateQueryRequest,
};
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::{AedbError, AedbInstance};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn player(id: &str, score: i64) -> Row {
    Row::from_values(vec![Value::Text(id.into()), Value::Integer(score)])
}

async fn setup(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = AedbInstance::open(Default::default(), dir)?;
    db.create_project("g").await?;
    let column = |name: &str, col_type| ColumnDef {
        name: name.into(),
        col_type,
        nullable: false,
    };
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "g".into(),
        scope_id: "app".into(),
        table_name: "players".into(),
        owner_id: None,
        columns: vec![
            column("id", ColumnType::Text),
            column("score", ColumnType::Integer),
        ],
        primary_key: vec!["id".into()],
    }))
    .await?;
    for (name, index_type) in [("by_score", IndexType::BTree), ("hashed", IndexType::Hash)] {
        db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
            project_id: "g".into(),
            scope_id: "app".into(),
            table_name: "players".into(),
            index_name: name.into(),
            if_not_exists: false,
            columns: vec!["score".into()],
            index_type,
            partial_filter: None,
        }))
        .await?;
    }
    db.create_accumulator("g", "app", "bank", None, 100).await?;
    db.accumulate("g", "app", "bank", 1_000, "fund".into(), 1)
        .await?;
    Ok(db)
}

#[tokio::test]
async fn effect_batches_apply_all_or_report_the_failed_precondition() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let batch = |min_amount, amount| EffectBatch {
        preconditions: vec![
            EffectPrecondition::RequireAvailable {
                accumulator: "bank".into(),
                min_amount,
            },
            EffectPrecondition::RequireExposureOk {
                accumulator: "bank".into(),
                amount,
            },
        ],
        effects: vec![
            EffectOperation::Accumulate {
                accumulator: "bank".into(),
                delta: -10,
                dedupe_id: format!("d{min_amount}-{amount}"),
                order_key: 10 + min_amount as u64,
            },
            EffectOperation::Expose {
                accumulator: "bank".into(),
                amount: 100,
                dedupe_id: format!("e{min_amount}-{amount}"),
            },
            EffectOperation::Write {
                keyed_state: "players".into(),
                key: Value::Text("ann".into()),
                value: player("ann", 7),
            },
        ],
        events: vec![EffectEvent {
            event_name: "scored".into(),
            event_key: "ann".into(),
            data_json: "{\"score\":7}".into(),
        }],
    };
    match db.commit_effect_batch("g", "app", batch(1_001, 1)).await? {
        EffectBatchCommitResult::Rejected(r) => {
            assert_eq!(
                (r.error_code, r.actual_value),
                ("available_below_min", 1_000)
            );
        }
        other => panic!("{other:?}"),
    }
    match db.commit_effect_batch("g", "app", batch(0, 901)).await? {
        EffectBatchCommitResult::Rejected(r) => {
            assert_eq!(
                (r.error_code, r.actual_value),
                ("exposure_margin_exceeded", 0)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        db.commit_effect_batch("g", "app", batch(0, 1)).await?,
        EffectBatchCommitResult::Applied(_)
    ));
    assert_eq!(
        db.accumulator_value("g", "app", "bank", AtLatest).await?,
        990
    );
    assert_eq!(
        db.accumulator_exposure("g", "app", "bank", AtLatest)
            .await?,
        100
    );
    assert_eq!(
        db.keyed_state_read_field(
            "g",
            "app",
            "players",
            Value::Text("ann".into()),
            "score",
            AtLatest
        )
        .await?,
        Some(Value::Integer(7))
    );
    assert_eq!(
        db.read_event_stream(Some("scored"), 0, 10, AtLatest)
            .await?
            .events
            .len(),
        1
    );
    // Exposure rejection reports the exposure already open.
    match db.commit_effect_batch("g", "app", batch(1, 792)).await? {
        EffectBatchCommitResult::Rejected(r) => {
            assert_eq!(
                (r.error_code, r.actual_value),
                ("exposure_margin_exceeded", 100)
            );
        }
        other => panic!("{other:?}"),
    }
    let empty = EffectBatch {
        preconditions: vec![],
        effects: vec![],
        events: vec![],
    };
    assert!(matches!(
        db.commit_effect_batch("g", "app", empty).await,
        Err(AedbError::Validation(_))
    ));
    // A keyed-state write whose row does not carry its key is refused before committing.
    let mismatch = EffectBatch {
        preconditions: vec![],
        effects: vec![EffectOperation::Write {
            keyed_state: "players".into(),
            key: Value::Text("bob".into()),
            value: player("ann", 1),
        }],
        events: vec![],
    };
    assert!(db.commit_effect_batch("g", "app", mismatch).await.is_err());
    Ok(())
}

#[tokio::test]
async fn keyed_state_reads_writes_updates_and_walks_indexes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    for (id, score) in [("a", 30), ("b", 10), ("c", 20), ("d", 20)] {
        db.keyed_state_write(
            "g",
            "app",
            "players",
            Value::Text(id.into()),
            player(id, score),
        )
        .await?;
    }
    let key = |id: &str| Value::Text(id.into());
    assert_eq!(
        db.keyed_state_read("g", "app", "players", key("a"), AtLatest)
            .await?,
        Some(player("a", 30))
    );
    assert!(db
        .keyed_state_read_field("g", "app", "players", key("a"), "nope", AtLatest)
        .await
        .is_err());
    assert!(db
        .keyed_state_read("g", "app", "missing", key("a"), AtLatest)
        .await
        .is_err());

    let walk = |prefix: Vec<Value>, offset, limit| KeyedStateQueryRequest {
        index_name: "by_score".into(),
        prefix,
        offset,
        limit,
    };
    let ids =
        |rows: Vec<Row>| -> Vec<Value> { rows.into_iter().map(|r| r.values[0].clone()).collect() };
    let all = db
        .keyed_state_query_index("g", "app", "players", walk(vec![], 0, 10), AtLatest)
        .await?;
    assert_eq!(ids(all), vec![key("b"), key("c"), key("d"), key("a")]);
    let twenties = db
        .keyed_state_query_index(
            "g",
            "app",
            "players",
            walk(vec![Value::Integer(20)], 1, 10),
            AtLatest,
        )
        .await?;
    assert_eq!(ids(twenties), vec![key("d")]);
    assert!(db
        .keyed_state_query_index("g", "app", "players", walk(vec![], 0, 0), AtLatest)
        .await?
        .is_empty());
    let hashed = KeyedStateQueryRequest {
        index_name: "hashed".into(),
        ..walk(vec![], 0, 10)
    };
    assert!(db
        .keyed_state_query_index("g", "app", "players", hashed, AtLatest)
        .await?
        .is_empty());
    let unknown = KeyedStateQueryRequest {
        index_name: "nope".into(),
        ..walk(vec![], 0, 10)
    };
    assert!(db
        .keyed_state_query_index("g", "app", "players", unknown, AtLatest)
        .await
        .is_err());
    assert_eq!(
        db.keyed_state_index_rank("g", "app", "players", "by_score", key("a"), AtLatest)
            .await?,
        Some(3)
    );
    assert_eq!(
        db.keyed_state_index_rank("g", "app", "players", "by_score", key("zz"), AtLatest)
            .await?,
        None
    );

    // Update: applied when nothing changed meanwhile; a racing writer makes it fail.
    db.keyed_state_update("g", "app", "players", key("b"), |row| {
        let mut row = row.expect("b exists");
        row.values[1] = Value::Integer(11);
        Ok(Some(row))
    })
    .await?;
    assert_eq!(
        db.keyed_state_read("g", "app", "players", key("b"), AtLatest)
            .await?,
        Some(player("b", 11))
    );
    let racer = &db;
    let raced = db
        .keyed_state_update("g", "app", "players", key("b"), |row| {
            // Another writer commits between this read and the update's commit.
            let handle = tokio::runtime::Handle::current();
            std::thread::scope(|s| {
                s.spawn(|| {
                    handle.block_on(racer.keyed_state_write(
                        "g",
                        "app",
                        "players",
                        Value::Text("b".into()),
                        player("b", 99),
                    ))
                })
                .join()
                .expect("racer")
            })?;
            Ok(row.map(|mut r| {
                r.values[1] = Value::Integer(12);
                r
            }))
        })
        .await;
    assert!(
        matches!(raced, Err(AedbError::AssertionFailed { .. })),
        "{raced:?}"
    );
    assert_eq!(
        db.keyed_state_read("g", "app", "players", key("b"), AtLatest)
            .await?,
        Some(player("b", 99))
    );
    // None deletes; an update creating a missing row guards its absence.
    db.keyed_state_update("g", "app", "players", key("b"), |_| Ok(None))
        .await?;
    db.keyed_state_update("g", "app", "players", key("e"), |row| {
        assert!(row.is_none());
        Ok(Some(player("e", 5)))
    })
    .await?;
    db.keyed_state_delete("g", "app", "players", key("e"))
        .await?;
    assert_eq!(
        db.keyed_state_read("g", "app", "players", key("e"), AtLatest)
            .await?,
        None
    );
    Ok(())
}

#[tokio::test]
async fn processors_pull_and_commit_with_their_checkpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    for i in 0..3 {
        db.emit_event(
            "g",
            "app",
            "scored",
            format!("p{i}"),
            format!("{{\"points\":{i}}}"),
        )
        .await?;
    }
    db.emit_event("g", "app", "other", "x".into(), "{}".into())
        .await?;
    assert!(db.processor_pull("scored", "proc", 0).await.is_err());
    let pulled = db.processor_pull("scored", "proc", 2).await?;
    assert_eq!(pulled.events.len(), 2);
    assert_eq!(pulled.checkpoint_seq, 0);
    assert_eq!(pulled.last_commit_seq, pulled.events[1].commit_seq);

    let mut ctx = db.processor_context("g", "app", "proc", "scored");
    let events = ctx.pull(10).await?;
    assert_eq!(events.len(), 3);
    for event in &events {
        ctx.update("players", Value::Text("total".into()), |row| {
            let score = match row.as_ref().map(|r| &r.values[1]) {
                Some(Value::Integer(n)) => *n,
                _ => 0,
            };
            Ok(Some(player("total", score + 1)))
        })
        .await?;
        ctx.emit("credited", event.event_key.clone(), "{}".into());
    }
    ctx.accumulate("bank", 5, "proc-1".into(), 100);
    let last = events.last().map(|e| e.commit_seq).unwrap_or(0);
    ctx.commit().await?;
    assert_eq!(
        db.keyed_state_read("g", "app", "players", Value::Text("total".into()), AtLatest)
            .await?,
        Some(player("total", 3)),
        "the context's updates saw its own pending writes"
    );
    assert_eq!(
        db.reactive_processor_lag("proc", AtLatest)
            .await?
            .checkpoint_seq,
        last
    );
    assert_eq!(
        db.accumulator_value("g", "app", "bank", AtLatest).await?,
        1_005
    );
    assert!(db
        .processor_pull("scored", "proc", 10)
        .await?
        .events
        .is_empty());

    // Neither state nor checkpoint: refused; a checkpoint past the head: refused.
    assert!(db.processor_commit("proc", last, vec![]).await.is_err());
    assert!(db.processor_commit("proc", u64::MAX, vec![]).await.is_err());
    assert!(db.processor_commit(" ", 1, vec![]).await.is_err());
    Ok(())
}

/// A pull never splits a commit's events (a checkpoint at the last one would skip the rest), a
/// context's second pull continues after its first, and effects whose checkpoint does not
/// move — a retry, another worker — are refused rather than applied twice (review findings).
#[tokio::test]
async fn pulls_keep_commits_whole_and_effects_are_not_applied_twice() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let event = |key: &str| Mutation::EmitEvent {
        project_id: "g".into(),
        scope_id: "app".into(),
        topic: "scored".into(),
        event_key: key.into(),
        payload_json: "{}".into(),
    };
    let a = db.commit(event("a")).await?.commit_seq;
    let b = db
        .commit_many_atomic(vec![event("b1"), event("b2"), event("b3")])
        .await?
        .commit_seq;
    // Two events would split commit b: only a comes, and the checkpoint would be a.
    let pulled = db.processor_pull("scored", "p", 2).await?;
    let keys: Vec<_> = pulled.events.iter().map(|e| e.event_key.as_str()).collect();
    assert_eq!((keys, pulled.last_commit_seq), (vec!["a"], a));
    let mut ctx = db.processor_context("g", "app", "p", "scored");
    assert_eq!(ctx.pull(2).await?.len(), 1);
    // The second pull goes on after the first; commit b comes whole, past the limit.
    let second = ctx.pull(2).await?;
    let keys: Vec<_> = second.iter().map(|e| e.event_key.as_str()).collect();
    assert_eq!(keys, ["b1", "b2", "b3"]);
    ctx.commit().await?;
    assert_eq!(
        db.reactive_processor_lag("p", AtLatest)
            .await?
            .checkpoint_seq,
        b
    );
    // The same effects again with the same checkpoint: refused, nothing applied twice.
    let credit = |value: &[u8]| Mutation::KvSet {
        project_id: "g".into(),
        scope_id: "app".into(),
        key: b"credited".to_vec(),
        value: value.to_vec(),
    };
    db.processor_commit("q", b, vec![credit(b"once")]).await?;
    assert!(matches!(
        db.processor_commit("q", b, vec![credit(b"twice")]).await,
        Err(AedbError::Conflict(_))
    ));
    let stored = db.kv_get_no_auth("g", "app", b"credited", AtLatest).await?;
    assert_eq!(stored.map(|e| e.value), Some(b"once".to_vec()));
    Ok(())
}

/// A context's `update` holds only while the row it read is unchanged: a writer that commits
/// the row in between fails the context's commit, and nothing of it (state, checkpoint)
/// lands (review finding: a lost update).
#[tokio::test]
async fn a_context_update_raced_by_another_writer_commits_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let total = || Value::Text("total".into());
    db.keyed_state_write("g", "app", "players", total(), player("total", 10))
        .await?;
    db.emit_event("g", "app", "scored", "e1".into(), "{}".into())
        .await?;
    let mut ctx = db.processor_context("g", "app", "p", "scored");
    assert_eq!(ctx.pull(10).await?.len(), 1);
    ctx.update("players", total(), |row| {
        let row = row.expect("total exists");
        let score = match row.values[1] {
            Value::Integer(n) => n,
            _ => 0,
        };
        Ok(Some(player("total", score + 1)))
    })
    .await?;
    // Another writer changes the row after the context read it.
    db.keyed_state_write("g", "app", "players", total(), player("total", 50))
        .await?;
    let refused = ctx.commit().await;
    assert!(
        matches!(refused, Err(AedbError::AssertionFailed { .. })),
        "{refused:?}"
    );
    assert_eq!(
        db.keyed_state_read("g", "app", "players", total(), AtLatest)
            .await?,
        Some(player("total", 50)),
        "the other writer's row stays"
    );
    assert_eq!(
        db.reactive_processor_lag("p", AtLatest)
            .await?
            .checkpoint_seq,
        0,
        "the checkpoint did not move"
    );

    // A row absent at the read must still be absent at the commit.
    let mut ctx = db.processor_context("g", "app", "p", "scored");
    ctx.pull(10).await?;
    ctx.update("players", Value::Text("new".into()), |row| {
        assert!(row.is_none());
        Ok(Some(player("new", 1)))
    })
    .await?;
    db.keyed_state_write(
        "g",
        "app",
        "players",
        Value::Text("new".into()),
        player("new", 7),
    )
    .await?;
    assert!(matches!(
        ctx.commit().await,
        Err(AedbError::AssertionFailed { .. })
    ));

    // Unraced, the same work commits.
    let mut ctx = db.processor_context("g", "app", "p", "scored");
    ctx.pull(10).await?;
    ctx.update("players", total(), |_| Ok(Some(player("total", 51))))
        .await?;
    ctx.commit().await?;
    assert_eq!(
        db.keyed_state_read("g", "app", "players", total(), AtLatest)
            .await?,
        Some(player("total", 51))
    );
    Ok(())
}

/// `processor_commit` commits as every other commit does: a refused exposure is counted, and
/// the actor of a grant is the committing caller (none here), whatever the mutation says.
#[tokio::test]
async fn processor_commits_count_refusals_and_stamp_actors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.emit_event("g", "app", "scored", "e1".into(), "{}".into())
        .await?;
    let head = db.processor_pull("scored", "p", 10).await?.last_commit_seq;
    let too_much = Mutation::ExposeAccumulator {
        project_id: "g".into(),
        scope_id: "app".into(),
        accumulator_name: "bank".into(),
        amount: 1_000,
        exposure_id: "x".into(),
    };
    assert!(db
        .processor_commit("p", head, vec![too_much])
        .await
        .is_err());
    let metrics = db
        .accumulator_exposure_metrics("g", "app", "bank", AtLatest)
        .await?;
    assert_eq!(metrics.rejection_count, 1);

    let forged = Mutation::Ddl(DdlOperation::GrantPermission {
        caller_id: "reader".into(),
        permission: aedb::permission::Permission::ProjectAdmin {
            project_id: "g".into(),
        },
        actor_id: Some("mallory".into()),
        delegable: false,
    });
    db.processor_commit("p", head, vec![forged]).await?;
    let audit = db
        .query(
            "_system",
            "app",
            aedb::query::plan::Query::select(&["*"])
                .from("authz_audit")
                .limit(10),
        )
        .await?;
    assert_eq!(audit.rows.len(), 1);
    let row = format!("{:?}", audit.rows[0]);
    assert!(!row.contains("mallory"), "{row}");
    Ok(())
}

/// Index walks of keyed state examine at most `max_scan_rows` entries: a rank or an offset
/// past it is a typed `ScanBoundExceeded`, not an unbounded walk.
#[tokio::test]
async fn keyed_state_index_walks_are_bounded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = aedb::config::AedbConfig {
        max_scan_rows: 5,
        ..Default::default()
    };
    let db = AedbInstance::open(config, dir.path())?;
    db.create_project("g").await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "g".into(),
        scope_id: "app".into(),
        table_name: "players".into(),
        owner_id: None,
        columns: vec![
            ColumnDef {
                name: "id".into(),
                col_type: ColumnType::Text,
                nullable: false,
            },
            ColumnDef {
                name: "score".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            },
        ],
        primary_key: vec!["id".into()],
    }))
    .await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
        project_id: "g".into(),
        scope_id: "app".into(),
        table_name: "players".into(),
        index_name: "by_score".into(),
        if_not_exists: false,
        columns: vec!["score".into()],
        index_type: IndexType::BTree,
        partial_filter: None,
    }))
    .await?;
    for i in 0..8 {
        let id = format!("p{i}");
        db.keyed_state_write(
            "g",
            "app",
            "players",
            Value::Text(id.clone()),
            player(&id, i),
        )
        .await?;
    }
    let rank = |id: &str| {
        db.keyed_state_index_rank(
            "g",
            "app",
            "players",
            "by_score",
            Value::Text(id.into()),
            AtLatest,
        )
    };
    assert_eq!(rank("p4").await?, Some(4));
    assert!(matches!(
        rank("p6").await,
        Err(AedbError::ScanBoundExceeded {
            max_scan_rows: 5,
            ..
        })
    ));
    let walk = |offset, limit| KeyedStateQueryRequest {
        index_name: "by_score".into(),
        prefix: vec![],
        offset,
        limit,
    };
    assert_eq!(
        db.keyed_state_query_index("g", "app", "players", walk(2, 3), AtLatest)
            .await?
            .len(),
        3
    );
    assert!(matches!(
        db.keyed_state_query_index("g", "app", "players", walk(4, 3), AtLatest)
            .await,
        Err(AedbError::ScanBoundExceeded { .. })
    ));
    // The bound is on entries examined, not on the limit asked for.
    let one_score = KeyedStateQueryRequest {
        prefix: vec![Value::Integer(1)],
        ..walk(0, usize::MAX)
    };
    assert_eq!(
        db.keyed_state_query_index("g", "app", "players", one_score, AtLatest)
            .await?,
        vec![player("p1", 1)]
    );
    Ok(())
}

/// A pull starts after the processor's checkpoint as its newest commit left it: in Batch mode
/// that commit may not be durable yet while the events before it are, and reading the
/// checkpoint in the delivery snapshot would hand out again what it covers.
#[tokio::test]
async fn a_pull_starts_after_a_checkpoint_not_yet_durable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = aedb::config::AedbConfig {
        durability_mode: aedb::config::DurabilityMode::Batch,
        batch_interval_ms: 3_600_000,
        ..Default::default()
    };
    let db = AedbInstance::open(config, dir.path())?;
    db.create_project("g").await?;
    let event = Mutation::EmitEvent {
        project_id: "g".into(),
        scope_id: "app".into(),
        topic: "scored".into(),
        event_key: "a".into(),
        payload_json: "{}".into(),
    };
    let a = db
        .commit_with_finality(event, aedb::CommitFinality::Durable)
        .await?
        .commit_seq;
    let pulled = db.processor_pull("scored", "p", 10).await?;
    assert_eq!(pulled.events.len(), 1);
    db.processor_commit("p", a, Vec::new()).await?;
    let again = db.processor_pull("scored", "p", 10).await?;
    assert!(again.events.is_empty(), "pulled again: {:?}", again.events);
    assert_eq!(again.checkpoint_seq, a);
    Ok(())
}
