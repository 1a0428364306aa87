//! The copy-on-write B+tree.
//!
//! A tree is a root page id and an entry count ([`TreeRecord`]). Readers descend from a root of
//! a published version and never see a page change: the writer copies every page it modifies
//! to a page of its own ([`WriteCtx::writable`]) and frees the original, which becomes
//! reusable only when no snapshot or durable checkpoint can reach it (see `alloc.rs`).
//!
//! Invariants (checked by `check.rs`):
//! 1. Keys are strictly increasing within a node and across a level.
//! 2. Every key in the subtree of branch cell `i` is `>= key(i)` and `< key(i+1)`.
//! 3. A branch cell's count equals the number of entries in its subtree.
//! 4. All leaves are at the same depth; a branch has at least one child; only the root may be
//!    a branch with one child transiently (it is collapsed before the operation returns).
//! 5. A non-root node that an operation leaves below a quarter full is merged with or refilled
//!    from a sibling by that operation, except on the right edge, where append splits leave
//!    nodes below it and inserts never undo them.

pub mod cursor;
mod merge;
pub mod node;
mod read;
mod reshape;

use crate::alloc::Allocator;
use crate::arena::Fill;
use crate::error::{PagerError, Result};
use crate::io::IoFile;
use crate::overflow;
use crate::page::{self, read_u64, PageId, PageType};
use crate::pool::{BufferPool, PageRef};

pub use merge::{merge_sorted, MergeStats};
pub(crate) use read::with_leaf_value;
pub use read::{get, get_committed_with, get_from_with, get_with, rank};
use reshape::{
    apply_child_result, branch_entries, grow_root, node_fill, partition, partition_even,
    rebalance_pair, shrink_root, write_group, write_nodes, Packing,
};

use node::{encode_branch_cell, encode_leaf_cell_into, LeafValue, NodeMut, NodeRef, SLOT_BYTES};

/// The largest value accepted (values beyond a leaf cell's share go to overflow pages).
pub const MAX_VALUE_BYTES: usize = 64 << 20;
/// Deeper than this, a tree can only be a damaged file with a cycle.
pub const MAX_DEPTH: usize = 48;
/// Bulk load fills pages to this share of their usable bytes, leaving room for later inserts.
const BULK_FILL_PERCENT: usize = 90;

/// Where a tree lives: root page (0 for an empty tree) and number of entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeRecord {
    pub root: PageId,
    pub len: u64,
}

impl TreeRecord {
    pub const ENCODED_BYTES: usize = 16;

    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.root.to_le_bytes());
        out[8..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8], page: PageId) -> Result<Self> {
        if bytes.len() != Self::ENCODED_BYTES {
            return Err(PagerError::corrupt(
                page,
                format!("tree record of {} bytes", bytes.len()),
            ));
        }
        Ok(TreeRecord {
            root: read_u64(bytes, 0),
            len: read_u64(bytes, 8),
        })
    }
}

/// A node replacing a child in its parent: its lowest key (unused for the first entry, which
/// keeps the parent's key), its page, and its entry count.
#[derive(Debug, Clone)]
struct Entry {
    key: Vec<u8>,
    page: PageId,
    count: u64,
}

/// What a modified child tells its parent.
struct ChildResult {
    /// One entry (modified in place or copied) or several (split).
    entries: Vec<Entry>,
    /// The single entry's node fell below the minimum fill.
    underfull: bool,
}

impl ChildResult {
    /// The node `page` alone stands where the child stood, holding `count` entries (its key is
    /// the one the parent already keeps).
    fn one_node(page: PageId, count: u64, underfull: bool) -> Self {
        ChildResult {
            entries: vec![Entry {
                key: Vec::new(),
                page,
                count,
            }],
            underfull,
        }
    }
}

/// The writer's access to pages: allocation, copy-on-write, freeing.
pub struct WriteCtx<'a> {
    pub pool: &'a BufferPool,
    pub alloc: &'a mut Allocator,
    pub file: &'a dyn IoFile,
    pub seq: u64,
}

impl WriteCtx<'_> {
    fn page_size(&self) -> usize {
        self.pool.page_size()
    }

    fn min_fill(&self) -> usize {
        node::usable_bytes(self.page_size()) / 4
    }

    fn allocate_id(&mut self) -> Result<PageId> {
        let pool = self.pool;
        self.alloc.allocate(self.file).inspect_err(|err| {
            // A failed grow or its sync: the data file can no longer be trusted.
            pool.latch(format!("growing the data file failed: {err}"));
        })
    }

    pub fn new_page(&mut self) -> Result<PageRef> {
        let id = self.allocate_id()?;
        Ok(self.pool.create(id))
    }

    /// A page the transaction may modify holding the content of `id`: `id` itself when the
    /// transaction allocated it, else a fresh copy (and `id` is freed).
    pub fn writable(&mut self, id: PageId) -> Result<PageRef> {
        if self.alloc.is_private(id) {
            return self.pool.get(id);
        }
        let old = self.pool.get(id)?;
        let new_id = self.allocate_id()?;
        let new = {
            let src = old.read();
            let fill = match free_middle(&src) {
                Some(gap) => Fill::CopyAround { page: &src, gap },
                None => Fill::Copy(&src),
            };
            self.pool.create_filled(new_id, fill)
        };
        {
            let mut dst = new.write();
            page::set_page_id(&mut dst, new_id);
            page::set_page_seq(&mut dst, self.seq);
        }
        drop(old);
        self.free(id);
        Ok(new)
    }

    pub fn free(&mut self, id: PageId) {
        if self.alloc.free(id) {
            self.pool.discard(id);
        }
    }

    /// The leaf cell for `key` → `value`, writing an overflow chain when the value is large.
    fn leaf_cell(&mut self, key: &[u8], value: &[u8]) -> Result<Vec<u8>> {
        let tail = value.len().min(node::max_cell_bytes(self.page_size()));
        let mut cell = Vec::with_capacity(node::LEAF_CELL_OVERHEAD + key.len() + tail);
        self.leaf_cell_into(&mut cell, key, value)?;
        Ok(cell)
    }

    /// [`WriteCtx::leaf_cell`], appending the cell to `out`.
    fn leaf_cell_into(&mut self, out: &mut Vec<u8>, key: &[u8], value: &[u8]) -> Result<()> {
        let max_key = node::max_key_bytes(self.page_size());
        if key.len() > max_key {
            return Err(PagerError::KeyTooLarge {
                len: key.len(),
                max: max_key,
            });
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(PagerError::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_BYTES,
            });
        }
        let inline_len = node::LEAF_CELL_OVERHEAD + key.len() + value.len() + SLOT_BYTES;
        if inline_len <= node::max_cell_bytes(self.page_size()) {
            encode_leaf_cell_into(out, key, LeafValue::Inline(value));
            return Ok(());
        }
        let count = overflow::pages_for(value.len(), self.page_size());
        let mut pages = Vec::with_capacity(count);
        for _ in 0..count {
            pages.push(self.new_page()?);
        }
        overflow::write_chain(&pages, value, self.seq);
        encode_leaf_cell_into(
            out,
            key,
            LeafValue::Overflow {
                len: value.len() as u64,
                first: pages[0].id(),
            },
        );
        Ok(())
    }

    /// Free the overflow pages of a value that is being replaced or deleted.
    fn free_value(&mut self, value: &ValueRef) -> Result<()> {
        if let ValueRef::Overflow { len, first } = *value {
            let mut ids = Vec::new();
            overflow::visit_chain(self.pool, first, len, |id, _| ids.push(id))?;
            for id in ids {
                self.free(id);
            }
        }
        Ok(())
    }
}

/// An owned copy of a leaf value reference (so no page lock is held while freeing).
enum ValueRef {
    Inline,
    Overflow { len: u64, first: PageId },
}

impl From<LeafValue<'_>> for ValueRef {
    fn from(value: LeafValue<'_>) -> Self {
        match value {
            LeafValue::Inline(_) => ValueRef::Inline,
            LeafValue::Overflow { len, first } => ValueRef::Overflow { len, first },
        }
    }
}

fn depth_error(page: PageId) -> PagerError {
    PagerError::corrupt(
        page,
        format!("tree deeper than {MAX_DEPTH} levels (a cycle?)"),
    )
}

/// Insert or replace; returns true when a value was replaced.
pub fn insert(
    ctx: &mut WriteCtx<'_>,
    tree: &mut TreeRecord,
    key: &[u8],
    value: &[u8],
) -> Result<bool> {
    let cell = ctx.leaf_cell(key, value)?;
    if tree.root == 0 {
        let page = ctx.new_page()?;
        {
            let mut buf = page.write();
            let mut node = NodeMut::init(&mut buf, PageType::Leaf, page.id(), ctx.seq);
            let fits = node.insert_cell(0, &cell);
            debug_assert!(fits);
        }
        *tree = TreeRecord {
            root: page.id(),
            len: 1,
        };
        return Ok(false);
    }
    let mut replaced = false;
    let result = insert_rec(ctx, tree.root, key, &cell, &mut replaced, 0, true)?;
    if !replaced {
        tree.len += 1;
    }
    tree.root = grow_root(ctx, result.entries)?;
    // Replacing a value by a smaller one can merge the root's children.
    tree.root = shrink_root(ctx, tree.root)?;
    Ok(replaced)
}

/// `right_edge`: `id` is the last node of its level (every ancestor descended to its last
/// child), where an insert after the last key is an append.
fn insert_rec(
    ctx: &mut WriteCtx<'_>,
    id: PageId,
    key: &[u8],
    cell: &[u8],
    replaced: &mut bool,
    depth: usize,
    right_edge: bool,
) -> Result<ChildResult> {
    if depth > MAX_DEPTH {
        return Err(depth_error(id));
    }
    // One visit of the node: a leaf, or the child to descend into.
    let descend = {
        let page = ctx.pool.get(id)?;
        let buf = page.read();
        let node = NodeRef::new(&buf, id)?;
        if node.is_leaf() {
            None
        } else {
            let pos = node.child_index(key)?;
            Some((pos, node.child(pos)?, right_edge && pos + 1 == node.len()))
        }
    };
    let Some((child_pos, child, child_on_edge)) = descend else {
        return insert_into_leaf(ctx, id, key, cell, replaced, right_edge);
    };
    let result = insert_rec(ctx, child, key, cell, replaced, depth + 1, child_on_edge)?;
    let delta = if *replaced { 0 } else { 1 };
    let page = ctx.writable(id)?;
    let packing = if child_on_edge {
        Packing::Left
    } else {
        Packing::Even
    };
    apply_child_result(ctx, page, child_pos, result, delta, packing, right_edge)
}

fn insert_into_leaf(
    ctx: &mut WriteCtx<'_>,
    id: PageId,
    key: &[u8],
    cell: &[u8],
    replaced: &mut bool,
    right_edge: bool,
) -> Result<ChildResult> {
    let page = ctx.writable(id)?;
    let (pos, old) = {
        let buf = page.read();
        let node = NodeRef::new(&buf, page.id())?;
        match node.search(key)? {
            Ok(i) => (
                i,
                Some((ValueRef::from(node.leaf_value(i)?), node.cell(i)?.len())),
            ),
            Err(i) => (i, None),
        }
    };
    if let Some((value, len)) = old {
        *replaced = true;
        ctx.free_value(&value)?;
        NodeMut::wrap(&mut page.write()).remove_cell(pos, len);
    }
    let fitted = NodeMut::wrap(&mut page.write()).insert_cell(pos, cell);
    if fitted {
        // Only a smaller value replacing a larger one can make the leaf underfull; a leaf
        // that grew is no worse than before (an append-built right edge stays as it is).
        let (count, used) = node_fill(&page)?;
        return Ok(ChildResult::one_node(
            page.id(),
            count,
            *replaced && used < ctx.min_fill(),
        ));
    }
    // The leaf as it was, viewed from one copy (the split rewrites its page): no allocation
    // per cell.
    let before = page.read().to_vec();
    let node = NodeRef::new(&before, page.id())?;
    let mut cells = (0..node.len())
        .map(|i| node.cell(i))
        .collect::<Result<Vec<&[u8]>>>()?;
    // An append to the last leaf keeps that leaf full and starts a new one, as SQLite and
    // PostgreSQL do: keys inserted in order then fill their leaves instead of halving them.
    let packing = if right_edge && pos == cells.len() {
        Packing::Left
    } else {
        Packing::Even
    };
    cells.insert(pos, cell);
    let entries = write_nodes(ctx, PageType::Leaf, vec![page], &cells, packing)?;
    Ok(ChildResult {
        entries,
        underfull: false,
    })
}

/// Delete `key`; returns true when it was there.
pub fn remove(ctx: &mut WriteCtx<'_>, tree: &mut TreeRecord, key: &[u8]) -> Result<bool> {
    if tree.root == 0 {
        return Ok(false);
    }
    let Some(result) = remove_rec(ctx, tree.root, key, 0)? else {
        return Ok(false);
    };
    tree.len = tree.len.saturating_sub(1);
    tree.root = grow_root(ctx, result.entries)?;
    tree.root = shrink_root(ctx, tree.root)?;
    Ok(true)
}

fn remove_rec(
    ctx: &mut WriteCtx<'_>,
    id: PageId,
    key: &[u8],
    depth: usize,
) -> Result<Option<ChildResult>> {
    if depth > MAX_DEPTH {
        return Err(depth_error(id));
    }
    let (is_leaf, pos, child) = {
        let page = ctx.pool.get(id)?;
        let buf = page.read();
        let node = NodeRef::new(&buf, id)?;
        if node.is_leaf() {
            match node.search(key)? {
                Ok(i) => (true, i, 0),
                Err(_) => return Ok(None),
            }
        } else {
            let i = node.child_index(key)?;
            (false, i, node.child(i)?)
        }
    };
    if is_leaf {
        let page = ctx.writable(id)?;
        let (value, len) = {
            let buf = page.read();
            let node = NodeRef::new(&buf, page.id())?;
            (ValueRef::from(node.leaf_value(pos)?), node.cell(pos)?.len())
        };
        ctx.free_value(&value)?;
        NodeMut::wrap(&mut page.write()).remove_cell(pos, len);
        let (count, used) = node_fill(&page)?;
        return Ok(Some(ChildResult::one_node(
            page.id(),
            count,
            used < ctx.min_fill(),
        )));
    }
    let Some(result) = remove_rec(ctx, child, key, depth + 1)? else {
        return Ok(None);
    };
    let page = ctx.writable(id)?;
    apply_child_result(ctx, page, pos, result, -1, Packing::Even, false).map(Some)
}

/// A node's free middle (between its slot array and its cells), when it is worth not reading
/// (a copy-on-write reads a cold page: a root or a tree of trees' page is mostly empty): the
/// copy zeroes it instead. None for any other page, or a node whose header or slots do not
/// describe that layout (a slot pointing below the cell area): it is then copied whole, as it
/// is, for whoever reads it next to judge.
fn free_middle(page: &[u8]) -> Option<(usize, usize)> {
    const WORTH_SKIPPING: usize = 512;
    let kind = page.get(page::TYPE_AT).copied()?;
    if kind != PageType::Branch as u8 && kind != PageType::Leaf as u8 {
        return None;
    }
    let header = node::RawNodeHeader::parse(page)?;
    let (start, end) = (header.slots_end(), header.cell_start as usize);
    if start + WORTH_SKIPPING > end || end > page.len() {
        return None;
    }
    let cells_above = (0..header.count as usize)
        .all(|i| node::slot_offset(page, i).is_some_and(|at| at as usize >= end));
    cells_above.then_some((start, end))
}

/// Build a tree from strictly increasing keys in one pass, packing nodes to
/// `BULK_FILL_PERCENT`. The tree must be empty.
pub fn bulk_load<I, K, V>(ctx: &mut WriteCtx<'_>, tree: &mut TreeRecord, items: I) -> Result<u64>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    if tree.root != 0 {
        return Err(PagerError::InvalidConfig(
            "bulk load needs an empty tree".into(),
        ));
    }
    let mut level = LevelPacker::new(PageType::Leaf, ctx.page_size());
    let mut last_key: Option<Vec<u8>> = None;
    let mut count = 0u64;
    for (key, value) in items {
        let key = key.as_ref();
        if last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(PagerError::InvalidConfig(
                "bulk load keys must be strictly increasing".into(),
            ));
        }
        let cell = ctx.leaf_cell(key, value.as_ref())?;
        level.push(ctx, cell)?;
        last_key = Some(key.to_vec());
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    let mut entries = level.finish(ctx)?;
    while entries.len() > 1 {
        let mut branch = LevelPacker::new(PageType::Branch, ctx.page_size());
        for e in &entries {
            branch.push(ctx, encode_branch_cell(&e.key, e.page, e.count))?;
        }
        entries = branch.finish(ctx)?;
    }
    *tree = TreeRecord {
        root: entries[0].page,
        len: count,
    };
    Ok(count)
}

/// Packs a stream of cells into nodes of one level. The last node written is held back so
/// that a small tail can be evened out with it.
struct LevelPacker {
    kind: PageType,
    target: usize,
    current: Vec<Vec<u8>>,
    current_bytes: usize,
    held: Option<Vec<Vec<u8>>>,
    entries: Vec<Entry>,
}

impl LevelPacker {
    fn new(kind: PageType, page_size: usize) -> Self {
        LevelPacker {
            kind,
            target: node::usable_bytes(page_size) * BULK_FILL_PERCENT / 100,
            current: Vec::new(),
            current_bytes: 0,
            held: None,
            entries: Vec::new(),
        }
    }

    fn push(&mut self, ctx: &mut WriteCtx<'_>, cell: Vec<u8>) -> Result<()> {
        let size = cell.len() + SLOT_BYTES;
        if self.current_bytes + size > self.target && !self.current.is_empty() {
            let full = std::mem::take(&mut self.current);
            self.current_bytes = 0;
            if let Some(held) = self.held.replace(full) {
                let page = ctx.new_page()?;
                self.entries
                    .push(write_group(&page, self.kind, &held, ctx.seq)?);
            }
        }
        self.current_bytes += size;
        self.current.push(cell);
        Ok(())
    }

    fn finish(mut self, ctx: &mut WriteCtx<'_>) -> Result<Vec<Entry>> {
        let mut tail = self.held.take().unwrap_or_default();
        tail.append(&mut self.current);
        let pages = vec![ctx.new_page()?];
        self.entries
            .extend(write_nodes(ctx, self.kind, pages, &tail, Packing::Even)?);
        Ok(self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sane_node_has_a_free_middle_to_skip() {
        let mut page = vec![0u8; 4096];
        let mut node = NodeMut::init(&mut page, PageType::Leaf, 7, 1);
        assert!(node.insert_cell(0, &[0u8; 100]));
        let raw = node::RawNodeHeader::parse(&page).expect("a node header");
        assert_eq!(
            free_middle(&page),
            Some((raw.slots_end(), raw.cell_start as usize))
        );
        // A slot pointing into the middle (a damaged page): copied whole, cells and all.
        let mut damaged = page.clone();
        damaged[40..42].copy_from_slice(&((raw.cell_start as u16) - 600).to_le_bytes());
        assert_eq!(free_middle(&damaged), None);
        // A cell area reaching past the page is no node to trust: copied whole.
        page[28..32].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(free_middle(&page), None);
        // Nor is a page of another kind.
        let mut overflow = vec![0u8; 4096];
        page::init_header(&mut overflow, PageType::Overflow, 8, 1);
        assert_eq!(free_middle(&overflow), None);
        // A nearly full node's middle is not worth a split copy.
        let mut full = vec![0u8; 4096];
        let mut node = NodeMut::init(&mut full, PageType::Branch, 9, 1);
        for i in 0..4 {
            assert!(node.insert_cell(i, &[1u8; 1000]));
        }
        assert_eq!(free_middle(&full), None);
    }

    #[test]
    fn a_slot_pointing_below_the_cell_area_is_corruption_not_a_cell() {
        let mut page = vec![0u8; 4096];
        let mut node = NodeMut::init(&mut page, PageType::Leaf, 7, 1);
        assert!(node.insert_cell(
            0,
            &node::encode_leaf_cell(b"key", LeafValue::Inline(b"value"))
        ));
        let raw = node::RawNodeHeader::parse(&page).expect("a node header");
        assert_eq!(
            NodeRef::new(&page, 7).and_then(|n| n.key(0)).ok(),
            Some(&b"key"[..])
        );
        // The slot moved into the free middle, where the bytes are unspecified.
        let below = raw.cell_start as u16 - 100;
        page[40..42].copy_from_slice(&below.to_le_bytes());
        let node = NodeRef::new(&page, 7).expect("the header is sane");
        assert!(matches!(node.key(0), Err(PagerError::Corrupt { .. })));
        assert!(matches!(node.cell(0), Err(PagerError::Corrupt { .. })));
    }
}
