//! One read interface over named trees, implemented by a snapshot and by a write transaction,
//! so every reader above the pager (the owners of each kind of stored data, the query
//! executor) is written once for both.
//!
//! An implementor gives [`ReadTrees::tree`]; every other read is built on the view it returns.
//! A missing tree reads as empty: no key, an empty range, a count and length of zero.

use std::ops::Bound;

use super::{Range, TreeView};
use crate::error::Result;

pub trait ReadTrees {
    /// The tree `name` as this reader sees it, or None when it does not exist.
    fn tree(&self, name: &str) -> Result<Option<TreeView<'_>>>;

    /// A range with no entries, for a tree that does not exist.
    fn empty_range(&self) -> Range<'_>;

    /// The value of `key` in `tree`, handed to `read` where it lies (decode without a copy).
    fn get_with<R>(
        &self,
        tree: &str,
        key: &[u8],
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>> {
        match self.tree(tree)? {
            Some(view) => view.get_with(key, read),
            None => Ok(None),
        }
    }

    /// The value of `key` in `tree`.
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(tree, key, <[u8]>::to_vec)
    }

    /// Entries of `tree` within the bounds, in key order (or reverse order).
    fn range(
        &self,
        tree: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<Range<'_>> {
        Ok(match self.tree(tree)? {
            Some(view) => view.range(lower, upper, reverse),
            None => self.empty_range(),
        })
    }

    /// Entries of `tree` whose key starts with `prefix`.
    fn prefix(&self, tree: &str, prefix: &[u8], reverse: bool) -> Result<Range<'_>> {
        Ok(match self.tree(tree)? {
            Some(view) => view.prefix(prefix, reverse),
            None => self.empty_range(),
        })
    }

    /// Entries of `tree` within the bounds, counted in O(height).
    fn count(&self, tree: &str, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        match self.tree(tree)? {
            Some(view) => view.count(lower, upper),
            None => Ok(0),
        }
    }

    /// Entries in `tree`.
    fn len(&self, tree: &str) -> Result<u64> {
        Ok(self.tree(tree)?.map_or(0, |view| view.len()))
    }
}

/// Borrow an owned bound.
pub fn bound_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest key greater than every key with this prefix (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
