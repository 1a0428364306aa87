//! LMDB through heed: the unnamed database, `NO_SYNC` commits, `force_sync` to sync, `MDB_APPEND`
//! for sorted loads.

use std::ops::Bound;
use std::path::Path;

use anyhow::{Context, Result};
use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, PutFlags, RoTxn, WithTls};

use super::{Engine, Reader, ScanTotals};
use crate::data::Batch;

/// The map is virtual address space, not memory: large enough for every workload's data.
const MAP_SIZE: usize = 16 << 30;

pub struct LmdbEngine {
    label: String,
    env: Env<WithTls>,
    db: Database<Bytes, Bytes>,
}

impl LmdbEngine {
    pub fn open(label: String, dir: &Path) -> Result<Self> {
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_SIZE);
        // SAFETY: NO_SYNC only gives up durability of commits until `force_sync`, which is what
        // the not-durable workloads ask; opening is unsafe because LMDB requires that the same
        // file is not opened twice in one process, and every engine has its own directory.
        let env = unsafe {
            options.flags(EnvFlags::NO_SYNC);
            options.open(dir).context("lmdb: open")?
        };
        let mut txn = env.write_txn()?;
        let db = env.create_database(&mut txn, None)?;
        txn.commit()?;
        Ok(LmdbEngine { label, env, db })
    }
}

impl Engine for LmdbEngine {
    fn label(&self) -> &str {
        &self.label
    }

    fn insert_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        for (key, value) in batch.pairs() {
            self.db.put(&mut txn, key, value)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn load_sorted(&self, batch: Batch<'_>) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        for (key, value) in batch.pairs() {
            self.db
                .put_with_flags(&mut txn, PutFlags::APPEND, key, value)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn remove_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        for key in batch.keys() {
            self.db.delete(&mut txn, key)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.env.force_sync()?;
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        let txn = self.env.read_txn()?;
        Ok(Box::new(LmdbReader { txn, db: self.db }))
    }
}

struct LmdbReader<'e> {
    txn: RoTxn<'e, WithTls>,
    db: Database<Bytes, Bytes>,
}

impl Reader for LmdbReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self
            .db
            .get(&self.txn, key)?
            .map(|value| std::hint::black_box(value).len()))
    }

    fn get_read(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self.db.get(&self.txn, key)?.map(super::read_value))
    }

    fn scan(&mut self, start: Option<&[u8]>, limit: usize) -> Result<ScanTotals> {
        let lower = start.map_or(Bound::Unbounded, Bound::Included);
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (lower, Bound::Unbounded);
        let mut totals = ScanTotals::default();
        for entry in self.db.range(&self.txn, &bounds)?.take(limit) {
            let (key, value) = entry?;
            totals.entries += 1;
            totals.bytes += (key.len() + value.len()) as u64;
        }
        Ok(totals)
    }
}
