//! The handle a commit's body runs against: a write transaction on the copy-on-write trees that
//! records every effect it applies into the commit's WAL record.

use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;

use aedb_pager::{Range, ReadTrees, TreeView, WriteTxn};
use aedb_wal::RecordBuilder;

use super::structural::StructuralVersions;
use crate::error::{AedbError, Result};

pub struct LoggedTxn {
    txn: WriteTxn,
    /// This commit's sequence: the write transaction may carry earlier commits of its group
    /// (`group.rs`), so it is not the transaction's own.
    seq: u64,
    /// A write (or a poison) reached the transaction: a failed or discarded commit must then
    /// be taken out of it (`group.rs`), not just forgotten.
    touched: bool,
    record: RecordBuilder,
    max_bytes: usize,
    discarded: bool,
    /// The trees whose writes the engine watches (`Engine::watch_tree`).
    watched: Arc<[Arc<str>]>,
    wrote_watched: bool,
    /// Trees this transaction deleted keys from (or dropped), for structural versions.
    deleted_from: Vec<String>,
    structural: Arc<Mutex<StructuralVersions>>,
    /// The first write operation that failed: the commit fails with it whatever the body
    /// returns, since the trees may hold part of that operation.
    poison: Option<AedbError>,
    /// Run by the pipeline once this commit is acknowledged, in commit order; dropped unrun
    /// when the commit is not published (a failed or dry-run body, a discard) or its outcome
    /// is unknown (a latch).
    after_publish: Vec<AfterPublish>,
    /// Raise the engine's mark signal once this commit is deliverable (`Engine::watch_marks`).
    marked: bool,
}

/// A callback for after a commit is acknowledged (`LoggedTxn::after_publish`). It runs on the
/// thread leading the commit group, so it must not block or commit.
pub(crate) type AfterPublish = Box<dyn FnOnce() + Send>;

/// Callbacks one commit may register: the upper layers register one or two.
const MAX_AFTER_PUBLISH: usize = 8;

impl LoggedTxn {
    pub(crate) fn new(
        txn: WriteTxn,
        seq: u64,
        max_bytes: usize,
        structural: Arc<Mutex<StructuralVersions>>,
        watched: Arc<[Arc<str>]>,
    ) -> Self {
        LoggedTxn {
            txn,
            seq,
            touched: false,
            record: RecordBuilder::default(),
            max_bytes,
            discarded: false,
            watched,
            wrote_watched: false,
            deleted_from: Vec::new(),
            structural,
            poison: None,
            after_publish: Vec::new(),
            marked: false,
        }
    }

    /// Run `callback` once this commit is acknowledged (durable in `Full`, written to the OS
    /// otherwise), in commit order with every other commit's callbacks; never if the commit
    /// is not published, or a latch leaves its outcome unknown.
    pub(crate) fn after_publish(&mut self, callback: AfterPublish) {
        debug_assert!(self.after_publish.len() < MAX_AFTER_PUBLISH);
        self.after_publish.push(callback);
    }

    /// Raise the engine's mark signal to this commit's sequence once it is deliverable:
    /// durable under `Full` and `Batch`, written under `OsBuffered` (`Engine::watch_marks`).
    pub(crate) fn mark(&mut self) {
        self.marked = true;
    }

    pub(crate) fn is_marked(&self) -> bool {
        self.marked
    }

    pub(crate) fn take_after_publish(&mut self) -> Vec<AfterPublish> {
        std::mem::take(&mut self.after_publish)
    }

    /// The error that poisoned this transaction, if one did: the commit must fail with it.
    pub(crate) fn take_poison(&mut self) -> Option<AedbError> {
        self.poison.take()
    }

    pub(crate) fn into_parts(self) -> (WriteTxn, RecordBuilder) {
        (self.txn, self.record)
    }

    /// Whether a write or a poison reached the write transaction.
    pub(crate) fn is_touched(&self) -> bool {
        self.touched
    }

    /// End the commit without writing anything: the body's value is returned, no sequence is
    /// consumed, nothing is logged (e.g. a replayed idempotency key).
    pub fn discard(&mut self) {
        self.discarded = true;
    }

    pub(crate) fn is_discarded(&self) -> bool {
        self.discarded
    }

    pub(crate) fn wrote_watched(&self) -> bool {
        self.wrote_watched
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
        if !self.wrote_watched && self.watched.iter().any(|t| &**t == tree) {
            self.wrote_watched = true;
        }
    }

    /// Every (tree, key) this transaction has written or deleted so far, in order.
    pub fn touched(&self) -> Result<Vec<(String, Vec<u8>)>> {
        // The record was built here: failing to read it back is a bug, reported, not hidden.
        let ops = aedb_wal::decode_record(&self.record.clone().finish())?;
        Ok(ops
            .into_iter()
            .filter_map(|op| match op {
                aedb_wal::WalOp::Put { tree, key, .. } | aedb_wal::WalOp::Delete { tree, key } => {
                    Some((tree, key))
                }
                aedb_wal::WalOp::CreateTree { .. } | aedb_wal::WalOp::DropTree { .. } => None,
            })
            .collect())
    }

    /// The sequence number this commit will get.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Refuse a record that would outgrow the limit, before anything is changed.
    /// Bytes this commit's record may still grow by before `TransactionTooLarge`: optional
    /// work (an accumulator's cleanup) stops well short of it.
    pub fn room(&self) -> usize {
        self.max_bytes.saturating_sub(self.record.len_bytes())
    }

    /// The most a commit's record may hold (`max_transaction_bytes`).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn check_room(&self, more: usize) -> Result<()> {
        let len = self.record.len_bytes() + more;
        if len > self.max_bytes {
            return Err(AedbError::TransactionTooLarge {
                len,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Poison the transaction when `result` failed: the trees may hold part of the operation,
    /// so this commit can only be dropped (`WriteTxn::poison`).
    fn guard<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result {
            self.poison(err.clone());
        }
        result
    }

    /// Poison the transaction: an operation failed part-way, so this commit must fail with
    /// `err` whatever its body returns. The first error is kept.
    pub fn poison(&mut self, err: AedbError) {
        self.touched = true;
        self.txn.poison(err.to_string());
        if self.poison.is_none() {
            self.poison = Some(err);
        }
    }

    /// Insert or replace; true when a value was replaced.
    pub fn insert(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<bool> {
        // Frame overhead per op is small next to the bytes; the record's own length check
        // below catches the rest.
        self.check_room(key.len() + value.len())?;
        self.note_tree(tree);
        self.touched = true;
        let replaced = self.txn.insert(tree, key, value);
        let replaced = self.guard(replaced.map_err(AedbError::from))?;
        self.record.put(tree, key, value);
        let fits = self.check_room(0);
        self.guard(fits)?;
        Ok(replaced)
    }

    /// Delete; true when the key was there (only then is anything logged).
    pub fn remove(&mut self, tree: &str, key: &[u8]) -> Result<bool> {
        self.note_tree(tree);
        self.touched = true;
        let removed = self.txn.remove(tree, key);
        let removed = self.guard(removed.map_err(AedbError::from))?;
        if removed {
            self.note_delete(tree);
            self.record.delete(tree, key);
            let fits = self.check_room(0);
            self.guard(fits)?;
        }
        Ok(removed)
    }

    pub fn create_tree(&mut self, tree: &str) -> Result<()> {
        self.touched = true;
        let created = self.txn.create_tree(tree);
        self.guard(created.map_err(AedbError::from))?;
        self.record.create_tree(tree);
        Ok(())
    }

    pub fn drop_tree(&mut self, tree: &str) -> Result<bool> {
        self.note_tree(tree);
        self.touched = true;
        let existed = self.txn.drop_tree(tree);
        let existed = self.guard(existed.map_err(AedbError::from))?;
        if existed {
            self.note_delete(tree);
            self.record.drop_tree(tree);
        }
        Ok(existed)
    }

    /// [`ReadTrees::get`], callable without the trait in scope.
    pub fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(ReadTrees::get(self, tree, key)?)
    }

    /// [`ReadTrees::len`], callable without the trait in scope.
    pub fn len(&self, tree: &str) -> Result<u64> {
        Ok(ReadTrees::len(self, tree)?)
    }

    /// [`ReadTrees::count`], callable without the trait in scope.
    pub fn count(&self, tree: &str, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        Ok(ReadTrees::count(self, tree, lower, upper)?)
    }

    /// [`ReadTrees::range`], callable without the trait in scope.
    pub fn range(
        &self,
        tree: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<Range<'_>> {
        Ok(ReadTrees::range(self, tree, lower, upper, reverse)?)
    }
}

/// Reads see this commit's own writes (the write transaction's).
impl ReadTrees for LoggedTxn {
    fn tree(&self, name: &str) -> aedb_pager::Result<Option<TreeView<'_>>> {
        self.txn.tree(name)
    }

    fn empty_range(&self) -> Range<'_> {
        self.txn.empty_range()
    }

    fn count(
        &self,
        tree: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> aedb_pager::Result<u64> {
        ReadTrees::count(&self.txn, tree, lower, upper)
    }
}
