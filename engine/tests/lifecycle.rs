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
