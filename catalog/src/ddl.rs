//! Schema changes (`aedb::catalog::DdlOperation`).
//!
//! `CreateTable` has exactly the fields the README's Quick Start spells out; the
//! if-not-exists form is the separate variant `CreateTableIfNotExists` so that code does not
//! need a field the README does not show.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::permission::Permission;
use crate::schema::{AccumulatorValueType, ColumnDef, Constraint, IndexType};

/// What a `NotFound` / `AlreadyExists` error, or an ownership transfer, is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceType {
    Project,
    Scope,
    Table,
    Index,
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceType::Project => "project",
            ResourceType::Scope => "scope",
            ResourceType::Table => "table",
            ResourceType::Index => "index",
        })
    }
}

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
    /// An accumulator: exactly-once additive deltas with exposures (README "Data model").
    CreateAccumulator {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        if_not_exists: bool,
        value_type: AccumulatorValueType,
        /// Dedupe records older than this many commits are pruned (then the key is accepted
        /// again); `None` keeps them forever.
        dedupe_retain_commits: Option<u64>,
        /// Applied deltas are compacted away once this many have been folded (> 0).
        snapshot_every: u64,
        /// The share of the effective value exposures may not reach, in basis points
        /// (0 ..= 9 999).
        exposure_margin_bps: u32,
        /// Open exposures older than this many commits are dropped; `None`: never.
        exposure_ttl_commits: Option<u64>,
    },
    DropAccumulator {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        if_exists: bool,
    },
    /// Give `caller_id` a permission; `delegable` lets them grant it on. `actor_id` is who
    /// grants: the engine always records the committing caller there (None when anonymous),
    /// whatever the operation says.
    GrantPermission {
        caller_id: String,
        permission: Permission,
        actor_id: Option<String>,
        delegable: bool,
    },
    /// Take a permission back (a grant that does not exist is no error).
    RevokePermission {
        caller_id: String,
        permission: Permission,
        actor_id: Option<String>,
    },
    /// Make `new_owner_id` the owner of a project, scope or table (`scope_id` for a scope or
    /// table, `table_name` for a table). An owner may grant and revoke permissions on what it
    /// owns.
    TransferOwnership {
        resource_type: ResourceType,
        project_id: String,
        scope_id: Option<String>,
        table_name: Option<String>,
        new_owner_id: String,
        actor_id: Option<String>,
    },
    /// Callers reading the table through `_as` calls see only rows matching `predicate`
    /// (unless they hold `PolicyBypass`); their `DeleteWhere`/`UpdateWhere` touch only those.
    SetReadPolicy {
        project_id: String,
        scope_id: String,
        table_name: String,
        predicate: Expr,
        actor_id: Option<String>,
    },
    ClearReadPolicy {
        project_id: String,
        scope_id: String,
        table_name: String,
        actor_id: Option<String>,
    },
}

impl DdlOperation {
    /// The project the operation changes (`None`: a grant, which may span projects).
    pub fn project_id(&self) -> Option<&str> {
        match self {
            DdlOperation::CreateProject { project_id, .. }
            | DdlOperation::DropProject { project_id, .. }
            | DdlOperation::CreateScope { project_id, .. }
            | DdlOperation::DropScope { project_id, .. }
            | DdlOperation::CreateTable { project_id, .. }
            | DdlOperation::CreateTableIfNotExists { project_id, .. }
            | DdlOperation::AlterTable { project_id, .. }
            | DdlOperation::DropTable { project_id, .. }
            | DdlOperation::CreateIndex { project_id, .. }
            | DdlOperation::DropIndex { project_id, .. }
            | DdlOperation::CreateAccumulator { project_id, .. }
            | DdlOperation::DropAccumulator { project_id, .. }
            | DdlOperation::TransferOwnership { project_id, .. }
            | DdlOperation::SetReadPolicy { project_id, .. }
            | DdlOperation::ClearReadPolicy { project_id, .. } => Some(project_id),
            DdlOperation::GrantPermission { .. } | DdlOperation::RevokePermission { .. } => None,
        }
    }
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
