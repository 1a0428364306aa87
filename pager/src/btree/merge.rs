//! Merging a sorted batch of puts and deletes into a tree in one pass (recovery's redo).
//!
//! Applied one at a time, every operation of a batch descends from the root, copies or edits
//! its leaf and walks back up. A batch sorted by key is merged instead: a branch splits the
//! batch by its children's key ranges and descends only into children that have operations; a
//! leaf merges its cells with its operations into a new cell list, laid out over as many nodes as
//! it needs. Back in the branch, the children's replacement nodes are spliced in, the ones left
//! underfull are rebalanced with a neighbour, and the branch is rewritten (it may split). A page
//! that is rewritten goes to a new page (or stays where it is when the transaction already owns
//! it), once per merge: a batch costs one pass over the nodes it touches.
//!
//! Fill follows the rules of single inserts and deletes (the invariants in `mod.rs`): a leaf on
//! the right edge that only gains keys after its last one is packed from the left (full nodes,
//! the remainder last), every other rewrite shares its cells evenly, and a node off the right
//! edge left below a quarter full is merged with or refilled from a neighbour.
//!
//! No branch but the root is left with a single child, on the right edge too: a later delete
//! that empties that child could not rebalance it with a sibling. A branch whose children all
//! went but one hands itself up *deficient*, and its parent joins it with a neighbour: both
//! nodes' children are laid out again together, and the lone child, if it needs a neighbour,
//! finds one among them (level by level, when that child is deficient too).

use super::*;

/// What a merge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Keys that were not in the tree.
    pub inserted: u64,
    /// Values replaced.
    pub replaced: u64,
    /// Keys deleted (a delete of an absent key does nothing).
    pub removed: u64,
}

/// Merge `ops` — strictly increasing keys, each with its new value (`None` deletes) — into the
/// tree. Equivalent to applying them one by one with [`insert`] and [`remove`]; `tree.len` stays
/// exact.
pub fn merge_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    ctx: &mut WriteCtx<'_>,
    tree: &mut TreeRecord,
    ops: &[(K, Option<V>)],
) -> Result<MergeStats> {
    if ops
        .windows(2)
        .any(|pair| pair[0].0.as_ref() >= pair[1].0.as_ref())
    {
        return Err(PagerError::InvalidConfig(
            "merged keys must be strictly increasing".into(),
        ));
    }
    if ops.is_empty() {
        return Ok(MergeStats::default());
    }
    let mut merger = Merger {
        min_fill: ctx.min_fill(),
        ctx,
        stats: MergeStats::default(),
        cells: Cells::default(),
    };
    let outcome = if tree.root == 0 {
        merger.merge_into_empty(ops)?
    } else {
        let root = merger.ctx.pool.get(tree.root)?;
        merger.merge_node(root, ops, 0, true)?
    };
    let outcome = match outcome {
        // The root's replacements become the children of a new root: none may be a lone
        // branch there either.
        Outcome::Replaced(mut nodes) if nodes.len() > 1 => {
            merger.fix_underfull(&mut nodes, true, 0)?;
            Outcome::Replaced(nodes)
        }
        outcome => outcome,
    };
    let stats = merger.stats;
    if let Outcome::Replaced(nodes) = outcome {
        tree.root = if nodes.is_empty() {
            0
        } else {
            let root = grow_root(ctx, nodes.into_iter().map(|n| n.entry).collect())?;
            shrink_root(ctx, root)?
        };
    }
    tree.len = tree
        .len
        .saturating_add(stats.inserted)
        .saturating_sub(stats.removed);
    Ok(stats)
}

/// An operation of a merged batch: a key and its new value (`None` deletes).
type Op<K, V> = (K, Option<V>);

/// A node standing in a branch during a merge.
struct Slot {
    entry: Entry,
    /// Bytes it uses, when this merge wrote it (a node it did not touch is as healthy as the
    /// tree was).
    used: Option<usize>,
    /// A branch with a single child: it must be joined with a neighbour (even on the right
    /// edge), and its child may need one too.
    deficient: bool,
}

impl Slot {
    fn kept(entry: Entry) -> Self {
        Slot {
            entry,
            used: None,
            deficient: false,
        }
    }
}

/// Slot `i` of a branch's children must be merged with or refilled from a neighbour. The last
/// child of a node on the right edge may stay underfull (appends leave it so), unless it is a
/// branch of one child.
fn needs_fix(slots: &[Slot], i: usize, right_edge: bool, min_fill: usize) -> bool {
    let slot = &slots[i];
    let exempt = right_edge && i + 1 == slots.len();
    slot.deficient || (!exempt && slot.used.is_some_and(|used| used < min_fill))
}

/// What merging into a node hands its parent.
enum Outcome {
    Unchanged,
    /// The nodes now standing where the node stood, in order (none when it emptied).
    Replaced(Vec<Slot>),
}

/// Cells being built, back to back in one buffer (no allocation per cell).
#[derive(Default)]
struct Cells {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Cells {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn push(&mut self, cell: &[u8]) {
        self.bytes.extend_from_slice(cell);
        self.seal();
    }

    /// End the cell written into `bytes` since the last one.
    fn seal(&mut self) {
        self.ends.push(self.bytes.len());
    }

    fn slices(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let cell = &self.bytes[start..end];
                start = end;
                cell
            })
            .collect()
    }
}

struct Merger<'m, 'a> {
    ctx: &'m mut WriteCtx<'a>,
    min_fill: usize,
    stats: MergeStats,
    /// Reused by every node written.
    cells: Cells,
}

impl Merger<'_, '_> {
    /// Merge into the subtree of `page`. `right_edge`: every ancestor's last child (as in
    /// `insert_rec`).
    fn merge_node<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        page: PageRef,
        ops: &[(K, Option<V>)],
        depth: usize,
        right_edge: bool,
    ) -> Result<Outcome> {
        if depth > MAX_DEPTH {
            return Err(depth_error(page.id()));
        }
        if NodeRef::new(&page.read(), page.id())?.is_leaf() {
            return self.merge_leaves(vec![(page, ops)], right_edge);
        }
        let children = branch_entries(&page)?;
        if children.is_empty() {
            return Err(PagerError::corrupt(page.id(), "empty branch"));
        }
        // Each child's share of the ops.
        let mut bounds = Vec::with_capacity(children.len());
        let mut start = 0;
        for next in children.iter().skip(1) {
            let rest = &ops[start..];
            let end = match rest.first() {
                Some((key, _)) if key.as_ref() < &next.key[..] => {
                    start + rest.partition_point(|(key, _)| key.as_ref() < &next.key[..])
                }
                _ => start,
            };
            bounds.push(start..end);
            start = end;
        }
        bounds.push(start..ops.len());
        let last = children.len() - 1;
        let mut slots = Vec::with_capacity(children.len() + 1);
        let (mut changed, mut only_last_changed) = (false, true);
        let mut children = children.into_iter().zip(bounds).enumerate().peekable();
        while let Some((i, (child, bound))) = children.next() {
            if bound.is_empty() {
                slots.push(Slot::kept(child));
                continue;
            }
            let child_page = self.ctx.pool.get(child.page)?;
            let is_leaf = NodeRef::new(&child_page.read(), child.page)?.is_leaf();
            // Leaves with ops next to each other are merged as one run (see `merge_leaves`).
            let mut run = vec![child];
            let mut pages = vec![(child_page, &ops[bound])];
            while let Some((_, (next, bound))) =
                children.next_if(|(_, (_, bound))| is_leaf && !bound.is_empty())
            {
                pages.push((self.ctx.pool.get(next.page)?, &ops[bound]));
                run.push(next);
            }
            let end = i + run.len() - 1;
            let on_edge = right_edge && end == last;
            let outcome = if is_leaf {
                self.merge_leaves(pages, on_edge)?
            } else {
                match pages.into_iter().next() {
                    Some((child_page, child_ops)) => {
                        self.merge_node(child_page, child_ops, depth + 1, on_edge)?
                    }
                    None => Outcome::Unchanged,
                }
            };
            match outcome {
                Outcome::Unchanged => slots.extend(run.into_iter().map(Slot::kept)),
                Outcome::Replaced(mut nodes) => {
                    changed = true;
                    only_last_changed &= i == last;
                    // The first node keeps the separator (every key below it is still >= it).
                    if let Some(first) = nodes.first_mut() {
                        first.entry.key = std::mem::take(&mut run[0].key);
                    }
                    slots.append(&mut nodes);
                }
            }
        }
        if !changed {
            return Ok(Outcome::Unchanged);
        }
        self.fix_underfull(&mut slots, right_edge, depth)?;
        if slots.is_empty() {
            self.ctx.free(page.id());
            return Ok(Outcome::Replaced(Vec::new()));
        }
        // Appends on the right edge pack branches from the left, as `insert_rec` does.
        let packing = if right_edge && only_last_changed {
            Packing::Left
        } else {
            Packing::Even
        };
        let target = self.rewrite_target(page)?;
        // A node of one child comes back deficient (see `lay_out`).
        self.write_branch(vec![target], &slots, packing)
            .map(Outcome::Replaced)
    }

    /// Merge into the empty tree: a run of leaves with no leaf yet.
    fn merge_into_empty<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        ops: &[(K, Option<V>)],
    ) -> Result<Outcome> {
        self.cells.clear();
        for op in ops {
            self.put_new(op)?;
        }
        if self.cells.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let target = self.ctx.new_page()?;
        // Every key is past the (absent) last one: an append at the right edge.
        self.lay_out(PageType::Leaf, vec![target], Packing::Left)
            .map(Outcome::Replaced)
    }

    /// Merge into a run of leaves next to each other, each with its ops. Their cells and the
    /// puts go into one sequence, laid out again over the run's pages (and more when it grew):
    /// leaves that each gain a little fill their pages together instead of each splitting in
    /// two half-full ones. `right_edge`: the run ends at the right edge.
    fn merge_leaves<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        run: Vec<(PageRef, &[Op<K, V>])>,
        right_edge: bool,
    ) -> Result<Outcome> {
        self.cells.clear();
        let before = self.stats;
        let mut replaced_values = Vec::new();
        // An append: one leaf on the right edge, every op past its last key.
        let mut append = right_edge && run.len() == 1;
        for (page, ops) in &run {
            let buf = page.read();
            let node = NodeRef::new(&buf, page.id())?;
            if !node.is_leaf() {
                return Err(PagerError::corrupt(page.id(), "a branch among leaves"));
            }
            let n = node.len();
            if n > 0 {
                append &= ops[0].0.as_ref() > node.key(n - 1)?;
            }
            let mut k = 0;
            for j in 0..n {
                let key = node.key(j)?;
                while k < ops.len() && ops[k].0.as_ref() < key {
                    self.put_new(&ops[k])?;
                    k += 1;
                }
                if k < ops.len() && ops[k].0.as_ref() == key {
                    replaced_values.push(ValueRef::from(node.leaf_value(j)?));
                    match &ops[k].1 {
                        Some(value) => {
                            self.ctx
                                .leaf_cell_into(&mut self.cells.bytes, key, value.as_ref())?;
                            self.cells.seal();
                            self.stats.replaced += 1;
                        }
                        None => self.stats.removed += 1,
                    }
                    k += 1;
                } else {
                    self.cells.push(node.cell(j)?);
                }
            }
            for op in &ops[k..] {
                self.put_new(op)?;
            }
        }
        if self.stats == before {
            return Ok(Outcome::Unchanged);
        }
        for value in &replaced_values {
            self.ctx.free_value(value)?;
        }
        let mut targets = Vec::with_capacity(run.len());
        for (page, _) in run {
            if self.cells.is_empty() {
                let id = page.id();
                drop(page);
                self.ctx.free(id);
            } else {
                targets.push(self.rewrite_target(page)?);
            }
        }
        if self.cells.is_empty() {
            return Ok(Outcome::Replaced(Vec::new()));
        }
        let packing = if append { Packing::Left } else { Packing::Even };
        self.lay_out(PageType::Leaf, targets, packing)
            .map(Outcome::Replaced)
    }

    /// A key that is not in the leaf: a put adds its cell, a delete does nothing.
    fn put_new<K: AsRef<[u8]>, V: AsRef<[u8]>>(&mut self, op: &(K, Option<V>)) -> Result<()> {
        if let Some(value) = &op.1 {
            self.ctx
                .leaf_cell_into(&mut self.cells.bytes, op.0.as_ref(), value.as_ref())?;
            self.cells.seal();
            self.stats.inserted += 1;
        }
        Ok(())
    }

    /// Merge or refill every child that needs it with a neighbour. `right_edge` is the
    /// branch's.
    fn fix_underfull(
        &mut self,
        slots: &mut Vec<Slot>,
        right_edge: bool,
        depth: usize,
    ) -> Result<()> {
        let mut i = 0;
        while i < slots.len() {
            if slots.len() < 2 || !needs_fix(slots, i, right_edge, self.min_fill) {
                i += 1;
                continue;
            }
            let left = if i + 1 < slots.len() { i } else { i - 1 };
            let pair_on_edge = right_edge && left + 2 == slots.len();
            let nodes = self.rebalance(&slots[left], &slots[left + 1], pair_on_edge, depth)?;
            let n = nodes.len();
            slots.splice(left..left + 2, nodes);
            // One node: it may still need a neighbour. Several: each holds at least a quarter.
            debug_assert!(
                n == 1
                    || (left..left + n)
                        .all(|j| !needs_fix(slots, j, right_edge, self.min_fill)
                            || j + 1 == slots.len())
            );
            i = if n == 1 { left } else { left + n };
        }
        Ok(())
    }

    /// Two neighbours as one node, or evenly shared over two.
    fn rebalance(
        &mut self,
        left: &Slot,
        right: &Slot,
        right_edge: bool,
        depth: usize,
    ) -> Result<Vec<Slot>> {
        if !left.deficient && !right.deficient {
            let entries = rebalance_pair(self.ctx, &left.entry, &right.entry)?;
            return entries
                .into_iter()
                .map(|entry| {
                    let used = node_fill(&self.ctx.pool.get(entry.page)?)?.1;
                    Ok(Slot {
                        entry,
                        used: Some(used),
                        deficient: false,
                    })
                })
                .collect();
        }
        if depth > MAX_DEPTH {
            return Err(depth_error(left.entry.page));
        }
        // Branches: join their children, repair the ones that need it, lay them out again.
        let mut children = self.children_of(left)?;
        let mut right_children = self.children_of(right)?;
        if let Some(first) = right_children.first_mut() {
            // Its −∞ inside `right` becomes the separator its parent kept.
            first.entry.key = right.entry.key.clone();
        }
        children.append(&mut right_children);
        self.fix_underfull(&mut children, right_edge, depth + 1)?;
        let targets = vec![
            self.rewrite_target(self.ctx.pool.get(left.entry.page)?)?,
            self.rewrite_target(self.ctx.pool.get(right.entry.page)?)?,
        ];
        let mut nodes = self.write_branch(targets, &children, Packing::Even)?;
        if let Some(first) = nodes.first_mut() {
            first.entry.key = left.entry.key.clone();
        }
        Ok(nodes)
    }

    /// The children of a branch slot; a deficient one's with their fill (one of them needs a
    /// neighbour).
    fn children_of(&mut self, slot: &Slot) -> Result<Vec<Slot>> {
        let page = self.ctx.pool.get(slot.entry.page)?;
        if NodeRef::new(&page.read(), page.id())?.is_leaf() {
            return Err(PagerError::corrupt(
                page.id(),
                "a leaf beside a branch at one level",
            ));
        }
        let entries = branch_entries(&page)?;
        if !slot.deficient {
            return Ok(entries.into_iter().map(Slot::kept).collect());
        }
        entries
            .into_iter()
            .map(|entry| {
                let child = self.ctx.pool.get(entry.page)?;
                let buf = child.read();
                let node = NodeRef::new(&buf, entry.page)?;
                let used = node.used_bytes_fast();
                Ok(Slot {
                    deficient: !node.is_leaf() && node.len() == 1,
                    used: Some(used),
                    entry,
                })
            })
            .collect()
    }

    /// A page to write the new content of `page` into: itself when the transaction owns it,
    /// else a new one (and `page` is freed). Its content is not copied: the caller rebuilds it.
    fn rewrite_target(&mut self, page: PageRef) -> Result<PageRef> {
        let id = page.id();
        if self.ctx.alloc.is_private(id) {
            return Ok(page);
        }
        drop(page);
        let new = self.ctx.new_page()?;
        self.ctx.free(id);
        Ok(new)
    }

    fn write_branch(
        &mut self,
        targets: Vec<PageRef>,
        slots: &[Slot],
        packing: Packing,
    ) -> Result<Vec<Slot>> {
        self.cells.clear();
        for slot in slots {
            let e = &slot.entry;
            self.cells
                .push(&encode_branch_cell(&e.key, e.page, e.count));
        }
        self.lay_out(PageType::Branch, targets, packing)
    }

    /// Lay the cells built in `self.cells` (at least one) out over nodes of `kind`, writing
    /// `targets` first, then new pages; targets left over are freed.
    fn lay_out(
        &mut self,
        kind: PageType,
        targets: Vec<PageRef>,
        packing: Packing,
    ) -> Result<Vec<Slot>> {
        debug_assert!(!self.cells.is_empty());
        let usable = node::usable_bytes(self.ctx.page_size());
        let cells = self.cells.slices();
        let sizes: Vec<usize> = cells.iter().map(|c| c.len() + SLOT_BYTES).collect();
        let groups = match packing {
            // Room for later inserts, as a bulk load leaves.
            Packing::Even => partition_even(&sizes, usable, usable * BULK_FILL_PERCENT / 100),
            Packing::Left => partition(&sizes, &sizes, usable, Packing::Left),
        };
        let mut targets = targets.into_iter();
        let mut nodes = Vec::with_capacity(groups.len());
        for group in groups {
            let page = match targets.next() {
                Some(page) => page,
                None => self.ctx.new_page()?,
            };
            let lone = kind == PageType::Branch && group.len() == 1;
            let entry = write_group(&page, kind, &cells[group], self.ctx.seq)?;
            nodes.push(Slot {
                entry,
                used: Some(node_fill(&page)?.1),
                deficient: lone,
            });
        }
        for leftover in targets {
            let id = leftover.id();
            drop(leftover);
            self.ctx.free(id);
        }
        Ok(nodes)
    }
}
