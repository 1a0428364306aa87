//! Pinned versions and what reads them: snapshots, tree views, ranges.

use std::marker::PhantomData;

use super::*;

/// Keeps a version's pages from being reused while any clone of its snapshot lives.
/// One count on a version in the pin table. It holds the table and the pool rather than the
/// store: the store caches the head's pin, and a pin holding the store would keep it alive.
pub(super) struct Pin {
    pub(super) pins: Arc<Mutex<BTreeMap<u64, usize>>>,
    pub(super) pool: Arc<BufferPool>,
    pub(super) version: Version,
    /// Trees of this version already looked up by name (a version never changes, and the
    /// head's pin is shared by every reader until the next commit). Bounded.
    pub(super) trees: RwLock<std::collections::HashMap<String, Option<TreeRecord>>>,
}

/// Names a pin remembers at most.
const PIN_TREE_CACHE: usize = 64;

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock();
        if let Some(count) = pins.get_mut(&self.version.seq) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&self.version.seq);
            }
        }
    }
}

/// A pinned, immutable version of every tree.
#[derive(Clone)]
pub struct Snapshot {
    pub(super) pin: Arc<Pin>,
}

impl Snapshot {
    pub fn seq(&self) -> u64 {
        self.pin.version.seq
    }

    /// The root of the tree of trees.
    pub fn root(&self) -> PageId {
        self.pin.version.root
    }

    pub fn version(&self) -> Version {
        self.pin.version
    }

    fn pool(&self) -> &Arc<BufferPool> {
        &self.pin.pool
    }

    /// The tree named `name`, or None.
    pub fn tree(&self, name: &str) -> Result<Option<TreeView<'static>>> {
        let cached = self.pin.trees.read().get(name).copied();
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self.lookup_tree(name)?;
                let mut trees = self.pin.trees.write();
                if trees.len() >= PIN_TREE_CACHE {
                    trees.clear();
                }
                trees.insert(name.to_string(), record);
                record
            }
        };
        match record {
            Some(record) => Ok(Some(TreeView::new(
                ViewSource::Snapshot(self.clone()),
                record,
            )?)),
            None => Ok(None),
        }
    }

    /// The record of tree `name` in the tree of trees.
    fn lookup_tree(&self, name: &str) -> Result<Option<TreeRecord>> {
        let root = self.root();
        btree::get_with(self.pool(), root, name.as_bytes(), |bytes| {
            TreeRecord::decode(bytes, root)
        })?
        .transpose()
    }

    /// Every tree, by name.
    pub fn trees(&self) -> Result<Vec<(String, TreeRecord)>> {
        let cursor = Cursor::new(
            Arc::clone(self.pool()),
            self.root(),
            Bound::Unbounded,
            Bound::Unbounded,
            false,
        );
        let mut out = Vec::new();
        for item in cursor {
            let (name, record) = item?;
            let record = TreeRecord::decode(&record, self.root())?;
            out.push((String::from_utf8_lossy(&name).into_owned(), record));
        }
        Ok(out)
    }
}

impl Snapshot {
    /// [`ReadTrees::get`], callable without the trait in scope.
    pub fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        ReadTrees::get(self, tree, key)
    }
}

impl ReadTrees for Snapshot {
    fn tree(&self, name: &str) -> Result<Option<TreeView<'_>>> {
        Snapshot::tree(self, name)
    }

    fn empty_range(&self) -> Range<'_> {
        Range::empty(self.pool())
    }
}

/// One tree as a reader sees it: point reads, cursors and counts without a tree-of-trees
/// lookup. A snapshot's view (`TreeView<'static>`) keeps its version pinned; a write
/// transaction's view borrows the transaction, so the tree cannot change under it.
#[derive(Clone)]
pub struct TreeView<'a> {
    source: ViewSource,
    record: TreeRecord,
    /// The root page, pinned for the view's life (None for an empty tree).
    root_page: Option<crate::pool::PageRef>,
    _reader: PhantomData<&'a ()>,
}

/// What keeps a view's version readable and gives its pool.
#[derive(Clone)]
pub(super) enum ViewSource {
    /// A snapshot's view: the snapshot pins the version (and holds the pool, so a view costs
    /// one reference count, not two: hot reads on many threads share these counters).
    Snapshot(Snapshot),
    /// A write transaction's view, kept valid by the borrow.
    Txn(Arc<BufferPool>),
}

impl<'a> TreeView<'a> {
    /// The view of a tree whose record the caller read from the version `source` keeps.
    pub(super) fn new(source: ViewSource, record: TreeRecord) -> Result<Self> {
        let root_page = match record.root {
            0 => None,
            root => Some(match source {
                ViewSource::Snapshot(_) => source.pool().get_committed(root)?,
                ViewSource::Txn(_) => source.pool().get(root)?,
            }),
        };
        Ok(TreeView {
            source,
            record,
            root_page,
            _reader: PhantomData,
        })
    }

    fn pool(&self) -> &Arc<BufferPool> {
        self.source.pool()
    }

    pub fn record(&self) -> TreeRecord {
        self.record
    }

    pub fn len(&self) -> u64 {
        self.record.len
    }

    pub fn is_empty(&self) -> bool {
        self.record.len == 0
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// [`TreeView::get`], handing the value to `read` where it lies (decode without a copy).
    pub fn get_with<R>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        match &self.root_page {
            Some(root) => match self.source {
                ViewSource::Snapshot(_) => btree::get_committed_with(self.pool(), root, key, read),
                ViewSource::Txn(_) => btree::get_from_with(self.pool(), root, key, read),
            },
            None => Ok(None),
        }
    }

    /// Entries within the bounds, in key order (or reverse order).
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>, reverse: bool) -> Range<'a> {
        self.range_owned(owned_bound(lower), owned_bound(upper), reverse)
    }

    /// [`TreeView::range`] taking bounds the caller already owns (no copy).
    pub fn range_owned(
        &self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Range<'a> {
        Range {
            cursor: Cursor::new(
                Arc::clone(self.pool()),
                self.record.root,
                lower,
                upper,
                reverse,
            ),
            _snapshot: match &self.source {
                ViewSource::Snapshot(snapshot) => Some(snapshot.clone()),
                ViewSource::Txn(_) => None,
            },
            _reader: PhantomData,
        }
    }

    /// Entries whose key starts with `prefix`.
    pub fn prefix(&self, prefix: &[u8], reverse: bool) -> Range<'a> {
        let upper = prefix_end(prefix);
        let upper_bound = match &upper {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        self.range(Bound::Included(prefix), upper_bound, reverse)
    }

    /// Entries within the bounds, counted in O(height).
    pub fn count(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        count_range(self.pool(), self.record.root, lower, upper)
    }
}

pub(super) fn count_range(
    pool: &BufferPool,
    root: PageId,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Result<u64> {
    let high = btree::rank(pool, root, upper)?;
    let low = match lower {
        Bound::Unbounded => 0,
        Bound::Included(k) => btree::rank(pool, root, Bound::Excluded(k))?,
        Bound::Excluded(k) => btree::rank(pool, root, Bound::Included(k))?,
    };
    Ok(high.saturating_sub(low))
}

impl ViewSource {
    fn pool(&self) -> &Arc<BufferPool> {
        match self {
            ViewSource::Snapshot(snapshot) => snapshot.pool(),
            ViewSource::Txn(pool) => pool,
        }
    }
}

/// An iterator over a key range that keeps its version readable: a snapshot's range pins the
/// version, a write transaction's range borrows the transaction.
pub struct Range<'a> {
    cursor: Cursor,
    _snapshot: Option<Snapshot>,
    _reader: PhantomData<&'a ()>,
}

impl Range<'_> {
    /// A range with no entries (the range of a tree that does not exist).
    pub(super) fn empty(pool: &Arc<BufferPool>) -> Self {
        Range {
            cursor: Cursor::new(
                Arc::clone(pool),
                0,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
            ),
            _snapshot: None,
            _reader: PhantomData,
        }
    }

    pub fn seek(&mut self, key: &[u8]) {
        self.cursor.seek(key);
    }

    /// The next entry handed to `read` where it lies (a caller that decodes it skips copying
    /// the key and value out); None at the end of the range.
    pub fn next_with<R>(&mut self, read: impl FnOnce(&[u8], &[u8]) -> R) -> Result<Option<R>> {
        self.cursor.next_with(read)
    }
}

impl Iterator for Range<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next()
    }
}
