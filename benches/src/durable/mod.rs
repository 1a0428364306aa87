//! Durable adapters for W1, W2, W8 and W9: every commit is durable when the call returns (the
//! "durable per commit (D)" column of the guide's peer table), one adapter per engine.
//!
//! | engine | durable commit | checkpoint (W9) |
//! |---|---|---|
//! | aedb | `Engine::commit_blocking(CommitFinality::Durable, ..)`, `DurabilityMode::Full` | `Engine::checkpoint_now` |
//! | SQLite | autocommit `INSERT OR REPLACE`, `journal_mode=WAL`, `synchronous=FULL` | `PRAGMA wal_checkpoint(TRUNCATE)` |
//! | redb | `Durability::Immediate` | – (no log to fold in) |
//! | LMDB | default flags (fdatasync of the data, meta page through `O_DSYNC`) | – |
//! | fjall | `insert` then `Database::persist(PersistMode::SyncData)` | – (background flushes) |
//! | RocksDB | `put_opt` / `write_opt` with `WriteOptions::set_sync(true)`, WAL on | `DB::flush` (memtable to an L0 file) |
//! | original aedb | `commit_with_finality(KvSet, CommitFinality::Durable)`, `DurabilityMode::Full` | `checkpoint_now` |

mod aedb;
mod fjall;
mod lmdb;
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
mod seed;
mod sqlite;

use std::path::Path;

use anyhow::{Context, Result};

use crate::data::Batch;
use crate::engines::{EngineKind, EngineSpec};

/// What a checkpoint wrote, when the engine says.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckpointStats {
    pub bytes_written: Option<u64>,
}

/// What recovery replayed at open (aedb's `RecoveryReport`).
#[derive(Debug, Clone, Copy)]
pub struct LogReplay {
    pub frames: u64,
    pub bytes: u64,
    pub checkpointed_after_redo: bool,
}

/// A key/value table in one engine, every commit durable on return. Shared by the writer threads
/// of W2 (each engine serializes its writers its own way).
pub trait Durable: Send + Sync {
    fn label(&self) -> &str;
    /// One durable commit of one pair (insert or replace).
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// One durable commit of every pair of the batch (loads, building a log).
    fn put_batch(&self, batch: Batch<'_>) -> Result<()>;
    /// A read of the newest committed value.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Make the data file current and the log short; None when the engine has no such step.
    fn checkpoint(&self) -> Result<Option<CheckpointStats>>;
    /// Log fsyncs since open, when the engine counts them.
    fn fsyncs(&self) -> Option<u64>;
    /// What recovery replayed at open, when the engine reports it.
    fn log_replay(&self) -> Option<LogReplay> {
        None
    }
    /// Orderly shutdown.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Per-workload settings shared by all engines.
#[derive(Debug, Clone, Copy)]
pub struct DurableConfig {
    /// aedb's buffer pool, redb's, fjall's and RocksDB's cache, SQLite's `cache_size`.
    pub cache_bytes: u64,
    /// Checkpoint only when asked (W8, W9), so the log after the workload's checkpoint stays
    /// whole: aedb `checkpoint_wal_bytes` far above the data and `checkpoint_interval_ms` 0;
    /// SQLite `wal_autocheckpoint=0`; RocksDB a 2 GiB memtable (`write_buffer_size`), so none
    /// fills and is flushed. Without it (W1, W2), every engine checkpoints as it would in normal
    /// operation, on its own defaults: aedb every 256 MiB of log and every 60 s
    /// (`AedbConfig::default()`), SQLite every 1,000 pages of WAL, RocksDB and fjall a background
    /// flush of each full 64 MiB memtable plus background compaction; redb and LMDB have no log
    /// to fold in (their B-trees are written in place at each commit). fjall has no setting for
    /// manual checkpoints here: it flushes on its defaults in W8 too.
    pub manual_checkpoints: bool,
}

/// Whether the engine has a checkpoint step (W9 runs on these only).
pub fn has_checkpoint(kind: EngineKind) -> bool {
    matches!(
        kind,
        EngineKind::Aedb | EngineKind::Sqlite | EngineKind::Rocksdb | EngineKind::Seed
    )
}

/// Open (creating when absent) the engine's table in `dir`.
pub fn open(spec: &EngineSpec, dir: &Path, config: DurableConfig) -> Result<Box<dyn Durable>> {
    let label = spec.label.clone();
    Ok(match spec.kind {
        EngineKind::Aedb => Box::new(aedb::AedbDurable::open(label, dir, spec, config)?),
        EngineKind::Sqlite => Box::new(sqlite::SqliteDurable::open(label, dir, config)?),
        EngineKind::Redb => Box::new(redb::RedbDurable::open(label, dir, config)?),
        EngineKind::Lmdb => Box::new(lmdb::LmdbDurable::open(label, dir)?),
        EngineKind::Fjall => Box::new(fjall::FjallDurable::open(label, dir, config)?),
        #[cfg(feature = "rocksdb")]
        EngineKind::Rocksdb => Box::new(rocksdb::RocksdbDurable::open(label, dir, config)?),
        #[cfg(not(feature = "rocksdb"))]
        EngineKind::Rocksdb => {
            anyhow::bail!("peer-bench was built without RocksDB (`--no-default-features`)")
        }
        EngineKind::Seed => Box::new(seed::SeedDurable::open(label, dir)?),
        EngineKind::Btreemap => anyhow::bail!("the BTreeMap reference has no durable commits"),
    })
}

/// Commits `pairs` in durable commits of `per_commit` pairs each.
pub fn load(
    engine: &dyn Durable,
    data: &crate::data::Dataset,
    pairs: &[u32],
    per_commit: usize,
) -> Result<()> {
    for chunk in pairs.chunks(per_commit.max(1)) {
        engine
            .put_batch(Batch::new(data, chunk))
            .with_context(|| format!("{}: durable load", engine.label()))?;
    }
    Ok(())
}
