//! Grants (#13, first steps): `GrantPermission` and `RevokePermission` store and remove a
//! caller's permissions in the data file (`sys:grants`), across reopen; bad grantees are
//! refused. Enforcement on the `_as` paths arrives with secure mode.

use aedb::catalog::DdlOperation;
use aedb::config::AedbConfig;
use aedb::storage::ReadTrees;
use aedb::{AedbError, AedbInstance, Permission};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn grant(caller: &str, permission: Permission) -> DdlOperation {
    DdlOperation::GrantPermission {
        caller_id: caller.into(),
        permission,
        actor_id: None,
        delegable: false,
    }
}

fn revoke(caller: &str, permission: Permission) -> DdlOperation {
    DdlOperation::RevokePermission {
        caller_id: caller.into(),
        permission,
        actor_id: None,
    }
}

fn stored(db: &AedbInstance) -> u64 {
    db.engine()
        .snapshot()
        .len("sys:grants")
        .expect("grants tree")
}

#[tokio::test]
async fn grants_are_stored_revoked_and_kept_across_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    let read = Permission::TableRead {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
    };
    db.commit_ddl(grant("alice", Permission::GlobalAdmin))
        .await?;
    db.commit_ddl(grant("bob", read.clone())).await?;
    db.commit_ddl(grant("bob", read.clone())).await?; // the same grant again: one record
    assert_eq!(stored(&db), 2);
    assert!(db.commit_ddl(revoke("bob", read.clone())).await?.applied);
    assert!(
        !db.commit_ddl(revoke("bob", read.clone())).await?.applied,
        "missing grant: Ok"
    );
    assert_eq!(stored(&db), 1);
    for bad in ["", "system", "a\0b"] {
        assert!(
            matches!(
                db.commit_ddl(grant(bad, Permission::GlobalAdmin)).await,
                Err(AedbError::PermissionDenied(_)) | Err(AedbError::Validation(_))
            ),
            "{bad:?}"
        );
    }
    db.shutdown().await?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    assert_eq!(stored(&db), 1, "alice's grant survives");
    Ok(())
}
