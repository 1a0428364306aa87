//! #13 items 1, 4, 5: ownership transfer and what an owner may grant, read policies on `_as`
//! queries and `_as` predicate-driven writes, and the audit tables (`authz_audit` with a row per
//! grant, revoke, policy and ownership change; `assertion_audit` with a row per failed
//! assertion), readable only with a grant and never writable by users.

use aedb::catalog::expr::col;
use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, ResourceType};
use aedb::commit::validation::Mutation;
use aedb::commit::{ReadAssertion, TransactionEnvelope, WriteIntent};
use aedb::config::AedbConfig;
use aedb::query::plan::{Query, QueryOptions};
use aedb::{AedbError, AedbInstance, CallerContext, Permission};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn who(id: &str) -> CallerContext {
    CallerContext::new(id)
}

fn ddl(op: DdlOperation) -> Mutation {
    Mutation::Ddl(op)
}

fn grant(to: &str, permission: Permission) -> Mutation {
    ddl(DdlOperation::GrantPermission {
        caller_id: to.into(),
        permission,
        actor_id: None,
        delegable: false,
    })
}

fn table_read(table: &str) -> Permission {
    Permission::TableRead {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: table.into(),
    }
}

fn table_write(table: &str) -> Permission {
    Permission::TableWrite {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: table.into(),
    }
}

fn audit_read(table: &str) -> Permission {
    Permission::TableRead {
        project_id: "_system".into(),
        scope_id: "app".into(),
        table_name: table.into(),
    }
}

/// A database with project `p` (owned by `owner`) and table `docs(id, owner)`.
async fn setup(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = AedbInstance::open(AedbConfig::default(), dir)?;
    db.commit(ddl(DdlOperation::CreateProject {
        project_id: "p".into(),
        owner_id: Some("owner".into()),
        if_not_exists: false,
    }))
    .await?;
    for table in ["docs", "tags"] {
        db.commit(ddl(DdlOperation::CreateTable {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: table.into(),
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
    }
    for (id, owner) in [(1, "alice"), (2, "bob"), (3, "alice"), (4, "carol")] {
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

async fn ids_as(db: &AedbInstance, caller: &str, table: &str) -> Result<Vec<i64>, AedbError> {
    let query = Query::select(&["id"]).from(table);
    let result = db
        .query_with_options_as(
            Some(&who(caller)),
            "p",
            "app",
            query,
            QueryOptions::default(),
        )
        .await
        .map_err(|e| AedbError::PermissionDenied(format!("{e:?}")))?;
    Ok(result
        .rows
        .iter()
        .filter_map(|r| match r.get(0) {
            Some(Value::Integer(id)) => Some(*id),
            _ => None,
        })
        .collect())
}

#[tokio::test]
async fn owners_grant_on_what_they_own_and_ownership_moves_only_by_its_owner() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    // The project's owner may grant in it; a stranger may not.
    db.commit_as(who("owner"), grant("alice", table_read("docs")))
        .await?;
    assert!(matches!(
        db.commit_as(who("mallory"), grant("mallory", table_read("docs")))
            .await,
        Err(AedbError::PermissionDenied(_))
    ));
    let transfer = |to: &str| {
        ddl(DdlOperation::TransferOwnership {
            resource_type: ResourceType::Project,
            project_id: "p".into(),
            scope_id: None,
            table_name: None,
            new_owner_id: to.into(),
            actor_id: None,
        })
    };
    assert!(matches!(
        db.commit_as(who("mallory"), transfer("mallory")).await,
        Err(AedbError::PermissionDenied(_))
    ));
    db.commit_as(who("owner"), transfer("heir")).await?;
    // The project's default scope was created with the same owner, who still owns it and may
    // grant on its tables until it is transferred too.
    db.commit_as(who("owner"), grant("dave", table_read("docs")))
        .await?;
    db.commit_as(
        who("heir"),
        ddl(DdlOperation::TransferOwnership {
            resource_type: ResourceType::Scope,
            project_id: "p".into(),
            scope_id: Some("app".into()),
            table_name: None,
            new_owner_id: "heir".into(),
            actor_id: None,
        }),
    )
    .await?;
    assert!(matches!(
        db.commit_as(who("owner"), grant("bob", table_read("docs")))
            .await,
        Err(AedbError::PermissionDenied(_))
    ));
    db.commit_as(who("heir"), grant("bob", table_read("docs")))
        .await?;
    // A table's owner may grant on that table only.
    db.commit_as(
        who("heir"),
        ddl(DdlOperation::TransferOwnership {
            resource_type: ResourceType::Table,
            project_id: "p".into(),
            scope_id: Some("app".into()),
            table_name: Some("tags".into()),
            new_owner_id: "tagger".into(),
            actor_id: None,
        }),
    )
    .await?;
    db.commit_as(who("tagger"), grant("carol", table_read("tags")))
        .await?;
    assert!(matches!(
        db.commit_as(who("tagger"), grant("carol", table_read("docs")))
            .await,
        Err(AedbError::PermissionDenied(_))
    ));
    let unknown = ddl(DdlOperation::TransferOwnership {
        resource_type: ResourceType::Table,
        project_id: "p".into(),
        scope_id: Some("app".into()),
        table_name: Some("nope".into()),
        new_owner_id: "x".into(),
        actor_id: None,
    });
    assert!(matches!(
        db.commit(unknown).await,
        Err(AedbError::NotFound { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn read_policies_filter_queries_and_predicate_writes_as_a_caller() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    for caller in ["alice", "boss"] {
        db.commit(grant(caller, table_read("docs"))).await?;
        db.commit(grant(caller, table_write("docs"))).await?;
        db.commit(grant(caller, table_read("tags"))).await?;
    }
    db.commit(grant(
        "boss",
        Permission::PolicyBypass {
            project_id: "p".into(),
            table_name: Some("docs".into()),
        },
    ))
    .await?;
    let policy = |predicate| {
        ddl(DdlOperation::SetReadPolicy {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "docs".into(),
            predicate,
            actor_id: None,
        })
    };
    // A policy must make sense for its table.
    assert!(db.commit(policy(col("nope").eq("alice"))).await.is_err());
    db.commit(policy(col("owner").eq("alice"))).await?;
    assert_eq!(ids_as(&db, "alice", "docs").await?, vec![1, 3]);
    assert_eq!(ids_as(&db, "boss", "docs").await?, vec![1, 2, 3, 4]);
    let anonymous = db
        .query("p", "app", Query::select(&["id"]).from("docs"))
        .await?;
    assert_eq!(
        anonymous.rows.len(),
        4,
        "anonymous reads are not the policy's"
    );
    // A join cannot apply the policy: refused.
    let joined = Query::select(&["*"])
        .from("docs")
        .inner_join("tags", "docs.id", "tags.id");
    assert!(db
        .query_with_options_as(
            Some(&who("alice")),
            "p",
            "app",
            joined,
            QueryOptions::default()
        )
        .await
        .is_err());
    // Alice's "delete everything" deletes only what she can see.
    let delete_all = Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        predicate: col("id").gt(Value::Integer(0)),
        limit: None,
    };
    let done = db.commit_as(who("alice"), delete_all.clone()).await?;
    assert!(done.commit_seq > 0);
    assert_eq!(ids_as(&db, "boss", "docs").await?, vec![2, 4]);
    let update_all = Mutation::UpdateWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        predicate: col("id").gt(Value::Integer(0)),
        updates: vec![("owner".into(), Value::Text("alice".into()))],
        limit: None,
    };
    db.commit_as(who("alice"), update_all).await?;
    assert_eq!(ids_as(&db, "alice", "docs").await?, Vec::<i64>::new());
    // Cleared: alice sees every row again.
    db.commit(ddl(DdlOperation::ClearReadPolicy {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        actor_id: None,
    }))
    .await?;
    assert_eq!(ids_as(&db, "alice", "docs").await?, vec![2, 4]);
    Ok(())
}

#[tokio::test]
async fn audit_rows_record_every_change_and_failed_assertion() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let granted = db
        .commit_as(who("owner"), grant("alice", table_read("docs")))
        .await?;
    db.commit_as(
        who("owner"),
        ddl(DdlOperation::RevokePermission {
            caller_id: "alice".into(),
            permission: table_read("docs"),
            actor_id: None,
        }),
    )
    .await?;
    db.commit(ddl(DdlOperation::SetReadPolicy {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "docs".into(),
        predicate: col("owner").eq("alice"),
        actor_id: None,
    }))
    .await?;
    // A failed compare-and-set leaves one assertion row (anonymous: caller Null).
    let failed = db
        .kv_compare_and_swap("p", "app", b"k".to_vec(), b"v".to_vec(), 99)
        .await;
    assert!(matches!(failed, Err(AedbError::AssertionFailed { .. })));
    // And one with a caller, through an envelope.
    db.commit(grant("alice", Permission::GlobalAdmin)).await?;
    let envelope = TransactionEnvelope {
        caller: Some(who("alice")),
        assertions: vec![ReadAssertion::KeyExists {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"missing".to_vec(),
            expected: true,
        }],
        write_intent: WriteIntent {
            mutations: vec![Mutation::KvSet {
                project_id: "p".into(),
                scope_id: "app".into(),
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            }],
        },
        ..TransactionEnvelope::default()
    };
    assert!(db.commit_envelope(envelope).await.is_err());

    // Readable with a grant only.
    let authz = Query::select(&["*"]).from("authz_audit");
    let opts = QueryOptions::default;
    assert!(db
        .query_with_options_as(
            Some(&who("auditor")),
            "_system",
            "app",
            authz.clone(),
            opts()
        )
        .await
        .is_err());
    db.commit(grant("auditor", audit_read("authz_audit")))
        .await?;
    db.commit(grant("auditor", audit_read("assertion_audit")))
        .await?;
    let rows = db
        .query_with_options_as(Some(&who("auditor")), "_system", "app", authz, opts())
        .await?
        .rows;
    let text = |row: &Row, i: usize| match row.get(i) {
        Some(Value::Text(t)) => t.clone(),
        other => format!("{other:?}"),
    };
    // seq, ordinal, ts, action, actor, target, permission, project, scope, table, ...
    let first = &rows[0];
    assert_eq!(
        first.get(0),
        Some(&Value::Integer(granted.commit_seq as i64))
    );
    assert_eq!(
        (text(first, 3), text(first, 4), text(first, 5)),
        ("grant".into(), "owner".into(), "alice".into())
    );
    assert!(text(first, 6).contains("TableRead"));
    assert_eq!(text(first, 9), "docs");
    let actions: Vec<String> = rows.iter().map(|r| text(r, 3)).collect();
    assert_eq!(
        &actions[..3],
        ["grant", "revoke", "set_read_policy"].map(String::from)
    );
    assert_eq!(
        text(&rows[2], 4),
        "",
        "anonymous actor is recorded as empty"
    );
    let assertions = db
        .query_with_options_as(
            Some(&who("auditor")),
            "_system",
            "app",
            Query::select(&["*"]).from("assertion_audit"),
            opts(),
        )
        .await?
        .rows;
    assert_eq!(assertions.len(), 2);
    assert_eq!(assertions[0].get(3), Some(&Value::Null));
    assert_eq!(text(&assertions[1], 3), "alice");
    assert_eq!(text(&assertions[1], 7), "assertion_failed");
    assert!(matches!(assertions[1].get(5), Some(Value::Json(j)) if j.contains("KeyExists")));
    // Users never write them, whatever they hold.
    let forge = Mutation::Upsert {
        project_id: "_system".into(),
        scope_id: "app".into(),
        table_name: "authz_audit".into(),
        primary_key: vec![Value::Integer(1), Value::Integer(9)],
        row: Row::from_values(vec![]),
    };
    assert!(db.commit_as(who("alice"), forge.clone()).await.is_err());
    assert!(db.commit(forge).await.is_err());
    Ok(())
}
