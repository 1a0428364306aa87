//! The handle a commit's body runs against: a write transaction on the copy-on-write trees that
//! records every effect it applies into the commit's WAL record.

use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;

use aedb_pager::{store::TxnRange, WriteTxn};
use aedb_wal::RecordBuilder;

use super::structural::StructuralVersions;
use crate::error::{AedbError, Result};

pub struct LoggedTxn {
    txn: WriteTxn,
    record: RecordBuilder,
    max_bytes: usize,
    discarded: bool,
    wrote_catalog: bool,
    /// Trees this transaction deleted keys from (or dropped), for structural versions.
    deleted_from: Vec<String>,
    structural: Arc<Mutex<StructuralVersions>>,
}

impl LoggedTxn {
    pub(crate) fn new(
        txn: WriteTxn,
        max_bytes: usize,
        structural: Arc<Mutex<StructuralVersions>>,
    ) -> Self {
        LoggedTxn {
            txn,
            record: RecordBuilder::default(),
            max_bytes,
            discarded: false,
            wrote_catalog: false,
            deleted_from: Vec::new(),
            structural,
        }
    }

    pub(crate) fn into_parts(self) -> (WriteTxn, RecordBuilder) {
        (self.txn, self.record)
    }

    /// End the commit without writing anything: the body's value is returned, no sequence is
    /// consumed, nothing is logged (e.g. a replayed idempotency key).
    pub fn discard(&mut self) {
        self.discarded = true;
    }

    pub(crate) fn is_discarded(&self) -> bool {
        self.discarded
    }

    pub(crate) fn wrote_catalog(&self) -> bool {
        self.wrote_catalog
    }

    /// Sequence of the newest commit before this one that deleted from `tree` (at least the
    /// head at open; see `structural.rs`).
    pub fn structural_version(&self, tree: &str) -> u64 {
        self.structural.lock().of(tree)
    }

    pub(crate) fn take_deleted_from(&mut self) -> Vec<String> {
        std::mem::take(&mut self.deleted_from)
    }

    fn note_delete(&mut self, tree: &str) {
        if !self.deleted_from.iter().any(|t| t == tree) {
            self.deleted_from.push(tree.to_string());
        }
    }

    fn note_tree(&mut self, tree: &str) {
        if tree == aedb_catalog::namespace::CATALOG_TREE {
            self.wrote_catalog = true;
        }
    }

    /// Every (tree, key) this transaction has written or deleted so far, in order.
    pub fn touched(&self) -> Vec<(String, Vec<u8>)> {
        let ops = aedb_wal::decode_record(&self.record.clone().finish()).unwrap_or_default();
        ops.into_iter()
            .filter_map(|op| match op {
                aedb_wal::WalOp::Put { tree, key, .. } | aedb_wal::WalOp::Delete { tree, key } => {
                    Some((tree, key))
                }
                aedb_wal::WalOp::CreateTree { .. } | aedb_wal::WalOp::DropTree { .. } => None,
            })
            .collect()
    }

    /// The sequence number this commit will get.
    pub fn seq(&self) -> u64 {
        self.txn.seq()
    }

    fn check_size(&self) -> Result<()> {
        let len = self.record.len_bytes();
        if len > self.max_bytes {
            return Err(AedbError::TransactionTooLarge {
                len,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Insert or replace; true when a value was replaced.
    pub fn insert(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<bool> {
        if self.record.len_bytes() + key.len() + value.len() > self.max_bytes {
            return Err(AedbError::TransactionTooLarge {
                len: self.record.len_bytes() + key.len() + value.len(),
                max: self.max_bytes,
            });
        }
        self.note_tree(tree);
        let replaced = self.txn.insert(tree, key, value)?;
        self.record.put(tree, key, value);
        self.check_size()?;
        Ok(replaced)
    }

    /// Delete; true when the key was there (only then is anything logged).
    pub fn remove(&mut self, tree: &str, key: &[u8]) -> Result<bool> {
        self.note_tree(tree);
        let removed = self.txn.remove(tree, key)?;
        if removed {
            self.note_delete(tree);
            self.record.delete(tree, key);
            self.check_size()?;
        }
        Ok(removed)
    }

    pub fn create_tree(&mut self, tree: &str) -> Result<()> {
        self.txn.create_tree(tree)?;
        self.record.create_tree(tree);
        Ok(())
    }

    pub fn drop_tree(&mut self, tree: &str) -> Result<bool> {
        self.note_tree(tree);
        let existed = self.txn.drop_tree(tree)?;
        if existed {
            self.note_delete(tree);
            self.record.drop_tree(tree);
        }
        Ok(existed)
    }

    pub fn get(&mut self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.txn.get(tree, key)?)
    }

    pub fn len(&mut self, tree: &str) -> Result<u64> {
        Ok(self.txn.len(tree)?)
    }

    pub fn count(&mut self, tree: &str, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        Ok(self.txn.count(tree, lower, upper)?)
    }

    pub fn range<'t>(
        &'t mut self,
        tree: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<TxnRange<'t>> {
        Ok(self.txn.range(tree, lower, upper, reverse)?)
    }
}
