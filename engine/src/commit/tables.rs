//! Applying the table mutations: inserts and upserts (with conflict targets and actions),
//! deletes, updates by predicate (rows found through the query planner), and U256 column
//! arithmetic. Rows are read and written through their owner, `stored::rows`; what a row must
//! satisfy is `row_rules.rs`.

use aedb_catalog::keys::encode_key;
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::{ColumnType, Row, Value};

use super::apply::{rows, Applied, Limits};
use super::row_rules::{matching_rows, row_key, validate_row};
use super::validation::*;
use super::wide::{u256_add, u256_sub};
use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::catalog::{load_table, refuse_system};
use crate::stored::rows::{delete_row, read_row, unique_holder, write_row};

/// Apply one table mutation (the dispatcher sends no other kind here).
pub(crate) fn apply(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    use Mutation as M;
    match mutation {
        M::Insert { .. }
        | M::Upsert { .. }
        | M::InsertBatch { .. }
        | M::UpsertBatch { .. }
        | M::UpsertOnConflict { .. }
        | M::UpsertBatchOnConflict { .. } => apply_put(txn, mutation, limits),
        M::Delete {
            project_id,
            scope_id,
            table_name,
            primary_key,
        } => {
            let schema = table(txn, project_id, scope_id, table_name)?;
            if primary_key.len() != schema.primary_key.len() {
                return Err(AedbError::Validation("primary key length mismatch".into()));
            }
            let pk = encode_key(primary_key);
            match read_row(txn, &schema, &pk)? {
                Some(old) => delete_row(txn, &schema, &pk, &old).map(|_| rows(1)),
                None => Ok(rows(0)),
            }
        }
        M::DeleteWhere {
            project_id,
            scope_id,
            table_name,
            predicate,
            limit,
        } => {
            let schema = table(txn, project_id, scope_id, table_name)?;
            let found = matching_rows(txn, &schema, predicate, *limit, limits.rows.max_scan_rows)?;
            for (pk, old) in &found {
                delete_row(txn, &schema, pk, old)?;
            }
            Ok(rows(found.len() as u64))
        }
        M::UpdateWhere {
            project_id,
            scope_id,
            table_name,
            predicate,
            updates,
            limit,
        } => {
            let exprs: Vec<(String, TableUpdateExpr)> = updates
                .iter()
                .map(|(c, v)| (c.clone(), TableUpdateExpr::Value(v.clone())))
                .collect();
            update_where(
                txn, project_id, scope_id, table_name, predicate, &exprs, *limit, limits,
            )
        }
        M::UpdateWhereExpr {
            project_id,
            scope_id,
            table_name,
            predicate,
            updates,
            limit,
        } => update_where(
            txn, project_id, scope_id, table_name, predicate, updates, *limit, limits,
        ),
        M::TableIncU256 {
            project_id,
            scope_id,
            table_name,
            primary_key,
            column,
            amount_be,
        }
        | M::TableDecU256 {
            project_id,
            scope_id,
            table_name,
            primary_key,
            column,
            amount_be,
        } => {
            let increment = matches!(mutation, M::TableIncU256 { .. });
            table_u256(
                txn,
                project_id,
                scope_id,
                table_name,
                primary_key,
                column,
                amount_be,
                increment,
            )
            .map(|_| rows(1))
        }
        _ => Err(AedbError::Validation("not a table mutation".into())),
    }
}

/// Inserts and upserts, one row or a batch, with or without a conflict target.
fn apply_put(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    use Mutation as M;
    match mutation {
        M::Insert {
            project_id,
            scope_id,
            table_name,
            primary_key,
            row,
        } => {
            let schema = table(txn, project_id, scope_id, table_name)?;
            put_row(txn, &schema, Some(primary_key), row.clone(), true, limits).map(|_| rows(1))
        }
        M::Upsert {
            project_id,
            scope_id,
            table_name,
            primary_key,
            row,
        } => {
            let schema = table(txn, project_id, scope_id, table_name)?;
            put_row(txn, &schema, Some(primary_key), row.clone(), false, limits).map(|_| rows(1))
        }
        M::InsertBatch {
            project_id,
            scope_id,
            table_name,
            rows: batch,
        }
        | M::UpsertBatch {
            project_id,
            scope_id,
            table_name,
            rows: batch,
        } => {
            let insert = matches!(mutation, M::InsertBatch { .. });
            if batch.len() > limits.rows.max_batch_rows {
                return Err(AedbError::Validation(format!(
                    "batch of {} rows exceeds max_batch_rows ({})",
                    batch.len(),
                    limits.rows.max_batch_rows
                )));
            }
            let schema = table(txn, project_id, scope_id, table_name)?;
            for row in batch {
                put_row(txn, &schema, None, row.clone(), insert, limits)?;
            }
            Ok(rows(batch.len() as u64))
        }
        M::UpsertOnConflict {
            project_id,
            scope_id,
            table_name,
            row,
            conflict_target,
            conflict_action,
        } => {
            let schema = table(txn, project_id, scope_id, table_name)?;
            upsert_on_conflict(
                txn,
                &schema,
                row.clone(),
                conflict_target,
                conflict_action,
                limits,
            )
            .map(|_| rows(1))
        }
        M::UpsertBatchOnConflict {
            project_id,
            scope_id,
            table_name,
            rows: batch,
            conflict_target,
            conflict_action,
        } => {
            let schema = table(txn, project_id, scope_id, table_name)?;
            for row in batch {
                upsert_on_conflict(
                    txn,
                    &schema,
                    row.clone(),
                    conflict_target,
                    conflict_action,
                    limits,
                )?;
            }
            Ok(rows(batch.len() as u64))
        }
        _ => Err(AedbError::Validation("not an insert or upsert".into())),
    }
}

fn table(txn: &mut LoggedTxn, project: &str, scope: &str, name: &str) -> Result<TableSchema> {
    refuse_system(project)?;
    load_table(txn, project, scope, name)
}

fn put_row(
    txn: &mut LoggedTxn,
    schema: &TableSchema,
    explicit_pk: Option<&[Value]>,
    mut row: Row,
    insert: bool,
    limits: &Limits,
) -> Result<()> {
    validate_row(schema, &mut row, &limits.rows)?;
    let pk = row_key(schema, &row, explicit_pk)?;
    let old = read_row(txn, schema, &pk)?;
    if insert && old.is_some() {
        return Err(AedbError::DuplicatePK {
            table: schema.table_name.clone(),
            key: format!(
                "{:?}",
                aedb_catalog::keys::decode_key(&pk).unwrap_or_default()
            ),
        });
    }
    write_row(txn, schema, &pk, old.as_ref(), &row)
}

/// The unique index a conflict target names (by name, or by its exact columns).
fn conflict_index<'s>(
    schema: &'s TableSchema,
    target: &ConflictTarget,
) -> Result<&'s aedb_catalog::schema::IndexDef> {
    let found = match target {
        ConflictTarget::Index(name) => schema.index(name),
        ConflictTarget::Columns(columns) => schema
            .indexes
            .iter()
            .find(|i| i.index_type.is_unique() && &i.columns == columns),
        ConflictTarget::PrimaryKey => None,
    };
    match found {
        Some(def) if def.index_type.is_unique() => Ok(def),
        _ => Err(AedbError::Validation(format!(
            "conflict target {target:?} must be the primary key or a UniqueHash index of {}",
            schema.table_name
        ))),
    }
}

/// Position of column `name`, or `UnknownColumn`.
pub(crate) fn column_of(schema: &TableSchema, name: &str) -> Result<usize> {
    schema
        .column_index(name)
        .ok_or_else(|| AedbError::UnknownColumn {
            table: schema.table_name.clone(),
            column: name.to_string(),
        })
}

fn upsert_on_conflict(
    txn: &mut LoggedTxn,
    schema: &TableSchema,
    mut row: Row,
    target: &ConflictTarget,
    action: &ConflictAction,
    limits: &Limits,
) -> Result<()> {
    validate_row(schema, &mut row, &limits.rows)?;
    let existing = match target {
        ConflictTarget::PrimaryKey => {
            let pk = row_key(schema, &row, None)?;
            read_row(txn, schema, &pk)?.map(|old| (pk, old))
        }
        ConflictTarget::Columns(columns) if *columns == schema.primary_key => {
            let pk = row_key(schema, &row, None)?;
            read_row(txn, schema, &pk)?.map(|old| (pk, old))
        }
        ConflictTarget::Index(_) | ConflictTarget::Columns(_) => {
            let def = conflict_index(schema, target)?;
            match unique_holder(txn, schema, def, &row)? {
                Some(pk) => read_row(txn, schema, &pk)?.map(|old| (pk, old)),
                None => None,
            }
        }
    };
    let Some((pk, old)) = existing else {
        let pk = row_key(schema, &row, None)?;
        return write_row(txn, schema, &pk, None, &row);
    };
    let mut merged = old.clone();
    match action {
        ConflictAction::DoNothing => return Ok(()),
        ConflictAction::DoMerge => {
            // The existing row keeps its key (the proposed one may differ on a unique-index
            // conflict).
            let key_columns = schema.pk_positions();
            for (i, value) in row.values.iter().enumerate() {
                if !value.is_null() && !key_columns.contains(&i) {
                    merged.values[i] = value.clone();
                }
            }
        }
        ConflictAction::DoUpdate(updates) => {
            for (column, value) in updates {
                let i = column_of(schema, column)?;
                merged.values[i] = value.clone();
            }
        }
        ConflictAction::DoUpdateWith(updates) => {
            for (column, expr) in updates {
                let i = column_of(schema, column)?;
                merged.values[i] = match expr {
                    UpdateExpr::Value(v) => v.clone(),
                    UpdateExpr::Existing(c) => old.values[column_of(schema, c)?].clone(),
                    UpdateExpr::Proposed(c) => row.values[column_of(schema, c)?].clone(),
                    UpdateExpr::AddI64 {
                        existing_column,
                        proposed_column,
                    } => {
                        let a = &old.values[column_of(schema, existing_column)?];
                        let b = &row.values[column_of(schema, proposed_column)?];
                        match (a, b) {
                            (Value::Integer(a), Value::Integer(b)) => {
                                Value::Integer(a.checked_add(*b).ok_or(AedbError::Overflow)?)
                            }
                            _ => {
                                return Err(AedbError::Validation(
                                    "AddI64 needs Integer columns".into(),
                                ))
                            }
                        }
                    }
                };
            }
        }
    }
    if schema
        .pk_positions()
        .iter()
        .any(|i| merged.values[*i] != old.values[*i])
    {
        return Err(AedbError::Validation(
            "a conflict action may not change primary key columns".into(),
        ));
    }
    validate_row(schema, &mut merged, &limits.rows)?;
    write_row(txn, schema, &pk, Some(&old), &merged)
}

#[allow(clippy::too_many_arguments)]
fn update_where(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    table_name: &str,
    predicate: &aedb_catalog::expr::Expr,
    updates: &[(String, TableUpdateExpr)],
    limit: Option<usize>,
    limits: &Limits,
) -> Result<Applied> {
    let schema = table(txn, project, scope, table_name)?;
    if updates.is_empty() {
        return Err(AedbError::Validation("updates must not be empty".into()));
    }
    let mut targets = Vec::with_capacity(updates.len());
    for (column, expr) in updates {
        let i = column_of(&schema, column)?;
        if schema.primary_key.contains(column) {
            return Err(AedbError::Validation(format!(
                "update may not change primary key column {column}"
            )));
        }
        targets.push((i, expr));
    }
    let found = matching_rows(txn, &schema, predicate, limit, limits.rows.max_scan_rows)?;
    for (pk, old) in &found {
        let mut new = old.clone();
        for (i, expr) in &targets {
            new.values[*i] = match expr {
                TableUpdateExpr::Value(v) => v.clone(),
                TableUpdateExpr::CopyColumn(c) => old.values[column_of(&schema, c)?].clone(),
                TableUpdateExpr::AddI64(n) => match &old.values[*i] {
                    Value::Integer(v) => {
                        Value::Integer(v.checked_add(*n).ok_or(AedbError::Overflow)?)
                    }
                    _ => {
                        return Err(AedbError::Validation(
                            "AddI64 needs a non-null Integer column".into(),
                        ))
                    }
                },
                TableUpdateExpr::Coalesce(v) => {
                    if old.values[*i].is_null() {
                        v.clone()
                    } else {
                        old.values[*i].clone()
                    }
                }
            };
        }
        validate_row(&schema, &mut new, &limits.rows)?;
        write_row(txn, &schema, pk, Some(old), &new)?;
    }
    Ok(rows(found.len() as u64))
}

#[allow(clippy::too_many_arguments)]
fn table_u256(
    txn: &mut LoggedTxn,
    project: &str,
    scope: &str,
    table_name: &str,
    primary_key: &[Value],
    column: &str,
    amount: &[u8; 32],
    increment: bool,
) -> Result<()> {
    let schema = table(txn, project, scope, table_name)?;
    let i = column_of(&schema, column)?;
    if schema.columns[i].col_type != ColumnType::U256 {
        return Err(AedbError::Validation(format!(
            "column {column} is not U256"
        )));
    }
    let pk = encode_key(primary_key);
    let old = read_row(txn, &schema, &pk)?
        .ok_or_else(|| AedbError::Validation("row not found".into()))?;
    let Value::U256(current) = &old.values[i] else {
        return Err(AedbError::Validation(format!(
            "column {column} holds no U256 value"
        )));
    };
    let next = if increment {
        u256_add(current, amount).ok_or(AedbError::Overflow)?
    } else {
        u256_sub(current, amount).ok_or(AedbError::Underflow)?
    };
    let mut new = old.clone();
    new.values[i] = Value::U256(next);
    write_row(txn, &schema, &pk, Some(&old), &new)
}
