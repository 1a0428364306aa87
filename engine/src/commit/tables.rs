//! Table rows inside a commit: validation, writes with index maintenance, deletes, scans.

use std::ops::Bound;

use aedb_catalog::expr::Expr;
use aedb_catalog::keys::encode_key;
use aedb_catalog::namespace::{index_tree, table_tree};
use aedb_catalog::rows::{decode_row, encode_row_at};
use aedb_catalog::schema::{Constraint, IndexDef, TableSchema};
use aedb_catalog::types::{Row, Value};
use aedb_pager::store::prefix_end;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};

pub struct RowLimits {
    pub max_table_value_bytes: usize,
    pub max_scan_rows: u64,
    pub max_batch_rows: usize,
}

/// Type and nullability of one value for column `i`.
pub fn check_value(schema: &TableSchema, i: usize, value: &Value) -> Result<()> {
    let column = &schema.columns[i];
    match value {
        Value::Null if !column.nullable || schema.primary_key.contains(&column.name) => {
            Err(AedbError::NotNullViolation {
                table: schema.table_name.clone(),
                column: column.name.clone(),
            })
        }
        Value::Null => Ok(()),
        Value::Float(f) if !f.is_finite() => Err(AedbError::Validation(format!(
            "column {} rejects {f}",
            column.name
        ))),
        other if other.column_type() != Some(column.col_type) => Err(AedbError::TypeMismatch {
            table: schema.table_name.clone(),
            column: column.name.clone(),
            expected: column.col_type.name().into(),
            actual: other.kind_name().into(),
        }),
        _ => Ok(()),
    }
}

/// Apply defaults, then check arity, types, nullability, sizes and check constraints.
pub fn validate_row(schema: &TableSchema, row: &mut Row, limits: &RowLimits) -> Result<()> {
    if row.values.len() != schema.columns.len() {
        return Err(AedbError::Validation(format!(
            "row column count mismatch: table {} has {} columns, the row {}",
            schema.table_name,
            schema.columns.len(),
            row.values.len()
        )));
    }
    for (i, value) in row.values.iter_mut().enumerate() {
        if value.is_null() {
            if let Some(default) = schema.default_for(&schema.columns[i].name) {
                *value = default.clone();
            }
        }
    }
    for (i, value) in row.values.iter().enumerate() {
        check_value(schema, i, value)?;
        if value.payload_len() > limits.max_table_value_bytes {
            return Err(AedbError::ValueTooLarge {
                len: value.payload_len(),
                max: limits.max_table_value_bytes,
            });
        }
    }
    for constraint in &schema.constraints {
        match constraint {
            Constraint::NotNull { column } => {
                if schema
                    .column_index(column)
                    .and_then(|i| row.values.get(i))
                    .is_none_or(Value::is_null)
                {
                    return Err(AedbError::NotNullViolation {
                        table: schema.table_name.clone(),
                        column: column.clone(),
                    });
                }
            }
            Constraint::Check { name, expr } => {
                if !super::ddl::check_holds(schema, expr, row) {
                    return Err(AedbError::CheckConstraintFailed {
                        table: schema.table_name.clone(),
                        constraint: name.clone(),
                    });
                }
            }
            Constraint::Unique { .. } | Constraint::Default { .. } => {}
        }
    }
    Ok(())
}

pub fn pk_values(schema: &TableSchema, row: &Row) -> Vec<Value> {
    schema
        .pk_positions()
        .into_iter()
        .map(|i| row.values.get(i).cloned().unwrap_or(Value::Null))
        .collect()
}

/// The encoded key of a row, checking an explicitly given primary key against the row's.
pub fn row_key(schema: &TableSchema, row: &Row, explicit: Option<&[Value]>) -> Result<Vec<u8>> {
    let derived = pk_values(schema, row);
    if let Some(explicit) = explicit {
        if explicit.len() != derived.len() {
            return Err(AedbError::Validation(format!(
                "primary key length mismatch: table {} has {} key columns, {} given",
                schema.table_name,
                derived.len(),
                explicit.len()
            )));
        }
        if explicit != derived.as_slice() {
            return Err(AedbError::Validation(format!(
                "the primary key {explicit:?} does not match the row's key columns {derived:?}"
            )));
        }
    }
    Ok(encode_key(&derived))
}

/// The index entry of a row: one rule, shared with the checker.
pub use aedb_query::index::index_entry;

fn index_prefix_len(def: &IndexDef, entry: &[u8]) -> Result<usize> {
    aedb_catalog::keys::decode_prefix(entry, def.columns.len())
        .map(|(_, used)| used)
        .map_err(|e| AedbError::Corruption(e.to_string()))
}

/// A unique index must not hold the same values under another primary key.
fn check_unique(
    txn: &mut LoggedTxn,
    schema: &TableSchema,
    def: &IndexDef,
    entry: &[u8],
    pk: &[u8],
) -> Result<()> {
    let prefix = &entry[..index_prefix_len(def, entry)?];
    let end = prefix_end(prefix);
    let upper = match &end {
        Some(e) => Bound::Excluded(e.as_slice()),
        None => Bound::Unbounded,
    };
    let tree = index_tree(schema.table_id, &def.index_name);
    let found: Vec<Vec<u8>> = txn
        .range(&tree, Bound::Included(prefix), upper, false)?
        .take(2)
        .map(|item| item.map(|(k, _)| k))
        .collect::<std::result::Result<_, _>>()?;
    if found.iter().any(|k| &k[prefix.len()..] != pk) {
        return Err(AedbError::UniqueViolation {
            table: schema.table_name.clone(),
            index: def.index_name.clone(),
            key: format!(
                "{:?}",
                aedb_catalog::keys::decode_key(prefix).unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// The primary key of the row holding `row`'s values in unique index `def`, if any.
pub fn unique_holder(
    txn: &mut LoggedTxn,
    schema: &TableSchema,
    def: &IndexDef,
    row: &Row,
) -> Result<Option<Vec<u8>>> {
    let Some(entry) = index_entry(schema, def, row, &[]) else {
        return Ok(None);
    };
    let end = prefix_end(&entry);
    let upper = match &end {
        Some(e) => Bound::Excluded(e.as_slice()),
        None => Bound::Unbounded,
    };
    let tree = index_tree(schema.table_id, &def.index_name);
    let first = txn
        .range(&tree, Bound::Included(&entry), upper, false)?
        .next()
        .transpose()?;
    Ok(first.map(|(key, _)| key[entry.len()..].to_vec()))
}

pub fn read_row(txn: &mut LoggedTxn, schema: &TableSchema, pk: &[u8]) -> Result<Option<Row>> {
    match txn.get(&table_tree(schema.table_id), pk)? {
        Some(bytes) => Ok(Some(schema.from_stored(
            decode_row(&bytes).map_err(|e| AedbError::Corruption(e.to_string()))?,
        ))),
        None => Ok(None),
    }
}

/// Store `new` under `pk`, replacing `old`, keeping every index in step.
pub fn write_row(
    txn: &mut LoggedTxn,
    schema: &TableSchema,
    pk: &[u8],
    old: Option<&Row>,
    new: &Row,
) -> Result<()> {
    for def in &schema.indexes {
        let old_entry = old.and_then(|o| index_entry(schema, def, o, pk));
        let new_entry = index_entry(schema, def, new, pk);
        if old_entry == new_entry {
            continue;
        }
        let tree = index_tree(schema.table_id, &def.index_name);
        if let Some(entry) = &new_entry {
            if def.index_type.is_unique() {
                check_unique(txn, schema, def, entry, pk)?;
            }
        }
        if let Some(entry) = old_entry {
            txn.remove(&tree, &entry)?;
        }
        if let Some(entry) = new_entry {
            txn.insert(&tree, &entry, &[])?;
        }
    }
    txn.insert(
        &table_tree(schema.table_id),
        pk,
        &encode_row_at(&schema.to_stored(new), txn.seq()),
    )?;
    Ok(())
}

pub fn delete_row(txn: &mut LoggedTxn, schema: &TableSchema, pk: &[u8], old: &Row) -> Result<()> {
    for def in &schema.indexes {
        if let Some(entry) = index_entry(schema, def, old, pk) {
            txn.remove(&index_tree(schema.table_id, &def.index_name), &entry)?;
        }
    }
    txn.remove(&table_tree(schema.table_id), pk)?;
    Ok(())
}

/// Every row (for building an index or checking a new constraint).
pub fn all_rows(txn: &mut LoggedTxn, schema: &TableSchema) -> Result<Vec<(Vec<u8>, Row)>> {
    let tree = table_tree(schema.table_id);
    let range = txn.range(&tree, Bound::Unbounded, Bound::Unbounded, false)?;
    let mut rows = Vec::new();
    for item in range {
        let (pk, bytes) = item?;
        rows.push((
            pk,
            schema
                .from_stored(decode_row(&bytes).map_err(|e| AedbError::Corruption(e.to_string()))?),
        ));
    }
    Ok(rows)
}

pub fn rebuild_index(txn: &mut LoggedTxn, schema: &TableSchema, def: &IndexDef) -> Result<()> {
    let tree = index_tree(schema.table_id, &def.index_name);
    for (pk, row) in all_rows(txn, schema)? {
        if let Some(entry) = index_entry(schema, def, &row, &pk) {
            if def.index_type.is_unique() {
                check_unique(txn, schema, def, &entry, &pk)?;
            }
            txn.insert(&tree, &entry, &[])?;
        }
    }
    Ok(())
}

/// Rows matching `predicate`, in key order, up to `limit`, found through the query planner
/// (`aedb_query::exec::matching_rows`); refuses to examine more than `max_scan_rows` rows.
pub fn matching_rows(
    txn: &LoggedTxn,
    schema: &TableSchema,
    predicate: &Expr,
    limit: Option<usize>,
    max_scan_rows: u64,
) -> Result<Vec<(Vec<u8>, Row)>> {
    if limit == Some(0) {
        return Err(AedbError::Validation("limit must be positive".into()));
    }
    match aedb_query::exec::matching_rows(txn, schema, predicate, limit, max_scan_rows) {
        Ok(rows) => Ok(rows),
        Err(aedb_query::QueryError::ScanBoundExceeded {
            estimated_rows,
            max_scan_rows,
        }) => Err(AedbError::Validation(format!(
            "mutation scan bound exceeded: more than {max_scan_rows} rows examined \
             (about {estimated_rows} candidates)"
        ))),
        Err(other) => Err(other.into()),
    }
}
