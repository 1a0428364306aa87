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

fn config() -> StoreConfig {
    // A small pool, so eviction writes pages back in the middle of the transaction too.
    StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: 24 * 4096,
        direct_io: false,
    }
}

fn open(vfs: &SimVfs) -> aedb_pager::Result<PageStore> {
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    PageStore::open(vfs, Path::new(PATH), &config())
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

/// Version B: replaces, deletes, inserts, a dropped tree and a new one.
fn version_b(store: &PageStore, state: &mut State) -> aedb_pager::Result<()> {
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
    txn.commit()?;
    store.checkpoint()?;
    Ok(())
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
    // Reference run: count the write points of publishing B.
    let vfs = SimVfs::new();
    let store = open(&vfs).expect("open");
    let mut old = State::new();
    version_a(&store, &mut old);
    let start = vfs.write_points();
    let mut new = old.clone();
    version_b(&store, &mut new).expect("reference publish");
    let end = vfs.write_points();
    drop(store);
    assert!(
        end - start > 10,
        "the publish should have many write points, got {}",
        end - start
    );

    let mut images = 0u64;
    let (mut saw_old, mut saw_new) = (0u64, 0u64);
    for point in start..=end {
        let vfs = SimVfs::new();
        let store = open(&vfs).expect("open");
        let mut a = State::new();
        version_a(&store, &mut a);
        vfs.crash_at(point);
        let mut b = a.clone();
        let published = version_b(&store, &mut b);
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
                let store = open(&image).unwrap_or_else(|e| {
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
        "crash sweep: {} crash points x images = {images} images; old {saw_old}, new {saw_new}, mixed 0",
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
