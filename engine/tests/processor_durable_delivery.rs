//! A reactive processor delivers only durable events under `Batch` and `Full` durability: an
//! event visible before its commit is synced waits for the sync, so no handler acts on an
//! event a power loss could still take back. Under `OsBuffered` (no sync unless asked) the
//! visible events are delivered.

use std::sync::Arc;
use std::time::Duration;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::{AedbInstance, CommitFinality, EventOutboxRecord, ReactiveProcessorOptions};
use parking_lot::Mutex;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Seen = Arc<Mutex<Vec<String>>>;

fn options() -> ReactiveProcessorOptions {
    ReactiveProcessorOptions {
        run_interval_ms: 5,
        idle_backoff_ms: 5,
        ..ReactiveProcessorOptions::default()
    }
}

async fn start(db: &Arc<AedbInstance>, seen: &Seen) -> TestResult {
    let seen = seen.clone();
    db.start_reactive_processor(
        "proc",
        options(),
        move |_, events: Vec<EventOutboxRecord>| {
            seen.lock().extend(events.into_iter().map(|e| e.event_key));
            std::future::ready(Ok(()))
        },
    )
    .await?;
    Ok(())
}

async fn until(seen: &Seen, n: usize) -> bool {
    for _ in 0..1_000 {
        if seen.lock().len() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test]
async fn an_event_waits_for_its_commit_to_be_durable() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Visible commits return once written to the OS; the timed sync is a minute away.
    let config = AedbConfig {
        durability_mode: DurabilityMode::Batch,
        batch_interval_ms: 60_000,
        batch_max_bytes: 1 << 30,
        ..AedbConfig::default()
    };
    let db = Arc::new(AedbInstance::open(config, dir.path())?);
    db.create_project("p").await?;
    let seen: Seen = Default::default();
    start(&db, &seen).await?;
    let emitted = db
        .emit_event("p", "app", "t", "early".into(), "{}".into())
        .await?;
    assert!(emitted.durable_head_seq < emitted.commit_seq, "{emitted:?}");
    // Many processor runs later, the event is still not delivered: it is not durable.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(seen.lock().is_empty(), "{:?}", seen.lock());
    // A durable commit syncs everything before it: now both are delivered, in order.
    db.emit_event("p", "app", "t", "durable".into(), "{}".into())
        .await?;
    let synced = db
        .commit_with_finality(
            aedb::commit::validation::Mutation::KvSet {
                project_id: "p".into(),
                scope_id: "app".into(),
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
            CommitFinality::Durable,
        )
        .await?;
    assert!(synced.durable_head_seq >= synced.commit_seq);
    assert!(until(&seen, 2).await, "{:?}", seen.lock());
    assert_eq!(*seen.lock(), ["early", "durable"]);
    Ok(())
}

#[tokio::test]
async fn under_os_buffered_visible_events_are_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        durability_mode: DurabilityMode::OsBuffered,
        ..AedbConfig::default()
    };
    let db = Arc::new(AedbInstance::open(config, dir.path())?);
    db.create_project("p").await?;
    let seen: Seen = Default::default();
    start(&db, &seen).await?;
    let emitted = db
        .emit_event("p", "app", "t", "visible".into(), "{}".into())
        .await?;
    assert!(emitted.durable_head_seq < emitted.commit_seq);
    assert!(until(&seen, 1).await);
    Ok(())
}

/// A caught-up processor is woken by the commit that emits the next event, not by its poll:
/// with an idle backoff and run interval of a minute, each event still arrives at once.
#[tokio::test]
async fn a_caught_up_processor_wakes_on_the_next_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(AedbInstance::open(AedbConfig::default(), dir.path())?);
    db.create_project("p").await?;
    let seen: Seen = Default::default();
    let recorded = seen.clone();
    db.start_reactive_processor(
        "proc",
        ReactiveProcessorOptions {
            run_interval_ms: 60_000,
            idle_backoff_ms: 60_000,
            ..ReactiveProcessorOptions::default()
        },
        move |_, events: Vec<EventOutboxRecord>| {
            recorded
                .lock()
                .extend(events.into_iter().map(|e| e.event_key));
            std::future::ready(Ok(()))
        },
    )
    .await?;
    // Let the first run find nothing and go to sleep.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        db.emit_event("p", "app", "t", format!("e{i}"), "{}".into())
            .await?;
        assert!(until(&seen, i + 1).await, "event {i} was not delivered");
    }
    assert_eq!(*seen.lock(), ["e0", "e1", "e2", "e3", "e4"]);
    db.stop_reactive_processor("proc").await?;
    Ok(())
}
