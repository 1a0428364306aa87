//! Hot point reads through a snapshot's `TreeView::get_with`, the shape of peer-bench's W4,
//! without the other engines in the process: for `perf record` and quick before/after runs.
//!
//! `cargo run --release -p aedb-pager --example get_probe -- [DIR] [KEYS] [GETS] [THREADS]`
//! (defaults: a temporary directory, 1,000,000 keys, 4,000,000 gets per thread, 1 thread).
//! Keys are 24 random bytes and values 150, loaded in key order with `bulk_load`.

use std::time::Instant;

use aedb_pager::{IoBackendChoice, PageStore, StoreConfig};

const TREE: &str = "kv";

fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn key(index: u64) -> [u8; 24] {
    let mut state = index.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut key = [0u8; 24];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&next(&mut state).to_le_bytes());
    }
    key
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let temp = tempfile::tempdir()?;
    let dir = args
        .first()
        .map_or_else(|| temp.path().to_path_buf(), Into::into);
    let keys: u64 = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let gets: u64 = args.get(2).map_or(Ok(4_000_000), |s| s.parse())?;
    let threads: u64 = args.get(3).map_or(Ok(1), |s| s.parse())?;

    let vfs = aedb_pager::io::os_vfs(IoBackendChoice::Auto)?;
    let config = StoreConfig {
        buffer_pool_bytes: 1 << 30,
        ..StoreConfig::default()
    };
    let store = PageStore::open(vfs, &dir.join("data.aedb"), &config)?;
    let mut pairs: Vec<([u8; 24], [u8; 150])> = (0..keys).map(|i| (key(i), [7u8; 150])).collect();
    pairs.sort_unstable_by_key(|pair| pair.0);
    let mut txn = store.begin_write()?;
    txn.bulk_load(TREE, pairs.iter().map(|(k, v)| (&k[..], &v[..])))?;
    txn.commit()?;
    drop(pairs);

    let tree = store
        .snapshot()
        .tree(TREE)?
        .ok_or("the kv tree is missing")?;
    for i in 0..keys {
        tree.get_with(&key(i), |v| v.len())?
            .ok_or("a loaded key is missing")?;
    }
    eprintln!("loaded and warmed {keys} keys");
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<(), String> {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let store = &store;
                scope.spawn(move || -> Result<(), String> {
                    let tree = store
                        .snapshot()
                        .tree(TREE)
                        .map_err(|e| e.to_string())?
                        .ok_or("the kv tree is missing")?;
                    let mut rng = 0x4_0000 + thread;
                    for _ in 0..gets {
                        let k = key(next(&mut rng) % keys);
                        let found = tree
                            .get_with(&k, |v| std::hint::black_box(v).len())
                            .map_err(|e| e.to_string())?;
                        found.ok_or("a loaded key is missing")?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle.join().map_err(|_| "a reader panicked")??;
        }
        Ok(())
    })?;
    let rate = (gets * threads) as f64 / start.elapsed().as_secs_f64();
    println!("{threads} thread(s): {:.1} K gets/s", rate / 1e3);
    Ok(())
}
