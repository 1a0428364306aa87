//! The executor: reads the planned range of a snapshot, filters, orders, pages, projects and
//! aggregates.
//!
//! Paging policy (what keeps a query from running away): a page holds at most `page_size` rows
//! (the query's limit, else 100), and examines at most `max_scan_rows` rows. A page that stops
//! early says so (`more`) and gives the key to continue after; continuing at the same snapshot
//! returns every row exactly once. Ordered (by non-key columns) and aggregate queries must see
//! every candidate row at once, so more than `max_scan_rows` candidates is `ScanBoundExceeded`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use aedb_access::scan::{collect_along, scan_candidates};
use aedb_catalog::keys::{encode_key, encode_value};
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::{Row, Value};
use aedb_pager::ReadTrees;

use crate::error::QueryError;
use crate::eval::{check_expr, eval};
use crate::plan::{Aggregate, Order, Query};
use crate::planner::{access_path, Access};

/// Reading rows along access paths lives in the access layer; its public path here too.
pub use aedb_access::rows::read_row_in as read_row;
pub use aedb_access::scan::matching_rows;

/// Rows a page returns when the query has no limit.
pub const DEFAULT_PAGE_ROWS: usize = 100;

pub struct PageRequest {
    /// Continue after this key (from a previous page's `last_key`).
    pub after: Option<Vec<u8>>,
    pub page_size: usize,
    pub max_scan_rows: u64,
}

#[derive(Debug, Default)]
pub struct PageOut {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub rows_examined: usize,
    /// More rows may follow: continue after `last_key`.
    pub more: bool,
    pub last_key: Option<Vec<u8>>,
}

/// Check the query against the schema; the output column names.
pub(crate) fn check_query(schema: &TableSchema, query: &Query) -> Result<Vec<String>, QueryError> {
    if let Some(p) = &query.predicate {
        check_expr(p, schema)?;
    }
    let known = |c: &str| {
        schema
            .column_index(c)
            .map(|_| ())
            .ok_or_else(|| QueryError::ColumnNotFound {
                table: schema.table_name.clone(),
                column: c.to_string(),
            })
    };
    for (c, _) in &query.order_by {
        if query.aggregates.is_empty() && query.group_by.is_empty() {
            known(c)?;
        }
    }
    for c in &query.group_by {
        known(c)?;
    }
    for a in &query.aggregates {
        if let Aggregate::Sum(c) | Aggregate::Min(c) | Aggregate::Max(c) | Aggregate::Avg(c) = a {
            known(c)?;
        }
    }
    if query.having.is_some() && query.aggregates.is_empty() && query.group_by.is_empty() {
        return Err(QueryError::invalid("having requires aggregate or group_by"));
    }
    if !query.aggregates.is_empty() || !query.group_by.is_empty() {
        let mut out: Vec<String> = query.group_by.clone();
        out.extend(query.aggregates.iter().map(Aggregate::output_name));
        return Ok(out);
    }
    if query.select.is_empty() || query.select.iter().any(|c| c == "*") {
        return Ok(schema.columns.iter().map(|c| c.name.clone()).collect());
    }
    for c in &query.select {
        known(c)?;
    }
    Ok(query.select.clone())
}

/// Run one page of `query` on `snapshot`.
pub fn execute(
    snapshot: &impl ReadTrees,
    schema: &TableSchema,
    query: &Query,
    request: &PageRequest,
) -> Result<PageOut, QueryError> {
    let columns = check_query(schema, query)?;
    let access = access_path(schema, query.predicate.as_ref());
    let index_of = |c: &str| schema.column_index(c);
    let matches = |row: &Row| {
        query
            .predicate
            .as_ref()
            .is_none_or(|p| eval(p, row, &index_of))
    };
    let mut out = PageOut {
        columns,
        ..PageOut::default()
    };
    if !query.aggregates.is_empty() || !query.group_by.is_empty() {
        let rows = collect_all(
            snapshot,
            schema,
            &access,
            request.max_scan_rows,
            &matches,
            &mut out.rows_examined,
        )?;
        out.rows = aggregate(schema, query, rows)?;
        return Ok(out);
    }
    let key_order = query.order_by.is_empty()
        || (query.order_by.len() <= schema.primary_key.len()
            && query
                .order_by
                .iter()
                .zip(&schema.primary_key)
                .all(|((c, o), pk)| c == pk && *o == Order::Asc));
    // A point lookup yields at most one row: any order is key order.
    if key_order || matches!(access, Access::PkPoint(_)) {
        page_in_key_order(snapshot, schema, &access, request, &matches, &mut out)?;
    } else {
        page_sorted(
            snapshot, schema, query, &access, request, &matches, &mut out,
        )?;
    }
    if !is_identity(schema, &out.columns) {
        out.rows = out
            .rows
            .drain(..)
            .map(|row| project(schema, &out.columns, row))
            .collect();
    }
    Ok(out)
}

fn page_in_key_order(
    snapshot: &impl ReadTrees,
    schema: &TableSchema,
    access: &Access,
    request: &PageRequest,
    matches: &dyn Fn(&Row) -> bool,
    out: &mut PageOut,
) -> Result<(), QueryError> {
    let mut examined = 0u64;
    // The next page starts after the last row examined (matching or not).
    let mut last_examined: Option<Vec<u8>> = None;
    let capacity = match access {
        Access::PkPoint(_) => 1,
        _ => request.page_size.min(1024),
    };
    let mut rows: Vec<Row> = Vec::with_capacity(capacity);
    let exhausted = scan_candidates::<QueryError>(
        snapshot,
        schema,
        access,
        &request.after,
        request.max_scan_rows,
        &mut |pk, row| {
            if rows.len() == request.page_size || examined >= request.max_scan_rows {
                return Ok(false); // another candidate exists: the page is full, or the bound
            }
            examined += 1;
            if matches(&row) {
                rows.push(row);
            }
            last_examined = Some(pk);
            Ok(true)
        },
    )?;
    out.rows_examined = examined as usize;
    out.more = !exhausted;
    out.last_key = last_examined;
    out.rows = rows;
    Ok(())
}

fn collect_all(
    snapshot: &impl ReadTrees,
    schema: &TableSchema,
    access: &Access,
    max_scan_rows: u64,
    matches: &dyn Fn(&Row) -> bool,
    examined: &mut usize,
) -> Result<Vec<(Vec<u8>, Row)>, QueryError> {
    let (rows, count) = collect_along(snapshot, schema, access, matches, None, max_scan_rows)?;
    *examined = count as usize;
    Ok(rows)
}

/// The ordering key of a row: order-by values (inverted bytes for descending) then the primary key.
fn sort_key(schema: &TableSchema, order_by: &[(String, Order)], pk: &[u8], row: &Row) -> Vec<u8> {
    let mut key = Vec::new();
    for (column, order) in order_by {
        let mut part = Vec::new();
        let value = schema
            .column_index(column)
            .and_then(|i| row.values.get(i))
            .unwrap_or(&Value::Null);
        encode_value(&mut part, value);
        if *order == Order::Desc {
            part.iter_mut().for_each(|b| *b = !*b);
        }
        key.extend_from_slice(&part);
    }
    key.extend_from_slice(pk);
    key
}

fn page_sorted(
    snapshot: &impl ReadTrees,
    schema: &TableSchema,
    query: &Query,
    access: &Access,
    request: &PageRequest,
    matches: &dyn Fn(&Row) -> bool,
    out: &mut PageOut,
) -> Result<(), QueryError> {
    let rows = collect_all(
        snapshot,
        schema,
        access,
        request.max_scan_rows,
        matches,
        &mut out.rows_examined,
    )?;
    sort_and_page(schema, query, rows, request, out);
    Ok(())
}

/// Order materialized rows by the query's ordering (then the key), and cut the page after
/// `request.after`.
pub(crate) fn sort_and_page(
    schema: &TableSchema,
    query: &Query,
    rows: Vec<(Vec<u8>, Row)>,
    request: &PageRequest,
    out: &mut PageOut,
) {
    let mut keyed: Vec<(Vec<u8>, Row)> = rows
        .into_iter()
        .map(|(pk, row)| (sort_key(schema, &query.order_by, &pk, &row), row))
        .filter(|(key, _)| request.after.as_ref().is_none_or(|a| key > a))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    out.more = keyed.len() > request.page_size;
    keyed.truncate(request.page_size);
    out.last_key = keyed.last().map(|(k, _)| k.clone());
    out.rows = keyed.into_iter().map(|(_, row)| row).collect();
}

/// The output columns are the table's, in order: rows need no projection.
pub(crate) fn is_identity(schema: &TableSchema, columns: &[String]) -> bool {
    columns.len() == schema.columns.len()
        && columns
            .iter()
            .zip(&schema.columns)
            .all(|(a, b)| a == &b.name)
}

pub(crate) fn project(schema: &TableSchema, columns: &[String], row: Row) -> Row {
    if is_identity(schema, columns) {
        return row;
    }
    let values = columns
        .iter()
        .map(|c| {
            schema
                .column_index(c)
                .and_then(|i| row.values.get(i).cloned())
                .unwrap_or(Value::Null)
        })
        .collect();
    Row { values }
}

pub(crate) fn aggregate(
    schema: &TableSchema,
    query: &Query,
    rows: Vec<(Vec<u8>, Row)>,
) -> Result<Vec<Row>, QueryError> {
    let positions: Vec<usize> = query
        .group_by
        .iter()
        .filter_map(|c| schema.column_index(c))
        .collect();
    let mut groups: BTreeMap<Vec<u8>, (Vec<Value>, Vec<Row>)> = BTreeMap::new();
    for (_, row) in rows {
        let key_values: Vec<Value> = positions
            .iter()
            .map(|i| row.values.get(*i).cloned().unwrap_or(Value::Null))
            .collect();
        let entry = groups
            .entry(encode_key(&key_values))
            .or_insert_with(|| (key_values, Vec::new()));
        entry.1.push(row);
    }
    if groups.is_empty() && query.group_by.is_empty() {
        groups.insert(Vec::new(), (Vec::new(), Vec::new()));
    }
    let output_names: Vec<String> = query
        .group_by
        .iter()
        .cloned()
        .chain(query.aggregates.iter().map(Aggregate::output_name))
        .collect();
    let mut out = Vec::new();
    for (_, (mut values, members)) in groups {
        for agg in &query.aggregates {
            values.push(aggregate_value(schema, agg, &members));
        }
        let row = Row { values };
        if let Some(having) = &query.having {
            let index_of = |c: &str| output_names.iter().position(|n| n == c);
            if !eval(having, &row, &index_of) {
                continue;
            }
        }
        out.push(row);
    }
    if !query.order_by.is_empty() {
        let index_of = |c: &str| output_names.iter().position(|n| n == c);
        let mut keyed: Vec<(Vec<Value>, Row)> = out
            .into_iter()
            .map(|row| {
                let key = query
                    .order_by
                    .iter()
                    .map(|(c, _)| {
                        index_of(c)
                            .and_then(|i| row.values.get(i).cloned())
                            .unwrap_or(Value::Null)
                    })
                    .collect();
                (key, row)
            })
            .collect();
        keyed.sort_by(|a, b| {
            for (i, (_, order)) in query.order_by.iter().enumerate() {
                let ord = a.0[i].cmp(&b.0[i]);
                let ord = if *order == Order::Desc {
                    ord.reverse()
                } else {
                    ord
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
        out = keyed.into_iter().map(|(_, row)| row).collect();
    }
    if let Some(limit) = query.limit {
        out.truncate(limit);
    }
    Ok(out)
}

fn aggregate_value(schema: &TableSchema, agg: &Aggregate, rows: &[Row]) -> Value {
    let column = |c: &str| schema.column_index(c);
    let values = |c: &str| -> Vec<Value> {
        let i = column(c);
        rows.iter()
            .filter_map(|r| i.and_then(|i| r.values.get(i)).cloned())
            .filter(|v| !v.is_null())
            .collect()
    };
    match agg {
        Aggregate::Count => Value::Integer(rows.len() as i64),
        Aggregate::Sum(c) => {
            let sum = values(c)
                .iter()
                .filter_map(Value::as_i128)
                .fold(0i128, |a, b| a.saturating_add(b));
            Value::Integer(sum.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
        }
        Aggregate::Avg(c) => {
            let nums: Vec<f64> = values(c).iter().filter_map(Value::as_f64).collect();
            if nums.is_empty() {
                Value::Null
            } else {
                Value::Float(nums.iter().sum::<f64>() / nums.len() as f64)
            }
        }
        Aggregate::Min(c) => values(c).into_iter().min().unwrap_or(Value::Null),
        Aggregate::Max(c) => values(c).into_iter().max().unwrap_or(Value::Null),
    }
}
