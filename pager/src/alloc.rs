//! Page allocation: the free set, pages waiting to become free, file growth, and the free-list
//! pages persisted with each checkpoint.
//!
//! A page freed by copy-on-write in commit `s` is still reachable from every version before `s`
//! and, until a checkpoint covering `s` is durable, from the durable checkpoint. It therefore
//! waits until (a) no pinned snapshot is older than `s` and (b) a checkpoint of generation
//! `safe_generation` or later is durable (invariant 2 of the design).
//!
//! Waiting pages sit in two first-in-first-out queues, so that reclaiming costs what it frees
//! rather than a scan of everything waiting: pages allocated since the last checkpoint capture
//! wait only for snapshots (their `freed_at_seq` grows along the queue), the others also for a
//! checkpoint (their `safe_generation` grows along the queue too). Reclaim pops from the fronts
//! while the front entry may go. An entry never leaves before both its conditions hold; one
//! out of order (the loaded free list held for readers at open) only waits longer.
//!
//! Free-list page layout after the common header (little-endian):
//!
//! | offset | size  | field                                 |
//! |-------:|------:|---------------------------------------|
//! | 24     | 8     | next free-list page (0: last)         |
//! | 32     | 4     | number `n` of page ids in this page   |
//! | 36     | 4     | reserved, zero                        |
//! | 40     | 8 × n | free page ids                         |

use std::collections::{BTreeSet, HashSet, VecDeque};

use crate::error::{PagerError, Result};
use crate::io::{all_ok, submit_wait, IoFile, IoOp};
use crate::page::{
    self, try_read_u32, try_read_u64, write_u32, write_u64, PageId, PageIdHash, PageType,
};

pub const FREELIST_HEADER_BYTES: usize = 40;
// Where each field of the free-list layout above sits: written once, for the writer and the
// readers.
const NEXT_AT: usize = 24;
const COUNT_AT: usize = 32;
const ID_BYTES: usize = 8;

/// Where the `j`-th page id of a free-list page sits.
fn freelist_id_at(j: usize) -> usize {
    FREELIST_HEADER_BYTES + ID_BYTES * j
}

/// The file grows by at least this many pages at a time (the store relies on it to tell a
/// torn creation from a damaged database).
pub const MIN_GROWTH_PAGES: u64 = 64;

/// ...and by at most this many bytes: an eighth of a large file left unused at its end would
/// be most of what the space bound of a checkpoint policy allows (`SpaceHeld`). 4 MiB, not 16:
/// W12's file after 10 M random updates went from 1.51 to 1.43 × the live bytes (its last
/// extent was mostly unused), for one `fallocate` per 4 MiB of growth instead of per 16.
pub const MAX_GROWTH_BYTES: u64 = 4 << 20;

// The cap holds at every page size only while the smallest extent fits under it.
const _: () = assert!(MIN_GROWTH_PAGES * crate::page::PAGE_SIZE_MAX as u64 <= MAX_GROWTH_BYTES);

pub fn freelist_ids_per_page(page_size: usize) -> usize {
    (page_size - FREELIST_HEADER_BYTES) / ID_BYTES
}

/// Pages a write transaction moves from the waiting queues to the free set when it begins, at
/// most: the rest wait for the next ones (or for an allocation that finds the free set
/// empty). Without a bound, a commit that ended the retention of a large one paid for
/// dropping its thousand replaced frames (measured in W1: a millisecond, the p99).
pub const RECLAIM_PER_BEGIN: usize = 16;

/// Pages freed by one commit (or one checkpoint), waiting to become reusable.
#[derive(Debug)]
struct PendingFree {
    freed_at_seq: u64,
    safe_generation: u64,
    pages: Vec<PageId>,
}

#[derive(Debug)]
pub struct Allocator {
    page_size: u64,
    /// Pages that may be handed out now.
    free: BTreeSet<PageId>,
    /// Freed pages no checkpoint reaches: they wait only for snapshots.
    waiting_snapshots: VecDeque<PendingFree>,
    /// Freed pages a durable or captured checkpoint may reach.
    waiting_checkpoint: VecDeque<PendingFree>,
    /// Pages in use or free; the next new page gets this id.
    page_count: u64,
    /// Pages the file has room for (its durable length / page size).
    file_pages: u64,
    /// Pages allocated by the running write transaction.
    private: HashSet<PageId, PageIdHash>,
    /// Pages the last committed transaction allocated: how many the next one likely needs.
    allocated_by_last: usize,
    /// The oldest sequence a pinned snapshot read when the running transaction began (or the
    /// running checkpoint captured): waiting pages freed at or before it may be reused. A pin
    /// added later is of the head, or of a checkpoint's version, whose pages wait for a newer
    /// durable generation than the allocator knows while the writer lock is held.
    oldest_pinned: u64,
    /// Published pages the running write transaction replaced or dropped.
    freed_in_txn: Vec<PageId>,
    /// Pages allocated since the last checkpoint capture: no checkpoint, durable or being
    /// written, can reach them, so once freed they wait only for snapshots.
    fresh: HashSet<PageId, PageIdHash>,
    /// Fresh pages the running transaction replaced or dropped.
    freed_fresh_in_txn: Vec<PageId>,
    /// Pages committed transactions freed since the last checkpoint capture that a checkpoint
    /// reaches: the next checkpoint would let them be reused.
    freed_since_capture: u64,
    /// Free-list pages of the durable checkpoint (in use until the next one is durable).
    durable_freelist_pages: Vec<PageId>,
    /// Generation the next checkpoint capture will get.
    pub next_generation: u64,
    /// Generation of the newest durable checkpoint.
    pub durable_generation: u64,
    /// The oldest generation a registered reader of another process still reads (None: no
    /// reader): pages that generation reaches are not reused, whatever is durable.
    readers_oldest: Option<u64>,
    /// Never touch the file: growth is only counted (read-only inspection).
    read_only: bool,
}

impl Allocator {
    pub fn new(page_size: usize, page_count: u64, file_pages: u64, generation: u64) -> Self {
        Allocator {
            page_size: page_size as u64,
            free: BTreeSet::new(),
            waiting_snapshots: VecDeque::new(),
            waiting_checkpoint: VecDeque::new(),
            page_count,
            file_pages,
            private: HashSet::default(),
            allocated_by_last: 0,
            oldest_pinned: 0,
            freed_in_txn: Vec::new(),
            fresh: HashSet::default(),
            freed_fresh_in_txn: Vec::new(),
            freed_since_capture: 0,
            durable_freelist_pages: Vec::new(),
            next_generation: generation + 1,
            durable_generation: generation,
            readers_oldest: None,
            read_only: false,
        }
    }

    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    /// Pages only a checkpoint (of a version after their commit) would make reusable: how much
    /// the file must hold beyond the live pages until the next checkpoint.
    pub fn freed_since_capture(&self) -> u64 {
        self.freed_since_capture
    }

    pub fn free_len(&self) -> usize {
        self.free.len()
    }

    pub fn pending_len(&self) -> usize {
        self.pending().map(|p| p.pages.len()).sum()
    }

    fn pending(&self) -> impl Iterator<Item = &PendingFree> {
        self.waiting_snapshots
            .iter()
            .chain(self.waiting_checkpoint.iter())
    }

    /// Published pages the running transaction replaced or dropped so far.
    pub fn freed_in_txn_count(&self) -> u64 {
        (self.freed_in_txn.len() + self.freed_fresh_in_txn.len()) as u64
    }

    pub fn is_private(&self, id: PageId) -> bool {
        self.private.contains(&id)
    }

    /// A page for the running transaction, growing the file when it is full.
    pub fn allocate(&mut self, file: &dyn IoFile) -> Result<PageId> {
        // A page taken from a waiting queue here still has its old frame in the pool: every
        // caller installs the new page with `BufferPool::create*`, which drops it first.
        let id = match self
            .free
            .pop_first()
            .or_else(|| self.take_reclaimable_page())
        {
            Some(id) => id,
            None => {
                if self.page_count >= self.file_pages {
                    self.grow(file)?;
                }
                self.page_count += 1;
                self.page_count - 1
            }
        };
        debug_assert!(id >= 2 && id < self.page_count);
        self.private.insert(id);
        self.fresh.insert(id);
        Ok(id)
    }

    /// Grow by an extent (1/8 of the file, at least 64 pages). Not synced here: only a durable
    /// meta page makes pages in the new space reachable after a crash, and every checkpoint
    /// syncs the data file (its length included) before it writes the meta page. Syncing here
    /// stalled the commit that grew the file behind all the data the OS had cached.
    fn grow(&mut self, file: &dyn IoFile) -> Result<()> {
        let extent = (self.file_pages / 8)
            .min(MAX_GROWTH_BYTES / self.page_size)
            .max(MIN_GROWTH_PAGES);
        let pages = self.file_pages + extent;
        if self.read_only {
            self.file_pages = pages;
            return Ok(());
        }
        all_ok(submit_wait(
            file,
            vec![IoOp::Grow {
                len: pages * self.page_size,
            }],
        ))?;
        self.file_pages = pages;
        Ok(())
    }

    /// Free a page. Returns true when it was private to the transaction and is free at once
    /// (the caller drops it from the buffer pool).
    pub fn free(&mut self, id: PageId) -> bool {
        if self.private.remove(&id) {
            self.fresh.remove(&id);
            self.free.insert(id);
            true
        } else if self.fresh.contains(&id) {
            self.freed_fresh_in_txn.push(id);
            false
        } else {
            self.freed_in_txn.push(id);
            false
        }
    }

    /// The transaction committed as `seq`: its replaced pages start waiting.
    pub fn commit(&mut self, seq: u64) {
        self.allocated_by_last = self.private.len();
        self.private.clear();
        if !self.freed_fresh_in_txn.is_empty() {
            for id in &self.freed_fresh_in_txn {
                self.fresh.remove(id);
            }
            debug_assert!(self
                .waiting_snapshots
                .back()
                .is_none_or(|last| last.freed_at_seq <= seq));
            self.waiting_snapshots.push_back(PendingFree {
                freed_at_seq: seq,
                safe_generation: 0,
                pages: std::mem::take(&mut self.freed_fresh_in_txn),
            });
        }
        if !self.freed_in_txn.is_empty() {
            self.freed_since_capture += self.freed_in_txn.len() as u64;
            self.waiting_checkpoint.push_back(PendingFree {
                freed_at_seq: seq,
                safe_generation: self.next_generation,
                pages: std::mem::take(&mut self.freed_in_txn),
            });
        }
    }

    /// The transaction was abandoned: its pages are free again, nothing it freed is.
    pub fn abort(&mut self) -> Vec<PageId> {
        self.freed_in_txn.clear();
        self.freed_fresh_in_txn.clear();
        let private: Vec<PageId> = self.private.drain().collect();
        for id in &private {
            self.fresh.remove(id);
        }
        self.free.extend(private.iter().copied());
        private
    }

    /// At the start of a write transaction: move waiting pages that no pinned snapshot (all are
    /// at `oldest_pinned_seq` or newer) and no durable checkpoint can reach into the free set.
    /// Bounded: [`RECLAIM_PER_BEGIN`] pages, or what tops the free set up to twice what the
    /// last transaction allocated; an allocation that finds the free set empty takes a
    /// waiting page itself before it grows the file.
    /// Returns the pages that became free (their cached frames are garbage now).
    pub fn reclaim(&mut self, oldest_pinned_seq: u64) -> Vec<PageId> {
        self.oldest_pinned = oldest_pinned_seq;
        let wanted = (2 * self.allocated_by_last).saturating_sub(self.free.len());
        let limit = wanted.max(RECLAIM_PER_BEGIN);
        let mut freed = Vec::new();
        while freed.len() < limit {
            let Some(pages) = self.take_reclaimable(limit - freed.len()) else {
                break;
            };
            freed.extend_from_slice(&pages);
            self.free.extend(pages);
        }
        freed
    }

    /// The oldest sequence a pinned snapshot reads, for allocations outside a write
    /// transaction (a checkpoint's free-list pages): [`reclaim`](Allocator::reclaim) records it
    /// at each begin.
    pub fn set_oldest_pinned(&mut self, oldest_pinned_seq: u64) {
        self.oldest_pinned = oldest_pinned_seq;
    }

    /// Up to `max` pages from the front of a waiting queue whose front may be reused now (the
    /// pages of one entry share their conditions, so an entry may leave in parts).
    fn take_reclaimable(&mut self, max: usize) -> Option<Vec<PageId>> {
        let durable = self
            .readers_oldest
            .map_or(self.durable_generation, |r| r.min(self.durable_generation));
        let oldest = self.oldest_pinned;
        let queue =
            if self
                .waiting_snapshots
                .front()
                .is_some_and(|front| front.freed_at_seq <= oldest)
            {
                &mut self.waiting_snapshots
            } else if self.waiting_checkpoint.front().is_some_and(|front| {
                front.freed_at_seq <= oldest && front.safe_generation <= durable
            }) {
                &mut self.waiting_checkpoint
            } else {
                return None;
            };
        let front = queue.front_mut()?;
        if front.pages.len() <= max {
            return queue.pop_front().map(|entry| entry.pages);
        }
        let keep = front.pages.len() - max;
        Some(front.pages.split_off(keep))
    }

    /// One waiting page that may be reused now, for an allocation that found nothing free.
    fn take_reclaimable_page(&mut self) -> Option<PageId> {
        loop {
            let mut pages = self.take_reclaimable(1)?;
            if let Some(id) = pages.pop() {
                debug_assert!(pages.is_empty());
                return Some(id);
            }
        }
    }

    /// For a checkpoint of the latest version (no transaction running): allocate and fill the
    /// free-list pages describing every page that version does not use. Returns the new
    /// generation, the free-list root, the listed count, and the page count at capture.
    pub fn capture_freelist(
        &mut self,
        file: &dyn IoFile,
        new_page: &mut dyn FnMut(PageId) -> Result<crate::pool::PageRef>,
        seq: u64,
    ) -> Result<FreelistCapture> {
        debug_assert!(self.private.is_empty() && self.freed_in_txn.is_empty());
        let generation = self.next_generation;
        self.next_generation += 1;
        self.freed_since_capture = 0;
        // The old free-list pages are not part of the new checkpoint: free once it is durable.
        let old = std::mem::take(&mut self.durable_freelist_pages);
        if !old.is_empty() {
            self.waiting_checkpoint.push_back(PendingFree {
                freed_at_seq: 0,
                safe_generation: generation,
                pages: old,
            });
        }
        let per_page = freelist_ids_per_page(self.page_size as usize);
        let listed_now = self.free.len() + self.pending_len();
        let pages_needed = listed_now.div_ceil(per_page);
        let mut fl_pages = Vec::with_capacity(pages_needed);
        for _ in 0..pages_needed {
            let id = self.allocate(file)?;
            fl_pages.push(id);
        }
        self.private.clear();
        // From here on, new pages are unknown to this checkpoint.
        self.fresh.clear();
        let mut ids: Vec<PageId> = self.free.iter().copied().collect();
        for pending in self.pending() {
            ids.extend_from_slice(&pending.pages);
        }
        ids.sort_unstable();
        debug_assert!(ids.len().div_ceil(per_page) <= fl_pages.len());
        let mut chunks = ids.chunks(per_page);
        for (i, id) in fl_pages.iter().enumerate() {
            let page = new_page(*id)?;
            let mut buf = page.write();
            page::init_header(&mut buf, PageType::FreeList, *id, seq);
            let next = fl_pages.get(i + 1).copied().unwrap_or(0);
            write_u64(&mut buf, NEXT_AT, next);
            let chunk = chunks.next().unwrap_or(&[]);
            write_u32(&mut buf, COUNT_AT, chunk.len() as u32);
            for (j, free_id) in chunk.iter().enumerate() {
                write_u64(&mut buf, freelist_id_at(j), *free_id);
            }
        }
        self.durable_freelist_pages = fl_pages.clone();
        Ok(FreelistCapture {
            generation,
            root: fl_pages.first().copied().unwrap_or(0),
            listed: ids.len() as u64,
            page_count: self.page_count,
            unused: ids,
        })
    }

    /// The checkpoint of `generation` is durable.
    /// `readers_oldest`: the oldest generation another process's reader still reads, as asked
    /// once this checkpoint's meta page was durable (see `PageStore::set_reader_registry`).
    pub fn checkpoint_durable(&mut self, generation: u64, readers_oldest: Option<u64>) {
        self.durable_generation = self.durable_generation.max(generation);
        self.readers_oldest = readers_oldest;
    }

    /// Load the free list of a durable checkpoint at open.
    pub fn load_freelist(&mut self, pages: Vec<PageId>, ids: Vec<PageId>) {
        self.durable_freelist_pages = pages;
        self.free = ids.into_iter().collect();
    }

    /// Readers of other processes read generation `oldest` (None: there are none). When that
    /// is older than the durable checkpoint this allocator opened, the free list it loaded may
    /// hold pages those readers still reach (the previous writer kept them waiting for the
    /// readers, and its free list lists waiting pages as free): they wait again, until a
    /// checkpoint finds no reader older than the loaded generation.
    pub fn readers_at_open(&mut self, oldest: Option<u64>) {
        self.readers_oldest = oldest;
        if oldest.is_some_and(|r| r < self.durable_generation) && !self.free.is_empty() {
            let held = std::mem::take(&mut self.free);
            self.waiting_checkpoint.push_back(PendingFree {
                freed_at_seq: 0,
                safe_generation: self.durable_generation,
                pages: held.into_iter().collect(),
            });
        }
    }
}

pub struct FreelistCapture {
    pub generation: u64,
    pub root: PageId,
    pub listed: u64,
    pub page_count: u64,
    /// The pages the captured version does not use (free or waiting), sorted: the ones that
    /// may be reused while its checkpoint is written, so it must never write them.
    pub unused: Vec<PageId>,
}

impl FreelistCapture {
    /// May the checkpoint of this capture write page `id`? Only pages the captured version can
    /// reach (or its new free-list pages): those cannot be freed and reused before the next
    /// checkpoint is durable, so their frames are the only frames of their ids meanwhile.
    pub fn covers(&self, id: PageId) -> bool {
        id >= 2 && id < self.page_count && self.unused.binary_search(&id).is_err()
    }
}

/// The fields of a free-list page's header as stored, unchecked (neither the type nor the count
/// against the page size): for tools that show damaged pages, and for
/// [`decode_freelist_page`], which checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFreelistHeader {
    /// Next free-list page (0: last).
    pub next: PageId,
    /// Page ids this page claims to hold.
    pub count: u32,
}

impl RawFreelistHeader {
    /// None when `page` is shorter than a free-list header.
    pub fn parse(page: &[u8]) -> Option<RawFreelistHeader> {
        if page.len() < FREELIST_HEADER_BYTES {
            return None;
        }
        Some(RawFreelistHeader {
            next: try_read_u64(page, NEXT_AT)?,
            count: try_read_u32(page, COUNT_AT)?,
        })
    }
}

/// Decode one free-list page: its ids and the next page.
pub fn decode_freelist_page(
    buf: &[u8],
    id: PageId,
    page_count: u64,
) -> Result<(Vec<PageId>, PageId)> {
    // The header first: a buffer that holds it holds the type byte too.
    let header = RawFreelistHeader::parse(buf)
        .ok_or_else(|| PagerError::corrupt(id, "free-list page shorter than its header"))?;
    if page::PageType::from_byte(page::page_type_byte(buf)) != Some(PageType::FreeList) {
        return Err(PagerError::WrongPageType {
            page: id,
            expected: PageType::FreeList,
            found: page::page_type_byte(buf),
        });
    }
    let (next, count) = (header.next, header.count as usize);
    if count > freelist_ids_per_page(buf.len()) {
        return Err(PagerError::corrupt(
            id,
            format!("free-list page claims {count} ids"),
        ));
    }
    let mut ids = Vec::with_capacity(count);
    for j in 0..count {
        // The count check above keeps every id inside the page.
        let free_id = try_read_u64(buf, freelist_id_at(j)).ok_or_else(|| {
            PagerError::corrupt(id, format!("free page id {j} overruns the page"))
        })?;
        if free_id < 2 || free_id >= page_count {
            return Err(PagerError::corrupt(
                id,
                format!("free page id {free_id} outside 2..{page_count}"),
            ));
        }
        ids.push(free_id);
    }
    if next != 0 && (next < 2 || next >= page_count) {
        return Err(PagerError::corrupt(
            id,
            format!("next free-list page {next} outside 2..{page_count}"),
        ));
    }
    Ok((ids, next))
}

impl Allocator {
    /// Every page the head version does not reach, with why: free now, waiting to be freed, or
    /// holding the durable checkpoint's free list (for the checker).
    pub fn unreachable_pages(&self) -> Vec<(PageId, &'static str)> {
        let mut out: Vec<(PageId, &'static str)> =
            self.free.iter().map(|id| (*id, "free")).collect();
        for pending in self.pending() {
            out.extend(pending.pages.iter().map(|id| (*id, "pending")));
        }
        out.extend(
            self.durable_freelist_pages
                .iter()
                .map(|id| (*id, "free-list")),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn raw_freelist_header_reads_what_a_capture_wrote() {
        let (_dir, file, pool) = crate::pool::scratch_pool(4096);
        let mut alloc = Allocator::new(4096, 2, 2, 1);
        // More free pages than one free-list page holds: the capture writes a chain of two.
        let per_page = freelist_ids_per_page(4096);
        let ids: Vec<PageId> = (0..per_page + 10)
            .map(|_| alloc.allocate(file.as_ref()).unwrap())
            .collect();
        for id in &ids {
            assert!(alloc.free(*id));
        }
        let mut new_page = |id| Ok(pool.create(id));
        let capture = alloc
            .capture_freelist(file.as_ref(), &mut new_page, 5)
            .unwrap();
        let first = pool.get(capture.root).unwrap().read().to_vec();
        let raw = RawFreelistHeader::parse(&first).unwrap();
        assert_eq!(raw.count as usize, per_page);
        let second = pool.get(raw.next).unwrap().read().to_vec();
        let last = RawFreelistHeader::parse(&second).unwrap();
        assert_eq!(last.next, 0);
        assert_eq!(raw.count as u64 + last.count as u64, capture.listed);
        let (decoded, next) =
            decode_freelist_page(&first, capture.root, capture.page_count).unwrap();
        assert_eq!((decoded.len(), next), (per_page, raw.next));
        // Short buffers, as a damaged or truncated file gives them: None or an error, no panic.
        for len in 0..FREELIST_HEADER_BYTES {
            assert_eq!(RawFreelistHeader::parse(&first[..len]), None, "{len} bytes");
            assert!(decode_freelist_page(&first[..len], capture.root, 1 << 20).is_err());
        }
        assert!(decode_freelist_page(&first[..100], capture.root, 1 << 20).is_err());
    }

    /// A transaction that allocates `n` pages and replaces `replaced` published ones, as `seq`.
    fn commit_txn(
        alloc: &mut Allocator,
        file: &dyn IoFile,
        seq: u64,
        n: usize,
        replaced: &[PageId],
    ) -> Vec<PageId> {
        let ids: Vec<PageId> = (0..n).map(|_| alloc.allocate(file).unwrap()).collect();
        for id in replaced {
            assert!(!alloc.free(*id));
        }
        alloc.commit(seq);
        ids
    }

    /// An allocator over a scratch file after commit 1 allocated `n` pages and commit 2
    /// replaced them all with `n` new ones; returns commit 1's pages.
    fn after_a_rewrite(n: usize) -> (tempfile::TempDir, Arc<dyn IoFile>, Allocator, Vec<PageId>) {
        let (dir, file, _pool) = crate::pool::scratch_pool(4096);
        let mut alloc = Allocator::new(4096, 2, 2, 1);
        alloc.reclaim(0);
        let first = commit_txn(&mut alloc, file.as_ref(), 1, n, &[]);
        alloc.reclaim(1);
        commit_txn(&mut alloc, file.as_ref(), 2, n, &first);
        (dir, file, alloc, first)
    }

    #[test]
    fn the_file_grows_by_an_eighth_within_its_extent_bounds() {
        let (_dir, file, _pool) = crate::pool::scratch_pool(4096);
        for (pages, extent) in [(100, 64), (4096, 512), (8192, 1024), (16384, 1024)] {
            let mut alloc = Allocator::new(4096, pages, pages, 1);
            alloc.reclaim(0);
            alloc.allocate(file.as_ref()).expect("allocate");
            assert_eq!(alloc.file_pages, pages + extent, "a file of {pages} pages");
        }
    }

    #[test]
    fn a_begin_reclaims_a_bounded_share_and_an_allocation_takes_waiting_pages_before_growing() {
        let (_dir, file, mut alloc, _first) = after_a_rewrite(1000);
        let file = file.as_ref();
        assert_eq!(alloc.pending_len(), 1000);
        let pages = alloc.page_count();
        // No snapshot reads commit 1 any more: its pages may go, but the free set holds none
        // and the last commit allocated 1,000, so this begin tops the free set up to 2,000
        // (all 1,000 there are).
        let freed = alloc.reclaim(2);
        assert_eq!(freed.len(), 1000);
        assert_eq!((alloc.free_len(), alloc.pending_len()), (1000, 0));
        // Small commits now: each frees 1,000 pages again on its own, and a begin with a
        // full free set moves only RECLAIM_PER_BEGIN of them.
        let taken = commit_txn(&mut alloc, file, 3, 1000, &[]);
        assert_eq!(
            alloc.page_count(),
            pages,
            "the free pages were used, not new ones"
        );
        alloc.reclaim(3);
        commit_txn(&mut alloc, file, 4, 1, &taken);
        alloc.reclaim(4);
        let small = commit_txn(&mut alloc, file, 5, 1, &[]);
        assert_eq!(small.len(), 1);
        let before = alloc.free_len();
        let freed = alloc.reclaim(5);
        assert_eq!(freed.len(), RECLAIM_PER_BEGIN);
        assert_eq!(alloc.free_len(), before + RECLAIM_PER_BEGIN);
        // A large transaction that empties the free set takes waiting pages one by one rather
        // than grow the file.
        let pages = alloc.page_count();
        let waiting = alloc.pending_len();
        let free = alloc.free_len();
        commit_txn(&mut alloc, file, 6, free + waiting, &[]);
        assert_eq!(
            alloc.page_count(),
            pages,
            "every waiting page was reused first"
        );
        assert_eq!((alloc.free_len(), alloc.pending_len()), (0, 0));
        alloc.reclaim(6);
        commit_txn(&mut alloc, file, 7, 1, &[]);
        assert_eq!(alloc.page_count(), pages + 1, "then the file grows");
    }

    #[test]
    fn an_allocation_never_takes_a_page_a_pinned_snapshot_still_reads() {
        let (_dir, file, mut alloc, first) = after_a_rewrite(10);
        let file = file.as_ref();
        // A snapshot of commit 1 is pinned: commit 2's replaced pages must wait.
        alloc.reclaim(1);
        let pages = alloc.page_count();
        let new = commit_txn(&mut alloc, file, 3, 5, &[]);
        assert!(new.iter().all(|id| !first.contains(id)));
        assert_eq!(alloc.page_count(), pages + 5);
        assert_eq!(alloc.pending_len(), 10);
    }
}
