//! WAL frames: one per commit.
//!
//! | offset  | size | field                                                                 |
//! |--------:|-----:|-----------------------------------------------------------------------|
//! | 0       | 4    | magic `AEWF`                                                          |
//! | 4       | 4    | payload length `n` (≤ 64 MiB)                                         |
//! | 8       | 8    | LSN: frame number, +1 per frame, continuing across segments           |
//! | 16      | 8    | commit sequence of the commit the frame carries                       |
//! | 24      | 8    | synced-through LSN: every frame up to it was durable before this one was written |
//! | 32      | 1    | flags: bit 0 chain hash present, bit 1 HMAC present                    |
//! | 33      | 3    | reserved, zero                                                        |
//! | 36      | 4    | CRC32 of bytes 0..36, the payload and the trailer                     |
//! | 40      | n    | payload (`record.rs`)                                                 |
//! | 40+n    | 32   | chain hash = SHA-256(previous chain hash ‖ bytes 0..36 ‖ payload), if bit 0 |
//! | …       | 32   | HMAC-SHA256(key, bytes 0..36 ‖ payload ‖ chain hash), if bit 1       |
//!
//! The synced-through field is what lets recovery tell a torn tail from corruption: a damaged
//! frame followed by a valid frame whose synced-through LSN covers it had been made durable, so
//! it is corruption; otherwise it was part of the last, unsynced write.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const FRAME_MAGIC: &[u8; 4] = b"AEWF";
pub const FRAME_HEADER_BYTES: usize = 40;
pub const HASH_BYTES: usize = 32;

/// The most bytes a frame of a `payload_len`-byte payload takes in a segment (header, payload,
/// and room for both trailer hashes).
pub const fn frame_bytes(payload_len: usize) -> usize {
    FRAME_HEADER_BYTES + payload_len + 2 * HASH_BYTES
}
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;
const FLAG_CHAIN: u8 = 1;
const FLAG_HMAC: u8 = 2;

/// Optional integrity beyond the CRC.
#[derive(Clone, Default)]
pub struct Integrity {
    pub hash_chain: bool,
    pub hmac_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrity")
            .field("hash_chain", &self.hash_chain)
            .field("hmac_key", &self.hmac_key.map(|_| "<redacted>"))
            .finish()
    }
}

impl Integrity {
    fn trailer_len(&self) -> usize {
        (if self.hash_chain { HASH_BYTES } else { 0 })
            + (if self.hmac_key.is_some() {
                HASH_BYTES
            } else {
                0
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub lsn: u64,
    pub seq: u64,
    pub synced_through: u64,
    pub flags: u8,
}

impl FrameHeader {
    pub fn total_len(&self) -> usize {
        FRAME_HEADER_BYTES
            + self.len as usize
            + if self.flags & FLAG_CHAIN != 0 {
                HASH_BYTES
            } else {
                0
            }
            + if self.flags & FLAG_HMAC != 0 {
                HASH_BYTES
            } else {
                0
            }
    }
}

/// Append one frame to `out`; returns the frame's chain hash (or the previous one unchanged).
pub fn encode(
    out: &mut Vec<u8>,
    header: FrameHeader,
    payload: &[u8],
    integrity: &Integrity,
    prev_hash: &[u8; 32],
) -> [u8; 32] {
    let start = out.len();
    let flags = (if integrity.hash_chain { FLAG_CHAIN } else { 0 })
        | (if integrity.hmac_key.is_some() {
            FLAG_HMAC
        } else {
            0
        });
    out.reserve(FRAME_HEADER_BYTES + payload.len() + integrity.trailer_len());
    out.extend_from_slice(FRAME_MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&header.lsn.to_le_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&header.synced_through.to_le_bytes());
    out.extend_from_slice(&[flags, 0, 0, 0]);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    let mut hash = *prev_hash;
    if integrity.hash_chain {
        hash = chain_hash(prev_hash, &out[start..start + 36], payload);
        out.extend_from_slice(&hash);
    }
    if let Some(key) = &integrity.hmac_key {
        let mac = frame_mac(key, &out[start..start + 36], payload, &hash);
        out.extend_from_slice(&mac);
    }
    let crc = frame_crc(&out[start..]);
    out[start + 36..start + 40].copy_from_slice(&crc.to_le_bytes());
    hash
}

fn frame_crc(frame: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&frame[..36]);
    hasher.update(&frame[FRAME_HEADER_BYTES..]);
    hasher.finalize()
}

fn chain_hash(prev: &[u8; 32], header: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize().into()
}

/// The HMAC state of a frame, fed with everything it covers.
fn frame_hmac(key: &[u8; 32], header: &[u8], payload: &[u8], hash: &[u8; 32]) -> Hmac<Sha256> {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(header);
    mac.update(payload);
    mac.update(hash);
    mac
}

fn frame_mac(key: &[u8; 32], header: &[u8], payload: &[u8], hash: &[u8; 32]) -> [u8; 32] {
    frame_hmac(key, header, payload, hash)
        .finalize()
        .into_bytes()
        .into()
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameProblem {
    /// Fewer bytes than a header, or the magic is absent (zeros after the log's end, or torn).
    NoFrame,
    /// The header claims more bytes than are there.
    Truncated,
    Checksum,
    TooLarge(u32),
    ChainMismatch,
    HmacMismatch,
    /// The frame is protected differently from what the configuration requires.
    Protection(String),
}

impl FrameProblem {
    /// True for damage a torn or lost write cannot produce: the CRC holds but the chain, the
    /// HMAC or the protection does not.
    pub fn is_not_torn(&self) -> bool {
        matches!(
            self,
            FrameProblem::ChainMismatch | FrameProblem::HmacMismatch | FrameProblem::Protection(_)
        )
    }
}

/// Parse just the header (no checks beyond the magic and bounds).
pub fn peek_header(bytes: &[u8]) -> Result<FrameHeader, FrameProblem> {
    if bytes.len() < FRAME_HEADER_BYTES || &bytes[..4] != FRAME_MAGIC {
        return Err(FrameProblem::NoFrame);
    }
    let u64_at = |at: usize| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(raw)
    };
    let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len as usize > MAX_PAYLOAD_BYTES {
        return Err(FrameProblem::TooLarge(len));
    }
    Ok(FrameHeader {
        len,
        lsn: u64_at(8),
        seq: u64_at(16),
        synced_through: u64_at(24),
        flags: bytes[32],
    })
}

/// Check only the magic, bounds and CRC of the frame at the start of `bytes` (for looking past
/// damage, where the previous chain hash is unknown).
pub fn decode_crc_only(bytes: &[u8]) -> Result<FrameHeader, FrameProblem> {
    let header = peek_header(bytes)?;
    let total = header.total_len();
    if bytes.len() < total {
        return Err(FrameProblem::Truncated);
    }
    let stored_crc = u32::from_le_bytes([bytes[36], bytes[37], bytes[38], bytes[39]]);
    if stored_crc != frame_crc(&bytes[..total]) {
        return Err(FrameProblem::Checksum);
    }
    Ok(header)
}

/// The state of a frame's chain hash or HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The frame carries none.
    Absent,
    Ok,
    Mismatch,
    /// Present, not verified: the chain was not asked for, or no HMAC key is known.
    Unverified,
}

/// A frame whose magic, bounds and CRC hold, with its chain hash and HMAC verified as far as
/// asked: what [`check`] finds, before any configuration decides what it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<'a> {
    pub header: FrameHeader,
    pub payload: &'a [u8],
    /// The frame's chain hash (the one it carries, else the previous one unchanged).
    pub hash: [u8; 32],
    pub chain: Check,
    pub hmac: Check,
}

/// Check the frame at the start of `bytes`: magic, bounds and CRC (a failure of any is the
/// error), then its chain hash against `prev_hash` when `verify_chain`, and its HMAC when a
/// `key` is given (in constant time).
pub fn check<'a>(
    bytes: &'a [u8],
    prev_hash: &[u8; 32],
    verify_chain: bool,
    key: Option<&[u8; 32]>,
) -> Result<Checked<'a>, FrameProblem> {
    let header = decode_crc_only(bytes)?;
    let frame = &bytes[..header.total_len()];
    let payload = &frame[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + header.len as usize];
    let mut at = FRAME_HEADER_BYTES + header.len as usize;
    let mut hash = *prev_hash;
    let mut chain = Check::Absent;
    if header.flags & FLAG_CHAIN != 0 {
        let mut stored = [0u8; 32];
        stored.copy_from_slice(&frame[at..at + HASH_BYTES]);
        at += HASH_BYTES;
        chain = match verify_chain {
            false => Check::Unverified,
            true if stored == chain_hash(prev_hash, &frame[..36], payload) => Check::Ok,
            true => Check::Mismatch,
        };
        hash = stored;
    }
    let mut hmac = Check::Absent;
    if header.flags & FLAG_HMAC != 0 {
        // In constant time: how much of a forged tag matches must not show in the time taken.
        hmac = match key {
            None => Check::Unverified,
            Some(key) => match frame_hmac(key, &frame[..36], payload, &hash)
                .verify_slice(&frame[at..at + HASH_BYTES])
            {
                Ok(()) => Check::Ok,
                Err(_) => Check::Mismatch,
            },
        };
    }
    Ok(Checked {
        header,
        payload,
        hash,
        chain,
        hmac,
    })
}

/// Verify a whole frame at the start of `bytes`: CRC, then chain and HMAC as configured.
/// Returns the header, the payload range and the frame's chain hash.
pub fn decode<'a>(
    bytes: &'a [u8],
    integrity: &Integrity,
    prev_hash: &[u8; 32],
) -> Result<(FrameHeader, &'a [u8], [u8; 32]), FrameProblem> {
    let frame = check(
        bytes,
        prev_hash,
        integrity.hash_chain,
        integrity.hmac_key.as_ref(),
    )?;
    if integrity.hash_chain && frame.chain == Check::Absent {
        return Err(FrameProblem::Protection(
            "frame has no chain hash but the configuration requires one".into(),
        ));
    }
    if integrity.hmac_key.is_some() && frame.hmac == Check::Absent {
        return Err(FrameProblem::Protection(
            "frame has no HMAC but a key is configured".into(),
        ));
    }
    match (frame.chain, frame.hmac) {
        (Check::Mismatch, _) => Err(FrameProblem::ChainMismatch),
        (_, Check::Unverified) => Err(FrameProblem::Protection(
            "frame carries an HMAC and no key is configured".into(),
        )),
        (_, Check::Mismatch) => Err(FrameProblem::HmacMismatch),
        _ => Ok((frame.header, frame.payload, frame.hash)),
    }
}

/// Every frame in `bytes` whose magic, bounds and CRC hold, wherever it starts, with its
/// offset in `bytes`: what lies past damage, where the previous chain hash is unknown.
pub fn frames_within(bytes: &[u8]) -> impl Iterator<Item = (usize, FrameHeader)> + '_ {
    let magic = memchr::memmem::Finder::new(FRAME_MAGIC);
    let mut at = 0;
    std::iter::from_fn(move || {
        while let Some(pos) = magic.find(&bytes[at..]) {
            let start = at + pos;
            at = start + 1;
            if let Ok(header) = decode_crc_only(&bytes[start..]) {
                return Some((start, header));
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(lsn: u64) -> FrameHeader {
        FrameHeader {
            len: 0,
            lsn,
            seq: lsn,
            synced_through: lsn - 1,
            flags: 0,
        }
    }

    #[test]
    fn round_trip_with_every_protection() {
        let key = Some([9u8; 32]);
        for integrity in [
            Integrity::default(),
            Integrity {
                hash_chain: true,
                hmac_key: None,
            },
            Integrity {
                hash_chain: true,
                hmac_key: key,
            },
            Integrity {
                hash_chain: false,
                hmac_key: key,
            },
        ] {
            let mut out = Vec::new();
            let h1 = encode(&mut out, header(1), b"first", &integrity, &[0; 32]);
            let first_len = out.len();
            encode(&mut out, header(2), b"second payload", &integrity, &h1);
            let (hd, payload, hash) = decode(&out, &integrity, &[0; 32]).unwrap();
            assert_eq!((hd.lsn, payload), (1, &b"first"[..]));
            assert_eq!(hash, h1);
            let (hd, payload, _) = decode(&out[first_len..], &integrity, &h1).unwrap();
            assert_eq!((hd.lsn, payload), (2, &b"second payload"[..]));
            // Any flipped byte is caught.
            for at in [0, 5, 12, 30, 41, first_len - 1] {
                let mut bad = out.clone();
                bad[at] ^= 0x20;
                assert!(
                    decode(&bad, &integrity, &[0; 32]).is_err(),
                    "flip at {at} with {integrity:?}"
                );
            }
        }
    }

    #[test]
    fn check_reports_each_protection_without_a_policy() {
        let integrity = Integrity {
            hash_chain: true,
            hmac_key: Some([1; 32]),
        };
        let mut out = Vec::new();
        let hash = encode(&mut out, header(1), b"x", &integrity, &[0; 32]);
        let checked = |prev: &[u8; 32], verify_chain, key: Option<&[u8; 32]>| {
            check(&out, prev, verify_chain, key).map(|c| (c.chain, c.hmac, c.hash))
        };
        assert_eq!(
            checked(&[0; 32], true, Some(&[1; 32])),
            Ok((Check::Ok, Check::Ok, hash))
        );
        assert_eq!(
            checked(&[7; 32], true, Some(&[2; 32])),
            Ok((Check::Mismatch, Check::Mismatch, hash))
        );
        assert_eq!(
            checked(&[7; 32], false, None),
            Ok((Check::Unverified, Check::Unverified, hash))
        );
        let mut plain = Vec::new();
        encode(&mut plain, header(1), b"x", &Integrity::default(), &[3; 32]);
        assert_eq!(
            check(&plain, &[3; 32], true, Some(&[1; 32])).map(|c| (c.chain, c.hmac, c.hash)),
            Ok((Check::Absent, Check::Absent, [3; 32]))
        );
        let mut damaged = out.clone();
        damaged[41] ^= 1;
        assert_eq!(
            check(&damaged, &[0; 32], true, None).err(),
            Some(FrameProblem::Checksum)
        );
        // Frames found past damage: each whole frame wherever it starts.
        let mut log = vec![0xAA; 7];
        log.extend_from_slice(&plain);
        log.extend_from_slice(&damaged);
        log.extend_from_slice(&out);
        let found: Vec<usize> = frames_within(&log).map(|(at, _)| at).collect();
        assert_eq!(found, [7, 7 + plain.len() + damaged.len()]);
    }

    #[test]
    fn chain_and_key_mismatches_are_named() {
        let integrity = Integrity {
            hash_chain: true,
            hmac_key: Some([1; 32]),
        };
        let mut out = Vec::new();
        encode(&mut out, header(1), b"x", &integrity, &[0; 32]);
        assert_eq!(
            decode(&out, &integrity, &[7; 32]).unwrap_err(),
            FrameProblem::ChainMismatch
        );
        let other_key = Integrity {
            hash_chain: true,
            hmac_key: Some([2; 32]),
        };
        assert_eq!(
            decode(&out, &other_key, &[0; 32]).unwrap_err(),
            FrameProblem::HmacMismatch
        );
        let no_key = Integrity {
            hash_chain: true,
            hmac_key: None,
        };
        assert!(matches!(
            decode(&out, &no_key, &[0; 32]),
            Err(FrameProblem::Protection(_))
        ));
    }
}
