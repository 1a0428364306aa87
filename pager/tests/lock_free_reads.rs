//! Lock-free point reads against a pool far smaller than the data, while a writer commits and
//! frames are evicted, retired and reused all the time: every read must return exactly the
//! value of its snapshot's version (a frame reused under a reader would show another page's
//! bytes, or another version's).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aedb_pager::io::sim::{SimVfs, SplitMix64};
use aedb_pager::io::Vfs;
use aedb_pager::{PageStore, StoreConfig};

const KEYS: u32 = 3_000;
const ROUNDS: u32 = 300;
/// Pages in the pool: the tree is several times larger.
const POOL_PAGES: u64 = 48;

fn value(key: u32, round: u32) -> Vec<u8> {
    // Sizes on both sides of the lock-free read's stack copy (256 bytes), and overflow values
    // (which take the locked path) every 97th key.
    let len = match key % 97 {
        0 => 6_000,
        n if n % 3 == 0 => 300,
        _ => 40 + (key % 60) as usize,
    };
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&key.to_be_bytes());
    out.extend_from_slice(&round.to_be_bytes());
    out.resize(len, (key ^ round) as u8);
    out
}

fn write_round(store: &PageStore, round: u32, keys: impl Iterator<Item = u32>) {
    let mut txn = store.begin_write().expect("begin");
    for key in keys {
        txn.insert("t", &key.to_be_bytes(), &value(key, round))
            .expect("insert");
    }
    txn.insert("t", b"round", &round.to_be_bytes())
        .expect("insert round");
    txn.commit().expect("commit");
}

#[test]
fn lock_free_reads_see_their_version_while_frames_are_evicted_and_reused() {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
    let config = StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: POOL_PAGES * 4096,
        direct_io: false,
    };
    let store = Arc::new(PageStore::open(vfs, Path::new("/s/data.aedb"), &config).expect("open"));
    write_round(&store, 0, 0..KEYS);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|thread| {
            let store = Arc::clone(&store);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut rng = SplitMix64(thread + 1);
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads < 20_000 {
                    let snapshot = store.snapshot();
                    let tree = snapshot.tree("t").expect("lookup").expect("tree");
                    let round_bytes = tree.get(b"round").expect("get round").expect("round");
                    let round = u32::from_be_bytes(round_bytes.try_into().expect("4 bytes"));
                    // A round rewrites every third key; the rest keep an older round's value,
                    // which must be the one this snapshot's writes left.
                    for _ in 0..200 {
                        let key = (rng.next_u64() % u64::from(KEYS)) as u32;
                        let got = tree
                            .get_with(&key.to_be_bytes(), <[u8]>::to_vec)
                            .expect("get")
                            .expect("every key exists");
                        assert_eq!(&got[..4], &key.to_be_bytes(), "another key's bytes");
                        let written = u32::from_be_bytes(got[4..8].try_into().expect("4"));
                        assert!(written <= round, "a value from after the snapshot");
                        assert_eq!(
                            written,
                            last_write(key, round),
                            "key {key} at round {round}"
                        );
                        assert_eq!(got, value(key, written), "key {key}: damaged value");
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    for round in 1..=ROUNDS {
        write_round(&store, round, (0..KEYS).filter(|k| k % 3 == round % 3));
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers
        .into_iter()
        .map(|reader| reader.join().expect("a reader failed"))
        .sum();
    let stats = store.pool_stats();
    assert!(reads >= 40_000);
    // The premise: lock-free reads ran, and published frames left the pool under them.
    assert!(stats.evictions > 0, "the pool never evicted: {stats:?}");
    assert!(
        stats.retirements > 0,
        "no published frame was retired: {stats:?}"
    );
}

/// The round whose write of `key` a snapshot at `round` sees.
fn last_write(key: u32, round: u32) -> u32 {
    (0..=round)
        .rev()
        .find(|r| *r == 0 || key % 3 == r % 3)
        .unwrap_or(0)
}
