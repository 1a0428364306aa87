//! Row encoding: how a table row is stored as a B+tree value.
//!
//! | size | field |
//! |---:|---|
//! | 1 | row format: 1 (no version) or 2 (versioned) |
//! | varint | format 2 only: the row's version, the sequence of the commit that last wrote it |
//! | varint | number of values `n` |
//! | … | `n` values: tag byte (`types::tag`, as in `keys.rs`), then the payload |
//!
//! The engine stores format 2 (read sets and `RowVersion` assertions compare versions); a
//! format-1 row reads as version 1 ("exists, written at an unknown sequence": 0 would mean
//! missing). Dumps use format 1: a row's content without its history.
//!
//! Payloads: Boolean/U8 1 byte; U64/Integer/Timestamp/Float 8 bytes little-endian; U256/I256 32
//! bytes big-endian; Text/Json/Blob a varint length then the bytes; Null nothing. Varints are
//! LEB128 (7 bits a byte, low first). Rows written before a column was added hold fewer values;
//! readers see the missing trailing columns as Null (or the column default).

use crate::types::{tag, Row, Value};

const FORMAT_PLAIN: u8 = 1;
/// The version a format-1 row reads as: it exists, written at some unknown sequence.
pub const UNVERSIONED: u64 = 1;
const FORMAT_VERSIONED: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed row encoding at byte {at}: {reason}")]
pub struct RowDecodeError {
    pub at: usize,
    pub reason: &'static str,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Format 1: the values only.
pub fn encode_row(row: &Row) -> Vec<u8> {
    encode(row, None)
}

/// Format 2: the values and the version (sequence of the commit writing them).
pub fn encode_row_at(row: &Row, version: u64) -> Vec<u8> {
    encode(row, Some(version))
}

fn encode(row: &Row, version: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + row.values.len() * 9);
    match version {
        Some(version) => {
            out.push(FORMAT_VERSIONED);
            put_varint(&mut out, version);
        }
        None => out.push(FORMAT_PLAIN),
    }
    put_varint(&mut out, row.values.len() as u64);
    for value in &row.values {
        out.push(value.tag());
        match value {
            Value::Null => {}
            Value::Boolean(b) => out.push(*b as u8),
            Value::U8(v) => out.push(*v),
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Integer(v) | Value::Timestamp(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Float(f) => out.extend_from_slice(&f.to_bits().to_le_bytes()),
            Value::U256(v) | Value::I256(v) => out.extend_from_slice(v),
            Value::Text(s) | Value::Json(s) => {
                put_varint(&mut out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Blob(b) => {
                put_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: &'static str) -> RowDecodeError {
        RowDecodeError {
            at: self.at,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RowDecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(self.err("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, RowDecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint too long"))
    }

    fn array8(&mut self) -> Result<[u8; 8], RowDecodeError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(raw)
    }
}

/// The version in a stored row's header (1 for format 1).
pub fn row_version(bytes: &[u8]) -> Result<u64, RowDecodeError> {
    let mut c = Cursor { bytes, at: 0 };
    header(&mut c)
}

#[inline(always)]
fn header(c: &mut Cursor) -> Result<u64, RowDecodeError> {
    match c.take(1)?[0] {
        FORMAT_PLAIN => Ok(UNVERSIONED),
        FORMAT_VERSIONED => c.varint(),
        _ => Err(RowDecodeError {
            at: 0,
            reason: "unknown row format",
        }),
    }
}

pub fn decode_row(bytes: &[u8]) -> Result<Row, RowDecodeError> {
    decode_row_versioned(bytes).map(|(row, _)| row)
}

/// The row and its version (1 for format 1).
pub fn decode_row_versioned(bytes: &[u8]) -> Result<(Row, u64), RowDecodeError> {
    let mut values = Vec::new();
    let version = decode_into(bytes, &mut values)?;
    Ok((Row { values }, version))
}

/// Append a stored row's values to `out` (a join builds the combined row in place). On an
/// error `out` may hold some of the values.
pub fn decode_row_into(bytes: &[u8], out: &mut Vec<Value>) -> Result<(), RowDecodeError> {
    decode_into(bytes, out).map(|_| ())
}

/// The one row decoder: append the values to `out`, return the version.
#[inline(always)]
fn decode_into(bytes: &[u8], out: &mut Vec<Value>) -> Result<u64, RowDecodeError> {
    let mut c = Cursor { bytes, at: 0 };
    let version = header(&mut c)?;
    let count = c.varint()? as usize;
    out.reserve(count.min(bytes.len()));
    for _ in 0..count {
        out.push(decode_value(&mut c)?);
    }
    if c.at != bytes.len() {
        return Err(c.err("bytes after the last value"));
    }
    Ok(version)
}

/// One value: its tag, then its payload.
#[inline(always)]
fn decode_value(c: &mut Cursor) -> Result<Value, RowDecodeError> {
    let kind = c.take(1)?[0];
    Ok(match kind {
        tag::NULL => Value::Null,
        tag::BOOLEAN => Value::Boolean(c.take(1)?[0] != 0),
        tag::U8 => Value::U8(c.take(1)?[0]),
        tag::U64 => Value::U64(u64::from_le_bytes(c.array8()?)),
        tag::INTEGER => Value::Integer(i64::from_le_bytes(c.array8()?)),
        tag::TIMESTAMP => Value::Timestamp(i64::from_le_bytes(c.array8()?)),
        tag::FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(c.array8()?))),
        tag::U256 | tag::I256 => {
            let mut v = [0u8; 32];
            v.copy_from_slice(c.take(32)?);
            if kind == tag::U256 {
                Value::U256(v)
            } else {
                Value::I256(v)
            }
        }
        tag::TEXT | tag::JSON => {
            let len = c.varint()? as usize;
            let text = std::str::from_utf8(c.take(len)?)
                .map_err(|_| c.err("text is not UTF-8"))?
                .to_string();
            if kind == tag::TEXT {
                Value::Text(text)
            } else {
                Value::Json(text)
            }
        }
        tag::BLOB => {
            let len = c.varint()? as usize;
            Value::Blob(c.take(len)?.to_vec())
        }
        _ => return Err(c.err("unknown value tag")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_every_kind() {
        let row = Row::from_values(vec![
            Value::Text("héllo".into()),
            Value::U8(7),
            Value::U64(u64::MAX),
            Value::Integer(-5),
            Value::Float(2.5),
            Value::Boolean(true),
            Value::U256([9; 32]),
            Value::I256([0xff; 32]),
            Value::Blob(vec![0, 1, 2]),
            Value::Timestamp(123),
            Value::Json("{}".into()),
            Value::Null,
        ]);
        assert_eq!(decode_row(&encode_row(&row)).unwrap(), row);
        let versioned = encode_row_at(&row, 300);
        assert_eq!(
            decode_row_versioned(&versioned).unwrap(),
            (row.clone(), 300)
        );
        assert_eq!(row_version(&versioned).unwrap(), 300);
        assert_eq!(row_version(&encode_row(&row)).unwrap(), UNVERSIONED);
        assert!(decode_row(&[3, 0]).is_err(), "unknown format");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_row(&bytes);
        }
    }
}
