//! The README's other snippets, as written: the consistency-modes example and the low-latency
//! profile (the Quick Start runs verbatim as `examples/readme_quickstart.rs`).

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::AedbInstance;

async fn users_db(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = AedbInstance::open(Default::default(), dir)?;
    db.create_project("demo").await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "demo".into(),
        scope_id: "app".into(),
        table_name: "users".into(),
        owner_id: None,
        columns: vec![
            ColumnDef {
                name: "id".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            },
            ColumnDef {
                name: "username".into(),
                col_type: ColumnType::Text,
                nullable: false,
            },
        ],
        primary_key: vec!["id".into()],
    }))
    .await?;
    db.commit(Mutation::Insert {
        project_id: "demo".into(),
        scope_id: "app".into(),
        table_name: "users".into(),
        primary_key: vec![Value::Integer(1)],
        row: Row::from_values(vec![Value::Integer(1), Value::Text("alice".into())]),
    })
    .await?;
    Ok(db)
}

#[tokio::test]
async fn consistency_modes_snippet_works_on_a_new_database(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = users_db(dir.path()).await?;

    // --- README, "Consistency modes", verbatim ---
    use aedb::query::plan::{ConsistencyMode, Query, QueryOptions};

    let result = db
        .query_with_options(
            "demo",
            "app",
            Query::select(&["*"]).from("users"),
            QueryOptions {
                consistency: ConsistencyMode::AtCheckpoint,
                ..QueryOptions::default()
            },
        )
        .await?;

    println!("snapshot seq = {}", result.snapshot_seq);
    // --- end of the snippet ---

    // No checkpoint yet beyond the one of creation: the table is empty there.
    assert_eq!(result.snapshot_seq, 0);
    assert!(result.rows.is_empty());
    // After a checkpoint the same query sees the row, and AtLatest sees it at once.
    db.checkpoint_now().await?;
    let at_checkpoint = db
        .query_with_options(
            "demo",
            "app",
            Query::select(&["*"]).from("users"),
            QueryOptions {
                consistency: ConsistencyMode::AtCheckpoint,
                ..QueryOptions::default()
            },
        )
        .await?;
    assert_eq!(at_checkpoint.rows.len(), 1);
    assert_eq!(at_checkpoint.snapshot_seq, db.engine().visible_head_seq());
    let latest = db
        .query("demo", "app", Query::select(&["*"]).from("users"))
        .await?;
    assert_eq!(
        latest.rows,
        vec![Row::from_values(vec![
            Value::Integer(1),
            Value::Text("alice".into())
        ])]
    );
    Ok(())
}

#[tokio::test]
async fn low_latency_snippet_opens_and_commits() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // --- README, "Low-latency profile example", verbatim ---
    use aedb::config::AedbConfig;

    let config = AedbConfig::low_latency([7u8; 32]);
    let db = aedb::AedbInstance::open(config, dir.path())?;
    // --- end of the snippet ---

    db.create_project("demo").await?;
    let visible = db
        .kv_set("demo", "app", b"k".to_vec(), b"v".to_vec())
        .await?;
    assert!(visible.durable_head_seq <= visible.commit_seq);
    let durable = db
        .commit_with_finality(
            Mutation::KvSet {
                project_id: "demo".into(),
                scope_id: "app".into(),
                key: b"k2".to_vec(),
                value: b"v2".to_vec(),
            },
            aedb::CommitFinality::Durable,
        )
        .await?;
    assert!(durable.durable_head_seq >= durable.commit_seq);
    Ok(())
}

/// The README's accumulator snippet (its accumulator half: events and processors arrive with
/// their own work), verbatim from `db.create_accumulator` to `accumulator_exposure_metrics`.
async fn accumulator_snippet(db: &AedbInstance) -> Result<(), Box<dyn std::error::Error>> {
    use aedb::query::plan::ConsistencyMode;

    // --- README, "Accumulator example", verbatim ---
    db.create_accumulator("casino", "app", "house_balance", Some(86_400), 10_000)
        .await?;

    db.accumulate(
        "casino",
        "app",
        "house_balance",
        -125,                   // delta
        "settle_tx_123".into(), // dedupe key
        42,                     // order key
    )
    .await?;

    let projected = db
        .accumulator_value("casino", "app", "house_balance", ConsistencyMode::AtLatest)
        .await?;
    let strong = db
        .accumulator_value_strong("casino", "app", "house_balance", ConsistencyMode::AtLatest)
        .await?;
    let lag = db
        .accumulator_lag("casino", "app", "house_balance", ConsistencyMode::AtLatest)
        .await?;

    // Optional circuit-breaker controls (basis points + orphan TTL in commit units)
    db.create_accumulator_with_options(
        "casino",
        "app",
        "house_balance_cb",
        Some(86_400),
        10_000,
        1_000, // 10% exposure margin
        Some(20_000),
    )
    .await?;

    db.expose_accumulator("casino", "app", "house_balance_cb", 500, "hand-42".into())
        .await?;
    db.accumulate_with_release(
        "casino",
        "app",
        "house_balance_cb",
        -120,
        "settle_hand_42".into(),
        43,
        Some("hand-42".into()),
    )
    .await?;
    let exposure = db
        .accumulator_exposure(
            "casino",
            "app",
            "house_balance_cb",
            ConsistencyMode::AtLatest,
        )
        .await?;
    let available = db
        .accumulator_available(
            "casino",
            "app",
            "house_balance_cb",
            ConsistencyMode::AtLatest,
        )
        .await?;
    let exposure_metrics = db
        .accumulator_exposure_metrics(
            "casino",
            "app",
            "house_balance_cb",
            ConsistencyMode::AtLatest,
        )
        .await?;
    // --- end of the snippet ---

    assert_eq!((projected, strong), (-125, -125));
    assert_eq!(lag.unapplied_deltas, 0);
    assert_eq!((exposure, available), (0, -120));
    assert_eq!(exposure_metrics.open_exposure_count, 0);
    Ok(())
}

/// The snippet runs as written up to its first exposure, which the README's own safety model
/// refuses: exposures are checked against the effective value, and `house_balance_cb` was
/// created a line before with nothing in it (limit 0). Nothing after the refusal is applied.
#[tokio::test]
async fn accumulator_snippet_stops_where_its_margin_rule_refuses(
) -> Result<(), Box<dyn std::error::Error>> {
    use aedb::query::plan::ConsistencyMode::AtLatest;

    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    db.create_project("casino").await?;
    let outcome = accumulator_snippet(&db).await;
    let refusal = outcome.expect_err("an unfunded exposure is refused");
    assert_eq!(
        refusal.to_string(),
        "validation failed: exposure margin exceeded: requested_total=500, allowed=0"
    );
    assert_eq!(
        db.accumulator_value("casino", "app", "house_balance", AtLatest)
            .await?,
        -125
    );
    assert_eq!(
        db.accumulator_value("casino", "app", "house_balance_cb", AtLatest)
            .await?,
        0
    );
    let metrics = db
        .accumulator_exposure_metrics("casino", "app", "house_balance_cb", AtLatest)
        .await?;
    assert_eq!((metrics.total_exposure, metrics.rejection_count), (0, 1));
    Ok(())
}

/// The README's hand lifecycle and batch reserve, on a funded balance.
#[tokio::test]
async fn hand_lifecycle_snippets_on_a_funded_balance() -> Result<(), Box<dyn std::error::Error>> {
    use aedb::query::plan::ConsistencyMode::AtLatest;

    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    db.create_project("casino").await?;
    db.create_accumulator_with_options(
        "casino",
        "app",
        "house_balance_cb",
        Some(86_400),
        10_000,
        1_000,
        Some(20_000),
    )
    .await?;
    db.accumulate(
        "casino",
        "app",
        "house_balance_cb",
        10_000,
        "fund".into(),
        1,
    )
    .await?;
    let (max_payout, hand_id, actual_result, settle_seq) = (500, "hand-7".to_string(), -120, 2);

    // --- README, "Recommended hand lifecycle", verbatim ---
    // 1) Reserve max loss at deal time (fast circuit breaker)
    db.expose_accumulator(
        "casino",
        "app",
        "house_balance_cb",
        max_payout,
        hand_id.clone(),
    )
    .await?;

    // 2) Apply actual outcome and release full reservation at settle time
    db.accumulate_with_release(
        "casino",
        "app",
        "house_balance_cb",
        actual_result,
        hand_id.clone(), // dedupe key
        settle_seq,
        Some(hand_id), // release exposure id
    )
    .await?;
    // --- end of the snippet ---

    // --- README, "For bursty deal traffic, use atomic batch reserve", verbatim ---
    db.expose_accumulator_many_atomic(
        "casino",
        "app",
        "house_balance_cb",
        vec![
            (500, "hand-101".to_string()),
            (750, "hand-102".to_string()),
            (300, "hand-103".to_string()),
        ],
    )
    .await?;
    // --- end of the snippet ---

    assert_eq!(
        db.accumulator_value_strong("casino", "app", "house_balance_cb", AtLatest)
            .await?,
        9_880
    );
    assert_eq!(
        db.accumulator_exposure("casino", "app", "house_balance_cb", AtLatest)
            .await?,
        1_550
    );
    Ok(())
}

/// The README's event stream and processor checkpoint lines (the second half of its
/// accumulator example), verbatim: the ack works before any processor was started.
#[tokio::test]
async fn event_stream_snippet_runs() -> Result<(), Box<dyn std::error::Error>> {
    use aedb::query::plan::ConsistencyMode;

    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    db.create_project("casino").await?;

    // --- README, "Accumulator example" (events part), verbatim ---
    // Tier-2 event stream + processor checkpoint primitives
    db.emit_event(
        "casino",
        "app",
        "hand_settled",
        "hand_42".into(),
        r#"{"user_id":"u1","wager":100,"pnl":-120}"#.into(),
    )
    .await?;

    let page = db
        .read_event_stream(Some("hand_settled"), 0, 100, ConsistencyMode::AtLatest)
        .await?;
    db.ack_reactive_processor_checkpoint("points_processor", page.next_commit_seq.unwrap_or(0))
        .await?;
    let processor_lag = db
        .reactive_processor_lag("points_processor", ConsistencyMode::AtLatest)
        .await?;
    // --- end of the snippet ---

    assert_eq!(page.events.len(), 1);
    assert_eq!(
        processor_lag.checkpoint_seq,
        page.next_commit_seq.unwrap_or(0)
    );
    // 150 more commits, so the processor's progress passes the watermark of 100.
    for i in 0..150 {
        db.kv_set("casino", "app", format!("k{i}").into_bytes(), b"v".to_vec())
            .await?;
    }
    let processed_seq = processor_lag.checkpoint_seq + 150;

    // --- README, "watermark-batched checkpoint ACKs", verbatim ---
    db.ack_reactive_processor_checkpoint_batched(
        "points_processor",
        processed_seq,
        100, // persist every 100 commits advanced
    )
    .await?;
    // --- end of the snippet ---

    let lag = db
        .reactive_processor_lag("points_processor", ConsistencyMode::AtLatest)
        .await?;
    assert_eq!(lag.checkpoint_seq, processed_seq);
    Ok(())
}

/// The README's processor scheduler and restart snippets, verbatim (the restart handler
/// ignores its arguments, as written).
#[tokio::test]
#[allow(unused_variables)]
async fn processor_snippets_run() -> Result<(), Box<dyn std::error::Error>> {
    use aedb::query::plan::ConsistencyMode;

    let dir = tempfile::tempdir()?;
    {
        let db = AedbInstance::open(Default::default(), dir.path())?;
        db.create_project("casino").await?;
        db.emit_event(
            "casino",
            "app",
            "hand_settled",
            "hand_1".into(),
            "{}".into(),
        )
        .await?;

        // --- README, "Built-in processor scheduler", verbatim ---
        use std::sync::Arc;

        let db = Arc::new(db);
        db.start_reactive_processor(
            "points_processor",
            aedb::ReactiveProcessorOptions {
                caller_id: Some("processor_points".into()),
                topic_filter: Some("hand_settled".into()),
                run_on_interval: false,
                max_allowed_lag_commits: Some(2_000),
                max_allowed_stall_ms: Some(30_000),
                max_events_per_run: 256,
                max_bytes_per_run: 2 * 1024 * 1024,
                max_run_duration_ms: 250,
                run_interval_ms: 20,
                idle_backoff_ms: 50,
                checkpoint_watermark_commits: 64,
                max_retries: 3,
                retry_backoff_ms: 100,
            },
            move |db, events| async move {
                // Your derived-state logic (idempotent)
                for event in events {
                    let _ = db
                        .emit_event(
                            "casino",
                            "app",
                            "points_applied",
                            format!("points:{}", event.event_key),
                            event.payload_json,
                        )
                        .await?;
                }
                Ok(())
            },
        )
        .await?;

        let status = db
            .reactive_processor_runtime_status("points_processor")
            .await;

        let health = db
            .reactive_processor_health("points_processor", ConsistencyMode::AtLatest)
            .await?;

        let processors = db
            .list_reactive_processors(ConsistencyMode::AtLatest)
            .await?;

        db.stop_reactive_processor("points_processor").await?;
        // --- end of the snippet ---

        assert!(status.is_some());
        assert!(health.enabled);
        assert_eq!(processors.len(), 1);
        // A stopped processor is not resumed; start it again and let the process "end" with
        // it running, so the restart below resumes it.
        db.resume_reactive_processor("points_processor").await?;
        for _ in 0..2_000 {
            let page = db
                .read_event_stream(Some("points_applied"), 0, 10, ConsistencyMode::AtLatest)
                .await?;
            if !page.events.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    let db = loop {
        match AedbInstance::open(Default::default(), dir.path()) {
            Err(aedb::AedbError::Locked { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await
            }
            other => break std::sync::Arc::new(other?),
        }
    };

    // --- README, restart, verbatim ---
    let resumed = db
        .register_reactive_processor_handler("points_processor", move |db, events| async move {
            // same handler logic
            Ok(())
        })
        .await?;
    assert!(resumed); // true when durable registry had enabled processor config
                      // --- end of the snippet ---

    let page = db
        .read_event_stream(Some("points_applied"), 0, 10, ConsistencyMode::AtLatest)
        .await?;
    assert_eq!(
        page.events.len(),
        1,
        "the handler emitted its derived event once"
    );
    Ok(())
}
