//! Inner and left joins.
//!
//! The joined rows are given a schema of their own — every column named `alias.column`, its key
//! the base table's key columns followed by each joined table's — so the predicate, ordering,
//! aggregation, paging and projection of single-table queries apply to them unchanged.
//!
//! Each join finds the rows matching a left value by the cheapest probe its table offers: a
//! point read when the right column is the table's whole primary key, a prefix range of a
//! (non-partial) index led by that column, or else one hash of the table on the column, built
//! once per query and bounded by `max_scan_rows`.
//!
//! Base rows stream in key order and each expands to its joined rows in combined-key order, so
//! a query without ordering or aggregation stops as soon as its page is full and continues
//! after the page's last combined key. Ordered and aggregate joins materialize every joined row
//! (bounded by `max_scan_rows`) and sort, as single-table queries do.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Bound;

use aedb_catalog::keys::{decode_prefix, decode_value, encode_key, encode_value};
use aedb_catalog::namespace::{index_tree, table_tree_name};
use aedb_catalog::rows::{decode_row, decode_row_into};
use aedb_catalog::schema::{ColumnDef, TableSchema};
use aedb_catalog::types::{Row, Value};
use aedb_pager::store::prefix_end;
use aedb_pager::{ReadTrees, TreeView};

use crate::error::QueryError;
use crate::eval::eval;
use crate::exec::{
    aggregate, check_query, is_identity, project, sort_and_page, PageOut, PageRequest,
};
use crate::plan::{JoinType, Query};

fn internal(err: impl std::fmt::Display) -> QueryError {
    QueryError::corruption(err.to_string())
}

/// How a join finds the rows of its table that match one left value.
enum Probe<'r> {
    /// The right column is the table's one primary-key column.
    PrimaryKey,
    /// An index whose first column is the right column.
    Index {
        tree: Option<TreeView<'r>>,
        columns: usize,
    },
    /// The table hashed on the right column: encoded value → (encoded key, row), key order.
    Hash(HashMap<Vec<u8>, Vec<(Vec<u8>, Row)>>),
}

struct JoinStep<'a> {
    schema: &'a TableSchema,
    tree: Option<TreeView<'a>>,
    /// Position of the left join column in the rows joined so far.
    left: usize,
    probe: Probe<'a>,
    outer: bool,
    /// Reused between probes: the matches of the current row (no vector per row).
    scratch: RefCell<Vec<(Vec<u8>, Row)>>,
}

impl JoinStep<'_> {
    /// Append the rows matching `value`, with their encoded keys, in key order.
    fn matches_into(
        &self,
        value: &Value,
        max_rows: u64,
        out: &mut Vec<(Vec<u8>, Row)>,
    ) -> Result<(), QueryError> {
        if value.is_null() {
            return Ok(());
        }
        let encoded = encode_key(std::slice::from_ref(value));
        let Some(tree) = &self.tree else {
            return Ok(());
        };
        let read = |pk: Vec<u8>| -> Result<Option<(Vec<u8>, Row)>, QueryError> {
            let Some(row) = tree.get_with(&pk, decode_row)? else {
                return Ok(None);
            };
            let row = self.schema.from_stored(row.map_err(internal)?);
            Ok(Some((pk, row)))
        };
        match &self.probe {
            // `expand_into` reads straight into the combined row (`probe_primary_key`).
            Probe::PrimaryKey => {}
            Probe::Index { tree: None, .. } => {}
            Probe::Index {
                tree: Some(itree),
                columns,
            } => {
                let upper = prefix_end(&encoded);
                let mut pks = Vec::new();
                let upper_bound = match &upper {
                    Some(u) => Bound::Excluded(u.as_slice()),
                    None => Bound::Unbounded,
                };
                for item in itree.range(Bound::Included(&encoded), upper_bound, false) {
                    let (ikey, _) = item?;
                    // The prefix matched bytes; the first value must also end where it does.
                    let (_, first) = decode_value(&ikey).map_err(internal)?;
                    if first != encoded.len() {
                        continue;
                    }
                    let (_, used) = decode_prefix(&ikey, *columns).map_err(internal)?;
                    pks.push(ikey[used..].to_vec());
                    if pks.len() as u64 > max_rows {
                        return Err(QueryError::ScanBoundExceeded {
                            estimated_rows: pks.len() as u64,
                            max_scan_rows: max_rows,
                        });
                    }
                }
                pks.sort();
                for pk in pks {
                    out.extend(read(pk)?);
                }
            }
            Probe::Hash(map) => {
                if let Some(found) = map.get(&encoded) {
                    out.extend(found.iter().cloned());
                }
            }
        }
        Ok(())
    }
}

/// Pick the probe for joining `schema` on its column `right`.
fn choose_probe<'r>(
    snapshot: &'r impl ReadTrees,
    schema: &TableSchema,
    tree: &Option<TreeView<'_>>,
    right: usize,
    max_rows: u64,
) -> Result<Probe<'r>, QueryError> {
    let right_name = &schema.columns[right].name;
    if schema.primary_key.len() == 1 && &schema.primary_key[0] == right_name {
        return Ok(Probe::PrimaryKey);
    }
    let led = schema
        .indexes
        .iter()
        .find(|i| i.partial_filter.is_none() && i.columns.first().is_some_and(|c| c == right_name));
    if let Some(def) = led {
        return Ok(Probe::Index {
            tree: snapshot.tree(&index_tree(schema.table_id, &def.index_name))?,
            columns: def.columns.len(),
        });
    }
    let mut map: HashMap<Vec<u8>, Vec<(Vec<u8>, Row)>> = HashMap::new();
    if let Some(tree) = tree {
        if tree.len() > max_rows {
            return Err(QueryError::ScanBoundExceeded {
                estimated_rows: tree.len(),
                max_scan_rows: max_rows,
            });
        }
        for item in tree.range(Bound::Unbounded, Bound::Unbounded, false) {
            let (pk, bytes) = item?;
            let row = schema.from_stored(decode_row(&bytes).map_err(internal)?);
            let value = row.values.get(right).cloned().unwrap_or(Value::Null);
            if !value.is_null() {
                map.entry(encode_key(std::slice::from_ref(&value)))
                    .or_default()
                    .push((pk, row));
            }
        }
    }
    Ok(Probe::Hash(map))
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

/// The schema of joined rows (columns named `alias.column`, every table's key), and the
/// aliases, the base table's first.
fn combined_schema(
    base: &TableSchema,
    joined: &[&TableSchema],
    query: &Query,
) -> Result<(TableSchema, Vec<String>), QueryError> {
    let base_alias = query
        .table_alias
        .clone()
        .unwrap_or_else(|| base.table_name.clone());
    let mut aliases = vec![base_alias];
    for spec in query.joins.iter().take(joined.len()) {
        let alias = spec.alias.clone().unwrap_or_else(|| spec.table.clone());
        if aliases.contains(&alias) {
            return Err(QueryError::invalid(format!(
                "duplicate table alias {alias}"
            )));
        }
        aliases.push(alias);
    }
    // The schema of joined rows.
    // Built field by field: cloning the base schema would copy its columns, indexes and
    // constraints only to throw them away.
    let mut combined = TableSchema {
        project_id: base.project_id.clone(),
        scope_id: base.scope_id.clone(),
        table_name: format!("{} join", base.table_name),
        owner_id: None,
        columns: Vec::new(),
        primary_key: Vec::new(),
        constraints: Vec::new(),
        indexes: Vec::new(),
        table_id: base.table_id,
        slots: Vec::new(),
        slot_count: 0,
    };
    let tables: Vec<(&TableSchema, bool)> = std::iter::once((base, false))
        .chain(
            joined
                .iter()
                .zip(&query.joins)
                .map(|(s, j)| (*s, j.join_type == JoinType::Left)),
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
    Ok((combined, aliases))
}

/// One step per join: where its left value comes from, and how it finds matching rows.
fn join_steps<'a>(
    snapshot: &'a impl ReadTrees,
    base: &TableSchema,
    joined: &[&'a TableSchema],
    query: &Query,
    combined: &TableSchema,
    aliases: &[String],
    request: &PageRequest,
) -> Result<Vec<JoinStep<'a>>, QueryError> {
    let base_alias = &aliases[0];
    let mut steps: Vec<JoinStep> = Vec::new();
    let mut width = base.columns.len();
    for ((spec, schema), alias) in query.joins.iter().zip(joined).zip(aliases.iter().skip(1)) {
        let left = resolve(combined, &spec.left_column, base_alias)?;
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
        let tree = snapshot.tree(&table_tree_name(schema.table_id))?;
        let probe = choose_probe(snapshot, schema, &tree, right, request.max_scan_rows)?;
        steps.push(JoinStep {
            schema,
            tree,
            left,
            probe,
            outer: spec.join_type == JoinType::Left,
            scratch: RefCell::new(Vec::new()),
        });
        width += schema.columns.len();
    }

    Ok(steps)
}

/// Run a join query: `joined` holds each join's table schema, in the query's order.
pub fn execute_join(
    snapshot: &impl ReadTrees,
    base: &TableSchema,
    joined: &[&TableSchema],
    query: &Query,
    request: &PageRequest,
) -> Result<PageOut, QueryError> {
    let (combined, aliases) = combined_schema(base, joined, query)?;
    let columns = check_query(&combined, query)?;

    let steps = join_steps(snapshot, base, joined, query, &combined, &aliases, request)?;

    let index_of = |c: &str| combined.column_index(c);
    let pk_positions = combined.pk_positions();
    let matches = |row: &Row| {
        query
            .predicate
            .as_ref()
            .is_none_or(|p| eval(p, row, &index_of))
    };
    // What a carried key must equal (checked in debug builds).
    let combined_key = |row: &Row| {
        let key: Vec<Value> = pk_positions
            .iter()
            .map(|i| row.values.get(*i).cloned().unwrap_or(Value::Null))
            .collect();
        encode_key(&key)
    };
    let mut out = PageOut {
        columns,
        ..PageOut::default()
    };
    let Some(base_tree) = snapshot.tree(&table_tree_name(base.table_id))? else {
        if !query.aggregates.is_empty() || !query.group_by.is_empty() {
            out.rows = aggregate(&combined, query, Vec::new())?;
        }
        return Ok(out);
    };
    let materialize =
        !query.aggregates.is_empty() || !query.group_by.is_empty() || !query.order_by.is_empty();
    if materialize {
        // Every joined row, then sort (or aggregate) as a single-table query would.
        let mut keyed: Vec<(Vec<u8>, Row)> = Vec::new();
        let mut examined = 0u64;
        let mut key = Vec::new();
        let mut range = base_tree.range(Bound::Unbounded, Bound::Unbounded, false);
        let over = |examined: u64| QueryError::ScanBoundExceeded {
            estimated_rows: examined.max(base_tree.len()),
            max_scan_rows: request.max_scan_rows,
        };
        while let Some(row) =
            range.next_with(|base_key, value| start_row(&steps, base, base_key, value, &mut key))?
        {
            // The base row counts too: base rows without a match are read all the same.
            examined += 1;
            if examined > request.max_scan_rows {
                return Err(over(examined));
            }
            expand_into(
                &steps,
                &mut key,
                row?,
                request.max_scan_rows,
                &mut |key, joined_row| {
                    debug_assert_eq!(key, combined_key(&joined_row));
                    examined += 1;
                    if examined > request.max_scan_rows {
                        return Err(over(examined));
                    }
                    if matches(&joined_row) {
                        keyed.push((key.to_vec(), joined_row));
                    }
                    Ok(true)
                },
            )?;
        }
        out.rows_examined = examined as usize;
        if !query.aggregates.is_empty() || !query.group_by.is_empty() {
            out.rows = aggregate(&combined, query, keyed)?;
            return Ok(out);
        }
        sort_and_page(&combined, query, keyed, request, &mut out);
    } else {
        page_in_key_order(
            &base_tree,
            base,
            &steps,
            request,
            &matches,
            &combined_key,
            &mut out,
        )?;
    }
    if !is_identity(&combined, &out.columns) {
        out.rows = out
            .rows
            .drain(..)
            .map(|row| project(&combined, &out.columns, row))
            .collect();
    }
    Ok(out)
}

/// What the caller does with each joined row, given its combined key: `Ok(true)` to go on,
/// `Ok(false)` to stop the scan.
type Emit<'e> = dyn FnMut(&[u8], Row) -> Result<bool, QueryError> + 'e;

/// A row joined through `steps`, each result handed to `emit` in combined-key order. `key`
/// holds the row's combined key so far and is restored before returning; a combined key is the
/// base key followed by each joined row's key (Nulls for a left join's missing row), the same
/// bytes as encoding the combined primary-key values. False when `emit` stopped the scan.
fn expand_into(
    steps: &[JoinStep],
    key: &mut Vec<u8>,
    row: Row,
    max_rows: u64,
    emit: &mut Emit,
) -> Result<bool, QueryError> {
    let Some((step, rest)) = steps.split_first() else {
        return emit(key, row);
    };
    let start = key.len();
    let mut row = row;
    if let (Probe::PrimaryKey, Some(tree)) = (&step.probe, &step.tree) {
        // At most one match: its key and values go straight onto the combined ones.
        if probe_primary_key(step.schema, tree, step.left, key, &mut row)? {
            let go_on = expand_into(rest, key, row, max_rows, emit);
            key.truncate(start);
            return go_on;
        }
        return no_match(step, rest, key, row, max_rows, emit);
    }
    let mut found = step.scratch.take();
    found.clear();
    if let Some(value) = row.values.get(step.left) {
        step.matches_into(value, max_rows, &mut found)?;
    }
    if found.is_empty() {
        step.scratch.replace(found);
        return no_match(step, rest, key, row, max_rows, emit);
    }
    let last = found.len() - 1;
    let mut base = Some(row);
    let mut go_on = true;
    for (i, (pk, m)) in found.drain(..).enumerate() {
        // The last match takes the row itself; earlier ones a copy.
        let mut row = if i == last {
            base.take().unwrap_or_default()
        } else {
            base.clone().unwrap_or_default()
        };
        key.extend_from_slice(&pk);
        row.values.extend(m.values);
        let result = expand_into(rest, key, row, max_rows, emit);
        key.truncate(start);
        go_on = result?;
        if !go_on {
            break;
        }
    }
    found.clear();
    step.scratch.replace(found);
    Ok(go_on)
}

/// A row that `step` found no match for: dropped by an inner join, padded with Nulls by a left
/// join (its key with the Nulls' encoding).
fn no_match(
    step: &JoinStep,
    rest: &[JoinStep],
    key: &mut Vec<u8>,
    row: Row,
    max_rows: u64,
    emit: &mut Emit,
) -> Result<bool, QueryError> {
    if !step.outer {
        return Ok(true);
    }
    let start = key.len();
    let mut row = row;
    for _ in 0..step.schema.primary_key.len() {
        encode_value(key, &Value::Null);
    }
    row.values
        .extend(std::iter::repeat_n(Value::Null, step.schema.columns.len()));
    let go_on = expand_into(rest, key, row, max_rows, emit);
    key.truncate(start);
    go_on
}

/// Look the row's `left` value up as the primary key of `schema`'s tree; on a match append its
/// key to `key` and its values to `row` and return true; otherwise leave both as they were.
fn probe_primary_key(
    schema: &TableSchema,
    tree: &TreeView<'_>,
    left: usize,
    key: &mut Vec<u8>,
    row: &mut Row,
) -> Result<bool, QueryError> {
    let start = key.len();
    match row.values.get(left) {
        Some(value) if !value.is_null() => encode_value(key, value),
        _ => return Ok(false),
    }
    let width = row.values.len();
    let values = &mut row.values;
    let Some(decoded) = tree.get_with(&key[start..], |bytes| decode_row_into(bytes, values))?
    else {
        key.truncate(start);
        return Ok(false);
    };
    decoded.map_err(internal)?;
    if !schema.stored_is_current(row.values.len() - width) {
        let stored = row.values.split_off(width);
        row.values
            .extend(schema.from_stored(Row { values: stored }).values);
    }
    Ok(true)
}

/// The row a stored base row starts from, with room for every joined value; `key` becomes its
/// key (the start of every combined key; one buffer reused for all rows).
fn start_row(
    steps: &[JoinStep],
    base: &TableSchema,
    base_key: &[u8],
    stored: &[u8],
    key: &mut Vec<u8>,
) -> Result<Row, QueryError> {
    let joined: usize = steps.iter().map(|s| s.schema.columns.len()).sum();
    let mut values = Vec::with_capacity(base.columns.len() + joined);
    decode_row_into(stored, &mut values).map_err(internal)?;
    let row = base.from_stored(Row { values });
    key.clear();
    key.extend_from_slice(base_key);
    Ok(row)
}

/// One page in combined-key order: base rows stream from the page's start, each expanded to
/// its joined rows; stops when the page is full or `max_scan_rows` joined rows were examined.
fn page_in_key_order(
    base_tree: &TreeView<'_>,
    base: &TableSchema,
    steps: &[JoinStep],
    request: &PageRequest,
    matches: &dyn Fn(&Row) -> bool,
    combined_key: &dyn Fn(&Row) -> Vec<u8>,
    out: &mut PageOut,
) -> Result<(), QueryError> {
    // A combined key starts with the base row's key: resume the base scan at that row.
    let lower = match &request.after {
        Some(after) => {
            let (_, used) = decode_prefix(after, base.primary_key.len()).map_err(internal)?;
            Bound::Included(after[..used].to_vec())
        }
        None => Bound::Unbounded,
    };
    let mut rows: Vec<Row> = Vec::with_capacity(request.page_size.min(1024));
    let mut examined = 0u64;
    // Everything up to this key has been examined: where the next page starts.
    let mut resume: Vec<u8> = Vec::new();
    let mut more = false;
    let mut key = Vec::new();
    let mut range = base_tree.range_owned(lower, Bound::Unbounded, false);
    while let Some(row) =
        range.next_with(|base_key, value| start_row(steps, base, base_key, value, &mut key))?
    {
        let row = row?;
        // The previous page ended after every joined row of this base row.
        if request.after.as_ref().is_some_and(|a| {
            a.len() == key.len() + 1 && a.starts_with(&key) && a[key.len()] == 0xff
        }) {
            continue;
        }
        if examined >= request.max_scan_rows {
            // Continue after every joined row of the base rows examined so far.
            more = true;
            break;
        }
        // The base row counts too: base rows without a match are read all the same.
        examined += 1;
        let go_on = expand_into(
            steps,
            &mut key,
            row,
            request.max_scan_rows,
            &mut |key, joined_row| {
                debug_assert_eq!(key, combined_key(&joined_row));
                if request.after.as_ref().is_some_and(|a| key <= a.as_slice()) {
                    return Ok(true);
                }
                // A page full, or the bound once this page has made progress: continue after
                // what was examined.
                if rows.len() == request.page_size
                    || (examined >= request.max_scan_rows && !resume.is_empty())
                {
                    more = true;
                    return Ok(false);
                }
                examined += 1;
                resume.clear();
                resume.extend_from_slice(key);
                if matches(&joined_row) {
                    rows.push(joined_row);
                }
                Ok(true)
            },
        )?;
        if !go_on {
            break;
        }
        // Past every joined row of this base row: its key followed by a byte above every tag.
        resume.clear();
        resume.extend_from_slice(&key);
        resume.push(0xff);
    }
    out.rows_examined = examined as usize;
    out.more = more;
    out.last_key = (more && !resume.is_empty()).then_some(resume);
    out.rows = rows;
    Ok(())
}
