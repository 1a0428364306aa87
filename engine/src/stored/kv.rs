//! KV entries: the owner of the KV space of each scope.
//!
//! Tree `kv:<project>:<scope>` (`namespace::kv_tree`); key: the caller's bytes; value:
//! `version: u64 LE ‖ created_at: u64 LE ‖ value bytes`, where `version` is the sequence of the
//! last write and `created_at` the sequence of the first.

use std::ops::Bound;

use aedb_catalog::namespace::kv_tree_name;
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: Vec<u8>,
    /// Commit sequence of the last write.
    pub version: u64,
    /// Commit sequence of the first write (not a timestamp, as in the original).
    pub created_at: u64,
}

/// Bytes before the value: the two sequences.
const HEADER_BYTES: usize = 16;

impl KvEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.value.len());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.created_at.to_le_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    /// Takes the stored bytes: the value is what follows the two sequences, moved down in
    /// place rather than copied into a new allocation.
    pub fn decode(mut bytes: Vec<u8>) -> Result<Self> {
        let (version, created_at) = Self::decode_header(&bytes)?;
        bytes.drain(..HEADER_BYTES);
        Ok(KvEntry {
            value: bytes,
            version,
            created_at,
        })
    }

    /// The version and created-at sequences of stored bytes, without the value.
    pub fn decode_header(bytes: &[u8]) -> Result<(u64, u64)> {
        let too_short = || AedbError::Corruption(format!("KV entry of {} bytes", bytes.len()));
        let version = bytes.get(..8).ok_or_else(too_short)?;
        let created_at = bytes.get(8..HEADER_BYTES).ok_or_else(too_short)?;
        let read = |raw: &[u8]| {
            let mut out = [0u8; 8];
            out.copy_from_slice(raw);
            u64::from_le_bytes(out)
        };
        Ok((read(version), read(created_at)))
    }
}

/// The entry of `key`, as `reader` sees it.
pub fn get(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
    key: &[u8],
) -> Result<Option<KvEntry>> {
    reader
        .get(&kv_tree_name(project, scope), key)?
        .map(KvEntry::decode)
        .transpose()
}

/// Keys in the scope.
pub fn len(reader: &impl ReadTrees, project: &str, scope: &str) -> Result<u64> {
    Ok(reader.len(&kv_tree_name(project, scope))?)
}

/// A page of a KV scan: entries in key order, and whether more follow.
pub struct KvPage {
    pub entries: Vec<(Vec<u8>, KvEntry)>,
    pub more: bool,
    /// The last key looked at (kept or not): a next page starts after it.
    pub last_examined: Option<Vec<u8>>,
}

/// Up to `page_size` entries within the bounds whose keys `keep` accepts, in key order,
/// looking at no more than `max_examined` keys (a caller who may read few keys of a large
/// scope pages through it rather than scanning it whole).
pub fn scan(
    reader: &impl ReadTrees,
    (project, scope): (&str, &str),
    (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
    page_size: usize,
    max_examined: u64,
    keep: &dyn Fn(&[u8]) -> bool,
) -> Result<KvPage> {
    let mut page = KvPage {
        entries: Vec::with_capacity(page_size.min(64)),
        more: false,
        last_examined: None,
    };
    let Some(tree) = reader.tree(&kv_tree_name(project, scope))? else {
        return Ok(page);
    };
    for (examined, item) in (0u64..).zip(tree.range_owned(start, end, false)) {
        let (key, bytes) = item?;
        if page.entries.len() == page_size || examined == max_examined {
            page.more = true;
            break;
        }
        if keep(&key) {
            page.entries.push((key.clone(), KvEntry::decode(bytes)?));
        }
        page.last_examined = Some(key);
    }
    Ok(page)
}

/// Write `value` under `key`: the version becomes this commit's sequence, `created_at` stays
/// that of the first write.
pub fn put(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    key: &[u8],
    value: Vec<u8>,
) -> Result<()> {
    let seq = txn.seq();
    let created_at = get(txn, project, scope, key)?.map_or(seq, |e| e.created_at);
    let entry = KvEntry {
        value,
        version: seq,
        created_at,
    };
    txn.insert(&kv_tree_name(project, scope), key, &entry.encode())?;
    Ok(())
}

/// Delete `key`; true when it was there.
pub fn delete(txn: &mut LoggedTxn, project: &str, scope: &str, key: &[u8]) -> Result<bool> {
    txn.remove(&kv_tree_name(project, scope), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bytes_are_version_then_created_at_then_value() {
        let entry = KvEntry {
            value: b"v".to_vec(),
            version: 3,
            created_at: 1,
        };
        let golden = [3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'v'];
        assert_eq!(entry.encode(), golden);
        assert_eq!(KvEntry::decode(golden.to_vec()).ok(), Some(entry));
        assert!(KvEntry::decode(b"short".to_vec()).is_err());
        assert_eq!(KvEntry::decode_header(&golden).ok(), Some((3, 1)));
    }
}
