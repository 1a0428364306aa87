//! Space under random rewrites: a page a commit replaces is reused only once a later checkpoint
//! is durable, so a file checkpointed only now and then holds a second copy of what the
//! rewrites touched. `SpaceHeld` counts those pages; a policy that checkpoints when they pass a
//! share of the file keeps the file near its live pages.

use std::path::Path;
use std::sync::Arc;

use aedb_pager::io::sim::SimVfs;
use aedb_pager::io::Vfs;
use aedb_pager::{PageStore, SpaceHeld, StoreConfig};

fn open() -> PageStore {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
    let config = StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: 8 << 20,
        direct_io: false,
    };
    PageStore::open(vfs, Path::new("/db/data.aedb"), &config).expect("open")
}

fn key(n: u64) -> [u8; 8] {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

/// Load 20,000 keys, checkpoint, then rewrite every key three times in 50-key commits,
/// checkpointing whenever `due` says so. Returns the page count and the checkpoints taken.
fn rewrite(due: impl Fn(SpaceHeld) -> bool) -> (u64, u64) {
    let store = open();
    let keys = 20_000u64;
    let mut txn = store.begin_write().expect("begin");
    for k in 0..keys {
        txn.insert("t", &key(k), &[0u8; 200]).expect("insert");
    }
    txn.commit().expect("commit");
    assert_eq!(
        store.space_held().held_pages,
        0,
        "pages of no checkpoint are not held"
    );
    store.checkpoint().expect("checkpoint");
    let mut checkpoints = 0;
    for round in 1..=3u8 {
        for chunk in 0..400 {
            let mut txn = store.begin_write().expect("begin");
            for k in (chunk..keys).step_by(400) {
                txn.insert("t", &key(k), &[round; 200]).expect("insert");
            }
            txn.commit().expect("commit");
            if due(store.space_held()) {
                store.checkpoint().expect("checkpoint");
                checkpoints += 1;
            }
        }
    }
    let report = store.check();
    assert!(report.is_ok(), "{:?}", report.violations);
    (store.space_held().page_count, checkpoints)
}

#[test]
fn checkpoints_for_space_keep_the_file_near_its_live_pages() {
    let (unbounded, none) = rewrite(|_| false);
    assert_eq!(none, 0);
    // A 50-key commit replaces about 50 pages of the tree's 1,400; 5 % of the file is about
    // 80 pages, so a checkpoint every other commit or so, not after each.
    let (bounded, checkpoints) = rewrite(|held| held.checkpoint_due(5, 64));
    assert!(
        (50..1_000).contains(&checkpoints),
        "{checkpoints} checkpoints for 1,200 commits"
    );
    // The live tree is about 1,400 pages; without checkpoints the rewrites hold a second copy.
    assert!(unbounded > 2_600, "{unbounded} pages without checkpoints");
    assert!(
        bounded * 100 < unbounded * 65,
        "{bounded} pages with checkpoints for space, {unbounded} without"
    );
}

#[test]
fn a_checkpoint_resets_the_held_count() {
    let store = open();
    let mut txn = store.begin_write().expect("begin");
    for k in 0..2_000 {
        txn.insert("t", &key(k), &[0u8; 200]).expect("insert");
    }
    txn.commit().expect("commit");
    store.checkpoint().expect("checkpoint");
    let mut txn = store.begin_write().expect("begin");
    for k in (0..2_000).step_by(10) {
        txn.insert("t", &key(k), &[1u8; 200]).expect("insert");
    }
    txn.commit().expect("commit");
    let held = store.space_held().held_pages;
    assert!(held > 20, "rewrites of checkpointed pages are held: {held}");
    store.checkpoint().expect("checkpoint");
    assert_eq!(store.space_held().held_pages, 0);
}

#[test]
fn commits_should_wait_at_twice_the_checkpoint_share() {
    let held = |held_pages, page_count| SpaceHeld {
        held_pages,
        page_count,
    };
    assert!(held(100, 1_000).commits_should_wait(5, 10));
    assert!(!held(99, 1_000).commits_should_wait(5, 10));
    assert!(
        !held(100, 1_000).commits_should_wait(5, 51),
        "under twice the minimum"
    );
    assert!(
        !held(u64::MAX, 1_000).commits_should_wait(0, 0),
        "0 %: never"
    );
    assert!(
        held(u64::MAX, u64::MAX).checkpoint_due(100, 1),
        "no overflow"
    );
}

#[test]
fn checkpoint_due_needs_both_the_share_and_the_minimum() {
    let held = |held_pages, page_count| SpaceHeld {
        held_pages,
        page_count,
    };
    assert!(held(50, 1_000).checkpoint_due(5, 10));
    assert!(!held(49, 1_000).checkpoint_due(5, 10), "under 5 %");
    assert!(!held(50, 1_000).checkpoint_due(5, 51), "under the minimum");
    assert!(!held(1_000, 1_000).checkpoint_due(0, 0), "0 %: never");
    assert!(!held(0, 1_000).checkpoint_due(5, 0), "nothing held");
}
