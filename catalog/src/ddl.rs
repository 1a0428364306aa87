//! Schema changes (`aedb::catalog::DdlOperation`).
//!
//! `CreateTable` has exactly the fields the README's Quick Start spells out; the
//! if-not-exists form is the separate variant `CreateTableIfNotExists` so that code does not
//! need a field the README does not show.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::schema::{ColumnDef, Constraint, IndexType};

// Not part of the file format: no file holds a serde-encoded DDL operation (the catalog stores
// the resulting entries, pinned by catalog/tests/golden.rs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DdlOperation {
    CreateProject {
        project_id: String,
        owner_id: Option<String>,
        if_not_exists: bool,
    },
    DropProject {
        project_id: String,
        if_exists: bool,
    },
    CreateScope {
        project_id: String,
        scope_id: String,
        owner_id: Option<String>,
        if_not_exists: bool,
    },
    DropScope {
        project_id: String,
        scope_id: String,
        if_exists: bool,
    },
    CreateTable {
        project_id: String,
        scope_id: String,
        table_name: String,
        owner_id: Option<String>,
        columns: Vec<ColumnDef>,
        primary_key: Vec<String>,
    },
    /// `CreateTable` that is a no-op when the table exists.
    CreateTableIfNotExists {
        project_id: String,
        scope_id: String,
        table_name: String,
        owner_id: Option<String>,
        columns: Vec<ColumnDef>,
        primary_key: Vec<String>,
    },
    AlterTable {
        project_id: String,
        scope_id: String,
        table_name: String,
        alteration: TableAlteration,
    },
    DropTable {
        project_id: String,
        scope_id: String,
        table_name: String,
        if_exists: bool,
    },
    CreateIndex {
        project_id: String,
        scope_id: String,
        table_name: String,
        index_name: String,
        if_not_exists: bool,
        columns: Vec<String>,
        index_type: IndexType,
        partial_filter: Option<Expr>,
    },
    DropIndex {
        project_id: String,
        scope_id: String,
        table_name: String,
        index_name: String,
        if_exists: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TableAlteration {
    /// Rows written before read the new column as its default (a `Default` constraint) or Null.
    AddColumn(ColumnDef),
    DropColumn {
        name: String,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    AddConstraint(Constraint),
    DropConstraint {
        name: String,
    },
}

/// The result of a DDL commit: `applied` is false when an if-(not-)exists guard made it a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdlResult {
    pub applied: bool,
    pub seq: u64,
}
