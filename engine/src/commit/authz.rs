//! Which permission each mutation needs, and the check of a caller's grants against it
//! (behaviour spec 9.1). The check runs inside the commit, on the commit's transaction, so a
//! grant revoked by an earlier commit is already gone.

use aedb_catalog::permission::{permits, Permission};
use aedb_catalog::{DdlOperation, ResourceType};
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
        // What must be owned follows from what is transferred, not from the fields given.
        D::TransferOwnership {
            resource_type,
            project_id,
            scope_id,
            table_name,
            ..
        } => match resource_type {
            ResourceType::Project => Need::Ownership(project_id.clone(), None, None),
            ResourceType::Scope => Need::Ownership(project_id.clone(), scope_id.clone(), None),
            ResourceType::Table | ResourceType::Index => {
                Need::Ownership(project_id.clone(), scope_id.clone(), table_name.clone())
            }
        },
        other => Need::One(Permission::TableDdl {
            project_id: other.project_id().unwrap_or_default().to_string(),
        }),
    }
}

fn need_of(mutation: &Mutation) -> Need {
    if let Mutation::Ddl(op) = mutation {
        return ddl_need(op);
    }
    if let Some((project, scope, table)) = mutation.target_table() {
        return table_write(project, scope, table);
    }
    match mutation.kv_write_target() {
        Some((project, scope, key)) => kv_write(project, scope, key),
        // Every mutation is DDL, a table write or a KV-shaped write (validation.rs); one that
        // is none of them is the engine's to run, never a caller's.
        None => Need::One(Permission::GlobalAdmin),
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

/// A caller creating a project, scope or table may name itself its owner, or nobody; naming
/// someone else needs `GlobalAdmin` (an owner may grant on what it owns).
fn owner_assignment<'a>(mutation: &'a Mutation, caller: &CallerContext) -> Option<&'a str> {
    use DdlOperation as D;
    let Mutation::Ddl(
        D::CreateProject { owner_id, .. }
        | D::CreateScope { owner_id, .. }
        | D::CreateTable { owner_id, .. }
        | D::CreateTableIfNotExists { owner_id, .. },
    ) = mutation
    else {
        return None;
    };
    owner_id
        .as_deref()
        .filter(|owner| *owner != caller.caller_id)
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
    if let Some(owner) = owner_assignment(mutation, caller) {
        if !permits(permissions.iter().copied(), &Permission::GlobalAdmin) {
            return Err(denied(
                caller,
                format!("GlobalAdmin to make {owner:?} an owner"),
            ));
        }
    }
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

/// A change of grants, policies or ownership records who made it: the committing caller
/// (None when anonymous), whatever the mutation said.
pub fn stamp_actor(mutation: Mutation, caller_id: Option<&str>) -> Mutation {
    use DdlOperation as D;
    let Mutation::Ddl(mut op) = mutation else {
        return mutation;
    };
    match &mut op {
        D::GrantPermission { actor_id, .. }
        | D::RevokePermission { actor_id, .. }
        | D::TransferOwnership { actor_id, .. }
        | D::SetReadPolicy { actor_id, .. }
        | D::ClearReadPolicy { actor_id, .. } => *actor_id = caller_id.map(str::to_string),
        _ => {}
    }
    Mutation::Ddl(op)
}

/// What a caller must be able to read to preflight `mutation`: a preflight reports what the
/// write would find (rows affected, keys touched, an underflow), so it needs the read
/// counterpart of the write's permission — `TableRead` for a table write, `KvRead` of the key
/// for a KV write. DDL and grants need nothing more.
fn read_counterpart(mutation: &Mutation) -> Option<Permission> {
    match need_of(mutation) {
        Need::One(Permission::TableWrite {
            project_id,
            scope_id,
            table_name,
        }) => Some(Permission::TableRead {
            project_id,
            scope_id,
            table_name,
        }),
        Need::One(Permission::KvWrite {
            project_id,
            scope_id,
            prefix,
        }) => Some(Permission::KvRead {
            project_id,
            scope_id,
            prefix,
        }),
        _ => None,
    }
}

/// Whether `caller` may preflight `mutation`: run it, and read what it would report. Returns
/// the mutation as the caller's commit would run it (its read policy applied).
pub fn authorize_preflight(
    reader: &impl ReadTrees,
    caller: &CallerContext,
    mutation: Mutation,
) -> Result<Mutation> {
    authorize(reader, caller, &mutation)?;
    if caller.is_internal_system() {
        return Ok(mutation);
    }
    if let Some(need) = read_counterpart(&mutation) {
        let held = grants::grants_of(reader, &caller.caller_id)?;
        if !permits(held.iter().map(|g| &g.permission), &need) {
            return Err(denied(caller, need));
        }
    }
    super::policies::restrict(reader, caller, mutation)
}
