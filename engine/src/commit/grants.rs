//! `GrantPermission` and `RevokePermission` inside a commit. Who may grant is checked by the
//! caller-bearing commit paths; an anonymous commit (outside secure mode) grants freely, as in
//! the original (it is how a database is prepared for a secure open).

use aedb_catalog::permission::Permission;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
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

pub fn grant(
    txn: &mut LoggedTxn,
    caller_id: &str,
    permission: &Permission,
    actor_id: &Option<String>,
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
    Ok(true)
}

/// Revoke; a grant that does not exist is no error (`false`: nothing changed).
pub fn revoke(txn: &mut LoggedTxn, caller_id: &str, permission: &Permission) -> Result<bool> {
    check_grantee(caller_id)?;
    grants::remove(txn, caller_id, permission)
}
