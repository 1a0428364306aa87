//! Crash tests on the simulated backend: publishing a durable version (commit + checkpoint),
//! crashed at every write and sync, in every crash mode, reopens to exactly the old or exactly
//! the new version, and the invariant checker passes on the file and on the reopened store.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use aedb_pager::io::sim::{CrashMode, SimVfs, SplitMix64};
use aedb_pager::io::Vfs;
use aedb_pager::{PageStore, StoreConfig};

type State = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

const PATH: &str = "/db/data.aedb";

fn config(page_size: u32, pool_pages: u64) -> StoreConfig {
    StoreConfig {
        page_size,
        buffer_pool_bytes: pool_pages * u64::from(page_size),
        direct_io: false,
    }
}

/// A small pool, so eviction writes pages back in the middle of the transaction too.
const SMALL_POOL_PAGES: u64 = 24;

fn open(vfs: &SimVfs) -> aedb_pager::Result<PageStore> {
    open_sized(vfs, 4096, SMALL_POOL_PAGES)
}

fn open_sized(vfs: &SimVfs, page_size: u32, pool_pages: u64) -> aedb_pager::Result<PageStore> {
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    PageStore::open(vfs, Path::new(PATH), &config(page_size, pool_pages))
}

/// How version B's checkpoint runs: unpaced, or as beside committing writers (the log syncing
/// between every two batches: small batches, each followed by a pause).
#[derive(Clone, Copy)]
enum Pacing {
    Unpaced,
    BesideCommits,
}

/// Version A: two trees, with small and overflowing values.
fn version_a(store: &PageStore, state: &mut State) {
    let mut txn = store.begin_write().expect("begin");
    let mut rng = SplitMix64(7);
    for tree in ["alpha", "beta"] {
        for i in 0..300u64 {
            let key = format!("{tree}-{i:05}").into_bytes();
            let len = if i % 50 == 0 {
                6000
            } else {
                (rng.next_u64() % 120) as usize
            };
            let value: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            txn.insert(tree, &key, &value).expect("insert");
            state.entry(tree.into()).or_default().insert(key, value);
        }
    }
    txn.commit().expect("commit A");
    store.checkpoint().expect("checkpoint A");
}

/// Version B: replaces, deletes, inserts, a dropped tree and a new one. Returns how many
/// batches its checkpoint wrote.
fn version_b(store: &PageStore, state: &mut State, pacing: Pacing) -> aedb_pager::Result<u32> {
    let mut txn = store.begin_write()?;
    for i in (0..300u64).step_by(3) {
        let key = format!("alpha-{i:05}").into_bytes();
        txn.remove("alpha", &key)?;
        state.get_mut("alpha").map(|t| t.remove(&key));
    }
    for i in 300..500u64 {
        let key = format!("alpha-{i:05}").into_bytes();
        let value = vec![(i % 256) as u8; if i % 40 == 0 { 9000 } else { 64 }];
        txn.insert("alpha", &key, &value)?;
        state.entry("alpha".into()).or_default().insert(key, value);
    }
    txn.drop_tree("beta")?;
    state.remove("beta");
    for i in 0..100u64 {
        let key = i.to_be_bytes().to_vec();
        txn.insert("gamma", &key, b"g")?;
        state
            .entry("gamma".into())
            .or_default()
            .insert(key, b"g".to_vec());
    }
    if matches!(pacing, Pacing::BesideCommits) {
        // More bytes than one paced batch holds at any page size (512 KiB).
        for i in 0..200u64 {
            let key = i.to_be_bytes().to_vec();
            let value = vec![(i % 251) as u8; 3000];
            txn.insert("delta", &key, &value)?;
            state.entry("delta".into()).or_default().insert(key, value);
        }
    }
    txn.commit()?;
    let mut batches = 0;
    store.checkpoint_unless(|| None, &mut || {
        batches += 1;
        matches!(pacing, Pacing::BesideCommits)
    })?;
    Ok(batches)
}

fn read_state(store: &PageStore) -> State {
    let snapshot = store.snapshot();
    let mut state = State::new();
    for (name, _) in snapshot.trees().expect("trees") {
        let tree = snapshot
            .tree(&name)
            .expect("tree")
            .expect("listed tree exists");
        let entries = tree
            .range(Bound::Unbounded, Bound::Unbounded, false)
            .collect::<Result<BTreeMap<_, _>, _>>()
            .expect("scan");
        state.insert(name, entries);
    }
    state
}

#[test]
fn every_crash_point_of_a_durable_publish_leaves_old_or_new() {
    sweep(4096, SMALL_POOL_PAGES, Pacing::Unpaced);
}

/// The checkpoint beside committing writers writes smaller batches at larger pages
/// (`batch_bounds`): 64 pages in 4 runs at 8 KiB, 8 pages in one run at 64 KiB.
#[test]
fn every_crash_point_of_a_paced_publish_at_larger_pages_leaves_old_or_new() {
    // A pool that keeps B's pages dirty until the checkpoint, so it has several batches.
    for page_size in [8192, 65536] {
        sweep(page_size, 512, Pacing::BesideCommits);
    }
}

/// Publish B crashed at every write point of it, each crash image reopened: exactly A or
/// exactly B, a file the checker passes, and a store that keeps working.
fn sweep(page_size: u32, pool_pages: u64, pacing: Pacing) {
    // Reference run: count the write points of publishing B.
    let vfs = SimVfs::new();
    let store = open_sized(&vfs, page_size, pool_pages).expect("open");
    let mut old = State::new();
    version_a(&store, &mut old);
    let start = vfs.write_points();
    let mut new = old.clone();
    let batches = version_b(&store, &mut new, pacing).expect("reference publish");
    let end = vfs.write_points();
    drop(store);
    if matches!(pacing, Pacing::BesideCommits) {
        assert!(
            batches > 1,
            "{page_size}-byte pages: the paced checkpoint wrote {batches} batch(es)"
        );
    }
    // The unpaced publish's small pool writes back during the commit too; the paced one's
    // large pool leaves every page to the checkpoint: a write a batch, the data sync, the meta.
    let least = match pacing {
        Pacing::Unpaced => 10,
        Pacing::BesideCommits => u64::from(batches) + 2,
    };
    assert!(
        end - start > least,
        "the publish should have more than {least} write points, got {}",
        end - start
    );

    let mut images = 0u64;
    let (mut saw_old, mut saw_new) = (0u64, 0u64);
    for point in start..=end {
        let vfs = SimVfs::new();
        let store = open_sized(&vfs, page_size, pool_pages).expect("open");
        let mut a = State::new();
        version_a(&store, &mut a);
        vfs.crash_at(point);
        let mut b = a.clone();
        let published = version_b(&store, &mut b, pacing);
        if point < end {
            assert!(
                published.is_err(),
                "crash at {point} must surface as an error"
            );
        }
        drop(store);
        for mode in CrashMode::ALL {
            let seeds = if matches!(mode, CrashMode::ProcessCrash | CrashMode::PowerLoss) {
                1
            } else {
                3
            };
            for seed in 0..seeds {
                images += 1;
                let image = vfs.crash_image(mode, point * 31 + seed);
                let store = open_sized(&image, page_size, pool_pages).unwrap_or_else(|e| {
                    panic!("point {point} {mode:?} seed {seed}: reopen failed: {e}")
                });
                let state = read_state(&store);
                if state == old {
                    saw_old += 1;
                } else if state == new {
                    saw_new += 1;
                } else {
                    panic!("point {point} {mode:?} seed {seed}: a mix of old and new");
                }
                let meta = store.durable_meta();
                let file_report = aedb_pager::check::check_file(store.pool(), &meta);
                assert!(
                    file_report.is_ok(),
                    "point {point} {mode:?}: {:?}",
                    file_report.violations
                );
                let live = store.check();
                assert!(
                    live.is_ok(),
                    "point {point} {mode:?}: {:?}",
                    live.violations
                );
                // The reopened store keeps working: write and checkpoint again.
                let mut txn = store.begin_write().expect("begin after recovery");
                txn.insert("alpha", b"after", b"crash")
                    .expect("insert after recovery");
                txn.commit().expect("commit after recovery");
                store.checkpoint().expect("checkpoint after recovery");
                assert!(store.check().is_ok());
            }
        }
    }
    println!(
        "crash sweep ({page_size}-byte pages, {batches} checkpoint batches): {} crash points x images = {images} images; old {saw_old}, new {saw_new}, mixed 0",
        end - start + 1
    );
    assert!(
        saw_old > 0 && saw_new > 0,
        "both outcomes should occur across the sweep"
    );
}

#[test]
fn corrupted_page_gives_a_typed_checksum_error_naming_it() {
    let vfs = SimVfs::new();
    let store = open(&vfs).expect("open");
    let mut state = State::new();
    version_a(&store, &mut state);
    let root = store
        .snapshot()
        .tree("alpha")
        .expect("lookup")
        .expect("tree")
        .record()
        .root;
    drop(store);
    // Flip one byte in the middle of the tree's root page.
    let offset = root * 4096 + 2000;
    let byte = vfs.file_bytes(Path::new(PATH)).expect("file")[offset as usize];
    vfs.corrupt(Path::new(PATH), offset, &[byte ^ 0x40]);
    let store = open(&vfs).expect("meta pages are intact");
    let err = store
        .snapshot()
        .get("alpha", b"alpha-00001")
        .expect_err("corrupt page must be reported");
    assert!(
        matches!(err, aedb_pager::PagerError::Checksum { page, .. } if page == root),
        "{err}"
    );
    let report = aedb_pager::check::check_file(store.pool(), &store.durable_meta());
    assert!(
        report.violations.iter().any(|v| v.page == Some(root)),
        "{:?}",
        report.violations
    );
}

#[test]
fn both_meta_pages_invalid_is_a_typed_error_naming_the_file() {
    let vfs = SimVfs::new();
    let store = open(&vfs).expect("open");
    version_a(&store, &mut State::new());
    drop(store);
    vfs.corrupt(Path::new(PATH), 100, &[0xAA; 8]);
    // One meta page damaged: the other still opens.
    assert!(open(&vfs).is_ok());
    vfs.corrupt(Path::new(PATH), 4096 + 100, &[0xAA; 8]);
    match open(&vfs) {
        Err(aedb_pager::PagerError::NoValidMeta { path, .. }) => assert_eq!(path, Path::new(PATH)),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a file without a valid meta page must not open"),
    }
}

#[test]
fn flipped_bits_on_read_are_detected() {
    let vfs = SimVfs::new();
    let store = open(&vfs).expect("open");
    version_a(&store, &mut State::new());
    let root = store
        .snapshot()
        .tree("beta")
        .expect("lookup")
        .expect("tree")
        .record()
        .root;
    drop(store);
    vfs.flip_bit_on_read(Path::new(PATH), root * 4096 + 77, 0x01);
    let store = open(&vfs).expect("open");
    assert!(matches!(
        store.snapshot().get("beta", b"beta-00001"),
        Err(aedb_pager::PagerError::Checksum { .. })
    ));
}
