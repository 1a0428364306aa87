//! The payload of a commit frame: the commit's effects on the B+trees, in order.
//!
//! Logging effects (not the caller's intent) makes redo deterministic and independent of any
//! validation logic above the storage layer: replaying the same frames on the same checkpoint
//! always gives the same trees.
//!
//! | size | field                                                              |
//! |-----:|--------------------------------------------------------------------|
//! | 1    | record version (1)                                                 |
//! | 4    | number of ops                                                      |
//! | …    | ops                                                                |
//!
//! Op: `kind u8 ‖ tree name length u16 ‖ tree name`, then for `Put`
//! `key length u32 ‖ key ‖ value length u32 ‖ value`, for `Delete` `key length u32 ‖ key`, and
//! nothing more for `CreateTree` and `DropTree`. Kinds: 1 Put, 2 Delete, 3 CreateTree, 4 DropTree.

use crate::error::{Result, WalError};

const RECORD_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalOp {
    Put {
        tree: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        tree: String,
        key: Vec<u8>,
    },
    CreateTree {
        tree: String,
    },
    DropTree {
        tree: String,
    },
}

/// An op borrowing its tree name, key and value from the record's bytes: redo decodes a frame
/// without an allocation per op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalOpRef<'a> {
    Put {
        tree: &'a str,
        key: &'a [u8],
        value: &'a [u8],
    },
    Delete {
        tree: &'a str,
        key: &'a [u8],
    },
    CreateTree {
        tree: &'a str,
    },
    DropTree {
        tree: &'a str,
    },
}

impl WalOpRef<'_> {
    pub fn tree(&self) -> &str {
        match self {
            WalOpRef::Put { tree, .. }
            | WalOpRef::Delete { tree, .. }
            | WalOpRef::CreateTree { tree }
            | WalOpRef::DropTree { tree } => tree,
        }
    }

    pub fn to_owned_op(&self) -> WalOp {
        match *self {
            WalOpRef::Put { tree, key, value } => WalOp::Put {
                tree: tree.to_string(),
                key: key.to_vec(),
                value: value.to_vec(),
            },
            WalOpRef::Delete { tree, key } => WalOp::Delete {
                tree: tree.to_string(),
                key: key.to_vec(),
            },
            WalOpRef::CreateTree { tree } => WalOp::CreateTree {
                tree: tree.to_string(),
            },
            WalOpRef::DropTree { tree } => WalOp::DropTree {
                tree: tree.to_string(),
            },
        }
    }
}

/// Builds a commit record op by op, as the transaction applies them.
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    bytes: Vec<u8>,
    ops: u32,
}

impl Default for RecordBuilder {
    fn default() -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.push(RECORD_VERSION);
        bytes.extend_from_slice(&0u32.to_le_bytes());
        RecordBuilder { bytes, ops: 0 }
    }
}

impl RecordBuilder {
    fn op(&mut self, kind: u8, tree: &str) {
        self.ops += 1;
        self.bytes.push(kind);
        self.bytes
            .extend_from_slice(&(tree.len() as u16).to_le_bytes());
        self.bytes.extend_from_slice(tree.as_bytes());
    }

    fn blob(&mut self, data: &[u8]) {
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(data);
    }

    pub fn put(&mut self, tree: &str, key: &[u8], value: &[u8]) {
        self.op(1, tree);
        self.blob(key);
        self.blob(value);
    }

    pub fn delete(&mut self, tree: &str, key: &[u8]) {
        self.op(2, tree);
        self.blob(key);
    }

    pub fn create_tree(&mut self, tree: &str) {
        self.op(3, tree);
    }

    pub fn drop_tree(&mut self, tree: &str) {
        self.op(4, tree);
    }

    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[1..5].copy_from_slice(&self.ops.to_le_bytes());
        self.bytes
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(WalError::BadRecord(format!(
                "record ends inside a field at byte {}",
                self.at
            )));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn blob(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn tree(&mut self) -> Result<&'a str> {
        let len = self.u16()? as usize;
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| WalError::BadRecord("tree name is not UTF-8".into()))
    }
}

/// Decode a commit record; any inconsistency is an error, never a panic.
pub fn decode_record(bytes: &[u8]) -> Result<Vec<WalOp>> {
    Ok(decode_record_ref(bytes)?
        .iter()
        .map(WalOpRef::to_owned_op)
        .collect())
}

/// [`decode_record`] without copying: the ops borrow from `bytes`. The whole record is checked
/// before any op is returned.
pub fn decode_record_ref(bytes: &[u8]) -> Result<Vec<WalOpRef<'_>>> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != RECORD_VERSION {
        return Err(WalError::BadRecord(format!("record version {version}")));
    }
    let count = r.u32()? as usize;
    // Each op takes at least 3 bytes: bound the allocation by what the bytes can hold.
    let mut ops = Vec::with_capacity(count.min(bytes.len() / 3));
    for _ in 0..count {
        let kind = r.u8()?;
        let tree = r.tree()?;
        ops.push(match kind {
            1 => WalOpRef::Put {
                tree,
                key: r.blob()?,
                value: r.blob()?,
            },
            2 => WalOpRef::Delete {
                tree,
                key: r.blob()?,
            },
            3 => WalOpRef::CreateTree { tree },
            4 => WalOpRef::DropTree { tree },
            other => return Err(WalError::BadRecord(format!("unknown op kind {other}"))),
        });
    }
    if r.at != bytes.len() {
        return Err(WalError::BadRecord(format!(
            "{} bytes after the last op",
            bytes.len() - r.at
        )));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut b = RecordBuilder::default();
        b.put("t", b"k", b"v");
        b.delete("t", b"gone");
        b.create_tree("new");
        b.drop_tree("old");
        let ops = decode_record(&b.finish()).unwrap();
        assert_eq!(
            ops,
            vec![
                WalOp::Put {
                    tree: "t".into(),
                    key: b"k".to_vec(),
                    value: b"v".to_vec()
                },
                WalOp::Delete {
                    tree: "t".into(),
                    key: b"gone".to_vec()
                },
                WalOp::CreateTree { tree: "new".into() },
                WalOp::DropTree { tree: "old".into() },
            ]
        );
        assert!(decode_record(&[1, 5, 0, 0, 0]).is_err());
        let mut b = RecordBuilder::default();
        b.put("t", b"k", b"v");
        let bytes = b.finish();
        assert_eq!(
            decode_record_ref(&bytes).unwrap(),
            vec![WalOpRef::Put {
                tree: "t",
                key: b"k",
                value: b"v"
            }]
        );
        assert!(decode_record(&[]).is_err());
    }
}
