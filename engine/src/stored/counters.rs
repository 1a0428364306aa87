//! Sharded counters: the owner of the counter shards kept in a scope's KV tree.
//!
//! Each shard is a KV entry whose value is a u64 (big-endian) and whose key is
//! `b"__aedb_counter_shard__" ‖ key length: u32 BE ‖ key ‖ shard: u16 BE`.

use aedb_pager::ReadTrees;

use super::kv;
use crate::commit::wide::as_u64;
use crate::error::{AedbError, Result};

const SHARD_KEY_PREFIX: &[u8] = b"__aedb_counter_shard__";

/// The physical KV key of one shard of a sharded counter.
pub fn shard_key(key: &[u8], shard: u16) -> Vec<u8> {
    let mut physical = SHARD_KEY_PREFIX.to_vec();
    physical.extend_from_slice(&(key.len() as u32).to_be_bytes());
    physical.extend_from_slice(key);
    physical.extend_from_slice(&shard.to_be_bytes());
    physical
}

/// The sum of the counter's `shard_count` shards, as `reader` sees them.
pub fn sum(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
    key: &[u8],
    shard_count: u16,
) -> Result<u64> {
    let mut total = 0u64;
    for shard in 0..shard_count {
        if let Some(entry) = kv::get(reader, project, scope, &shard_key(key, shard))? {
            total = total
                .checked_add(as_u64(&entry.value)?)
                .ok_or_else(|| AedbError::Validation("counter sum overflows u64".into()))?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_key_bytes() {
        let mut golden = b"__aedb_counter_shard__".to_vec();
        golden.extend_from_slice(&[0, 0, 0, 2, b'h', b'i', 0, 7]);
        assert_eq!(shard_key(b"hi", 7), golden);
    }
}
