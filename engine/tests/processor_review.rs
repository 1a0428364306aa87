//! Reactive processors under the cases an adversarial review found (each once a bug): commits
//! larger than a page, dead letters that do not fit one commit, topics sharing keys, panics
//! before a handler's future exists, stop/resume races, drops during retries, a handler
//! stopping its own processor, and writes into the system project.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aedb::catalog::schema::TableAlteration;
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::{AedbError, AedbInstance, EventOutboxRecord, ReactiveProcessorOptions};
use parking_lot::Mutex;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Seen = Arc<Mutex<HashMap<(u64, String, String), u32>>>;

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

fn ev(topic: &str, key: String) -> Mutation {
    Mutation::EmitEvent {
        project_id: "p".into(),
        scope_id: "app".into(),
        topic: topic.into(),
        event_key: key,
        payload_json: "{}".into(),
    }
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
            *seen
                .entry((e.commit_seq, e.topic, e.event_key))
                .or_default() += 1;
        }
        std::future::ready(Ok(()))
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// A commit of 200 events (more than a page of 128) followed by another: every event is
/// delivered once.
#[tokio::test]
async fn every_event_of_a_commit_larger_than_a_page_is_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.commit_many_atomic((0..200).map(|i| ev("t", format!("k{i:03}"))).collect())
        .await?;
    db.commit_many_atomic(vec![ev("t", "after".into())]).await?;
    let seen: Seen = Default::default();
    db.start_reactive_processor("a", fast(), counting(seen.clone()))
        .await?;
    settle().await;
    let seen = seen.lock();
    assert_eq!(seen.len(), 201, "events skipped");
    assert!(seen.values().all(|n| *n == 1), "events delivered twice");
    Ok(())
}

/// A handler whose closure panics before returning its future fails that batch only.
#[tokio::test]
async fn a_panic_before_the_handlers_future_fails_only_the_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.emit_event("p", "app", "t", "k".into(), "{}".into())
        .await?;
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    let opts = ReactiveProcessorOptions {
        max_retries: 1,
        ..fast()
    };
    db.start_reactive_processor("b", opts, move |_db, events: Vec<EventOutboxRecord>| {
        *c.lock() += 1;
        assert!(events.is_empty(), "sync panic");
        std::future::ready(Ok(()))
    })
    .await?;
    // Wait (generously) for the try, the retry and the dead letter.
    for _ in 0..1_000 {
        if !db
            .reactive_processor_dead_letters("b", AtLatest)
            .await?
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = db.reactive_processor_runtime_status("b").await;
    let letters = db.reactive_processor_dead_letters("b", AtLatest).await?;
    assert!(status.is_some_and(|s| s.running), "processor died");
    assert_eq!(
        letters.len(),
        1,
        "the batch was dead-lettered after its retry"
    );
    assert!(
        letters[0].error.contains("panicked"),
        "{}",
        letters[0].error
    );
    assert_eq!(*calls.lock(), 2, "one try and one retry");
    Ok(())
}

/// User DDL cannot drop or alter the engine's own tables.
#[tokio::test]
async fn user_ddl_cannot_reach_system_tables() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.emit_event("p", "app", "t", "k".into(), "{}".into())
        .await?;
    let alter = db
        .commit_ddl(DdlOperation::AlterTable {
            project_id: "_system".into(),
            scope_id: "app".into(),
            table_name: "event_outbox".into(),
            alteration: TableAlteration::DropColumn {
                name: "ts_micros".into(),
            },
        })
        .await;
    let read = db.read_event_stream(None, 0, 10, AtLatest).await?;
    assert_eq!(read.events.len(), 1, "the outbox still reads");
    db.emit_event("p", "app", "t", "k2".into(), "{}".into())
        .await?;
    let drop = db
        .commit_ddl(DdlOperation::DropTable {
            project_id: "_system".into(),
            scope_id: "app".into(),
            table_name: "event_outbox".into(),
            if_exists: false,
        })
        .await;
    let drop_scope = db.drop_scope("_system", "app").await;
    let insert = db
        .commit(Mutation::Delete {
            project_id: "_system".into(),
            scope_id: "app".into(),
            table_name: "event_outbox".into(),
            primary_key: vec![aedb::catalog::types::Value::Integer(1)],
        })
        .await;
    assert!(alter.is_err() && drop.is_err() && drop_scope.is_err() && insert.is_err());
    assert_eq!(
        db.read_event_stream(None, 0, 10, AtLatest)
            .await?
            .events
            .len(),
        2
    );
    Ok(())
}

/// Two failing events of one commit with the same key on two topics leave two letters.
#[tokio::test]
async fn dead_letters_keep_events_of_two_topics_apart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.commit_many_atomic(vec![ev("t1", "same".into()), ev("t2", "same".into())])
        .await?;
    let opts = ReactiveProcessorOptions {
        max_retries: 0,
        ..fast()
    };
    db.start_reactive_processor("d", opts, |_db, _events| async {
        Err(AedbError::Validation("nope".into()))
    })
    .await?;
    settle().await;
    let letters = db.reactive_processor_dead_letters("d", AtLatest).await?;
    let status = db.reactive_processor_runtime_status("d").await;
    assert_eq!(letters.len(), 2);
    assert_eq!(status.map(|s| s.dead_lettered_total), Some(2));
    Ok(())
}

/// Dropping the instance while a batch is being retried frees the directory promptly.
#[tokio::test]
async fn a_drop_during_retries_frees_the_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.emit_event("p", "app", "t", "k".into(), "{}".into())
        .await?;
    let opts = ReactiveProcessorOptions {
        max_retries: 6,
        retry_backoff_ms: 500,
        ..fast()
    };
    db.start_reactive_processor("e", opts, |_db, _events| async {
        Err(AedbError::Validation("nope".into()))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(db);
    let started = std::time::Instant::now();
    loop {
        match AedbInstance::open(AedbConfig::default(), dir.path()) {
            Err(AedbError::Locked { .. }) => {
                if started.elapsed() > Duration::from_secs(3) {
                    panic!("still locked 3 s after the instance was dropped");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => {
                other?;
                break;
            }
        }
    }
    Ok(())
}

/// A resume racing a stop never runs two workers over the same events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_racing_stop_delivers_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    let seen: Seen = Default::default();
    let s2 = seen.clone();
    let handler = move |_db: Arc<AedbInstance>, events: Vec<EventOutboxRecord>| {
        let seen = s2.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut seen = seen.lock();
            for e in events {
                *seen
                    .entry((e.commit_seq, e.topic, e.event_key))
                    .or_default() += 1;
            }
            Ok(())
        }
    };
    db.start_reactive_processor("f", fast(), handler).await?;
    db.emit_event("p", "app", "t", "k".into(), "{}".into())
        .await?;
    tokio::time::sleep(Duration::from_millis(50)).await; // the worker is inside the handler
    let db2 = db.clone();
    let stopper = tokio::spawn(async move { db2.stop_reactive_processor("f").await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Another path (e.g. a supervisor) resumes meanwhile.
    db.resume_reactive_processor("f").await?;
    stopper.await??;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let dup: Vec<_> = seen
        .lock()
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    assert!(dup.is_empty(), "delivered twice: {dup:?}");
    assert_eq!(seen.lock().len(), 1, "delivered");
    // The resume ran after the stop had finished: the processor runs and is enabled.
    let running = db.reactive_processor_runtime_status("f").await.is_some();
    let info = db.list_reactive_processors(AtLatest).await?;
    assert_eq!((running, info[0].enabled), (true, true));
    Ok(())
}

/// The longest processor name with the longest event key still fits a dead letter's key, so
/// every event can be dead-lettered; longer names and keys are refused up front.
#[tokio::test]
async fn the_longest_names_and_keys_can_still_be_dead_lettered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    assert!(db
        .emit_event("p", "app", "t", "k".repeat(513), "{}".into())
        .await
        .is_err());
    db.emit_event("p", "app", "t", "k".repeat(512), "{}".into())
        .await?;
    let opts = ReactiveProcessorOptions {
        max_retries: 0,
        ..fast()
    };
    let failing = |_db: Arc<AedbInstance>, _events: Vec<EventOutboxRecord>| async {
        Err::<(), _>(AedbError::Validation("nope".into()))
    };
    assert!(db
        .start_reactive_processor(&"n".repeat(129), opts.clone(), failing)
        .await
        .is_err());
    let name = "n".repeat(128);
    db.start_reactive_processor(&name, opts, failing).await?;
    settle().await;
    let letters = db.reactive_processor_dead_letters(&name, AtLatest).await?;
    assert_eq!(letters.len(), 1, "the event was dead-lettered");
    Ok(())
}

/// One commit of large events whose dead letters exceed one transaction: they are stored in
/// several commits, none is lost.
#[tokio::test]
async fn a_big_commit_is_dead_lettered_in_parts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        max_transaction_bytes: 2 << 20,
        ..AedbConfig::default()
    };
    let db = Arc::new(AedbInstance::open(config, dir.path())?);
    db.create_project("p").await?;
    // 60 events of 20 KB: 1.2 MB in one commit; their dead letters (each with a 1 KB error)
    // need more than the 512 KB a dead-letter commit may take.
    let payload = format!("\"{}\"", "x".repeat(20_000));
    let events: Vec<Mutation> = (0..60)
        .map(|i| Mutation::EmitEvent {
            project_id: "p".into(),
            scope_id: "app".into(),
            topic: "t".into(),
            event_key: format!("k{i}"),
            payload_json: payload.clone(),
        })
        .collect();
    db.commit_many_atomic(events).await?;
    let opts = ReactiveProcessorOptions {
        max_retries: 0,
        ..fast()
    };
    db.start_reactive_processor("h", opts, |_db, _events| async {
        Err(AedbError::Validation("x".repeat(1000)))
    })
    .await?;
    settle().await;
    let letters = db.reactive_processor_dead_letters("h", AtLatest).await?;
    assert_eq!(letters.len(), 60, "every event dead-lettered");
    Ok(())
}

/// A topic filter matching nothing still moves the position (and the checkpoint) past the
/// rows it examined, a bounded number per run.
#[tokio::test]
async fn a_filter_that_matches_nothing_still_moves_the_checkpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    for c in 0..20 {
        db.commit_many_atomic((0..500).map(|i| ev("a", format!("k{c}_{i}"))).collect())
            .await?;
    }
    let head = db.reactive_processor_lag("i", AtLatest).await?.head_seq;
    let opts = ReactiveProcessorOptions {
        topic_filter: Some("b".into()),
        max_allowed_lag_commits: Some(10),
        max_run_duration_ms: 1,
        ..fast()
    };
    db.start_reactive_processor("i", opts, |_db, _events| async { Ok(()) })
        .await?;
    // 10,000 rows of another topic, at most 4,096 examined per run: a few runs cover them.
    for _ in 0..400 {
        if db
            .reactive_processor_lag("i", AtLatest)
            .await?
            .checkpoint_seq
            >= head
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        db.reactive_processor_lag("i", AtLatest)
            .await?
            .checkpoint_seq
            >= head
    );
    let slo = db.reactive_processor_slo_status("i", AtLatest).await?;
    assert!(!slo.breached, "{slo:?}");
    Ok(())
}

/// A stop while a batch is being retried leaves it for the next start, not dead-lettered.
#[tokio::test]
async fn a_stop_during_retries_leaves_the_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.emit_event("p", "app", "t", "k".into(), "{}".into())
        .await?;
    let opts = ReactiveProcessorOptions {
        max_retries: 5,
        retry_backoff_ms: 300,
        ..fast()
    };
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    db.start_reactive_processor("j", opts, move |_db, _events| {
        let c = c.clone();
        async move {
            *c.lock() += 1;
            Err(AedbError::Validation("transient".into()))
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    db.stop_reactive_processor("j").await?;
    let letters = db.reactive_processor_dead_letters("j", AtLatest).await?;
    assert!(letters.is_empty(), "dead-lettered on stop");
    assert!(*calls.lock() >= 1);
    assert_eq!(
        db.reactive_processor_lag("j", AtLatest)
            .await?
            .checkpoint_seq,
        0,
        "the failing event is not past the checkpoint"
    );
    Ok(())
}

/// A handler that pauses its own processor returns, and the processor stops.
#[tokio::test]
async fn a_handler_may_pause_its_own_processor() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.emit_event("p", "app", "t", "k".into(), "{}".into())
        .await?;
    let done = Arc::new(Mutex::new(false));
    let d = done.clone();
    db.start_reactive_processor("k", fast(), move |db, _events| {
        let d = d.clone();
        async move {
            db.pause_reactive_processor("k").await?;
            *d.lock() = true;
            Ok(())
        }
    })
    .await?;
    for _ in 0..200 {
        if *done.lock() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(*done.lock(), "the handler's pause returned");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(db.reactive_processor_runtime_status("k").await.is_none());
    assert!(!db.list_reactive_processors(AtLatest).await?[0].enabled);
    Ok(())
}

/// KV writes and events into the `_system` project are refused too.
#[tokio::test]
async fn other_writes_into_the_system_project_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await?;
    db.create_project("p").await?;
    db.emit_event("p", "app", "t", "k".into(), "{}".into())
        .await?;
    let kv = db
        .commit(Mutation::KvSet {
            project_id: "_system".into(),
            scope_id: "app".into(),
            key: b"x".to_vec(),
            value: b"y".to_vec(),
        })
        .await;
    let emit = db
        .emit_event("_system", "app", "t", "k".into(), "{}".into())
        .await;
    let scope = db.create_scope("_system", "mine").await;
    let idx = db
        .commit_ddl(DdlOperation::DropScope {
            project_id: "_system".into(),
            scope_id: "mine".into(),
            if_exists: true,
        })
        .await;
    let ack = db.ack_reactive_processor_checkpoint("z", 1_000_000).await;
    assert!(kv.is_err() && emit.is_err() && scope.is_err() && idx.is_err());
    assert!(ack.is_err(), "a checkpoint beyond the head is refused");
    Ok(())
}
