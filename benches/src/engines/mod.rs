//! One adapter per engine behind a small trait, so every workload drives all engines the same way.
//!
//! Durability is off everywhere (this is the storage-core level, before the WAL): commits publish
//! without syncing, and [`Engine::sync`] makes everything durable once, at the end of a load.

mod aedb;
mod btreemap;
mod lmdb;
mod redb;

use std::path::Path;

use anyhow::Result;

use crate::data::Batch;

/// Totals of a range scan.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanTotals {
    pub entries: u64,
    /// Key plus value bytes visited.
    pub bytes: u64,
}

/// Point reads and scans over one consistent version (a read transaction or a snapshot).
/// One per thread.
pub trait Reader {
    /// The value's length, or None when the key is absent.
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>>;
    /// The sum of the value's bytes, read where the engine hands them over, or None when the
    /// key is absent: a get whose caller reads the value it asked for.
    fn get_read(&mut self, key: &[u8]) -> Result<Option<u64>>;
    /// Visit up to `limit` entries in key order from the first key ≥ `start` (from the first key
    /// of the table when None).
    fn scan(&mut self, start: Option<&[u8]>, limit: usize) -> Result<ScanTotals>;
}

/// A key/value table in one engine, in its own directory.
pub trait Engine: Sync {
    fn label(&self) -> &str;
    /// Insert (or replace) every pair in one commit that is not made durable.
    fn insert_batch(&self, batch: Batch<'_>) -> Result<()>;
    /// Load pairs whose keys strictly increase into the empty table, in one commit, through the
    /// engine's fastest path for sorted input.
    fn load_sorted(&self, batch: Batch<'_>) -> Result<()>;
    /// Remove every key in one commit that is not made durable.
    fn remove_batch(&self, batch: Batch<'_>) -> Result<()>;
    /// Make every commit so far durable.
    fn sync(&self) -> Result<()>;
    fn reader(&self) -> Result<Box<dyn Reader + '_>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Aedb,
    Redb,
    Lmdb,
    /// A `BTreeMap` behind a `parking_lot::RwLock`: the in-memory reference for hot reads.
    Btreemap,
    /// SQLite through rusqlite (durable workloads only).
    Sqlite,
    /// fjall, an LSM (durable workloads only).
    Fjall,
    /// RocksDB, an LSM (durable workloads only).
    Rocksdb,
    /// The original aedb 0.1.9 (durable workloads only).
    Seed,
}

impl EngineKind {
    /// Whether the storage-core workloads (W3–W12, durability off) have an adapter for it.
    pub fn in_core_workloads(self) -> bool {
        matches!(
            self,
            EngineKind::Aedb | EngineKind::Redb | EngineKind::Lmdb | EngineKind::Btreemap
        )
    }
}

/// An engine and the settings that distinguish it from another run of the same engine.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    pub kind: EngineKind,
    /// aedb only: the page size of a new data file.
    pub page_size: u32,
    /// aedb only: open the data file with O_DIRECT.
    pub direct_io: bool,
    pub label: String,
}

/// Per-workload settings shared by all engines.
#[derive(Debug, Clone, Copy)]
pub struct OpenConfig {
    /// aedb's buffer pool and redb's cache (LMDB relies on the OS page cache: no knob).
    pub cache_bytes: u64,
}

/// Open (creating when absent) the engine's table in `dir`.
pub fn open(spec: &EngineSpec, dir: &Path, config: OpenConfig) -> Result<Box<dyn Engine>> {
    let label = spec.label.clone();
    Ok(match spec.kind {
        EngineKind::Aedb => Box::new(aedb::AedbEngine::open(label, dir, spec, config)?),
        EngineKind::Redb => Box::new(redb::RedbEngine::open(label, dir, config)?),
        EngineKind::Lmdb => Box::new(lmdb::LmdbEngine::open(label, dir)?),
        EngineKind::Btreemap => Box::new(btreemap::BTreeMapEngine::new(label)),
        other => anyhow::bail!("{other:?} runs in the durable workloads (W1, W2, W8, W9) only"),
    })
}

/// What a caller that reads a value does with it: every byte is loaded.
pub fn read_value(value: &[u8]) -> u64 {
    value.iter().map(|b| u64::from(*b)).sum()
}
