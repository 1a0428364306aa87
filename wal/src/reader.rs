//! The redo reader: scans the segments in order, verifies every frame, and hands each frame
//! after the checkpoint's LSN to the caller, up to the end of the valid log.
//!
//! Where the valid log ends, and why:
//! - a segment's frames end (zeros of the preallocated space) and the next segment does not
//!   continue at the next LSN: the log ends there;
//! - a damaged frame: if a later valid frame states (synced-through LSN) that the damaged one
//!   had been made durable, the damage is corruption — `Strict` refuses with the segment and
//!   offset, `Permissive` stops there and reports what it dropped; otherwise it is the torn
//!   tail of the last unsynced write, which is normal in both modes;
//! - a later segment that continues exactly at the next LSN after a torn tail is the segment a
//!   previous recovery started: reading goes on in it.
//!
//! Segments after the end hold nothing that was acknowledged durable; they are reported as
//! stale for the writer to delete.

use std::path::{Path, PathBuf};

use aedb_io::Vfs;

use crate::error::{Result, WalError};
use crate::frame::{self, FrameHeader, FrameProblem, Integrity, FRAME_MAGIC};
use crate::segment::{list_segments, read_segment_into, SegmentHeader, SEGMENT_HEADER_BYTES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Refuse to open on corruption anywhere before the valid tail.
    #[default]
    Strict,
    /// Stop at the first bad frame and report what was dropped.
    Permissive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSegment {
    pub number: u64,
    pub first_lsn: u64,
    pub path: PathBuf,
}

/// What a scan found.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// The last valid LSN (0 when the log holds no frame).
    pub last_lsn: u64,
    /// Chain hash after the last valid frame.
    pub chain: [u8; 32],
    /// Segments holding the valid log, in order.
    pub segments: Vec<LiveSegment>,
    /// Segments after the end of the valid log (nothing durable in them).
    pub stale: Vec<PathBuf>,
    /// Where the valid log ended early and why (a torn tail, or in `Permissive` mode damage).
    pub dropped: Option<String>,
    pub frames_replayed: u64,
    pub bytes_replayed: u64,
}

struct End {
    segment: PathBuf,
    offset: u64,
    missing: u64,
    problem: Option<FrameProblem>,
}

/// Scan the log in `dir`; call `redo` for every valid frame with LSN > `after_lsn`, in order.
pub fn scan(
    vfs: &dyn Vfs,
    dir: &Path,
    after_lsn: u64,
    integrity: &Integrity,
    mode: RecoveryMode,
    mut redo: impl FnMut(&FrameHeader, &[u8]) -> Result<()>,
) -> Result<ScanOutcome> {
    let segments = list_segments(vfs, dir)?;
    let mut out = ScanOutcome::default();
    let mut expected: Option<u64> = None;
    let mut chain = [0u8; 32];
    let mut end: Option<End> = None;
    let mut finished = false;
    let count = segments.len();
    // One buffer for every segment read.
    let mut buffer = Vec::new();
    for (index, (number, path)) in segments.into_iter().enumerate() {
        if finished {
            out.stale.push(path);
            continue;
        }
        let bytes = match read_segment_into(vfs, &path, &mut buffer) {
            Ok(()) => &buffer[..],
            // A live writer deleted it after its checkpoint covered it (a read-only scan runs
            // beside one): nothing redo needs was in it. A real gap in what redo needs is still
            // caught where the log's start is checked against the checkpoint.
            Err(WalError::Io(err))
                if expected.is_none_or(|e| e <= after_lsn + 1)
                    && index + 1 < count
                    && err.kind == aedb_io::IoErrorKind::Os(libc::ENOENT) =>
            {
                // Start over at the next segment: it must then begin within what the
                // checkpoint covers, or the scan reports the gap.
                expected = None;
                continue;
            }
            Err(err) => return Err(err),
        };
        let header = match SegmentHeader::decode(bytes, &path) {
            Ok(header) if header.number == number => header,
            Ok(_) | Err(_) if index + 1 == count => {
                // A newest segment whose creation never became durable holds no frame (its
                // first frame is written only after the header is synced). One that holds a
                // valid frame had a good header once: it was damaged since, and dropping it
                // drops acknowledged commits — unless the checkpoint covers all it holds.
                let frames = bytes.get(SEGMENT_HEADER_BYTES as usize..).unwrap_or(&[]);
                if let Some(lsn) = valid_frame_after(frames, after_lsn) {
                    let reason = format!(
                        "segment header is damaged, but the segment holds frames (LSN {lsn})"
                    );
                    match mode {
                        RecoveryMode::Strict => return Err(corrupt(&path, 0, reason)),
                        RecoveryMode::Permissive => {
                            tracing::warn!(segment = %path.display(), %reason, "permissive recovery drops the segment");
                            out.dropped = Some(format!("{}: {reason}", path.display()));
                        }
                    }
                }
                out.stale.push(path);
                break;
            }
            Ok(header) => {
                return Err(corrupt(
                    &path,
                    0,
                    format!("header names segment {}", header.number),
                ))
            }
            Err(err) => return Err(err),
        };
        let next = expected.unwrap_or(header.first_lsn);
        let continues = header.first_lsn == next
            // The checkpoint may cover frames the log never made durable.
            || (header.first_lsn > next && header.first_lsn <= after_lsn + 1);
        if expected.is_none() && header.first_lsn > after_lsn + 1 {
            return Err(corrupt(
                &path,
                0,
                format!(
                    "log starts at LSN {} but the checkpoint covers only up to {after_lsn}",
                    header.first_lsn
                ),
            ));
        }
        if !continues {
            // The log ended in the previous segment; this and later segments are stale.
            let end = end.take().unwrap_or(End {
                segment: path.clone(),
                offset: 0,
                missing: next,
                problem: None,
            });
            check_evidence(bytes, &end, after_lsn, mode, &mut out)?;
            finished = true;
            out.stale.push(path);
            continue;
        }
        if integrity.hash_chain
            && expected.is_some()
            && header.first_lsn == next
            && header.chain != chain
        {
            return Err(corrupt(
                &path,
                0,
                "segment header breaks the hash chain".into(),
            ));
        }
        if let Some(e) = end.take() {
            if e.problem.is_some() {
                out.dropped = Some(format!(
                    "torn tail in {} at offset {} (LSN {}) abandoned by an earlier recovery",
                    e.segment.display(),
                    e.offset,
                    e.missing
                ));
            }
        }
        chain = header.chain;
        let mut lsn = header.first_lsn;
        let mut offset = SEGMENT_HEADER_BYTES as usize;
        out.segments.push(LiveSegment {
            number,
            first_lsn: header.first_lsn,
            path: path.clone(),
        });
        loop {
            match frame::decode(bytes.get(offset..).unwrap_or(&[]), integrity, &chain) {
                Ok((fh, payload, hash)) if fh.lsn == lsn => {
                    if fh.lsn > after_lsn {
                        redo(&fh, payload)?;
                        out.frames_replayed += 1;
                        out.bytes_replayed += fh.total_len() as u64;
                    }
                    chain = hash;
                    out.last_lsn = fh.lsn;
                    offset += fh.total_len();
                    lsn += 1;
                }
                result => {
                    let problem = match result {
                        Ok((fh, _, _)) => Some(FrameProblem::Protection(format!(
                            "LSN {} where {lsn} was due",
                            fh.lsn
                        ))),
                        Err(FrameProblem::NoFrame) => None,
                        Err(problem) => Some(problem),
                    };
                    let e = End {
                        segment: path.clone(),
                        offset: offset as u64,
                        missing: lsn,
                        problem,
                    };
                    // A frame whose CRC holds but whose chain or HMAC does not was not torn: it
                    // was altered, or the key is wrong.
                    if let Some(problem) = e.problem.as_ref().filter(|p| p.is_not_torn()) {
                        let reason = format!("frame LSN {lsn} fails verification: {problem:?}");
                        match mode {
                            RecoveryMode::Strict => {
                                return Err(corrupt(&path, offset as u64, reason))
                            }
                            RecoveryMode::Permissive => {
                                out.dropped = Some(format!(
                                    "{} at offset {offset}: {reason}",
                                    path.display()
                                ));
                                finished = true;
                                end = Some(e);
                                break;
                            }
                        }
                    }
                    // Zeros can hide a lost sector as well as mark the end: look further either way.
                    check_evidence(
                        &bytes[(offset + 1).min(bytes.len())..],
                        &e,
                        after_lsn,
                        mode,
                        &mut out,
                    )?;
                    if out.dropped.is_some() && mode == RecoveryMode::Permissive {
                        finished = true;
                    }
                    end = Some(e);
                    break;
                }
            }
        }
        out.chain = chain;
        expected = Some(lsn);
    }
    if let Some(e) = end {
        if let (Some(problem), None) = (&e.problem, &out.dropped) {
            out.dropped = Some(format!(
                "torn tail in {} at offset {} (LSN {}): {problem:?}",
                e.segment.display(),
                e.offset,
                e.missing
            ));
        }
    }
    Ok(out)
}

fn corrupt(path: &Path, offset: u64, reason: String) -> WalError {
    WalError::Corrupt {
        segment: path.to_path_buf(),
        offset,
        reason,
    }
}

/// The LSN of the first frame in `bytes` whose checksum holds and that redo would need (past
/// the checkpoint's `after_lsn`), if any.
fn valid_frame_after(bytes: &[u8], after_lsn: u64) -> Option<u64> {
    let magic = memchr::memmem::Finder::new(FRAME_MAGIC);
    let mut at = 0;
    while let Some(pos) = magic.find(&bytes[at..]) {
        let start = at + pos;
        if let Some(fh) = frame::decode_crc_only(&bytes[start..])
            .ok()
            .filter(|fh| fh.lsn > after_lsn)
        {
            return Some(fh.lsn);
        }
        at = start + 1;
    }
    None
}

/// Is there a valid frame in `bytes` that says the missing LSN had been made durable, and that
/// redo needs? Damage the checkpoint (`after_lsn`) wholly covers loses nothing: only a later
/// durable frame past the checkpoint, unreachable behind the damage, makes it corruption.
fn check_evidence(
    bytes: &[u8],
    end: &End,
    after_lsn: u64,
    mode: RecoveryMode,
    out: &mut ScanOutcome,
) -> Result<()> {
    let magic = memchr::memmem::Finder::new(FRAME_MAGIC);
    let mut at = 0;
    while let Some(pos) = magic.find(&bytes[at..]) {
        let start = at + pos;
        if let Ok(fh) = frame::decode_crc_only(&bytes[start..]) {
            let needed = fh.lsn > after_lsn;
            if fh.lsn >= end.missing && fh.synced_through >= end.missing && needed {
                let reason = format!(
                    "frame LSN {} is damaged ({:?}) but LSN {} written later says it was durable",
                    end.missing,
                    end.problem.clone().unwrap_or(FrameProblem::NoFrame),
                    fh.lsn
                );
                return match mode {
                    RecoveryMode::Strict => Err(corrupt(&end.segment, end.offset, reason)),
                    RecoveryMode::Permissive => {
                        tracing::warn!(segment = %end.segment.display(), offset = end.offset, %reason, "permissive recovery drops the rest of the log");
                        out.dropped = Some(format!(
                            "{} at offset {}: {reason}",
                            end.segment.display(),
                            end.offset
                        ));
                        Ok(())
                    }
                };
            }
        }
        at = start + 1;
    }
    Ok(())
}
