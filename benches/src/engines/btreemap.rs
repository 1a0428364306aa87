//! The in-memory reference: a `BTreeMap` behind a `parking_lot::RwLock`, a read lock per get.

use std::collections::BTreeMap;
use std::ops::Bound;

use anyhow::Result;
use parking_lot::RwLock;

use super::{Engine, Reader, ScanTotals};
use crate::data::Batch;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

pub struct BTreeMapEngine {
    label: String,
    map: RwLock<Map>,
}

impl BTreeMapEngine {
    pub fn new(label: String) -> Self {
        BTreeMapEngine {
            label,
            map: RwLock::new(BTreeMap::new()),
        }
    }
}

impl Engine for BTreeMapEngine {
    fn label(&self) -> &str {
        &self.label
    }

    fn insert_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut map = self.map.write();
        for (key, value) in batch.pairs() {
            map.insert(key.to_vec(), value.to_vec());
        }
        Ok(())
    }

    fn load_sorted(&self, batch: Batch<'_>) -> Result<()> {
        self.insert_batch(batch)
    }

    fn remove_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut map = self.map.write();
        for key in batch.keys() {
            map.remove(key);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(BTreeMapReader { map: &self.map }))
    }
}

struct BTreeMapReader<'m> {
    map: &'m RwLock<Map>,
}

impl Reader for BTreeMapReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self
            .map
            .read()
            .get(key)
            .map(|value| std::hint::black_box(value).len()))
    }

    fn get_read(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self
            .map
            .read()
            .get(key)
            .map(|value| super::read_value(value)))
    }

    fn scan(&mut self, start: Option<&[u8]>, limit: usize) -> Result<ScanTotals> {
        let lower = start.map_or(Bound::Unbounded, Bound::Included);
        let map = self.map.read();
        let mut totals = ScanTotals::default();
        for (key, value) in map.range::<[u8], _>((lower, Bound::Unbounded)).take(limit) {
            totals.entries += 1;
            totals.bytes += (key.len() + value.len()) as u64;
        }
        Ok(totals)
    }
}
