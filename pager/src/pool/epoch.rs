//! Epochs for lock-free page reads: a reader announces when it starts, and a frame taken out
//! of the published table is kept (its memory not reused) until every reader that could have
//! found it there has finished.
//!
//! - **Readers** ([`enter`]) store the global epoch into their own padded slot with a
//!   sequentially consistent store, then read the table; leaving stores 0. No shared line is
//!   written on the read path.
//! - **Retiring** ([`Retired::push`]) happens after the frame's table entry is gone: the global
//!   epoch is advanced and the frame is tagged with the epoch before the advance. A reader that
//!   entered later cannot see the entry (store–load order on both sides, `SeqCst`), so the frame
//!   may go once no reader announces an epoch at or below its tag.
//! - **Bounded**: a pool keeps at most [`RETIRED_MAX`] retired frames. Past that, the retiring
//!   thread waits for readers to move on. That cannot deadlock: a reader's epoch section runs
//!   only page-table loads, node searches and a copy — it takes no lock and never waits.
//! - One domain for the process (like crossbeam's default collector): a thread claims a slot on
//!   its first lock-free read and gives it back when it exits. With every slot claimed, reads
//!   take the locked path.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::Frame;

/// Threads that can read lock-free at once; more fall back to the locked path.
const PARTICIPANTS: usize = 256;

/// Retired frames a pool holds before a retiring thread waits for readers. Each holds a page
/// of arena memory (an install waits briefly for it, then takes a heap frame): this bounds the
/// overshoot.
pub(super) const RETIRED_MAX: usize = 256;

/// One reader's announced epoch (0: not reading), on a line of its own.
#[repr(align(128))]
struct Announcement {
    epoch: AtomicU64,
    claimed: AtomicBool,
}

struct Domain {
    epoch: AtomicU64,
    /// Slots not claimed: a thread that found none tries again once this is above zero.
    unclaimed: AtomicUsize,
    /// One past the highest slot ever claimed: scans stop there.
    high_water: AtomicUsize,
    slots: [Announcement; PARTICIPANTS],
}

static DOMAIN: Domain = Domain {
    epoch: AtomicU64::new(1),
    unclaimed: AtomicUsize::new(PARTICIPANTS),
    high_water: AtomicUsize::new(0),
    slots: [const {
        Announcement {
            epoch: AtomicU64::new(0),
            claimed: AtomicBool::new(false),
        }
    }; PARTICIPANTS],
};

/// This thread's slot, claimed on its first lock-free read and given back at thread exit.
struct Participant {
    slot: Cell<Option<usize>>,
}

/// Claim a free slot, if any.
fn claim() -> Option<usize> {
    if DOMAIN.unclaimed.load(Ordering::Relaxed) == 0 {
        return None;
    }
    // Load first: a CAS on a claimed slot would take an active reader's line exclusively.
    let slot = (0..PARTICIPANTS).find(|i| {
        let claimed = &DOMAIN.slots[*i].claimed;
        !claimed.load(Ordering::Relaxed)
            && claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    })?;
    DOMAIN.unclaimed.fetch_sub(1, Ordering::Relaxed);
    // SeqCst: a retiring thread that reads the old mark cannot miss this reader (its
    // announcement comes after this in the single order of SeqCst operations).
    DOMAIN.high_water.fetch_max(slot + 1, Ordering::SeqCst);
    Some(slot)
}

impl Participant {
    /// This thread's slot, claimed now if it has none (a thread that once found every slot
    /// taken tries again when one has been given back).
    fn slot(&self) -> Option<usize> {
        if let Some(slot) = self.slot.get() {
            return Some(slot);
        }
        let slot = claim();
        self.slot.set(slot);
        slot
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        if let Some(i) = self.slot.get() {
            DOMAIN.slots[i].epoch.store(0, Ordering::Release);
            DOMAIN.slots[i].claimed.store(false, Ordering::Release);
            DOMAIN.unclaimed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static PARTICIPANT: Participant = const { Participant { slot: Cell::new(None) } };
    /// Inside an epoch section (sections do not nest); apart from the slot, so that asking
    /// claims nothing.
    static IN_SECTION: Cell<bool> = const { Cell::new(false) };
}

/// An epoch section: while it lives, no frame this thread can find in a published table is
/// reused. Not `Send`: it announces this thread.
pub(super) struct EpochGuard {
    slot: usize,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Enter an epoch section, or `None` when this thread has no slot (too many threads) or is
/// already inside one.
pub(super) fn enter() -> Option<EpochGuard> {
    if in_section() {
        return None;
    }
    let slot = PARTICIPANT.try_with(Participant::slot).ok().flatten()?;
    IN_SECTION.with(|active| active.set(true));
    let epoch = DOMAIN.epoch.load(Ordering::SeqCst);
    DOMAIN.slots[slot].epoch.store(epoch, Ordering::SeqCst);
    Some(EpochGuard {
        slot,
        _not_send: std::marker::PhantomData,
    })
}

impl Drop for EpochGuard {
    fn drop(&mut self) {
        DOMAIN.slots[self.slot].epoch.store(0, Ordering::Release);
        IN_SECTION.with(|active| active.set(false));
    }
}

/// Whether this thread is inside an epoch section: it must then never wait for readers (it
/// would wait for itself).
pub(super) fn in_section() -> bool {
    IN_SECTION.try_with(Cell::get).unwrap_or(false)
}

/// The lowest epoch a reader announces, or `u64::MAX` when none is reading.
fn oldest_announced() -> u64 {
    let high = DOMAIN.high_water.load(Ordering::SeqCst);
    DOMAIN.slots[..high]
        .iter()
        .map(|slot| slot.epoch.load(Ordering::SeqCst))
        .filter(|epoch| *epoch != 0)
        .min()
        .unwrap_or(u64::MAX)
}

/// A pool's frames taken out of its published table, each with the epoch it left in.
#[derive(Default)]
pub(super) struct Retired {
    frames: Vec<(u64, Arc<Frame>)>,
    total: u64,
}

impl Retired {
    /// Keep `frame` (already gone from the published table) until no reader can hold it.
    pub(super) fn push(&mut self, frame: Arc<Frame>) {
        let tag = DOMAIN.epoch.fetch_add(1, Ordering::SeqCst);
        self.frames.push((tag, frame));
        self.total += 1;
        // At once: with no reader in the way the frame goes now, as an evicted frame always
        // did (its memory back in the arena, its allocation reused while still in cache). The
        // scan reads a line per thread that ever read lock-free.
        self.collect();
        // Bounded: wait for the readers (their sections never block, so they move on).
        // Never from inside a section, which would wait for itself.
        let mut spins = 0u32;
        while self.frames.len() >= RETIRED_MAX && !in_section() {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            self.collect();
        }
    }

    /// Drop the frames no reader can hold any more.
    pub(super) fn collect(&mut self) {
        if self.frames.is_empty() {
            return;
        }
        let oldest = oldest_announced();
        self.frames.retain(|(tag, _)| *tag >= oldest);
    }

    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    pub(super) fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_announces_its_epoch_and_leaving_clears_it() {
        let guard = enter().expect("a slot for this thread");
        assert!(in_section());
        assert!(enter().is_none(), "sections do not nest");
        assert!(oldest_announced() <= DOMAIN.epoch.load(Ordering::SeqCst));
        drop(guard);
        assert!(!in_section());
        assert!(enter().is_some(), "a new section after leaving");
    }

    #[test]
    fn a_retired_tag_waits_for_a_reader_that_entered_before_it() {
        // The reader announces on another thread; the retirement comes after it entered.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (leave_tx, leave_rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let guard = enter().expect("slot");
            entered_tx.send(()).expect("send");
            leave_rx.recv().expect("recv");
            drop(guard);
        });
        entered_rx.recv().expect("entered");
        let tag = DOMAIN.epoch.fetch_add(1, Ordering::SeqCst);
        assert!(
            oldest_announced() <= tag,
            "the reader's epoch is at or below the tag: what it found must be kept"
        );
        leave_tx.send(()).expect("leave");
        reader.join().expect("reader");
        // Other tests' readers may have entered before the tag too; their sections are short.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while oldest_announced() <= tag {
            assert!(std::time::Instant::now() < deadline, "a reader never left");
            std::thread::yield_now();
        }
    }
}
