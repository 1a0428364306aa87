//! The invariant checker: walks a data file (or a live store) and verifies
//! - every page's checksum (when reading from disk) and header;
//! - key order within nodes and across them (each subtree within its parent's bounds);
//! - branch counts against the entries actually below them, and tree records against both;
//! - all leaves of a tree at one depth, and fill bounds of nodes off the right edge;
//! - that every page below the page count is used exactly once: reachable from the version,
//!   or free (free set, free list, waiting to be freed) — no leaks, no double use.
//!
//! It never stops at the first problem: it returns every violation with its page.
//!
//! Tools that map a file page by page (the `aedb` command's `pages` and `tree` commands) walk
//! it with [`walk_file`] and a [`Visitor`], which is told every page the walk claims, every
//! node and overflow page it reads, and every violation as it is found.

use std::collections::HashMap;
use std::fmt;

use crate::alloc::decode_freelist_page;
use crate::btree::node::{self, LeafValue, NodeRef};
use crate::btree::{TreeRecord, MAX_DEPTH};
use crate::error::{PagerError, Result};
use crate::io::AlignedBuf;
use crate::meta::Meta;
use crate::overflow::{self, OVERFLOW_HEADER_BYTES};
use crate::page::{self, PageId, PageType};
use crate::pool::BufferPool;
use crate::store::PageStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub page: Option<PageId>,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.page {
            Some(page) => write!(f, "page {page}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TreeReport {
    pub name: String,
    pub entries: u64,
    pub height: u32,
    pub branch_pages: u64,
    pub leaf_pages: u64,
    pub overflow_pages: u64,
    /// Bytes used by slots and cells in this tree's nodes.
    pub used_bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub page_size: u64,
    pub page_count: u64,
    pub reachable_pages: u64,
    pub free_pages: u64,
    pub catalog: TreeReport,
    pub trees: Vec<TreeReport>,
    pub violations: Vec<Violation>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The parts of a walk, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    /// A tree: the tree of trees first (named `(tree of trees)`), then each tree it names.
    Tree { name: &'a str, record: TreeRecord },
    /// The free list (a data file's) or the allocator's other pages (a live store's).
    Free,
    /// The pages below the page count nothing claimed: each a leak.
    Leaked,
}

/// What the walk meets, in walk order: each [`Part`] as it is entered, and within it the pages
/// (a tree depth first, a leaf's overflow chains before its next cell). Every method does
/// nothing unless implemented; the checker alone walks with `()`.
pub trait Visitor {
    /// The walk enters `part`.
    fn enter(&mut self, _part: Part<'_>) {}
    /// Page `id` is claimed as `what`: `tree node` or `overflow` (of the current tree),
    /// `free-list`, `free` or `pending`. A page claimed twice is a violation instead.
    fn page(&mut self, _id: PageId, _what: &'static str) {}
    /// A node of the current tree, read, verified and decoded, and the bytes its slots and
    /// cells use.
    fn node(&mut self, _node: &NodeRef<'_>, _used: usize) {}
    /// An overflow page of the current tree and its data bytes.
    fn overflow(&mut self, _id: PageId, _used: u64) {}
    /// A violation, as it is found. `damaged`: its page could not be read, does not verify,
    /// or does not decode as what it was reached as.
    fn violation(&mut self, _violation: &Violation, _damaged: bool) {}
}

impl Visitor for () {}

type Loader<'a> = dyn Fn(PageId) -> Result<AlignedBuf> + 'a;

struct Walker<'a> {
    load: &'a Loader<'a>,
    page_size: usize,
    page_count: u64,
    owner: HashMap<PageId, &'static str>,
    violations: Vec<Violation>,
    visitor: &'a mut dyn Visitor,
}

impl Walker<'_> {
    fn violation(&mut self, page: Option<PageId>, message: impl Into<String>) {
        self.report(page, message.into(), false);
    }

    /// A violation where the page could not be read or decoded.
    fn damaged(&mut self, page: PageId, message: impl Into<String>) {
        self.report(Some(page), message.into(), true);
    }

    fn report(&mut self, page: Option<PageId>, message: String, damaged: bool) {
        let violation = Violation { page, message };
        self.visitor.violation(&violation, damaged);
        self.violations.push(violation);
    }

    /// Record that `id` is used as `what`; false when it must not be followed.
    fn mark(&mut self, id: PageId, what: &'static str) -> bool {
        if id < 2 || id >= self.page_count {
            self.violation(
                Some(id),
                format!("{what} page outside 2..{}", self.page_count),
            );
            return false;
        }
        if let Some(previous) = self.owner.insert(id, what) {
            self.violation(Some(id), format!("used twice: as {previous} and as {what}"));
            return false;
        }
        self.visitor.page(id, what);
        true
    }

    fn walk_tree(&mut self, name: &str, record: TreeRecord) -> TreeReport {
        self.visitor.enter(Part::Tree { name, record });
        let mut report = TreeReport {
            name: name.to_string(),
            ..TreeReport::default()
        };
        if record.root == 0 {
            if record.len != 0 {
                self.violation(
                    None,
                    format!(
                        "tree {name:?}: empty root but {} entries recorded",
                        record.len
                    ),
                );
            }
            return report;
        }
        let mut leaf_depth = None;
        let found = self.walk_node(
            record.root,
            0,
            None,
            None,
            true,
            &mut leaf_depth,
            &mut report,
        );
        report.entries = found.unwrap_or(0);
        report.height = leaf_depth.map_or(0, |d| d + 1);
        if found.is_some_and(|n| n != record.len) {
            self.violation(
                Some(record.root),
                format!(
                    "tree {name:?}: record says {} entries, the tree holds {}",
                    record.len, report.entries
                ),
            );
        }
        report
    }

    /// Check a node and its subtree; the number of entries below it.
    #[allow(clippy::too_many_arguments)]
    fn walk_node(
        &mut self,
        id: PageId,
        depth: u32,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        is_root: bool,
        leaf_depth: &mut Option<u32>,
        report: &mut TreeReport,
    ) -> Option<u64> {
        if depth as usize > MAX_DEPTH {
            self.violation(Some(id), "tree too deep");
            return None;
        }
        if !self.mark(id, "tree node") {
            return None;
        }
        let buf = match (self.load)(id) {
            Ok(buf) => buf,
            Err(err) => {
                self.damaged(id, err.to_string());
                return None;
            }
        };
        let node = match NodeRef::new(&buf, id) {
            Ok(node) => node,
            Err(err) => {
                self.damaged(id, err.to_string());
                return None;
            }
        };
        match node.used_bytes() {
            Ok(used) => {
                self.visitor.node(&node, used);
                report.used_bytes += used as u64;
                let min = node::usable_bytes(self.page_size) / 4;
                // The right edge (no upper bound) may be underfull: appends split there by
                // leaving the full node full and starting a new one (btree::insert).
                let right_edge = upper.is_none();
                if !is_root && !right_edge && used < min {
                    self.violation(
                        Some(id),
                        format!("non-root node uses {used} bytes, below the bound of {min}"),
                    );
                }
            }
            Err(err) => {
                self.damaged(id, err.to_string());
                return None;
            }
        }
        if let Err(reason) = node.verify_heads() {
            self.violation(Some(id), reason);
        }
        if let Err(reason) = cell_layout(&node, &buf) {
            self.violation(Some(id), reason);
        }
        if node.is_empty() {
            self.violation(Some(id), "empty node");
            return None;
        }
        let mut previous: Option<&[u8]> = None;
        let mut total = 0u64;
        for i in 0..node.len() {
            let key = match node.key(i) {
                Ok(key) => key,
                Err(err) => {
                    self.damaged(id, err.to_string());
                    return None;
                }
            };
            let effective = if !node.is_leaf() && i == 0 {
                if !key.is_empty() {
                    self.violation(Some(id), "first branch key is not empty");
                }
                lower
            } else {
                Some(key)
            };
            if let (Some(prev), Some(k)) = (previous, effective) {
                if prev >= k {
                    self.violation(Some(id), format!("keys out of order at cell {i}"));
                }
            }
            if let Some(k) = effective {
                if lower.is_some_and(|l| k < l) || upper.is_some_and(|u| k >= u) {
                    self.violation(
                        Some(id),
                        format!("key at cell {i} outside its parent's bounds"),
                    );
                }
            }
            previous = effective;
            if node.is_leaf() {
                total += 1;
                if let Ok(LeafValue::Overflow { len, first }) = node.leaf_value(i) {
                    self.walk_overflow(id, first, len, report);
                }
                continue;
            }
            let (child, count) = match (node.child(i), node.child_count(i)) {
                (Ok(child), Ok(count)) => (child, count),
                (Err(err), _) | (_, Err(err)) => {
                    self.damaged(id, err.to_string());
                    return None;
                }
            };
            let child_upper = if i + 1 < node.len() {
                node.key(i + 1).ok()
            } else {
                upper
            };
            let below = self.walk_node(
                child,
                depth + 1,
                effective,
                child_upper,
                false,
                leaf_depth,
                report,
            );
            if let Some(below) = below {
                if below != count {
                    self.violation(
                        Some(id),
                        format!("cell {i} counts {count} entries, child {child} holds {below}"),
                    );
                }
                total += below;
            }
        }
        if node.is_leaf() {
            report.leaf_pages += 1;
            match *leaf_depth {
                None => *leaf_depth = Some(depth),
                Some(d) if d != depth => {
                    self.violation(Some(id), format!("leaf at depth {depth}, others at {d}"))
                }
                Some(_) => {}
            }
        } else {
            report.branch_pages += 1;
            if is_root && node.len() < 2 {
                self.violation(Some(id), "root branch with a single child");
            }
        }
        Some(total)
    }

    fn walk_overflow(&mut self, leaf: PageId, first: PageId, len: u64, report: &mut TreeReport) {
        let per_page = overflow::data_per_page(self.page_size) as u64;
        let mut next = first;
        let mut remaining = len;
        let mut steps = 0u64;
        while next != 0 {
            steps += 1;
            if steps > len / per_page + 1 || !self.mark(next, "overflow") {
                self.violation(Some(leaf), "overflow chain too long or shared");
                return;
            }
            report.overflow_pages += 1;
            let buf = match (self.load)(next) {
                Ok(buf) => buf,
                Err(err) => {
                    self.damaged(next, err.to_string());
                    return;
                }
            };
            if page::page_type_byte(&buf) != PageType::Overflow as u8 {
                self.damaged(next, "overflow chain reaches a page of another type");
                return;
            }
            let Some(header) = overflow::RawOverflowHeader::parse(&buf) else {
                self.damaged(next, "overflow page shorter than its header");
                return;
            };
            let used = header.used as u64;
            if used > per_page || used > remaining {
                self.damaged(next, format!("overflow page claims {used} bytes"));
                return;
            }
            self.visitor.overflow(next, used);
            debug_assert!(OVERFLOW_HEADER_BYTES as u64 + used <= buf.len() as u64);
            remaining -= used;
            next = header.next;
        }
        if remaining != 0 {
            self.violation(
                Some(leaf),
                format!("overflow chain from {first} ends {remaining} bytes short"),
            );
        }
    }

    /// Walk the tree of trees and every tree it names.
    fn walk_all(&mut self, root: PageId, tree_count: u64, report: &mut CheckReport) {
        report.catalog = self.walk_tree(
            "(tree of trees)",
            TreeRecord {
                root,
                len: tree_count,
            },
        );
        let records = match collect_entries(self.load, root) {
            Ok(records) => records,
            Err(err) => {
                self.violation(Some(root), err.to_string());
                return;
            }
        };
        for (name, value) in records {
            let name = String::from_utf8_lossy(&name).into_owned();
            match TreeRecord::decode(&value, root) {
                Ok(record) => {
                    let tree = self.walk_tree(&name, record);
                    report.trees.push(tree);
                }
                Err(err) => self.violation(Some(root), format!("tree {name:?}: {err}")),
            }
        }
    }

    fn finish(mut self, report: &mut CheckReport) {
        let mut reachable = 0u64;
        let mut free = 0u64;
        self.visitor.enter(Part::Leaked);
        for id in 2..self.page_count {
            match self.owner.get(&id) {
                None => self.violation(Some(id), "leaked: neither reachable nor free"),
                Some(&"free") | Some(&"free-list") | Some(&"pending") => free += 1,
                Some(_) => reachable += 1,
            }
        }
        report.reachable_pages = reachable;
        report.free_pages = free;
        report.violations = self.violations;
    }
}

/// All leaf entries of a tree, in order, read through `load` (for the tree of trees).
fn collect_entries(load: &Loader<'_>, root: PageId) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![(root, 0usize)];
    while let Some((id, depth)) = stack.pop() {
        if id == 0 {
            continue;
        }
        if depth > MAX_DEPTH {
            return Err(PagerError::corrupt(id, "tree too deep"));
        }
        let buf = load(id)?;
        let node = NodeRef::new(&buf, id)?;
        if node.is_leaf() {
            for i in 0..node.len() {
                if let LeafValue::Inline(value) = node.leaf_value(i)? {
                    out.push((node.key(i)?.to_vec(), value.to_vec()));
                }
            }
        } else {
            for i in (0..node.len()).rev() {
                stack.push((node.child(i)?, depth + 1));
            }
        }
    }
    Ok(out)
}

/// Every node and overflow page of a tree (for dropping it).
pub fn collect_tree_pages(pool: &BufferPool, root: PageId, pages: &mut Vec<PageId>) -> Result<()> {
    let mut stack = vec![(root, 0usize)];
    while let Some((id, depth)) = stack.pop() {
        if id == 0 {
            continue;
        }
        if depth > MAX_DEPTH {
            return Err(PagerError::corrupt(id, "tree too deep"));
        }
        pages.push(id);
        let page = pool.get(id)?;
        let buf = page.read();
        let node = NodeRef::new(&buf, id)?;
        for i in 0..node.len() {
            if node.is_leaf() {
                if let LeafValue::Overflow { len, first } = node.leaf_value(i)? {
                    overflow::visit_chain(pool, first, len, |overflow_id, _| {
                        pages.push(overflow_id)
                    })?;
                }
            } else {
                stack.push((node.child(i)?, depth + 1));
            }
        }
    }
    Ok(())
}

/// Check the durable state of a data file, reading every page from disk (nothing is cached,
/// nothing is written).
pub fn check_file(pool: &BufferPool, meta: &Meta) -> CheckReport {
    walk_file(pool, meta, &mut ())
}

/// [`check_file`], telling `visitor` what the walk meets.
pub fn walk_file(pool: &BufferPool, meta: &Meta, visitor: &mut dyn Visitor) -> CheckReport {
    let load = |id: PageId| pool.read_from_disk(id);
    let mut walker = Walker {
        load: &load,
        page_size: meta.page_size as usize,
        page_count: meta.page_count,
        owner: HashMap::new(),
        violations: Vec::new(),
        visitor,
    };
    let mut report = CheckReport {
        page_size: meta.page_size as u64,
        page_count: meta.page_count,
        ..CheckReport::default()
    };
    walker.walk_all(meta.root, meta.tree_count, &mut report);
    walker.visitor.enter(Part::Free);
    let mut next = meta.freelist_root;
    let mut listed = 0u64;
    while next != 0 {
        if !walker.mark(next, "free-list") {
            break;
        }
        match pool
            .read_from_disk(next)
            .and_then(|buf| decode_freelist_page(&buf, next, meta.page_count))
        {
            Ok((ids, following)) => {
                for id in ids {
                    listed += 1;
                    walker.mark(id, "free");
                }
                next = following;
            }
            Err(err) => {
                walker.damaged(next, err.to_string());
                break;
            }
        }
    }
    if listed != meta.freelist_len {
        walker.violation(
            None,
            format!(
                "free list holds {listed} ids, the meta page says {}",
                meta.freelist_len
            ),
        );
    }
    walker.finish(&mut report);
    report
}

impl PageStore {
    /// Check the newest published version and the allocator's accounting of every other page.
    /// Write transactions wait while it runs.
    pub fn check(&self) -> CheckReport {
        self.with_allocator(|alloc| {
            let head = self.head();
            let pool = self.pool();
            let load = |id: PageId| {
                pool.get(id)
                    .map(|page| AlignedBuf::from_slice(&page.read()))
            };
            let mut walker = Walker {
                load: &load,
                page_size: self.page_size(),
                page_count: alloc.page_count(),
                owner: HashMap::new(),
                violations: Vec::new(),
                visitor: &mut (),
            };
            let mut report = CheckReport {
                page_size: self.page_size() as u64,
                page_count: alloc.page_count(),
                ..CheckReport::default()
            };
            walker.walk_all(head.root, head.tree_count, &mut report);
            walker.visitor.enter(Part::Free);
            for (id, what) in alloc.unreachable_pages() {
                walker.mark(id, what);
            }
            walker.finish(&mut report);
            report
        })
    }
}

/// The cell area of a node whose cells all decode: no two cells share a byte, and the area
/// from the cell start to the page's end is exactly its live cells plus the dead bytes the
/// header counts as fragmented (what `used_bytes_fast` and the free-space check rely on). Two
/// cells that overlap read fine one by one, so only this catches a write that landed on
/// another cell.
fn cell_layout(node: &NodeRef<'_>, page: &[u8]) -> std::result::Result<(), String> {
    let Some(header) = node::RawNodeHeader::parse(page) else {
        return Err("node shorter than its header".into());
    };
    let mut cells = Vec::with_capacity(node.len());
    for i in 0..node.len() {
        let (Some(at), Ok(cell)) = (node::slot_offset(page, i), node.cell(i)) else {
            return Ok(()); // reported as damage by the walk
        };
        cells.push((usize::from(at), cell.len(), i));
    }
    cells.sort_unstable();
    for pair in cells.windows(2) {
        let ((at, len, i), (next, _, j)) = (pair[0], pair[1]);
        if at + len > next {
            return Err(format!(
                "cells {i} and {j} overlap (at {at} for {len} bytes, and at {next})"
            ));
        }
    }
    let area = page.len().saturating_sub(header.cell_start as usize);
    let live: usize = cells.iter().map(|&(_, len, _)| len).sum();
    let fragmented = header.fragmented as usize;
    if live + fragmented != area {
        return Err(format!(
            "cell area of {area} bytes holds {live} in cells and {fragmented} counted as fragmented"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::node::{encode_leaf_cell, NodeMut};

    /// A leaf with cells "a" and "b" whose second slot is then pointed at `b_at` (None: where
    /// its cell was written), and whose fragmented count is raised by `extra_fragmented`.
    fn leaf(b_at: impl Fn(usize) -> Option<usize>, extra_fragmented: u32) -> Vec<u8> {
        let mut page = vec![0u8; 4096];
        let inner = encode_leaf_cell(b"b", LeafValue::Inline(b"x"));
        let mut node = NodeMut::init(&mut page, PageType::Leaf, 5, 1);
        assert!(node.insert_cell(0, &encode_leaf_cell(b"a", LeafValue::Inline(&inner))));
        assert!(node.insert_cell(1, &inner));
        let a_at = usize::from(node::slot_offset(&page, 0).expect("slot 0"));
        if let Some(at) = b_at(a_at) {
            page[46..48].copy_from_slice(&(at as u16).to_le_bytes());
        }
        let fragmented = u32::from_le_bytes(page[32..36].try_into().expect("4 bytes"));
        page[32..36].copy_from_slice(&(fragmented + extra_fragmented).to_le_bytes());
        page
    }

    #[test]
    fn a_sound_node_has_a_sound_cell_area() {
        let page = leaf(|_| None, 0);
        let node = NodeRef::new(&page, 5).expect("node");
        assert_eq!(cell_layout(&node, &page), Ok(()));
    }

    #[test]
    fn a_cell_inside_another_is_found_though_both_read_fine() {
        // Cell "b" re-pointed at the copy of itself inside cell "a"'s value (past a's 7-byte
        // header and 1-byte key): each cell decodes, keys are in order, the area adds up.
        let page = leaf(|a_at| Some(a_at + 8), 0);
        let node = NodeRef::new(&page, 5).expect("node");
        assert_eq!(node.key(1).expect("key"), b"b");
        assert_eq!(node.verify_heads(), Ok(()));
        let err = cell_layout(&node, &page).expect_err("overlap");
        assert!(err.contains("overlap"), "{err}");
    }

    #[test]
    fn a_cell_area_that_does_not_add_up_is_found() {
        let page = leaf(|_| None, 12);
        let node = NodeRef::new(&page, 5).expect("node");
        let err = cell_layout(&node, &page).expect_err("accounting");
        assert!(err.contains("fragmented"), "{err}");
    }
}
