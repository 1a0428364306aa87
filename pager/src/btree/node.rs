//! B+tree node pages (branch and leaf): a slotted layout.
//!
//! After the common 24-byte page header (little-endian):
//!
//! | offset | size  | field                                                        |
//! |-------:|------:|--------------------------------------------------------------|
//! | 24     | 2     | cell count `n`                                               |
//! | 26     | 2     | head offset `h`: every key (but a branch's first) starts with |
//! |        |       | the same `h` bytes; heads are taken after them (0 in files   |
//! |        |       | written before it existed: heads from the first byte)        |
//! | 28     | 4     | start of the cell area (cells fill the page from its end)    |
//! | 32     | 4     | fragmented bytes: dead cells inside the cell area            |
//! | 36     | 4     | reserved, zero                                               |
//! | 40     | 6 × n | slot array, in key order: offset of cell `i` (u16) and the   |
//! |        |       | head of its key (u32: its bytes `h..h+4`, big-endian, zero- |
//! |        |       | padded)                                                      |
//!
//! Leaf cell: `key_len u16 ‖ flags u8 ‖ value_len u32 ‖ key ‖ value` when the value is inline,
//! or `… ‖ key ‖ first overflow page u64` when flag bit 0 is set (the value lives in an overflow
//! chain of `value_len` bytes).
//!
//! Branch cell: `key_len u16 ‖ child u64 ‖ count u64 ‖ key`. Cell `i` leads to the subtree of
//! keys `>= key(i)` and `< key(i+1)`; the key of cell 0 is empty and stands for "−∞". `count` is
//! the number of entries in the child's subtree, so counting a range costs O(height).
//!
//! Binary search compares the heads first, so most probes read only the contiguous slot
//! array; a cell is read only when the heads are equal (measured: half of a hot read was
//! cache misses on cells). Zero padding makes a strict head order imply the key order. Heads
//! start after the node's common prefix: keys such as encoded integers share their first bytes
//! (a 9-byte integer key below 2^24 has the same first four), where heads taken from the first
//! byte were all equal and every probe compared whole keys. A search compares the probe with
//! the prefix once, then heads. The prefix only shrinks on insert (rewriting the heads); it is
//! recomputed when a node is built from cells (splits, merges, bulk loads).
//!
//! Every accessor bounds-checks against the page and returns `Corrupt` rather than panicking, so
//! a damaged page (or arbitrary bytes) can never crash a read.

use crate::error::{PagerError, Result};
use crate::page::{
    self, read_u16, read_u32, read_u64, try_read_u16, try_read_u32, write_u16, write_u32,
    write_u64, PageId, PageType,
};

pub const NODE_HEADER_BYTES: usize = 40;
pub const SLOT_BYTES: usize = 6;
pub const LEAF_CELL_OVERHEAD: usize = 7;
pub const BRANCH_CELL_OVERHEAD: usize = 18;
pub const OVERFLOW_FLAG: u8 = 1;

// Where each header field of the table above sits: written once, for the writer, the checked
// view and the raw view.
const COUNT_AT: usize = 24;
const HEAD_OFFSET_AT: usize = 26;
const CELL_START_AT: usize = 28;
const FRAGMENTED_AT: usize = 32;
/// Where a slot's key head sits inside the slot (its cell offset comes first).
const SLOT_HEAD_AT: usize = 2;

/// Where slot `i` sits in the page; for `i` = the cell count, where the slot array ends.
const fn slot_at(i: usize) -> usize {
    NODE_HEADER_BYTES + i * SLOT_BYTES
}

/// Bytes of a node available to slots and cells.
pub fn usable_bytes(page_size: usize) -> usize {
    page_size - NODE_HEADER_BYTES
}

/// The largest cell (with its slot) a node accepts: a quarter of the usable space, so that any
/// node holds at least four cells and a split or merge always has room.
pub fn max_cell_bytes(page_size: usize) -> usize {
    usable_bytes(page_size) / 4
}

/// The longest key for a page size (it must fit in a branch cell and in a leaf cell that
/// points at an overflow chain).
pub fn max_key_bytes(page_size: usize) -> usize {
    max_cell_bytes(page_size) - SLOT_BYTES - BRANCH_CELL_OVERHEAD.max(LEAF_CELL_OVERHEAD + 8)
}

/// The header fields of a node page as stored, unchecked (neither the type nor the fields
/// against each other or the page): for tools that show damaged pages; [`NodeRef::new`] reads
/// through it too, then checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawNodeHeader {
    /// Cell count `n`.
    pub count: u16,
    /// Bytes every key (but a branch's first) shares; heads are taken after them.
    pub head_offset: u16,
    /// Start of the cell area.
    pub cell_start: u32,
    /// Dead bytes inside the cell area.
    pub fragmented: u32,
}

impl RawNodeHeader {
    /// None when `page` is shorter than a node header.
    pub fn parse(page: &[u8]) -> Option<RawNodeHeader> {
        if page.len() < NODE_HEADER_BYTES {
            return None;
        }
        Some(RawNodeHeader {
            count: try_read_u16(page, COUNT_AT)?,
            head_offset: try_read_u16(page, HEAD_OFFSET_AT)?,
            cell_start: try_read_u32(page, CELL_START_AT)?,
            fragmented: try_read_u32(page, FRAGMENTED_AT)?,
        })
    }

    /// Where the slot array ends, by the count (whether or not the page is that long).
    pub fn slots_end(&self) -> usize {
        slot_at(self.count as usize)
    }
}

/// The cell offset stored in slot `i`, unchecked against the count or the cell area; None when
/// the slot lies beyond the end of `page`.
pub fn slot_offset(page: &[u8], i: usize) -> Option<u16> {
    // Past this bound the slot cannot be in the page, and `slot_at` could overflow.
    if i > page.len() / SLOT_BYTES {
        return None;
    }
    try_read_u16(page, slot_at(i))
}

/// A leaf's value: inline bytes or a reference to an overflow chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafValue<'a> {
    Inline(&'a [u8]),
    Overflow { len: u64, first: PageId },
}

pub fn encode_leaf_cell(key: &[u8], value: LeafValue<'_>) -> Vec<u8> {
    let tail_len = match value {
        LeafValue::Inline(v) => v.len(),
        LeafValue::Overflow { .. } => 8,
    };
    let mut cell = Vec::with_capacity(LEAF_CELL_OVERHEAD + key.len() + tail_len);
    encode_leaf_cell_into(&mut cell, key, value);
    cell
}

/// [`encode_leaf_cell`], appending the cell to `out` (a merge builds many cells in one buffer).
pub fn encode_leaf_cell_into(out: &mut Vec<u8>, key: &[u8], value: LeafValue<'_>) {
    let (flags, len) = match value {
        LeafValue::Inline(v) => (0u8, v.len() as u32),
        LeafValue::Overflow { len, .. } => (OVERFLOW_FLAG, len as u32),
    };
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.push(flags);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key);
    match value {
        LeafValue::Inline(v) => out.extend_from_slice(v),
        LeafValue::Overflow { first, .. } => out.extend_from_slice(&first.to_le_bytes()),
    }
}

pub fn encode_branch_cell(key: &[u8], child: PageId, count: u64) -> Vec<u8> {
    let mut cell = Vec::with_capacity(BRANCH_CELL_OVERHEAD + key.len());
    cell.extend_from_slice(&(key.len() as u16).to_le_bytes());
    cell.extend_from_slice(&child.to_le_bytes());
    cell.extend_from_slice(&count.to_le_bytes());
    cell.extend_from_slice(key);
    cell
}

/// Bytes `offset..offset + 4` of a key as a big-endian number, zero-padded: among keys that
/// share their first `offset` bytes, heads compare like keys whenever they differ.
pub fn key_head(key: &[u8], offset: usize) -> u32 {
    let tail = key.get(offset..).unwrap_or(&[]);
    // Four bytes at hand: a fixed-size load. A variable-length copy compiles to a call to
    // `memcpy`, which was 6 % of a hot get (perf, W4), paid on every level of the descent.
    if let Some(four) = tail.first_chunk::<4>() {
        return u32::from_be_bytes(*four);
    }
    let mut head = [0u8; 4];
    for (to, from) in head.iter_mut().zip(tail) {
        *to = *from;
    }
    u32::from_be_bytes(head)
}

/// Length of the common prefix of two keys.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The key inside an encoded cell of a node of type byte `kind`.
fn cell_key(kind: u8, cell: &[u8]) -> &[u8] {
    let overhead = if kind == PageType::Leaf as u8 {
        LEAF_CELL_OVERHEAD
    } else {
        BRANCH_CELL_OVERHEAD
    };
    let key_len = read_u16(cell, 0) as usize;
    cell.get(overhead..overhead + key_len).unwrap_or(&[])
}

/// A read-only view of a node page.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    page: &'a [u8],
    id: PageId,
    kind: PageType,
    count: usize,
    head_offset: usize,
    /// No live cell lies below it (the free middle's content is unspecified, FORMAT.md).
    cell_start: usize,
}

impl<'a> NodeRef<'a> {
    /// Check the header of page `id` and view it as a node.
    pub fn new(page: &'a [u8], id: PageId) -> Result<Self> {
        let header = RawNodeHeader::parse(page)
            .ok_or_else(|| PagerError::corrupt(id, "node shorter than its header"))?;
        let kind = match PageType::from_byte(page::page_type_byte(page)) {
            Some(kind @ (PageType::Branch | PageType::Leaf)) => kind,
            _ => {
                return Err(PagerError::WrongPageType {
                    page: id,
                    expected: PageType::Leaf,
                    found: page::page_type_byte(page),
                })
            }
        };
        let count = header.count as usize;
        let cell_start = header.cell_start as usize;
        let slots_end = header.slots_end();
        if slots_end > cell_start || cell_start > page.len() {
            return Err(PagerError::corrupt(
                id,
                format!("{count} slots end at {slots_end}, cell area starts at {cell_start}"),
            ));
        }
        Ok(NodeRef {
            page,
            id,
            kind,
            count,
            head_offset: header.head_offset as usize,
            cell_start,
        })
    }

    /// Bytes every key of the node (but a branch's first) starts with; heads follow them.
    pub fn head_offset(&self) -> usize {
        self.head_offset
    }

    /// Check the search aids: every key shares the prefix the head offset claims, and every
    /// slot's head is its key's. (A wrong head would make searches miss keys silently.)
    pub fn verify_heads(&self) -> std::result::Result<(), String> {
        let h = self.head_offset;
        let first = self.first_keyed();
        let prefix = match self.count > first {
            true => self.key(first).map_err(|e| e.to_string())?,
            false => &[][..],
        };
        for i in 0..self.count {
            let key = self.key(i).map_err(|e| e.to_string())?;
            if i >= first && (key.len() < h || key[..h] != prefix[..h.min(prefix.len())]) {
                return Err(format!(
                    "key of cell {i} does not start with the node's {h}-byte prefix"
                ));
            }
            let slot = read_u32(self.page, slot_at(i) + SLOT_HEAD_AT);
            if i >= first && slot != key_head(key, h) {
                return Err(format!("slot {i} holds a head that is not its key's"));
            }
        }
        Ok(())
    }

    /// Index of the first cell whose key counts (a branch's first key stands for −∞).
    fn first_keyed(&self) -> usize {
        usize::from(!self.is_leaf())
    }

    /// Where `key` stands against the node's common prefix: `Less` / `Greater` when it sorts
    /// before / after every key of the node, `Equal` when it starts with the prefix (and heads
    /// decide).
    fn against_prefix(&self, key: &[u8]) -> Result<std::cmp::Ordering> {
        let h = self.head_offset;
        let first = self.first_keyed();
        if h == 0 || self.count <= first {
            return Ok(std::cmp::Ordering::Equal);
        }
        let prefix = self
            .key(first)?
            .get(..h)
            .ok_or_else(|| self.corrupt(format!("a key shorter than the head offset {h}")))?;
        Ok(match key.get(..h) {
            Some(own) => own.cmp(prefix),
            // A probe shorter than the prefix: before every key if it is a prefix of it.
            None => match key.cmp(&prefix[..key.len()]) {
                std::cmp::Ordering::Greater => std::cmp::Ordering::Greater,
                _ => std::cmp::Ordering::Less,
            },
        })
    }

    pub fn id(&self) -> PageId {
        self.id
    }
    pub fn kind(&self) -> PageType {
        self.kind
    }
    pub fn is_leaf(&self) -> bool {
        self.kind == PageType::Leaf
    }
    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn corrupt(&self, reason: String) -> PagerError {
        PagerError::corrupt(self.id, reason)
    }

    /// The bytes of cell `i`, bounds-checked.
    pub fn cell(&self, i: usize) -> Result<&'a [u8]> {
        if i >= self.count {
            return Err(self.corrupt(format!("cell {i} of {}", self.count)));
        }
        let off = read_u16(self.page, slot_at(i)) as usize;
        let overhead = match self.kind {
            PageType::Leaf => LEAF_CELL_OVERHEAD,
            _ => BRANCH_CELL_OVERHEAD,
        };
        if off < self.cell_start || off + overhead > self.page.len() {
            return Err(self.corrupt(format!("cell {i} at offset {off} outside the cell area")));
        }
        let key_len = read_u16(self.page, off) as usize;
        let len = match self.kind {
            PageType::Leaf => {
                let flags = self.page[off + 2];
                let tail = if flags & OVERFLOW_FLAG != 0 {
                    8
                } else {
                    read_u32(self.page, off + 3) as usize
                };
                LEAF_CELL_OVERHEAD + key_len + tail
            }
            _ => BRANCH_CELL_OVERHEAD + key_len,
        };
        self.page.get(off..off + len).ok_or_else(|| {
            self.corrupt(format!(
                "cell {i} of {len} bytes at {off} overruns the page"
            ))
        })
    }

    /// The key of cell `i`, reading only the slot, the key length and the key (the search
    /// path needs nothing else), bounds-checked against the page.
    pub fn key(&self, i: usize) -> Result<&'a [u8]> {
        if i >= self.count {
            return Err(self.corrupt(format!("cell {i} of {}", self.count)));
        }
        let off = read_u16(self.page, slot_at(i)) as usize;
        let overhead = if self.kind == PageType::Leaf {
            LEAF_CELL_OVERHEAD
        } else {
            BRANCH_CELL_OVERHEAD
        };
        if off < self.cell_start || off + overhead > self.page.len() {
            return Err(self.corrupt(format!("cell {i} at offset {off} outside the cell area")));
        }
        let key_len = read_u16(self.page, off) as usize;
        self.page
            .get(off + overhead..off + overhead + key_len)
            .ok_or_else(|| self.corrupt(format!("key of cell {i} overruns the page")))
    }

    pub fn leaf_value(&self, i: usize) -> Result<LeafValue<'a>> {
        let cell = self.cell(i)?;
        if !self.is_leaf() {
            return Err(self.corrupt("value asked of a branch".into()));
        }
        let key_len = read_u16(cell, 0) as usize;
        let tail = &cell[LEAF_CELL_OVERHEAD + key_len..];
        if cell[2] & OVERFLOW_FLAG != 0 {
            Ok(LeafValue::Overflow {
                len: read_u32(cell, 3) as u64,
                first: read_u64(tail, 0),
            })
        } else {
            Ok(LeafValue::Inline(tail))
        }
    }

    pub fn child(&self, i: usize) -> Result<PageId> {
        let cell = self.cell(i)?;
        if self.is_leaf() {
            return Err(self.corrupt("child asked of a leaf".into()));
        }
        Ok(read_u64(cell, 2))
    }

    pub fn child_count(&self, i: usize) -> Result<u64> {
        let cell = self.cell(i)?;
        if self.is_leaf() {
            return Err(self.corrupt("count asked of a leaf".into()));
        }
        Ok(read_u64(cell, 10))
    }

    /// Leaf: `Ok(i)` where `key` is, or `Err(i)` where it would go.
    ///
    /// The heads are searched first as if `key` shared the node's prefix: a whole-key match is
    /// right whatever the prefix, so a key that is there is found without reading the prefix
    /// from the first key (a cache line fewer per node on a cold tree). Only a miss compares
    /// `key` with the prefix, which places it before or after every key when it does not share
    /// it, and otherwise confirms the heads' answer.
    pub fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let by_heads = self.search_by_heads(key)?;
        if by_heads.is_ok() {
            return Ok(by_heads);
        }
        Ok(match self.against_prefix(key)? {
            std::cmp::Ordering::Less => Err(0),
            std::cmp::Ordering::Greater => Err(self.count),
            std::cmp::Ordering::Equal => by_heads,
        })
    }

    /// Binary search by heads, whole keys compared where heads tie: exact once `key` is known
    /// to share the node's prefix.
    fn search_by_heads(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let head = key_head(key, self.head_offset);
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.compare_at(mid, key, head)? {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// Order of cell `i`'s key against `key` (whose head is `head`), by heads when they differ.
    fn compare_at(&self, i: usize, key: &[u8], head: u32) -> Result<std::cmp::Ordering> {
        let slot_head = read_u32(self.page, slot_at(i) + SLOT_HEAD_AT);
        if slot_head != head {
            return Ok(slot_head.cmp(&head));
        }
        Ok(self.key(i)?.cmp(key))
    }

    /// Branch: the index of the child whose subtree covers `key`.
    pub fn child_index(&self, key: &[u8]) -> Result<usize> {
        if self.count == 0 {
            return Err(self.corrupt("empty branch".into()));
        }
        // Last cell with key <= `key`; cell 0 is −∞.
        match self.against_prefix(key)? {
            std::cmp::Ordering::Less => return Ok(0),
            std::cmp::Ordering::Greater => return Ok(self.count - 1),
            std::cmp::Ordering::Equal => {}
        }
        let head = key_head(key, self.head_offset);
        let (mut lo, mut hi) = (1usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.compare_at(mid, key, head)? != std::cmp::Ordering::Greater {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo - 1)
    }

    /// Bytes used by slots and live cells, from the header alone (O(1)).
    pub fn used_bytes_fast(&self) -> usize {
        let cell_start = read_u32(self.page, CELL_START_AT) as usize;
        let fragmented = read_u32(self.page, FRAGMENTED_AT) as usize;
        let gap = cell_start - slot_at(self.count);
        usable_bytes(self.page.len()).saturating_sub(gap + fragmented)
    }

    /// Bytes used by slots and live cells, summed cell by cell.
    pub fn used_bytes(&self) -> Result<usize> {
        let mut used = 0;
        for i in 0..self.count {
            used += self.cell(i)?.len() + SLOT_BYTES;
        }
        Ok(used)
    }

    /// Sum of the children's counts (branch) or the cell count (leaf).
    pub fn entry_count(&self) -> Result<u64> {
        if self.is_leaf() {
            return Ok(self.count as u64);
        }
        let mut total = 0u64;
        for i in 0..self.count {
            total = total.saturating_add(self.child_count(i)?);
        }
        Ok(total)
    }
}

/// Writing into a node page the current transaction owns.
pub struct NodeMut<'a> {
    page: &'a mut [u8],
}

impl<'a> NodeMut<'a> {
    /// Start an empty node in `page`.
    pub fn init(page: &'a mut [u8], kind: PageType, id: PageId, seq: u64) -> Self {
        page.fill(0);
        page::init_header(page, kind, id, seq);
        let len = page.len() as u32;
        write_u32(page, CELL_START_AT, len);
        NodeMut { page }
    }

    /// A node already laid out (e.g. a copy of a published page).
    pub fn wrap(page: &'a mut [u8]) -> Self {
        NodeMut { page }
    }

    fn count(&self) -> usize {
        read_u16(self.page, COUNT_AT) as usize
    }
    fn cell_start(&self) -> usize {
        read_u32(self.page, CELL_START_AT) as usize
    }
    fn fragmented(&self) -> usize {
        read_u32(self.page, FRAGMENTED_AT) as usize
    }

    /// Contiguous space between the slots and the cell area (none on a damaged node whose
    /// cells reach into its slots).
    fn gap(&self) -> usize {
        self.cell_start().saturating_sub(slot_at(self.count()))
    }

    /// Space a new cell (plus its slot) may use, after compaction if needed.
    pub fn free_bytes(&self) -> usize {
        self.gap() + self.fragmented()
    }

    fn slot(&self, i: usize) -> usize {
        read_u16(self.page, slot_at(i)) as usize
    }

    fn is_branch(&self) -> bool {
        page::page_type_byte(self.page) == PageType::Branch as u8
    }

    fn head_offset(&self) -> usize {
        read_u16(self.page, HEAD_OFFSET_AT) as usize
    }

    /// The key of cell `i` (empty if the cell is damaged: heads are only a search aid, and the
    /// checker reports damaged cells).
    fn key_at(&self, i: usize) -> &[u8] {
        let off = self.slot(i);
        self.page.get(off..).map_or(&[][..], |cell| {
            cell_key(page::page_type_byte(self.page), cell)
        })
    }

    /// Take heads after `offset` bytes: rewrite every slot's head.
    fn set_head_offset(&mut self, offset: usize) {
        write_u16(self.page, HEAD_OFFSET_AT, offset as u16);
        for i in 0..self.count() {
            let head = key_head(self.key_at(i), offset);
            write_u32(self.page, slot_at(i) + SLOT_HEAD_AT, head);
        }
    }

    /// Make the head offset the length of the prefix all keys share (after the node was filled
    /// from cells: a split or merge can lengthen it).
    pub fn refresh_head_offset(&mut self) {
        let first = usize::from(self.is_branch());
        let n = self.count();
        let shared = if n >= first + 2 {
            common_prefix(self.key_at(first), self.key_at(n - 1))
        } else {
            0
        };
        let shared = shared.min(u16::MAX as usize);
        if shared != self.head_offset() {
            self.set_head_offset(shared);
        }
    }

    /// Insert `cell` as cell `i`; false when it does not fit, the node's keys, values and
    /// heads then unchanged (compaction may have re-laid its cells).
    pub fn insert_cell(&mut self, i: usize, cell: &[u8]) -> bool {
        let need = cell.len() + SLOT_BYTES;
        if need > self.free_bytes() {
            return false;
        }
        if need > self.gap() {
            self.compact();
            // Compaction can fail to make the room the header promised on a damaged node
            // (a cell that does not decode, or cells that overlap): no room after all.
            if need > self.gap() {
                return false;
            }
        }
        // A key that does not share the node's prefix shortens it (a branch's first cell
        // stands for −∞ and does not count).
        let keyed = !(self.is_branch() && i == 0);
        let h = self.head_offset();
        if keyed && h > 0 {
            let first = usize::from(self.is_branch());
            let shared = if self.count() > first {
                common_prefix(
                    cell_key(page::page_type_byte(self.page), cell),
                    self.key_at(first),
                )
                .min(h)
            } else {
                0
            };
            if shared < h {
                self.set_head_offset(shared);
            }
        }
        let n = self.count();
        debug_assert!(i <= n);
        let start = self.cell_start() - cell.len();
        self.page[start..start + cell.len()].copy_from_slice(cell);
        let slots = slot_at(i);
        let slots_end = slot_at(n);
        self.page.copy_within(slots..slots_end, slots + SLOT_BYTES);
        write_u16(self.page, slots, start as u16);
        let head = key_head(
            cell_key(page::page_type_byte(self.page), cell),
            self.head_offset(),
        );
        write_u32(self.page, slots + SLOT_HEAD_AT, head);
        write_u16(self.page, COUNT_AT, (n + 1) as u16);
        write_u32(self.page, CELL_START_AT, start as u32);
        true
    }

    /// Remove cell `i` of `len` bytes (its bytes become fragmented space).
    pub fn remove_cell(&mut self, i: usize, len: usize) {
        let n = self.count();
        debug_assert!(i < n);
        let slots = slot_at(i);
        let slots_end = slot_at(n);
        let off = self.slot(i);
        self.page.copy_within(slots + SLOT_BYTES..slots_end, slots);
        write_u16(self.page, COUNT_AT, (n - 1) as u16);
        if off == self.cell_start() {
            write_u32(self.page, CELL_START_AT, (off + len) as u32);
        } else {
            let frag = self.fragmented() + len;
            write_u32(self.page, FRAGMENTED_AT, frag as u32);
        }
    }

    /// Update the child pointer and count of branch cell `i` in place.
    pub fn set_child(&mut self, i: usize, child: PageId, count: u64) {
        let off = self.slot(i);
        write_u64(self.page, off + 2, child);
        write_u64(self.page, off + 10, count);
    }

    /// Rewrite the cell area without holes.
    fn compact(&mut self) {
        // One copy of the page, then the cells re-laid from it (no allocation per cell).
        let before = self.page.to_vec();
        let Ok(view) = NodeRef::new(&before, 0) else {
            return;
        };
        // All cells must read back, and fit between the slots and the page's end, before any
        // byte moves: a damaged page (cells that overlap may add up to more) stays as it was.
        let mut total = 0usize;
        for i in 0..view.len() {
            let Ok(cell) = view.cell(i) else { return };
            total += cell.len();
        }
        if total > self.page.len().saturating_sub(slot_at(view.len())) {
            return;
        }
        let mut end = self.page.len();
        for i in 0..view.len() {
            let Ok(cell) = view.cell(i) else { return };
            let start = end - cell.len();
            self.page[start..end].copy_from_slice(cell);
            write_u16(self.page, slot_at(i), start as u16);
            end = start;
        }
        write_u32(self.page, CELL_START_AT, end as u32);
        write_u32(self.page, FRAGMENTED_AT, 0);
    }
}

#[cfg(test)]
mod tests;
