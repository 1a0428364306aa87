//! Schemas (`aedb::catalog::schema`).

use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::types::{ColumnType, Row, Value};

// Field order is part of the file format (catalog entries): pinned by catalog/tests/golden.rs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub col_type: ColumnType,
    pub nullable: bool,
}

// Variant order is part of the file format (catalog entries): pinned by catalog/tests/golden.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum IndexType {
    #[default]
    BTree,
    /// Stored exactly like `BTree`.
    Art,
    Hash,
    UniqueHash,
}

impl IndexType {
    pub fn is_unique(self) -> bool {
        self == IndexType::UniqueHash
    }
    pub fn supports_ranges(self) -> bool {
        matches!(self, IndexType::BTree | IndexType::Art)
    }
}

// Field order is part of the file format (catalog entries): pinned by catalog/tests/golden.rs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub project_id: String,
    pub scope_id: String,
    pub table_name: String,
    pub index_name: String,
    pub columns: Vec<String>,
    pub index_type: IndexType,
    pub partial_filter: Option<Expr>,
}

// Variant and field order are part of the file format (catalog entries): pinned by
// catalog/tests/golden.rs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Constraint {
    Unique { name: String, columns: Vec<String> },
    Check { name: String, expr: Expr },
    NotNull { column: String },
    Default { column: String, value: Value },
}

// Field order is part of the file format (catalog entries): pinned by catalog/tests/golden.rs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub project_id: String,
    pub scope_id: String,
    pub table_name: String,
    pub owner_id: Option<String>,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<IndexDef>,
    /// Distinguishes this table from an earlier one of the same name (its B+trees are named by it).
    pub table_id: u64,
    /// Where each column's value sits in a stored row (parallel to `columns`). Dropping a column
    /// retires its slot and adding one takes a new slot, so no stored row is ever rewritten.
    pub slots: Vec<u32>,
    /// Slots ever allocated; stored rows hold this many values (or fewer, if written earlier).
    pub slot_count: u32,
}

impl TableSchema {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Positions of the primary-key columns.
    pub fn pk_positions(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .filter_map(|c| self.column_index(c))
            .collect()
    }

    /// The default value of a column, if a `Default` constraint names one.
    pub fn default_for(&self, column: &str) -> Option<&Value> {
        self.constraints.iter().find_map(|c| match c {
            Constraint::Default { column: c, value } if c == column => Some(value),
            _ => None,
        })
    }

    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.index_name == name)
    }

    /// The stored form of a row given in column order.
    pub fn to_stored(&self, row: &Row) -> Row {
        let mut values = vec![Value::Null; self.slot_count as usize];
        for (value, slot) in row.values.iter().zip(&self.slots) {
            values[*slot as usize] = value.clone();
        }
        Row { values }
    }

    /// A stored row of `stored_values` values is already in column order: no column was ever
    /// dropped or reordered, and none added since the row was written (the common case).
    pub fn stored_is_current(&self, stored_values: usize) -> bool {
        stored_values == self.columns.len()
            && self.slots.iter().enumerate().all(|(i, s)| *s as usize == i)
    }

    /// The row in column order from its stored form: columns added after the row was written
    /// read as their default or Null.
    pub fn from_stored(&self, stored: Row) -> Row {
        if self.stored_is_current(stored.values.len()) {
            return stored;
        }
        let mut stored = stored.values;
        let values = self
            .columns
            .iter()
            .zip(&self.slots)
            .map(|(column, slot)| match stored.get_mut(*slot as usize) {
                Some(value) => std::mem::replace(value, Value::Null),
                None => self
                    .default_for(&column.name)
                    .cloned()
                    .unwrap_or(Value::Null),
            })
            .collect();
        Row { values }
    }
}

/// The value type of an accumulator: a signed 64-bit total (`BigInt`, as the original's only
/// type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AccumulatorValueType {
    #[default]
    BigInt,
}
