//! Cursors: ordered iteration over a key range of one tree version, forwards or backwards.
//!
//! A cursor keeps the path from the root to its current leaf as pinned pages, so each step is a
//! slot read in the leaf, and moving to the next leaf climbs only as far as needed. The version
//! it reads must stay pinned by the caller (a [`crate::Snapshot`] or the write transaction).

use std::ops::Bound;
use std::sync::Arc;

use super::node::NodeRef;
use super::{depth_error, with_leaf_value, MAX_DEPTH};
use crate::error::Result;
use crate::page::PageId;
use crate::pool::{BufferPool, PageRef};

pub struct Cursor {
    pool: Arc<BufferPool>,
    root: PageId,
    /// Pages from the root to the current leaf, with the index taken (or current) in each.
    stack: Vec<(PageRef, usize)>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    started: bool,
    done: bool,
    /// The current leaf has another entry in the direction of travel (set by each step).
    more_in_leaf: bool,
}

/// Owned copy of a bound.
pub fn owned_bound(bound: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Cursor {
    pub fn new(
        pool: Arc<BufferPool>,
        root: PageId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Self {
        Cursor {
            pool,
            root,
            stack: Vec::new(),
            lower,
            upper,
            reverse,
            started: false,
            done: root == 0,
            more_in_leaf: false,
        }
    }

    /// Reposition so the next item is the first key ≥ `key` (forward) or the last ≤ `key`
    /// (backward), still within the cursor's bounds.
    pub fn seek(&mut self, key: &[u8]) {
        if self.reverse {
            self.upper = narrower_upper(std::mem::replace(&mut self.upper, Bound::Unbounded), key);
        } else {
            self.lower = narrower_lower(std::mem::replace(&mut self.lower, Bound::Unbounded), key);
        }
        self.stack.clear();
        self.started = false;
        self.done = self.root == 0;
    }

    /// Descend to the leaf position of the starting bound.
    fn start(&mut self) -> Result<()> {
        self.started = true;
        let bound = if self.reverse {
            self.upper.clone()
        } else {
            self.lower.clone()
        };
        let mut id = self.root;
        for _ in 0..MAX_DEPTH {
            let page = self.pool.get(id)?;
            let (is_leaf, index, child) = {
                let buf = page.read();
                let node = NodeRef::new(&buf, id)?;
                if node.is_leaf() {
                    let index = match (&bound, self.reverse) {
                        (Bound::Unbounded, false) => 0,
                        (Bound::Unbounded, true) => node.len() as isize - 1,
                        (Bound::Included(k), false) => position(node.search(k)?, 0),
                        (Bound::Excluded(k), false) => position(node.search(k)?, 1),
                        (Bound::Included(k), true) => match node.search(k)? {
                            Ok(i) => i as isize,
                            Err(i) => i as isize - 1,
                        },
                        (Bound::Excluded(k), true) => match node.search(k)? {
                            Ok(i) | Err(i) => i as isize - 1,
                        },
                    };
                    (true, index, 0)
                } else {
                    let i = match (&bound, self.reverse) {
                        (Bound::Unbounded, false) => 0,
                        (Bound::Unbounded, true) => node.len() - 1,
                        (Bound::Included(k) | Bound::Excluded(k), _) => node.child_index(k)?,
                    };
                    (false, i as isize, node.child(i)?)
                }
            };
            if is_leaf {
                let len = {
                    let buf = page.read();
                    NodeRef::new(&buf, id)?.len()
                };
                self.stack.push((page, 0));
                if index < 0 {
                    return self.step_leaf(false);
                }
                if index as usize >= len {
                    return self.step_leaf(true);
                }
                if let Some(top) = self.stack.last_mut() {
                    top.1 = index as usize;
                }
                return Ok(());
            }
            self.stack.push((page, index as usize));
            id = child;
        }
        Err(depth_error(self.root))
    }

    /// Move to the first (forward) or last (backward) slot of the neighbouring leaf; mark the
    /// cursor done at the end of the tree.
    fn step_leaf(&mut self, forward: bool) -> Result<()> {
        self.stack.pop();
        // Climb to the first ancestor with a sibling in the direction of travel.
        loop {
            let Some((page, index)) = self.stack.last_mut() else {
                self.done = true;
                return Ok(());
            };
            let len = {
                let buf = page.read();
                NodeRef::new(&buf, page.id())?.len()
            };
            if forward && *index + 1 < len {
                *index += 1;
                break;
            }
            if !forward && *index > 0 {
                *index -= 1;
                break;
            }
            self.stack.pop();
        }
        // Descend along the near edge.
        for _ in 0..MAX_DEPTH {
            let Some((page, index)) = self.stack.last() else {
                self.done = true;
                return Ok(());
            };
            let child = {
                let buf = page.read();
                NodeRef::new(&buf, page.id())?.child(*index)?
            };
            let child_page = self.pool.get(child)?;
            let (is_leaf, len) = {
                let buf = child_page.read();
                let node = NodeRef::new(&buf, child)?;
                (node.is_leaf(), node.len())
            };
            let edge = if forward { 0 } else { len.saturating_sub(1) };
            self.stack.push((child_page, edge));
            if is_leaf {
                if len == 0 {
                    return self.step_leaf(forward);
                }
                return Ok(());
            }
        }
        Err(depth_error(self.root))
    }

    /// Hand the entry at the current position to `read` (None past the cursor's bounds), and
    /// say whether the leaf holds another one in the direction of travel: one page read per
    /// step, and nothing copied unless `read` copies.
    #[inline]
    fn current_with<R>(&self, read: impl FnOnce(&[u8], &[u8]) -> R) -> Result<Option<(R, bool)>> {
        let Some((page, index)) = self.stack.last() else {
            return Ok(None);
        };
        let buf = page.read();
        let node = NodeRef::new(&buf, page.id())?;
        let key = node.key(*index)?;
        if !self.in_bounds(key) {
            return Ok(None);
        }
        let more_here = if self.reverse {
            *index > 0
        } else {
            *index + 1 < node.len()
        };
        let value = with_leaf_value(&self.pool, node.leaf_value(*index)?, |v| read(key, v))?;
        Ok(Some((value, more_here)))
    }

    fn advance(&mut self) -> Result<()> {
        let forward = !self.reverse;
        let more_here = self.more_in_leaf;
        let Some((_, index)) = self.stack.last_mut() else {
            self.done = true;
            return Ok(());
        };
        if more_here {
            if forward {
                *index += 1;
            } else {
                *index -= 1;
            }
            return Ok(());
        }
        self.step_leaf(forward)
    }

    fn in_bounds(&self, key: &[u8]) -> bool {
        if self.reverse {
            match &self.lower {
                Bound::Included(l) => key >= l.as_slice(),
                Bound::Excluded(l) => key > l.as_slice(),
                Bound::Unbounded => true,
            }
        } else {
            match &self.upper {
                Bound::Included(u) => key <= u.as_slice(),
                Bound::Excluded(u) => key < u.as_slice(),
                Bound::Unbounded => true,
            }
        }
    }

    /// The next entry, handed to `read` where it lies. After an error the cursor is done.
    #[inline]
    pub fn next_with<R>(&mut self, read: impl FnOnce(&[u8], &[u8]) -> R) -> Result<Option<R>> {
        let result = self.step_with(read);
        if result.is_err() {
            self.done = true;
            self.stack.clear();
        }
        result
    }

    #[inline]
    fn step_with<R>(&mut self, read: impl FnOnce(&[u8], &[u8]) -> R) -> Result<Option<R>> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.start()?;
        } else {
            self.advance()?;
        }
        if self.done {
            return Ok(None);
        }
        match self.current_with(read)? {
            Some((value, more_here)) => {
                self.more_in_leaf = more_here;
                Ok(Some(value))
            }
            None => {
                self.done = true;
                self.stack.clear();
                Ok(None)
            }
        }
    }

    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.next_with(|key, value| (key.to_vec(), value.to_vec()))
    }
}

fn position(found: std::result::Result<usize, usize>, skip_equal: usize) -> isize {
    match found {
        Ok(i) => (i + skip_equal) as isize,
        Err(i) => i as isize,
    }
}

/// The stricter of an existing lower bound and "at least `key`".
fn narrower_lower(bound: Bound<Vec<u8>>, key: &[u8]) -> Bound<Vec<u8>> {
    match &bound {
        Bound::Included(l) | Bound::Excluded(l) if l.as_slice() >= key => bound,
        _ => Bound::Included(key.to_vec()),
    }
}

/// The stricter of an existing upper bound and "at most `key`".
fn narrower_upper(bound: Bound<Vec<u8>>, key: &[u8]) -> Bound<Vec<u8>> {
    match &bound {
        Bound::Included(u) | Bound::Excluded(u) if u.as_slice() <= key => bound,
        _ => Bound::Included(key.to_vec()),
    }
}

impl Iterator for Cursor {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}
