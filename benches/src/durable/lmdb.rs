//! LMDB through heed with its default (durable) flags: a commit writes the data pages,
//! fdatasyncs, then writes the meta page through an `O_DSYNC` descriptor. Defaults otherwise,
//! except the map size (16 GiB of address space).
//!
//! Checkpoints: none to configure. LMDB has no log: each commit is in place in the data file once
//! it returns (no checkpoint in W9, nothing to replay in W8).

use std::path::Path;

use anyhow::{Context, Result};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, WithTls};

use super::{CheckpointStats, Durable};
use crate::data::Batch;

/// The map is virtual address space, not memory: large enough for every workload's data.
const MAP_SIZE: usize = 16 << 30;

pub struct LmdbDurable {
    label: String,
    env: Env<WithTls>,
    db: Database<Bytes, Bytes>,
}

impl LmdbDurable {
    pub fn open(label: String, dir: &Path) -> Result<Self> {
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_SIZE);
        // SAFETY: LMDB requires that the same environment is not opened twice in one process;
        // every engine has its own directory, and W8 reopens it only after the writer process
        // that had it open was killed.
        let env = unsafe { options.open(dir).context("lmdb: open")? };
        let mut txn = env.write_txn()?;
        let db = env.create_database(&mut txn, None)?;
        txn.commit()?;
        Ok(LmdbDurable { label, env, db })
    }
}

impl Durable for LmdbDurable {
    fn label(&self) -> &str {
        &self.label
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        self.db.put(&mut txn, key, value)?;
        txn.commit()?;
        Ok(())
    }

    fn put_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        for (key, value) in batch.pairs() {
            self.db.put(&mut txn, key, value)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.env.read_txn()?;
        Ok(self.db.get(&txn, key)?.map(<[u8]>::to_vec))
    }

    fn checkpoint(&self) -> Result<Option<CheckpointStats>> {
        Ok(None)
    }

    fn fsyncs(&self) -> Option<u64> {
        None
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
