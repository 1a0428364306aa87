//! Order-preserving (memcomparable) encoding of value tuples: comparing encodings byte-wise
//! gives the order of the values (the total order of `Value`). Primary keys and index keys are
//! stored in B+trees under these encodings.
//!
//! Each value: a tag byte (`types::tag`, numbered in kind order) then
//!
//! | kind | bytes after the tag |
//! |---|---|
//! | Null | none |
//! | Boolean | 1: 0 or 1 |
//! | U8 | 1 |
//! | U64 | 8, big-endian |
//! | Integer, Timestamp | 8, big-endian with the sign bit flipped |
//! | U256 | 32, big-endian |
//! | I256 | 32, big-endian with the sign bit flipped |
//! | Float | 8: the IEEE bits, all flipped when negative, else the sign bit set |
//! | Text, Json, Blob | the bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x00 |

use crate::types::{tag, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed key encoding at byte {at}: {reason}")]
pub struct KeyDecodeError {
    pub at: usize,
    pub reason: &'static str,
}

pub fn encode_value(out: &mut Vec<u8>, value: &Value) {
    out.push(value.tag());
    match value {
        Value::Null => {}
        Value::Boolean(b) => out.push(*b as u8),
        Value::U8(v) => out.push(*v),
        Value::U64(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Integer(v) | Value::Timestamp(v) => {
            out.extend_from_slice(&((*v as u64) ^ (1 << 63)).to_be_bytes())
        }
        Value::U256(v) => out.extend_from_slice(v),
        Value::I256(v) => {
            let mut bytes = *v;
            bytes[0] ^= 0x80;
            out.extend_from_slice(&bytes);
        }
        Value::Float(f) => {
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::Text(s) | Value::Json(s) => escape(out, s.as_bytes()),
        Value::Blob(b) => escape(out, b),
    }
}

fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Encode a tuple (a primary key, or index columns followed by the primary key).
pub fn encode_key(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 9);
    for value in values {
        encode_value(&mut out, value);
    }
    out
}

/// Decode one value from the front of `bytes`; returns it and the bytes it took.
pub fn decode_value(bytes: &[u8]) -> Result<(Value, usize), KeyDecodeError> {
    let err = |at, reason| KeyDecodeError { at, reason };
    let Some(&kind) = bytes.first() else {
        return Err(err(0, "empty"));
    };
    let fixed = |n: usize| bytes.get(1..1 + n).ok_or(err(1, "truncated value"));
    let u64_at = |b: &[u8]| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        u64::from_be_bytes(raw)
    };
    Ok(match kind {
        tag::NULL => (Value::Null, 1),
        tag::BOOLEAN => (Value::Boolean(fixed(1)?[0] != 0), 2),
        tag::U8 => (Value::U8(fixed(1)?[0]), 2),
        tag::U64 => (Value::U64(u64_at(fixed(8)?)), 9),
        tag::INTEGER | tag::TIMESTAMP => {
            let v = (u64_at(fixed(8)?) ^ (1 << 63)) as i64;
            (
                if kind == tag::INTEGER {
                    Value::Integer(v)
                } else {
                    Value::Timestamp(v)
                },
                9,
            )
        }
        tag::U256 | tag::I256 => {
            let mut v = [0u8; 32];
            v.copy_from_slice(fixed(32)?);
            if kind == tag::I256 {
                v[0] ^= 0x80;
                (Value::I256(v), 33)
            } else {
                (Value::U256(v), 33)
            }
        }
        tag::FLOAT => {
            let ordered = u64_at(fixed(8)?);
            let bits = if ordered >> 63 == 1 {
                ordered & !(1 << 63)
            } else {
                !ordered
            };
            (Value::Float(f64::from_bits(bits)), 9)
        }
        tag::TEXT | tag::JSON | tag::BLOB => {
            let mut raw = Vec::new();
            let mut i = 1;
            loop {
                match (bytes.get(i), bytes.get(i + 1)) {
                    (Some(0), Some(0)) => break,
                    (Some(0), Some(0xff)) => {
                        raw.push(0);
                        i += 2;
                    }
                    (Some(0), _) => return Err(err(i, "bad escape")),
                    (Some(&b), _) => {
                        raw.push(b);
                        i += 1;
                    }
                    (None, _) => return Err(err(i, "unterminated string")),
                }
            }
            let value = match kind {
                tag::BLOB => Value::Blob(raw),
                _ => {
                    let text = String::from_utf8(raw).map_err(|_| err(1, "text is not UTF-8"))?;
                    if kind == tag::TEXT {
                        Value::Text(text)
                    } else {
                        Value::Json(text)
                    }
                }
            };
            (value, i + 2)
        }
        _ => return Err(err(0, "unknown tag")),
    })
}

/// Decode exactly `count` values from the front; returns them and the bytes they took.
pub fn decode_prefix(bytes: &[u8], count: usize) -> Result<(Vec<Value>, usize), KeyDecodeError> {
    let mut values = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let (value, used) =
            decode_value(&bytes[at..]).map_err(|e| KeyDecodeError { at: at + e.at, ..e })?;
        values.push(value);
        at += used;
    }
    Ok((values, at))
}

/// Decode a whole tuple.
pub fn decode_key(bytes: &[u8]) -> Result<Vec<Value>, KeyDecodeError> {
    let mut values = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (value, used) =
            decode_value(&bytes[at..]).map_err(|e| KeyDecodeError { at: at + e.at, ..e })?;
        values.push(value);
        at += used;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Boolean),
            any::<u8>().prop_map(Value::U8),
            any::<u64>().prop_map(Value::U64),
            any::<i64>().prop_map(Value::Integer),
            any::<i64>().prop_map(Value::Timestamp),
            any::<[u8; 32]>().prop_map(Value::U256),
            any::<[u8; 32]>().prop_map(Value::I256),
            any::<f64>()
                .prop_filter("no NaN", |f| !f.is_nan())
                .prop_map(Value::Float),
            ".{0,12}".prop_map(Value::Text),
            ".{0,12}".prop_map(Value::Json),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Blob),
        ]
    }

    proptest! {
        #[test]
        fn encoding_preserves_order_and_round_trips(
            a in proptest::collection::vec(value_strategy(), 1..4),
            b in proptest::collection::vec(value_strategy(), 1..4),
        ) {
            let (ea, eb) = (encode_key(&a), encode_key(&b));
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
            prop_assert_eq!(decode_key(&ea).unwrap(), a);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_key(&bytes);
        }
    }
}
