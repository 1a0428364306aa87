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
//! are kept; each holds an arena region the pool would otherwise give back, and every install
//! takes from here first, so no install ever lacks memory that a spare frame holds.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Frame;
use crate::page::PageId;

const SPARE_MAX: usize = 64;

#[derive(Default)]
pub(super) struct SpareFrames(Mutex<Vec<Arc<Frame>>>);

impl SpareFrames {
    /// Keep `frame` if nobody else holds it and it is an arena frame; otherwise it is dropped
    /// (its memory back to the arena when its last holder lets go).
    pub fn keep(&self, frame: Arc<Frame>) {
        if frame.arena_index.is_none() || Arc::strong_count(&frame) != 1 {
            return;
        }
        let mut spare = self.0.lock();
        if spare.len() < SPARE_MAX {
            spare.push(frame);
        }
    }

    /// The most recently kept frame, made page `id` in ring slot `slot`: holding a copy of
    /// `content`, or zeroed.
    pub fn take(
        &self,
        id: PageId,
        slot: usize,
        content: Option<&[u8]>,
        dirty: bool,
    ) -> Option<Arc<Frame>> {
        let mut frame = self.0.lock().pop()?;
        // Unique when kept, and nothing can reach a spare frame to clone it.
        let Some(inner) = Arc::get_mut(&mut frame) else {
            debug_assert!(false, "a spare frame is shared");
            return None;
        };
        let buf = inner.data.get_mut();
        match content {
            Some(content) => buf.copy_from_slice(content),
            None => buf.fill(0),
        }
        inner.id = id;
        inner.slot = slot;
        inner.dirty = AtomicBool::new(dirty);
        inner.referenced = AtomicBool::new(true);
        inner.published = AtomicBool::new(false);
        Some(frame)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.lock().len()
    }
}
