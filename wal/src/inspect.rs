//! The log frame by frame, for tools (`aedb wal dump`): every segment read and every frame
//! verified with the reader's own code (`frame::check`, `frame::frames_within`), whether or not
//! recovery would accept it, and how each segment's frames end. Recovery's verdict is
//! [`crate::scan`]'s; this reports what is there.

use std::path::{Path, PathBuf};

use aedb_io::Vfs;

use crate::error::{Result, WalError};
use crate::frame::{
    self, peek_header, Check, FrameHeader, FrameProblem, FRAME_HEADER_BYTES, FRAME_MAGIC,
};
use crate::reader::proves_durable;
use crate::segment::{list_segments, read_segment_into, SegmentHeader, SEGMENT_HEADER_BYTES};

/// Frames found beyond the end of a segment's valid frames that are reported at most.
pub const MAX_LATER_FRAMES: usize = 32;

/// A frame as it is in its segment.
#[derive(Debug, Clone)]
pub struct FrameReport {
    pub offset: u64,
    pub header: FrameHeader,
    /// Bytes of the whole frame.
    pub total: usize,
    /// The frame's CRC holds. When it does not, nothing else was verified and the payload is
    /// empty.
    pub crc_ok: bool,
    /// Its LSN is the one due: the previous frame's plus one, or the segment's first.
    pub lsn_ok: bool,
    /// Its chain hash, verified against the chain before it.
    pub chain: Check,
    /// Its HMAC, verified when a key is known.
    pub hmac: Check,
    pub payload: Vec<u8>,
}

/// How the frames of a segment end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Zeros (the preallocated rest of the segment): the normal end.
    Zeros { offset: u64 },
    /// The frames fill the file to its last byte.
    FileEnd { offset: u64 },
    /// A frame cut off by the end of the file.
    Truncated {
        offset: u64,
        /// The frame's LSN, when its header is whole.
        lsn: Option<u64>,
        needed: u64,
        available: u64,
    },
    /// Bytes that are not a frame: no magic and not zeros (a torn write?), a frame too large,
    /// or a frame whose CRC fails.
    Bad {
        offset: u64,
        problem: FrameProblem,
        /// The LSN of the frame whose CRC fails.
        lsn: Option<u64>,
    },
}

/// A frame whose CRC holds, found after a segment's frames end badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaterFrame {
    pub offset: u64,
    pub header: FrameHeader,
}

/// A segment file as it is.
#[derive(Debug)]
pub struct SegmentReport {
    pub number: u64,
    pub path: PathBuf,
    pub len: u64,
    pub header: Result<SegmentHeader>,
    /// Its frames up to where they end (the last one's CRC may fail).
    pub frames: Vec<FrameReport>,
    /// None when the header does not decode.
    pub end: Option<End>,
    /// After a `Bad` end: frames whose CRC holds further on (at most [`MAX_LATER_FRAMES`]).
    pub later: Vec<LaterFrame>,
}

impl SegmentReport {
    /// The LSN due where the frames end: the last valid frame's plus one, else the segment's
    /// first.
    pub fn missing_lsn(&self) -> u64 {
        self.frames
            .iter()
            .rfind(|f| f.crc_ok)
            .map_or(self.header.as_ref().map_or(0, |h| h.first_lsn), |f| {
                f.header.lsn + 1
            })
    }

    /// After a `Bad` end: the first later frame that says the missing LSN had been made
    /// durable (recovery's rule: the damage was not a torn tail).
    pub fn durable_evidence(&self) -> Option<&LaterFrame> {
        let missing = self.missing_lsn();
        self.later
            .iter()
            .find(|l| proves_durable(&l.header, missing))
    }
}

/// Every segment of the log in `dir`, in order, each read and inspected as the iterator
/// goes. `key`: the HMAC key, when known (frames with an HMAC are `Unverified` without it).
/// A segment that cannot be read is an error item; the iterator goes on.
pub fn segments<'v>(
    vfs: &'v dyn Vfs,
    dir: &Path,
    key: Option<[u8; 32]>,
) -> Result<impl Iterator<Item = std::result::Result<SegmentReport, (PathBuf, WalError)>> + 'v> {
    let mut buffer = Vec::new();
    Ok(list_segments(vfs, dir)?
        .into_iter()
        .map(
            move |(number, path)| match read_segment_into(vfs, &path, &mut buffer) {
                Ok(()) => Ok(inspect_segment(number, path, &buffer, key.as_ref())),
                Err(err) => Err((path, err)),
            },
        ))
}

/// One segment's bytes, inspected.
pub fn inspect_segment(
    number: u64,
    path: PathBuf,
    bytes: &[u8],
    key: Option<&[u8; 32]>,
) -> SegmentReport {
    let mut report = SegmentReport {
        number,
        header: SegmentHeader::decode(bytes, &path),
        path,
        len: bytes.len() as u64,
        frames: Vec::new(),
        end: None,
        later: Vec::new(),
    };
    let Ok(header) = &report.header else {
        return report;
    };
    let (mut chain, mut expected) = (header.chain, header.first_lsn);
    let mut offset = SEGMENT_HEADER_BYTES as usize;
    let end = loop {
        let rest = bytes.get(offset..).unwrap_or(&[]);
        let at = offset as u64;
        if rest.is_empty() {
            break End::FileEnd { offset: at };
        }
        let frame = match frame::check(rest, &chain, true, key) {
            Ok(frame) => frame,
            Err(problem) => break frame_end(&mut report.frames, rest, at, expected, problem),
        };
        report.frames.push(FrameReport {
            offset: at,
            header: frame.header,
            total: frame.header.total_len(),
            crc_ok: true,
            lsn_ok: frame.header.lsn == expected,
            chain: frame.chain,
            hmac: frame.hmac,
            payload: frame.payload.to_vec(),
        });
        chain = frame.hash;
        expected = frame.header.lsn + 1;
        offset += frame.header.total_len();
    };
    if let End::Bad { offset, .. } = &end {
        let from = *offset as usize + 1;
        report.later = frame::frames_within(bytes.get(from..).unwrap_or(&[]))
            .take(MAX_LATER_FRAMES)
            .map(|(at, header)| LaterFrame {
                offset: (from + at) as u64,
                header,
            })
            .collect();
    }
    report.end = Some(end);
    report
}

/// How frames end at `rest` (at `offset`), where no valid frame is; a frame whose CRC fails is
/// still listed.
fn frame_end(
    frames: &mut Vec<FrameReport>,
    rest: &[u8],
    offset: u64,
    expected: u64,
    problem: FrameProblem,
) -> End {
    let available = rest.len() as u64;
    match (problem, peek_header(rest)) {
        (FrameProblem::NoFrame, _) if rest.iter().all(|b| *b == 0) => End::Zeros { offset },
        (FrameProblem::NoFrame, _)
            if rest.len() < FRAME_HEADER_BYTES
                && FRAME_MAGIC.starts_with(&rest[..rest.len().min(4)]) =>
        {
            End::Truncated {
                offset,
                lsn: None,
                needed: FRAME_HEADER_BYTES as u64,
                available,
            }
        }
        (FrameProblem::Truncated, Ok(header)) => End::Truncated {
            offset,
            lsn: Some(header.lsn),
            needed: header.total_len() as u64,
            available,
        },
        (FrameProblem::Checksum, Ok(header)) => {
            frames.push(FrameReport {
                offset,
                header,
                total: header.total_len(),
                crc_ok: false,
                lsn_ok: header.lsn == expected,
                chain: Check::Unverified,
                hmac: Check::Unverified,
                payload: Vec::new(),
            });
            End::Bad {
                offset,
                problem: FrameProblem::Checksum,
                lsn: Some(header.lsn),
            }
        }
        (problem, _) => End::Bad {
            offset,
            problem,
            lsn: None,
        },
    }
}
