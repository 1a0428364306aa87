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
    /// W1, W2, W8, W9: keys loaded (in durable commits of `durable_load_batch`) before measuring,
    /// and every engine's pool/cache.
    pub durable_preload: usize,
    pub durable_load_batch: usize,
    pub durable_cache_bytes: u64,
    /// W1: durable single-row commits, one writer.
    pub w1_commits: usize,
    /// W2: writer counts, and durable single-row commits per writer.
    pub w2_writers: &'static [usize],
    pub w2_commits_per_writer: usize,
    /// W8: log sizes built after the last checkpoint (MiB of key+value payload).
    pub w8_log_mib: &'static [u64],
    /// W9: MiB of key+value payload written before the checkpoint, and the single-row commits
    /// that give the commit latency without a checkpoint.
    pub w9_update_mib: u64,
    pub w9_probe_commits: usize,
    /// 4 KiB pwrite+fdatasync samples per measurement of the raw flush.
    pub flush_samples: usize,
    /// W13: deltas loaded into the accumulator whose strong value is read.
    pub w13_deltas: u64,
    /// W12: random updates of the bulk-loaded keys after the delete/reinsert phases.
    pub w12_updates: usize,
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
            durable_preload: 100_000,
            durable_load_batch: 1_000,
            durable_cache_bytes: 1024 * MIB,
            w1_commits: 2_000,
            w2_writers: &[1, 4, 16, 64],
            w2_commits_per_writer: 200,
            w8_log_mib: &[64, 256],
            w9_update_mib: 100,
            w9_probe_commits: 2_000,
            flush_samples: 2_000,
            w13_deltas: 1_000_000,
            w12_updates: 10_000_000,
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
            durable_preload: 10_000,
            durable_load_batch: 1_000,
            durable_cache_bytes: 256 * MIB,
            w1_commits: 200,
            w2_writers: &[1, 4, 16],
            w2_commits_per_writer: 20,
            w8_log_mib: &[8],
            w9_update_mib: 8,
            w9_probe_commits: 200,
            flush_samples: 200,
            w13_deltas: 50_000,
            w12_updates: 500_000,
        }
    }
}
