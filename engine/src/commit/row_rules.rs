//! What a row must satisfy to be stored (types, nullability, sizes, check constraints, its
//! key), and how a mutation finds the rows its predicate matches.

use aedb_catalog::expr::Expr;
use aedb_catalog::keys::encode_key;
use aedb_catalog::schema::{Constraint, TableSchema};
use aedb_catalog::types::{Row, Value};

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

/// Rows matching `predicate`, in key order, up to `limit`, found through the query planner
/// (`aedb_access::scan::matching_rows`); refuses to examine more than `max_scan_rows` rows.
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
    aedb_access::scan::matching_rows(txn, schema, predicate, limit, max_scan_rows)
        .map_err(AedbError::from)
}
