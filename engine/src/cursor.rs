//! Page cursors: opaque strings that pin a snapshot and say where the next page starts.
//!
//! `hex(version 2 ‖ snapshot seq u64 ‖ page size u32 ‖ nonce 16 bytes ‖ encrypted last key ‖
//! HMAC-SHA256 over all before)`. The key is the configured HMAC key, else a random 32-byte key
//! kept in `CURSOR_KEY` in the database directory (written through the I/O layer, durably), so
//! cursors stay valid across restarts and cannot be forged or altered.
//!
//! The last key is encrypted because it is where the scan stopped, which may be a row or key
//! the caller may not read (a read policy or a KV prefix grant skipped it): XOR with the stream
//! HMAC-SHA256(key, "aedb cursor" ‖ nonce ‖ block counter u32 LE), 32 bytes per block — a PRF
//! in counter mode, with a fresh random nonce per cursor, then authenticated.

use std::path::Path;

use aedb_pager::io::{read_whole_file, write_file_durably, IoErrorKind, Vfs};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use aedb_query::QueryError;

use crate::error::{AedbError, Result};

const CURSOR_VERSION: u8 = 2;
const NONCE_BYTES: usize = 16;
const HEADER_BYTES: usize = 1 + 8 + 4 + NONCE_BYTES;
const KEY_FILE: &str = "CURSOR_KEY";
const KEY_BYTES: usize = 32;
const MAC_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub snapshot_seq: u64,
    pub page_size: u32,
    pub last_key: Vec<u8>,
}

pub struct CursorCodec {
    key: [u8; KEY_BYTES],
}

impl CursorCodec {
    /// The codec of a database directory, whose key file is read and written through `vfs`.
    /// `read_only`: never create the key file (cursors of a read-only instance without one then
    /// only live as long as it does).
    pub fn for_dir(
        vfs: &dyn Vfs,
        dir: &Path,
        hmac_key: Option<[u8; KEY_BYTES]>,
        read_only: bool,
    ) -> Result<Self> {
        if let Some(key) = hmac_key {
            return Ok(CursorCodec { key });
        }
        let path = dir.join(KEY_FILE);
        match read_whole_file(vfs, &path, KEY_BYTES) {
            Ok(bytes) => {
                if let Ok(key) = <[u8; KEY_BYTES]>::try_from(bytes.as_slice()) {
                    return Ok(CursorCodec { key });
                }
                // Too short: a new key replaces it.
            }
            // Missing, or too long: a new key replaces it.
            Err(e) if matches!(e.kind, IoErrorKind::Os(libc::ENOENT | libc::EFBIG)) => {}
            // A reader must not fail for want of a key: its cursors just die with it.
            Err(e) if read_only => {
                tracing::warn!(error = %e, "cursor key unreadable; cursors last as long as this instance")
            }
            Err(e) => return Err(AedbError::Io(e.to_string())),
        }
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key)
            .map_err(|e| AedbError::Io(format!("a random key for {}: {e}", path.display())))?;
        if !read_only {
            write_file_durably(vfs, dir, KEY_FILE, &key)
                .map_err(|e| AedbError::Io(e.to_string()))?;
        }
        Ok(CursorCodec { key })
    }

    fn hmac(&self) -> Hmac<Sha256> {
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }

    /// `data` XORed with the key stream of `nonce` (encrypts and decrypts).
    fn xor_stream(&self, nonce: &[u8], data: &mut [u8]) {
        for (block, chunk) in (0u32..).zip(data.chunks_mut(32)) {
            let mut mac = self.hmac();
            mac.update(b"aedb cursor");
            mac.update(nonce);
            mac.update(&block.to_le_bytes());
            let stream = mac.finalize().into_bytes();
            for (byte, key) in chunk.iter_mut().zip(stream.iter()) {
                *byte ^= key;
            }
        }
    }

    pub fn encode(&self, cursor: &PageCursor) -> String {
        let mut bytes = vec![CURSOR_VERSION];
        bytes.extend_from_slice(&cursor.snapshot_seq.to_le_bytes());
        bytes.extend_from_slice(&cursor.page_size.to_le_bytes());
        let mut nonce = [0u8; NONCE_BYTES];
        // Without randomness a cursor is still authenticated; only its key is then exposed to
        // whoever knows the key stream of an all-zero nonce, which no one can compute.
        if getrandom::fill(&mut nonce).is_err() {
            tracing::warn!("no randomness for a cursor nonce");
        }
        bytes.extend_from_slice(&nonce);
        let mut last_key = cursor.last_key.clone();
        self.xor_stream(&nonce, &mut last_key);
        bytes.extend_from_slice(&last_key);
        let mut mac = self.hmac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        hex::encode(bytes)
    }

    pub fn decode(&self, text: &str) -> std::result::Result<PageCursor, QueryError> {
        let bad = |why: &str| QueryError::invalid(format!("cursor {why}"));
        let bytes = hex::decode(text).map_err(|_| bad("is not hex"))?;
        if bytes.len() < HEADER_BYTES + MAC_BYTES || bytes[0] != CURSOR_VERSION {
            return Err(bad("is malformed"));
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
        let mut mac = self.hmac();
        mac.update(body);
        // In constant time: how far a forged tag matches must not show in the time taken.
        mac.verify_slice(tag)
            .map_err(|_| bad("signature mismatch"))?;
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[1..9]);
        let mut size = [0u8; 4];
        size.copy_from_slice(&body[9..13]);
        let mut last_key = body[HEADER_BYTES..].to_vec();
        self.xor_stream(&body[13..HEADER_BYTES], &mut last_key);
        Ok(PageCursor {
            snapshot_seq: u64::from_le_bytes(seq),
            page_size: u32::from_le_bytes(size),
            last_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aedb_pager::io::sim::{CrashMode, SimVfs};

    fn cursor() -> PageCursor {
        PageCursor {
            snapshot_seq: 42,
            page_size: 100,
            last_key: b"k\xff".to_vec(),
        }
    }

    #[test]
    fn the_key_file_is_written_durably_through_the_vfs() {
        let sim = SimVfs::new();
        let dir = Path::new("/db");
        let codec = CursorCodec::for_dir(&sim, dir, None, false).expect("codec");
        let text = codec.encode(&cursor());
        assert_eq!(
            sim.unsynced_writes(),
            0,
            "the key is synced before for_dir returns"
        );
        // What a power loss right after keeps: the key, whole, under its name.
        let image = sim.crash_image(CrashMode::PowerLoss, 7);
        let key = image.file_bytes(&dir.join(KEY_FILE)).expect("CURSOR_KEY");
        assert_eq!(key, codec.key);
        assert!(!image.exists(&dir.join("CURSOR_KEY.tmp")));
        let reopened = CursorCodec::for_dir(&image, dir, None, false).expect("reopen");
        assert_eq!(reopened.decode(&text).expect("still valid"), cursor());
    }

    #[test]
    fn a_read_only_codec_writes_nothing() {
        let sim = SimVfs::new();
        let dir = Path::new("/db");
        let codec = CursorCodec::for_dir(&sim, dir, None, true).expect("codec");
        assert_eq!(sim.write_points(), 0);
        assert!(!sim.exists(&dir.join(KEY_FILE)));
        assert_eq!(
            codec.decode(&codec.encode(&cursor())).expect("ok"),
            cursor()
        );
        // With a key file, it reads that key.
        let writer = CursorCodec::for_dir(&sim, dir, None, false).expect("writer");
        let reader = CursorCodec::for_dir(&sim, dir, None, true).expect("reader");
        assert_eq!(reader.key, writer.key);
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_replaced() {
        for len in [0usize, 5, 33, 4096] {
            let sim = SimVfs::new();
            let dir = Path::new("/db");
            aedb_pager::io::write_file_durably(&sim, dir, KEY_FILE, &vec![7; len]).expect("bad");
            let codec = CursorCodec::for_dir(&sim, dir, None, false).expect("codec");
            let stored = sim.file_bytes(&dir.join(KEY_FILE)).expect("key file");
            assert_eq!(stored, codec.key, "length {len}");
        }
    }

    #[test]
    fn altered_or_malformed_cursors_are_refused_without_panic() {
        let codec = CursorCodec {
            key: [3; KEY_BYTES],
        };
        let text = codec.encode(&cursor());
        let mut altered = text.clone().into_bytes();
        altered[4] = if altered[4] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).expect("ascii");
        let other = CursorCodec {
            key: [4; KEY_BYTES],
        };
        for (input, why) in [
            (altered.as_str(), "signature mismatch"),
            (text.as_str(), "signature mismatch"),
            ("abc", "is not hex"),
            ("aé0", "is not hex"),
            ("é", "is not hex"),
            ("zz", "is not hex"),
            ("02", "is malformed"),
        ] {
            let codec = if input == text { &other } else { &codec };
            let err = codec.decode(input).expect_err(input);
            assert!(err.to_string().contains(why), "{input:?}: {err}");
        }
    }

    #[test]
    fn the_last_key_is_not_readable_in_the_cursor_and_round_trips() {
        let codec = CursorCodec {
            key: [3; KEY_BYTES],
        };
        let secret = PageCursor {
            snapshot_seq: 7,
            page_size: 10,
            last_key: b"b/ssn-123-45-6789 and more than one block of key stream".to_vec(),
        };
        let text = codec.encode(&secret);
        let bytes = hex::decode(&text).expect("hex");
        assert!(!bytes.windows(6).any(|w| w == b"b/ssn-"), "{text}");
        assert_ne!(text, codec.encode(&secret), "a fresh nonce per cursor");
        assert_eq!(codec.decode(&text).expect("decode"), secret);
    }
}
