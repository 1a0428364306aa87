//! WAL segment files: `wal-<number, 16 digits>.log`, preallocated to the configured size and
//! synced (file and directory) before the first frame is written into them.
//!
//! Header (little-endian), frames follow from byte 128:
//!
//! | offset | size | field                                                       |
//! |-------:|-----:|-------------------------------------------------------------|
//! | 0      | 8    | magic `AEDBWAL\0`                                           |
//! | 8      | 4    | format version (1)                                          |
//! | 12     | 4    | reserved, zero                                              |
//! | 16     | 8    | segment number                                              |
//! | 24     | 8    | LSN of the first frame this segment holds                   |
//! | 32     | 32   | chain hash before that frame                                |
//! | 64     | 4    | CRC32 of bytes 0..64                                        |
//! | 68     | 60   | reserved, zero                                              |

use std::path::{Path, PathBuf};

use aedb_io::{all_ok, submit_wait, AlignedBuf, IoFile, IoOp, OpenOptions, Vfs};

use crate::error::{Result, WalError};

pub const SEGMENT_MAGIC: &[u8; 8] = b"AEDBWAL\0";
pub const SEGMENT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_BYTES: u64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub number: u64,
    pub first_lsn: u64,
    pub chain: [u8; 32],
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES as usize] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES as usize];
        out[..8].copy_from_slice(SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.number.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_lsn.to_le_bytes());
        out[32..64].copy_from_slice(&self.chain);
        let crc = crc32fast::hash(&out[..64]);
        out[64..68].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |reason: &str| WalError::Corrupt {
            segment: path.to_path_buf(),
            offset: 0,
            reason: reason.to_string(),
        };
        if bytes.len() < SEGMENT_HEADER_BYTES as usize {
            return Err(bad("shorter than a segment header"));
        }
        if &bytes[..8] != SEGMENT_MAGIC {
            return Err(bad("bad segment magic"));
        }
        let crc = u32::from_le_bytes([bytes[64], bytes[65], bytes[66], bytes[67]]);
        if crc != crc32fast::hash(&bytes[..64]) {
            return Err(bad("segment header checksum mismatch"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != SEGMENT_VERSION {
            return Err(bad(&format!("unsupported segment version {version}")));
        }
        let u64_at = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(raw)
        };
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&bytes[32..64]);
        Ok(SegmentHeader {
            number: u64_at(16),
            first_lsn: u64_at(24),
            chain,
        })
    }
}

pub fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:016}.log"))
}

/// The segment number of a WAL file name, or None for other files.
pub fn parse_segment_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 16 {
        return None;
    }
    digits.parse().ok()
}

/// Segment files of `dir`, by number.
pub fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    if !vfs.exists(dir) {
        return Ok(Vec::new());
    }
    let mut out: Vec<(u64, PathBuf)> = vfs
        .list_dir(dir)?
        .into_iter()
        .filter_map(|p| parse_segment_name(&p).map(|n| (n, p)))
        .collect();
    out.sort();
    Ok(out)
}

/// Create, preallocate and sync a new segment, and make its directory entry durable.
pub fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    header: SegmentHeader,
    size_bytes: u64,
) -> Result<std::sync::Arc<dyn IoFile>> {
    let path = segment_path(dir, header.number);
    let file = vfs.open(
        &path,
        OpenOptions {
            create: true,
            ..OpenOptions::default()
        },
    )?;
    let bytes = header.encode();
    all_ok(submit_wait(
        &*file,
        vec![
            IoOp::Grow {
                len: size_bytes.max(SEGMENT_HEADER_BYTES),
            },
            IoOp::Write {
                offset: 0,
                buf: AlignedBuf::from_slice(&bytes),
            },
            IoOp::Sync,
        ],
    ))?;
    vfs.sync_dir(dir)?;
    tracing::debug!(segment = %path.display(), first_lsn = header.first_lsn, "WAL segment created");
    Ok(file)
}

/// Make every segment file of `dir`, and the directory itself, durable.
///
/// A killed process leaves the frames it wrote but never synced in the page cache: recovery
/// would read them, replay them, and the next process would build new frames (which say the
/// earlier ones were durable) on top. Syncing first makes what recovery reads what a power
/// loss afterwards leaves.
pub fn sync_all(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let segments = list_segments(vfs, dir)?;
    for (_, path) in &segments {
        let file = vfs.open(path, OpenOptions::default())?;
        all_ok(submit_wait(&*file, vec![IoOp::Sync]))?;
    }
    if vfs.exists(dir) {
        vfs.sync_dir(dir)?;
    }
    Ok(())
}

/// Read a whole segment file (bounded by the segment size, plus one oversize frame at most).
pub fn read_segment(vfs: &dyn Vfs, path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    read_segment_into(vfs, path, &mut out)?;
    Ok(out)
}

/// [`read_segment`] into `out` (cleared first): a scan reads every segment into one buffer,
/// whose memory is then touched once, not once per segment.
pub fn read_segment_into(vfs: &dyn Vfs, path: &Path, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let file = vfs.open(
        path,
        OpenOptions {
            read_only: true,
            ..OpenOptions::default()
        },
    )?;
    let len = file.len()?;
    out.reserve(len as usize);
    const CHUNK: u64 = 4 << 20;
    // One chunk buffer for the whole file, read on this thread: recovery waits for every
    // chunk anyway, and a fresh zeroed chunk per read cost a memset and page faults each.
    let mut chunk = AlignedBuf::zeroed(CHUNK.min(len) as usize);
    let mut offset = 0;
    while offset < len {
        let n = CHUNK.min(len - offset);
        if n as usize != chunk.len() {
            chunk = AlignedBuf::zeroed(n as usize);
        }
        chunk = file.read_now(offset, chunk)?;
        out.extend_from_slice(&chunk);
        offset += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_names() {
        let h = SegmentHeader {
            number: 12,
            first_lsn: 345,
            chain: [3; 32],
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes, Path::new("x")).unwrap(), h);
        let mut bad = bytes;
        bad[20] ^= 1;
        assert!(SegmentHeader::decode(&bad, Path::new("x")).is_err());
        let p = segment_path(Path::new("/d"), 12);
        assert_eq!(parse_segment_name(&p), Some(12));
        assert_eq!(parse_segment_name(Path::new("/d/data.aedb")), None);
    }
}
