//! Recovery's redo: the logged effects of many commits, merged into the trees in sorted batches.
//!
//! Applied one op at a time, redo cost a descent from the root, a page lookup per level and a
//! leaf edit per op (about 6 µs, ~20 MB/s of log). Instead, each frame's ops are buffered per
//! tree (its payload is copied once; an op is an index into it), and at a bound the ops of each
//! tree are sorted by key and then by log order, reduced to the last logged op of each key, and
//! merged into the tree in one pass (`WriteTxn::apply_sorted`), a chunk of consecutive keys at
//! a time. The result is the state the ops leave one by one: puts and deletes of different keys
//! commute, and those of one key come down to the last.
//!
//! Barriers: `CreateTree` and `DropTree` of a tree first merge what is buffered for that tree
//! (ops of other trees commute with them). A tree that a buffered put would have created is
//! created even when a later delete leaves it empty.
//!
//! Everything buffered is merged when the buffer reaches its bound ([`redo_buffer_bytes`]) and at
//! the end.
//! All of it goes into one write transaction, published at the end as the last redone commit's
//! version, so recovery's observable result (the recovered sequence, the trees) is what
//! frame-by-frame redo gave; a later merge rewrites the pages an earlier one wrote in place
//! (they are the transaction's own), where a publication in between would copy them again.

use std::collections::HashMap;

use aedb_pager::{PageStore, WriteTxn};
use aedb_wal::{decode_record_ref, WalOpRef};

use crate::error::{AedbError, Result};

/// Bytes of log payload, plus the index of its ops, that redo buffers at least before merging
/// them into the trees, whatever the pool lends (see [`redo_buffer_bytes`]): the fixed
/// overhead recovery's memory has beside the pool.
pub(super) const REDO_BUFFER_MIN_BYTES: usize = 64 << 20;

/// At most this much is buffered, whatever the pool: buffered offsets are `u32`.
const REDO_BUFFER_MAX_BYTES: usize = 1 << 30;

// Offsets into the buffer stay u32 with one more frame's payload past the largest bound.
const _: () =
    assert!(REDO_BUFFER_MAX_BYTES + aedb_wal::frame::MAX_PAYLOAD_BYTES < u32::MAX as usize);

/// What redo asks the buffer pool to lend for its buffer while it runs
/// (`BufferPool::lend`): half the pool, at most [`REDO_BUFFER_MAX_BYTES`]. The pool holds that
/// many frames fewer meanwhile, so recovery's memory stays within the pool setting plus
/// [`REDO_BUFFER_MIN_BYTES`] whatever the log's length (a frame's payload is at most 64 MiB
/// more).
///
/// Why a large buffer: with random keys each merge rewrites nearly every leaf of the tree, so
/// a log merged in n batches rewrites the tree about n times. Measured on W8's 289 MB log of
/// random keys, 1 GiB pool, open to first read (recovery checkpoint included), median of 3
/// interleaved runs: merging every 64 MiB 5.38 s, every 256 MiB 4.96 s, all at once (512 MiB)
/// 4.52 s.
pub(super) fn redo_loan_bytes(buffer_pool_bytes: u64) -> u64 {
    (buffer_pool_bytes / 2).min(REDO_BUFFER_MAX_BYTES as u64)
}

/// The buffer's bound given what the pool lent: within
/// [`REDO_BUFFER_MIN_BYTES`]..=[`REDO_BUFFER_MAX_BYTES`].
pub(super) fn redo_buffer_bytes(lent: u64) -> usize {
    usize::try_from(lent)
        .unwrap_or(usize::MAX)
        .clamp(REDO_BUFFER_MIN_BYTES, REDO_BUFFER_MAX_BYTES)
}

/// Sorted ops are merged a chunk of about this many key and value bytes at a time, gathered
/// into a buffer that stays in cache (see `merge_ops`).
const MERGE_CHUNK_BYTES: usize = 1 << 20;

/// `OpRef::value_len` of a delete.
const DELETE: u32 = u32::MAX;

/// A buffered op: where its key and value lie in the buffered payloads.
#[derive(Clone, Copy)]
struct OpRef {
    /// The key's first 8 bytes, zero-padded, big-endian: most comparisons of the sort end here.
    prefix: u64,
    /// Also the op's place in the log: payloads are appended in log order.
    key_at: u32,
    key_len: u32,
    value_at: u32,
    /// [`DELETE`] for a delete.
    value_len: u32,
}

impl OpRef {
    /// The bytes from the key to the end of the value (one copy gathers both; a record holds
    /// the value right after the key and its length).
    fn span(&self) -> std::ops::Range<usize> {
        let end = match self.value_len {
            DELETE => self.key_at + self.key_len,
            len => self.value_at + len,
        };
        self.key_at as usize..end as usize
    }
}

#[derive(Default)]
struct TreeOps {
    name: String,
    ops: Vec<OpRef>,
    /// A put was logged (even if a later delete undid it): the tree exists after these ops.
    put: bool,
}

/// The write transaction recovery redoes frames into, and the ops not merged yet.
pub(super) struct RedoBatch {
    txn: Option<WriteTxn>,
    /// The last commit redone (or the head when none was).
    last_seq: u64,
    /// Frames redone since the last publication.
    unpublished: bool,
    /// Copies of the payloads buffered ops point into, back to back.
    payloads: Vec<u8>,
    trees: Vec<TreeOps>,
    tree_index: HashMap<String, usize>,
    /// The tree of the last op buffered (consecutive ops are mostly for one tree).
    last_tree: usize,
    buffered_bytes: usize,
    /// Merge at this many buffered bytes ([`redo_buffer_bytes`]; less in tests).
    bound: usize,
    /// Keys and values of the chunk being merged.
    gathered: Vec<u8>,
    /// [`MERGE_CHUNK_BYTES`] (less in tests).
    chunk_bytes: usize,
}

impl RedoBatch {
    pub(super) fn new(head_seq: u64, bound: usize) -> Self {
        // Offsets are u32 (see REDO_BUFFER_MAX_BYTES), whatever a caller asks.
        let bound = bound.min(REDO_BUFFER_MAX_BYTES);
        RedoBatch {
            txn: None,
            last_seq: head_seq,
            unpublished: false,
            payloads: Vec::new(),
            trees: Vec::new(),
            tree_index: HashMap::new(),
            last_tree: 0,
            buffered_bytes: 0,
            bound,
            gathered: Vec::new(),
            chunk_bytes: MERGE_CHUNK_BYTES,
        }
    }

    #[cfg(test)]
    fn with_bounds(head_seq: u64, bound: usize, chunk_bytes: usize) -> Self {
        RedoBatch {
            chunk_bytes,
            ..RedoBatch::new(head_seq, bound)
        }
    }

    /// Redo the frame of commit `seq`, which must be the next one.
    pub(super) fn apply(&mut self, store: &PageStore, seq: u64, payload: &[u8]) -> Result<()> {
        if seq != self.last_seq + 1 {
            return Err(AedbError::Corruption(format!(
                "frame of commit {seq} where commit {} was due",
                self.last_seq + 1
            )));
        }
        // The whole record decodes before any of its ops is buffered or applied.
        let ops = decode_record_ref(payload)?;
        let buffers = ops
            .iter()
            .any(|op| matches!(op, WalOpRef::Put { .. } | WalOpRef::Delete { .. }));
        // Where the copy starts. Offsets are u32: the buffer holds less than its bound plus one
        // payload (64 MiB at most).
        let base = self.payloads.len();
        debug_assert!(base + payload.len() <= u32::MAX as usize);
        if buffers {
            if self.payloads.capacity() == 0 {
                // Grown as needed past this: a short log does not reserve the whole bound.
                self.payloads.reserve(self.bound.min(REDO_BUFFER_MIN_BYTES));
            }
            self.payloads.extend_from_slice(payload);
            self.buffered_bytes += payload.len();
        }
        for op in &ops {
            match *op {
                WalOpRef::Put { tree, key, value } => {
                    self.buffer(tree, op_ref(payload, base, key, Some(value)))
                }
                WalOpRef::Delete { tree, key } => {
                    self.buffer(tree, op_ref(payload, base, key, None))
                }
                WalOpRef::CreateTree { tree } => {
                    self.merge_tree(store, tree)?;
                    txn(&mut self.txn, store)?.create_tree(tree)?;
                }
                WalOpRef::DropTree { tree } => {
                    self.merge_tree(store, tree)?;
                    txn(&mut self.txn, store)?.drop_tree(tree)?;
                }
            }
        }
        self.last_seq = seq;
        self.unpublished = true;
        if self.buffered_bytes >= self.bound {
            self.merge_all(store)?;
        }
        Ok(())
    }

    fn buffer(&mut self, tree: &str, op: OpRef) {
        let at = match self.trees.get(self.last_tree) {
            Some(last) if last.name == tree => self.last_tree,
            _ => match self.tree_index.get(tree) {
                Some(&at) => at,
                None => {
                    self.trees.push(TreeOps {
                        name: tree.to_string(),
                        ..TreeOps::default()
                    });
                    self.tree_index
                        .insert(tree.to_string(), self.trees.len() - 1);
                    self.trees.len() - 1
                }
            },
        };
        self.last_tree = at;
        let ops = &mut self.trees[at];
        ops.put |= op.value_len != DELETE;
        ops.ops.push(op);
        self.buffered_bytes += std::mem::size_of::<OpRef>();
    }

    /// Merge what is buffered for `tree` (a barrier before creating or dropping it).
    fn merge_tree(&mut self, store: &PageStore, tree: &str) -> Result<()> {
        match self.tree_index.get(tree) {
            Some(&at) => self.merge_at(store, at),
            None => Ok(()),
        }
    }

    /// Merge the ops buffered for `self.trees[at]`; its entry stays, empty, for more.
    fn merge_at(&mut self, store: &PageStore, at: usize) -> Result<()> {
        let TreeOps { name, ops, put } = &mut self.trees[at];
        let put = std::mem::take(put);
        let merging = Merging {
            slot: &mut self.txn,
            store,
            payloads: &self.payloads,
            gathered: &mut self.gathered,
            chunk_bytes: self.chunk_bytes,
        };
        merging.merge_ops(name, ops, put)
    }

    /// Merge everything buffered and publish it as the last redone commit's version.
    pub(super) fn finish(&mut self, store: &PageStore) -> Result<()> {
        self.merge_all(store)?;
        if self.unpublished {
            txn(&mut self.txn, store)?;
        }
        if let Some(txn) = self.txn.take() {
            txn.commit_as(self.last_seq)?;
        }
        self.unpublished = false;
        Ok(())
    }

    /// Merge everything buffered into the transaction.
    fn merge_all(&mut self, store: &PageStore) -> Result<()> {
        // In name order: the same log gives the same pages.
        let mut order: Vec<usize> = (0..self.trees.len()).collect();
        order.sort_by(|&a, &b| self.trees[a].name.cmp(&self.trees[b].name));
        for at in order {
            self.merge_at(store, at)?;
        }
        self.payloads.clear();
        self.buffered_bytes = 0;
        // Every tree's ops are merged: a log that churns many tree names (temporary tables,
        // indexes) does not keep an entry per name it ever saw.
        self.trees.clear();
        self.tree_index.clear();
        self.last_tree = 0;
        Ok(())
    }
}

/// The running redo transaction, begun when first needed.
fn txn<'t>(slot: &'t mut Option<WriteTxn>, store: &PageStore) -> Result<&'t mut WriteTxn> {
    if slot.is_none() {
        *slot = Some(store.begin_write()?);
    }
    slot.as_mut().ok_or(AedbError::Closed)
}

/// Index an op of `payload`, copied to `base` in the buffer (`key` and `value` lie inside
/// `payload`).
fn op_ref(payload: &[u8], base: usize, key: &[u8], value: Option<&[u8]>) -> OpRef {
    let at = |part: &[u8]| (base + (part.as_ptr() as usize - payload.as_ptr() as usize)) as u32;
    let mut prefix = [0u8; 8];
    let n = key.len().min(8);
    prefix[..n].copy_from_slice(&key[..n]);
    debug_assert!(value.is_none_or(|v| at(v) >= at(key) + key.len() as u32));
    OpRef {
        prefix: u64::from_be_bytes(prefix),
        key_at: at(key),
        key_len: key.len() as u32,
        // A delete's "value" is empty, right after the key (see `OpRef::span`).
        value_at: value.map_or(at(key) + key.len() as u32, at),
        value_len: value.map_or(DELETE, |v| v.len() as u32),
    }
}

/// What merging a tree's ops works with.
struct Merging<'m> {
    slot: &'m mut Option<WriteTxn>,
    store: &'m PageStore,
    payloads: &'m [u8],
    gathered: &'m mut Vec<u8>,
    chunk_bytes: usize,
}

impl Merging<'_> {
    fn bytes(&self, at: u32, len: u32) -> &[u8] {
        &self.payloads[at as usize..at as usize + len as usize]
    }

    fn key(&self, op: &OpRef) -> &[u8] {
        self.bytes(op.key_at, op.key_len)
    }

    /// Sort a tree's buffered ops by key (in log order among equal keys), keep the last of each
    /// key, and merge them into the tree. `ops` is left empty.
    fn merge_ops(self, tree: &str, ops: &mut Vec<OpRef>, put: bool) -> Result<()> {
        if ops.is_empty() && !put {
            return Ok(());
        }
        // `key_at` grows in log order: it orders equal keys as they were logged.
        ops.sort_unstable_by(|a, b| {
            (a.prefix.cmp(&b.prefix))
                .then_with(|| self.key(a).cmp(self.key(b)))
                .then(a.key_at.cmp(&b.key_at))
        });
        // The last op of each key (keys with different prefixes differ: no key bytes are read).
        let mut kept: usize = 0;
        for i in 0..ops.len() {
            let op = ops[i];
            match kept.checked_sub(1).map(|last| ops[last]) {
                Some(last) if last.prefix == op.prefix && self.key(&last) == self.key(&op) => {
                    ops[kept - 1] = op;
                }
                _ => {
                    ops[kept] = op;
                    kept += 1;
                }
            }
        }
        ops.truncate(kept);
        // Long keys go in one at a time: the merge's branch layout counts a branch's first key,
        // which the branch drops, so with keys near a quarter page it can leave a branch under
        // the fill bound (review finding). Up to 1/16 of a page the slack covers it.
        let long_keys = ops
            .iter()
            .any(|op| op.key_len as usize > self.store.page_size() / 16);
        let Merging {
            slot,
            store,
            payloads,
            gathered,
            chunk_bytes,
        } = self;
        let txn = txn(slot, store)?;
        if put {
            // As the first put would have, even when a later delete of the same key undoes it.
            txn.create_tree(tree)?;
        }
        // Chunks of consecutive keys, each gathered into one buffer and merged. Read in key
        // order where they lie, keys and values would be a cache miss each, one after another
        // behind the merge's comparisons; gathered, the loads are independent and overlap, and
        // the merge reads them in sequence. The buffer is reused: it stays in cache.
        for chunk in chunks(ops, chunk_bytes) {
            gathered.clear();
            for op in chunk {
                gathered.extend_from_slice(&payloads[op.span()]);
            }
            let mut sorted: Vec<(&[u8], Option<&[u8]>)> = Vec::with_capacity(chunk.len());
            let mut rest = &gathered[..];
            for op in chunk {
                let (span, after) = rest.split_at(op.span().len());
                let key = &span[..op.key_len as usize];
                let value =
                    (op.value_len != DELETE).then(|| &span[(op.value_at - op.key_at) as usize..]);
                rest = after;
                sorted.push((key, value));
            }
            if long_keys {
                for (key, value) in sorted {
                    match value {
                        Some(value) => txn.insert(tree, key, value).map(|_| ())?,
                        None => txn.remove(tree, key).map(|_| ())?,
                    }
                }
            } else {
                txn.apply_sorted(tree, &sorted)?;
            }
        }
        // Released, not cleared: a log that writes its trees in turn would otherwise keep
        // every tree's largest index at once (review finding), past the buffer's bound.
        *ops = Vec::new();
        Ok(())
    }
}

/// `ops` in runs of about `chunk_bytes` of keys and values (at least one op each).
fn chunks(ops: &[OpRef], chunk_bytes: usize) -> impl Iterator<Item = &[OpRef]> {
    let mut rest = ops;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut end = 0;
        while end < rest.len() && (end == 0 || bytes < chunk_bytes) {
            bytes += rest[end].span().len();
            end += 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ops::Bound;
    use std::path::Path;
    use std::sync::Arc;

    use aedb_pager::io::sim::SimVfs;
    use aedb_pager::io::Vfs;
    use aedb_pager::StoreConfig;
    use aedb_wal::RecordBuilder;
    use proptest::prelude::*;

    use super::*;

    const TREES: [&str; 3] = ["a", "b", "c"];

    #[derive(Debug, Clone)]
    enum Op {
        Put(usize, u16, usize),
        Delete(usize, u16),
        Create(usize),
        Drop(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let len = prop_oneof![8 => 0usize..40, 1 => 900usize..3000];
        prop_oneof![
            12 => (0usize..3, 0u16..200, len).prop_map(|(t, k, l)| Op::Put(t, k, l)),
            6 => (0usize..3, 0u16..200).prop_map(|(t, k)| Op::Delete(t, k)),
            1 => (0usize..3).prop_map(Op::Create),
            1 => (0usize..3).prop_map(Op::Drop),
        ]
    }

    fn key(k: u16) -> Vec<u8> {
        let mut key = format!("k{k:04}").into_bytes();
        key.resize(5 + (k % 5) as usize * 9, b'.');
        key
    }

    fn value(k: u16, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u16 ^ k) as u8).collect()
    }

    fn open() -> PageStore {
        let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
        let config = StoreConfig {
            page_size: 4096,
            buffer_pool_bytes: 512 * 4096,
            direct_io: false,
        };
        PageStore::open(vfs, Path::new("/db/data.aedb"), &config).expect("open")
    }

    type Trees = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

    /// The trees that exist at the head, with their entries.
    fn trees(store: &PageStore) -> Trees {
        let snapshot = store.snapshot();
        let mut out = Trees::new();
        for name in TREES {
            if let Some(tree) = snapshot.tree(name).expect("lookup") {
                let entries: BTreeMap<_, _> = tree
                    .range(Bound::Unbounded, Bound::Unbounded, false)
                    .collect::<std::result::Result<_, _>>()
                    .expect("scan");
                assert_eq!(tree.len(), entries.len() as u64);
                out.insert(name.to_string(), entries);
            }
        }
        out
    }

    fn record(ops: &[Op]) -> Vec<u8> {
        let mut b = RecordBuilder::default();
        for op in ops {
            match *op {
                Op::Put(t, k, len) => b.put(TREES[t], &key(k), &value(k, len)),
                Op::Delete(t, k) => b.delete(TREES[t], &key(k)),
                Op::Create(t) => b.create_tree(TREES[t]),
                Op::Drop(t) => b.drop_tree(TREES[t]),
            }
        }
        b.finish()
    }

    /// Every frame as a transaction of its own, op by op (what redo did before it merged).
    fn one_by_one(frames: &[Vec<Op>]) -> PageStore {
        let store = open();
        for ops in frames {
            let mut txn = store.begin_write().expect("begin");
            for op in ops {
                match *op {
                    Op::Put(t, k, len) => {
                        txn.insert(TREES[t], &key(k), &value(k, len))
                            .expect("insert");
                    }
                    Op::Delete(t, k) => {
                        txn.remove(TREES[t], &key(k)).expect("remove");
                    }
                    Op::Create(t) => txn.create_tree(TREES[t]).expect("create"),
                    Op::Drop(t) => {
                        txn.drop_tree(TREES[t]).expect("drop");
                    }
                }
            }
            txn.commit().expect("commit");
        }
        store
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn merged_redo_leaves_what_op_by_op_redo_left(
            frames in proptest::collection::vec(proptest::collection::vec(op(), 0..30), 1..40),
            bound in prop_oneof![Just(1usize), Just(300), Just(5_000), Just(REDO_BUFFER_MIN_BYTES)],
            chunk_bytes in prop_oneof![Just(1usize), Just(200), Just(MERGE_CHUNK_BYTES)],
        ) {
            let store = open();
            let head = store.head().seq;
            let mut batch = RedoBatch::with_bounds(head, bound, chunk_bytes);
            for (i, ops) in frames.iter().enumerate() {
                batch.apply(&store, head + 1 + i as u64, &record(ops)).expect("redo");
            }
            batch.finish(&store).expect("finish");
            prop_assert_eq!(store.head().seq, head + frames.len() as u64);
            let report = store.check();
            prop_assert!(report.is_ok(), "{:?}", report.violations);
            prop_assert_eq!(trees(&store), trees(&one_by_one(&frames)));
        }
    }

    #[test]
    fn a_put_undone_by_a_delete_still_creates_its_tree() {
        let frames = vec![
            vec![Op::Put(0, 1, 3), Op::Delete(1, 5)],
            vec![Op::Delete(0, 1)],
        ];
        let store = open();
        let mut batch = RedoBatch::new(store.head().seq, REDO_BUFFER_MIN_BYTES);
        for (i, ops) in frames.iter().enumerate() {
            batch
                .apply(&store, 1 + i as u64, &record(ops))
                .expect("redo");
        }
        batch.finish(&store).expect("finish");
        let expected = trees(&one_by_one(&frames));
        assert_eq!(
            expected.keys().collect::<Vec<_>>(),
            ["a"],
            "a exists, b does not"
        );
        assert_eq!(trees(&store), expected);
    }

    /// Keys near a quarter page (review finding: merged, they left branches under the fill
    /// bound); and buffers of trees written in turn are released after each merge.
    #[test]
    fn long_keys_keep_the_fill_bound_and_merged_trees_release_their_buffers() {
        let store = open();
        let mut builder = RecordBuilder::default();
        for k in 0..20u16 {
            let mut long = key(k);
            long.resize(900, b'~');
            builder.put(TREES[0], &long, &value(k, 10));
        }
        let mut batch = RedoBatch::with_bounds(store.head().seq, 64 << 10, MERGE_CHUNK_BYTES);
        batch
            .apply(&store, store.head().seq + 1, &builder.finish())
            .expect("redo");
        for i in 0..40u16 {
            let mut b = RecordBuilder::default();
            for k in 0..200u16 {
                b.put(TREES[1 + usize::from(i % 2)], &key(k), &value(k, 4));
            }
            batch
                .apply(&store, store.head().seq + 2 + u64::from(i), &b.finish())
                .expect("redo");
        }
        batch.finish(&store).expect("finish");
        let report = store.check();
        assert!(report.is_ok(), "{:?}", report.violations);
        assert_eq!(trees(&store)["a"].len(), 20);
        assert!(batch.trees.is_empty(), "merged trees kept their op buffers");
    }

    /// Review of `750ca3b`: the per-tree index grew with every tree name the log ever named.
    #[test]
    fn a_merge_forgets_the_trees_it_merged() {
        let store = open();
        let mut batch = RedoBatch::with_bounds(store.head().seq, 1, MERGE_CHUNK_BYTES);
        for i in 0..50u16 {
            let mut b = RecordBuilder::default();
            let name = format!("tmp{i}");
            b.put(&name, &key(i), &value(i, 8));
            batch
                .apply(&store, store.head().seq + 1 + u64::from(i), &b.finish())
                .expect("redo");
            // A bound of one byte merges after every frame.
            assert!(batch.trees.is_empty() && batch.tree_index.is_empty());
        }
        batch.finish(&store).expect("finish");
        let snapshot = store.snapshot();
        for i in 0..50u16 {
            let tree = snapshot.tree(&format!("tmp{i}")).expect("lookup");
            let tree = tree.unwrap_or_else(|| panic!("tree tmp{i} was not created"));
            assert_eq!(tree.get(&key(i)).expect("get"), Some(value(i, 8)));
            assert_eq!(tree.len(), 1);
        }
    }

    #[test]
    fn redo_borrows_half_the_pool_and_buffers_within_its_bounds() {
        assert_eq!(redo_loan_bytes(0), 0);
        assert_eq!(redo_loan_bytes(1 << 30), 512 << 20);
        assert_eq!(redo_loan_bytes(u64::MAX), REDO_BUFFER_MAX_BYTES as u64);
        assert_eq!(redo_buffer_bytes(0), REDO_BUFFER_MIN_BYTES);
        assert_eq!(redo_buffer_bytes(512 << 20), 512 << 20);
        assert_eq!(redo_buffer_bytes(u64::MAX), REDO_BUFFER_MAX_BYTES);
        let batch = RedoBatch::new(0, usize::MAX);
        assert_eq!(
            batch.bound, REDO_BUFFER_MAX_BYTES,
            "a bound past the u32 offsets"
        );
    }

    #[test]
    fn a_frame_out_of_sequence_is_refused() {
        let store = open();
        let mut batch = RedoBatch::new(store.head().seq, REDO_BUFFER_MIN_BYTES);
        let frame = record(&[Op::Put(0, 1, 3)]);
        batch.apply(&store, 1, &frame).expect("first");
        assert!(matches!(
            batch.apply(&store, 3, &frame),
            Err(AedbError::Corruption(_))
        ));
    }

    #[test]
    fn a_damaged_record_buffers_none_of_its_ops() {
        let store = open();
        let mut batch = RedoBatch::new(store.head().seq, REDO_BUFFER_MIN_BYTES);
        let mut frame = record(&[Op::Put(0, 1, 3), Op::Put(0, 2, 3)]);
        frame.push(0);
        assert!(batch.apply(&store, 1, &frame).is_err());
        assert!(batch.trees.is_empty() && batch.payloads.is_empty());
    }
}
