//! Fixed-width integers stored as big-endian bytes: unsigned and two's-complement 256-bit
//! arithmetic (one carry loop), and the checked reads of stored u64 and u256 values.

use crate::error::{AedbError, Result};

/// `a + b` with the carry out of the top byte.
fn add_with_carry(a: &[u8; 32], b: &[u8; 32]) -> ([u8; 32], bool) {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let sum = a[i] as u16 + b[i] as u16 + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    (out, carry != 0)
}

/// Unsigned 256-bit addition; None on overflow.
pub fn u256_add(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let (out, carry) = add_with_carry(a, b);
    (!carry).then_some(out)
}

/// Unsigned 256-bit subtraction; None when `b > a`.
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

/// Two's-complement 256-bit addition; None on signed overflow.
pub fn i256_add(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let (out, _) = add_with_carry(a, b);
    let negative = |v: &[u8; 32]| v[0] & 0x80 != 0;
    (negative(a) != negative(b) || negative(&out) == negative(a)).then_some(out)
}

/// An i128 as a 256-bit two's-complement big-endian value.
pub fn i128_to_i256(v: i128) -> [u8; 32] {
    let mut out = if v < 0 { [0xff; 32] } else { [0; 32] };
    out[16..].copy_from_slice(&v.to_be_bytes());
    out
}

/// An unsigned integer of fixed width as a KV value stores it (big-endian bytes): the one
/// read-modify-write of the KV mutations serves every width through it.
pub trait StoredUint: Copy + Ord {
    const NAME: &'static str;
    const ZERO: Self;
    fn decode(bytes: &[u8]) -> Result<Self>;
    fn encode(self) -> Vec<u8>;
    fn checked_add(self, other: Self) -> Option<Self>;
    fn checked_sub(self, other: Self) -> Option<Self>;
}

impl StoredUint for u64 {
    const NAME: &'static str = "u64";
    const ZERO: Self = 0;
    fn decode(bytes: &[u8]) -> Result<Self> {
        as_u64(bytes)
    }
    fn encode(self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn checked_add(self, other: Self) -> Option<Self> {
        u64::checked_add(self, other)
    }
    fn checked_sub(self, other: Self) -> Option<Self> {
        u64::checked_sub(self, other)
    }
}

/// A U256: 32 big-endian bytes (so the byte order is the numeric order).
impl StoredUint for [u8; 32] {
    const NAME: &'static str = "u256";
    const ZERO: Self = [0; 32];
    fn decode(bytes: &[u8]) -> Result<Self> {
        as_u256(bytes)
    }
    fn encode(self) -> Vec<u8> {
        self.to_vec()
    }
    fn checked_add(self, other: Self) -> Option<Self> {
        u256_add(&self, &other)
    }
    fn checked_sub(self, other: Self) -> Option<Self> {
        u256_sub(&self, &other)
    }
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
    }

    #[test]
    fn i256_arithmetic() {
        assert_eq!(
            i256_add(&i128_to_i256(-5), &i128_to_i256(7)),
            Some(i128_to_i256(2))
        );
        let max = {
            let mut m = [0xff; 32];
            m[0] = 0x7f;
            m
        };
        assert_eq!(i256_add(&max, &i128_to_i256(1)), None);
        assert_eq!(i256_add(&max, &i128_to_i256(-1)).map(|v| v[31]), Some(0xfe));
    }
}
