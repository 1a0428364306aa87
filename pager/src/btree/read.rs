//! Reads of a tree: point lookups (through the page table, or lock-free through the published
//! pages for a snapshot's committed tree), ranks and counts.

use std::ops::Bound;

use super::node::{LeafValue, NodeRef};
use super::{depth_error, MAX_DEPTH};
use crate::error::Result;
use crate::overflow;
use crate::page::{self, PageId};
use crate::pool::{BufferPool, PageRef, PublishedPages};

/// Hand a leaf value to `read`: in place when inline, assembled from its chain when not.
pub(crate) fn with_leaf_value<R>(
    pool: &BufferPool,
    value: LeafValue<'_>,
    read: impl FnOnce(&[u8]) -> R,
) -> Result<R> {
    match value {
        LeafValue::Inline(bytes) => Ok(read(bytes)),
        LeafValue::Overflow { len, first } => Ok(read(&overflow::read_chain(pool, first, len)?)),
    }
}

/// Look `key` up in the tree rooted at `root`.
pub fn get(pool: &BufferPool, root: PageId, key: &[u8]) -> Result<Option<Vec<u8>>> {
    get_with(pool, root, key, <[u8]>::to_vec)
}

/// [`get`], handing the value to `read` where it lies instead of copying it out.
pub fn get_with<R>(
    pool: &BufferPool,
    root: PageId,
    key: &[u8],
    read: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>> {
    if root == 0 {
        return Ok(None);
    }
    get_from_with(pool, &pool.get(root)?, key, read)
}

/// Look `key` up starting at an already pinned root (a `TreeView` keeps its root pinned, so a
/// point read skips one page-table lookup and the root's shared reference count), handing the
/// value to `read` while its page is held (an overflow value is assembled first): a caller that
/// decodes the value skips a copy and an allocation.
pub fn get_from_with<R>(
    pool: &BufferPool,
    root: &PageRef,
    key: &[u8],
    read: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>> {
    descend_with(pool, root, key, read, |id| pool.get(id))
}

/// [`get_from_with`] for a committed tree (a snapshot's): first without a lock through the
/// published pages, then through the page table, publishing the pages it pins.
pub fn get_committed_with<R>(
    pool: &BufferPool,
    root: &PageRef,
    key: &[u8],
    read: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>> {
    let mut small = [0u8; SMALL_VALUE];
    let mut large = Vec::new();
    let lookup = |small: &mut [u8; SMALL_VALUE], large: &mut Vec<u8>| {
        pool.read_published(|pages| find_published(pages, root.id(), key, small, large))
    };
    let mut found = lookup(&mut small, &mut large);
    if let Some(Published::NeedsRoom(len)) = found {
        // A value past the stack copy: room is made outside the section (which allocates
        // nothing), and the version read is the same, so the second descent finds it again.
        large.reserve_exact(len);
        found = lookup(&mut small, &mut large);
    }
    match found {
        Some(Published::Absent) => Ok(None),
        Some(Published::Small(len)) => Ok(Some(read(&small[..len]))),
        Some(Published::Large) => Ok(Some(read(&large))),
        // The pages above were read: the locked descent goes on from the one not published.
        Some(Published::Missing(id)) if id != root.id() => {
            let page = pool.get_committed(id)?;
            descend_with(pool, &page, key, read, |id| pool.get_committed(id))
        }
        Some(Published::Missing(_) | Published::NeedsRoom(_)) | None => {
            descend_with(pool, root, key, read, |id| pool.get_committed(id))
        }
    }
}

fn descend_with<R>(
    pool: &BufferPool,
    root: &PageRef,
    key: &[u8],
    read: impl FnOnce(&[u8]) -> R,
    fetch: impl Fn(PageId) -> Result<PageRef>,
) -> Result<Option<R>> {
    let mut pinned: Option<PageRef> = None;
    let mut id = root.id();
    for _ in 0..MAX_DEPTH {
        let page = pinned.as_ref().unwrap_or(root);
        let buf = page.read();
        let node = NodeRef::new(&buf, id)?;
        if node.is_leaf() {
            return match node.search(key)? {
                Ok(i) => with_leaf_value(pool, node.leaf_value(i)?, read).map(Some),
                Err(_) => Ok(None),
            };
        }
        id = node.child(node.child_index(key)?)?;
        drop(buf);
        pinned = Some(fetch(id)?);
    }
    Err(depth_error(root.id()))
}

/// Values up to this size leave a lock-free read on the stack.
const SMALL_VALUE: usize = 256;

/// What a lock-free lookup found; the value itself was copied out of the page, because the
/// caller's `read` runs after the read section ends (it may take locks, or take long).
enum Published {
    Absent,
    Small(usize),
    Large,
    /// The value is this long: more than the stack copy and the room given.
    NeedsRoom(usize),
    /// This page on the way is not published (the key's path below it is unread).
    Missing(PageId),
}

/// The lock-free descent: `Missing` at a page not published (the caller's locked descent goes
/// on from there); `None` (the caller takes the locked path from the root, which also reports
/// any damage) when a node does not decode or the value overflows.
fn find_published(
    pages: &PublishedPages<'_>,
    root: PageId,
    key: &[u8],
    small: &mut [u8; SMALL_VALUE],
    large: &mut Vec<u8>,
) -> Option<Published> {
    let mut id = root;
    for _ in 0..MAX_DEPTH {
        let Some(bytes) = pages.page(id) else {
            return Some(Published::Missing(id));
        };
        // A frame always holds the page the table names; a mismatch would be a pool bug, and
        // the locked path reports it as damage.
        if page::page_id(bytes) != id {
            return None;
        }
        let node = NodeRef::new(bytes, id).ok()?;
        if node.is_leaf() {
            let Ok(i) = node.search(key).ok()? else {
                return Some(Published::Absent);
            };
            return match node.leaf_value(i).ok()? {
                LeafValue::Inline(bytes) if bytes.len() <= SMALL_VALUE => {
                    small[..bytes.len()].copy_from_slice(bytes);
                    Some(Published::Small(bytes.len()))
                }
                LeafValue::Inline(bytes) if bytes.len() <= large.capacity() => {
                    large.extend_from_slice(bytes);
                    Some(Published::Large)
                }
                LeafValue::Inline(bytes) => Some(Published::NeedsRoom(bytes.len())),
                LeafValue::Overflow { .. } => None,
            };
        }
        id = node.child(node.child_index(key).ok()?).ok()?;
    }
    None
}

/// Number of entries with keys below `bound` (`Included(k)`: ≤ k; `Excluded(k)`: < k).
pub fn rank(pool: &BufferPool, root: PageId, bound: Bound<&[u8]>) -> Result<u64> {
    let (key, inclusive) = match bound {
        Bound::Unbounded => return count_all(pool, root),
        Bound::Included(k) => (k, true),
        Bound::Excluded(k) => (k, false),
    };
    let mut id = root;
    let mut below = 0u64;
    if id == 0 {
        return Ok(0);
    }
    for _ in 0..MAX_DEPTH {
        let page = pool.get(id)?;
        let buf = page.read();
        let node = NodeRef::new(&buf, id)?;
        if node.is_leaf() {
            let pos = match node.search(key)? {
                Ok(i) if inclusive => i + 1,
                Ok(i) => i,
                Err(i) => i,
            };
            return Ok(below + pos as u64);
        }
        let i = node.child_index(key)?;
        for j in 0..i {
            below += node.child_count(j)?;
        }
        id = node.child(i)?;
    }
    Err(depth_error(root))
}

fn count_all(pool: &BufferPool, root: PageId) -> Result<u64> {
    if root == 0 {
        return Ok(0);
    }
    let page = pool.get(root)?;
    let buf = page.read();
    NodeRef::new(&buf, root)?.entry_count()
}
