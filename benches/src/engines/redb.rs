//! redb: one table `kv` of byte slices; `Durability::None` commits, one `Immediate` commit to sync.

use std::path::Path;

use anyhow::{Context, Result};
use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition,
};

use super::{Engine, OpenConfig, Reader, ScanTotals};
use crate::data::Batch;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const DATA_FILE: &str = "data.redb";

pub struct RedbEngine {
    label: String,
    db: Database,
}

impl RedbEngine {
    pub fn open(label: String, dir: &Path, config: OpenConfig) -> Result<Self> {
        let cache = usize::try_from(config.cache_bytes).context("redb: cache size")?;
        let db = Database::builder()
            .set_cache_size(cache)
            .create(dir.join(DATA_FILE))
            .context("redb: open")?;
        Ok(RedbEngine { label, db })
    }

    /// Run `write` on the table in one commit of the given durability.
    fn commit(
        &self,
        durability: Durability,
        write: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<()>,
    ) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        {
            let mut table = txn.open_table(TABLE)?;
            write(&mut table)?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl Engine for RedbEngine {
    fn label(&self) -> &str {
        &self.label
    }

    fn insert_batch(&self, batch: Batch<'_>) -> Result<()> {
        self.commit(Durability::None, |table| {
            for (key, value) in batch.pairs() {
                table.insert(key, value)?;
            }
            Ok(())
        })
    }

    /// redb has no bulk-load path: sorted inserts in one commit.
    fn load_sorted(&self, batch: Batch<'_>) -> Result<()> {
        self.insert_batch(batch)
    }

    fn remove_batch(&self, batch: Batch<'_>) -> Result<()> {
        self.commit(Durability::None, |table| {
            for key in batch.keys() {
                table.remove(key)?;
            }
            Ok(())
        })
    }

    fn sync(&self) -> Result<()> {
        self.commit(Durability::Immediate, |_| Ok(()))
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(Box::new(RedbReader { table, _txn: txn }))
    }
}

struct RedbReader {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    _txn: ReadTransaction,
}

impl Reader for RedbReader {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self
            .table
            .get(key)?
            .map(|guard| std::hint::black_box(guard.value()).len()))
    }

    fn get_read(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self
            .table
            .get(key)?
            .map(|guard| super::read_value(guard.value())))
    }

    fn scan(&mut self, start: Option<&[u8]>, limit: usize) -> Result<ScanTotals> {
        let range = match start {
            Some(start) => self.table.range(start..)?,
            None => self.table.iter()?,
        };
        let mut totals = ScanTotals::default();
        for entry in range.take(limit) {
            let (key, value) = entry?;
            totals.entries += 1;
            totals.bytes += (key.value().len() + value.value().len()) as u64;
        }
        Ok(totals)
    }
}
