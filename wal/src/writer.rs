//! The log writer: frames are appended to an in-memory group, then written with one write (and
//! one fsync when asked) — group commit. Segments rotate when full; segments wholly covered by
//! a durable checkpoint are deleted.
//!
//! Invariants:
//! 1. `synced_lsn ≤ written_lsn ≤ last appended LSN`, and every frame carries the `synced_lsn`
//!    of the moment it was appended.
//! 2. An appended frame is never taken back: the caller appends a commit's frame only once the
//!    commit can no longer fail (nothing to roll back, so no LSN is ever handed out twice, and
//!    a rotation inside `append` cannot strand half a frame).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aedb_io::{all_ok, AlignedBuf, IoFile, IoOp, OpenOptions, Vfs};

use crate::error::{Result, WalError};
use crate::frame::{self, FrameHeader, Integrity, MAX_PAYLOAD_BYTES};
use crate::reader::ScanOutcome;
use crate::segment::{create_segment, segment_path, SegmentHeader, SEGMENT_HEADER_BYTES};

#[derive(Debug, Clone)]
pub struct WalConfig {
    pub segment_bytes: u64,
    pub integrity: Integrity,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 << 20,
            integrity: Integrity::default(),
        }
    }
}

/// How far ahead of small writes the segment is written with zeros. A segment is preallocated
/// (`fallocate`), so its blocks start "unwritten": the first write into one makes the file
/// system record the conversion, which `fdatasync` must then also make durable (measured on
/// ext4: a quarter more per flush than overwriting written blocks). Writing zeros ahead in
/// large pieces turns that into one conversion per piece instead of one per 4 KiB block.
/// Zeros after the last frame read as the end of the log, as unwritten blocks do.
const ZERO_AHEAD_BYTES: u64 = 256 << 10;

pub struct WalWriter {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    config: WalConfig,
    file: Arc<dyn IoFile>,
    segment: u64,
    /// Where the next write goes in the current segment.
    offset: u64,
    /// Frames appended but not yet written.
    pending: Vec<u8>,
    /// The segment is written (frames or zeros) up to here.
    zeroed_to: u64,
    next_lsn: u64,
    chain: [u8; 32],
    written_lsn: u64,
    synced_lsn: u64,
    /// (segment number, first LSN) of every live segment, oldest first.
    segments: VecDeque<(u64, u64)>,
}

impl WalWriter {
    /// Start writing after recovery: a new segment continues at the LSN after both the valid
    /// log and the checkpoint; stale segments are deleted first.
    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        config: WalConfig,
        scan: &ScanOutcome,
        checkpoint_lsn: u64,
    ) -> Result<Self> {
        vfs.create_dir_all(dir)?;
        for stale in &scan.stale {
            vfs.remove(stale)?;
        }
        if !scan.stale.is_empty() {
            vfs.sync_dir(dir)?;
        }
        let last = scan.last_lsn.max(checkpoint_lsn);
        let number = scan.segments.last().map_or(1, |s| s.number + 1);
        let header = SegmentHeader {
            number,
            first_lsn: last + 1,
            chain: scan.chain,
        };
        let file = create_segment(&*vfs, dir, header, config.segment_bytes)?;
        let mut segments: VecDeque<(u64, u64)> = scan
            .segments
            .iter()
            .map(|s| (s.number, s.first_lsn))
            .collect();
        segments.push_back((number, last + 1));
        Ok(WalWriter {
            vfs,
            dir: dir.to_path_buf(),
            config,
            file,
            segment: number,
            offset: SEGMENT_HEADER_BYTES,
            pending: Vec::new(),
            zeroed_to: SEGMENT_HEADER_BYTES,
            next_lsn: last + 1,
            chain: scan.chain,
            written_lsn: last,
            synced_lsn: last,
            segments,
        })
    }

    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }
    pub fn written_lsn(&self) -> u64 {
        self.written_lsn
    }

    pub fn synced_lsn(&self) -> u64 {
        self.synced_lsn
    }
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of log the live segments hold (for checkpoint triggers).
    pub fn live_bytes(&self) -> u64 {
        (self.segments.len() as u64 - 1) * self.config.segment_bytes
            + self.offset
            + self.pending.len() as u64
    }

    /// Make room for frames of these payload sizes in the current segment, rotating now when
    /// they would not fit but fit a fresh one: a group's frames then share one segment, so a
    /// rotation (the one step of an append that does I/O) cannot fall between them.
    pub fn reserve(&mut self, payloads: impl Iterator<Item = usize>) -> Result<()> {
        let frames: u64 = payloads.map(|len| frame::frame_bytes(len) as u64).sum();
        let used = self.offset + self.pending.len() as u64;
        let fits_fresh = SEGMENT_HEADER_BYTES + frames <= self.config.segment_bytes;
        if used > SEGMENT_HEADER_BYTES && used + frames > self.config.segment_bytes && fits_fresh {
            self.rotate()?;
        }
        Ok(())
    }

    /// Append the frame of commit `seq`; returns its LSN. Nothing reaches the file until `flush`.
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> Result<u64> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(WalError::FrameTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let frame_len = frame::frame_bytes(payload.len());
        let used = self.offset + self.pending.len() as u64;
        if used > SEGMENT_HEADER_BYTES && used + frame_len as u64 > self.config.segment_bytes {
            self.rotate()?;
        }
        let lsn = self.next_lsn;
        let header = FrameHeader {
            len: payload.len() as u32,
            lsn,
            seq,
            synced_through: self.synced_lsn,
            flags: 0,
        };
        self.chain = frame::encode(
            &mut self.pending,
            header,
            payload,
            &self.config.integrity,
            &self.chain,
        );
        self.next_lsn += 1;
        Ok(lsn)
    }

    /// Write every appended frame with one write, and make them durable with one fsync when
    /// `sync`. On error the writer must not be used again (the caller latches).
    pub fn flush(&mut self, sync: bool) -> Result<()> {
        let mut ops = Vec::with_capacity(3);
        let wrote = !self.pending.is_empty();
        if wrote {
            let buf = AlignedBuf::from_slice(&self.pending);
            ops.push(IoOp::Write {
                offset: self.offset,
                buf,
            });
        }
        let zero = self.zero_ahead();
        if let Some((offset, len)) = zero {
            ops.push(IoOp::Write {
                offset,
                buf: AlignedBuf::zeroed(len as usize),
            });
        }
        let last = self.next_lsn - 1;
        if sync && self.synced_lsn < last {
            ops.push(IoOp::Sync);
        }
        if ops.is_empty() {
            return Ok(());
        }
        let mut results = self.file.submit_now(ops).into_iter();
        // A write that went through counts as written even when the sync after it failed: the
        // commits it holds may be on disk, which their answer has to say.
        if wrote {
            match results.next() {
                Some(Ok(_)) => {
                    self.offset += self.pending.len() as u64;
                    self.zeroed_to = self.zeroed_to.max(self.offset);
                    self.pending.clear();
                    self.written_lsn = last;
                }
                Some(Err(err)) => return Err(err.into()),
                None => return Err(WalError::Io(missing_result())),
            }
        } else {
            self.written_lsn = last;
        }
        if let Some((offset, len)) = zero {
            match results.next() {
                Some(Ok(_)) => self.zeroed_to = offset + len,
                Some(Err(err)) => return Err(err.into()),
                None => return Err(WalError::Io(missing_result())),
            }
        }
        all_ok(results.collect())?;
        if sync {
            self.synced_lsn = last;
        }
        Ok(())
    }

    /// The zeros to write after the pending frames (offset, length), if the write position is
    /// near the end of the written part of the segment. Only with frames (a flush with nothing
    /// to write writes nothing). Large groups convert their own blocks: zeros ahead of them
    /// would double the bytes written for nothing.
    fn zero_ahead(&self) -> Option<(u64, u64)> {
        let end = self.offset + self.pending.len() as u64;
        if self.pending.is_empty()
            || self.pending.len() as u64 >= ZERO_AHEAD_BYTES / 4
            || end + ZERO_AHEAD_BYTES / 2 <= self.zeroed_to
        {
            return None;
        }
        let from = end.max(self.zeroed_to);
        let to = (end + ZERO_AHEAD_BYTES).min(self.config.segment_bytes);
        (to > from).then_some((from, to - from))
    }

    /// Close the full segment (written and synced) and start the next one.
    fn rotate(&mut self) -> Result<()> {
        self.flush(true)?;
        let number = self.segment + 1;
        let header = SegmentHeader {
            number,
            first_lsn: self.next_lsn,
            chain: self.chain,
        };
        self.file = create_segment(&*self.vfs, &self.dir, header, self.config.segment_bytes)?;
        self.segment = number;
        self.offset = SEGMENT_HEADER_BYTES;
        self.zeroed_to = SEGMENT_HEADER_BYTES;
        self.segments.push_back((number, self.next_lsn));
        Ok(())
    }

    /// Delete segments whose every frame is at or below `lsn` (a durable checkpoint covers
    /// them). The current segment always stays. Returns how many were deleted.
    ///
    /// A segment already gone counts as deleted (an earlier unlink that reported failure may
    /// have taken effect): stopping at it would keep every later covered segment for good.
    /// When an unlink fails, the deletions before it are still made durable before the error
    /// is returned, and a later call starts again at the segment that failed.
    pub fn remove_covered(&mut self, lsn: u64) -> Result<usize> {
        let mut removed = 0;
        let mut failed = None;
        while self.segments.len() > 1 {
            let next_first = self.segments[1].1;
            if next_first > lsn + 1 {
                break;
            }
            let (number, _) = self.segments[0];
            match self.vfs.remove(&segment_path(&self.dir, number)) {
                Ok(()) => {}
                Err(err) if err.kind == aedb_io::IoErrorKind::Os(libc::ENOENT) => {}
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
            self.segments.pop_front();
            removed += 1;
        }
        if removed > 0 {
            self.vfs.sync_dir(&self.dir)?;
        }
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(removed),
        }
    }
}

fn missing_result() -> aedb_io::IoError {
    aedb_io::IoError::new(
        aedb_io::OpKind::Write,
        0,
        aedb_io::IoErrorKind::Closed,
        "the backend returned no result for the write",
    )
}

/// Open options for reading segments (used by tools).
pub fn read_only() -> OpenOptions {
    OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    }
}
