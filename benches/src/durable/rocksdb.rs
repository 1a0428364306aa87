//! RocksDB (the `rocksdb` crate, C++ RocksDB built from source): the default column family, every
//! write through `WriteOptions::set_sync(true)` (the WAL is on, RocksDB's default, and the write
//! returns after the WAL's `fdatasync`), batches as one `WriteBatch`.
//!
//! Options, RocksDB's defaults except:
//! - `create_if_missing`;
//! - the block cache is an LRU cache of the workload's cache size (as redb's and fjall's cache),
//!   not the default 32 MiB;
//! - statistics on at `StatsLevel::ExceptHistogramOrTimers` (counters only, no timers), for the
//!   WAL sync counter (`rocksdb.wal.synced`) that W2's "log fsyncs per commit" row reads;
//! - compression: snappy, the default when it is compiled in (the only codec built here).
//!
//! Checkpoints as in normal operation (W1, W2): the default 64 MiB memtable
//! (`write_buffer_size`), flushed to an L0 file by a background job when full, background
//! compaction (`max_background_jobs` 2), WAL files released after their memtable is flushed.
//!
//! Manual checkpoints (W8, W9): `write_buffer_size` 2 GiB, so no memtable fills during the
//! workload and every write since the last `DB::flush` stays in the WAL (and the memtable) until
//! the workload flushes it. The checkpoint (W9) is `DB::flush` (`FlushOptions::wait` = true): the
//! memtable written out as an L0 SST file, after which the WAL before it is obsolete. Recovery (W8)
//! replays the WAL into a memtable and, by default (`avoid_flush_during_recovery` = false),
//! flushes it to L0 before `open` returns. RocksDB preallocates each WAL file to 1.1 ×
//! `write_buffer_size` (`fallocate` with `KEEP_SIZE`): 70 MiB in W1/W2, 2.2 GiB of disk in W8/W9.

use std::path::Path;

use anyhow::{Context, Result};
use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{BlockBasedOptions, Cache, Options, WriteBatch, WriteOptions, DB};

use super::{CheckpointStats, Durable, DurableConfig};
use crate::data::Batch;

/// W8 and W9: larger than any workload's log, so nothing is flushed before the workload asks.
const MANUAL_WRITE_BUFFER: usize = 2 << 30;
/// Live SST bytes, summed over every level.
const SST_BYTES: &str = "rocksdb.total-sst-files-size";

pub struct RocksdbDurable {
    label: String,
    db: DB,
    /// Holds the statistics object the ticker counts come from.
    options: Options,
    sync: WriteOptions,
}

impl RocksdbDurable {
    pub fn open(label: String, dir: &Path, config: DurableConfig) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        let cache_bytes = usize::try_from(config.cache_bytes).context("rocksdb: cache size")?;
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(cache_bytes));
        options.set_block_based_table_factory(&table);
        options.enable_statistics();
        options.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
        if config.manual_checkpoints {
            options.set_write_buffer_size(MANUAL_WRITE_BUFFER);
        }
        let db = DB::open(&options, dir).context("rocksdb: open")?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        Ok(RocksdbDurable {
            label,
            db,
            options,
            sync,
        })
    }

    fn sst_bytes(&self) -> Result<Option<u64>> {
        Ok(self.db.property_int_value(SST_BYTES)?)
    }
}

impl Durable for RocksdbDurable {
    fn label(&self) -> &str {
        &self.label
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .put_opt(key, value, &self.sync)
            .context("rocksdb: durable put")?;
        Ok(())
    }

    fn put_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut write = WriteBatch::default();
        for (key, value) in batch.pairs() {
            write.put(key, value);
        }
        self.db
            .write_opt(write, &self.sync)
            .context("rocksdb: durable batch")?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    /// `DB::flush`: the memtable out to an L0 SST file; writers go on into a new memtable. Bytes
    /// written: the growth of the live SST bytes across the flush (the new L0 file, less what a
    /// compaction finishing meanwhile removed).
    fn checkpoint(&self) -> Result<Option<CheckpointStats>> {
        let before = self.sst_bytes()?;
        self.db.flush().context("rocksdb: flush")?;
        let after = self.sst_bytes()?;
        Ok(Some(CheckpointStats {
            bytes_written: before
                .zip(after)
                .map(|(before, after)| after.saturating_sub(before)),
        }))
    }

    fn fsyncs(&self) -> Option<u64> {
        Some(self.options.get_ticker_count(Ticker::WalFileSynced))
    }

    fn close(self: Box<Self>) -> Result<()> {
        // Dropping the DB waits for background jobs; the memtable stays in the WAL (durable).
        drop(self.db);
        Ok(())
    }
}
