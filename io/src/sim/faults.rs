//! What can go wrong on the simulated machine: the disks a crash leaves ([`CrashMode`]), the
//! injected I/O errors ([`Fault`]), and the seeded generator every random choice comes from.

use crate::OpKind;

/// The unit a device writes atomically.
pub const SECTOR_BYTES: usize = 512;

/// Which disk a crash leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// The process died; the OS survived: every completed write and entry is readable, but
    /// what was never synced stays in the page cache, where a later power loss drops it.
    ProcessCrash,
    /// Power loss: only what a completed sync made durable survives.
    PowerLoss,
    /// Power loss where the device had written any subset of the unsynced writes.
    KeepSubset,
    /// As `KeepSubset`, and one unsynced write torn: only some of its 512-byte sectors landed.
    TornWrite,
    /// As `KeepSubset`, and one sector of an unsynced write holds garbage.
    GarbageSector,
}

impl CrashMode {
    pub const ALL: [CrashMode; 5] = [
        CrashMode::ProcessCrash,
        CrashMode::PowerLoss,
        CrashMode::KeepSubset,
        CrashMode::TornWrite,
        CrashMode::GarbageSector,
    ];
}

/// An injected I/O error.
#[derive(Debug, Clone)]
pub struct Fault {
    pub op: OpKind,
    /// Only ops on files whose path contains this text (all files when empty).
    pub path_contains: String,
    /// Let this many matching ops succeed first.
    pub skip: u64,
    /// Fail every matching op after the first failure too (a dead disk), not just one.
    pub forever: bool,
    pub errno: i32,
    /// A failed `Sync` loses the file's unsynced writes (see [`Fault::losing_writes`]).
    pub loses_writes: bool,
}

impl Fault {
    pub fn once(op: OpKind, skip: u64, errno: i32) -> Self {
        Fault {
            op,
            path_contains: String::new(),
            skip,
            forever: false,
            errno,
            loses_writes: false,
        }
    }

    pub fn forever(op: OpKind, skip: u64, errno: i32) -> Self {
        Fault {
            forever: true,
            ..Fault::once(op, skip, errno)
        }
    }

    pub fn on_path(mut self, text: &str) -> Self {
        self.path_contains = text.to_string();
        self
    }

    /// A failed `Sync` also loses the writes it was to make durable, as Linux's writeback
    /// error handling does: the pages they touched stay in the cache, readable (by this
    /// process and, after a process crash, the next) and marked clean, so no later sync
    /// writes them; a power loss drops them. A later write to such a page dirties it again.
    pub fn losing_writes(mut self) -> Self {
        self.loses_writes = true;
        self
    }
}

/// A small, fast, seedable generator (SplitMix64), so simulations replay exactly by seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}
