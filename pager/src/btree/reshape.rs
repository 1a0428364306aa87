//! How nodes are laid out again after a change below them: a child's new nodes put into its
//! parent (in place when they fit), splits packed evenly or to the left, underfull siblings
//! merged or refilled, and root levels added or removed.

use super::*;

/// Put a modified child (cell `i` of the branch in `page`, which the transaction owns) back
/// into the branch: in place when it is one healthy node, or when it split and the branch has
/// room for the new separators; otherwise splice the new nodes in, rebalance an underfull
/// child with a sibling, and rewrite the branch (which may split).
pub(super) fn apply_child_result(
    ctx: &mut WriteCtx<'_>,
    page: PageRef,
    i: usize,
    result: ChildResult,
    delta: i64,
    packing: Packing,
    on_right_edge: bool,
) -> Result<ChildResult> {
    let old_count = {
        let buf = page.read();
        NodeRef::new(&buf, page.id())?.child_count(i)?
    };
    let single_count = old_count.saturating_add_signed(delta);
    if result.entries.len() == 1 && !result.underfull {
        // Same size as before: a node that was healthy stays so, and one on the right edge
        // that appends left underfull is not merged back (which would undo the append split).
        NodeMut::wrap(&mut page.write()).set_child(i, result.entries[0].page, single_count);
        return Ok(ChildResult::one_node(page.id(), 0, false));
    }
    if result.entries.len() > 1 && !result.underfull {
        // A branch off the right edge that gains separators and is still under the bound (a
        // damaged or older file can have one; a valid tree cannot) asks its parent to
        // rebalance it, as a rewrite did. One on the right edge does not: it is under the bound
        // only after append splits, and evening it with its full neighbour would undo them.
        let min_fill = (!on_right_edge).then(|| ctx.min_fill());
        if let Some(done) = insert_separators(&page, i, &result.entries, min_fill)? {
            return Ok(done);
        }
    }
    let mut cells = branch_entries(&page)?;
    let mut replacement = result.entries;
    replacement[0].key = std::mem::take(&mut cells[i].key);
    if replacement.len() == 1 {
        replacement[0].count = single_count;
    }
    let added = replacement.len();
    cells.splice(i..=i, replacement);
    if result.underfull && cells.len() > 1 {
        let left = if i + 1 < cells.len() { i } else { i - 1 };
        let merged = rebalance_pair(ctx, &cells[left], &cells[left + 1])?;
        cells.splice(left..=left + 1, merged);
    }
    debug_assert!(added >= 1);
    let encoded: Vec<Vec<u8>> = cells
        .iter()
        .map(|e| encode_branch_cell(&e.key, e.page, e.count))
        .collect();
    let entries = write_nodes(ctx, PageType::Branch, vec![page.clone()], &encoded, packing)?;
    let underfull = entries.len() == 1 && node_fill(&page)?.1 < ctx.min_fill();
    Ok(ChildResult { entries, underfull })
}

/// A child that split (cell `i` of the branch in `page`), put into the branch in place when
/// the branch has room for the new separators: the first node keeps cell `i`'s key, each
/// later one gets a cell after it. This is a split's common case; rewriting the branch from
/// its decoded cells allocated twice per cell and was most of a splitting commit's time.
/// `None` (the branch unchanged) when they do not fit: the caller rewrites and splits it.
/// The branch reports itself underfull when it uses fewer than `min_fill` bytes.
fn insert_separators(
    page: &PageRef,
    i: usize,
    entries: &[Entry],
    min_fill: Option<usize>,
) -> Result<Option<ChildResult>> {
    let cells: Vec<Vec<u8>> = entries[1..]
        .iter()
        .map(|e| encode_branch_cell(&e.key, e.page, e.count))
        .collect();
    let need: usize = cells.iter().map(|c| c.len() + SLOT_BYTES).sum();
    {
        let mut buf = page.write();
        let mut node = NodeMut::wrap(&mut buf);
        if need > node.free_bytes() {
            return Ok(None);
        }
        node.set_child(i, entries[0].page, entries[0].count);
        for (j, cell) in cells.iter().enumerate() {
            // Room was checked, so only a damaged node refuses (the transaction, poisoned by
            // the error, never publishes the half-changed page).
            if !node.insert_cell(i + 1 + j, cell) {
                return Err(PagerError::corrupt(
                    page.id(),
                    "a branch with room refused a separator",
                ));
            }
        }
    }
    let underfull = match min_fill {
        Some(min) => node_fill(page)?.1 < min,
        None => false,
    };
    Ok(Some(ChildResult::one_node(page.id(), 0, underfull)))
}

/// Merge two adjacent children, or share their cells evenly when they do not fit in one page.
pub(super) fn rebalance_pair(
    ctx: &mut WriteCtx<'_>,
    left: &Entry,
    right: &Entry,
) -> Result<Vec<Entry>> {
    let left_page = ctx.writable(left.page)?;
    let right_page = ctx.writable(right.page)?;
    let (kind, right_kind) = {
        let l = left_page.read();
        let r = right_page.read();
        (
            NodeRef::new(&l, left_page.id())?.kind(),
            NodeRef::new(&r, right_page.id())?.kind(),
        )
    };
    if kind != right_kind {
        return Err(PagerError::corrupt(
            right.page,
            "sibling nodes at different levels",
        ));
    }
    let mut cells = node_cells(&left_page)?;
    let mut right_cells = node_cells(&right_page)?;
    if kind == PageType::Branch && !right_cells.is_empty() {
        // The right node's first cell stands for −∞ inside it; between siblings it needs the
        // separator its parent kept.
        let (child, count) = (read_u64(&right_cells[0], 2), read_u64(&right_cells[0], 10));
        right_cells[0] = encode_branch_cell(&right.key, child, count);
    }
    cells.append(&mut right_cells);
    let mut entries = write_nodes(
        ctx,
        kind,
        vec![left_page, right_page],
        &cells,
        Packing::Even,
    )?;
    entries[0].key = left.key.clone();
    Ok(entries)
}

/// Cells in a node and bytes its slots and live cells use, in O(1).
pub(super) fn node_fill(page: &PageRef) -> Result<(u64, usize)> {
    let buf = page.read();
    let node = NodeRef::new(&buf, page.id())?;
    Ok((node.len() as u64, node.used_bytes_fast()))
}

/// Encoded cells of a node.
fn node_cells(page: &PageRef) -> Result<Vec<Vec<u8>>> {
    let buf = page.read();
    let node = NodeRef::new(&buf, page.id())?;
    (0..node.len())
        .map(|i| node.cell(i).map(<[u8]>::to_vec))
        .collect()
}

pub(super) fn branch_entries(page: &PageRef) -> Result<Vec<Entry>> {
    let buf = page.read();
    let node = NodeRef::new(&buf, page.id())?;
    (0..node.len())
        .map(|i| {
            Ok(Entry {
                key: node.key(i)?.to_vec(),
                page: node.child(i)?,
                count: node.child_count(i)?,
            })
        })
        .collect()
}

/// How cells that overflow a node are laid out over several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Packing {
    /// Evenly by bytes: room on both sides for inserts anywhere.
    Even,
    /// Each node as full as it goes, the remainder in the last: for appends at the right
    /// edge, which will never insert into the nodes left behind.
    Left,
}

/// Split cells of `sizes` bytes into pages of `usable` bytes: evenly by bytes for `Even`,
/// each page as full as it goes for `Left`.
pub(super) fn partition(
    sizes: &[usize],
    firsts: &[usize],
    usable: usize,
    packing: Packing,
) -> Vec<std::ops::Range<usize>> {
    debug_assert_eq!(sizes.len(), firsts.len());
    if packing == Packing::Left {
        let mut groups = Vec::new();
        let (mut start, mut acc) = (0, 0);
        for (i, size) in sizes.iter().enumerate() {
            if acc > 0 && acc + size > usable {
                groups.push(start..i);
                start = i;
                acc = 0;
            }
            acc += size;
        }
        groups.push(start..sizes.len());
        // The last node gets at least two cells: a branch with one child could not rebalance
        // that child with a sibling once deletes empty it. The node before it stays over
        // three quarters full (a cell is at most a quarter of a page).
        if let [.., before, last] = groups.as_mut_slice() {
            if last.len() == 1 && before.len() > 1 {
                before.end -= 1;
                last.start -= 1;
            }
        }
        return groups;
    }
    // Even: each page closed before the bytes it holds would pass its share of the bytes left,
    // the share taken again after every page. A page's first cell counts what it keeps there
    // (`firsts`: a branch's first key moves up to its parent). Every page but the last holds
    // over a quarter of a page, and every page of several at least two cells: no branch node
    // of one child. A split in two whose first cell keeps its whole size (a leaf, or a branch
    // whose first cell is its empty one) leaves the last page at least half the bytes. When
    // first keys move up, the last of several can be small; only `grow_root` and the bulk
    // loader lay out such levels, and their last node is on the right edge, where the bound
    // does not apply. (Sizing every page for one share of the whole, and adding a page
    // whenever the last overflowed, ended in groups of one cell when cells differ widely:
    // towers of one-child branches over merged levels.)
    let pages_for = |bytes: usize| bytes.div_ceil(usable).max(1);
    let share = |bytes: usize| bytes.div_ceil(pages_for(bytes));
    let mut remaining: usize = sizes.iter().sum();
    let mut target = share(remaining);
    let mut groups = Vec::with_capacity(pages_for(remaining));
    // `held`: bytes the open page holds; `taken`: its cells' whole sizes.
    let (mut start, mut held, mut taken) = (0, 0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && (held + size > target || held + size > usable) {
            groups.push(start..i);
            remaining -= taken;
            target = share(remaining);
            start = i;
            taken = 0;
        }
        held = if i == start { firsts[i] } else { held + size };
        taken += size;
    }
    groups.push(start..sizes.len());
    groups
}

/// Split cells of `sizes` bytes into pages of `usable` bytes filled to about `fill` bytes (one
/// page when they fit in one), sharing the bytes evenly: the layout of merges, which leave
/// room for later inserts. It retargets after every page: one merge may lay out
/// thousands of cells, where small shortfalls on each page would add up to an overfull last
/// one.
///
/// Every page but a lone one holds more than a quarter of `usable`: while two or more pages
/// remain, the target is above half of `fill` (at least 3/8 of `usable`), and a page closes
/// within half a cell (at most an eighth of `usable`) of it.
pub(super) fn partition_even(
    sizes: &[usize],
    usable: usize,
    fill: usize,
) -> Vec<std::ops::Range<usize>> {
    debug_assert!(fill >= usable * 3 / 4 && fill <= usable);
    let pages_for = |bytes: usize| {
        if bytes <= usable {
            1
        } else {
            bytes.div_ceil(fill).max(2)
        }
    };
    let target_for = |remaining: usize| remaining.div_ceil(pages_for(remaining));
    let mut remaining: usize = sizes.iter().sum();
    let mut target = target_for(remaining);
    let mut groups = Vec::with_capacity(pages_for(remaining));
    let (mut start, mut acc) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if acc > 0 && (acc + size > usable || acc + size / 2 > target) {
            groups.push(start..i);
            remaining -= acc;
            target = target_for(remaining);
            start = i;
            acc = 0;
        }
        acc += size;
    }
    groups.push(start..sizes.len());
    groups
}

/// Lay `cells` out over as many nodes of `kind` as needed, reusing `reuse` (pages the
/// transaction owns) first and freeing the ones left over. Returns one entry per node.
pub(super) fn write_nodes<C: AsRef<[u8]>>(
    ctx: &mut WriteCtx<'_>,
    kind: PageType,
    reuse: Vec<PageRef>,
    cells: &[C],
    packing: Packing,
) -> Result<Vec<Entry>> {
    let usable = node::usable_bytes(ctx.page_size());
    let sizes: Vec<usize> = cells
        .iter()
        .map(|c| c.as_ref().len() + SLOT_BYTES)
        .collect();
    // What a cell keeps of itself when it is the first of its node: a branch's key moves up.
    let firsts: Vec<usize> = match kind {
        PageType::Branch => cells
            .iter()
            .zip(&sizes)
            .map(|(c, size)| {
                let key_len = page::try_read_u16(c.as_ref(), 0).map_or(0, usize::from);
                size - key_len.min(*size)
            })
            .collect(),
        _ => sizes.clone(),
    };
    let groups = partition(&sizes, &firsts, usable, packing);
    // A branch node of one cell has one child, which it could never rebalance with a sibling.
    // Neither packing makes one: an `Even` group closes only once it holds over a quarter of a
    // page (two cells at most hold half), a last group holds what was left of a page's share
    // or more, and `Left` gives its last node two cells.
    debug_assert!(
        kind != PageType::Branch || groups.len() == 1 || groups.iter().all(|g| g.len() >= 2),
        "a branch level laid out with a node of one cell: {groups:?}"
    );
    let mut reuse = reuse.into_iter();
    let mut entries = Vec::with_capacity(groups.len());
    for group in groups {
        let page = match reuse.next() {
            Some(page) => page,
            None => ctx.new_page()?,
        };
        entries.push(write_group(&page, kind, &cells[group], ctx.seq)?);
    }
    for leftover in reuse {
        ctx.free(leftover.id());
    }
    Ok(entries)
}

/// Write one node from its cells; a branch's first key moves out to become the separator.
pub(super) fn write_group<C: AsRef<[u8]>>(
    page: &PageRef,
    kind: PageType,
    cells: &[C],
    seq: u64,
) -> Result<Entry> {
    let mut buf = page.write();
    let mut node = NodeMut::init(&mut buf, kind, page.id(), seq);
    let mut key = Vec::new();
    let mut count = 0u64;
    for (j, cell) in cells.iter().enumerate() {
        let cell = cell.as_ref();
        let fitted = if kind == PageType::Branch {
            let key_len = page::read_u16(cell, 0) as usize;
            let (child, child_count) = (read_u64(cell, 2), read_u64(cell, 10));
            count += child_count;
            if j == 0 {
                key =
                    cell[node::BRANCH_CELL_OVERHEAD..node::BRANCH_CELL_OVERHEAD + key_len].to_vec();
                node.insert_cell(0, &encode_branch_cell(b"", child, child_count))
            } else {
                node.insert_cell(j, cell)
            }
        } else {
            count += 1;
            if j == 0 {
                let key_len = page::read_u16(cell, 0) as usize;
                key = cell[node::LEAF_CELL_OVERHEAD..node::LEAF_CELL_OVERHEAD + key_len].to_vec();
            }
            node.insert_cell(j, cell)
        };
        assert!(fitted, "partition produced a group larger than a page");
    }
    node.refresh_head_offset();
    Ok(Entry {
        key,
        page: page.id(),
        count,
    })
}

/// When the root split, stack new branch levels until one node remains.
pub(super) fn grow_root(ctx: &mut WriteCtx<'_>, mut entries: Vec<Entry>) -> Result<PageId> {
    while entries.len() > 1 {
        let cells: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| encode_branch_cell(&e.key, e.page, e.count))
            .collect();
        entries = write_nodes(ctx, PageType::Branch, Vec::new(), &cells, Packing::Even)?;
    }
    Ok(entries[0].page)
}

/// Remove root levels with a single child, and an empty root leaf.
pub(super) fn shrink_root(ctx: &mut WriteCtx<'_>, mut root: PageId) -> Result<PageId> {
    for _ in 0..MAX_DEPTH {
        let (is_leaf, len, first_child) = {
            let page = ctx.pool.get(root)?;
            let buf = page.read();
            let node = NodeRef::new(&buf, root)?;
            let first = if !node.is_leaf() && node.len() == 1 {
                node.child(0)?
            } else {
                0
            };
            (node.is_leaf(), node.len(), first)
        };
        if is_leaf && len == 0 {
            ctx.free(root);
            return Ok(0);
        }
        if is_leaf || len > 1 {
            return Ok(root);
        }
        ctx.free(root);
        root = first_child;
    }
    Err(depth_error(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn even_partition_fits_and_fills(
            sizes in proptest::collection::vec(8usize..=1014, 1..3000),
        ) {
            let usable = node::usable_bytes(4096);
            let fill = usable * 9 / 10;
            let groups = partition_even(&sizes, usable, fill);
            let total: usize = sizes.iter().sum();
            proptest::prop_assert_eq!(groups.first().map(|g| g.start), Some(0));
            proptest::prop_assert_eq!(groups.last().map(|g| g.end), Some(sizes.len()));
            for pair in groups.windows(2) {
                proptest::prop_assert_eq!(pair[0].end, pair[1].start);
            }
            for group in &groups {
                let bytes: usize = sizes[group.clone()].iter().sum();
                proptest::prop_assert!(!group.is_empty() && bytes <= usable);
                proptest::prop_assert!(groups.len() == 1 || bytes >= usable / 4, "{} bytes", bytes);
            }
            // Pages filled to about `fill` (less half a cell, up to an eighth) on average.
            proptest::prop_assert!(groups.len() <= total.div_ceil(fill - usable / 8) + 1);
        }

        #[test]
        fn an_even_split_fits_covers_and_keeps_the_last_of_two_half_full(
            sizes in proptest::collection::vec(24usize..=1014, 1..400),
        ) {
            let usable = node::usable_bytes(4096);
            let groups = partition(&sizes, &sizes, usable, Packing::Even);
            let total: usize = sizes.iter().sum();
            proptest::prop_assert_eq!(groups.first().map(|g| g.start), Some(0));
            proptest::prop_assert_eq!(groups.last().map(|g| g.end), Some(sizes.len()));
            for pair in groups.windows(2) {
                proptest::prop_assert_eq!(pair[0].end, pair[1].start);
            }
            proptest::prop_assert_eq!(groups.len() == 1, total <= usable);
            for group in &groups {
                let bytes: usize = sizes[group.clone()].iter().sum();
                proptest::prop_assert!(!group.is_empty() && bytes <= usable, "{} bytes", bytes);
                proptest::prop_assert!(groups.len() == 1 || bytes > usable / 4, "{} bytes", bytes);
                proptest::prop_assert!(groups.len() == 1 || group.len() >= 2, "{groups:?}");
            }
            if let [_, last] = groups.as_slice() {
                let bytes: usize = sizes[last.clone()].iter().sum();
                proptest::prop_assert!(bytes >= total / 2, "last of two: {} of {}", bytes, total);
            }
        }

        #[test]
        fn a_split_branch_counts_each_nodes_first_key_as_moved_up(
            mut keys in proptest::collection::vec(0usize..=990, 2..300),
        ) {
            // Branch cells: an 18-byte header and the key, a 6-byte slot; the first cell of a
            // node keeps 24 bytes, and a rewritten branch's first cell is its empty (−∞) one.
            // Every node fits, none has one child, and the last of two keeps over a quarter
            // of a page (what the checker requires of a node off the right edge).
            keys[0] = 0;
            let usable = node::usable_bytes(4096);
            let sizes: Vec<usize> = keys.iter().map(|k| k + 24).collect();
            let firsts = vec![24; sizes.len()];
            let groups = partition(&sizes, &firsts, usable, Packing::Even);
            let held = |g: &std::ops::Range<usize>| {
                24 + sizes[g.start + 1..g.end].iter().sum::<usize>()
            };
            proptest::prop_assert_eq!(groups.last().map(|g| g.end), Some(sizes.len()));
            for group in &groups {
                proptest::prop_assert!(held(group) <= usable, "{} bytes", held(group));
                proptest::prop_assert!(groups.len() == 1 || group.len() >= 2, "{groups:?}");
            }
            if let [_, last] = groups.as_slice() {
                proptest::prop_assert!(held(last) > usable / 4, "last of two: {}", held(last));
            }
        }

        #[test]
        fn no_page_of_several_holds_a_single_cell(
            sizes in proptest::collection::vec(24usize..=1014, 2..200),
            fill_percent in 75usize..=100,
        ) {
            // What keeps a branch level free of one-child nodes (`write_nodes`).
            let usable = node::usable_bytes(4096);
            let groups = partition_even(&sizes, usable, usable * fill_percent / 100);
            for group in &groups {
                proptest::prop_assert!(groups.len() == 1 || group.len() >= 2, "{groups:?}");
            }
        }
    }
}
