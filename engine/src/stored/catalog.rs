//! The schema catalog: the owner of `sys:catalog`, which holds every project, scope and table
//! definition and the table-id counter. Keys and entry encodings are specified in
//! `aedb_catalog::namespace` (FORMAT.md, "Catalog"); this module is the only one that reads
//! or writes the tree.

use std::ops::Bound;

use aedb_catalog::namespace::{
    decode_entry, encode_entry, project_key, project_prefix, scope_key, scope_prefix, table_key,
    table_prefix, validate_identifier, ProjectEntry, ScopeEntry, CATALOG_TREE, NEXT_TABLE_ID_KEY,
    SYSTEM_PROJECT_ID,
};
use aedb_catalog::schema::TableSchema;
use aedb_pager::ReadTrees;
use serde::de::DeserializeOwned;

use crate::durable::{Engine, LoggedTxn};
use crate::error::{AedbError, ResourceType, Result};

/// Have the engine track commits that change the catalog, so cached schemas know when they
/// went stale (`schema_cache.rs`).
pub fn watch(engine: &Engine) -> Result<()> {
    engine.watch_tree(CATALOG_TREE)
}

pub fn not_found(resource_type: ResourceType, id: impl Into<String>) -> AedbError {
    AedbError::NotFound {
        resource_type,
        resource_id: id.into(),
    }
}

pub fn check_id(what: &str, name: &str) -> Result<()> {
    validate_identifier(what, name).map_err(AedbError::Validation)
}

pub fn refuse_system(project: &str) -> Result<()> {
    if project == SYSTEM_PROJECT_ID {
        return Err(AedbError::Validation(format!(
            "project_id {SYSTEM_PROJECT_ID} is reserved"
        )));
    }
    Ok(())
}

fn entry<T: DeserializeOwned>(reader: &impl ReadTrees, key: &[u8]) -> Result<Option<T>> {
    match reader.get(CATALOG_TREE, key)? {
        Some(bytes) => decode_entry(&bytes)
            .map(Some)
            .map_err(AedbError::Corruption),
        None => Ok(None),
    }
}

/// Entries under a key prefix, decoded, in key order.
fn entries<T: DeserializeOwned>(reader: &impl ReadTrees, prefix: &[u8]) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for item in reader.prefix(CATALOG_TREE, prefix, false)? {
        let (_, bytes) = item?;
        out.push(decode_entry(&bytes).map_err(AedbError::Corruption)?);
    }
    Ok(out)
}

/// Entries under a key prefix, counted without decoding.
fn count(reader: &impl ReadTrees, prefix: &[u8]) -> Result<u64> {
    let end = aedb_pager::store::prefix_end(prefix);
    let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    Ok(reader.count(CATALOG_TREE, Bound::Included(prefix), upper)?)
}

pub fn get_project(reader: &impl ReadTrees, project: &str) -> Result<Option<ProjectEntry>> {
    entry(reader, &project_key(project))
}

pub fn get_scope(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
) -> Result<Option<ScopeEntry>> {
    entry(reader, &scope_key(project, scope))
}

pub fn find_table(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
    table: &str,
) -> Result<Option<TableSchema>> {
    entry(reader, &table_key(project, scope, table))
}

pub fn projects(reader: &impl ReadTrees) -> Result<Vec<ProjectEntry>> {
    entries(reader, &project_prefix())
}

pub fn scopes(reader: &impl ReadTrees, project: &str) -> Result<Vec<ScopeEntry>> {
    entries(reader, &scope_prefix(project))
}

pub fn tables(reader: &impl ReadTrees, project: &str, scope: &str) -> Result<Vec<TableSchema>> {
    entries(reader, &table_prefix(project, scope))
}

pub fn scope_count(reader: &impl ReadTrees, project: &str) -> Result<u64> {
    count(reader, &scope_prefix(project))
}

pub fn table_count(reader: &impl ReadTrees, project: &str, scope: &str) -> Result<u64> {
    count(reader, &table_prefix(project, scope))
}

/// The project and scope must exist.
pub fn require_scope(reader: &impl ReadTrees, project: &str, scope: &str) -> Result<()> {
    if get_project(reader, project)?.is_none() {
        return Err(not_found(ResourceType::Project, project));
    }
    if get_scope(reader, project, scope)?.is_none() {
        return Err(not_found(ResourceType::Scope, format!("{project}.{scope}")));
    }
    Ok(())
}

pub fn load_table(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
    table: &str,
) -> Result<TableSchema> {
    find_table(reader, project, scope, table)?.ok_or_else(|| not_found(ResourceType::Table, table))
}

pub fn put_project(txn: &mut LoggedTxn, entry: &ProjectEntry) -> Result<()> {
    txn.insert(
        CATALOG_TREE,
        &project_key(&entry.project_id),
        &encode_entry(entry),
    )?;
    Ok(())
}

pub fn put_scope(txn: &mut LoggedTxn, entry: &ScopeEntry) -> Result<()> {
    let key = scope_key(&entry.project_id, &entry.scope_id);
    txn.insert(CATALOG_TREE, &key, &encode_entry(entry))?;
    Ok(())
}

pub fn put_table(txn: &mut LoggedTxn, schema: &TableSchema) -> Result<()> {
    let key = table_key(&schema.project_id, &schema.scope_id, &schema.table_name);
    txn.insert(CATALOG_TREE, &key, &encode_entry(schema))?;
    Ok(())
}

pub fn remove_project(txn: &mut LoggedTxn, project: &str) -> Result<()> {
    txn.remove(CATALOG_TREE, &project_key(project))?;
    Ok(())
}

pub fn remove_scope(txn: &mut LoggedTxn, project: &str, scope: &str) -> Result<()> {
    txn.remove(CATALOG_TREE, &scope_key(project, scope))?;
    Ok(())
}

pub fn remove_table(txn: &mut LoggedTxn, project: &str, scope: &str, table: &str) -> Result<()> {
    txn.remove(CATALOG_TREE, &table_key(project, scope, table))?;
    Ok(())
}

/// The table-id counter's value as stored (u64 LE under `NEXT_TABLE_ID_KEY`).
pub fn decode_table_id_counter(bytes: &[u8]) -> Result<u64> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| AedbError::Corruption("table id counter".into()))?;
    Ok(u64::from_le_bytes(raw))
}

/// Take the next table id (ids are never reused).
pub fn next_table_id(txn: &mut LoggedTxn) -> Result<u64> {
    let current = match txn.get(CATALOG_TREE, NEXT_TABLE_ID_KEY)? {
        Some(bytes) => decode_table_id_counter(&bytes)?,
        None => 1,
    };
    txn.insert(
        CATALOG_TREE,
        NEXT_TABLE_ID_KEY,
        &(current + 1).to_le_bytes(),
    )?;
    Ok(current)
}

/// The commit sequence a catalog structural change last happened at (see
/// `LoggedTxn::structural_version`).
pub fn structural_version(txn: &LoggedTxn) -> u64 {
    txn.structural_version(CATALOG_TREE)
}
