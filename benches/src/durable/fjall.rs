//! fjall (LSM): one keyspace `kv`; a durable commit is the write followed by
//! `Database::persist(PersistMode::SyncData)`. Its flushes and compactions run on background
//! threads that share the same two cores (W1 reports CPU time per commit for that reason).
//!
//! fjall's defaults except the block cache (the workload's cache size). Checkpoints as in normal
//! operation, in every workload: a memtable is flushed to a segment by a background worker when it
//! reaches 64 MiB (`max_memtable_size`), or when the journals pass 512 MiB
//! (`max_journaling_size`); compaction runs in the background too (workers: min(cores, 4), 2
//! here). It has no setting to defer them, so W8 replays only what was not flushed yet, and W9
//! (no explicit checkpoint step) does not run on it. Its journal is preallocated (64 MiB, by
//! `set_len`) and appended through a buffer; `persist(SyncData)` flushes the buffer, then
//! `fdatasync`s the journal.

use std::path::Path;

use anyhow::{Context, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{CheckpointStats, Durable, DurableConfig};
use crate::data::Batch;

pub struct FjallDurable {
    label: String,
    db: Database,
    kv: Keyspace,
}

impl FjallDurable {
    pub fn open(label: String, dir: &Path, config: DurableConfig) -> Result<Self> {
        let db = Database::builder(dir)
            .cache_size(config.cache_bytes)
            .open()
            .context("fjall: open")?;
        let kv = db
            .keyspace("kv", KeyspaceCreateOptions::default)
            .context("fjall: keyspace")?;
        Ok(FjallDurable { label, db, kv })
    }
}

impl Durable for FjallDurable {
    fn label(&self) -> &str {
        &self.label
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.kv.insert(key, value)?;
        self.db.persist(PersistMode::SyncData)?;
        Ok(())
    }

    fn put_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut write = self.db.batch();
        for (key, value) in batch.pairs() {
            write.insert(&self.kv, key, value);
        }
        write.commit()?;
        self.db.persist(PersistMode::SyncData)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.kv.get(key)?.map(|value| value.to_vec()))
    }

    fn checkpoint(&self) -> Result<Option<CheckpointStats>> {
        Ok(None)
    }

    fn fsyncs(&self) -> Option<u64> {
        None
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}
