//! `GrantPermission` and `RevokePermission` inside a commit. Who may grant is checked by the
//! caller-bearing commit paths; an anonymous commit (outside secure mode) grants freely, as in
//! the original (it is how a database is prepared for a secure open).

use aedb_catalog::permission::Permission;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::stored::audit::{self, AuthzChange};
use crate::stored::grants::{self, Grant};

fn check_grantee(caller_id: &str) -> Result<()> {
    CallerContext::new(caller_id).check_external()?;
    if caller_id.contains('\0') {
        return Err(AedbError::Validation(
            "caller_id must not contain NUL".into(),
        ));
    }
    Ok(())
}

fn audit_row(
    action: &'static str,
    target: &str,
    permission: &Permission,
    actor: &Option<String>,
) -> AuthzChange {
    AuthzChange {
        action,
        actor_id: actor.clone().unwrap_or_default(),
        target_caller_id: target.into(),
        permission: Some(format!("{permission:?}")),
        project_id: permission.project_id().map(Into::into),
        scope_id: permission.scope_id().map(Into::into),
        table_name: permission.table_name().map(Into::into),
        // As the original: the flag is in the grant, not in its audit row.
        delegable: false,
        resource_type: None,
        resource_id: None,
        metadata: None,
    }
}

pub fn grant(
    txn: &mut LoggedTxn,
    caller_id: &str,
    permission: &Permission,
    (actor_id, now_micros): (&Option<String>, u64),
    delegable: bool,
) -> Result<bool> {
    check_grantee(caller_id)?;
    let grant = Grant {
        permission: permission.clone(),
        delegable,
        granted_at_seq: txn.seq(),
        granted_by: actor_id.clone().unwrap_or_default(),
    };
    grants::put(txn, caller_id, &grant)?;
    let row = audit_row("grant", caller_id, permission, actor_id);
    audit::record_authz(txn, now_micros, &row)?;
    Ok(true)
}

/// Revoke; a grant that does not exist is no error (`false`: nothing changed).
pub fn revoke(
    txn: &mut LoggedTxn,
    caller_id: &str,
    permission: &Permission,
    (actor_id, now_micros): (&Option<String>, u64),
) -> Result<bool> {
    check_grantee(caller_id)?;
    let had = grants::remove(txn, caller_id, permission)?;
    let row = audit_row("revoke", caller_id, permission, actor_id);
    audit::record_authz(txn, now_micros, &row)?;
    Ok(had)
}
