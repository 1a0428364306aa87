//! Grants: the owner of `sys:grants`, which permission each caller holds.
//!
//! Key: caller id (UTF-8, no NUL) ‖ 0x00 ‖ the permission, postcard-encoded
//! (`aedb_catalog::permission`, pinned). Value: delegable u8 ‖ the granting commit's sequence
//! u64 LE ‖ who granted it (UTF-8, the rest; empty when anonymous). A caller's grants are one
//! key range.

use aedb_catalog::permission::Permission;
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};

pub const GRANTS_TREE: &str = "sys:grants";

/// One grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub permission: Permission,
    pub delegable: bool,
    pub granted_at_seq: u64,
    pub granted_by: String,
}

fn caller_prefix(caller: &str) -> Vec<u8> {
    [caller.as_bytes(), b"\0"].concat()
}

fn key(caller: &str, permission: &Permission) -> Result<Vec<u8>> {
    let encoded = postcard::to_allocvec(permission)
        .map_err(|e| AedbError::Validation(format!("permission does not encode: {e}")))?;
    Ok([caller_prefix(caller), encoded].concat())
}

fn decode(prefix_len: usize, key: &[u8], value: &[u8]) -> Result<Grant> {
    let bad = |what: &str| AedbError::Corruption(format!("grant record: {what}"));
    // Exactly one permission: trailing bytes would mean the key is another caller's.
    let (permission, rest) =
        postcard::take_from_bytes(key.get(prefix_len..).ok_or_else(|| bad("short key"))?)
            .map_err(|e| bad(&e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad("bytes after the permission"));
    }
    let delegable = *value.first().ok_or_else(|| bad("empty value"))? != 0;
    let seq = value
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| bad("short value"))?;
    let granted_by =
        String::from_utf8(value[9..].to_vec()).map_err(|_| bad("grantor not UTF-8"))?;
    Ok(Grant {
        permission,
        delegable,
        granted_at_seq: seq,
        granted_by,
    })
}

/// Every grant `caller` holds.
pub fn grants_of(reader: &impl ReadTrees, caller: &str) -> Result<Vec<Grant>> {
    let prefix = caller_prefix(caller);
    let mut out = Vec::new();
    for item in reader.prefix(GRANTS_TREE, &prefix, false)? {
        let (k, v) = item?;
        out.push(decode(prefix.len(), &k, &v)?);
    }
    Ok(out)
}

/// Whether no caller holds any grant (a fresh database).
pub fn is_empty(reader: &impl ReadTrees) -> Result<bool> {
    Ok(reader.prefix(GRANTS_TREE, b"", false)?.next().is_none())
}

/// Track commits that write grants: the grant cache trusts only what was read after the
/// newest (`permission::cache`).
pub fn watch(engine: &crate::durable::Engine) -> Result<()> {
    engine.watch_tree(GRANTS_TREE)
}

/// Store a grant (replacing the same permission's, e.g. to change `delegable`).
pub fn put(txn: &mut LoggedTxn, caller: &str, grant: &Grant) -> Result<()> {
    let mut value = vec![u8::from(grant.delegable)];
    value.extend_from_slice(&grant.granted_at_seq.to_le_bytes());
    value.extend_from_slice(grant.granted_by.as_bytes());
    txn.insert(GRANTS_TREE, &key(caller, &grant.permission)?, &value)?;
    Ok(())
}

/// Remove a grant; whether it existed.
pub fn remove(txn: &mut LoggedTxn, caller: &str, permission: &Permission) -> Result<bool> {
    txn.remove(GRANTS_TREE, &key(caller, permission)?)
}
