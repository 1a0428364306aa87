//! Frame memory: one aligned allocation for every frame of the buffer pool.
//!
//! Allocating each 4 KiB frame on its own with 4096 alignment costs glibc about twice the
//! frame in resident memory (measured: 16 MiB of frames took 33 MiB). One arena of
//! `capacity × page_size` bytes keeps the pool's memory equal to its setting, and the kernel
//! only commits the arena's pages as frames are first used.
//!
//! The arena is a plain zeroed byte vector with the base rounded up to [`IO_ALIGN`] inside it:
//! a zeroed allocation with alignment 1 is `calloc`, which for large sizes maps fresh zero
//! pages without touching them. An aligned zeroed allocation is `posix_memalign` plus a memset
//! of the whole pool (measured: 40 ms and a fully resident pool at open for 256 MiB).
//!
//! The arena is advised for transparent huge pages (`MADV_HUGEPAGE`; most distributions enable
//! THP only where asked): frames are then backed 2 MiB at a time as they are first used, and a
//! hot set of a few MiB needs a handful of TLB entries instead of hundreds. Measured in W11: a
//! hot KV get 0.64 µs on 4 KiB pages, 0.48 µs with huge pages.
//!
//! Safety: region `i` is handed to exactly one [`FrameBuf`] at a time, and goes back to the
//! free list only when that `FrameBuf` is dropped, so no two live slices ever overlap. The one
//! other view is a lock-free reader's shared slice of a published (committed, never written)
//! frame, which the pool keeps from being dropped until the reader is done (`pool/epoch.rs`).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::io::{AlignedBuf, IO_ALIGN};

pub struct Arena {
    // Keeps the allocation alive; all access goes through `base`. Never resized.
    _memory: Vec<u8>,
    base: *mut u8,
    page_size: usize,
    frames: usize,
    free: Mutex<Vec<u32>>,
    /// The CLOCK reference bit of each frame, set by lock-free readers (who never touch the
    /// pool's `Frame`); the sweep reads it beside the frame's own bit.
    referenced: Box<[AtomicBool]>,
}

// SAFETY: the arena hands out disjoint regions (see the module comment); the pointer is only
// dereferenced through a FrameBuf that owns its region, or read through `published_page`
// while nobody writes that region.
unsafe impl Send for Arena {}
// SAFETY: as above; the free list is behind a mutex.
unsafe impl Sync for Arena {}

impl Arena {
    pub fn new(frames: usize, page_size: usize) -> Arc<Self> {
        let mut memory = vec![0u8; frames * page_size + IO_ALIGN];
        let offset = (IO_ALIGN - memory.as_ptr() as usize % IO_ALIGN) % IO_ALIGN;
        // SAFETY: `offset < IO_ALIGN`, so `base .. base + frames × page_size` lies inside `memory`.
        let base = unsafe { memory.as_mut_ptr().add(offset) };
        #[cfg(target_os = "linux")]
        // SAFETY: the range lies inside `memory`; MADV_HUGEPAGE only changes how the kernel
        // backs it (a failure leaves it as it was, so the result is ignored).
        unsafe {
            libc::madvise(
                base.cast::<libc::c_void>(),
                frames * page_size,
                libc::MADV_HUGEPAGE,
            );
        }
        Arc::new(Arena {
            _memory: memory,
            base,
            page_size,
            frames,
            referenced: (0..frames).map(|_| AtomicBool::new(false)).collect(),
            free: Mutex::new((0..frames as u32).rev().collect()),
        })
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The bytes of frame `index`, for a lock-free reader, and its reference bit set.
    ///
    /// # Safety
    /// The frame must hold a published page (committed: nobody writes it) and stay allocated
    /// while the slice lives, which an epoch section guarantees for a frame found in the
    /// published table (`pool/epoch.rs`).
    pub unsafe fn published_page(&self, index: u32) -> Option<&[u8]> {
        let index = index as usize;
        let bit = self.referenced.get(index)?;
        if !bit.load(Ordering::Relaxed) {
            bit.store(true, Ordering::Relaxed);
        }
        // SAFETY: `index` is within the arena (the bit exists); the caller guarantees the
        // frame is neither written nor reused meanwhile.
        Some(unsafe {
            std::slice::from_raw_parts(self.base.add(index * self.page_size), self.page_size)
        })
    }

    /// Clear frame `index`'s lock-free reference bit, returning it.
    pub fn take_referenced(&self, index: u32) -> bool {
        self.referenced
            .get(index as usize)
            .is_some_and(|bit| bit.load(Ordering::Relaxed) && bit.swap(false, Ordering::Relaxed))
    }

    /// A frame filled as `content` says, from the arena — or from the heap when the arena is
    /// exhausted (every frame pinned: the pool then grows past its capacity until pins are
    /// released).
    pub fn take(self: &Arc<Self>, content: Fill<'_>) -> FrameBuf {
        self.try_take(content).unwrap_or_else(|| {
            let mut buf = FrameBuf::Heap(AlignedBuf::zeroed(self.page_size));
            fill(&mut buf, content, Prior::Unknown);
            buf
        })
    }

    /// [`take`](Arena::take) from the arena only: `None` when it has no free frame.
    pub fn try_take(self: &Arc<Self>, content: Fill<'_>) -> Option<FrameBuf> {
        let index = self.free.lock().pop()?;
        let mut buf = FrameBuf::Arena {
            arena: Arc::clone(self),
            index,
        };
        // A free region may have been any frame's, a transaction's that never committed too.
        fill(&mut buf, content, Prior::Unknown);
        Some(buf)
    }
}

/// What a frame taken for a new page holds.
#[derive(Clone, Copy)]
pub enum Fill<'a> {
    Zeros,
    Copy(&'a [u8]),
    /// A copy of the page but for `gap`, its free middle, which is not copied: a copy-on-write
    /// reads only the bytes the node uses. The middle is left as the memory had it when that
    /// memory held only bytes of committed pages ([`Prior::Committed`]: a frame of a reclaimed
    /// version), and zeroed otherwise: memory of a transaction that never committed, or of
    /// unknown origin, must not reach a live page. A free middle's content is unspecified
    /// (FORMAT.md). Measured (perf, one-writer commits without fsync): against a whole copy,
    /// copying around a zeroed middle cut the copy's cost by about a quarter; leaving the
    /// middle unwritten in a reclaimed frame cut 1.5–2 µs of a 12–15 µs commit (the frames of
    /// a version retained 1,024 commits ago are cold, and zeroing touched every line).
    CopyAround {
        page: &'a [u8],
        gap: (usize, usize),
    },
}

/// What a frame's memory held before it is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prior {
    /// Only bytes of committed pages of this store: a frame of a reclaimed version, whose
    /// bytes (a copy's unwritten middle included, by induction) all came from committed pages
    /// or zeros.
    Committed,
    /// Anything: a transaction's own page that it freed or never committed, a region back
    /// from the arena's free list.
    Unknown,
}

pub(crate) fn fill(buf: &mut FrameBuf, content: Fill<'_>, prior: Prior) {
    match content {
        Fill::Zeros => buf.fill(0),
        Fill::Copy(page) => buf.copy_from_slice(page),
        Fill::CopyAround {
            page,
            gap: (start, end),
        } if start <= end && end <= page.len() && page.len() == buf.len() => {
            buf[..start].copy_from_slice(&page[..start]);
            if prior == Prior::Unknown {
                buf[start..end].fill(0);
            }
            buf[end..].copy_from_slice(&page[end..]);
        }
        Fill::CopyAround { page, .. } => buf.copy_from_slice(page),
    }
}

/// The bytes of one frame.
pub enum FrameBuf {
    Arena { arena: Arc<Arena>, index: u32 },
    Heap(AlignedBuf),
}

impl FrameBuf {
    /// Its frame in the arena (none for a heap buffer).
    pub fn arena_index(&self) -> Option<u32> {
        match self {
            FrameBuf::Arena { index, .. } => Some(*index),
            FrameBuf::Heap(_) => None,
        }
    }
}

impl Drop for FrameBuf {
    fn drop(&mut self) {
        if let FrameBuf::Arena { arena, index } = self {
            arena.free.lock().push(*index);
        }
    }
}

impl Deref for FrameBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            // SAFETY: region `index` belongs to this FrameBuf alone while it lives.
            FrameBuf::Arena { arena, index } => unsafe {
                std::slice::from_raw_parts(
                    arena.base.add(*index as usize * arena.page_size),
                    arena.page_size,
                )
            },
            FrameBuf::Heap(buf) => buf,
        }
    }
}

impl DerefMut for FrameBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            // SAFETY: as in deref, and `&mut self` makes the access exclusive.
            FrameBuf::Arena { arena, index } => unsafe {
                std::slice::from_raw_parts_mut(
                    arena.base.add(*index as usize * arena.page_size),
                    arena.page_size,
                )
            },
            FrameBuf::Heap(buf) => buf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_disjoint_reused_and_zeroed() {
        let arena = Arena::new(2, 4096);
        let mut a = arena.take(Fill::Zeros);
        let mut b = arena.take(Fill::Zeros);
        a.fill(1);
        b.fill(2);
        assert!(a.iter().all(|x| *x == 1) && b.iter().all(|x| *x == 2));
        assert_eq!(a.as_ptr() as usize % 4096, 0);
        let c = arena.take(Fill::Copy(&[5u8; 4096]));
        assert!(c.iter().all(|x| *x == 5));
        assert!(
            matches!(c, FrameBuf::Heap(_)),
            "exhausted arena falls back to the heap"
        );
        drop(a);
        let d = arena.take(Fill::Zeros);
        assert!(matches!(d, FrameBuf::Arena { .. }));
        assert!(d.iter().all(|x| *x == 0), "a reused region is zeroed");
    }

    #[test]
    fn a_copy_around_a_gap_copies_both_sides_and_zeroes_the_gap() {
        let arena = Arena::new(2, 4096);
        let mut page = vec![0xAB; 4096];
        page[100..3000].fill(0xCD);
        let mut old = arena.take(Fill::Zeros);
        old.fill(0x11);
        drop(old);
        let copy = arena.take(Fill::CopyAround {
            page: &page,
            gap: (100, 3000),
        });
        assert!(copy[..100].iter().all(|b| *b == 0xAB));
        assert!(copy[3000..].iter().all(|b| *b == 0xAB));
        assert!(
            copy[100..3000].iter().all(|b| *b == 0),
            "the gap is zeroed: nothing of the frame's last page stays"
        );
        // A gap that does not fit the page is no gap: the page is copied whole.
        let whole = arena.take(Fill::CopyAround {
            page: &page,
            gap: (3000, 5000),
        });
        assert_eq!(&whole[..], &page[..]);
    }
}
