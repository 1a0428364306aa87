//! The published table: which arena frame holds a committed page, readable without a lock.
//!
//! A page's frame is *published* once a reader has reached it through a snapshot (so it is
//! committed, and copy-on-write never changes it again). Lock-free readers look pages up here
//! and read their bytes straight from the arena, inside an epoch section (`epoch.rs`).
//!
//! | bits                 | meaning                                            |
//! |----------------------|----------------------------------------------------|
//! | `0`                  | empty: ends a probe                                |
//! | `1`                  | tombstone: a removed entry, probing goes on        |
//! | `(id + 1) << k \| i` | page `id` in arena frame `i` (`k` bits hold `i`)   |
//!
//! - **Open addressing**, linear probing over at most [`PROBES`] buckets, twice as many buckets
//!   as arena frames. The table is a hint: a page not found (window full, id too large for
//!   the bits left, a frame outside the arena) is read through the locked path instead, so
//!   nothing here ever has to grow or be rebuilt.
//! - **Writers** (insert, remove) hold the page's shard lock, so one page id is never changed
//!   by two threads at once; different ids race only for empty buckets, taken by CAS.
//! - Entries are stored and loaded `SeqCst`: the removal must be ordered before a retiring
//!   thread's scan of reader epochs, and a reader's load after its announcement.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::page::PageId;

/// Buckets a lookup or an insert looks at, at most.
const PROBES: usize = 8;

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 1;

pub(super) struct PublishedTable {
    buckets: Box<[AtomicU64]>,
    mask: usize,
    /// Bits of an entry holding the arena frame.
    frame_bits: u32,
    /// Pages published now (statistics; changed with the entries, read by `len`).
    live: AtomicUsize,
}

impl PublishedTable {
    pub(super) fn new(arena_frames: usize) -> Self {
        let buckets = (arena_frames.max(1) * 2).next_power_of_two();
        // At least one bit, so that a live entry is never 0 or 1.
        let frame_bits =
            (usize::BITS - arena_frames.max(2).saturating_sub(1).leading_zeros()).max(1);
        PublishedTable {
            buckets: (0..buckets).map(|_| AtomicU64::new(EMPTY)).collect(),
            mask: buckets - 1,
            frame_bits,
            live: AtomicUsize::new(0),
        }
    }

    fn entry(&self, id: PageId, frame: u32) -> Option<u64> {
        if u64::from(frame) >> self.frame_bits != 0 {
            return None;
        }
        let tag = id.checked_add(1)?;
        if tag.leading_zeros() < self.frame_bits {
            return None;
        }
        Some(tag << self.frame_bits | u64::from(frame))
    }

    fn home(&self, id: PageId) -> usize {
        (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) as usize & self.mask
    }

    fn bucket(&self, id: PageId, probe: usize) -> &AtomicU64 {
        &self.buckets[(self.home(id) + probe) & self.mask]
    }

    /// The arena frame holding page `id`, if it is published.
    pub(super) fn find(&self, id: PageId) -> Option<u32> {
        let tag = id.checked_add(1)?;
        for probe in 0..PROBES {
            let entry = self.bucket(id, probe).load(Ordering::SeqCst);
            if entry == EMPTY {
                return None;
            }
            if entry != TOMBSTONE && entry >> self.frame_bits == tag {
                let frame = entry & ((1u64 << self.frame_bits) - 1);
                return u32::try_from(frame).ok();
            }
        }
        None
    }

    /// Publish page `id` in arena frame `frame`. False when it does not fit (the page is then
    /// read through the locked path). The caller holds the page's shard lock and has not
    /// published the page already.
    pub(super) fn insert(&self, id: PageId, frame: u32) -> bool {
        let Some(entry) = self.entry(id, frame) else {
            return false;
        };
        debug_assert!(self.find(id).is_none(), "page {id} published twice");
        for probe in 0..PROBES {
            let bucket = self.bucket(id, probe);
            let mut seen = bucket.load(Ordering::SeqCst);
            while seen == EMPTY || seen == TOMBSTONE {
                match bucket.compare_exchange(seen, entry, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => {
                        self.live.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                    Err(now) => seen = now,
                }
            }
        }
        false
    }

    /// Withdraw page `id` from frame `frame`. The caller holds the page's shard lock.
    pub(super) fn remove(&self, id: PageId, frame: u32) {
        let Some(entry) = self.entry(id, frame) else {
            return;
        };
        for probe in 0..PROBES {
            let bucket = self.bucket(id, probe);
            if bucket
                .compare_exchange(entry, TOMBSTONE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.live.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            if bucket.load(Ordering::SeqCst) == EMPTY {
                break;
            }
        }
        debug_assert!(
            false,
            "page {id} was published in frame {frame} but is not found"
        );
    }
}

impl PublishedTable {
    pub(super) fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_found_where_published_and_gone_once_removed() {
        let table = PublishedTable::new(100);
        for id in 0..100u64 {
            assert!(table.insert(id, (id as u32 + 3) % 100));
        }
        for id in 0..100u64 {
            assert_eq!(table.find(id), Some((id as u32 + 3) % 100));
        }
        assert_eq!(table.find(100), None);
        table.remove(7, 10);
        assert_eq!(table.find(7), None);
        assert_eq!(table.find(8), Some(11), "a tombstone does not end a probe");
        assert!(table.insert(7, 1), "a removed page can be published again");
        assert_eq!(table.find(7), Some(1));
        assert_eq!(table.len(), 100);
    }

    #[test]
    fn what_does_not_fit_is_refused_never_mistaken() {
        let table = PublishedTable::new(4);
        assert!(!table.insert(u64::MAX, 0), "no bits left for the id");
        assert!(!table.insert(5, 4), "a frame outside the arena");
        assert_eq!(table.find(u64::MAX), None);
        // Eight buckets: after the probe window is full, inserts are refused, and every
        // accepted page is still found with its own frame.
        let accepted: Vec<u64> = (0..64u64)
            .filter(|id| table.insert(*id, (*id % 4) as u32))
            .collect();
        assert!(accepted.len() <= 8);
        for id in 0..64u64 {
            let expected = accepted.contains(&id).then_some((id % 4) as u32);
            assert_eq!(table.find(id), expected, "page {id}");
        }
    }
}
