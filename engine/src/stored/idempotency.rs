//! Idempotency records: the owner of `sys:idempotency` and its age index
//! `sys:idempotency_by_seq`.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `sys:idempotency` | caller id ‖ `0x00` ‖ idempotency key (16) | record (below) |
//! | `sys:idempotency_by_seq` | seq: u64 BE ‖ record key | written-at µs: u64 LE |
//!
//! Record: `seq: u64 LE ‖ fingerprint (32) ‖ written_at_micros: u64 LE ‖ fingerprint kind (1)`.
//! Older layouts are still read: 40 bytes (no time: read as written at 0, so expired) and
//! 48 bytes (no kind byte: the fingerprint is of the first, `Debug`-text kind).
//!
//! A record answers replays while it is within both windows (`commits` and `micros`); an older
//! one is as if never written. Each keyed commit deletes up to [`PRUNE_PER_COMMIT`] expired
//! records, oldest first, so the records kept stay bounded by the window.

use std::ops::Bound;

use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};

pub const IDEMPOTENCY_TREE: &str = "sys:idempotency";
/// Sequence (8 bytes BE) ‖ record key → written-at µs (u64 LE): the records in age order.
pub const IDEMPOTENCY_BY_SEQ_TREE: &str = "sys:idempotency_by_seq";
/// Expired records a keyed commit deletes at most (bounds the work a commit takes on).
pub const PRUNE_PER_COMMIT: usize = 64;

/// How long an idempotency record answers replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyWindow {
    pub commits: u64,
    pub micros: u64,
}

impl IdempotencyWindow {
    /// A record written at `seq`, `written_at` no longer answers at (`now_seq`, `now`).
    pub fn expired(&self, seq: u64, written_at: u64, now_seq: u64, now: u64) -> bool {
        now_seq.saturating_sub(seq) > self.commits || now.saturating_sub(written_at) > self.micros
    }

    /// A zero window keeps no records.
    pub fn keeps_records(&self) -> bool {
        self.commits > 0 || self.micros > 0
    }
}

/// How a record's fingerprint was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintKind {
    /// SHA-256 of the request's `Debug` text (records written before the canonical encoding).
    DebugText,
    /// SHA-256 of the request's canonical encoding (`commit::envelope::fingerprint`).
    Canonical,
}

const KIND_CANONICAL: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub seq: u64,
    pub fingerprint: [u8; 32],
    pub written_at_micros: u64,
    pub kind: FingerprintKind,
}

impl IdempotencyRecord {
    const BYTES: usize = 49;
    const BYTES_WITHOUT_KIND: usize = 48;
    const BYTES_WITHOUT_TIME: usize = 40;

    pub fn encode(&self) -> Vec<u8> {
        debug_assert_eq!(
            self.kind,
            FingerprintKind::Canonical,
            "only canonical is written"
        );
        let mut out = Vec::with_capacity(Self::BYTES);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.written_at_micros.to_le_bytes());
        out.push(KIND_CANONICAL);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt =
            || AedbError::Corruption(format!("idempotency record of {} bytes", bytes.len()));
        let kind = match bytes.len() {
            Self::BYTES if bytes[48] == KIND_CANONICAL => FingerprintKind::Canonical,
            Self::BYTES_WITHOUT_KIND | Self::BYTES_WITHOUT_TIME => FingerprintKind::DebugText,
            _ => return Err(corrupt()),
        };
        let u64_at = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(raw)
        };
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(&bytes[8..40]);
        Ok(IdempotencyRecord {
            seq: u64_at(0),
            fingerprint,
            written_at_micros: if bytes.len() >= Self::BYTES_WITHOUT_KIND {
                u64_at(40)
            } else {
                0
            },
            kind,
        })
    }
}

/// The key of a caller's record: caller id ‖ 0 ‖ the 16-byte idempotency key.
pub fn record_key(caller_id: Option<&str>, key: &[u8; 16]) -> Vec<u8> {
    let mut out = caller_id.map_or(Vec::new(), |c| c.as_bytes().to_vec());
    out.push(0);
    out.extend_from_slice(key);
    out
}

fn by_seq_key(seq: u64, record_key: &[u8]) -> Vec<u8> {
    [&seq.to_be_bytes()[..], record_key].concat()
}

/// The record under `record_key`, as `reader` sees it.
pub fn lookup(reader: &impl ReadTrees, record_key: &[u8]) -> Result<Option<IdempotencyRecord>> {
    reader
        .get_with(IDEMPOTENCY_TREE, record_key, IdempotencyRecord::decode)?
        .transpose()
}

/// Record this commit under `record_key`: drop the expired record it replaces (`replaced`:
/// that record's sequence), prune expired records, and write the new one unless the window
/// keeps none.
pub fn record(
    txn: &mut LoggedTxn,
    record_key: &[u8],
    replaced: Option<u64>,
    fingerprint: [u8; 32],
    window: IdempotencyWindow,
    now_micros: u64,
) -> Result<()> {
    let keep = window.keeps_records();
    if let Some(old) = replaced {
        txn.remove(IDEMPOTENCY_BY_SEQ_TREE, &by_seq_key(old, record_key))?;
        if !keep {
            txn.remove(IDEMPOTENCY_TREE, record_key)?;
        }
    }
    prune(txn, window, now_micros)?;
    if keep {
        let record = IdempotencyRecord {
            seq: txn.seq(),
            fingerprint,
            written_at_micros: now_micros,
            kind: FingerprintKind::Canonical,
        };
        txn.insert(IDEMPOTENCY_TREE, record_key, &record.encode())?;
        txn.insert(
            IDEMPOTENCY_BY_SEQ_TREE,
            &by_seq_key(record.seq, record_key),
            &record.written_at_micros.to_le_bytes(),
        )?;
    }
    Ok(())
}

/// Delete up to [`PRUNE_PER_COMMIT`] of the oldest records that have expired.
/// The age index entry decides expiry alone (the sequence in its key, the time in its value),
/// so the scan stops at the first live record: a keyed commit with nothing to prune reads one
/// entry.
fn prune(txn: &mut LoggedTxn, window: IdempotencyWindow, now: u64) -> Result<()> {
    let now_seq = txn.seq();
    let malformed = || AedbError::Corruption("malformed idempotency age entry".into());
    let mut expired = Vec::new();
    for item in txn.range(
        IDEMPOTENCY_BY_SEQ_TREE,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
    )? {
        let (key, value) = item?;
        let seq = key
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(malformed)?;
        let written_at = value[..].try_into().map_err(|_| malformed())?;
        let (seq, written_at) = (u64::from_be_bytes(seq), u64::from_le_bytes(written_at));
        if !window.expired(seq, written_at, now_seq, now) {
            break; // oldest first: the rest are younger
        }
        expired.push(key);
        if expired.len() == PRUNE_PER_COMMIT {
            break;
        }
    }
    for by_seq in expired {
        txn.remove(IDEMPOTENCY_TREE, &by_seq[8..])?;
        txn.remove(IDEMPOTENCY_BY_SEQ_TREE, &by_seq)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_bytes_and_older_layouts() {
        let record = IdempotencyRecord {
            seq: 5,
            fingerprint: [0xab; 32],
            written_at_micros: 7,
            kind: FingerprintKind::Canonical,
        };
        let mut golden = vec![5, 0, 0, 0, 0, 0, 0, 0];
        golden.extend_from_slice(&[0xab; 32]);
        golden.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(record.encode(), golden);
        assert_eq!(
            IdempotencyRecord::decode(&golden).ok(),
            Some(record.clone())
        );
        let old = IdempotencyRecord::decode(&golden[..48]).expect("48-byte layout");
        assert_eq!(old.kind, FingerprintKind::DebugText);
        assert_eq!(old.written_at_micros, 7);
        let oldest = IdempotencyRecord::decode(&golden[..40]).expect("40-byte layout");
        assert_eq!(
            (oldest.kind, oldest.written_at_micros),
            (FingerprintKind::DebugText, 0)
        );
        let mut unknown_kind = golden.clone();
        unknown_kind[48] = 9;
        assert!(IdempotencyRecord::decode(&unknown_kind).is_err());
        assert!(IdempotencyRecord::decode(&golden[..41]).is_err());
        assert_eq!(record_key(Some("ab"), &[1; 16])[..3], [b'a', b'b', 0]);
    }
}
