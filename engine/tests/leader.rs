//! Leader/follower group commit: blocking callers run groups themselves, async callers go
//! through the writer thread on any runtime, and neither strands a commit; a panicking body
//! fails only its own commit; shutdown answers or refuses everything queued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::{AedbError, CommitFinality, Engine};

fn tree_len(engine: &Engine) -> u64 {
    engine
        .snapshot()
        .tree("kv")
        .expect("lookup")
        .map_or(0, |t| t.len())
}

#[test]
fn a_lone_blocking_commit_runs_on_the_callers_thread() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(AedbConfig::default(), tmp.path()).expect("open");
    let caller = std::thread::current().id();
    let outcome = engine
        .commit_blocking(CommitFinality::Durable, move |txn| {
            txn.insert("kv", b"k", b"v")?;
            Ok(std::thread::current().id())
        })
        .expect("commit");
    assert_eq!(outcome.value, caller, "the body ran on another thread");
    assert!(outcome.durable_head_seq >= outcome.commit_seq);
}

/// Commits from one async task, each reporting whether its body ran on the task's thread.
async fn bodies_on_the_callers_thread(engine: Arc<Engine>, commits: u64) -> u64 {
    let mut on_caller = 0;
    for i in 0..commits {
        let caller = std::thread::current().id();
        let outcome = engine
            .commit(CommitFinality::Durable, move |txn| {
                txn.insert("kv", &i.to_be_bytes(), b"v")?;
                Ok(std::thread::current().id())
            })
            .await
            .expect("async commit");
        assert!(outcome.durable_head_seq >= outcome.commit_seq);
        on_caller += u64::from(outcome.value == caller);
    }
    on_caller
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn an_async_commit_is_led_by_the_writer_thread_on_any_runtime() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(AedbConfig::default(), tmp.path()).expect("open"));
    let runtime = multi_thread_runtime();
    // From a runtime worker, from the runtime's `block_on`, and from a `LocalSet` polled in it,
    // where blocking in place would panic; and on a current-thread runtime, where blocking
    // would stop every task.
    let on_worker = runtime
        .block_on(runtime.spawn(bodies_on_the_callers_thread(Arc::clone(&engine), 10)))
        .expect("task");
    let in_block_on = runtime.block_on(bodies_on_the_callers_thread(Arc::clone(&engine), 10));
    let local = tokio::task::LocalSet::new();
    let in_local_set =
        runtime.block_on(local.run_until(bodies_on_the_callers_thread(Arc::clone(&engine), 10)));
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let on_current_thread =
        current_thread.block_on(bodies_on_the_callers_thread(Arc::clone(&engine), 10));
    assert_eq!(
        (on_worker, in_block_on, in_local_set, on_current_thread),
        (0, 0, 0, 0)
    );
    assert_eq!(tree_len(&engine), 10);
}

#[test]
fn commits_joined_in_one_task_on_a_multi_threaded_runtime_all_finish() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(AedbConfig::default(), tmp.path()).expect("open"));
    let runtime = multi_thread_runtime();
    let shared = Arc::clone(&engine);
    let commit = move |key: &'static [u8]| {
        let engine = Arc::clone(&shared);
        async move {
            engine
                .commit(CommitFinality::Durable, move |txn| {
                    txn.insert("kv", key, b"v").map(|_| ())
                })
                .await
        }
    };
    let joined = runtime.block_on(runtime.spawn(async move {
        let all = async { tokio::join!(commit(b"a"), commit(b"b"), commit(b"c")) };
        tokio::time::timeout(Duration::from_secs(60), all).await
    }));
    let (a, b, c) = joined.expect("task").expect("the joined commits finished");
    let seqs = [a, b, c].map(|r| r.expect("commit").commit_seq);
    assert_eq!(
        seqs.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3
    );
    assert_eq!(tree_len(&engine), 3);
}

#[test]
fn blocking_and_async_committers_together_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        durability_mode: DurabilityMode::Full,
        ..AedbConfig::default()
    };
    let engine = Arc::new(Engine::open(config, tmp.path()).expect("open"));
    let per_thread = 60u64;
    let blocking: Vec<_> = (0..6u64)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let key = (t << 32 | i).to_be_bytes();
                    let outcome = engine
                        .commit_blocking(CommitFinality::Visible, move |txn| {
                            txn.insert("kv", &key, b"b").map(|_| ())
                        })
                        .expect("blocking commit");
                    // Full: every commit is durable when it returns, whoever led it.
                    assert!(outcome.durable_head_seq >= outcome.commit_seq);
                }
            })
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tasks: Vec<_> = (100..106u64)
        .map(|t| {
            let engine = Arc::clone(&engine);
            runtime.spawn(async move {
                for i in 0..per_thread {
                    let key = (t << 32 | i).to_be_bytes();
                    let outcome = engine
                        .commit(CommitFinality::Durable, move |txn| {
                            txn.insert("kv", &key, b"a").map(|_| ())
                        })
                        .await
                        .expect("async commit");
                    assert!(outcome.durable_head_seq >= outcome.commit_seq);
                }
            })
        })
        .collect();
    for handle in blocking {
        handle.join().expect("blocking thread");
    }
    runtime.block_on(async {
        for task in tasks {
            task.await.expect("async task");
        }
    });
    assert_eq!(tree_len(&engine), 12 * per_thread);
    assert_eq!(engine.visible_head_seq(), 12 * per_thread);
}

#[test]
fn a_panicking_body_fails_its_commit_and_the_writer_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(Engine::open(AedbConfig::default(), tmp.path()).expect("open"));
    engine
        .commit_blocking(CommitFinality::Durable, |txn| {
            txn.insert("kv", b"before", b"1").map(|_| ())
        })
        .expect("first commit");
    let result = engine.commit_blocking(CommitFinality::Durable, |txn| {
        txn.insert("kv", b"half", b"written")?;
        if txn.seq() > 0 {
            panic!("body exploded");
        }
        Ok(())
    });
    match result {
        Err(AedbError::CommitPanicked(message)) => assert!(message.contains("body exploded")),
        other => panic!("expected CommitPanicked, got {other:?}"),
    }
    // Nothing of the panicking commit is visible, and later commits (blocking and from
    // another thread) go on.
    let snapshot = engine.snapshot();
    let tree = snapshot.tree("kv").expect("lookup").expect("tree");
    assert_eq!(tree.get(b"half").expect("get"), None);
    let other = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            engine.commit_blocking(CommitFinality::Durable, |txn| {
                txn.insert("kv", b"after", b"2").map(|_| ())
            })
        })
    };
    other
        .join()
        .expect("thread")
        .expect("commit after the panic");
    assert_eq!(tree_len(&engine), 2);
    drop(engine);
    let reopened = Engine::open(AedbConfig::default(), tmp.path()).expect("reopen");
    assert_eq!(tree_len(&reopened), 2);
}

#[test]
fn syncs_amid_blocking_commits_keep_everything_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        durability_mode: DurabilityMode::Batch,
        ..AedbConfig::default()
    };
    let engine = Arc::new(Engine::open(config.clone(), tmp.path()).expect("open"));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..300u64 {
                    let key = (t << 32 | i).to_be_bytes();
                    engine
                        .commit_blocking(CommitFinality::Visible, move |txn| {
                            txn.insert("kv", &key, b"v").map(|_| ())
                        })
                        .expect("commit");
                }
            })
        })
        .collect();
    // Syncs led by this thread while the writers lead their own groups: each answers with a
    // durable head at least as new as the last commit visible before it was asked.
    for _ in 0..20 {
        let visible = engine.visible_head_seq();
        let durable = engine.sync_blocking().expect("sync");
        assert!(
            durable >= visible,
            "sync answered {durable} before {visible}"
        );
    }
    for writer in writers {
        writer.join().expect("writer");
    }
    let engine = Arc::try_unwrap(engine).unwrap_or_else(|_| panic!("engine still shared"));
    engine.shutdown().expect("shutdown");
    let reopened = Engine::open(config, tmp.path()).expect("reopen");
    assert_eq!(tree_len(&reopened), 1200);
}

/// Batch mode syncs within its interval even when the unsynced group was led by a caller
/// (review finding: the writer thread slept its 100 ms idle period instead).
#[test]
fn batch_mode_syncs_a_caller_led_group_within_the_interval() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        durability_mode: DurabilityMode::Batch,
        batch_interval_ms: 10,
        ..AedbConfig::default()
    };
    let engine = Engine::open(config, tmp.path()).expect("open");
    let mut lags = Vec::new();
    for i in 0..10u32 {
        // Two commits in a row: the first may sync (the interval passed), the second not.
        let mut last = 0;
        for key in [i, 1_000 + i] {
            last = engine
                .commit_blocking(CommitFinality::Visible, move |txn| {
                    txn.insert("kv", &key.to_be_bytes(), b"v").map(|_| ())
                })
                .expect("commit")
                .commit_seq;
        }
        let start = Instant::now();
        while engine.durable_head_seq() < last {
            std::thread::sleep(Duration::from_millis(1));
            assert!(start.elapsed() < Duration::from_secs(5), "never synced");
        }
        lags.push(start.elapsed().as_millis());
        std::thread::sleep(Duration::from_millis(37));
    }
    lags.sort_unstable();
    // The median, so a loaded machine's odd stall does not decide: 10 ms interval against the
    // 100 ms idle sleep the finding showed (median about 60 ms).
    assert!(
        lags[5] < 45,
        "synced after {lags:?} ms with a 10 ms interval"
    );
}
