//! Permissions on the caller-bearing paths (#13, first steps): `commit_as` and
//! `query_with_options_as` allow exactly what the caller's grants cover, directly or by
//! implication, and refuse the rest with `PermissionDenied`; grants and revokes take effect on
//! the next commit; delegation follows the grant's `delegable` flag and project admins.

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::{Query, QueryOptions};
use aedb::{AedbError, AedbInstance, CallerContext, Permission};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn caller(id: &str) -> CallerContext {
    CallerContext::new(id)
}

fn create_table(name: &str) -> Mutation {
    Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: name.into(),
        owner_id: None,
        columns: vec![ColumnDef {
            name: "id".into(),
            col_type: ColumnType::Integer,
            nullable: false,
        }],
        primary_key: vec!["id".into()],
    })
}

fn insert(table: &str, id: i64) -> Mutation {
    Mutation::Upsert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: table.into(),
        primary_key: vec![Value::Integer(id)],
        row: Row::from_values(vec![Value::Integer(id)]),
    }
}

fn kv_set(key: &[u8]) -> Mutation {
    Mutation::KvSet {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: key.to_vec(),
        value: b"v".to_vec(),
    }
}

fn grant(to: &str, permission: Permission, delegable: bool) -> Mutation {
    Mutation::Ddl(DdlOperation::GrantPermission {
        caller_id: to.into(),
        permission,
        actor_id: None,
        delegable,
    })
}

fn table_read(t: &str) -> Permission {
    Permission::TableRead {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: t.into(),
    }
}

fn denied<T: std::fmt::Debug>(result: Result<T, AedbError>) -> bool {
    matches!(result, Err(AedbError::PermissionDenied(_)))
}

async fn query_as(
    db: &AedbInstance,
    who: &str,
    table: &str,
) -> Result<usize, aedb::query::error::QueryError> {
    let c = caller(who);
    db.query_with_options_as(
        Some(&c),
        "p",
        "app",
        Query::select(&["*"]).from(table).limit(10),
        QueryOptions::default(),
    )
    .await
    .map(|r| r.rows.len())
}

#[tokio::test]
async fn grants_decide_what_each_caller_may_do() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    // Prepared anonymously, as a database is before a secure open.
    db.create_project("p").await?;
    db.commit(create_table("t")).await?;
    db.commit(create_table("u")).await?;
    let write_t = Permission::TableWrite {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
    };
    db.commit(grant("alice", Permission::GlobalAdmin, false))
        .await?;
    db.commit(grant("bob", write_t.clone(), false)).await?;
    db.commit(grant(
        "carol",
        Permission::ProjectAdmin {
            project_id: "p".into(),
        },
        false,
    ))
    .await?;
    let kv_users = Permission::KvWrite {
        project_id: "p".into(),
        scope_id: Some("app".into()),
        prefix: Some(b"user:".to_vec()),
    };
    db.commit(grant("dave", kv_users, false)).await?;
    db.commit(grant(
        "eve",
        Permission::ScopeAdmin {
            project_id: "p".into(),
            scope_id: "app".into(),
        },
        false,
    ))
    .await?;

    // Exact grants.
    db.commit_as(caller("bob"), insert("t", 1)).await?;
    assert!(
        denied(db.commit_as(caller("bob"), insert("u", 1)).await),
        "other table"
    );
    assert!(
        query_as(&db, "bob", "t").await.is_err(),
        "writing is not reading"
    );
    db.commit_as(caller("dave"), kv_set(b"user:1")).await?;
    assert!(
        denied(db.commit_as(caller("dave"), kv_set(b"order:1")).await),
        "other prefix"
    );
    // By implication.
    assert_eq!(query_as(&db, "carol", "t").await?, 1);
    db.commit_as(caller("carol"), kv_set(b"anything")).await?;
    db.commit_as(caller("eve"), insert("u", 2)).await?;
    assert!(
        denied(db.commit_as(caller("eve"), create_table("v")).await),
        "DDL needs TableDdl"
    );
    db.commit_as(caller("carol"), create_table("v")).await?;
    assert!(denied(
        db.commit_as(
            caller("carol"),
            Mutation::Ddl(DdlOperation::CreateProject {
                project_id: "q".into(),
                owner_id: None,
                if_not_exists: false,
            })
        )
        .await
    ));
    db.commit_as(
        caller("alice"),
        Mutation::Ddl(DdlOperation::CreateProject {
            project_id: "q".into(),
            owner_id: None,
            if_not_exists: false,
        }),
    )
    .await?;
    // Nobody unknown, blank or reserved.
    assert!(denied(
        db.commit_as(caller("mallory"), insert("t", 3)).await
    ));
    assert!(denied(db.commit_as(caller(""), insert("t", 3)).await));
    assert!(denied(db.commit_as(caller("system"), insert("t", 3)).await));

    // Delegation: a project admin may grant within the project, not globally; a delegable
    // grant may be passed on, a plain one may not.
    db.commit_as(caller("carol"), grant("frank", table_read("t"), true))
        .await?;
    assert!(denied(
        db.commit_as(
            caller("carol"),
            grant("frank", Permission::GlobalAdmin, false)
        )
        .await
    ));
    db.commit_as(caller("frank"), grant("gina", table_read("t"), false))
        .await?;
    assert_eq!(query_as(&db, "gina", "t").await?, 1);
    assert!(denied(
        db.commit_as(caller("gina"), grant("hal", table_read("t"), false))
            .await
    ));
    assert!(denied(
        db.commit_as(caller("bob"), grant("hal", write_t.clone(), false))
            .await
    ));

    // A revoke takes effect on the next commit.
    db.commit_as(
        caller("alice"),
        Mutation::Ddl(DdlOperation::RevokePermission {
            caller_id: "bob".into(),
            permission: write_t,
            actor_id: None,
        }),
    )
    .await?;
    assert!(denied(db.commit_as(caller("bob"), insert("t", 4)).await));
    // Anonymous calls are not checked outside secure mode.
    db.commit(insert("t", 5)).await?;
    Ok(())
}

/// The write `_as` forms of KV, accumulators and events need `KvWrite` covering the key, the
/// accumulator's name or the topic.
#[tokio::test]
async fn kv_accumulator_and_event_writes_need_kv_write() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("p").await?;
    db.create_accumulator("p", "app", "bank", None, 100).await?;
    db.create_accumulator("p", "app", "other", None, 100)
        .await?;
    let kv = |prefix: &[u8]| Permission::KvWrite {
        project_id: "p".into(),
        scope_id: Some("app".into()),
        prefix: Some(prefix.to_vec()),
    };
    db.commit(grant("ann", kv(b"bank"), false)).await?;
    db.commit(grant("ann", kv(b"user:"), false)).await?;
    db.commit(grant("ann", kv(b"scored"), false)).await?;

    db.kv_set_as(caller("ann"), "p", "app", b"user:1".to_vec(), b"v".to_vec())
        .await?;
    db.kv_del_as(caller("ann"), "p", "app", b"user:1".to_vec())
        .await?;
    assert!(denied(
        db.kv_set_as(caller("ann"), "p", "app", b"admin".to_vec(), b"v".to_vec())
            .await
    ));
    db.accumulate_as(caller("ann"), "p", "app", "bank", 100, "d1".into(), 1)
        .await?;
    db.expose_accumulator_as(caller("ann"), "p", "app", "bank", 10, "e1".into())
        .await?;
    db.accumulate_with_release_as(
        caller("ann"),
        "p",
        "app",
        "bank",
        -5,
        "d2".into(),
        2,
        Some("e1".into()),
    )
    .await?;
    assert!(denied(
        db.accumulate_as(caller("ann"), "p", "app", "other", 1, "x".into(), 1)
            .await
    ));
    db.emit_event_as(caller("ann"), "p", "app", "scored", "k".into(), "{}".into())
        .await?;
    assert!(denied(
        db.emit_event_as(
            caller("ann"),
            "p",
            "app",
            "payouts",
            "k".into(),
            "{}".into()
        )
        .await
    ));
    assert!(denied(
        db.kv_set_as(
            caller("nobody"),
            "p",
            "app",
            b"user:2".to_vec(),
            b"v".to_vec()
        )
        .await
    ));
    Ok(())
}

/// An envelope carrying a caller is authorized like `commit_as`, before its assertions run.
#[tokio::test]
async fn envelopes_with_a_caller_are_authorized() -> TestResult {
    use aedb::commit::tx::{ReadAssertion, TransactionEnvelope, WriteIntent};
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("p").await?;
    db.commit(create_table("t")).await?;
    let envelope = |who: &str| TransactionEnvelope {
        caller: Some(caller(who)),
        assertions: vec![ReadAssertion::KeyExists {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"secret".to_vec(),
            expected: true,
        }],
        write_intent: WriteIntent {
            mutations: vec![insert("t", 1)],
        },
        ..TransactionEnvelope::default()
    };
    // Without a grant: refused before the assertion (which would fail) is evaluated.
    assert!(denied(db.commit_envelope(envelope("zed")).await));
    let write_t = Permission::TableWrite {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
    };
    db.commit(grant("zed", write_t, false)).await?;
    // Allowed to write, but not to read what the assertion reads: still refused (a failed
    // assertion reports what it found).
    assert!(denied(db.commit_envelope(envelope("zed")).await));
    let read_secret = Permission::KvRead {
        project_id: "p".into(),
        scope_id: Some("app".into()),
        prefix: Some(b"secret".to_vec()),
    };
    db.commit(grant("zed", read_secret, false)).await?;
    assert!(matches!(
        db.commit_envelope(envelope("zed")).await,
        Err(AedbError::AssertionFailed { .. })
    ));
    Ok(())
}

/// The read path remembers a thread's last KV decision; a grant or revoke is seen by the very
/// next read on that thread, another caller or scope is decided afresh, and a second instance
/// does not answer from the first one's decision.
#[tokio::test]
async fn kv_reads_see_each_grant_and_revoke_at_once() -> TestResult {
    use aedb::query::plan::ConsistencyMode::AtLatest;
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("p").await?;
    db.commit(kv_set(b"k1")).await?;
    let bob = caller("bob");
    let read = |prefix: Option<&[u8]>| Permission::KvRead {
        project_id: "p".into(),
        scope_id: Some("app".into()),
        prefix: prefix.map(|p| p.to_vec()),
    };
    let denied = |r: Result<_, aedb::query::QueryError>| matches!(r, Err(e) if e.to_string().contains("ermission"));
    assert!(denied(db.kv_get("p", "app", b"k1", AtLatest, &bob).await));
    db.commit(grant("bob", read(None), false)).await?;
    for _ in 0..3 {
        assert!(db
            .kv_get("p", "app", b"k1", AtLatest, &bob)
            .await?
            .is_some());
    }
    assert!(denied(
        db.kv_get("p", "app", b"k1", AtLatest, &caller("eve")).await
    ));
    db.commit(Mutation::Ddl(DdlOperation::RevokePermission {
        caller_id: "bob".into(),
        permission: read(None),
        actor_id: None,
    }))
    .await?;
    assert!(denied(db.kv_get("p", "app", b"k1", AtLatest, &bob).await));
    // A narrower grant: the prefix decides, key by key.
    db.commit(grant("bob", read(Some(b"k")), false)).await?;
    assert!(db
        .kv_get("p", "app", b"k1", AtLatest, &bob)
        .await?
        .is_some());
    assert!(denied(db.kv_get("p", "app", b"x", AtLatest, &bob).await));
    assert!(denied(db.kv_get("p", "other", b"k1", AtLatest, &bob).await));

    // Another instance on this thread, where bob holds nothing: the last decision on this
    // thread (bob may read p.app k…, on `db`) is not the other instance's.
    assert!(db
        .kv_get("p", "app", b"k1", AtLatest, &bob)
        .await?
        .is_some());
    let other_dir = tempfile::tempdir()?;
    let other = AedbInstance::open(AedbConfig::default(), other_dir.path())?;
    other.create_project("p").await?;
    assert!(denied(
        other.kv_get("p", "app", b"k1", AtLatest, &bob).await
    ));
    Ok(())
}

/// The read path remembers a thread's last table decision too: a grant, a revoke and a read
/// policy are seen by the very next query on that thread, another table or caller is decided
/// afresh, and another instance does not answer from this one's decision.
#[tokio::test]
async fn table_reads_see_each_grant_revoke_and_policy_at_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("p").await?;
    db.commit(create_table("t")).await?;
    db.commit(create_table("u")).await?;
    for id in 1..=4 {
        db.commit(insert("t", id)).await?;
    }
    let refused = |r: &Result<usize, aedb::query::error::QueryError>| r.is_err();
    assert!(refused(&query_as(&db, "bob", "t").await));
    db.commit(grant("bob", table_read("t"), false)).await?;
    assert_eq!(query_as(&db, "bob", "t").await?, 4);
    assert_eq!(query_as(&db, "bob", "t").await?, 4);
    assert!(refused(&query_as(&db, "bob", "u").await));
    assert!(refused(&query_as(&db, "eve", "t").await));
    assert_eq!(query_as(&db, "bob", "t").await?, 4);
    db.commit(Mutation::Ddl(DdlOperation::SetReadPolicy {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        predicate: aedb::query::plan::Expr::Lte("id".into(), Value::Integer(2)),
        actor_id: None,
    }))
    .await?;
    assert_eq!(
        query_as(&db, "bob", "t").await?,
        2,
        "the policy applies at once"
    );
    db.commit(Mutation::Ddl(DdlOperation::RevokePermission {
        caller_id: "bob".into(),
        permission: table_read("t"),
        actor_id: None,
    }))
    .await?;
    assert!(refused(&query_as(&db, "bob", "t").await));

    db.commit(grant("bob", table_read("t"), false)).await?;
    assert_eq!(query_as(&db, "bob", "t").await?, 2);
    let other_dir = tempfile::tempdir()?;
    let other = AedbInstance::open(AedbConfig::default(), other_dir.path())?;
    other.create_project("p").await?;
    other.commit(create_table("t")).await?;
    assert!(refused(&query_as(&other, "bob", "t").await));
    Ok(())
}
