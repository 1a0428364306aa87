//! Page cursors: opaque strings that pin a snapshot and say where the next page starts.
//!
//! `hex(version 1 ‖ snapshot seq u64 ‖ page size u32 ‖ last key ‖ HMAC-SHA256 over all before)`.
//! The key is the configured HMAC key, else a random 32-byte key kept in `CURSOR_KEY` in the
//! database directory, so cursors stay valid across restarts and cannot be forged or altered.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use aedb_query::QueryError;

use crate::error::{AedbError, Result};

const CURSOR_VERSION: u8 = 1;
const KEY_FILE: &str = "CURSOR_KEY";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub snapshot_seq: u64,
    pub page_size: u32,
    pub last_key: Vec<u8>,
}

pub struct CursorCodec {
    key: [u8; 32],
}

impl CursorCodec {
    /// The codec of a database directory. `read_only`: never create the key file (cursors of a
    /// read-only instance without one then only live as long as it does).
    pub fn for_dir(dir: &Path, hmac_key: Option<[u8; 32]>, read_only: bool) -> Result<Self> {
        if let Some(key) = hmac_key {
            return Ok(CursorCodec { key });
        }
        let path = dir.join(KEY_FILE);
        let io = |e: std::io::Error| AedbError::Io(format!("{}: {e}", path.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(CursorCodec { key });
            }
        }
        let mut key = [0u8; 32];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(io)?;
        if read_only {
            return Ok(CursorCodec { key });
        }
        let tmp = dir.join(format!("{KEY_FILE}.tmp"));
        std::fs::write(&tmp, key).map_err(io)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(CursorCodec { key })
    }

    fn mac(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    pub fn encode(&self, cursor: &PageCursor) -> String {
        let mut bytes = vec![CURSOR_VERSION];
        bytes.extend_from_slice(&cursor.snapshot_seq.to_le_bytes());
        bytes.extend_from_slice(&cursor.page_size.to_le_bytes());
        bytes.extend_from_slice(&cursor.last_key);
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(&self, text: &str) -> std::result::Result<PageCursor, QueryError> {
        let bad = |why: &str| QueryError::invalid(format!("cursor {why}"));
        if !text.len().is_multiple_of(2) || !text.is_ascii() {
            return Err(bad("is not hex"));
        }
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad("is not hex"))?;
        if bytes.len() < 1 + 8 + 4 + 32 || bytes[0] != CURSOR_VERSION {
            return Err(bad("is malformed"));
        }
        let (body, mac) = bytes.split_at(bytes.len() - 32);
        if self.mac(body) != mac {
            return Err(bad("signature mismatch"));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[1..9]);
        let mut size = [0u8; 4];
        size.copy_from_slice(&body[9..13]);
        Ok(PageCursor {
            snapshot_seq: u64::from_le_bytes(seq),
            page_size: u32::from_le_bytes(size),
            last_key: body[13..].to_vec(),
        })
    }
}
