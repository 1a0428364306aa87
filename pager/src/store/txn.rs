//! The write transaction: copy-on-write changes to named trees, prepared, then published.

use super::snapshot::count_range;
use super::*;

/// Tree records a write transaction remembers from reads at most (see `read_records`).
const READ_RECORDS_MAX: usize = 64;

/// The write transaction. Dropping it without `commit` discards every change.
pub struct WriteTxn {
    pub(super) store: PageStore,
    pub(super) writer: parking_lot::ArcMutexGuard<RawMutex, WriterState>,
    pub(super) base: Version,
    pub(super) seq: u64,
    pub(super) catalog: TreeRecord,
    /// Trees this transaction has opened: their current record and whether it changed.
    pub(super) trees: BTreeMap<String, (TreeRecord, bool)>,
    pub(super) committed: bool,
    /// Why this transaction may no longer publish: an operation failed after it may have
    /// rewritten pages, so the trees are not what any sequence of successful operations leaves.
    pub(super) poisoned: Option<String>,
    /// Records of trees this transaction has read but not written (reads take `&self`, so the
    /// cache sits behind a `RefCell`): a commit reading the catalog for each mutation looks
    /// its record up once. Records of written trees live in `trees`, which takes precedence.
    pub(super) read_records: std::cell::RefCell<BTreeMap<String, Option<TreeRecord>>>,
}

impl WriteTxn {
    /// The sequence number this transaction will publish.
    /// Published pages this transaction replaced or dropped: once it is published, only older
    /// versions reach them.
    pub fn freed_page_count(&self) -> u64 {
        self.writer.alloc.freed_in_txn_count()
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn base(&self) -> Version {
        self.base
    }

    fn ctx(
        &mut self,
    ) -> (
        WriteCtx<'_>,
        &mut BTreeMap<String, (TreeRecord, bool)>,
        &mut TreeRecord,
    ) {
        let inner = &self.store.inner;
        (
            WriteCtx {
                pool: &inner.pool,
                alloc: &mut self.writer.alloc,
                file: &*inner.file,
                seq: self.seq,
            },
            &mut self.trees,
            &mut self.catalog,
        )
    }

    /// The record of tree `name` as this transaction sees it (None: the tree does not exist).
    fn lookup(&self, name: &str) -> Result<Option<TreeRecord>> {
        if let Some((record, _)) = self.trees.get(name) {
            return Ok(Some(*record));
        }
        if let Some(record) = self.read_records.borrow().get(name) {
            return Ok(*record);
        }
        let root = self.catalog.root;
        let record = btree::get_with(&self.store.inner.pool, root, name.as_bytes(), |bytes| {
            TreeRecord::decode(bytes, root)
        })?
        .transpose()?;
        let mut cache = self.read_records.borrow_mut();
        if cache.len() >= READ_RECORDS_MAX {
            cache.clear();
        }
        cache.insert(name.to_string(), record);
        Ok(record)
    }

    /// The record of tree `name`, remembered for the writes that follow.
    fn record(&mut self, name: &str) -> Result<TreeRecord> {
        if let Some((record, _)) = self.trees.get(name) {
            return Ok(*record);
        }
        let record = self.lookup(name)?.unwrap_or_default();
        self.trees.insert(name.to_string(), (record, false));
        Ok(record)
    }

    /// Forbid publishing: an operation above the pager failed part-way (e.g. after writing an
    /// index entry but before the row). The first reason is kept.
    pub fn poison(&mut self, reason: impl Into<String>) {
        if self.poisoned.is_none() {
            self.poisoned = Some(reason.into());
        }
    }

    /// Why this transaction cannot publish, if it cannot.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn check_tree_name(&self, name: &str) -> Result<()> {
        let max = crate::btree::node::max_key_bytes(self.store.page_size());
        if name.len() > max {
            return Err(PagerError::KeyTooLarge {
                len: name.len(),
                max,
            });
        }
        Ok(())
    }

    /// Run `op` on the named tree's record, marking it changed.
    fn modify<T>(
        &mut self,
        name: &str,
        op: impl FnOnce(&mut WriteCtx<'_>, &mut TreeRecord) -> Result<T>,
    ) -> Result<T> {
        self.check_tree_name(name)?;
        let mut record = self.record(name)?;
        let (mut ctx, trees, _) = self.ctx();
        let result = op(&mut ctx, &mut record);
        // Even on error the record reflects pages already rewritten, so the transaction is
        // poisoned: it can be read and dropped, never published.
        trees.insert(name.to_string(), (record, true));
        if let Err(err) = &result {
            self.poison(format!("an operation on tree {name:?} failed: {err}"));
        }
        result
    }

    /// Create an empty tree if it does not exist (trees are also created by the first insert).
    pub fn create_tree(&mut self, name: &str) -> Result<()> {
        self.modify(name, |_, _| Ok(()))
    }

    /// Insert or replace; true when a value was replaced.
    pub fn insert(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<bool> {
        self.modify(tree, |ctx, record| btree::insert(ctx, record, key, value))
    }

    /// Delete; true when the key was there.
    pub fn remove(&mut self, tree: &str, key: &[u8]) -> Result<bool> {
        if self.record(tree)?.root == 0 {
            return Ok(false);
        }
        self.modify(tree, |ctx, record| btree::remove(ctx, record, key))
    }

    /// Apply puts (`Some`) and deletes (`None`) of strictly increasing keys in one pass over the
    /// tree (`btree::merge_sorted`): the state one `insert` or `remove` per op would leave.
    /// Deletes alone do not create the tree (as `remove` does not).
    pub fn apply_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        tree: &str,
        ops: &[(K, Option<V>)],
    ) -> Result<btree::MergeStats> {
        let puts = ops.iter().any(|(_, value)| value.is_some());
        if !puts && self.record(tree)?.root == 0 {
            return Ok(btree::MergeStats::default());
        }
        self.modify(tree, |ctx, record| btree::merge_sorted(ctx, record, ops))
    }

    /// Load strictly increasing keys into an empty tree in one pass.
    pub fn bulk_load<I, K, V>(&mut self, tree: &str, items: I) -> Result<u64>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.modify(tree, |ctx, record| btree::bulk_load(ctx, record, items))
    }

    /// [`ReadTrees::get`], callable without the trait in scope.
    pub fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        ReadTrees::get(self, tree, key)
    }

    /// [`ReadTrees::len`], callable without the trait in scope.
    pub fn len(&self, tree: &str) -> Result<u64> {
        ReadTrees::len(self, tree)
    }

    /// [`ReadTrees::count`], callable without the trait in scope.
    pub fn count(&self, tree: &str, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        ReadTrees::count(self, tree, lower, upper)
    }

    /// [`ReadTrees::range`], callable without the trait in scope.
    pub fn range(
        &self,
        tree: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<Range<'_>> {
        ReadTrees::range(self, tree, lower, upper, reverse)
    }

    /// Delete a tree and free all its pages. True when it existed.
    pub fn drop_tree(&mut self, name: &str) -> Result<bool> {
        let record = self.record(name)?;
        let existed = btree::get(&self.store.inner.pool, self.catalog.root, name.as_bytes())?
            .is_some()
            || self.trees.get(name).is_some_and(|(_, changed)| *changed);
        let mut pages = Vec::new();
        crate::check::collect_tree_pages(&self.store.inner.pool, record.root, &mut pages)?;
        let (mut ctx, trees, catalog) = self.ctx();
        for page in pages {
            ctx.free(page);
        }
        let removed = btree::remove(&mut ctx, catalog, name.as_bytes());
        trees.remove(name);
        self.read_records.borrow_mut().remove(name);
        if let Err(err) = &removed {
            // The pages are freed but the tree of trees may still name them.
            self.poison(format!("dropping tree {name:?} failed: {err}"));
        }
        removed?;
        Ok(existed)
    }

    /// Publish every change as version `seq()`: new snapshots see it at once.
    pub fn commit(mut self) -> Result<u64> {
        self.prepare()?;
        Ok(self.publish())
    }

    /// Write the records of the changed trees into the tree of trees: the last step of a
    /// commit that can fail (it allocates and may read). After it succeeds, [`publish`] cannot
    /// fail, so a caller can log the commit in between and never has to take the log back.
    ///
    /// [`publish`]: WriteTxn::publish
    pub fn prepare(&mut self) -> Result<()> {
        if let Some(reason) = &self.poisoned {
            return Err(PagerError::Poisoned(reason.clone()));
        }
        let changed: Vec<(String, TreeRecord)> = self
            .trees
            .iter()
            .filter(|(_, (_, changed))| *changed)
            .map(|(name, (record, _))| (name.clone(), *record))
            .collect();
        for (name, record) in changed {
            let (mut ctx, trees, catalog) = self.ctx();
            let written = btree::insert(&mut ctx, catalog, name.as_bytes(), &record.encode());
            if written.is_ok() {
                if let Some(entry) = trees.get_mut(&name) {
                    entry.1 = false;
                }
            }
            if let Err(err) = written {
                // Earlier records were already written into the tree of trees in place.
                self.poison(format!("recording tree {name:?} failed: {err}"));
                return Err(err);
            }
        }
        Ok(())
    }

    /// Make the prepared transaction the head. Infallible by design (see [`prepare`]).
    ///
    /// [`prepare`]: WriteTxn::prepare
    pub fn publish(mut self) -> u64 {
        debug_assert!(
            self.trees.values().all(|(_, changed)| !changed),
            "publish before prepare: tree records would be lost"
        );
        debug_assert!(self.poisoned.is_none(), "publish of a poisoned transaction");
        let version = Version {
            seq: self.seq,
            root: self.catalog.root,
            tree_count: self.catalog.len,
        };
        self.writer.alloc.commit(self.seq);
        {
            let _pins = self.store.inner.pins.lock();
            *self.store.inner.head.write() = version;
        }
        // The old head's pin is no longer the head's; readers holding it keep it alive.
        let stale = self.store.inner.head_pin.write().take();
        drop(stale);
        self.committed = true;
        self.seq
    }

    /// Publish as version `seq` (at least `seq()`). Recovery redoes many logged commits in one
    /// transaction and publishes the last one's sequence.
    pub fn commit_as(mut self, seq: u64) -> Result<u64> {
        self.publish_as(seq)?;
        self.commit()
    }

    /// Make this transaction publish as version `seq` (at least `seq()`): one transaction that
    /// carries several commits (recovery's redo, a commit group) publishes as its last one.
    pub fn publish_as(&mut self, seq: u64) -> Result<()> {
        if seq < self.seq {
            return Err(PagerError::Misuse(format!(
                "cannot publish version {seq} before {}",
                self.seq
            )));
        }
        self.seq = seq;
        Ok(())
    }

    /// Discard every change (the same as dropping the transaction).
    pub fn abort(self) {}
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if !self.committed {
            for id in self.writer.alloc.abort() {
                self.store.inner.pool.discard(id);
            }
        }
    }
}

/// Reads see this transaction's own writes. A view or range borrows the transaction, so no
/// write can change the tree under it.
impl ReadTrees for WriteTxn {
    fn tree(&self, name: &str) -> Result<Option<TreeView<'_>>> {
        match self.lookup(name)? {
            Some(record) => Ok(Some(TreeView::new(
                ViewSource::Txn(Arc::clone(&self.store.inner.pool)),
                record,
            )?)),
            None => Ok(None),
        }
    }

    fn empty_range(&self) -> Range<'_> {
        Range::empty(&self.store.inner.pool)
    }

    fn count(&self, tree: &str, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        match self.lookup(tree)? {
            Some(record) => count_range(&self.store.inner.pool, record.root, lower, upper),
            None => Ok(0),
        }
    }
}
