//! Snapshots: a pinned version stays readable and unchanged while the writer commits, from
//! other threads and without the writer's lock; releasing it lets its pages be reused.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aedb_pager::io::sim::SimVfs;
use aedb_pager::io::Vfs;
use aedb_pager::{PageStore, StoreConfig};

fn store(pool_pages: u64) -> PageStore {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
    let config = StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: pool_pages * 4096,
        direct_io: false,
    };
    PageStore::open(vfs, Path::new("/s/data.aedb"), &config).expect("open")
}

fn fill(store: &PageStore, round: u32) {
    let mut txn = store.begin_write().expect("begin");
    for i in 0..500u32 {
        txn.insert("t", &i.to_be_bytes(), &[round as u8; 40])
            .expect("insert");
    }
    txn.commit().expect("commit");
}

fn sum_of_first_bytes(tree: &aedb_pager::TreeView) -> u64 {
    tree.range(Bound::Unbounded, Bound::Unbounded, false)
        .map(|item| item.expect("scan").1[0] as u64)
        .sum()
}

#[test]
fn readers_on_other_threads_see_their_version_while_commits_go_on() {
    let store = store(256);
    fill(&store, 1);
    let pinned = store.snapshot();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let snapshot = pinned.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let tree = snapshot.tree("t").expect("lookup").expect("tree");
                let mut scans = 0u32;
                while !stop.load(Ordering::Relaxed) || scans < 3 {
                    assert_eq!(sum_of_first_bytes(&tree), 500, "pinned version changed");
                    assert_eq!(
                        tree.get(&7u32.to_be_bytes()).expect("get"),
                        Some(vec![1u8; 40])
                    );
                    scans += 1;
                }
                scans
            })
        })
        .collect();
    // A long-lived write transaction does not block readers either.
    for round in 2..60u32 {
        fill(&store, round);
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("reader thread") >= 3);
    }
    let latest = store.snapshot().tree("t").expect("lookup").expect("tree");
    assert_eq!(sum_of_first_bytes(&latest), 500 * 59);
    assert_eq!(pinned.seq(), 1);
    assert!(store.check().is_ok());
}

#[test]
fn a_pinned_snapshot_sees_nothing_of_ten_thousand_later_commits() {
    let store = store(128);
    let mut txn = store.begin_write().expect("begin");
    txn.insert("t", b"k", b"v0").expect("insert");
    txn.commit().expect("commit");
    let pinned = store.snapshot();
    for n in 1..=10_000u32 {
        let mut txn = store.begin_write().expect("begin");
        txn.insert("t", b"k", format!("v{n}").as_bytes())
            .expect("insert");
        txn.insert("t", &n.to_be_bytes(), b"x").expect("insert");
        txn.commit().expect("commit");
    }
    let tree = pinned.tree("t").expect("lookup").expect("tree");
    assert_eq!(tree.get(b"k").expect("get"), Some(b"v0".to_vec()));
    assert_eq!(tree.len(), 1);
    assert_eq!(
        store
            .snapshot()
            .tree("t")
            .expect("lookup")
            .expect("tree")
            .len(),
        10_001
    );
}

#[test]
fn releasing_the_last_pin_lets_pages_be_reused() {
    let store = store(512);
    fill(&store, 1);
    store.checkpoint().expect("checkpoint");
    let pinned = store.snapshot();
    let before = store.allocation().0;
    for round in 2..12 {
        fill(&store, round);
    }
    let grown_while_pinned = store.allocation().0 - before;
    drop(pinned);
    let before = store.allocation().0;
    for round in 12..22 {
        fill(&store, round);
    }
    let grown_after_release = store.allocation().0 - before;
    assert!(grown_while_pinned > 0);
    assert!(
        grown_after_release * 4 < grown_while_pinned,
        "pages were not reused: grew {grown_while_pinned} pages pinned, {grown_after_release} after release"
    );
    assert!(store.check().is_ok(), "{:?}", store.check().violations);
}

#[test]
fn snapshots_of_one_head_share_a_pin_that_outlives_the_head() {
    let store = store(512);
    fill(&store, 1);
    store.checkpoint().expect("checkpoint");
    let a = store.snapshot();
    let b = store.snapshot();
    assert_eq!(a.seq(), b.seq());
    drop(a);
    // b still reads round 1 after commits that free round 1's pages; each new snapshot is of
    // the head at the time, and only the newest head stays pinned by the store.
    let before = store.allocation().0;
    for round in 2..12 {
        fill(&store, round);
        let head = store.snapshot();
        assert_eq!(
            head.seq(),
            store.head().seq,
            "a snapshot is of the current head"
        );
    }
    let grown_while_pinned = store.allocation().0 - before;
    let tree = b.tree("t").expect("tree").expect("exists");
    assert_eq!(sum_of_first_bytes(&tree), 500);
    drop(tree);
    drop(b);
    let before = store.allocation().0;
    for round in 12..22 {
        fill(&store, round);
        drop(store.snapshot());
    }
    let grown_after_release = store.allocation().0 - before;
    assert!(
        grown_after_release * 4 < grown_while_pinned,
        "the shared head pin held pages: grew {grown_while_pinned} pages pinned, {grown_after_release} after"
    );
    assert!(store.check().is_ok(), "{:?}", store.check().violations);
}

/// A failed operation poisons the write transaction: it can still be read and dropped, but
/// `commit` refuses, and the head is unchanged.
#[test]
fn a_failed_operation_poisons_the_write_transaction() {
    let store = store(64);
    let head = store.head().seq;
    let mut txn = store.begin_write().expect("begin");
    txn.insert("t", b"a", b"1").expect("insert");
    assert!(txn.poisoned().is_none());
    let huge = vec![1u8; 64 * 1024];
    assert!(txn.insert("t", &huge, b"x").is_err());
    assert!(txn.poisoned().is_some(), "the failure must poison");
    assert_eq!(
        txn.get("t", b"a").expect("read").as_deref(),
        Some(&b"1"[..])
    );
    match txn.commit() {
        Err(aedb_pager::PagerError::Poisoned(_)) => {}
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert_eq!(store.head().seq, head);
    assert_eq!(store.snapshot().get("t", b"a").expect("read"), None);
}

/// Review of the bounded reclaim: a checkpoint's free-list capture allocates outside a write
/// transaction, so it must not judge waiting pages by the pins seen at the last begin. A
/// checkpoint snapshot pinned since then (an `AtCheckpoint` query) reads the durable version,
/// older than every commit's head.
#[test]
fn a_checkpoint_snapshot_pinned_after_the_last_begin_survives_two_checkpoints() {
    let store = store(1024);
    fill(&store, 1);
    store.checkpoint().expect("checkpoint of version 1");
    fill(&store, 2); // replaces every page of version 1
    store.begin_write().expect("begin").abort();
    let pinned = store.checkpoint_snapshot(); // version 1, pinned after that begin
    store.checkpoint().expect("checkpoint");
    // This capture's free list needs pages while the free set is empty: it must not take a
    // page of version 1.
    store.checkpoint().expect("checkpoint");
    let names: Vec<String> = pinned
        .trees()
        .expect("catalog of the pinned version")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, vec!["t".to_string()]);
    let tree = pinned.tree("t").expect("tree").expect("tree t");
    assert_eq!(sum_of_first_bytes(&tree), 500);
    assert!(store.check().is_ok());
}
