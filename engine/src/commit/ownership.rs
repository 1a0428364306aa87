//! Changes of who may do what inside a commit: grants and revokes (`grants.rs`),
//! `TransferOwnership`, `SetReadPolicy` and `ClearReadPolicy`, each recorded in
//! `authz_audit`. Who may run them is checked by the caller-bearing commit paths (`authz`).

use aedb_catalog::expr::Expr;
use aedb_catalog::{DdlOperation, ResourceType};

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::stored::audit::{self, AuthzChange};
use crate::stored::catalog::{self, not_found};
use crate::stored::read_policies;

/// Apply a change of who may do what: grants, revokes, ownership, read policies.
pub fn apply(txn: &mut LoggedTxn, op: &DdlOperation, now_micros: u64) -> Result<bool> {
    match op {
        DdlOperation::GrantPermission {
            caller_id,
            permission,
            actor_id,
            delegable,
        } => super::grants::grant(
            txn,
            caller_id,
            permission,
            (actor_id, now_micros),
            *delegable,
        ),
        DdlOperation::RevokePermission {
            caller_id,
            permission,
            actor_id,
        } => super::grants::revoke(txn, caller_id, permission, (actor_id, now_micros)),
        DdlOperation::TransferOwnership {
            resource_type,
            project_id,
            scope_id,
            table_name,
            new_owner_id,
            actor_id,
        } => transfer(
            txn,
            *resource_type,
            (project_id, scope_id.as_deref(), table_name.as_deref()),
            new_owner_id,
            (actor_id, now_micros),
        ),
        DdlOperation::SetReadPolicy {
            project_id,
            scope_id,
            table_name,
            predicate,
            actor_id,
        } => set_policy(
            txn,
            PolicyTarget {
                project: project_id,
                scope: scope_id,
                table: table_name,
            },
            predicate,
            (actor_id, now_micros),
        ),
        DdlOperation::ClearReadPolicy {
            project_id,
            scope_id,
            table_name,
            actor_id,
        } => clear_policy(
            txn,
            PolicyTarget {
                project: project_id,
                scope: scope_id,
                table: table_name,
            },
            (actor_id, now_micros),
        ),
        other => Err(AedbError::Validation(format!(
            "not a change of permissions: {other:?}"
        ))),
    }
}

/// The table a policy change names, which must exist.
pub struct PolicyTarget<'a> {
    pub project: &'a str,
    pub scope: &'a str,
    pub table: &'a str,
}

fn change(action: &'static str, actor: &Option<String>, target: &str) -> AuthzChange {
    AuthzChange {
        action,
        actor_id: actor.clone().unwrap_or_default(),
        target_caller_id: target.into(),
        permission: None,
        project_id: None,
        scope_id: None,
        table_name: None,
        delegable: false,
        resource_type: None,
        resource_id: None,
        metadata: None,
    }
}

/// The owner of what a `TransferOwnership` names: (project, scope, table).
pub type OwnedResource<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

pub fn transfer(
    txn: &mut LoggedTxn,
    resource_type: ResourceType,
    (project, scope, table): OwnedResource<'_>,
    new_owner: &str,
    (actor, now_micros): (&Option<String>, u64),
) -> Result<bool> {
    CallerContext::new(new_owner).check_external()?;
    let unused = match resource_type {
        ResourceType::Project => scope.or(table).map(|_| "scope_id or table_name"),
        ResourceType::Scope => table.map(|_| "table_name"),
        ResourceType::Table | ResourceType::Index => None,
    };
    if let Some(fields) = unused {
        return Err(AedbError::Validation(format!(
            "TransferOwnership of a {resource_type} takes no {fields}"
        )));
    }
    let missing = |what: &str| {
        AedbError::Validation(format!(
            "TransferOwnership of a {resource_type} needs {what}"
        ))
    };
    let resource_id = match resource_type {
        ResourceType::Project => {
            let mut entry = catalog::get_project(txn, project)?
                .ok_or_else(|| not_found(ResourceType::Project, project))?;
            entry.owner_id = Some(new_owner.into());
            catalog::put_project(txn, &entry)?;
            project.to_string()
        }
        ResourceType::Scope => {
            let scope = scope.ok_or_else(|| missing("scope_id"))?;
            let mut entry = catalog::get_scope(txn, project, scope)?
                .ok_or_else(|| not_found(ResourceType::Scope, format!("{project}.{scope}")))?;
            entry.owner_id = Some(new_owner.into());
            catalog::put_scope(txn, &entry)?;
            format!("{project}.{scope}")
        }
        ResourceType::Table => {
            let scope = scope.ok_or_else(|| missing("scope_id"))?;
            let table = table.ok_or_else(|| missing("table_name"))?;
            let mut schema = catalog::load_table(txn, project, scope, table)?;
            schema.owner_id = Some(new_owner.into());
            catalog::put_table(txn, &schema)?;
            format!("{project}.{scope}.{table}")
        }
        ResourceType::Index => {
            return Err(AedbError::Validation(
                "an index has no owner of its own: transfer its table".into(),
            ))
        }
    };
    let mut row = change("transfer_ownership", actor, new_owner);
    row.project_id = Some(project.into());
    row.scope_id = scope.map(Into::into);
    row.table_name = table.map(Into::into);
    row.resource_type = Some(resource_type.to_string());
    row.resource_id = Some(resource_id);
    audit::record_authz(txn, now_micros, &row)?;
    Ok(true)
}

fn policy_row(action: &'static str, actor: &Option<String>, at: &PolicyTarget<'_>) -> AuthzChange {
    let mut row = change(action, actor, "");
    row.project_id = Some(at.project.into());
    row.scope_id = Some(at.scope.into());
    row.table_name = Some(at.table.into());
    row.resource_type = Some(ResourceType::Table.to_string());
    row.resource_id = Some(format!("{}.{}.{}", at.project, at.scope, at.table));
    row
}

pub fn set_policy(
    txn: &mut LoggedTxn,
    at: PolicyTarget<'_>,
    predicate: &Expr,
    (actor, now_micros): (&Option<String>, u64),
) -> Result<bool> {
    // The predicate must make sense for the table: checked now, not at the first read.
    let schema = catalog::load_table(txn, at.project, at.scope, at.table)?;
    aedb_catalog::eval::check_expr(predicate, &schema)?;
    read_policies::put(txn, at.project, at.scope, at.table, predicate)?;
    let mut row = policy_row("set_read_policy", actor, &at);
    row.metadata = Some(format!("{predicate:?}"));
    audit::record_authz(txn, now_micros, &row)?;
    Ok(true)
}

pub fn clear_policy(
    txn: &mut LoggedTxn,
    at: PolicyTarget<'_>,
    (actor, now_micros): (&Option<String>, u64),
) -> Result<bool> {
    catalog::load_table(txn, at.project, at.scope, at.table)?;
    let had = read_policies::remove(txn, at.project, at.scope, at.table)?;
    audit::record_authz(
        txn,
        now_micros,
        &policy_row("clear_read_policy", actor, &at),
    )?;
    Ok(had)
}
