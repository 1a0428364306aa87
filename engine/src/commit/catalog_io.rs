//! Reading and writing catalog entries inside a write transaction.

use aedb_catalog::namespace::{
    decode_entry, encode_entry, project_key, scope_key, table_key, validate_identifier,
    ProjectEntry, ScopeEntry, CATALOG_TREE, NEXT_TABLE_ID_KEY, SYSTEM_PROJECT_ID,
};
use aedb_catalog::schema::TableSchema;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, ResourceType, Result};

pub fn not_found(resource_type: ResourceType, id: impl Into<String>) -> AedbError {
    AedbError::NotFound {
        resource_type,
        resource_id: id.into(),
    }
}

pub fn check_id(what: &str, name: &str) -> Result<()> {
    validate_identifier(what, name).map_err(AedbError::Validation)
}

pub fn get_project(txn: &mut LoggedTxn, project: &str) -> Result<Option<ProjectEntry>> {
    match txn.get(CATALOG_TREE, &project_key(project))? {
        Some(bytes) => decode_entry(&bytes)
            .map(Some)
            .map_err(AedbError::Corruption),
        None => Ok(None),
    }
}

pub fn get_scope(txn: &mut LoggedTxn, project: &str, scope: &str) -> Result<Option<ScopeEntry>> {
    match txn.get(CATALOG_TREE, &scope_key(project, scope))? {
        Some(bytes) => decode_entry(&bytes)
            .map(Some)
            .map_err(AedbError::Corruption),
        None => Ok(None),
    }
}

/// The project and scope must exist.
pub fn require_scope(txn: &mut LoggedTxn, project: &str, scope: &str) -> Result<()> {
    if get_project(txn, project)?.is_none() {
        return Err(not_found(ResourceType::Project, project));
    }
    if get_scope(txn, project, scope)?.is_none() {
        return Err(not_found(ResourceType::Scope, format!("{project}.{scope}")));
    }
    Ok(())
}

pub fn find_table(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    table: &str,
) -> Result<Option<TableSchema>> {
    match txn.get(CATALOG_TREE, &table_key(project, scope, table))? {
        Some(bytes) => decode_entry(&bytes)
            .map(Some)
            .map_err(AedbError::Corruption),
        None => Ok(None),
    }
}

pub fn load_table(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    table: &str,
) -> Result<TableSchema> {
    find_table(txn, project, scope, table)?.ok_or_else(|| not_found(ResourceType::Table, table))
}

pub fn put_table(txn: &mut LoggedTxn, schema: &TableSchema) -> Result<()> {
    let key = table_key(&schema.project_id, &schema.scope_id, &schema.table_name);
    txn.insert(CATALOG_TREE, &key, &encode_entry(schema))?;
    Ok(())
}

pub fn next_table_id(txn: &mut LoggedTxn) -> Result<u64> {
    let current = match txn.get(CATALOG_TREE, NEXT_TABLE_ID_KEY)? {
        Some(bytes) => {
            let raw: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| AedbError::Corruption("table id counter".into()))?;
            u64::from_le_bytes(raw)
        }
        None => 1,
    };
    txn.insert(
        CATALOG_TREE,
        NEXT_TABLE_ID_KEY,
        &(current + 1).to_le_bytes(),
    )?;
    Ok(current)
}

pub fn refuse_system(project: &str) -> Result<()> {
    if project == SYSTEM_PROJECT_ID {
        return Err(AedbError::Validation(format!(
            "project_id {SYSTEM_PROJECT_ID} is reserved"
        )));
    }
    Ok(())
}
