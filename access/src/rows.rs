//! Reading a table's rows: the tree `t:<table id>` maps an encoded primary key to a row encoded
//! by `aedb_catalog::rows`. The engine's `stored::rows` owns the writes (a row and its index
//! entries in step); every read of a row, by a query or by a commit, goes through here.

use std::ops::Bound;

use aedb_catalog::namespace::table_tree_name;
use aedb_catalog::rows::decode_row;
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::Row;
use aedb_pager::store::bound_ref;
use aedb_pager::{ReadTrees, TreeView};

use crate::error::AccessError;

/// A stored row, decoded into the schema's column order.
pub fn decode_stored(schema: &TableSchema, bytes: &[u8]) -> Result<Row, AccessError> {
    decode_row(bytes)
        .map(|stored| schema.from_stored(stored))
        .map_err(|e| AccessError::Corrupt(e.to_string()))
}

/// The row under an encoded primary key, in an open table tree.
pub fn read_row_in(
    tree: &TreeView<'_>,
    schema: &TableSchema,
    pk: &[u8],
) -> Result<Option<Row>, AccessError> {
    match tree.get_with(pk, decode_row)? {
        Some(row) => Ok(Some(
            schema.from_stored(row.map_err(|e| AccessError::Corrupt(e.to_string()))?),
        )),
        None => Ok(None),
    }
}

/// The row under an encoded primary key.
pub fn read_row(
    reader: &impl ReadTrees,
    schema: &TableSchema,
    pk: &[u8],
) -> Result<Option<Row>, AccessError> {
    match reader.tree(&table_tree_name(schema.table_id))? {
        Some(tree) => read_row_in(&tree, schema, pk),
        None => Ok(None),
    }
}

/// The rows of a table between two primary-key bounds, in key order, each handed to `visit`
/// until it returns false. Returns whether the range ran out.
pub fn visit_range<E: From<AccessError>>(
    tree: &TreeView<'_>,
    schema: &TableSchema,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    visit: &mut dyn FnMut(Vec<u8>, Row) -> Result<bool, E>,
) -> Result<bool, E> {
    for item in tree.range(bound_ref(&lower), bound_ref(&upper), false) {
        let (pk, bytes) = item.map_err(AccessError::from)?;
        let row = decode_stored(schema, &bytes)?;
        if !visit(pk, row)? {
            return Ok(false);
        }
    }
    Ok(true)
}
