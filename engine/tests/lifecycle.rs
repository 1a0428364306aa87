//! Lifecycle hooks and the lifecycle outbox: what each visible commit did, in order.

use std::sync::Arc;
use std::time::Duration;

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::query::plan::Query;
use aedb::{AedbInstance, LifecycleEvent, LifecycleHook};
use parking_lot::Mutex;

#[derive(Default)]
struct Recorder(Mutex<Vec<LifecycleEvent>>);

impl LifecycleHook for Recorder {
    fn on_event(&self, event: &LifecycleEvent) {
        self.0.lock().push(event.clone());
    }
}

struct Panicker;

impl LifecycleHook for Panicker {
    fn on_event(&self, _: &LifecycleEvent) {
        panic!("a broken hook");
    }
}

async fn settle(recorder: &Recorder, want: usize) {
    for _ in 0..1_000 {
        if recorder.0.lock().len() >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn hooks_hear_each_applied_change_and_the_outbox_keeps_them(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    let recorder = Arc::new(Recorder::default());
    db.add_lifecycle_hook(Arc::new(Panicker));
    db.add_lifecycle_hook(recorder.clone());

    db.create_project("p").await?;
    db.create_project("p").await?; // exists: no event
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![ColumnDef {
            name: "id".into(),
            col_type: ColumnType::Integer,
            nullable: false,
        }],
        primary_key: vec!["id".into()],
    }))
    .await?;
    db.create_accumulator("p", "app", "a", None, 10).await?;
    let delta = db.accumulate("p", "app", "a", 5, "k".into(), 1).await?;
    db.accumulate("p", "app", "a", 5, "k".into(), 1).await?; // duplicate: no event
    let emitted = db
        .emit_event("p", "app", "topic", "key".into(), "{}".into())
        .await?;
    settle(&recorder, 4).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let seen = recorder.0.lock().clone();
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| match e {
            LifecycleEvent::ProjectCreated { .. } => "project",
            LifecycleEvent::ScopeCreated { .. } => "scope",
            LifecycleEvent::TableCreated { .. } => "table",
            LifecycleEvent::AccumulatorDeltaAppended { .. } => "delta",
            LifecycleEvent::AppEventEmitted { .. } => "event",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["project", "table", "delta", "event"],
        "{seen:?}"
    );
    assert!(seen.contains(&LifecycleEvent::AccumulatorDeltaAppended {
        project_id: "p".into(),
        scope_id: "app".into(),
        accumulator_name: "a".into(),
        delta: 5,
        dedupe_key: "k".into(),
        order_key: 1,
        release_exposure_id: None,
        seq: delta.commit_seq,
    }));

    // Commits that emitted events are also in the outbox, queryable.
    let rows = db
        .query(
            "_system",
            "app",
            Query::select(&["*"]).from("lifecycle_outbox").limit(100),
        )
        .await?;
    let seqs: Vec<Value> = rows.rows.iter().map(|r| r.values[0].clone()).collect();
    assert_eq!(seqs, vec![Value::Integer(emitted.commit_seq as i64)]);
    Ok(())
}

/// The sequences of the emitted events a recorder heard, in the order heard.
fn emitted_seqs(recorder: &Recorder) -> Vec<u64> {
    recorder
        .0
        .lock()
        .iter()
        .filter_map(|e| match e {
            LifecycleEvent::AppEventEmitted { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// Hooks hear commits in commit order however many callers commit at once: the pipeline
/// hands each published commit to the hooks, not the caller afterwards (review finding).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hooks_hear_concurrent_commits_in_commit_order() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(AedbInstance::open(Default::default(), dir.path())?);
    db.create_project("p").await?;
    let recorder = Arc::new(Recorder::default());
    db.add_lifecycle_hook(recorder.clone());
    let mut writers = Vec::new();
    for writer in 0..16 {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                db.emit_event("p", "app", "t", format!("{writer}-{i}"), "{}".into())
                    .await?;
            }
            Ok::<_, aedb::AedbError>(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    settle(&recorder, 400).await;
    let seqs = emitted_seqs(&recorder);
    assert_eq!(seqs.len(), 400);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    Ok(())
}

/// A caller that stops waiting for its commit does not take the hooks' events with it: every
/// event in the outbox is heard, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_hear_commits_whose_caller_gave_up() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    db.create_project("p").await?;
    let recorder = Arc::new(Recorder::default());
    db.add_lifecycle_hook(recorder.clone());
    for i in 0..60u64 {
        // Some of these are dropped before their commit is queued, some after.
        let call = db.emit_event("p", "app", "t", format!("k{i}"), "{}".into());
        let _ = tokio::time::timeout(Duration::from_micros(i * 20), call).await;
    }
    db.emit_event("p", "app", "t", "last".into(), "{}".into())
        .await?;
    let page = db
        .read_event_stream(
            Some("t"),
            0,
            1_000,
            aedb::query::plan::ConsistencyMode::AtLatest,
        )
        .await?;
    let stored: Vec<u64> = page.events.iter().map(|e| e.commit_seq).collect();
    settle(&recorder, stored.len()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(emitted_seqs(&recorder), stored);
    Ok(())
}

/// A hook that commits — through a task of the runtime it waits for — while callers keep it
/// far behind neither deadlocks nor loses events: no caller waits for the hooks, and the queue
/// holds more commits than this test makes (review findings).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hook_that_commits_neither_deadlocks_nor_loses_events(
) -> Result<(), Box<dyn std::error::Error>> {
    struct Echo {
        db: parking_lot::Mutex<Option<Arc<AedbInstance>>>,
        handle: tokio::runtime::Handle,
        heard: Recorder,
    }
    impl LifecycleHook for Echo {
        fn on_event(&self, event: &LifecycleEvent) {
            self.heard.on_event(event);
            let LifecycleEvent::AppEventEmitted {
                topic, event_key, ..
            } = event
            else {
                return;
            };
            let db = self.db.lock().clone();
            if let (Some(db), "in") = (db, topic.as_str()) {
                let key = event_key.clone();
                let echo = self
                    .handle
                    .spawn(async move { db.emit_event("p", "app", "out", key, "{}".into()).await });
                let committed = self.handle.block_on(echo).expect("the hook's task");
                committed.expect("the hook's commit");
            }
        }
    }
    let dir = tempfile::tempdir()?;
    let db = Arc::new(AedbInstance::open(Default::default(), dir.path())?);
    db.create_project("p").await?;
    let echo = Arc::new(Echo {
        db: parking_lot::Mutex::new(Some(db.clone())),
        handle: tokio::runtime::Handle::current(),
        heard: Recorder::default(),
    });
    db.add_lifecycle_hook(echo.clone());
    let events_in = 1_500;
    let mut writers = Vec::new();
    for writer in 0..30 {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..events_in / 30 {
                db.emit_event("p", "app", "in", format!("{writer}-{i}"), "{}".into())
                    .await?;
            }
            Ok::<_, aedb::AedbError>(())
        }));
    }
    let all = async {
        for writer in writers {
            writer.await??;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    tokio::time::timeout(Duration::from_secs(120), all).await??;
    settle(&echo.heard, 2 * events_in).await;
    let out = db
        .read_event_stream(
            Some("out"),
            0,
            10_000,
            aedb::query::plan::ConsistencyMode::AtLatest,
        )
        .await?;
    assert_eq!(out.events.len(), events_in);
    assert_eq!(emitted_seqs(&echo.heard).len(), 2 * events_in);
    assert_eq!(db.lifecycle_events_dropped(), 0);
    // The hook holds the instance: let it go so the instance and its hook thread end.
    echo.db.lock().take();
    Ok(())
}

/// A batch of exposures reports each exposure it opened, and not one already open (a retry).
#[tokio::test]
async fn hooks_hear_each_exposure_a_batch_opens() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    db.create_project("p").await?;
    db.create_accumulator("p", "app", "a", None, 10).await?;
    db.accumulate("p", "app", "a", 10_000, "fund".into(), 1)
        .await?;
    db.expose_accumulator("p", "app", "a", 300, "h1".into())
        .await?;
    let recorder = Arc::new(Recorder::default());
    db.add_lifecycle_hook(recorder.clone());
    let batch = db
        .expose_accumulator_many_atomic(
            "p",
            "app",
            "a",
            vec![(300, "h1".into()), (500, "h2".into()), (700, "h3".into())],
        )
        .await?;
    settle(&recorder, 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reserved: Vec<(i64, String, u64)> = recorder
        .0
        .lock()
        .iter()
        .filter_map(|e| match e {
            LifecycleEvent::AccumulatorExposureReserved {
                amount,
                exposure_id,
                seq,
                ..
            } => Some((*amount, exposure_id.clone(), *seq)),
            _ => None,
        })
        .collect();
    let seq = batch.commit_seq;
    assert_eq!(
        reserved,
        vec![(500, "h2".to_string(), seq), (700, "h3".to_string(), seq)]
    );

    // In one commit: an exposure, a batch repeating it, then a release of the batch's new
    // one. Each opened exposure is reported once, the released one too.
    recorder.0.lock().clear();
    let expose = |id: &str, amount| Mutation::ExposeAccumulator {
        project_id: "p".into(),
        scope_id: "app".into(),
        accumulator_name: "a".into(),
        amount,
        exposure_id: id.into(),
    };
    let batch = Mutation::ExposeAccumulatorBatch {
        project_id: "p".into(),
        scope_id: "app".into(),
        accumulator_name: "a".into(),
        exposures: vec![(100, "h4".into()), (200, "h5".into())],
    };
    let release = Mutation::ReleaseAccumulatorExposure {
        project_id: "p".into(),
        scope_id: "app".into(),
        accumulator_name: "a".into(),
        exposure_id: "h5".into(),
    };
    let mixed = db
        .commit_many_atomic(vec![expose("h4", 100), batch, release])
        .await?
        .commit_seq;
    settle(&recorder, 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reserved: Vec<(String, u64)> = recorder
        .0
        .lock()
        .iter()
        .filter_map(|e| match e {
            LifecycleEvent::AccumulatorExposureReserved {
                exposure_id, seq, ..
            } => Some((exposure_id.clone(), *seq)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reserved,
        vec![("h4".to_string(), mixed), ("h5".to_string(), mixed)]
    );
    Ok(())
}

/// A batch that opens again an exposure its TTL expired reports it (review finding: only the
/// new one was reported).
#[tokio::test]
async fn a_batch_reopening_an_expired_exposure_reports_it() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    db.create_project("p").await?;
    db.create_accumulator_with_options("p", "app", "a", None, 10, 1_000, Some(2))
        .await?;
    db.accumulate("p", "app", "a", 10_000, "fund".into(), 1)
        .await?;
    db.expose_accumulator("p", "app", "a", 300, "h1".into())
        .await?;
    for i in 0..4 {
        db.kv_set("p", "app", format!("k{i}").into_bytes(), b"v".to_vec())
            .await?;
    }
    let recorder = Arc::new(Recorder::default());
    db.add_lifecycle_hook(recorder.clone());
    let batch = db
        .expose_accumulator_many_atomic(
            "p",
            "app",
            "a",
            vec![(300, "h1".into()), (500, "h2".into())],
        )
        .await?
        .commit_seq;
    settle(&recorder, 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reserved: Vec<(String, u64)> = recorder
        .0
        .lock()
        .iter()
        .filter_map(|e| match e {
            LifecycleEvent::AccumulatorExposureReserved {
                exposure_id, seq, ..
            } => Some((exposure_id.clone(), *seq)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reserved,
        vec![("h1".to_string(), batch), ("h2".to_string(), batch)]
    );
    Ok(())
}

/// Hooks hear only acknowledged commits: a commit whose log sync fails (its outcome unknown,
/// the instance latched) is never reported, though it was published (pipeline invariant 6).
#[tokio::test]
async fn hooks_never_hear_a_commit_whose_sync_failed() -> Result<(), Box<dyn std::error::Error>> {
    use aedb::storage::io::sim::{Fault, SimVfs};
    use aedb::storage::io::OpKind;

    let vfs = Arc::new(SimVfs::new());
    let db = AedbInstance::open_with_vfs(
        Default::default(),
        std::path::Path::new("/sim/db"),
        vfs.clone(),
    )?;
    db.create_project("p").await?;
    let recorder = Arc::new(Recorder::default());
    db.add_lifecycle_hook(recorder.clone());
    let kept = db
        .emit_event("p", "app", "t", "kept".into(), "{}".into())
        .await?
        .commit_seq;
    settle(&recorder, 1).await;
    vfs.inject(Fault::forever(OpKind::Sync, 0, libc::EIO).on_path("wal"));
    let lost = db
        .emit_event("p", "app", "t", "unknown".into(), "{}".into())
        .await;
    assert!(matches!(lost, Err(aedb::AedbError::Failed(_))), "{lost:?}");
    assert_eq!(vfs.faults_fired(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(emitted_seqs(&recorder), vec![kept]);
    Ok(())
}
