//! Which entry a row has in a secondary index: the one rule shared by the engine (writes,
//! index builds) and the checker (`aedb check invariants` rebuilds indexes to compare).

use crate::keys::encode_key;
use crate::schema::{IndexDef, TableSchema};
use crate::types::{Row, Value};

use crate::eval::eval;

/// The index key of `row` (index columns, then the encoded primary key `pk`); None when a
/// partial filter excludes the row, or a unique index meets a Null.
pub fn index_entry(schema: &TableSchema, def: &IndexDef, row: &Row, pk: &[u8]) -> Option<Vec<u8>> {
    if let Some(filter) = &def.partial_filter {
        if !eval(filter, row, &|c| schema.column_index(c)) {
            return None;
        }
    }
    let values: Vec<Value> = def
        .columns
        .iter()
        .map(|c| {
            schema
                .column_index(c)
                .and_then(|i| row.values.get(i))
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect();
    if values.is_empty() || (def.index_type.is_unique() && values.iter().any(Value::is_null)) {
        return None;
    }
    let mut key = encode_key(&values);
    key.extend_from_slice(pk);
    Some(key)
}
