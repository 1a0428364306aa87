//! redb: one table `kv` of byte slices, every commit `Durability::Immediate` (redb's default);
//! otherwise redb's defaults, except the cache (the workload's cache size).
//!
//! Checkpoints: none to configure. redb has no log: a durable commit writes its copy-on-write
//! B-tree pages and flips the header's commit slot in place, so there is nothing to fold in later
//! (no checkpoint in W9; W8 measures its repair after an unclean shutdown).

use std::path::Path;

use anyhow::{Context, Result};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use super::{CheckpointStats, Durable, DurableConfig};
use crate::data::Batch;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const DATA_FILE: &str = "data.redb";

pub struct RedbDurable {
    label: String,
    db: Database,
}

impl RedbDurable {
    pub fn open(label: String, dir: &Path, config: DurableConfig) -> Result<Self> {
        let cache = usize::try_from(config.cache_bytes).context("redb: cache size")?;
        let db = Database::builder()
            .set_cache_size(cache)
            .create(dir.join(DATA_FILE))
            .context("redb: open")?;
        Ok(RedbDurable { label, db })
    }

    fn commit(
        &self,
        write: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<()>,
    ) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut table = txn.open_table(TABLE)?;
            write(&mut table)?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl Durable for RedbDurable {
    fn label(&self) -> &str {
        &self.label
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.commit(|table| {
            table.insert(key, value)?;
            Ok(())
        })
    }

    fn put_batch(&self, batch: Batch<'_>) -> Result<()> {
        self.commit(|table| {
            for (key, value) in batch.pairs() {
                table.insert(key, value)?;
            }
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(table.get(key)?.map(|guard| guard.value().to_vec()))
    }

    fn checkpoint(&self) -> Result<Option<CheckpointStats>> {
        Ok(None)
    }

    fn fsyncs(&self) -> Option<u64> {
        None
    }

    fn close(self: Box<Self>) -> Result<()> {
        drop(self.db);
        Ok(())
    }
}
