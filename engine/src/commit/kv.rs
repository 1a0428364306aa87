//! The KV space of a scope: entries, and the fixed-width numeric helpers.
//!
//! Stored value: `version: u64 LE ‖ created_at: u64 LE ‖ value bytes`, where `version` is the
//! sequence of the last write and `created_at` the sequence of the first.

use crate::error::{AedbError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: Vec<u8>,
    /// Commit sequence of the last write.
    pub version: u64,
    /// Commit sequence of the first write (not a timestamp, as in the original).
    pub created_at: u64,
}

impl KvEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.value.len());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.created_at.to_le_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    /// Takes the stored bytes: the value is what follows the two sequences, moved down in
    /// place rather than copied into a new allocation.
    pub fn decode(mut bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < 16 {
            return Err(AedbError::Corruption(format!(
                "KV entry of {} bytes",
                bytes.len()
            )));
        }
        let mut v = [0u8; 8];
        v.copy_from_slice(&bytes[..8]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&bytes[8..16]);
        bytes.drain(..16);
        Ok(KvEntry {
            value: bytes,
            version: u64::from_le_bytes(v),
            created_at: u64::from_le_bytes(c),
        })
    }
}

pub fn u256_add(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let sum = a[i] as u16 + b[i] as u16 + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    (carry == 0).then_some(out)
}

pub fn u256_sub(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    if a < b {
        return None;
    }
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut diff = a[i] as i16 - b[i] as i16 - borrow;
        borrow = 0;
        if diff < 0 {
            diff += 256;
            borrow = 1;
        }
        out[i] = diff as u8;
    }
    Some(out)
}

pub fn as_u256(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| AedbError::Validation("invalid u256 bytes length".into()))
}

pub fn as_u64(bytes: &[u8]) -> Result<u64> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| AedbError::Validation("invalid u64 bytes length".into()))?;
    Ok(u64::from_be_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u128) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[16..].copy_from_slice(&v.to_be_bytes());
        out
    }

    #[test]
    fn u256_arithmetic() {
        assert_eq!(u256_add(&n(5), &n(7)), Some(n(12)));
        assert_eq!(u256_add(&n(u128::MAX), &n(1)).map(|r| r[15]), Some(1));
        assert_eq!(u256_add(&[0xff; 32], &n(1)), None);
        assert_eq!(u256_sub(&n(7), &n(5)), Some(n(2)));
        assert_eq!(u256_sub(&n(5), &n(7)), None);
        let entry = KvEntry {
            value: b"v".to_vec(),
            version: 3,
            created_at: 1,
        };
        assert_eq!(KvEntry::decode(entry.encode()).unwrap(), entry);
        assert!(KvEntry::decode(b"short".to_vec()).is_err());
    }
}
