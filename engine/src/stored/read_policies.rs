//! Read policies: the owner of `sys:read_policies`, the row filter each table applies to the
//! `_as` reads and `_as` `DeleteWhere`/`UpdateWhere` of callers without `PolicyBypass`.
//!
//! Key: project ‖ 0x00 ‖ scope ‖ 0x00 ‖ table (UTF-8 names, which hold no NUL). Value: the
//! predicate (`aedb_catalog::expr::Expr`) as JSON text, its serde form. The tree is watched
//! (`Engine::watch_tree`), so a cache of it trusts only what was read after the newest change.

use aedb_catalog::expr::Expr;
use aedb_pager::ReadTrees;

use crate::durable::{Engine, LoggedTxn};
use crate::error::{AedbError, Result};

pub const POLICIES_TREE: &str = "sys:read_policies";

fn key(project: &str, scope: &str, table: &str) -> Vec<u8> {
    [
        project.as_bytes(),
        b"\0",
        scope.as_bytes(),
        b"\0",
        table.as_bytes(),
    ]
    .concat()
}

/// The policy of a table, if it has one.
pub fn get(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
    table: &str,
) -> Result<Option<Expr>> {
    let Some(bytes) = reader.get(POLICIES_TREE, &key(project, scope, table))? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        AedbError::Corruption(format!("read policy of {project}.{scope}.{table}: {e}"))
    })
}

pub fn put(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    table: &str,
    policy: &Expr,
) -> Result<()> {
    let text = serde_json::to_vec(policy)
        .map_err(|e| AedbError::Validation(format!("read policy does not encode: {e}")))?;
    txn.insert(POLICIES_TREE, &key(project, scope, table), &text)?;
    Ok(())
}

/// Remove a table's policy; whether it had one.
pub fn remove(txn: &mut LoggedTxn, project: &str, scope: &str, table: &str) -> Result<bool> {
    txn.remove(POLICIES_TREE, &key(project, scope, table))
}

/// Remove the policies of every table of a project, or of one of its scopes (when dropped).
pub fn remove_under(txn: &mut LoggedTxn, project: &str, scope: Option<&str>) -> Result<()> {
    let prefix = match scope {
        Some(scope) => [project.as_bytes(), b"\0", scope.as_bytes(), b"\0"].concat(),
        None => [project.as_bytes(), b"\0"].concat(),
    };
    let keys: Vec<Vec<u8>> = txn
        .prefix(POLICIES_TREE, &prefix, false)?
        .map(|item| item.map(|(k, _)| k))
        .collect::<std::result::Result<_, _>>()?;
    for key in keys {
        txn.remove(POLICIES_TREE, &key)?;
    }
    Ok(())
}

/// Track commits that change policies (see the module comment).
pub fn watch(engine: &Engine) -> Result<()> {
    engine.watch_tree(POLICIES_TREE)
}
