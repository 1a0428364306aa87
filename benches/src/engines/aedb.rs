//! aedb's storage core (`aedb-pager`): one data file, one tree named `kv`.

use std::ops::Bound;
use std::path::Path;

use aedb_pager::{IoBackendChoice, PageStore, StoreConfig, TreeView};
use anyhow::{Context, Result};

use super::{Engine, EngineSpec, OpenConfig, Reader, ScanTotals};
use crate::data::Batch;

const TREE: &str = "kv";
const DATA_FILE: &str = "data.aedb";

pub struct AedbEngine {
    label: String,
    store: PageStore,
}

impl AedbEngine {
    pub fn open(label: String, dir: &Path, spec: &EngineSpec, config: OpenConfig) -> Result<Self> {
        let vfs = aedb_pager::io::os_vfs(IoBackendChoice::Auto).context("aedb: no I/O backend")?;
        let store_config = StoreConfig {
            page_size: spec.page_size,
            buffer_pool_bytes: config.cache_bytes,
            direct_io: spec.direct_io,
        };
        let store =
            PageStore::open(vfs, &dir.join(DATA_FILE), &store_config).context("aedb: open")?;
        Ok(AedbEngine { label, store })
    }
}

impl AedbEngine {
    /// What the durable engine does after a commit with its default settings
    /// (`AedbConfig::checkpoint_space_percent` and `checkpoint_space_min_bytes`): checkpoint
    /// once the pages waiting for one pass that share of the file, so replaced pages are
    /// reused. LMDB and redb write their trees at every commit and need no such step.
    fn checkpoint_for_space(&self) -> Result<()> {
        let min_pages =
            aedb_pager::CHECKPOINT_SPACE_MIN_BYTES_DEFAULT / self.store.page_size() as u64;
        if self
            .store
            .space_held()
            .checkpoint_due(aedb_pager::CHECKPOINT_SPACE_PERCENT_DEFAULT, min_pages)
        {
            self.store.checkpoint()?;
        }
        Ok(())
    }
}

impl Engine for AedbEngine {
    fn label(&self) -> &str {
        &self.label
    }

    fn insert_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut txn = self.store.begin_write()?;
        for (key, value) in batch.pairs() {
            txn.insert(TREE, key, value)?;
        }
        txn.commit()?;
        self.checkpoint_for_space()
    }

    fn load_sorted(&self, batch: Batch<'_>) -> Result<()> {
        let mut txn = self.store.begin_write()?;
        let loaded = txn.bulk_load(TREE, batch.pairs())?;
        anyhow::ensure!(
            loaded == batch.len() as u64,
            "aedb: bulk load took {loaded} of {} pairs",
            batch.len()
        );
        txn.commit()?;
        Ok(())
    }

    fn remove_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut txn = self.store.begin_write()?;
        for key in batch.keys() {
            txn.remove(TREE, key)?;
        }
        txn.commit()?;
        self.checkpoint_for_space()
    }

    fn sync(&self) -> Result<()> {
        self.store.checkpoint()?;
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        let tree = self
            .store
            .snapshot()
            .tree(TREE)?
            .context("aedb: the kv tree is missing")?;
        Ok(Box::new(AedbReader { tree }))
    }
}

struct AedbReader {
    tree: TreeView<'static>,
}

impl Reader for AedbReader {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        // Read in place, as LMDB's and redb's gets are (no copy of the value).
        Ok(self
            .tree
            .get_with(key, |value| std::hint::black_box(value).len())?)
    }

    fn get_read(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self.tree.get_with(key, super::read_value)?)
    }

    fn scan(&mut self, start: Option<&[u8]>, limit: usize) -> Result<ScanTotals> {
        let lower = start.map_or(Bound::Unbounded, Bound::Included);
        let mut totals = ScanTotals::default();
        for entry in self.tree.range(lower, Bound::Unbounded, false).take(limit) {
            let (key, value) = entry?;
            totals.entries += 1;
            totals.bytes += (key.len() + value.len()) as u64;
        }
        Ok(totals)
    }
}
