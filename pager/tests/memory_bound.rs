//! Memory is bounded by the buffer pool: a dataset well over 8 times the pool is written and
//! read back through the real I/O backend, and the process's peak resident memory (VmHWM)
//! stays below the pool plus a fixed overhead.
//!
//! This file holds one test so that it runs in a process of its own and VmHWM measures it alone.

use std::ops::Bound;
use std::path::Path;

use aedb_pager::io::sim::SplitMix64;
use aedb_pager::io::{os_vfs, IoBackendChoice};
use aedb_pager::{PageStore, StoreConfig};

const POOL_BYTES: u64 = 16 << 20;
/// Data written: well over 8 × the pool.
const DATA_BYTES: u64 = 200 << 20;
const VALUE_BYTES: usize = 600;
/// What the process may use beyond the pool: the test binary and its harness, allocator slack,
/// the allocator's free-page sets, the checkpoint's batch of page copies and one transaction's
/// bookkeeping. Documented in docs/ARCHITECTURE.md ("Memory").
const OVERHEAD_BYTES: u64 = 16 << 20;

fn key(i: u64) -> [u8; 16] {
    // Scattered order, so inserts touch pages all over the tree.
    let mut rng = SplitMix64(i);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    key[8..].copy_from_slice(&i.to_be_bytes());
    key
}

fn value(i: u64) -> Vec<u8> {
    let mut rng = SplitMix64(i ^ 0xabcdef);
    (0..VALUE_BYTES).map(|_| rng.next_u64() as u8).collect()
}

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM value");
    kib * 1024
}

#[test]
#[cfg(target_os = "linux")]
fn dataset_of_twelve_pools_stays_within_the_pool_plus_overhead() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("data.aedb");
    let config = StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: POOL_BYTES,
        direct_io: false,
    };
    let baseline = peak_rss_bytes();
    let store = PageStore::open(
        os_vfs(IoBackendChoice::Auto).expect("vfs"),
        Path::new(&path),
        &config,
    )
    .expect("open");
    let entries = DATA_BYTES / VALUE_BYTES as u64;
    let per_txn = 10_000u64;
    let mut next = 0u64;
    while next < entries {
        let mut txn = store.begin_write().expect("begin");
        for i in next..(next + per_txn).min(entries) {
            txn.insert("big", &key(i), &value(i)).expect("insert");
        }
        txn.commit().expect("commit");
        next += per_txn;
        if (next / per_txn).is_multiple_of(5) {
            store.checkpoint().expect("checkpoint");
        }
    }
    store.checkpoint().expect("checkpoint");
    let file_bytes = std::fs::metadata(&path).expect("stat").len();
    assert!(
        file_bytes > 8 * POOL_BYTES,
        "file of {file_bytes} bytes is not 8× the pool"
    );

    // Read everything back: point reads in a scattered order, then a full ordered scan.
    let snapshot = store.snapshot();
    let tree = snapshot.tree("big").expect("lookup").expect("tree");
    assert_eq!(tree.len(), entries);
    for i in (0..entries).step_by(7) {
        assert_eq!(
            tree.get(&key(i)).expect("get").as_deref(),
            Some(value(i).as_slice()),
            "entry {i}"
        );
    }
    let mut scanned = 0u64;
    let mut previous: Option<Vec<u8>> = None;
    for item in tree.range(Bound::Unbounded, Bound::Unbounded, false) {
        let (k, v) = item.expect("scan");
        assert!(previous.as_ref().is_none_or(|p| p < &k));
        let i = u64::from_be_bytes(k[8..].try_into().expect("16-byte key"));
        assert_eq!(v, value(i));
        previous = Some(k);
        scanned += 1;
    }
    assert_eq!(scanned, entries);
    let stats = store.pool_stats();
    assert!(
        stats.evictions > 0,
        "the pool must have evicted pages: {stats:?}"
    );
    assert!(stats.resident_frames <= stats.capacity_frames, "{stats:?}");

    let peak = peak_rss_bytes();
    println!(
        "data {} MiB in a file of {} MiB, pool {} MiB, peak RSS {} MiB (baseline {} MiB), {stats:?}",
        (entries * VALUE_BYTES as u64) >> 20,
        file_bytes >> 20,
        POOL_BYTES >> 20,
        peak >> 20,
        baseline >> 20
    );
    assert!(
        peak <= POOL_BYTES + OVERHEAD_BYTES,
        "peak RSS {} MiB exceeds pool {} MiB + overhead {} MiB",
        peak >> 20,
        POOL_BYTES >> 20,
        OVERHEAD_BYTES >> 20
    );
}
