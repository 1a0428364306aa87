//! The engine's own tables in the project `_system`, scope `app` (the event outbox, processor
//! checkpoints, the processor registry and dead letters): ordinary tables, created on first use
//! inside the commit that first writes them, so they are queryable with the query API and
//! stored, logged and recovered like any table. Each table's owner gives its columns and key.

use aedb_catalog::namespace::{
    table_tree, ProjectEntry, ScopeEntry, DEFAULT_SCOPE_ID, SYSTEM_PROJECT_ID,
};
use aedb_catalog::schema::{ColumnDef, TableSchema};
use aedb_catalog::types::{ColumnType, Value};
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::catalog;

/// A system table's shape: its name, columns and primary key.
pub struct SystemTable {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnType)],
    pub primary_key: &'static [&'static str],
    /// Columns that may hold Null (the others may not).
    pub nullable: &'static [&'static str],
}

impl SystemTable {
    /// Its schema, if it was created.
    pub fn find(&self, reader: &impl ReadTrees) -> Result<Option<TableSchema>> {
        catalog::find_table(reader, SYSTEM_PROJECT_ID, DEFAULT_SCOPE_ID, self.name)
    }

    /// Its schema, creating the system project, its scope and the table on first use.
    pub fn ensure(&self, txn: &mut LoggedTxn, now_micros: u64) -> Result<TableSchema> {
        if let Some(schema) = self.find(txn)? {
            return Ok(schema);
        }
        if catalog::get_project(txn, SYSTEM_PROJECT_ID)?.is_none() {
            let project = ProjectEntry {
                project_id: SYSTEM_PROJECT_ID.into(),
                owner_id: None,
                created_at_micros: now_micros,
            };
            catalog::put_project(txn, &project)?;
        }
        if catalog::get_scope(txn, SYSTEM_PROJECT_ID, DEFAULT_SCOPE_ID)?.is_none() {
            let scope = ScopeEntry {
                project_id: SYSTEM_PROJECT_ID.into(),
                scope_id: DEFAULT_SCOPE_ID.into(),
                owner_id: None,
                created_at_micros: now_micros,
            };
            catalog::put_scope(txn, &scope)?;
        }
        let columns: Vec<ColumnDef> = self
            .columns
            .iter()
            .map(|(name, col_type)| ColumnDef {
                name: (*name).into(),
                col_type: *col_type,
                nullable: self.nullable.contains(name),
            })
            .collect();
        let schema = TableSchema {
            project_id: SYSTEM_PROJECT_ID.into(),
            scope_id: DEFAULT_SCOPE_ID.into(),
            table_name: self.name.into(),
            owner_id: None,
            slots: (0..columns.len() as u32).collect(),
            slot_count: columns.len() as u32,
            columns,
            primary_key: self.primary_key.iter().map(|c| (*c).into()).collect(),
            constraints: Vec::new(),
            indexes: Vec::new(),
            table_id: catalog::next_table_id(txn)?,
        };
        txn.create_tree(&table_tree(schema.table_id))?;
        catalog::put_table(txn, &schema)?;
        Ok(schema)
    }
}

/// A sequence or a time as the `Integer`/`Timestamp` column it is stored in.
pub fn int(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| AedbError::Overflow)
}

/// The text in a `Text` or `Json` column of a system row.
pub fn text(table: &str, value: Option<&Value>) -> Result<String> {
    match value {
        Some(Value::Text(s)) | Some(Value::Json(s)) => Ok(s.clone()),
        other => Err(AedbError::Corruption(format!(
            "{table} row holds {other:?} where text belongs"
        ))),
    }
}

/// The number in an `Integer` or `Timestamp` column of a system row.
pub fn unsigned(table: &str, value: Option<&Value>) -> Result<u64> {
    match value {
        Some(Value::Integer(n)) | Some(Value::Timestamp(n)) => u64::try_from(*n)
            .map_err(|_| AedbError::Corruption(format!("{table} holds a negative {n}"))),
        other => Err(AedbError::Corruption(format!(
            "{table} row holds {other:?} where a number belongs"
        ))),
    }
}

/// The flag in a `Boolean` column of a system row.
pub fn boolean(table: &str, value: Option<&Value>) -> Result<bool> {
    match value {
        Some(Value::Boolean(b)) => Ok(*b),
        other => Err(AedbError::Corruption(format!(
            "{table} row holds {other:?} where a flag belongs"
        ))),
    }
}
