//! Inner and left joins.
//!
//! The joined rows are given a schema of their own — every column named `alias.column`, its key
//! the base table's key columns followed by each joined table's — so the predicate, ordering,
//! aggregation, paging and projection of single-table queries apply to them unchanged.
//!
//! Join tables are read once each into a hash map on the join column (bounded by
//! `max_scan_rows`, as is the base table), then every base row is matched; a left join with no
//! match contributes Nulls.

use std::collections::HashMap;
use std::ops::Bound;

use aedb_catalog::keys::encode_key;
use aedb_catalog::namespace::table_tree;
use aedb_catalog::rows::decode_row;
use aedb_catalog::schema::{ColumnDef, TableSchema};
use aedb_catalog::types::{Row, Value};
use aedb_pager::Snapshot;

use crate::error::QueryError;
use crate::eval::eval;
use crate::exec::{aggregate, check_query, project, sort_and_page, PageOut, PageRequest};
use crate::plan::{JoinType, Query};

/// A join table hashed on its join column, and where its key comes from in the rows so far.
struct JoinLookup {
    left: usize,
    rows_by_key: HashMap<Vec<u8>, Vec<Row>>,
    width: usize,
}

fn table_rows(
    snapshot: &Snapshot,
    schema: &TableSchema,
    max_rows: u64,
) -> Result<Vec<Row>, QueryError> {
    let Some(tree) = snapshot.tree(&table_tree(schema.table_id))? else {
        return Ok(Vec::new());
    };
    if tree.len() > max_rows {
        return Err(QueryError::ScanBoundExceeded {
            estimated_rows: tree.len(),
            max_scan_rows: max_rows,
        });
    }
    let mut rows = Vec::with_capacity(tree.len() as usize);
    for item in tree.range(Bound::Unbounded, Bound::Unbounded, false) {
        let (_, bytes) = item?;
        rows.push(schema.from_stored(
            decode_row(&bytes).map_err(|e| QueryError::InternalError(e.to_string()))?,
        ));
    }
    Ok(rows)
}

/// A column reference `alias.column` (or bare `column` of `default_alias`) as its position.
fn resolve(combined: &TableSchema, name: &str, default_alias: &str) -> Result<usize, QueryError> {
    let qualified = if name.contains('.') {
        name.to_string()
    } else {
        format!("{default_alias}.{name}")
    };
    combined
        .column_index(&qualified)
        .ok_or_else(|| QueryError::ColumnNotFound {
            table: combined.table_name.clone(),
            column: name.to_string(),
        })
}

/// Run a join query: `joined` holds each join's table schema, in the query's order.
pub fn execute_join(
    snapshot: &Snapshot,
    base: &TableSchema,
    joined: &[TableSchema],
    query: &Query,
    request: &PageRequest,
) -> Result<PageOut, QueryError> {
    let base_alias = query
        .table_alias
        .clone()
        .unwrap_or_else(|| base.table_name.clone());
    let mut aliases = vec![base_alias.clone()];
    for (spec, _) in query.joins.iter().zip(joined) {
        let alias = spec.alias.clone().unwrap_or_else(|| spec.table.clone());
        if aliases.contains(&alias) {
            return Err(QueryError::invalid(format!(
                "duplicate table alias {alias}"
            )));
        }
        aliases.push(alias);
    }
    // The schema of joined rows.
    let mut combined = TableSchema {
        table_name: format!("{} join", base.table_name),
        columns: Vec::new(),
        primary_key: Vec::new(),
        ..base.clone()
    };
    combined.indexes.clear();
    combined.constraints.clear();
    let tables: Vec<(&TableSchema, bool)> = std::iter::once((base, false))
        .chain(
            joined
                .iter()
                .zip(&query.joins)
                .map(|(s, j)| (s, j.join_type == JoinType::Left)),
        )
        .collect();
    for ((schema, nullable), alias) in tables.iter().zip(&aliases) {
        for c in &schema.columns {
            combined.columns.push(ColumnDef {
                name: format!("{alias}.{}", c.name),
                col_type: c.col_type,
                nullable: c.nullable || *nullable,
            });
        }
        combined
            .primary_key
            .extend(schema.primary_key.iter().map(|k| format!("{alias}.{k}")));
    }
    combined.slots = (0..combined.columns.len() as u32).collect();
    combined.slot_count = combined.columns.len() as u32;
    let columns = check_query(&combined, query)?;

    // Each join table, hashed on its join column.
    let mut lookups: Vec<JoinLookup> = Vec::new();
    let mut width = base.columns.len();
    for ((spec, schema), alias) in query.joins.iter().zip(joined).zip(aliases.iter().skip(1)) {
        let left = resolve(&combined, &spec.left_column, &base_alias)?;
        if left >= width {
            return Err(QueryError::invalid(format!(
                "join column {} must come from an earlier table",
                spec.left_column
            )));
        }
        let right_name = spec
            .right_column
            .strip_prefix(&format!("{alias}."))
            .unwrap_or(&spec.right_column);
        let right = schema
            .column_index(right_name)
            .ok_or_else(|| QueryError::ColumnNotFound {
                table: schema.table_name.clone(),
                column: spec.right_column.clone(),
            })?;
        let mut map: HashMap<Vec<u8>, Vec<Row>> = HashMap::new();
        for row in table_rows(snapshot, schema, request.max_scan_rows)? {
            let value = row.values.get(right).cloned().unwrap_or(Value::Null);
            if !value.is_null() {
                map.entry(encode_key(std::slice::from_ref(&value)))
                    .or_default()
                    .push(row);
            }
        }
        lookups.push(JoinLookup {
            left,
            rows_by_key: map,
            width: schema.columns.len(),
        });
        width += schema.columns.len();
    }

    let mut rows: Vec<Row> = table_rows(snapshot, base, request.max_scan_rows)?;
    let examined = rows.len();
    for (lookup, spec) in lookups.iter().zip(&query.joins) {
        let (left, map, join_width) = (&lookup.left, &lookup.rows_by_key, &lookup.width);
        let mut next = Vec::with_capacity(rows.len());
        for row in rows {
            let value = row.values.get(*left).cloned().unwrap_or(Value::Null);
            let matches = if value.is_null() {
                None
            } else {
                map.get(&encode_key(std::slice::from_ref(&value)))
            };
            match matches {
                Some(found) => {
                    for m in found {
                        let mut joined_row = row.clone();
                        joined_row.values.extend(m.values.iter().cloned());
                        next.push(joined_row);
                    }
                }
                None if spec.join_type == JoinType::Left => {
                    let mut joined_row = row;
                    joined_row
                        .values
                        .extend(std::iter::repeat_n(Value::Null, *join_width));
                    next.push(joined_row);
                }
                None => {}
            }
        }
        rows = next;
        if rows.len() as u64 > request.max_scan_rows {
            return Err(QueryError::ScanBoundExceeded {
                estimated_rows: rows.len() as u64,
                max_scan_rows: request.max_scan_rows,
            });
        }
    }

    let index_of = |c: &str| combined.column_index(c);
    let pk_positions = combined.pk_positions();
    let keyed: Vec<(Vec<u8>, Row)> = rows
        .into_iter()
        .filter(|row| {
            query
                .predicate
                .as_ref()
                .is_none_or(|p| eval(p, row, &index_of))
        })
        .map(|row| {
            let key: Vec<Value> = pk_positions
                .iter()
                .map(|i| row.values.get(*i).cloned().unwrap_or(Value::Null))
                .collect();
            (encode_key(&key), row)
        })
        .collect();
    let mut out = PageOut {
        columns,
        rows_examined: examined,
        ..PageOut::default()
    };
    if !query.aggregates.is_empty() || !query.group_by.is_empty() {
        out.rows = aggregate(&combined, query, keyed)?;
        return Ok(out);
    }
    sort_and_page(&combined, query, keyed, request, &mut out);
    out.rows = out
        .rows
        .drain(..)
        .map(|row| project(&combined, &out.columns, row))
        .collect();
    Ok(out)
}
