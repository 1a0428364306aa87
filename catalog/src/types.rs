//! Column types, values and rows (`aedb::catalog::types`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

// Variant order is part of the file format (catalog entries): pinned by catalog/tests/golden.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    Text,
    U8,
    U64,
    Integer,
    Float,
    Boolean,
    U256,
    I256,
    Blob,
    Timestamp,
    Json,
}

impl ColumnType {
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "Text",
            ColumnType::U8 => "U8",
            ColumnType::U64 => "U64",
            ColumnType::Integer => "Integer",
            ColumnType::Float => "Float",
            ColumnType::Boolean => "Boolean",
            ColumnType::U256 => "U256",
            ColumnType::I256 => "I256",
            ColumnType::Blob => "Blob",
            ColumnType::Timestamp => "Timestamp",
            ColumnType::Json => "Json",
        }
    }

    /// Numeric kinds compare with each other in predicates.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnType::U8
                | ColumnType::U64
                | ColumnType::Integer
                | ColumnType::Float
                | ColumnType::Timestamp
        )
    }
}

/// The wire tag of each value kind: the byte a value starts with in the key encoding
/// (`keys.rs`) and in the row encoding (`rows.rs`), docs/FORMAT.md "Key encoding". Part of the
/// file format, never renumbered: pinned by catalog/tests/golden.rs. The numbers follow the kind
/// order of `Value`'s total order, which the key encoding preserves by comparing tags first.
pub mod tag {
    pub const NULL: u8 = 0;
    pub const BOOLEAN: u8 = 1;
    pub const U8: u8 = 2;
    pub const U64: u8 = 3;
    pub const INTEGER: u8 = 4;
    pub const U256: u8 = 5;
    pub const I256: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const FLOAT: u8 = 8;
    pub const TEXT: u8 = 9;
    pub const JSON: u8 = 10;
    pub const BLOB: u8 = 11;
}

/// A value. The derived order and equality are the total order of the original: first by kind
/// (Null < Boolean < U8 < U64 < Integer < U256 < I256 < Timestamp < Float < Text < Json < Blob),
/// then by value (floats by their total order).
///
/// In catalog entries (defaults, predicates) a value is serde-encoded, and its serde variant
/// order (not [`tag`]) is part of the file format: pinned by catalog/tests/golden.rs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Value {
    Text(String),
    U8(u8),
    U64(u64),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// Big-endian.
    U256([u8; 32]),
    /// Big-endian two's complement.
    I256([u8; 32]),
    Blob(Vec<u8>),
    /// Microseconds by convention.
    Timestamp(i64),
    Json(String),
    Null,
}

impl Value {
    /// The kind's wire tag (see [`tag`]): the first byte of the value in keys and rows.
    pub fn tag(&self) -> u8 {
        match self {
            Value::Null => tag::NULL,
            Value::Boolean(_) => tag::BOOLEAN,
            Value::U8(_) => tag::U8,
            Value::U64(_) => tag::U64,
            Value::Integer(_) => tag::INTEGER,
            Value::U256(_) => tag::U256,
            Value::I256(_) => tag::I256,
            Value::Timestamp(_) => tag::TIMESTAMP,
            Value::Float(_) => tag::FLOAT,
            Value::Text(_) => tag::TEXT,
            Value::Json(_) => tag::JSON,
            Value::Blob(_) => tag::BLOB,
        }
    }

    /// Position of the kind in the total order. It is the wire tag: the key encoding sorts by
    /// the tag byte first, so the tags are numbered in kind order (see [`tag`]).
    pub fn kind_rank(&self) -> u8 {
        self.tag()
    }

    pub fn kind_name(&self) -> &'static str {
        match self.column_type() {
            Some(t) => t.name(),
            None => "Null",
        }
    }

    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Text(_) => ColumnType::Text,
            Value::U8(_) => ColumnType::U8,
            Value::U64(_) => ColumnType::U64,
            Value::Integer(_) => ColumnType::Integer,
            Value::Float(_) => ColumnType::Float,
            Value::Boolean(_) => ColumnType::Boolean,
            Value::U256(_) => ColumnType::U256,
            Value::I256(_) => ColumnType::I256,
            Value::Blob(_) => ColumnType::Blob,
            Value::Timestamp(_) => ColumnType::Timestamp,
            Value::Json(_) => ColumnType::Json,
            Value::Null => return None,
        })
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number, for comparisons across numeric kinds.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::U8(v) => Some(*v as f64),
            Value::U64(v) => Some(*v as f64),
            Value::Integer(v) | Value::Timestamp(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// The value as an exact i128 for integer kinds.
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            Value::U8(v) => Some(*v as i128),
            Value::U64(v) => Some(*v as i128),
            Value::Integer(v) | Value::Timestamp(v) => Some(*v as i128),
            _ => None,
        }
    }

    /// Bytes a value occupies in text-like kinds (for size limits).
    pub fn payload_len(&self) -> usize {
        match self {
            Value::Text(s) | Value::Json(s) => s.len(),
            Value::Blob(b) => b.len(),
            _ => 0,
        }
    }
}

fn i256_cmp(a: &[u8; 32], b: &[u8; 32]) -> Ordering {
    let (sa, sb) = (a[0] & 0x80 != 0, b[0] & 0x80 != 0);
    match (sa, sb) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.cmp(b),
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::U8(a), Value::U8(b)) => a.cmp(b),
            (Value::U64(a), Value::U64(b)) => a.cmp(b),
            (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
            (Value::U256(a), Value::U256(b)) => a.cmp(b),
            (Value::I256(a), Value::I256(b)) => i256_cmp(a, b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Json(a), Value::Json(b)) => a.cmp(b),
            (Value::Blob(a), Value::Blob(b)) => a.cmp(b),
            _ => self.kind_rank().cmp(&other.kind_rank()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

/// A row: one value per column, in schema order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Row {
    pub values: Vec<Value>,
}

impl Row {
    pub fn from_values(values: Vec<Value>) -> Self {
        Row { values }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Value> {
        self.values.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_order_by_kind_then_value() {
        let mut values = [
            Value::Blob(vec![1]),
            Value::Text("b".into()),
            Value::Float(-1.5),
            Value::Integer(-3),
            Value::Null,
            Value::Boolean(true),
            Value::Text("a".into()),
            Value::Integer(7),
        ];
        values.sort();
        assert_eq!(values[0], Value::Null);
        assert_eq!(values[1], Value::Boolean(true));
        assert_eq!(values[2], Value::Integer(-3));
        assert_eq!(values[3], Value::Integer(7));
        assert_eq!(values[4], Value::Float(-1.5));
        assert_eq!(values[5], Value::Text("a".into()));
        let mut neg = [0xffu8; 32];
        neg[31] = 0xfe;
        assert!(Value::I256(neg) < Value::I256([0; 32]));
        assert_ne!(Value::Float(f64::NAN), Value::Float(1.0));
    }
}
