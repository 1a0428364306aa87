//! Group commit and checkpoints under concurrent load, on the real file system.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use aedb::config::AedbConfig;
use aedb::{CommitFinality, Engine};

#[test]
fn concurrent_durable_commits_share_fsyncs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(AedbConfig::default(), tmp.path()).expect("open"));
    let threads = 16u64;
    let per_thread = 40u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let key = (t * 1000 + i).to_be_bytes();
                    let outcome = engine
                        .commit_blocking(CommitFinality::Durable, move |txn| {
                            txn.insert("kv", &key, b"v").map(|_| ())
                        })
                        .expect("commit");
                    assert!(outcome.durable_head_seq >= outcome.commit_seq);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("thread");
    }
    let (_, syncs) = engine.group_stats();
    let commits = threads * per_thread;
    println!("{commits} durable commits with {syncs} fsyncs");
    assert!(
        syncs < commits,
        "group commit should share fsyncs: {syncs} fsyncs for {commits} commits"
    );
    assert_eq!(
        engine
            .snapshot()
            .tree("kv")
            .expect("lookup")
            .expect("tree")
            .len(),
        commits
    );
}

#[test]
fn checkpoints_run_while_commits_and_queries_go_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        checkpoint_interval_ms: 0,
        buffer_pool_bytes: 32 << 20,
        ..AedbConfig::default()
    };
    let engine = Arc::new(Engine::open(config.clone(), tmp.path()).expect("open"));
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (engine, committed, stop) = (
                Arc::clone(&engine),
                Arc::clone(&committed),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let base = (t << 40) | (i * 50);
                    engine
                        .commit_blocking(CommitFinality::Visible, move |txn| {
                            for k in base..base + 50 {
                                txn.insert("kv", &k.to_be_bytes(), &[7u8; 200])?;
                            }
                            Ok(())
                        })
                        .expect("commit");
                    committed.fetch_add(50, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let reader = {
        let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let snapshot = engine.snapshot();
                if let Some(tree) = snapshot.tree("kv").expect("lookup") {
                    let counted = tree
                        .range(Bound::Unbounded, Bound::Unbounded, false)
                        .take(500)
                        .count() as u64;
                    assert!(counted <= tree.len());
                    reads += 1;
                }
            }
            reads
        })
    };
    let mut overlapping = 0;
    for _ in 0..15 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let before = committed.load(Ordering::Relaxed);
        engine.checkpoint_now().expect("checkpoint");
        if committed.load(Ordering::Relaxed) > before {
            overlapping += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("writer");
    }
    assert!(reader.join().expect("reader") > 0);
    assert!(
        overlapping > 0,
        "no commit completed while any of 15 checkpoints ran"
    );
    let total = committed.load(Ordering::Relaxed);
    assert!(engine.store().check().is_ok());
    let engine = Arc::try_unwrap(engine).unwrap_or_else(|_| panic!("engine still shared"));
    engine.shutdown().expect("shutdown");
    let engine = Engine::open(config, tmp.path()).expect("reopen");
    assert_eq!(
        engine
            .snapshot()
            .tree("kv")
            .expect("lookup")
            .expect("tree")
            .len(),
        total
    );
    assert_eq!(
        engine.recovery_report().frames_replayed,
        0,
        "a clean shutdown leaves nothing to redo"
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = Engine::open(AedbConfig::default(), tmp.path()).expect("open");
    match Engine::open(AedbConfig::default(), tmp.path()) {
        Err(aedb::AedbError::Locked { path }) => assert!(path.ends_with("LOCK")),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("two engines on one directory"),
    }
    first.shutdown().expect("shutdown");
    Engine::open(AedbConfig::default(), tmp.path()).expect("open after shutdown");
}
