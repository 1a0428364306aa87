//! Namespaces, DDL (create, alter, index, drop), row mutations and their errors, upserts, u256 increments.

use aedb::catalog::expr::col;
use aedb::catalog::schema::{Constraint, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::*;
use aedb::error::ResourceType;
use aedb::query::plan::Query;
use aedb::query::planner::Access;
use aedb::query::QueryError;
use aedb::{AedbError, PreflightResult};

use super::support::*;

#[tokio::test]
async fn namespaces() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await;
    db.create_project("demo").await?;
    assert!(
        db.scope_exists("demo", "app").await?,
        "create_project also creates scope app"
    );
    db.create_scope("demo", "app").await?; // a no-op, no error
    db.create_scope("demo", "extra").await?;
    match db.create_scope("nope", "s").await {
        Err(
            err @ AedbError::NotFound {
                resource_type: ResourceType::Project,
                ..
            },
        ) => assert_eq!(err.code_str(), "project_not_found"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        db.create_project("_system").await,
        Err(AedbError::Validation(_))
    ));
    assert!(matches!(
        db.create_project("bad name").await,
        Err(AedbError::Validation(_))
    ));
    assert!(matches!(
        db.create_project(&"x".repeat(129)).await,
        Err(AedbError::Validation(_))
    ));
    let db = reopen(db, dir.path()).await;
    assert_eq!(
        db.list_scopes("demo").await?,
        vec!["app".to_string(), "extra".to_string()]
    );
    assert_eq!(
        db.list_projects()
            .await?
            .iter()
            .map(|p| (p.project_id.clone(), p.scope_count))
            .collect::<Vec<_>>(),
        vec![("demo".to_string(), 2)]
    );
    db.drop_scope("demo", "extra").await?;
    assert!(!db.scope_exists("demo", "extra").await?);
    db.drop_project("demo").await?;
    assert!(!db.project_exists("demo").await?);
    let db = reopen(db, dir.path()).await;
    assert!(db.list_projects().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn ddl_create_alter_index_drop() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 5).await;
    assert!(matches!(
        db.commit(people_table()).await,
        Err(AedbError::AlreadyExists {
            resource_type: ResourceType::Table,
            ..
        })
    ));
    let again = db
        .commit_ddl(DdlOperation::CreateTableIfNotExists {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "people".into(),
            owner_id: None,
            columns: vec![column("id", ColumnType::Integer, false)],
            primary_key: vec!["id".into()],
        })
        .await?;
    assert!(!again.applied);
    let bad_pk = db
        .commit(Mutation::Ddl(DdlOperation::CreateTable {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "t2".into(),
            owner_id: None,
            columns: vec![column("a", ColumnType::Integer, false)],
            primary_key: vec!["b".into()],
        }))
        .await;
    assert!(matches!(bad_pk, Err(AedbError::Validation(_))));

    let alter = |alteration| {
        Mutation::Ddl(DdlOperation::AlterTable {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "people".into(),
            alteration,
        })
    };
    db.commit(alter(TableAlteration::AddColumn(column(
        "email",
        ColumnType::Text,
        true,
    ))))
    .await?;
    assert!(matches!(
        db.commit(alter(TableAlteration::AddColumn(column(
            "must",
            ColumnType::Text,
            false
        ))))
        .await,
        Err(AedbError::Validation(_))
    ));
    db.commit(alter(TableAlteration::AddConstraint(Constraint::Default {
        column: "email".into(),
        value: Value::Text("none".into()),
    })))
    .await?;
    db.commit(alter(TableAlteration::RenameColumn {
        from: "score".into(),
        to: "rating".into(),
    }))
    .await?;
    let old = db
        .query(
            "p",
            "app",
            Query::select(&["id", "email", "rating"])
                .from("people")
                .where_(col("id").eq(Value::Integer(1))),
        )
        .await?;
    assert_eq!(
        old.rows[0].values,
        vec![
            Value::Integer(1),
            Value::Text("none".into()),
            Value::Float(0.5)
        ],
        "rows written before AddColumn read its default"
    );
    db.commit(alter(TableAlteration::DropColumn {
        name: "rating".into(),
    }))
    .await?;
    assert!(matches!(
        db.query("p", "app", Query::select(&["rating"]).from("people"))
            .await,
        Err(QueryError::ColumnNotFound { .. })
    ));
    assert!(matches!(
        db.commit(alter(TableAlteration::DropColumn { name: "id".into() }))
            .await,
        Err(AedbError::Validation(_))
    ));

    let index = |name: &str, columns: &[&str], index_type| {
        Mutation::Ddl(DdlOperation::CreateIndex {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "people".into(),
            index_name: name.into(),
            if_not_exists: false,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            index_type,
            partial_filter: None,
        })
    };
    db.commit(index("by_age", &["age"], IndexType::BTree))
        .await?;
    db.commit(index("by_age_name", &["age", "name"], IndexType::BTree))
        .await?;
    db.commit(index("by_name", &["name"], IndexType::UniqueHash))
        .await?;
    assert!(matches!(
        db.commit(index("by_age", &["age"], IndexType::BTree)).await,
        Err(AedbError::AlreadyExists {
            resource_type: ResourceType::Index,
            ..
        })
    ));
    let row = |name: &str| Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(50)],
        row: Row::from_values(vec![
            Value::Integer(50),
            Value::Text(name.into()),
            Value::Integer(3),
            Value::Null,
        ]),
    };
    let dup = db.commit(row("n001")).await;
    assert!(
        matches!(dup, Err(AedbError::UniqueViolation { .. })),
        "{dup:?}"
    );
    db.commit(row("fresh")).await?;
    let db = reopen(db, dir.path()).await;
    let plan = db
        .explain_query(
            "p",
            "app",
            Query::select(&["*"])
                .from("people")
                .where_(col("age").eq(Value::Integer(3))),
        )
        .await?;
    assert!(
        matches!(plan.access, Access::IndexRange { ref index, .. } if index == "by_age"),
        "{plan:?}"
    );
    assert_eq!(
        ids(
            &db,
            Query::select(&["*"])
                .from("people")
                .where_(col("age").eq(Value::Integer(3)))
        )
        .await?,
        vec![3, 50]
    );
    assert_eq!(
        ids(
            &db,
            Query::select(&["*"])
                .from("people")
                .where_(col("name").eq(Value::Text("fresh".into())))
        )
        .await?,
        vec![50]
    );
    db.commit(Mutation::Ddl(DdlOperation::DropIndex {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        index_name: "by_age".into(),
        if_exists: false,
    }))
    .await?;
    assert!(!db.index_exists("p", "app", "people", "by_age").await?);
    db.commit(Mutation::Ddl(DdlOperation::DropTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        if_exists: false,
    }))
    .await?;
    let db = reopen(db, dir.path()).await;
    assert!(matches!(
        db.query("p", "app", Query::select(&["*"]).from("people"))
            .await,
        Err(QueryError::TableNotFound { .. })
    ));
    assert!(db.engine().store().check().is_ok());
    Ok(())
}

#[tokio::test]
async fn row_mutations_and_errors_commit_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 3).await;
    let head = db.engine().visible_head_seq();
    match db.commit(insert(1, "again", None)).await {
        Err(err @ AedbError::DuplicatePK { .. }) => {
            assert_eq!(err.code_str(), "duplicate_primary_key")
        }
        other => panic!("{other:?}"),
    }
    let mismatch = Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(9)],
        row: person(8, "x", None),
    };
    assert!(matches!(
        db.commit(mismatch).await,
        Err(AedbError::Validation(_))
    ));
    let wrong_type = Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(9)],
        row: Row::from_values(vec![
            Value::Integer(9),
            Value::Integer(5),
            Value::Null,
            Value::Null,
        ]),
    };
    assert!(matches!(
        db.commit(wrong_type).await,
        Err(AedbError::TypeMismatch { .. })
    ));
    let null = Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(9)],
        row: Row::from_values(vec![
            Value::Integer(9),
            Value::Null,
            Value::Null,
            Value::Null,
        ]),
    };
    assert!(matches!(
        db.commit(null).await,
        Err(AedbError::NotNullViolation { .. })
    ));
    let unknown = Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "ghosts".into(),
        primary_key: vec![Value::Integer(9)],
        row: person(9, "x", None),
    };
    assert!(matches!(
        db.commit(unknown).await,
        Err(AedbError::NotFound {
            resource_type: ResourceType::Table,
            ..
        })
    ));
    // A batch with a duplicate inside writes none of its rows.
    let batch = Mutation::InsertBatch {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        rows: vec![person(10, "a", None), person(10, "b", None)],
    };
    assert!(matches!(
        db.commit(batch).await,
        Err(AedbError::DuplicatePK { .. })
    ));
    // An envelope whose later mutation fails leaves no trace of the earlier ones.
    let atomic = db
        .commit_many_atomic(vec![insert(11, "ok", None), insert(1, "dup", None)])
        .await;
    assert!(atomic.is_err());
    assert_eq!(
        db.engine().visible_head_seq(),
        head,
        "failed commits consume no sequence and write nothing"
    );
    assert_eq!(
        ids(&db, Query::select(&["*"]).from("people")).await?,
        vec![1, 2, 3]
    );

    db.commit(Mutation::Upsert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(2)],
        row: person(2, "two", Some(22)),
    })
    .await?;
    db.commit(Mutation::UpsertBatch {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        rows: vec![person(4, "four", Some(4)), person(5, "five", None)],
    })
    .await?;
    db.commit(Mutation::Delete {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(3)],
    })
    .await?;
    db.commit(Mutation::Delete {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(99)],
    })
    .await?;
    db.commit(Mutation::UpdateWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        predicate: col("age").is_null(),
        updates: vec![("age".into(), Value::Integer(0))],
        limit: None,
    })
    .await?;
    db.commit(Mutation::UpdateWhereExpr {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        predicate: col("id").gte(Value::Integer(4)),
        updates: vec![("age".into(), TableUpdateExpr::AddI64(100))],
        limit: Some(1),
    })
    .await?;
    db.commit(Mutation::UpsertOnConflict {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        row: Row::from_values(vec![
            Value::Integer(1),
            Value::Text("merged".into()),
            Value::Null,
            Value::Null,
        ]),
        conflict_target: ConflictTarget::PrimaryKey,
        conflict_action: ConflictAction::DoMerge,
    })
    .await?;
    let deleted_where = Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        predicate: col("name").eq(Value::Text("five".into())),
        limit: Some(1),
    };
    assert!(matches!(
        db.preflight(deleted_where.clone()).await,
        PreflightResult::Ok { affected_rows: 1 }
    ));
    assert!(matches!(
        db.preflight(insert(1, "dup", None)).await,
        PreflightResult::Err { .. }
    ));
    db.commit(deleted_where).await?;
    let db = reopen(db, dir.path()).await;
    let rows = db
        .query(
            "p",
            "app",
            Query::select(&["id", "name", "age"]).from("people"),
        )
        .await?
        .rows;
    assert_eq!(
        rows,
        vec![
            Row::from_values(vec![
                Value::Integer(1),
                Value::Text("merged".into()),
                Value::Integer(1)
            ]),
            Row::from_values(vec![
                Value::Integer(2),
                Value::Text("two".into()),
                Value::Integer(22)
            ]),
            Row::from_values(vec![
                Value::Integer(4),
                Value::Text("four".into()),
                Value::Integer(104)
            ]),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn upsert_on_conflict_with_a_unique_index() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 3).await;
    db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        index_name: "by_name".into(),
        if_not_exists: false,
        columns: vec!["name".into()],
        index_type: IndexType::UniqueHash,
        partial_filter: None,
    }))
    .await?;
    let upsert =
        |row: Row, target: ConflictTarget, action: ConflictAction| Mutation::UpsertOnConflict {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "people".into(),
            row,
            conflict_target: target,
            conflict_action: action,
        };
    // Row 9 proposes the name of row 2: the conflict is on the index, row 2 is updated.
    db.commit(upsert(
        person(9, "n002", Some(70)),
        ConflictTarget::Index("by_name".into()),
        ConflictAction::DoUpdate(vec![("age".into(), Value::Integer(70))]),
    ))
    .await?;
    db.commit(upsert(
        person(8, "n003", Some(80)),
        ConflictTarget::Columns(vec!["name".into()]),
        ConflictAction::DoMerge,
    ))
    .await?;
    db.commit(upsert(
        person(7, "n001", Some(1)),
        ConflictTarget::Index("by_name".into()),
        ConflictAction::DoNothing,
    ))
    .await?;
    db.commit(upsert(
        person(6, "fresh", Some(6)),
        ConflictTarget::Index("by_name".into()),
        ConflictAction::DoNothing,
    ))
    .await?;
    let rows = db
        .query(
            "p",
            "app",
            Query::select(&["id", "name", "age"]).from("people"),
        )
        .await?
        .rows;
    let expect = |id: i64, name: &str, age: i64| {
        Row::from_values(vec![
            Value::Integer(id),
            Value::Text(name.into()),
            Value::Integer(age),
        ])
    };
    assert_eq!(
        rows,
        vec![
            expect(1, "n001", 1),
            expect(2, "n002", 70),
            expect(3, "n003", 80),
            expect(6, "fresh", 6)
        ]
    );
    assert!(matches!(
        db.commit(upsert(
            person(5, "x", None),
            ConflictTarget::Columns(vec!["age".into()]),
            ConflictAction::DoNothing
        ))
        .await,
        Err(AedbError::Validation(_))
    ));
    Ok(())
}

#[tokio::test]
async fn table_u256_increments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await;
    db.create_project("p").await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "wallets".into(),
        owner_id: None,
        columns: vec![
            column("id", ColumnType::Text, false),
            column("bal", ColumnType::U256, false),
        ],
        primary_key: vec!["id".into()],
    }))
    .await?;
    let mut ten = [0u8; 32];
    ten[31] = 10;
    db.commit(Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "wallets".into(),
        primary_key: vec![Value::Text("w".into())],
        row: Row::from_values(vec![Value::Text("w".into()), Value::U256(ten)]),
    })
    .await?;
    let mut eleven = [0u8; 32];
    eleven[31] = 11;
    let op = |inc: bool, amount: [u8; 32]| {
        let (project_id, scope_id, table_name, primary_key, column) = (
            "p".into(),
            "app".into(),
            "wallets".into(),
            vec![Value::Text("w".into())],
            "bal".into(),
        );
        if inc {
            Mutation::TableIncU256 {
                project_id,
                scope_id,
                table_name,
                primary_key,
                column,
                amount_be: amount,
            }
        } else {
            Mutation::TableDecU256 {
                project_id,
                scope_id,
                table_name,
                primary_key,
                column,
                amount_be: amount,
            }
        }
    };
    assert!(matches!(
        db.commit(op(false, eleven)).await,
        Err(AedbError::Underflow)
    ));
    db.commit(op(true, ten)).await?;
    db.commit(op(false, eleven)).await?;
    let rows = db
        .query("p", "app", Query::select(&["bal"]).from("wallets"))
        .await?
        .rows;
    let mut nine = [0u8; 32];
    nine[31] = 9;
    assert_eq!(rows[0].values, vec![Value::U256(nine)]);
    Ok(())
}
