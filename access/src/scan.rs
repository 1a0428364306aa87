//! Reading a table along an access path: the candidate rows a planned range covers, and the
//! rows matching a predicate among them. The query executor pages through candidates; a
//! commit's `DeleteWhere`/`UpdateWhere` takes the matching rows over its own transaction.

use std::ops::Bound;

use aedb_catalog::eval::{check_expr, eval};
use aedb_catalog::expr::Expr;
use aedb_catalog::keys::decode_prefix;
use aedb_catalog::namespace::{index_tree, table_tree, table_tree_name};
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::Row;
use aedb_pager::store::bound_ref;
use aedb_pager::ReadTrees;

use crate::error::AccessError;
use crate::planner::{access_path, Access};
use crate::rows::{read_row_in, visit_range};

/// `a`, raised past `after` (the last key a previous page returned).
pub fn max_bound(a: Bound<Vec<u8>>, after: &Option<Vec<u8>>) -> Bound<Vec<u8>> {
    let Some(after) = after else { return a };
    match &a {
        Bound::Included(l) | Bound::Excluded(l) if l > after => a,
        _ => Bound::Excluded(after.clone()),
    }
}

/// Candidate rows in primary-key order, resuming after `after`; calls `visit` until it returns
/// false. Returns whether the source ran out.
pub fn scan_candidates<E: From<AccessError>>(
    snapshot: &impl ReadTrees,
    schema: &TableSchema,
    access: &Access,
    after: &Option<Vec<u8>>,
    max_rows: u64,
    visit: &mut dyn FnMut(Vec<u8>, Row) -> Result<bool, E>,
) -> Result<bool, E> {
    let Some(tree) = snapshot
        .tree(&table_tree_name(schema.table_id))
        .map_err(AccessError::from)?
    else {
        return Ok(true);
    };
    match access {
        Access::PkPoint(pk) => {
            if after.as_ref().is_some_and(|a| a >= pk) {
                return Ok(true);
            }
            if let Some(row) = read_row_in(&tree, schema, pk)? {
                visit(pk.clone(), row)?;
            }
            Ok(true)
        }
        Access::PkRange { lower, upper } => visit_range(
            &tree,
            schema,
            max_bound(lower.clone(), after),
            upper.clone(),
            visit,
        ),
        Access::FullScan => visit_range(
            &tree,
            schema,
            max_bound(Bound::Unbounded, after),
            Bound::Unbounded,
            visit,
        ),
        Access::IndexRange {
            index,
            lower,
            upper,
        } => {
            let def = schema
                .index(index)
                .ok_or_else(|| AccessError::Internal(format!("index {index} vanished")))?;
            let Some(itree) = snapshot
                .tree(&index_tree(schema.table_id, index))
                .map_err(AccessError::from)?
            else {
                return Ok(true);
            };
            // Index order is not key order: collect the keys, then read rows in key order.
            let mut pks = Vec::new();
            for item in itree.range(bound_ref(lower), bound_ref(upper), false) {
                let (ikey, _) = item.map_err(AccessError::from)?;
                let (_, used) = decode_prefix(&ikey, def.columns.len())
                    .map_err(|e| AccessError::Corrupt(e.to_string()))?;
                let pk = ikey[used..].to_vec();
                if after.as_ref().is_none_or(|a| &pk > a) {
                    pks.push(pk);
                }
                if pks.len() as u64 > max_rows {
                    let estimated_rows = itree
                        .count(bound_ref(lower), bound_ref(upper))
                        .map_err(AccessError::from)?;
                    return Err(AccessError::ScanBoundExceeded {
                        estimated_rows,
                        max_scan_rows: max_rows,
                    }
                    .into());
                }
            }
            pks.sort();
            for pk in pks {
                if let Some(row) = read_row_in(&tree, schema, &pk)? {
                    if !visit(pk, row)? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        }
    }
}

/// Rows matching `predicate`, in primary-key order, up to `limit`, read along the planner's
/// access path (a point or range on the key or an index reads only what it covers). Refuses to
/// examine more than `max_scan_rows` candidates. This is how `DeleteWhere` and `UpdateWhere`
/// find their rows inside a commit (the reader is then the commit's transaction).
pub fn matching_rows(
    reader: &impl ReadTrees,
    schema: &TableSchema,
    predicate: &Expr,
    limit: Option<usize>,
    max_scan_rows: u64,
) -> Result<Vec<(Vec<u8>, Row)>, AccessError> {
    check_expr(predicate, schema)?;
    let access = access_path(schema, Some(predicate));
    match rows_along(reader, schema, &access, predicate, limit, max_scan_rows) {
        // An index range reads every key it covers before any row (index order is not key
        // order), so a popular value can exceed the bound although a limited mutation needs
        // only its first rows in key order: those a key-order scan finds within the bound.
        Err(AccessError::ScanBoundExceeded { .. })
            if limit.is_some() && matches!(access, Access::IndexRange { .. }) =>
        {
            rows_along(
                reader,
                schema,
                &Access::FullScan,
                predicate,
                limit,
                max_scan_rows,
            )
        }
        other => other,
    }
}

/// Rows matching `predicate` along `access`, in key order, up to `limit`, examining at most
/// `max_scan_rows` candidates.
fn rows_along(
    reader: &impl ReadTrees,
    schema: &TableSchema,
    access: &Access,
    predicate: &Expr,
    limit: Option<usize>,
    max_scan_rows: u64,
) -> Result<Vec<(Vec<u8>, Row)>, AccessError> {
    let index_of = |c: &str| schema.column_index(c);
    let matches = |row: &Row| eval(predicate, row, &index_of);
    collect_along(reader, schema, access, &matches, limit, max_scan_rows).map(|(rows, _)| rows)
}

/// Rows found (primary key and row, in key order) and how many were examined.
pub type Collected = (Vec<(Vec<u8>, Row)>, u64);

/// The rows along `access` that `matches` accepts, in key order, up to `limit`, and how many
/// rows were examined; more than `max_scan_rows` examined is `ScanBoundExceeded` (with the
/// table's size as the estimate).
pub fn collect_along(
    reader: &impl ReadTrees,
    schema: &TableSchema,
    access: &Access,
    matches: &dyn Fn(&Row) -> bool,
    limit: Option<usize>,
    max_scan_rows: u64,
) -> Result<Collected, AccessError> {
    let mut out = Vec::new();
    let mut examined = 0u64;
    let mut over = false;
    scan_candidates::<AccessError>(
        reader,
        schema,
        access,
        &None,
        max_scan_rows,
        &mut |pk, row| {
            examined += 1;
            if examined > max_scan_rows {
                over = true;
                return Ok(false);
            }
            if matches(&row) {
                out.push((pk, row));
                if limit.is_some_and(|l| out.len() >= l) {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    if over {
        let estimated = reader.len(&table_tree(schema.table_id))?;
        return Err(AccessError::ScanBoundExceeded {
            estimated_rows: estimated,
            max_scan_rows,
        });
    }
    Ok((out, examined))
}
