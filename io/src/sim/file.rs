//! One simulated file's bytes: what the device holds (`durable`), what the page cache shows
//! (`current`), the writes between them, the pages a failed sync lost, and the images a power
//! loss can leave of them.

use std::collections::BTreeSet;

use super::faults::{CrashMode, SplitMix64, SECTOR_BYTES};

#[derive(Debug, Clone)]
pub(super) enum Pending {
    Write {
        offset: u64,
        data: Vec<u8>,
    },
    /// The file grew; the growth is lost unless a sync follows.
    Grow,
}

/// The page size of the simulated page cache: a lost write loses whole pages.
const CACHE_PAGE: u64 = 4096;

#[derive(Debug, Clone, Default)]
pub(super) struct SimFile {
    pub(super) durable: Vec<u8>,
    pub(super) current: Vec<u8>,
    pub(super) pending: Vec<Pending>,
    /// Cache pages whose writes a failed sync lost: clean, so a sync keeps the disk's bytes
    /// there (zeros past its end) whatever the cache shows.
    pub(super) lost_pages: BTreeSet<u64>,
}

impl SimFile {
    pub(super) fn sync(&mut self) {
        let disk = std::mem::replace(&mut self.durable, self.current.clone());
        for &page in &self.lost_pages {
            let start = (page * CACHE_PAGE) as usize;
            let end = (start + CACHE_PAGE as usize).min(self.durable.len());
            for at in start..end {
                self.durable[at] = disk.get(at).copied().unwrap_or(0);
            }
        }
        self.pending.clear();
    }

    /// The bytes a read at `offset` returns. A buffered read sees the cache. An O_DIRECT read
    /// sees the device, which Linux first brings up to date with the dirty pages of the range
    /// (so they read as the cache does); only pages a failed sync lost differ: clean in the
    /// cache, and the device holds their older bytes (zeros past its end).
    pub(super) fn read_into(&self, offset: u64, buf: &mut [u8], direct: bool) {
        let start = offset as usize;
        buf.copy_from_slice(&self.current[start..start + buf.len()]);
        if !direct {
            return;
        }
        for page in cache_pages(offset, buf.len()) {
            if !self.lost_pages.contains(&page) {
                continue;
            }
            let from = (page * CACHE_PAGE).max(offset) as usize;
            let to = ((page + 1) * CACHE_PAGE).min(offset + buf.len() as u64) as usize;
            for at in from..to {
                buf[at - start] = self.durable.get(at).copied().unwrap_or(0);
            }
        }
    }

    /// A sync failed and lost the pending writes (the growths stay pending).
    pub(super) fn lose_pending_writes(&mut self) {
        for pending in &self.pending {
            if let Pending::Write { offset, data } = pending {
                self.lost_pages.extend(cache_pages(*offset, data.len()));
            }
        }
        self.pending.retain(|p| matches!(p, Pending::Grow));
    }
}

pub(super) fn cache_pages(offset: u64, len: usize) -> std::ops::Range<u64> {
    if len == 0 {
        return 0..0;
    }
    offset / CACHE_PAGE..(offset + len as u64 - 1) / CACHE_PAGE + 1
}

/// Durable bytes plus a random subset of the pending writes, clipped to the durable length
/// (growth that was never synced is lost), with one write torn or garbled per `mode`.
pub(super) fn image_after_power_loss(
    file: &SimFile,
    mode: CrashMode,
    rng: &mut SplitMix64,
) -> Vec<u8> {
    let mut bytes = file.durable.clone();
    let writes: Vec<(u64, &Vec<u8>)> = file
        .pending
        .iter()
        .filter_map(|p| match p {
            Pending::Write { offset, data } => Some((*offset, data)),
            Pending::Grow => None,
        })
        .collect();
    let damaged = if writes.is_empty() {
        usize::MAX
    } else {
        rng.below(writes.len() as u64) as usize
    };
    for (i, (offset, data)) in writes.iter().enumerate() {
        let keep = rng.below(2) == 1;
        let mut data = data.to_vec();
        if i == damaged {
            match mode {
                CrashMode::TornWrite => {
                    let sectors = data.len().div_ceil(SECTOR_BYTES);
                    let survivors = rng.below(sectors as u64 + 1) as usize;
                    // The first `survivors` sectors landed, the rest kept their old bytes.
                    let cut = (survivors * SECTOR_BYTES).min(data.len());
                    let start = *offset as usize;
                    for (j, byte) in data.iter_mut().enumerate().skip(cut) {
                        *byte = bytes.get(start + j).copied().unwrap_or(0);
                    }
                }
                CrashMode::GarbageSector => {
                    let sectors = data.len().div_ceil(SECTOR_BYTES);
                    let s = rng.below(sectors as u64) as usize * SECTOR_BYTES;
                    let end = (s + SECTOR_BYTES).min(data.len());
                    for byte in &mut data[s..end] {
                        *byte = rng.next_u64() as u8;
                    }
                }
                _ => {}
            }
        } else if !keep {
            continue;
        }
        apply_write(&mut bytes, *offset, &data, Some(file.durable.len()));
    }
    bytes
}

pub(super) fn apply_write(bytes: &mut Vec<u8>, offset: u64, data: &[u8], clip_len: Option<usize>) {
    let start = offset as usize;
    let end = start + data.len();
    let limit = clip_len.unwrap_or(end);
    if bytes.len() < end.min(limit) {
        bytes.resize(end.min(limit), 0);
    }
    let stop = end.min(limit);
    if start < stop {
        bytes[start..stop].copy_from_slice(&data[..stop - start]);
    }
}
