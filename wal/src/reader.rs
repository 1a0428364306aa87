//! The redo reader: scans the segments in order, verifies every frame, and hands each frame
//! after the checkpoint's LSN to the caller, up to the end of the valid log.
//!
//! Where the valid log ends, and why:
//! - a segment's frames end (zeros of the preallocated space) and the next segment does not
//!   continue at the next LSN: the log ends there;
//! - a damaged frame: if a later valid frame states (synced-through LSN) that the damaged one
//!   had been made durable, the damage is corruption — `Strict` refuses with the segment and
//!   offset, `Permissive` stops there and reports what it dropped; otherwise it is the torn
//!   tail of the last unsynced write, which is normal in both modes. Damage the checkpoint
//!   wholly covers loses nothing and is reported, not refused — except with authenticated
//!   frames under `Strict` (secure mode), where the log must be intact;
//! - a later segment that continues exactly at the next LSN after a torn tail, or after damage
//!   a `Permissive` recovery dropped, is the segment a previous recovery started: reading goes
//!   on in it (so does one starting within what the checkpoint covers). After such a drop, a
//!   later segment that cannot be read or joined ends the log as stale instead of failing.
//!
//! `dropped` keeps the first thing noted and appends later ones.
//!
//! Segments after the end hold nothing that was acknowledged durable; they are reported as
//! stale for the writer to delete.

use std::path::{Path, PathBuf};

use aedb_io::Vfs;

use crate::error::{Result, WalError};
use crate::frame::{self, FrameHeader, FrameProblem, Integrity};
use crate::segment::{list_segments, read_segment_into, SegmentHeader, SEGMENT_HEADER_BYTES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Refuse to open on corruption anywhere before the valid tail.
    #[default]
    Strict,
    /// Drop the log from the first bad frame on (except a segment a previous recovery wrote
    /// from there) and report what was dropped.
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
    /// A permissive scan dropped the log here (damage proven durable, or not torn).
    dropped_here: bool,
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
    let mut scanner = Scanner {
        after_lsn,
        integrity,
        mode,
        out: ScanOutcome::default(),
        expected: None,
        chain: [0u8; 32],
        end: None,
        finished: false,
    };
    let count = segments.len();
    // One buffer for every segment read.
    let mut buffer = Vec::new();
    for (index, (number, path)) in segments.into_iter().enumerate() {
        if scanner.finished {
            scanner.out.stale.push(path);
            continue;
        }
        let newest = index + 1 == count;
        let bytes = match read_segment_into(vfs, &path, &mut buffer) {
            Ok(()) => Ok(&buffer[..]),
            // A live writer deleted it after its checkpoint covered it (a read-only scan runs
            // beside one): nothing redo needs was in it. A real gap in what redo needs is still
            // caught where the log's start is checked against the checkpoint.
            Err(WalError::Io(err))
                if scanner.expected.is_none_or(|e| e <= after_lsn + 1)
                    && !newest
                    && err.kind == aedb_io::IoErrorKind::Os(libc::ENOENT) =>
            {
                // Start over at the next segment: it must then begin within what the
                // checkpoint covers, or the scan reports the gap.
                scanner.expected = None;
                continue;
            }
            Err(err) => Err(err),
        };
        // Whether the segment continues the log; redo's own errors come later and always end
        // the scan.
        let joined = bytes.and_then(|bytes| {
            let Some(header) = scanner.header(bytes, &path, number, newest)? else {
                return Ok(None);
            };
            Ok(scanner
                .joins(bytes, &path, &header)?
                .then_some((bytes, header)))
        });
        match joined {
            Ok(Some((bytes, header))) => {
                scanner.frames(bytes, &path, number, &header, &mut redo)?
            }
            // Not joined: stale (and the scan finished), or the newest segment's header damaged.
            Ok(None) => {}
            // After a permissive drop, a later segment that cannot be read or joined is not
            // the one the recovery wrote: it is stale, as every later one.
            Err(err) if scanner.drop_pending() => scanner.abandon(path, err),
            Err(err) => return Err(err),
        }
    }
    Ok(scanner.finish())
}

/// A scan's state from segment to segment.
struct Scanner<'a> {
    after_lsn: u64,
    integrity: &'a Integrity,
    mode: RecoveryMode,
    out: ScanOutcome,
    /// The LSN the next segment continues at (none before the first).
    expected: Option<u64>,
    chain: [u8; 32],
    /// Where the frames of the last segment read ended, and why.
    end: Option<End>,
    /// The valid log has ended: later segments are stale.
    finished: bool,
}

impl Scanner<'_> {
    /// The segment's header; None when it is the newest segment and its header is damaged
    /// (it is then stale, and the scan ends).
    fn header(
        &mut self,
        bytes: &[u8],
        path: &Path,
        number: u64,
        newest: bool,
    ) -> Result<Option<SegmentHeader>> {
        match SegmentHeader::decode(bytes, path) {
            Ok(header) if header.number == number => Ok(Some(header)),
            Ok(_) | Err(_) if newest => {
                // A newest segment whose creation never became durable holds no frame (its
                // first frame is written only after the header is synced). One that holds a
                // valid frame had a good header once: it was damaged since, and dropping it
                // drops acknowledged commits — unless the checkpoint covers all it holds.
                let frames = bytes.get(SEGMENT_HEADER_BYTES as usize..).unwrap_or(&[]);
                if let Some(lsn) = valid_frame_after(frames, self.evidence_floor()) {
                    let reason = format!(
                        "segment header is damaged, but the segment holds frames (LSN {lsn})"
                    );
                    match self.mode {
                        RecoveryMode::Strict => return Err(corrupt(path, 0, reason)),
                        RecoveryMode::Permissive => {
                            tracing::warn!(segment = %path.display(), %reason, "permissive recovery drops the segment");
                            self.note(format!("{}: {reason}", path.display()));
                        }
                    }
                }
                self.out.stale.push(path.to_path_buf());
                Ok(None)
            }
            Ok(header) => Err(corrupt(
                path,
                0,
                format!("header names segment {}", header.number),
            )),
            Err(err) => Err(err),
        }
    }

    /// Whether the segment continues the valid log; when it does not, the log ended in the
    /// previous segment and this one is stale (after a look for evidence that it ended early).
    fn joins(&mut self, bytes: &[u8], path: &Path, header: &SegmentHeader) -> Result<bool> {
        let after_lsn = self.after_lsn;
        let next = self.expected.unwrap_or(header.first_lsn);
        let continues = header.first_lsn == next
            // The checkpoint may cover frames the log never made durable.
            || (header.first_lsn > next && header.first_lsn <= after_lsn + 1);
        if self.expected.is_none() && header.first_lsn > after_lsn + 1 {
            return Err(corrupt(
                path,
                0,
                format!(
                    "log starts at LSN {} but the checkpoint covers only up to {after_lsn}",
                    header.first_lsn
                ),
            ));
        }
        if !continues {
            // The log ended in the previous segment; this and later segments are stale.
            let end = self.end.take().unwrap_or(End {
                segment: path.to_path_buf(),
                offset: 0,
                missing: next,
                problem: None,
                dropped_here: false,
            });
            let floor = self.evidence_floor();
            if let Some(note) = check_evidence(bytes, path, &end, floor, self.mode)? {
                // Already noted when the frames ended at the damage this proves.
                if !end.dropped_here {
                    self.note(note);
                }
            }
            self.finished = true;
            self.out.stale.push(path.to_path_buf());
            return Ok(false);
        }
        // In secure mode also across a gap the checkpoint covers: the writer starts its segment
        // after a recovery with the chain where the valid log ended (`WalWriter::open`), so a
        // gap there matches too, and a removed covered segment or tail does not. Not otherwise:
        // frames a failed fsync left only in the page cache, redone and checkpointed, then lost
        // to a reboot, leave such a gap with a chain that no longer matches — nothing is lost,
        // and only secure mode prefers refusing to opening.
        let joined_at_next = header.first_lsn == next || self.evidence_floor() == 0;
        if self.integrity.hash_chain
            && self.expected.is_some()
            && joined_at_next
            && header.chain != self.chain
        {
            return Err(corrupt(
                path,
                0,
                "segment header breaks the hash chain".into(),
            ));
        }
        if let Some(e) = self.end.take() {
            let segment = path
                .file_name()
                .unwrap_or(path.as_os_str())
                .to_string_lossy();
            if e.dropped_here && header.first_lsn == e.missing {
                self.note(format!(
                    "an earlier recovery dropped the same and went on in {segment} from LSN {}",
                    e.missing
                ));
            } else if e.dropped_here {
                self.note(format!(
                    "the checkpoint covers it; the log goes on in {segment} from LSN {}",
                    header.first_lsn
                ));
            } else if e.problem.is_some() {
                self.note(format!(
                    "torn tail in {} at offset {} (LSN {}) abandoned by an earlier recovery",
                    e.segment.display(),
                    e.offset,
                    e.missing
                ));
            }
        }
        Ok(true)
    }

    /// The segment's frames up to the first that is not the next valid one.
    fn frames(
        &mut self,
        bytes: &[u8],
        path: &Path,
        number: u64,
        header: &SegmentHeader,
        redo: &mut impl FnMut(&FrameHeader, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.chain = header.chain;
        let mut lsn = header.first_lsn;
        let mut offset = SEGMENT_HEADER_BYTES as usize;
        self.out.segments.push(LiveSegment {
            number,
            first_lsn: header.first_lsn,
            path: path.to_path_buf(),
        });
        let rest = |offset: usize| bytes.get(offset..).unwrap_or(&[]);
        let end = loop {
            match frame::decode(rest(offset), self.integrity, &self.chain) {
                Ok((fh, payload, hash)) if fh.lsn == lsn => {
                    if fh.lsn > self.after_lsn {
                        redo(&fh, payload)?;
                        self.out.frames_replayed += 1;
                        self.out.bytes_replayed += fh.total_len() as u64;
                    }
                    self.chain = hash;
                    self.out.last_lsn = fh.lsn;
                    offset += fh.total_len();
                    lsn += 1;
                }
                Ok((fh, _, _)) => {
                    let due = format!("LSN {} where {lsn} was due", fh.lsn);
                    break (lsn, Some(FrameProblem::Protection(due)));
                }
                Err(FrameProblem::NoFrame) => break (lsn, None),
                Err(problem) => break (lsn, Some(problem)),
            }
        };
        let (missing, problem) = end;
        self.ended(
            bytes,
            End {
                segment: path.to_path_buf(),
                offset: offset as u64,
                missing,
                problem,
                dropped_here: false,
            },
        )?;
        self.out.chain = self.chain;
        self.expected = Some(lsn);
        Ok(())
    }

    /// Damage proven durable is corruption when a frame past this LSN proves it. Normally the
    /// checkpoint's LSN: damage it wholly covers loses nothing. With authenticated frames and
    /// strict recovery (secure mode), any: the log must be intact, not merely sufficient.
    fn evidence_floor(&self) -> u64 {
        if self.integrity.hmac_key.is_some() && self.mode == RecoveryMode::Strict {
            0
        } else {
            self.after_lsn
        }
    }

    /// The segment's frames ended at `e`: damage, a torn tail, or the end of the log.
    fn ended(&mut self, bytes: &[u8], mut e: End) -> Result<()> {
        let offset = e.offset as usize;
        // A frame whose CRC holds but whose chain or HMAC does not was not torn: it was
        // altered, or the key is wrong.
        if let Some(problem) = e.problem.as_ref().filter(|p| p.is_not_torn()) {
            let reason = format!("frame LSN {} fails verification: {problem:?}", e.missing);
            match self.mode {
                RecoveryMode::Strict => return Err(corrupt(&e.segment, e.offset, reason)),
                RecoveryMode::Permissive => {
                    self.note(format!(
                        "{} at offset {offset}: {reason}",
                        e.segment.display()
                    ));
                    // Not `finished`: `joins` decides, as after a torn tail (see below).
                    e.dropped_here = true;
                    self.end = Some(e);
                    return Ok(());
                }
            }
        }
        // Zeros can hide a lost sector as well as mark the end: look further either way.
        let later = &bytes[(offset + 1).min(bytes.len())..];
        let found = check_evidence(later, &e.segment, &e, self.evidence_floor(), self.mode)?;
        // Damage a permissive scan drops does not end the scan here: the log goes on in a
        // segment that starts exactly at the missing LSN, which only a recovery that ended
        // here can have written (`joins`); every other later segment is stale. Ending the scan
        // here deleted that recovery's segment as stale at the next open, with the commits
        // acknowledged in it.
        if let Some(note) = found {
            self.note(note);
            e.dropped_here = true;
        }
        self.end = Some(e);
        Ok(())
    }

    /// A permissive drop is noted and no later segment has joined the log yet.
    fn drop_pending(&self) -> bool {
        self.end.as_ref().is_some_and(|e| e.dropped_here)
    }

    /// After a permissive drop: `path` could not be read or joined, so the log ends before it.
    fn abandon(&mut self, path: PathBuf, err: WalError) {
        let name = path.file_name().unwrap_or(path.as_os_str());
        self.note(format!("{} is stale: {err}", name.to_string_lossy()));
        self.finished = true;
        self.out.stale.push(path);
    }

    /// Add to the report of what the scan dropped, keeping what it noted first.
    fn note(&mut self, what: String) {
        self.out.dropped = Some(match self.out.dropped.take() {
            None => what,
            Some(before) => format!("{before}; then {what}"),
        });
    }

    fn finish(mut self) -> ScanOutcome {
        if let Some(e) = self.end.take() {
            if let (Some(problem), false) = (&e.problem, e.dropped_here) {
                self.note(format!(
                    "torn tail in {} at offset {} (LSN {}): {problem:?}",
                    e.segment.display(),
                    e.offset,
                    e.missing
                ));
            }
        }
        self.out
    }
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
    frame::frames_within(bytes)
        .map(|(_, fh)| fh.lsn)
        .find(|lsn| *lsn > after_lsn)
}

/// Whether `later`, a valid frame written after LSN `missing` was due, says that `missing` had
/// been made durable (its synced-through LSN covers it): then `missing` was not a torn tail.
pub fn proves_durable(later: &FrameHeader, missing: u64) -> bool {
    later.lsn >= missing && later.synced_through >= missing
}

/// Is there a valid frame in `bytes` (of segment `found_in`) that says the missing LSN had been
/// made durable, and that redo needs? Damage the checkpoint (`after_lsn`) wholly covers loses
/// nothing: only a later durable frame past the checkpoint, unreachable behind the damage,
/// makes it corruption.
/// Returns what a permissive scan drops, to note (None: no such frame).
fn check_evidence(
    bytes: &[u8],
    found_in: &Path,
    end: &End,
    after_lsn: u64,
    mode: RecoveryMode,
) -> Result<Option<String>> {
    let Some((_, fh)) = frame::frames_within(bytes)
        .find(|(_, fh)| proves_durable(fh, end.missing) && fh.lsn > after_lsn)
    else {
        return Ok(None);
    };
    // Frames that end without a damaged frame (zeros, the end of the file, a segment that
    // starts past the LSN due) are missing: zeroed, cut off, or in a deleted segment.
    let what = match &end.problem {
        Some(problem) => format!("frame LSN {} is damaged ({problem:?})", end.missing),
        None => format!("frames from LSN {} are missing", end.missing),
    };
    let found_in = found_in.file_name().unwrap_or(found_in.as_os_str());
    let reason = format!(
        "{what} but LSN {} written later (in {}) says it was durable",
        fh.lsn,
        found_in.to_string_lossy()
    );
    match mode {
        RecoveryMode::Strict => Err(corrupt(&end.segment, end.offset, reason)),
        RecoveryMode::Permissive => {
            tracing::warn!(segment = %end.segment.display(), offset = end.offset, %reason, "permissive recovery drops the rest of the log");
            Ok(Some(format!(
                "{} at offset {}: {reason}",
                end.segment.display(),
                end.offset
            )))
        }
    }
}
