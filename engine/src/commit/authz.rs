//! Which permission each mutation needs, and the check of a caller's grants against it
//! (behaviour spec 9.1). The check runs inside the commit, on the commit's transaction, so a
//! grant revoked by an earlier commit is already gone.

use aedb_catalog::permission::{permits, Permission};
use aedb_catalog::DdlOperation;
use aedb_pager::ReadTrees;

use super::validation::Mutation;
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::stored::{catalog, grants};

/// What a mutation needs.
enum Need {
    One(Permission),
    /// A grant or revoke of this permission.
    Delegation(Permission),
    /// A transfer of what this names (project, scope, table): its owner's or an admin's.
    Ownership(String, Option<String>, Option<String>),
}

fn kv_write(project: &str, scope: &str, key: &[u8]) -> Need {
    Need::One(Permission::KvWrite {
        project_id: project.into(),
        scope_id: Some(scope.into()),
        prefix: Some(key.to_vec()),
    })
}

fn table_write(project: &str, scope: &str, table: &str) -> Need {
    Need::One(Permission::TableWrite {
        project_id: project.into(),
        scope_id: scope.into(),
        table_name: table.into(),
    })
}

fn ddl_need(op: &DdlOperation) -> Need {
    use DdlOperation as D;
    match op {
        D::CreateProject { .. } => Need::One(Permission::GlobalAdmin),
        D::DropProject { project_id, .. } | D::CreateScope { project_id, .. } => {
            Need::One(Permission::ProjectAdmin {
                project_id: project_id.clone(),
            })
        }
        D::DropScope {
            project_id,
            scope_id,
            ..
        } => Need::One(Permission::ScopeAdmin {
            project_id: project_id.clone(),
            scope_id: scope_id.clone(),
        }),
        D::GrantPermission { permission, .. } | D::RevokePermission { permission, .. } => {
            Need::Delegation(permission.clone())
        }
        D::TransferOwnership {
            project_id,
            scope_id,
            table_name,
            ..
        } => Need::Ownership(project_id.clone(), scope_id.clone(), table_name.clone()),
        other => Need::One(Permission::TableDdl {
            project_id: other.project_id().unwrap_or_default().to_string(),
        }),
    }
}

fn need_of(mutation: &Mutation) -> Need {
    use Mutation as M;
    match mutation {
        M::Ddl(op) => ddl_need(op),
        M::Insert {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::InsertBatch {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::Upsert {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::UpsertBatch {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::UpsertOnConflict {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::UpsertBatchOnConflict {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::Delete {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::DeleteWhere {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::UpdateWhere {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::UpdateWhereExpr {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::TableIncU256 {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | M::TableDecU256 {
            project_id,
            scope_id,
            table_name,
            ..
        } => table_write(project_id, scope_id, table_name),
        M::KvSet {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvDel {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvIncU256 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvDecU256 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvAddU256Ex {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvSubU256Ex {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvMaxU256 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvMinU256 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvMutateU256 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvAddU64Ex {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvSubU64Ex {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvMaxU64 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvMinU64 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvMutateU64 {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::KvSubIntEx {
            project_id,
            scope_id,
            key,
            ..
        }
        | M::CounterAdd {
            project_id,
            scope_id,
            key,
            ..
        } => kv_write(project_id, scope_id, key),
        M::Accumulate {
            project_id,
            scope_id,
            accumulator_name,
            ..
        }
        | M::ExposeAccumulator {
            project_id,
            scope_id,
            accumulator_name,
            ..
        }
        | M::ExposeAccumulatorBatch {
            project_id,
            scope_id,
            accumulator_name,
            ..
        }
        | M::ReleaseAccumulatorExposure {
            project_id,
            scope_id,
            accumulator_name,
            ..
        } => kv_write(project_id, scope_id, accumulator_name.as_bytes()),
        M::EmitEvent {
            project_id,
            scope_id,
            topic,
            ..
        } => kv_write(project_id, scope_id, topic.as_bytes()),
    }
}

/// Whether `caller` owns the project, scope or table named (the owner of a project owns what
/// is in it).
fn owns(
    reader: &impl ReadTrees,
    caller: &str,
    (project, scope, table): (&str, Option<&str>, Option<&str>),
) -> Result<bool> {
    let is = |owner: Option<String>| owner.as_deref() == Some(caller);
    if is(catalog::get_project(reader, project)?.and_then(|p| p.owner_id)) {
        return Ok(true);
    }
    let Some(scope) = scope else {
        return Ok(false);
    };
    if is(catalog::get_scope(reader, project, scope)?.and_then(|s| s.owner_id)) {
        return Ok(true);
    }
    let Some(table) = table else {
        return Ok(false);
    };
    Ok(is(
        catalog::find_table(reader, project, scope, table)?.and_then(|t| t.owner_id)
    ))
}

fn denied(caller: &CallerContext, what: impl std::fmt::Debug) -> AedbError {
    AedbError::PermissionDenied(format!("caller={} missing {what:?}", caller.caller_id))
}

/// Whether `caller` may run `mutation`, judged on `reader` (the commit's transaction).
pub fn authorize(
    reader: &impl ReadTrees,
    caller: &CallerContext,
    mutation: &Mutation,
) -> Result<()> {
    if caller.is_internal_system() {
        return Ok(());
    }
    caller.check_external()?;
    let held = grants::grants_of(reader, &caller.caller_id)?;
    let permissions: Vec<&Permission> = held.iter().map(|g| &g.permission).collect();
    match need_of(mutation) {
        Need::One(need) => {
            if permits(permissions.iter().copied(), &need) {
                return Ok(());
            }
            Err(denied(caller, need))
        }
        Need::Delegation(permission) => {
            if permits(permissions.iter().copied(), &Permission::GlobalAdmin) {
                return Ok(());
            }
            // The same permission, granted to this caller as delegable.
            if held
                .iter()
                .any(|g| g.delegable && g.permission == permission)
            {
                return Ok(());
            }
            // The admin of the project (or scope) it is about, or the owner of what it names.
            if let Some(project) = permission.project_id() {
                let admin = Permission::ProjectAdmin {
                    project_id: project.into(),
                };
                if permits(permissions.iter().copied(), &admin) {
                    return Ok(());
                }
                if let Some(scope) = permission.scope_id() {
                    let scope_admin = Permission::ScopeAdmin {
                        project_id: project.into(),
                        scope_id: scope.into(),
                    };
                    if permits(permissions.iter().copied(), &scope_admin) {
                        return Ok(());
                    }
                }
                let named = (project, permission.scope_id(), permission.table_name());
                if owns(reader, &caller.caller_id, named)? {
                    return Ok(());
                }
            }
            Err(denied(caller, format!("the right to grant {permission:?}")))
        }
        Need::Ownership(project, scope, table) => {
            if permits(permissions.iter().copied(), &Permission::GlobalAdmin) {
                return Ok(());
            }
            let named = (project.as_str(), scope.as_deref(), table.as_deref());
            if owns(reader, &caller.caller_id, named)? {
                return Ok(());
            }
            Err(denied(caller, format!("ownership of {named:?}")))
        }
    }
}
