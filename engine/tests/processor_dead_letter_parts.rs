//! A batch whose dead letters need more than one commit: a crash between the parts never
//! leaves the checkpoint past events that were neither handled nor dead-lettered (it once
//! moved with the first part). Every third write point by default; all with `AEDB_SOAK` set.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aedb::commit::Mutation;
use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::storage::io::Vfs;
use aedb::{AedbError, AedbInstance, ReactiveProcessorOptions};

fn config() -> AedbConfig {
    AedbConfig {
        durability_mode: DurabilityMode::Full,
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        hmac_key: Some([9; 32]),
        // Dead letters go in commits of a quarter of this: 8 KiB, two or three letters each.
        max_transaction_bytes: 32 << 10,
        ..AedbConfig::default()
    }
}

fn open(vfs: &SimVfs) -> Arc<AedbInstance> {
    let vfs = Arc::new(vfs.clone()) as Arc<dyn Vfs>;
    Arc::new(AedbInstance::open_with_vfs(config(), Path::new("/db"), vfs).expect("open"))
}

const EVENTS: usize = 6;

/// Emit one commit of EVENTS 3 KB events and let a processor whose handler always fails
/// dead-letter them; returns the commit.
async fn run(vfs: &SimVfs) -> Option<u64> {
    let vfs_dyn = Arc::new(vfs.clone()) as Arc<dyn Vfs>;
    let db = Arc::new(AedbInstance::open_with_vfs(config(), Path::new("/db"), vfs_dyn).ok()?);
    db.create_project("p").await.ok()?;
    let payload = format!("\"{}\"", "x".repeat(3_000));
    let events = (0..EVENTS)
        .map(|i| Mutation::EmitEvent {
            project_id: "p".into(),
            scope_id: "app".into(),
            topic: "t".into(),
            event_key: format!("k{i}"),
            payload_json: payload.clone(),
        })
        .collect();
    let seq = db.commit_many_atomic(events).await.ok()?.commit_seq;
    let options = ReactiveProcessorOptions {
        max_retries: 0,
        run_interval_ms: 1,
        idle_backoff_ms: 2,
        ..ReactiveProcessorOptions::default()
    };
    db.start_reactive_processor("h", options, |_db, _events| async {
        Err(AedbError::Validation("cannot".into()))
    })
    .await
    .ok()?;
    for _ in 0..5_000 {
        if vfs.has_crashed() {
            break;
        }
        let letters = db
            .reactive_processor_dead_letters("h", AtLatest)
            .await
            .ok()?;
        let lag = db.reactive_processor_lag("h", AtLatest).await.ok()?;
        if letters.len() == EVENTS && lag.checkpoint_seq >= seq {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Some(seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_dead_letter_parts_skips_no_event() {
    let reference = SimVfs::new();
    let seq = run(&reference).await.expect("reference run");
    let db = open(&reference);
    let letters = db
        .reactive_processor_dead_letters("h", AtLatest)
        .await
        .unwrap();
    assert_eq!(letters.len(), EVENTS);
    drop(db);
    let points = reference.write_points();
    let step = if std::env::var_os("AEDB_SOAK").is_some() {
        1
    } else {
        3
    };
    for point in (0..points).step_by(step) {
        let vfs = SimVfs::new();
        vfs.crash_at(point);
        let _ = run(&vfs).await;
        vfs.crash_now();
        for kind in [CrashMode::ProcessCrash, CrashMode::PowerLoss] {
            let image = vfs.crash_image(kind, point);
            let db = open(&image);
            let checkpoint = db
                .reactive_processor_lag("h", AtLatest)
                .await
                .unwrap()
                .checkpoint_seq;
            let letters = db
                .reactive_processor_dead_letters("h", AtLatest)
                .await
                .unwrap();
            if checkpoint >= seq && letters.len() < EVENTS {
                // The restarted processor resumes after the checkpoint: the rest never come.
                let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let counted = calls.clone();
                let resumed = db
                    .register_reactive_processor_handler("h", move |_db, _events| {
                        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        async { Err(AedbError::Validation("cannot".into())) }
                    })
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                let after = db
                    .reactive_processor_dead_letters("h", AtLatest)
                    .await
                    .unwrap();
                panic!(
                    "point {point} {kind:?}: the recovered checkpoint {checkpoint} passed commit \
                     {seq}, yet only {:?} of its {EVENTS} events are dead-lettered (none was \
                     handled); resumed after the restart: {resumed}, handler calls since: {}, \
                     dead letters then: {}",
                    letters.iter().map(|l| &l.event_key).collect::<Vec<_>>(),
                    calls.load(std::sync::atomic::Ordering::SeqCst),
                    after.len()
                );
            }
        }
    }
}
