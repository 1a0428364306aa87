//! Table rows and their secondary indexes: the owner of the trees `t:<table id>` (primary key →
//! row) and `i:<table id>:<index>` (index entry → empty). Row and key encodings are specified
//! in `aedb_catalog::{rows, keys}`, the index-entry rule in `aedb_catalog::index`; every write
//! of a row goes through [`write_row`] or [`delete_row`], which keep the indexes in step.
//!
//! Reads of a row go through the access layer (`aedb_access::rows`), the one decoder that
//! queries use too; validation and mutation semantics are the commit layer's
//! (`commit/tables.rs`).

use std::ops::Bound;

use aedb_catalog::index::index_entry;
use aedb_catalog::namespace::{index_tree, table_tree};
use aedb_catalog::rows::encode_row_at;
use aedb_catalog::schema::{IndexDef, TableSchema};
use aedb_catalog::types::Row;
use aedb_pager::store::prefix_end;
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};

fn index_prefix_len(def: &IndexDef, entry: &[u8]) -> Result<usize> {
    aedb_catalog::keys::decode_prefix(entry, def.columns.len())
        .map(|(_, used)| used)
        .map_err(|e| AedbError::Corruption(e.to_string()))
}

/// A unique index must not hold the same values under another primary key.
fn check_unique(
    reader: &impl ReadTrees,
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
    let found: Vec<Vec<u8>> = reader
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
    reader: &impl ReadTrees,
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
    let first = reader
        .range(&tree, Bound::Included(&entry), upper, false)?
        .next()
        .transpose()?;
    Ok(first.map(|(key, _)| key[entry.len()..].to_vec()))
}

/// A stored row, decoded into column order.
pub fn decode(schema: &TableSchema, bytes: &[u8]) -> Result<Row> {
    Ok(aedb_access::rows::decode_stored(schema, bytes)?)
}

/// The row under an encoded primary key (read by the access layer, as a query reads it).
pub fn read_row(reader: &impl ReadTrees, schema: &TableSchema, pk: &[u8]) -> Result<Option<Row>> {
    Ok(aedb_access::rows::read_row(reader, schema, pk)?)
}

/// The row under an encoded primary key and its version (the sequence of the commit that last
/// wrote it).
pub fn read_row_versioned(
    reader: &impl ReadTrees,
    schema: &TableSchema,
    pk: &[u8],
) -> Result<Option<(Row, u64)>> {
    let Some(bytes) = reader.get(&table_tree(schema.table_id), pk)? else {
        return Ok(None);
    };
    let version = aedb_catalog::rows::row_version(&bytes)
        .map_err(|e| AedbError::Corruption(e.to_string()))?;
    Ok(Some((decode(schema, &bytes)?, version)))
}

/// The rows of a table, counted in O(height).
pub fn count(reader: &impl ReadTrees, schema: &TableSchema) -> Result<u64> {
    Ok(reader.len(&table_tree(schema.table_id))?)
}

/// A table's rows in primary-key order, read as the iterator goes (nothing is collected): each
/// its primary key and the row in column order, or why its bytes do not decode (its key still
/// known). An error of the iterator itself is the tree's: a page that cannot be read.
pub fn scan<'r, R: ReadTrees>(
    reader: &'r R,
    schema: &'r TableSchema,
) -> Result<impl Iterator<Item = Result<(Vec<u8>, Result<Row>)>> + 'r> {
    let tree = table_tree(schema.table_id);
    let range = reader.range(&tree, Bound::Unbounded, Bound::Unbounded, false)?;
    Ok(range.map(move |item| {
        let (pk, bytes) = item?;
        let row = decode(schema, &bytes);
        Ok((pk, row))
    }))
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
pub fn all_rows(reader: &impl ReadTrees, schema: &TableSchema) -> Result<Vec<(Vec<u8>, Row)>> {
    scan(reader, schema)?
        .map(|item| item.and_then(|(pk, row)| Ok((pk, row?))))
        .collect()
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
