//! The buffer pool: a bounded set of page frames over the data file.
//!
//! - **Capacity** is `buffer_pool_bytes / page_size` frames. A frame holds one page in a
//!   4096-aligned buffer (so O_DIRECT can be used).
//! - **Page table**: 64 shards of `HashMap<PageId, Arc<Frame>>`. A hit takes one shard lock,
//!   clones an `Arc` and sets the frame's reference bit: no syscall, no ring round trip.
//! - **Pins**: a [`PageRef`] is an `Arc<Frame>`; the table and the clock ring hold one reference
//!   each, so a frame whose strong count exceeds 2 is pinned and is never evicted.
//! - **Eviction: CLOCK-sweep** (second chance). Chosen over plain LRU because one pass of a
//!   large scan only sets reference bits once, so pages that are hit repeatedly survive a scan,
//!   and a hit needs no list manipulation (no global lock on the read path).
//! - **Write-back**: dirty, unpinned frames met by the sweep are written in one batch, then
//!   become evictable. This is safe at any time because the engine never writes a page that the
//!   durable checkpoint can reach (copy-on-write): a dirty page always lives at a free location.
//!
//! Invariants:
//! 1. A page id maps to at most one frame in the table.
//! 2. A frame in the table sits in exactly one ring slot, and `resident` counts them.
//! 3. A pinned frame (strong count > 2) is never removed from the table by eviction.
//! 4. A dirty frame is written to disk (or discarded because its page was freed) before it leaves
//!    the pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

mod epoch;
mod published;
mod spare;

use crate::arena::{Arena, Fill, FrameBuf, Prior};
use crate::error::{PagerError, Result};
use crate::io::{submit_wait, AlignedBuf, IoFile, IoOp};
use crate::page::{self, PageId};
use epoch::Retired;
use published::PublishedTable;
use spare::SpareFrames;

const SHARDS: usize = 64;

type PageTable = HashMap<PageId, Arc<Frame>, page::PageIdHash>;

/// One shard of the page table, with its own hit count (no shared counter on the hot path).
#[derive(Default)]
struct Shard {
    frames: PageTable,
    hits: u64,
}
/// Dirty frames written back together when the sweep meets them.
const WRITE_BACK_BATCH: usize = 64;

/// The shard of page `id`: Fibonacci hashing spreads consecutive ids over shards. Bits 51–56
/// of the product, not its top bits: the shard's table hashes ids with the same multiply
/// (`page::PageIdHasher`) and tags its slots with the top 7 bits, which a shard chosen by the
/// top 6 would leave two values to (half the slots of a probed group matching every lookup).
fn shard_of(id: PageId) -> usize {
    let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 51;
    h as usize % SHARDS
}

pub struct Frame {
    id: PageId,
    /// Its place in the clock ring while it holds this page (a frame never moves; a spare
    /// frame gets a new slot with its next page, `pool/spare.rs`).
    slot: usize,
    /// Its memory in the arena (none for a heap frame, which is never published).
    arena_index: Option<u32>,
    data: RwLock<FrameBuf>,
    dirty: AtomicBool,
    referenced: AtomicBool,
    /// In the published table: committed, read lock-free, never written again. Changed under
    /// the page's shard lock.
    published: AtomicBool,
}

/// A pinned page. Dropping it unpins.
#[derive(Clone)]
pub struct PageRef(Arc<Frame>);

impl PageRef {
    pub fn id(&self) -> PageId {
        self.0.id
    }

    pub fn read(&self) -> RwLockReadGuard<'_, FrameBuf> {
        self.0.data.read()
    }

    /// Mutable access for the writer; the frame is marked dirty. Only pages the current write
    /// transaction allocated may be modified (copy-on-write), which the caller guarantees.
    pub fn write(&self) -> RwLockWriteGuard<'_, FrameBuf> {
        let guard = self.0.data.write();
        // Checked in every build, under the write lock (publication holds the read lock): a
        // lock-free reader may be reading this frame, so writing it would be a data race.
        assert!(
            !self.0.published.load(Ordering::Relaxed),
            "page {} is published (committed, read lock-free) and must not be written",
            self.0.id
        );
        self.0.dirty.store(true, Ordering::Release);
        guard
    }
}

/// Published pages, read without a lock inside [`BufferPool::read_published`].
pub(crate) struct PublishedPages<'a> {
    pool: &'a BufferPool,
}

impl PublishedPages<'_> {
    /// The bytes of committed page `id`, if its frame is published; `None` sends the reader to
    /// the locked path ([`BufferPool::get`]).
    pub(crate) fn page(&self, id: PageId) -> Option<&[u8]> {
        let index = self.pool.published.find(id)?;
        // SAFETY: found in the published table inside the epoch section this value lives in:
        // the frame holds committed page `id` (never written again) and is not reused before
        // the section ends (`epoch.rs`).
        unsafe { self.pool.arena.published_page(index) }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct PoolStats {
    /// Hits through the page table's locks; lock-free reads of published pages are not
    /// counted (a shared counter would put a written line back on that path).
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub write_backs: u64,
    pub resident_frames: usize,
    pub capacity_frames: usize,
    /// Frames lent out of the capacity (`BufferPool::lend`).
    pub lent_frames: usize,
    /// Resident frames whose memory is from the heap, not the arena (the pool past its
    /// capacity because every arena frame was pinned).
    pub heap_frames: usize,
    /// Frames in the published table: committed pages read without a lock.
    pub published_frames: usize,
    /// Frames taken out of the published table and kept until lock-free readers move on.
    pub retired_frames: usize,
    /// Frames ever taken out of the published table.
    pub retirements: u64,
    /// Discarded frames kept for the next installs (`pool/spare.rs`): out of the ring, their
    /// arena memory reserved for reuse.
    pub spare_frames: usize,
    /// Installs that took a spare frame, or its memory, instead of a region of the arena or
    /// the heap (an install that then finds another thread loaded the page meanwhile drops the
    /// frame it took, and still counts).
    pub spare_reuses: u64,
}

enum Sweep {
    Slot(usize),
    WroteBack(usize),
    AllPinned,
}

struct Clock {
    ring: Vec<Option<Arc<Frame>>>,
    free_slots: Vec<usize>,
    hand: usize,
}

impl Clock {
    /// Take `frame` out of the ring, if it is still there: its slot may already hold another
    /// frame when the sweep evicted it first.
    fn remove(&mut self, frame: &Arc<Frame>) -> bool {
        let here = self.ring.get(frame.slot).and_then(Option::as_ref);
        if !here.is_some_and(|f| Arc::ptr_eq(f, frame)) {
            return false;
        }
        self.ring[frame.slot] = None;
        self.free_slots.push(frame.slot);
        true
    }
}

/// How long an install waits for readers to let retired frames' memory go before it takes a
/// heap frame.
const RETIRED_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Frames a lending pool keeps usable at least (its smallest capacity).
const MIN_USABLE_FRAMES: usize = 16;

/// Frames lent out of a pool's capacity ([`BufferPool::lend`]); dropping it gives them back.
pub struct FrameLoan<'a> {
    pool: &'a BufferPool,
    slots: Vec<usize>,
}

impl FrameLoan<'_> {
    /// Bytes of frames lent.
    pub fn bytes(&self) -> u64 {
        (self.slots.len() * self.pool.page_size) as u64
    }
}

impl Drop for FrameLoan<'_> {
    fn drop(&mut self) {
        let mut clock = self.pool.clock.lock();
        self.pool
            .lent
            .fetch_sub(self.slots.len(), Ordering::Relaxed);
        clock.free_slots.extend_from_slice(&self.slots);
    }
}

pub struct BufferPool {
    file: Arc<dyn IoFile>,
    arena: Arc<Arena>,
    page_size: usize,
    capacity: usize,
    shards: Vec<Mutex<Shard>>,
    clock: Mutex<Clock>,
    resident: AtomicUsize,
    /// Frames in the ring whose memory is from the heap (`PoolStats::heap_frames`).
    heap_frames: AtomicUsize,
    /// Free slots lent out (`BufferPool::lend`): empty, and neither free nor filled until the
    /// loan that holds them ends. Changed under the clock lock; an atomic so `stats` does not
    /// wait for it (the sweep holds it through write-backs).
    lent: AtomicUsize,
    misses: AtomicU64,
    evictions: AtomicU64,
    write_backs: AtomicU64,
    /// Held shared by every eviction write-back from before it marks its frames clean until
    /// its writes complete; a checkpoint takes it exclusively before its data sync, so no page
    /// it counts as written is still on its way to the OS (`wait_for_write_backs`).
    write_backs_in_flight: RwLock<()>,
    /// Set by the first failed write or sync of the data file (see `PageStore::failure`).
    failure: Mutex<Option<String>>,
    /// Never write: dirty frames stay resident (inspection of a file another process owns).
    read_only: bool,
    /// Committed pages readable without a lock (`read_published`).
    published: PublishedTable,
    /// Frames out of `published` whose memory lock-free readers may still be reading.
    retired: Mutex<Retired>,
    /// Discarded frames kept for the next installs (`spare.rs`).
    spare: SpareFrames,
}

impl BufferPool {
    pub fn new(file: Arc<dyn IoFile>, page_size: usize, pool_bytes: u64) -> Result<Self> {
        let capacity = usize::try_from(pool_bytes / page_size as u64).unwrap_or(usize::MAX);
        if capacity < 16 {
            return Err(PagerError::InvalidConfig(format!(
                "buffer pool of {pool_bytes} bytes holds fewer than 16 pages of {page_size} bytes"
            )));
        }
        let arena = Arena::new(capacity, page_size);
        Ok(BufferPool {
            file,
            published: PublishedTable::new(arena.frames()),
            retired: Mutex::new(Retired::default()),
            spare: SpareFrames::default(),
            arena,
            page_size,
            capacity,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            clock: Mutex::new(Clock {
                ring: (0..capacity).map(|_| None).collect(),
                free_slots: (0..capacity).rev().collect(),
                hand: 0,
            }),
            resident: AtomicUsize::new(0),
            heap_frames: AtomicUsize::new(0),
            lent: AtomicUsize::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            write_backs: AtomicU64::new(0),
            write_backs_in_flight: RwLock::new(()),
            failure: Mutex::new(None),
            read_only: false,
        })
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    fn shard(&self, id: PageId) -> &Mutex<Shard> {
        &self.shards[shard_of(id)]
    }

    /// Pin page `id`, reading and verifying it from disk on a miss.
    pub fn get(&self, id: PageId) -> Result<PageRef> {
        self.get_as(id, false)
    }

    /// [`get`](BufferPool::get) for a page a snapshot reaches (committed, so copy-on-write never
    /// changes it again): its frame is published, and lock-free readers find it from now on.
    /// Never for a page a write transaction may still change.
    pub(crate) fn get_committed(&self, id: PageId) -> Result<PageRef> {
        self.get_as(id, true)
    }

    fn get_as(&self, id: PageId, publish: bool) -> Result<PageRef> {
        {
            let mut shard = self.shard(id).lock();
            if let Some(frame) = shard.frames.get(&id) {
                // Read before writing: the bit of a hot page stays set, its line stays shared.
                if !frame.referenced.load(Ordering::Relaxed) {
                    frame.referenced.store(true, Ordering::Relaxed);
                }
                if publish {
                    self.publish(frame);
                }
                let page = PageRef(Arc::clone(frame));
                shard.hits += 1;
                return Ok(page);
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let from_disk = self.read_from_disk(id)?;
        Ok(self.install(id, Fill::Copy(&from_disk), false, publish))
    }

    /// Memory for a new frame. Retired frames hold arena memory: when the arena has none left
    /// but they do, wait a little for the readers that may hold them (sections are short and
    /// never block) rather than take a heap frame, so the pool stays within its memory. A heap
    /// frame is taken when every arena frame is live (pinned), from inside a read section, or
    /// after [`RETIRED_WAIT`] (a reader descheduled mid-read): beyond pinned frames, heap
    /// frames are then bounded by the retired ones.
    fn take_frame_memory(&self, content: Fill<'_>) -> FrameBuf {
        let mut waited: Option<std::time::Instant> = None;
        loop {
            if let Some(buf) = self.arena.try_take(content) {
                return buf;
            }
            let retired_left = {
                let mut retired = self.retired.lock();
                retired.collect();
                retired.len()
            };
            // A retired frame collected meanwhile may have been kept as a spare instead.
            if let Some(buf) = self.spare.take_memory(content) {
                return buf;
            }
            let since = *waited.get_or_insert_with(std::time::Instant::now);
            if retired_left == 0 || epoch::in_section() || since.elapsed() >= RETIRED_WAIT {
                return self.arena.take(content);
            }
            std::thread::yield_now();
        }
    }

    /// Put a committed page's frame in the published table. Under its shard lock. The frame's
    /// read lock is held while it is marked: a writer holding the write lock (a page a write
    /// transaction still changes, which must never be published) makes this give up, and one
    /// that takes it later finds the mark and stops (`PageRef::write`).
    fn publish(&self, frame: &Frame) {
        if frame.published.load(Ordering::Relaxed) {
            return;
        }
        let (Some(index), Some(_no_writer)) = (frame.arena_index, frame.data.try_read()) else {
            return;
        };
        if self.published.insert(frame.id, index) {
            frame.published.store(true, Ordering::Relaxed);
        }
    }

    /// Take a frame leaving the page table out of the published table too, keeping its memory
    /// until lock-free readers that may have found it are done. Under its shard lock.
    fn withdraw(&self, frame: &Arc<Frame>) {
        if !frame.published.load(Ordering::Relaxed) {
            return;
        }
        if let Some(index) = frame.arena_index {
            self.published.remove(frame.id, index);
        }
        self.retired.lock().push(Arc::clone(frame));
    }

    /// Run `read` with lock-free access to published pages, or `None` when this thread cannot
    /// read lock-free now (it is already inside such a read, or too many threads are); the
    /// caller then takes the locked path. `read` answers `None` to send the caller there too
    /// (a page not published, an overflow value).
    ///
    /// What `read` sees stays valid for its whole run; it must not call back into the pool
    /// (nothing it holds can reach the pool).
    pub(crate) fn read_published<T>(
        &self,
        read: impl FnOnce(&PublishedPages<'_>) -> Option<T>,
    ) -> Option<T> {
        let _section = epoch::enter()?;
        read(&PublishedPages { pool: self })
    }

    /// Read and verify a page without caching it (used by the checker and offline tools).
    pub fn read_from_disk(&self, id: PageId) -> Result<AlignedBuf> {
        // Ids come from disk too: a damaged reference must not overflow the offset.
        let offset = id
            .checked_mul(self.page_size as u64)
            .ok_or_else(|| PagerError::corrupt(id, "page id beyond any file"))?;
        let buf = self
            .file
            .read_now(offset, AlignedBuf::zeroed(self.page_size))?;
        page::verify(&buf, id)?;
        Ok(buf)
    }

    /// A new, zeroed, dirty page for the writer (its id was just allocated). Any stale frame of a
    /// previous use of the id is replaced.
    pub fn create(&self, id: PageId) -> PageRef {
        self.discard(id);
        self.install(id, Fill::Zeros, true, false)
    }

    /// A new dirty page for the writer holding a copy of `content` (copy-on-write: one copy,
    /// no zeroing first).
    pub fn create_from(&self, id: PageId, content: &[u8]) -> PageRef {
        self.create_filled(id, Fill::Copy(content))
    }

    /// A new dirty page for the writer filled as `content` says (a copy-on-write of a node
    /// skips its free middle: `Fill::CopyAround`).
    pub(crate) fn create_filled(&self, id: PageId, content: Fill<'_>) -> PageRef {
        self.discard(id);
        self.install(id, content, true, false)
    }

    fn install(&self, id: PageId, content: Fill<'_>, dirty: bool, publish: bool) -> PageRef {
        let slot = self.reserve_slot();
        let frame = match self.spare.take(id, slot, content, dirty) {
            Some(frame) => frame,
            None => {
                let buf = self.take_frame_memory(content);
                Arc::new(Frame {
                    id,
                    slot,
                    arena_index: buf.arena_index(),
                    data: RwLock::new(buf),
                    dirty: AtomicBool::new(dirty),
                    referenced: AtomicBool::new(true),
                    published: AtomicBool::new(false),
                })
            }
        };
        {
            let mut shard = self.shard(id).lock();
            if let Some(existing) = shard.frames.get(&id) {
                // Another thread loaded it meanwhile; keep theirs, give the slot back.
                let existing = Arc::clone(existing);
                drop(shard);
                self.clock.lock().free_slots.push(slot);
                return PageRef(existing);
            }
            shard.frames.insert(id, Arc::clone(&frame));
            if publish {
                self.publish(&frame);
            }
        }
        let mut clock = self.clock.lock();
        clock.ring[slot] = Some(Arc::clone(&frame));
        self.count_in(&frame);
        PageRef(frame)
    }

    /// Drop a page from the pool without writing it (its page was freed). The frame is marked
    /// clean: whoever still holds it (a reader, a checkpoint's list) must never write its
    /// stale bytes over the page's next owner.
    pub fn discard(&self, id: PageId) {
        let frame = {
            let mut shard = self.shard(id).lock();
            let Some(frame) = shard.frames.remove(&id) else {
                return;
            };
            self.withdraw(&frame);
            frame
        };
        frame.dirty.store(false, Ordering::Release);
        self.leave_ring(&mut self.clock.lock(), &frame);
        // A page freed or stale inside a transaction, or dropped by one that never
        // committed: its bytes may be a transaction's own.
        self.spare.keep(frame, Prior::Unknown);
    }

    /// Take a frame dropped from the table out of the ring, counting it out of the pool.
    fn leave_ring(&self, clock: &mut Clock, frame: &Arc<Frame>) {
        if clock.remove(frame) {
            self.count_out(frame);
        }
    }

    /// A frame entered the ring (under the clock lock).
    fn count_in(&self, frame: &Frame) {
        self.resident.fetch_add(1, Ordering::Relaxed);
        if frame.arena_index.is_none() {
            self.heap_frames.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A frame left the ring (under the clock lock).
    fn count_out(&self, frame: &Frame) {
        self.resident.fetch_sub(1, Ordering::Relaxed);
        if frame.arena_index.is_none() {
            self.heap_frames.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// [`discard`](BufferPool::discard) for the pages of reclaimed versions: pages of
    /// published versions nobody can reach any more, so their frames hold only bytes of
    /// committed pages (a copy into one may leave a free middle unwritten, `Fill::CopyAround`).
    /// Each shard and the clock are locked once, not once per page.
    pub fn discard_reclaimed(&self, ids: &[PageId]) {
        let mut by_shard: Vec<(usize, PageId)> =
            ids.iter().map(|id| (shard_of(*id), *id)).collect();
        by_shard.sort_unstable();
        let mut removed: Vec<Arc<Frame>> = Vec::with_capacity(ids.len());
        for run in by_shard.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = self.shards[run[0].0].lock();
            for (_, id) in run {
                if let Some(frame) = shard.frames.remove(id) {
                    self.withdraw(&frame);
                    removed.push(frame);
                }
            }
        }
        if removed.is_empty() {
            return;
        }
        for frame in &removed {
            frame.dirty.store(false, Ordering::Release);
        }
        let mut clock = self.clock.lock();
        for frame in &removed {
            self.leave_ring(&mut clock, frame);
        }
        drop(clock);
        self.spare.keep_all(removed, Prior::Committed);
    }

    /// Hold up to `bytes` of frames fewer until the returned loan is dropped, so their memory
    /// can serve someone else within the pool's budget (recovery's redo buffer). Only free
    /// slots are lent, and at least 16 frames stay usable. The loan's `bytes()` says how much
    /// was lent. Frames are never touched for it: a lent slot's arena memory stays unused.
    /// A read-only pool lends nothing: it cannot evict its dirty frames, so fewer frames would
    /// only make its ring grow past capacity for good.
    pub fn lend(&self, bytes: u64) -> FrameLoan<'_> {
        if self.read_only {
            return FrameLoan {
                pool: self,
                slots: Vec::new(),
            };
        }
        let wanted = usize::try_from(bytes / self.page_size as u64).unwrap_or(usize::MAX);
        // Spare frames' memory back to the arena: a loan counts on lent slots' memory staying
        // unused, and spare frames hold memory outside the ring.
        self.spare.clear();
        let mut clock = self.clock.lock();
        let usable = clock.ring.len() - self.lent.load(Ordering::Relaxed);
        let n = wanted
            .min(usable.saturating_sub(MIN_USABLE_FRAMES))
            .min(clock.free_slots.len());
        let at = clock.free_slots.len() - n;
        let lent: Vec<usize> = clock.free_slots.drain(at..).collect();
        self.lent.fetch_add(n, Ordering::Relaxed);
        FrameLoan {
            pool: self,
            slots: lent,
        }
    }

    /// A free ring slot, evicting (and writing back) as needed. When every frame is pinned the
    /// pool grows past capacity rather than deadlock; the ring grows with it (and keeps that
    /// length: the extra slots are reused as frames are evicted).
    fn reserve_slot(&self) -> usize {
        // Two sweeps at most: the second one after writing back the dirty frames of the first.
        for _ in 0..2 {
            match self.sweep() {
                Sweep::Slot(slot) => return slot,
                Sweep::WroteBack(written) if written > 0 => continue,
                Sweep::WroteBack(_) | Sweep::AllPinned => break,
            }
        }
        let mut clock = self.clock.lock();
        if let Some(slot) = clock.free_slots.pop() {
            return slot;
        }
        tracing::warn!(
            capacity = self.capacity,
            "no evictable frame; the pool grows past its capacity"
        );
        clock.ring.push(None);
        clock.ring.len() - 1
    }

    fn sweep(&self) -> Sweep {
        let mut clock = self.clock.lock();
        if let Some(slot) = clock.free_slots.pop() {
            return Sweep::Slot(slot);
        }
        let len = clock.ring.len();
        let mut dirty_batch: Vec<Arc<Frame>> = Vec::new();
        for _ in 0..len * 3 {
            let hand = clock.hand;
            clock.hand = (hand + 1) % len;
            // An empty entry while `free_slots` is empty is a slot another install reserved
            // and has not filled yet (handing it out again would put two frames in one slot),
            // or a lent one.
            let Some(frame) = clock.ring[hand].as_ref() else {
                continue;
            };
            let read_lock_free = frame
                .arena_index
                .is_some_and(|index| self.arena.take_referenced(index));
            if frame.referenced.swap(false, Ordering::Relaxed)
                || read_lock_free
                || Arc::strong_count(frame) > 2
            {
                continue;
            }
            if frame.dirty.load(Ordering::Acquire) {
                if self.read_only {
                    continue; // kept in memory: nothing may be written
                }
                if dirty_batch.len() < WRITE_BACK_BATCH {
                    dirty_batch.push(Arc::clone(frame));
                }
                if dirty_batch.len() == WRITE_BACK_BATCH
                    && self.write_back(std::mem::take(&mut dirty_batch)) == 0
                {
                    break;
                }
                continue;
            }
            let id = frame.id;
            let mut shard = self.shard(id).lock();
            // Nobody can pin it while we hold its shard; the count tells if someone did before.
            if Arc::strong_count(frame) > 2 || frame.dirty.load(Ordering::Acquire) {
                continue;
            }
            // Only this frame: a discard may have dropped it and a newer frame of the page
            // taken its place in the table.
            if shard.frames.get(&id).is_some_and(|f| Arc::ptr_eq(f, frame)) {
                shard.frames.remove(&id);
                self.withdraw(frame);
            }
            drop(shard);
            if let Some(frame) = clock.ring[hand].take() {
                self.count_out(&frame);
            }
            self.evictions.fetch_add(1, Ordering::Relaxed);
            return Sweep::Slot(hand);
        }
        if dirty_batch.is_empty() {
            Sweep::AllPinned
        } else {
            Sweep::WroteBack(self.write_back(dirty_batch))
        }
    }

    /// Write frames to their pages (sealed copies), then mark them clean. Errors leave them
    /// dirty; the next checkpoint reports the failure. Returns how many were written.
    ///
    /// Runs under the clock lock (only the sweep calls it), and that is what makes dropping a
    /// freed page's frame safe while its stale bytes are being written here: the page's next
    /// owner needs the clock lock to get a frame at all, so its bytes reach the file after
    /// these.
    fn write_back(&self, frames: Vec<Arc<Frame>>) -> usize {
        debug_assert!(self.clock.is_locked());
        let _in_flight = self.write_backs_in_flight.read();
        let mut written = 0;
        let mut ops = Vec::with_capacity(frames.len());
        for frame in &frames {
            let data = frame.data.read();
            let mut copy = AlignedBuf::from_slice(&data);
            page::seal(&mut copy);
            frame.dirty.store(false, Ordering::Release);
            ops.push(IoOp::Write {
                offset: frame.id * self.page_size as u64,
                buf: copy,
            });
        }
        let results = submit_wait(&*self.file, ops);
        for (frame, result) in frames.iter().zip(results) {
            if let Err(err) = result {
                tracing::warn!(page = frame.id, error = %err, "write-back failed");
                self.latch(format!("write-back of page {} failed: {err}", frame.id));
                frame.dirty.store(true, Ordering::Release);
            } else {
                written += 1;
                self.write_backs.fetch_add(1, Ordering::Relaxed);
            }
        }
        written
    }

    /// The ids of every dirty frame, in page order, for a checkpoint to write. Nothing is
    /// pinned: the checkpoint pins one batch at a time (`pin_if_dirty`), so a large dirty set
    /// never keeps the pool from evicting; a page evicted meanwhile was written back.
    pub fn dirty_page_ids(&self) -> Vec<PageId> {
        let mut out: Vec<PageId> = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock();
            out.extend(
                shard
                    .frames
                    .values()
                    .filter(|f| f.dirty.load(Ordering::Acquire))
                    .map(|f| f.id),
            );
        }
        out.sort_unstable();
        out
    }

    /// Pin page `id` if it is resident and dirty. The pin keeps the frame resident until its
    /// write has landed, so no reader can miss and read the page's old bytes from disk.
    pub fn pin_if_dirty(&self, id: PageId) -> Option<PageRef> {
        let shard = self.shard(id).lock();
        let frame = shard.frames.get(&id)?;
        frame
            .dirty
            .load(Ordering::Acquire)
            .then(|| PageRef(Arc::clone(frame)))
    }

    /// Copy a dirty page, sealed, into `dst` (one page long) for writing, clearing its dirty
    /// mark. False when another write-back got to it first (nothing copied).
    pub fn seal_into(&self, page: &PageRef, dst: &mut [u8]) -> bool {
        let data = page.0.data.read();
        if !page.0.dirty.swap(false, Ordering::AcqRel) {
            return false;
        }
        dst.copy_from_slice(&data);
        page::seal(dst);
        true
    }

    /// Wait until every eviction write-back that had started is complete (its bytes are with
    /// the OS, so a sync from now on covers them). Returns the pool's failure, if one failed.
    pub fn wait_for_write_backs(&self) -> Option<String> {
        drop(self.write_backs_in_flight.write());
        self.failure()
    }

    /// Put back the dirty mark of a page whose checkpoint write failed.
    pub fn mark_dirty(&self, page: &PageRef) {
        page.0.dirty.store(true, Ordering::Release);
    }

    /// Record the first I/O failure on the data file.
    pub fn latch(&self, reason: String) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            tracing::error!(%reason, "data file latched into the failed state");
            *failure = Some(reason);
        }
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    pub fn stats(&self) -> PoolStats {
        let (retired_frames, retirements) = {
            let retired = self.retired.lock();
            (retired.len(), retired.total())
        };
        PoolStats {
            hits: self.shards.iter().map(|s| s.lock().hits).sum(),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            write_backs: self.write_backs.load(Ordering::Relaxed),
            resident_frames: self.resident.load(Ordering::Relaxed),
            capacity_frames: self.capacity,
            lent_frames: self.lent.load(Ordering::Relaxed),
            heap_frames: self.heap_frames.load(Ordering::Relaxed),
            published_frames: self.published.len(),
            retired_frames,
            retirements,
            spare_frames: self.spare.len(),
            spare_reuses: self.spare.reuses(),
        }
    }
}

/// A small pool over a scratch file (returned too), for unit tests that need real pages (the
/// directory goes when the returned guard drops).
#[cfg(test)]
pub(crate) fn scratch_pool(page_size: usize) -> (tempfile::TempDir, Arc<dyn IoFile>, BufferPool) {
    use crate::io::{os_vfs, IoBackendChoice, OpenOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    let options = OpenOptions {
        create: true,
        read_only: false,
        direct: false,
    };
    let vfs = os_vfs(IoBackendChoice::Sync).expect("vfs");
    let file = vfs.open(&dir.path().join("data"), options).expect("open");
    let pool = BufferPool::new(file.clone(), page_size, 16 * page_size as u64).expect("pool");
    (dir, file, pool)
}

#[cfg(test)]
mod tests;
