//! Workload sizes: the full run (the guide's sizes where this 2-core box allows, smaller where
//! noted) and a quick smoke run.

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// W3: commits of random keys, and keys per commit.
    pub batch_commits: usize,
    pub batch_keys: usize,
    /// W3 and W12: keys in the one sorted (bulk) commit.
    pub bulk_keys: usize,
    /// W12: keys removed per commit while deleting half.
    pub delete_batch_keys: usize,
    /// W4 and W6: keys loaded, and the pool/cache (≥ the data).
    pub hot_keys: usize,
    pub hot_cache_bytes: u64,
    /// W4: gets per thread per measurement.
    pub hot_gets: usize,
    /// W5: keys loaded, the pool/cache (about a quarter of the data), gets timed right after
    /// dropping the page cache, and gets timed in the steady state.
    pub cold_keys: usize,
    pub cold_cache_bytes: u64,
    pub cold_first_gets: usize,
    pub cold_gets: usize,
    /// W6: short scans per measurement and their length.
    pub scans: usize,
    pub scan_len: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Sizes {
            batch_commits: 100,
            batch_keys: 1_000,
            bulk_keys: 1_000_000,
            delete_batch_keys: 1_000,
            hot_keys: 1_000_000,
            hot_cache_bytes: 1024 * MIB,
            hot_gets: 2_000_000,
            cold_keys: 1_000_000,
            cold_cache_bytes: 48 * MIB,
            cold_first_gets: 20_000,
            cold_gets: 1_000_000,
            scans: 500_000,
            scan_len: 10,
        }
    }

    pub fn quick() -> Self {
        Sizes {
            batch_commits: 10,
            batch_keys: 1_000,
            bulk_keys: 50_000,
            delete_batch_keys: 1_000,
            hot_keys: 50_000,
            hot_cache_bytes: 64 * MIB,
            hot_gets: 100_000,
            cold_keys: 50_000,
            cold_cache_bytes: 2 * MIB,
            cold_first_gets: 2_000,
            cold_gets: 50_000,
            scans: 20_000,
            scan_len: 10,
        }
    }
}
