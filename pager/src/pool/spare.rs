//! Frames of discarded pages, kept whole for the next install.
//!
//! Copy-on-write frees a page for every one it copies, and installs a frame for the copy. A
//! discarded frame's memory was just read (it was the copy's source a version ago), so it is
//! still in the CPU's cache, while a frame allocated afresh and a region taken from the
//! arena's free list are cold. Measured at 64 writers: the store into a freshly allocated
//! `Frame` and the page copy into a cold region were a fifth of the leaf insert. Installing
//! into a spare frame skips the allocation and copies into warm memory.
//!
//! Only a frame nobody else can reach is kept: out of the page table and the ring, held by no
//! `PageRef`, and not retired (a published frame goes to the retired list while a lock-free
//! reader may still read it): its `Arc` is unique. Invariant: at most `SPARE_MAX` frames
//! are kept; each holds an arena region the pool would otherwise give back. Every install
//! takes from here first, and one that finds the arena empty looks here again before it takes
//! heap memory; a loan (`BufferPool::lend`) gives every spare region back first. So no install
//! lacks memory that a spare frame holds, and `PoolStats::spare_frames` counts them;
//! `PoolStats::spare_reuses` counts the frames handed out again, so a test can tell that an
//! install really went through here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Frame;
use crate::arena::{fill, Fill, FrameBuf, Prior};
use crate::page::PageId;

const SPARE_MAX: usize = 64;

/// Whether a discarded frame may be kept: arena memory, and nobody else holds it.
fn keepable(frame: &Arc<Frame>) -> bool {
    frame.arena_index.is_some() && Arc::strong_count(frame) == 1
}

#[derive(Default)]
pub(super) struct SpareFrames {
    /// Each with what its bytes may hold (`Prior`), which decides whether a copy into it must
    /// zero the free middle it does not copy.
    frames: Mutex<Vec<(Arc<Frame>, Prior)>>,
    /// Frames (or their memory) handed out by `take` and `take_memory`.
    reuses: AtomicU64,
}

impl SpareFrames {
    /// Keep `frame` if nobody else holds it and it is an arena frame; otherwise it is dropped
    /// (its memory back to the arena when its last holder lets go). `keep` runs for every page
    /// a commit discards: it builds no list. `prior` says what its bytes may hold.
    pub fn keep(&self, frame: Arc<Frame>, prior: Prior) {
        if !keepable(&frame) {
            return;
        }
        let mut spare = self.frames.lock();
        if spare.len() < SPARE_MAX {
            spare.push((frame, prior));
            return;
        }
        drop(spare);
        // No room: dropped after the lock (see `keep_all`).
        drop(frame);
    }

    /// [`keep`](SpareFrames::keep) for many frames, under one lock. Frames not kept are
    /// dropped outside the lock: a last drop returns memory to the arena, which an `install`
    /// waiting for this lock need not wait for.
    pub fn keep_all(&self, mut frames: Vec<Arc<Frame>>, prior: Prior) {
        frames.retain(keepable);
        if frames.is_empty() {
            return;
        }
        let mut spare = self.frames.lock();
        let room = SPARE_MAX.saturating_sub(spare.len()).min(frames.len());
        spare.extend(frames.drain(..room).map(|frame| (frame, prior)));
        drop(spare);
        drop(frames);
    }

    /// The most recently kept frame, made page `id` in ring slot `slot`, filled as `content`
    /// says.
    pub fn take(
        &self,
        id: PageId,
        slot: usize,
        content: Fill<'_>,
        dirty: bool,
    ) -> Option<Arc<Frame>> {
        let (mut frame, prior) = self.frames.lock().pop()?;
        // Unique when kept, and nothing can reach a spare frame to clone it.
        let Some(inner) = Arc::get_mut(&mut frame) else {
            debug_assert!(false, "a spare frame is shared");
            return None;
        };
        fill(inner.data.get_mut(), content, prior);
        inner.id = id;
        inner.slot = slot;
        inner.dirty = AtomicBool::new(dirty);
        inner.referenced = AtomicBool::new(true);
        inner.published = AtomicBool::new(false);
        self.reuses.fetch_add(1, Ordering::Relaxed);
        Some(frame)
    }

    /// The memory of the most recently kept frame, for an install that found the arena
    /// empty, filled as `content` says.
    pub fn take_memory(&self, content: Fill<'_>) -> Option<FrameBuf> {
        let (frame, prior) = self.frames.lock().pop()?;
        // Unique when kept (see `take`).
        let mut buf = Arc::try_unwrap(frame).ok()?.data.into_inner();
        fill(&mut buf, content, prior);
        self.reuses.fetch_add(1, Ordering::Relaxed);
        Some(buf)
    }

    /// Give every kept frame's memory back to the arena.
    pub fn clear(&self) {
        let kept = std::mem::take(&mut *self.frames.lock());
        drop(kept);
    }

    pub fn len(&self) -> usize {
        self.frames.lock().len()
    }

    /// Frames (or their memory) handed out again so far.
    pub fn reuses(&self) -> u64 {
        self.reuses.load(Ordering::Relaxed)
    }
}
