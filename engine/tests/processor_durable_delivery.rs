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
    start_with(db, options(), seen).await
}

/// A processor "proc" recording the keys it is handed, with `options`.
async fn start_with(
    db: &Arc<AedbInstance>,
    options: ReactiveProcessorOptions,
    seen: &Seen,
) -> TestResult {
    let seen = seen.clone();
    db.start_reactive_processor("proc", options, move |_, events: Vec<EventOutboxRecord>| {
        seen.lock().extend(events.into_iter().map(|e| e.event_key));
        std::future::ready(Ok(()))
    })
    .await?;
    Ok(())
}

/// Options under which only a wake, not a poll, delivers within a test's time.
fn polling_every_minute() -> ReactiveProcessorOptions {
    ReactiveProcessorOptions {
        run_interval_ms: 60_000,
        idle_backoff_ms: 60_000,
        ..ReactiveProcessorOptions::default()
    }
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
    start_with(&db, polling_every_minute(), &seen).await?;
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

/// Under `Batch` durability the wake comes once the event is durable (the timed sync), not
/// when its commit returns: a processor idling for a minute still gets the event at once
/// (review finding: it woke at the write, found nothing durable and slept its full pause).
#[tokio::test]
async fn under_batch_a_processor_wakes_when_the_event_is_durable() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Every emit is unsynced when its commit returns; the timed sync comes within a second.
    let config = AedbConfig {
        durability_mode: DurabilityMode::Batch,
        batch_interval_ms: 1_000,
        batch_max_bytes: 1 << 30,
        ..AedbConfig::default()
    };
    let db = Arc::new(AedbInstance::open(config, dir.path())?);
    db.create_project("p").await?;
    let seen: Seen = Default::default();
    start_with(&db, polling_every_minute(), &seen).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..3 {
        db.emit_event("p", "app", "t", format!("e{i}"), "{}".into())
            .await?;
        assert!(until(&seen, i + 1).await, "event {i} was not delivered");
    }
    db.stop_reactive_processor("proc").await?;
    Ok(())
}

/// Wakes for events a processor does not take — other topics, its own handler's output — do
/// not make it spin: an interval handler that emits on another topic runs about once per idle
/// pause, as without wakes (review finding: it ran at the rate of its own commits).
#[tokio::test]
async fn a_handler_emitting_on_another_topic_does_not_spin_its_processor() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(AedbInstance::open(AedbConfig::default(), dir.path())?);
    db.create_project("p").await?;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let weak = Arc::downgrade(&db);
    db.start_reactive_processor(
        "orders",
        ReactiveProcessorOptions {
            topic_filter: Some("orders".into()),
            run_on_interval: true,
            run_interval_ms: 200,
            idle_backoff_ms: 200,
            ..ReactiveProcessorOptions::default()
        },
        move |_, _events: Vec<EventOutboxRecord>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let weak = weak.clone();
            async move {
                if let Some(db) = weak.upgrade() {
                    db.emit_event("p", "app", "hb", "beat".into(), "{}".into())
                        .await?;
                }
                Ok(())
            }
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    db.stop_reactive_processor("orders").await?;
    let calls = calls.load(std::sync::atomic::Ordering::SeqCst);
    // Five pauses of 200 ms in a second; a spinning loop makes hundreds of calls.
    assert!(
        (1..=12).contains(&calls),
        "{calls} handler calls in a second"
    );
    Ok(())
}
