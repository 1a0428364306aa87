//! Reactive processors (behaviour spec 7.2, 7.3, and issue #12's fixes): checkpoints that
//! work before any start, each event delivered once while running, stop/resume and restarts
//! continuing from the persisted checkpoint, retries, dead letters, panics, SLOs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::{AedbError, AedbInstance, EventOutboxRecord, ReactiveProcessorOptions};
use parking_lot::Mutex;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Deliveries per (commit, key).
type Seen = Arc<Mutex<HashMap<(u64, String), u32>>>;

fn fast() -> ReactiveProcessorOptions {
    ReactiveProcessorOptions {
        run_interval_ms: 1,
        idle_backoff_ms: 2,
        retry_backoff_ms: 1,
        ..ReactiveProcessorOptions::default()
    }
}

async fn open(dir: &std::path::Path) -> Result<Arc<AedbInstance>, AedbError> {
    Ok(Arc::new(AedbInstance::open(AedbConfig::default(), dir)?))
}

async fn emit(db: &AedbInstance, n: u32, from: u32) -> Result<(), AedbError> {
    for i in from..from + n {
        db.emit_event("p", "app", "t", format!("e{i}"), format!("{{\"i\":{i}}}"))
            .await?;
    }
    Ok(())
}

fn counting(
    seen: Seen,
) -> impl Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> std::future::Ready<Result<(), AedbError>>
       + Send
       + Sync
       + 'static {
    move |_db, events| {
        let mut seen = seen.lock();
        for e in events {
            *seen.entry((e.commit_seq, e.event_key)).or_default() += 1;
        }
        std::future::ready(Ok(()))
    }
}

/// Open once the previous instance has closed (its processors' runs end first), within 5 s.
async fn reopen(dir: &std::path::Path) -> Result<Arc<AedbInstance>, AedbError> {
    for _ in 0..1_000 {
        match open(dir).await {
            Err(AedbError::Locked { .. }) => tokio::time::sleep(Duration::from_millis(5)).await,
            other => return other,
        }
    }
    open(dir).await
}

/// Wait until `done` holds (the processor runs on its own task), at most 10 s.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached in time");
}

#[tokio::test]
async fn checkpoints_work_before_any_processor_started() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    emit(&db, 30, 0).await?;
    // The README's order: ack before any processor exists (the original fails "table missing").
    db.ack_reactive_processor_checkpoint("points_processor", 2)
        .await?;
    let lag = db
        .reactive_processor_lag("points_processor", AtLatest)
        .await?;
    assert_eq!(lag.checkpoint_seq, 2);
    assert_eq!(lag.lag_commits, lag.head_seq - 2);
    match db
        .ack_reactive_processor_checkpoint("points_processor", 1)
        .await
    {
        Err(AedbError::Validation(m)) => {
            assert_eq!(m, "checkpoint_seq 1 regresses current checkpoint 2")
        }
        other => panic!("{other:?}"),
    }
    db.ack_reactive_processor_checkpoint("points_processor", 2)
        .await?;
    assert!(db.ack_reactive_processor_checkpoint(" ", 2).await.is_err());
    // Batched: persists only past the watermark.
    assert!(
        db.ack_reactive_processor_checkpoint_batched("b", 5, 10)
            .await?
            .is_some(),
        "first ack"
    );
    assert!(db
        .ack_reactive_processor_checkpoint_batched("b", 9, 10)
        .await?
        .is_none());
    assert_eq!(
        db.reactive_processor_lag("b", AtLatest)
            .await?
            .checkpoint_seq,
        5
    );
    assert!(db
        .ack_reactive_processor_checkpoint_batched("b", 15, 10)
        .await?
        .is_some());
    assert_eq!(
        db.reactive_processor_lag("b", AtLatest)
            .await?
            .checkpoint_seq,
        15
    );
    assert!(db
        .ack_reactive_processor_checkpoint_batched("b", 20, 0)
        .await
        .is_err());
    let fresh = db.reactive_processor_lag("never", AtLatest).await?;
    assert_eq!(fresh.checkpoint_seq, 0);
    Ok(())
}

#[tokio::test]
async fn a_running_processor_sees_each_event_once_and_stop_resume_continues() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    emit(&db, 5, 0).await?;
    let seen: Seen = Default::default();
    db.start_reactive_processor("proc", fast(), counting(seen.clone()))
        .await?;
    assert!(
        db.start_reactive_processor("proc", fast(), counting(seen.clone()))
            .await
            .is_err(),
        "already running"
    );
    until(|| seen.lock().len() == 5).await;
    emit(&db, 5, 5).await?;
    until(|| seen.lock().len() == 10).await;
    // Let it idle a while: nothing is delivered again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(seen.lock().values().all(|n| *n == 1), "{:?}", seen.lock());

    db.stop_reactive_processor("proc").await?;
    assert!(db.reactive_processor_runtime_status("proc").await.is_none());
    let lag = db.reactive_processor_lag("proc", AtLatest).await?;
    let last_event = *seen.lock().keys().map(|(seq, _)| seq).max().unwrap_or(&0);
    assert!(
        lag.checkpoint_seq >= last_event,
        "stop persists the position"
    );
    emit(&db, 3, 10).await?;
    db.resume_reactive_processor("proc").await?;
    until(|| seen.lock().len() == 13).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(
        seen.lock().values().all(|n| *n == 1),
        "no redelivery after resume"
    );
    let health = db.reactive_processor_health("proc", AtLatest).await?;
    assert!(health.enabled && health.running);
    assert_eq!(
        health.processed_events_total, 3,
        "counters of the resumed run"
    );
    let listed = db.list_reactive_processors(AtLatest).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].options, fast());
    db.pause_reactive_processor("proc").await?;
    assert!(!db.list_reactive_processors(AtLatest).await?[0].enabled);
    Ok(())
}

#[tokio::test]
async fn a_restart_resumes_an_enabled_processor_from_its_checkpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let seen: Seen = Default::default();
    {
        let db = open(dir.path()).await?;
        db.create_project("p").await?;
        emit(&db, 4, 0).await?;
        let options = ReactiveProcessorOptions {
            checkpoint_watermark_commits: 1,
            ..fast()
        };
        db.start_reactive_processor("proc", options, counting(seen.clone()))
            .await?;
        until(|| seen.lock().len() == 4).await;
        let last = *seen.lock().keys().map(|(seq, _)| seq).max().unwrap_or(&0);
        // The watermark of 1 persists every batch; wait for the last one.
        for _ in 0..2_000 {
            if db
                .reactive_processor_lag("proc", AtLatest)
                .await?
                .checkpoint_seq
                >= last
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            db.reactive_processor_lag("proc", AtLatest)
                .await?
                .checkpoint_seq
                >= last
        );
        // Dropped without stopping: the registry still says enabled.
    }
    // A processor holds the instance only during a run: once that run ends, the instance
    // closes and the directory is free again.
    let db = reopen(dir.path()).await?;
    emit(&db, 2, 4).await?;
    let resumed = db
        .register_reactive_processor_handler("proc", counting(seen.clone()))
        .await?;
    assert!(resumed);
    until(|| seen.lock().len() == 6).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(seen.lock().values().all(|n| *n == 1), "{:?}", seen.lock());
    // A stopped processor is not resumed by a restart.
    db.stop_reactive_processor("proc").await?;
    assert!(
        !db.register_reactive_processor_handler("proc", counting(seen.clone()))
            .await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_then_dead_letter_without_stalling() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.emit_event("p", "app", "t", "poison".into(), "{}".into())
        .await?;
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = calls.clone();
    let options = ReactiveProcessorOptions {
        max_retries: 2,
        max_events_per_run: 1,
        ..fast()
    };
    db.start_reactive_processor("proc", options, move |_db, events| {
        let log = log.clone();
        async move {
            let key = events[0].event_key.clone();
            log.lock().push(key.clone());
            match key.as_str() {
                "poison" => Err(AedbError::Validation("cannot handle".into())),
                "panic" => panic!("handler bug"),
                _ => Ok(()),
            }
        }
    })
    .await?;
    db.emit_event("p", "app", "t", "panic".into(), "{}".into())
        .await?;
    db.emit_event("p", "app", "t", "fine".into(), "{}".into())
        .await?;
    until(|| calls.lock().iter().any(|k| k == "fine")).await;
    let calls = calls.lock().clone();
    assert_eq!(
        calls.iter().filter(|k| *k == "poison").count(),
        3,
        "1 try + 2 retries"
    );
    assert_eq!(calls.iter().filter(|k| *k == "panic").count(), 3);
    let letters = db.reactive_processor_dead_letters("proc", AtLatest).await?;
    let keys: Vec<&str> = letters.iter().map(|l| l.event_key.as_str()).collect();
    assert_eq!(keys, vec!["poison", "panic"]);
    assert_eq!(letters[0].attempts, 3);
    assert!(
        letters[1].error.contains("panicked"),
        "{}",
        letters[1].error
    );
    let status = db
        .reactive_processor_runtime_status("proc")
        .await
        .expect("running");
    assert_eq!(status.dead_lettered_total, 2);
    assert_eq!(status.retries_total, 4);
    assert!(status.running);
    // The dead-letter table is an ordinary, queryable table.
    let rows = db
        .query(
            "_system",
            "app",
            aedb::query::plan::Query::select(&["*"])
                .from("reactive_processor_dead_letters")
                .limit(10),
        )
        .await?;
    assert_eq!(rows.rows.len(), 2);
    Ok(())
}

#[tokio::test]
async fn options_are_checked_and_slos_report_breaches() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    let seen: Seen = Default::default();
    let zero = ReactiveProcessorOptions {
        max_events_per_run: 0,
        ..fast()
    };
    match db
        .start_reactive_processor("x", zero, counting(seen.clone()))
        .await
    {
        Err(AedbError::Validation(m)) => assert_eq!(m, "reactive processor options must be > 0"),
        other => panic!("{other:?}"),
    }
    let reserved = ReactiveProcessorOptions {
        caller_id: Some("system".into()),
        ..fast()
    };
    assert!(matches!(
        db.start_reactive_processor("x", reserved, counting(seen.clone()))
            .await,
        Err(AedbError::PermissionDenied(_))
    ));
    assert!(
        db.reactive_processor_slo_status("x", AtLatest)
            .await
            .is_err(),
        "not registered"
    );

    // A processor stuck in its handler falls behind every commit.
    let strict = ReactiveProcessorOptions {
        max_allowed_lag_commits: Some(3),
        ..fast()
    };
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    db.start_reactive_processor("slow", strict, move |_db, _events| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            Ok(())
        }
    })
    .await?;
    db.ack_reactive_processor_checkpoint(
        "slow",
        db.reactive_processor_lag("slow", AtLatest).await?.head_seq,
    )
    .await?;
    db.enforce_reactive_processor_slos(AtLatest).await?;
    emit(&db, 5, 0).await?;
    let slo = db.reactive_processor_slo_status("slow", AtLatest).await?;
    assert!(slo.breached && slo.enabled, "{slo:?}");
    assert!(
        slo.reasons[0].starts_with("lag_commits"),
        "{:?}",
        slo.reasons
    );
    match db.enforce_reactive_processor_slos(AtLatest).await {
        Err(AedbError::Unavailable { message }) => {
            assert!(
                message.starts_with("reactive processor SLO breach: slow: lag_commits"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        db.list_reactive_processor_slo_statuses(AtLatest)
            .await?
            .len(),
        1
    );
    // Paused, it no longer breaches.
    release.notify_waiters();
    release.notify_one();
    db.pause_reactive_processor("slow").await?;
    assert!(
        !db.reactive_processor_slo_status("slow", AtLatest)
            .await?
            .breached
    );
    db.enforce_reactive_processor_slos(AtLatest).await?;

    Ok(())
}
