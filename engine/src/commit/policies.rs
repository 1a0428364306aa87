//! Read policies on the write path: a caller's `DeleteWhere`, `UpdateWhere` and
//! `UpdateWhereExpr` touch only the rows the table's read policy lets it read (behaviour spec
//! 9.1), unless the caller holds `PolicyBypass` for the table. Judged on the commit's own state.

use aedb_catalog::permission::{permits, Permission};
use aedb_pager::ReadTrees;

use super::validation::Mutation;
use crate::error::Result;
use crate::permission::CallerContext;
use crate::stored::{grants, read_policies};

/// What lets a caller past a table's policy.
pub fn bypass(project: &str, table: &str) -> Permission {
    Permission::PolicyBypass {
        project_id: project.into(),
        table_name: Some(table.into()),
    }
}

/// `mutation` as `caller` may run it: a predicate-driven write narrowed to the rows the
/// policy shows the caller; everything else unchanged.
pub fn restrict(
    reader: &impl ReadTrees,
    caller: &CallerContext,
    mut mutation: Mutation,
) -> Result<Mutation> {
    if caller.is_internal_system() || !mutation.selects_by_predicate() {
        return Ok(mutation);
    }
    if let Mutation::DeleteWhere {
        project_id,
        scope_id,
        table_name,
        predicate,
        ..
    }
    | Mutation::UpdateWhere {
        project_id,
        scope_id,
        table_name,
        predicate,
        ..
    }
    | Mutation::UpdateWhereExpr {
        project_id,
        scope_id,
        table_name,
        predicate,
        ..
    } = &mut mutation
    {
        let Some(policy) = read_policies::get(reader, project_id, scope_id, table_name)? else {
            return Ok(mutation);
        };
        let held = grants::grants_of(reader, &caller.caller_id)?;
        if !permits(
            held.iter().map(|g| &g.permission),
            &bypass(project_id, table_name),
        ) {
            *predicate = predicate.clone().and(policy);
        }
    }
    Ok(mutation)
}
