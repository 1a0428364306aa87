//! Holes an adversarial review of the security work found, each closed and pinned here:
//! envelope assertions reading what the caller may not, ownership taken through a transfer's
//! unused fields or a chosen `owner_id`, caller ids with NUL, preflight as a read oracle,
//! forged actors in audit rows, and a failed weak open leaving the trust marker.

use aedb::catalog::expr::col;
use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, ResourceType};
use aedb::commit::validation::Mutation;
use aedb::commit::{ReadAssertion, TransactionEnvelope, WriteIntent};
use aedb::config::AedbConfig;
use aedb::query::plan::{Query, QueryOptions};
use aedb::{AedbError, AedbInstance, CallerContext, Permission, PreflightResult};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn who(id: &str) -> CallerContext {
    CallerContext::new(id)
}

fn grant(to: &str, permission: Permission) -> Mutation {
    Mutation::Ddl(DdlOperation::GrantPermission {
        caller_id: to.into(),
        permission,
        actor_id: None,
        delegable: false,
    })
}

fn kv(project: &str, prefix: Option<&[u8]>, write: bool) -> Permission {
    let (project_id, scope_id, prefix) = (
        project.into(),
        Some("app".into()),
        prefix.map(<[u8]>::to_vec),
    );
    if write {
        Permission::KvWrite {
            project_id,
            scope_id,
            prefix,
        }
    } else {
        Permission::KvRead {
            project_id,
            scope_id,
            prefix,
        }
    }
}

fn table(write: bool) -> Permission {
    let (project_id, scope_id, table_name) = ("p".into(), "app".into(), "docs".into());
    if write {
        Permission::TableWrite {
            project_id,
            scope_id,
            table_name,
        }
    } else {
        Permission::TableRead {
            project_id,
            scope_id,
            table_name,
        }
    }
}

fn denied<T: std::fmt::Debug>(result: Result<T, AedbError>) -> bool {
    matches!(result, Err(AedbError::PermissionDenied(_)))
}

async fn setup(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = AedbInstance::open(AedbConfig::default(), dir)?;
    for project in ["p", "other"] {
        db.create_project(project).await?;
    }
    db.kv_set("other", "app", b"secret".to_vec(), b"hunter2".to_vec())
        .await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        owner_id: None,
        columns: vec![
            ColumnDef {
                name: "id".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            },
            ColumnDef {
                name: "owner".into(),
                col_type: ColumnType::Text,
                nullable: false,
            },
        ],
        primary_key: vec!["id".into()],
    }))
    .await?;
    for (id, owner) in [(1, "alice"), (2, "carol")] {
        db.commit(Mutation::Upsert {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "docs".into(),
            primary_key: vec![Value::Integer(id)],
            row: Row::from_values(vec![Value::Integer(id), Value::Text(owner.into())]),
        })
        .await?;
    }
    Ok(db)
}

fn own_write(key: &[u8]) -> WriteIntent {
    WriteIntent {
        mutations: vec![Mutation::KvSet {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: key.to_vec(),
            value: b"x".to_vec(),
        }],
    }
}

#[tokio::test]
async fn an_envelope_cannot_read_through_its_assertions_or_read_set() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.commit(grant("mallory", kv("p", Some(b"m/"), true)))
        .await?;
    let probe = TransactionEnvelope {
        caller: Some(who("mallory")),
        assertions: vec![ReadAssertion::KeyEquals {
            project_id: "other".into(),
            scope_id: "app".into(),
            key: b"secret".to_vec(),
            expected: Vec::new(),
        }],
        write_intent: own_write(b"m/x"),
        ..TransactionEnvelope::default()
    };
    let result = db.commit_envelope(probe).await;
    assert!(
        matches!(result, Err(AedbError::PermissionDenied(_))),
        "{result:?}"
    );
    // With the read grant the assertion is the caller's to make.
    db.commit(grant("mallory", kv("other", None, false)))
        .await?;
    let probe = TransactionEnvelope {
        caller: Some(who("mallory")),
        assertions: vec![ReadAssertion::KeyExists {
            project_id: "other".into(),
            scope_id: "app".into(),
            key: b"secret".to_vec(),
            expected: true,
        }],
        write_intent: own_write(b"m/y"),
        ..TransactionEnvelope::default()
    };
    db.commit_envelope(probe).await?;
    // A table under a read policy cannot be asserted on by a policed caller.
    db.commit(grant("alice", table(false))).await?;
    db.commit(grant("alice", kv("p", None, true))).await?;
    db.commit(Mutation::Ddl(DdlOperation::SetReadPolicy {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        predicate: col("owner").eq("alice"),
        actor_id: None,
    }))
    .await?;
    let count = TransactionEnvelope {
        caller: Some(who("alice")),
        assertions: vec![ReadAssertion::RowExists {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "docs".into(),
            primary_key: vec![Value::Integer(2)],
            expected: true,
        }],
        write_intent: own_write(b"a"),
        ..TransactionEnvelope::default()
    };
    assert!(denied(db.commit_envelope(count).await.map(|_| ())));
    Ok(())
}

#[tokio::test]
async fn ownership_follows_the_resource_type_and_owners_are_not_chosen_freely() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.commit(grant(
        "mallory",
        Permission::TableDdl {
            project_id: "p".into(),
        },
    ))
    .await?;
    // Naming someone else the owner of what one creates needs GlobalAdmin.
    let create = |owner: &str| {
        Mutation::Ddl(DdlOperation::CreateTable {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: format!("t_{owner}"),
            owner_id: Some(owner.into()),
            columns: vec![ColumnDef {
                name: "id".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            }],
            primary_key: vec!["id".into()],
        })
    };
    assert!(denied(db.commit_as(who("mallory"), create("boss")).await));
    db.commit_as(who("mallory"), create("mallory")).await?;
    // Owning a table does not make its owner the project's, whatever fields are given.
    let take_project = Mutation::Ddl(DdlOperation::TransferOwnership {
        resource_type: ResourceType::Project,
        project_id: "p".into(),
        scope_id: Some("app".into()),
        table_name: Some("t_mallory".into()),
        new_owner_id: "mallory".into(),
        actor_id: None,
    });
    assert!(denied(
        db.commit_as(who("mallory"), take_project.clone()).await
    ));
    // Nor can an admin transfer with fields the resource type does not use.
    assert!(matches!(
        db.commit(take_project).await,
        Err(AedbError::Validation(_))
    ));
    Ok(())
}

#[tokio::test]
async fn caller_ids_with_control_characters_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.commit(grant("mallory", kv("tenant", None, false)))
        .await?;
    for id in ["mallory\0", "mallory\0\0", "a\nb"] {
        let query = Query::select(&["*"]).from("docs");
        assert!(db
            .query_with_options_as(Some(&who(id)), "p", "app", query, QueryOptions::default())
            .await
            .is_err());
        assert!(denied(
            db.commit_as(who(id), grant("x", Permission::GlobalAdmin))
                .await
        ));
    }
    Ok(())
}

#[tokio::test]
async fn preflight_reports_only_what_the_caller_may_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let delete_carols = Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        predicate: col("owner").eq("carol"),
        limit: None,
    };
    // Write-only: no counting rows it may not read.
    db.commit(grant("writer", table(true))).await?;
    assert!(matches!(
        db.preflight_as(&who("writer"), delete_carols.clone()).await,
        PreflightResult::Err { ref reason } if reason.contains("TableRead")
    ));
    assert!(
        !db.preflight_plan_as(&who("writer"), delete_carols.clone())
            .await
            .valid
    );
    // Policed: the preflight sees what the commit would touch, none of carol's rows.
    db.commit(grant("alice", table(true))).await?;
    db.commit(grant("alice", table(false))).await?;
    db.commit(Mutation::Ddl(DdlOperation::SetReadPolicy {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        predicate: col("owner").eq("alice"),
        actor_id: None,
    }))
    .await?;
    assert_eq!(
        db.preflight_as(&who("alice"), delete_carols.clone()).await,
        PreflightResult::Ok { affected_rows: 0 }
    );
    // Its plan's read set covers the policed table, which alice's envelope could not submit:
    // the plan says so instead of handing out one that would be refused.
    let plan = db.preflight_plan_as(&who("alice"), delete_carols).await;
    assert!(!plan.valid, "{plan:?}");
    assert!(
        plan.errors
            .iter()
            .any(|e| e.contains("read policy applies")),
        "{plan:?}"
    );
    // Without the policy, the same plan is valid.
    db.commit(Mutation::Ddl(DdlOperation::ClearReadPolicy {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        actor_id: None,
    }))
    .await?;
    let delete_carols = Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        predicate: col("owner").eq("carol"),
        limit: None,
    };
    let plan = db.preflight_plan_as(&who("alice"), delete_carols).await;
    assert!(plan.valid, "{plan:?}");
    Ok(())
}

#[tokio::test]
async fn an_envelope_records_its_caller_as_the_actor() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.commit(grant("boss", Permission::GlobalAdmin)).await?;
    let forged = TransactionEnvelope {
        caller: Some(who("boss")),
        write_intent: WriteIntent {
            mutations: vec![Mutation::Ddl(DdlOperation::GrantPermission {
                caller_id: "bob".into(),
                permission: table(false),
                actor_id: Some("innocent".into()),
                delegable: false,
            })],
        },
        ..TransactionEnvelope::default()
    };
    db.commit_envelope(forged).await?;
    let rows = db
        .query_with_options_as(
            Some(&who("boss")),
            "_system",
            "app",
            Query::select(&["*"]).from("authz_audit"),
            QueryOptions::default(),
        )
        .await?
        .rows;
    let actors: Vec<Option<&Value>> = rows.iter().map(|r| r.get(4)).collect();
    let last = actors.last().copied().flatten();
    assert_eq!(last, Some(&Value::Text("boss".into())), "{actors:?}");
    assert!(!actors.contains(&Some(&Value::Text("innocent".into()))));
    Ok(())
}

#[tokio::test]
async fn a_weak_open_that_fails_on_the_lock_leaves_no_marker() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = [3u8; 32];
    let secure = AedbInstance::open_secure(AedbConfig::production(key), dir.path())?;
    let weak = AedbConfig {
        hmac_key: Some(key),
        ..AedbConfig::development()
    };
    assert!(matches!(
        AedbInstance::open(weak, dir.path()),
        Err(AedbError::Locked { .. })
    ));
    assert!(!dir.path().join("trust_mode").exists());
    secure.shutdown().await?;
    AedbInstance::open_secure(AedbConfig::production(key), dir.path())?;
    Ok(())
}
