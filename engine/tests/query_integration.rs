//! The API of the README, area by area, each checked again after a reopen.

use aedb::catalog::expr::col;
use aedb::catalog::schema::{ColumnDef, Constraint, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::*;
use aedb::config::AedbConfig;
use aedb::error::ResourceType;
use aedb::query::plan::{Aggregate, ConsistencyMode, Expr, Order, Query, QueryOptions};
use aedb::query::planner::Access;
use aedb::query::QueryError;
use aedb::{AedbError, AedbInstance, CallerContext, PreflightResult};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn column(name: &str, col_type: ColumnType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        col_type,
        nullable,
    }
}

fn people_table() -> Mutation {
    Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        owner_id: None,
        columns: vec![
            column("id", ColumnType::Integer, false),
            column("name", ColumnType::Text, false),
            column("age", ColumnType::Integer, true),
            column("score", ColumnType::Float, true),
        ],
        primary_key: vec!["id".into()],
    })
}

fn person(id: i64, name: &str, age: Option<i64>) -> Row {
    Row::from_values(vec![
        Value::Integer(id),
        Value::Text(name.into()),
        age.map_or(Value::Null, Value::Integer),
        Value::Float(id as f64 / 2.0),
    ])
}

fn insert(id: i64, name: &str, age: Option<i64>) -> Mutation {
    Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(id)],
        row: person(id, name, age),
    }
}

async fn open(dir: &std::path::Path) -> AedbInstance {
    AedbInstance::open(AedbConfig::default(), dir).expect("open")
}

async fn with_people(dir: &std::path::Path, count: i64) -> AedbInstance {
    let db = open(dir).await;
    db.create_project("p").await.expect("project");
    db.commit(people_table()).await.expect("table");
    let rows: Vec<Row> = (1..=count)
        .map(|i| person(i, &format!("n{i:03}"), Some(i % 10)))
        .collect();
    if !rows.is_empty() {
        db.commit(Mutation::InsertBatch {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "people".into(),
            rows,
        })
        .await
        .expect("batch");
    }
    db
}

async fn reopen(db: AedbInstance, dir: &std::path::Path) -> AedbInstance {
    db.shutdown().await.expect("shutdown");
    open(dir).await
}

async fn ids(db: &AedbInstance, query: Query) -> Result<Vec<i64>, QueryError> {
    let result = db.query("p", "app", query).await?;
    Ok(result
        .rows
        .iter()
        .map(|r| match r.values[0] {
            Value::Integer(i) => i,
            _ => -1,
        })
        .collect())
}

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
async fn every_expr_operator_ordering_and_aggregates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 30).await;
    let q = || Query::select(&["*"]).from("people");
    let int = Value::Integer;
    assert_eq!(ids(&db, q().where_(col("id").eq(int(7)))).await?, vec![7]);
    assert_eq!(
        ids(
            &db,
            q().where_(Expr::Ne("age".into(), int(0)))
                .where_(col("id").lt(int(4)))
        )
        .await?,
        vec![1, 2, 3]
    );
    assert_eq!(
        ids(&db, q().where_(col("id").lte(int(2)))).await?,
        vec![1, 2]
    );
    assert_eq!(
        ids(&db, q().where_(col("id").gt(int(28)))).await?,
        vec![29, 30]
    );
    assert_eq!(
        ids(&db, q().where_(col("id").gte(int(29)))).await?,
        vec![29, 30]
    );
    assert_eq!(
        ids(
            &db,
            q().where_(col("id").in_(vec![int(3), int(5), int(99)]))
        )
        .await?,
        vec![3, 5]
    );
    assert_eq!(
        ids(&db, q().where_(col("id").between(int(10), int(12)))).await?,
        vec![10, 11, 12]
    );
    assert_eq!(
        ids(&db, q().where_(col("age").is_null())).await?,
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&db, q().where_(col("age").is_not_null()).limit(2)).await?,
        vec![1, 2]
    );
    assert_eq!(
        ids(&db, q().where_(col("name").like("n02%"))).await?,
        vec![20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
    );
    assert_eq!(
        ids(
            &db,
            q().where_(col("age").eq(int(3)).and(col("id").gt(int(10))))
        )
        .await?,
        vec![13, 23]
    );
    assert_eq!(
        ids(
            &db,
            q().where_(col("id").eq(int(1)).or(col("id").eq(int(30))))
        )
        .await?,
        vec![1, 30]
    );
    assert_eq!(
        ids(&db, q().where_(col("id").gt(int(3)).not())).await?,
        vec![1, 2, 3]
    );
    // Numeric literals compare across kinds.
    assert_eq!(
        ids(&db, q().where_(col("score").gte(int(14)))).await?,
        vec![28, 29, 30]
    );
    assert!(matches!(
        ids(&db, q().where_(col("name").eq(int(1)))).await,
        Err(QueryError::TypeMismatch { .. })
    ));
    assert!(matches!(
        ids(&db, q().where_(col("nope").eq(int(1)))).await,
        Err(QueryError::ColumnNotFound { .. })
    ));
    let deep = (0..40).fold(col("id").eq(int(1)), |e, _| e.not());
    assert!(matches!(
        ids(&db, q().where_(deep)).await,
        Err(QueryError::InvalidQuery { .. })
    ));

    assert_eq!(
        ids(
            &db,
            q().order_by("age", Order::Desc)
                .order_by("id", Order::Asc)
                .limit(4)
        )
        .await?,
        vec![9, 19, 29, 8]
    );
    let explain = db
        .explain_query("p", "app", q().where_(col("id").eq(int(4))))
        .await?;
    assert!(matches!(explain.access, Access::PkPoint(_)));
    let explain = db
        .explain_query("p", "app", q().where_(col("id").gt(int(4))))
        .await?;
    assert!(matches!(explain.access, Access::PkRange { .. }));
    let explain = db
        .explain_query(
            "p",
            "app",
            q().where_(col("name").eq(Value::Text("x".into()))),
        )
        .await?;
    assert!(matches!(explain.access, Access::FullScan));

    let grouped = db
        .query(
            "p",
            "app",
            Query::select(&["*"])
                .from("people")
                .group_by(&["age"])
                .aggregate(Aggregate::Count)
                .aggregate(Aggregate::Sum("id".into()))
                .aggregate(Aggregate::Max("name".into()))
                .having(col("sum_id").gt(int(50)))
                .order_by("sum_id", Order::Desc),
        )
        .await?;
    assert_eq!(
        grouped.columns,
        vec!["age", "count_star", "sum_id", "max_name"]
    );
    assert_eq!(
        grouped.rows[0].values,
        vec![int(0), int(3), int(60), Value::Text("n030".into())]
    );
    // Age a holds ids a, a+10, a+20: sums 3a+30 (60 for age 0); over 50: ages 0, 9, 8, 7.
    let ages: Vec<Value> = grouped.rows.iter().map(|r| r.values[0].clone()).collect();
    assert_eq!(ages, vec![int(0), int(9), int(8), int(7)]);
    let avg = db
        .query(
            "p",
            "app",
            Query::select(&["*"])
                .from("people")
                .aggregate(Aggregate::Avg("id".into()))
                .aggregate(Aggregate::Min("id".into())),
        )
        .await?;
    assert_eq!(avg.rows[0].values, vec![Value::Float(15.5), int(1)]);
    Ok(())
}

#[tokio::test]
async fn pagination_returns_every_row_once_even_across_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 250).await;
    // The README's unbounded select: a first page of 100 with a cursor.
    let first = db
        .query("p", "app", Query::select(&["*"]).from("people"))
        .await?;
    assert_eq!(first.rows.len(), 100);
    assert!(first.truncated && first.cursor.is_some());
    let mut seen: Vec<i64> = first
        .rows
        .iter()
        .map(|r| {
            if let Value::Integer(i) = r.values[0] {
                i
            } else {
                -1
            }
        })
        .collect();
    let db = reopen(db, dir.path()).await;
    let mut cursor = first.cursor;
    while let Some(c) = cursor {
        let page = db
            .query_with_options(
                "p",
                "app",
                Query::select(&["*"]).from("people"),
                QueryOptions {
                    cursor: Some(c),
                    ..QueryOptions::default()
                },
            )
            .await?;
        seen.extend(page.rows.iter().map(|r| {
            if let Value::Integer(i) = r.values[0] {
                i
            } else {
                -1
            }
        }));
        cursor = page.cursor;
    }
    assert_eq!(seen, (1..=250).collect::<Vec<_>>());
    // A tampered cursor is refused.
    let page = db
        .query("p", "app", Query::select(&["*"]).from("people").limit(10))
        .await?;
    let mut forged = page.cursor.expect("cursor");
    forged.replace_range(4..6, if &forged[4..6] == "00" { "01" } else { "00" });
    let err = db
        .query_with_options(
            "p",
            "app",
            Query::select(&["*"]).from("people"),
            QueryOptions {
                cursor: Some(forged),
                ..QueryOptions::default()
            },
        )
        .await;
    assert!(matches!(err, Err(QueryError::InvalidQuery { .. })));
    // Sorted pages continue in sort order.
    let mut sorted = Vec::new();
    let mut options = QueryOptions::default();
    loop {
        let page = db
            .query_with_options(
                "p",
                "app",
                Query::select(&["id"])
                    .from("people")
                    .order_by("age", Order::Asc)
                    .limit(40),
                options.clone(),
            )
            .await?;
        sorted.extend(page.rows.iter().map(|r| {
            if let Value::Integer(i) = r.values[0] {
                i
            } else {
                -1
            }
        }));
        match page.cursor {
            Some(c) => options.cursor = Some(c),
            None => break,
        }
    }
    let mut expected: Vec<i64> = (1..=250).collect();
    expected.sort_by_key(|i| (i % 10, *i));
    assert_eq!(sorted, expected);
    Ok(())
}

#[tokio::test]
async fn consistency_modes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        max_versions: 8,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, dir.path())?;
    db.create_project("p").await?;
    db.commit(people_table()).await?;
    let before = db.commit(insert(1, "one", None)).await?.commit_seq;
    db.commit(insert(2, "two", None)).await?;
    let at = |seq| QueryOptions {
        consistency: ConsistencyMode::AtSeq(seq),
        ..QueryOptions::default()
    };
    let old = db
        .query_with_options("p", "app", Query::select(&["*"]).from("people"), at(before))
        .await?;
    assert_eq!(old.rows.len(), 1);
    assert_eq!(old.snapshot_seq, before);
    assert!(matches!(
        db.query_with_options("p", "app", Query::select(&["*"]).from("people"), at(1000))
            .await,
        Err(QueryError::SeqNotYetVisible {
            requested: 1000,
            ..
        })
    ));
    for i in 3..20 {
        db.commit(insert(i, "more", None)).await?;
    }
    match db
        .query_with_options("p", "app", Query::select(&["*"]).from("people"), at(before))
        .await
    {
        Err(QueryError::SeqGarbageCollected {
            requested,
            oldest_available,
        }) => {
            assert_eq!(requested, before);
            assert!(oldest_available > before);
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn kv_operations() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path()).await;
    db.create_project("p").await?;
    let caller = CallerContext::new("reader");
    let latest = ConsistencyMode::AtLatest;
    let first = db.kv_set("p", "app", b"a".to_vec(), b"1".to_vec()).await?;
    let second = db.kv_set("p", "app", b"a".to_vec(), b"2".to_vec()).await?;
    // A caller's read needs a KvRead grant, also on an instance opened with `open`.
    assert!(matches!(
        db.kv_get("p", "app", b"a", latest, &caller).await,
        Err(QueryError::PermissionDenied { .. })
    ));
    db.commit_ddl(DdlOperation::GrantPermission {
        caller_id: "reader".into(),
        permission: aedb::permission::Permission::KvRead {
            project_id: "p".into(),
            scope_id: None,
            prefix: None,
        },
        actor_id: None,
        delegable: false,
    })
    .await?;
    let entry = db
        .kv_get("p", "app", b"a", latest, &caller)
        .await?
        .expect("entry");
    assert_eq!(
        (entry.value.as_slice(), entry.version, entry.created_at),
        (&b"2"[..], second.commit_seq, first.commit_seq)
    );
    assert!(matches!(
        db.kv_set("p", "nope", b"k".to_vec(), b"v".to_vec()).await,
        Err(AedbError::NotFound {
            resource_type: ResourceType::Scope,
            ..
        })
    ));
    assert!(matches!(
        db.kv_set("p", "app", vec![0; 2000], b"v".to_vec()).await,
        Err(AedbError::KeyTooLarge { .. })
    ));
    for i in 0..25u8 {
        db.kv_set("p", "app", vec![b'x', i], vec![i]).await?;
    }
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .kv_scan_prefix("p", "app", b"x", 10, cursor, latest, &caller)
            .await?;
        keys.extend(page.entries.iter().map(|(k, _)| k[1]));
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(keys, (0..25).collect::<Vec<u8>>());
    let range = db
        .kv_scan_range(
            "p",
            "app",
            std::ops::Bound::Included(vec![b'x', 5]),
            std::ops::Bound::Excluded(vec![b'x', 8]),
            100,
            None,
            latest,
            &caller,
        )
        .await?;
    assert_eq!(range.entries.len(), 3);
    db.kv_del("p", "app", b"a".to_vec()).await?;
    assert!(db.kv_get_no_auth("p", "app", b"a", latest).await?.is_none());

    let u256 = |v: u64| {
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&v.to_be_bytes());
        out
    };
    let kv = |m: fn(Vec<u8>, [u8; 32]) -> Mutation, v| m(b"bal".to_vec(), u256(v));
    fn inc(key: Vec<u8>, amount_be: [u8; 32]) -> Mutation {
        Mutation::KvIncU256 {
            project_id: "p".into(),
            scope_id: "app".into(),
            key,
            amount_be,
        }
    }
    fn dec(key: Vec<u8>, amount_be: [u8; 32]) -> Mutation {
        Mutation::KvDecU256 {
            project_id: "p".into(),
            scope_id: "app".into(),
            key,
            amount_be,
        }
    }
    assert!(matches!(
        db.commit(kv(dec, 1)).await,
        Err(AedbError::Underflow)
    ));
    db.commit(kv(inc, 10)).await?;
    db.commit(kv(dec, 3)).await?;
    assert!(matches!(
        db.commit(Mutation::KvAddU256Ex {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"bal".to_vec(),
            amount_be: [0xff; 32],
            on_missing: KvU256MissingPolicy::Reject,
            on_overflow: KvU256OverflowPolicy::Reject
        })
        .await,
        Err(AedbError::Overflow)
    ));
    db.commit(Mutation::KvSubU256Ex {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"bal".to_vec(),
        amount_be: u256(100),
        on_missing: KvU256MissingPolicy::Reject,
        on_underflow: KvU256UnderflowPolicy::NoOp,
    })
    .await?;
    assert!(matches!(
        db.commit(Mutation::KvSubU256Ex {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"missing".to_vec(),
            amount_be: u256(1),
            on_missing: KvU256MissingPolicy::Reject,
            on_underflow: KvU256UnderflowPolicy::NoOp
        })
        .await,
        Err(AedbError::Validation(_))
    ));
    db.commit(Mutation::KvMaxU256 {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"bal".to_vec(),
        candidate_be: u256(5),
        on_missing: KvU256MissingPolicy::TreatAsZero,
    })
    .await?;
    assert_eq!(
        db.kv_get_no_auth("p", "app", b"bal", latest)
            .await?
            .expect("bal")
            .value,
        u256(7).to_vec()
    );
    let version = db
        .kv_get_no_auth("p", "app", b"bal", latest)
        .await?
        .expect("bal")
        .version;
    assert!(matches!(
        db.commit(Mutation::KvMutateU256 {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"bal".to_vec(),
            op: KvU256MutatorOp::Set,
            operand_be: u256(1),
            expected_seq: Some(version + 1)
        })
        .await,
        Err(AedbError::AssertionFailed { .. })
    ));
    db.commit(Mutation::KvMutateU256 {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"bal".to_vec(),
        op: KvU256MutatorOp::Add,
        operand_be: u256(1),
        expected_seq: Some(version),
    })
    .await?;

    db.commit(Mutation::KvAddU64Ex {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"n".to_vec(),
        amount_be: u64::MAX.to_be_bytes(),
        on_missing: KvU64MissingPolicy::TreatAsZero,
        on_overflow: KvU64OverflowPolicy::Reject,
    })
    .await?;
    db.commit(Mutation::KvAddU64Ex {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"n".to_vec(),
        amount_be: 5u64.to_be_bytes(),
        on_missing: KvU64MissingPolicy::TreatAsZero,
        on_overflow: KvU64OverflowPolicy::Saturate,
    })
    .await?;
    db.commit(Mutation::KvSubIntEx {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"n".to_vec(),
        amount: KvIntegerAmount::U64(1u64.to_be_bytes()),
        on_missing: KvIntegerMissingPolicy::Reject,
        on_underflow: KvIntegerUnderflowPolicy::Reject,
    })
    .await?;
    assert_eq!(
        db.kv_get_no_auth("p", "app", b"n", latest)
            .await?
            .expect("n")
            .value,
        (u64::MAX - 1).to_be_bytes().to_vec()
    );
    for hint in 0..10u32 {
        db.counter_add_sharded("p", "app", b"hits".to_vec(), 2u64.to_be_bytes(), 4, hint)
            .await?;
    }
    let db = reopen(db, dir.path()).await;
    assert_eq!(
        db.counter_read_sharded("p", "app", b"hits", 4, latest)
            .await?,
        20
    );
    assert_eq!(
        db.kv_get_no_auth("p", "app", b"bal", latest)
            .await?
            .expect("bal")
            .value,
        u256(8).to_vec()
    );
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

#[tokio::test]
async fn envelopes_assertions_and_idempotency() -> TestResult {
    use aedb::commit::envelope::CompareOp;
    use aedb::commit::{
        ActionCommitOutcome, ActionEnvelopeRequest, IdempotencyKey, IdempotencyOutcome,
        ReadAssertion, TransactionEnvelope, WriteClass, WriteIntent,
    };
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 3).await;
    db.kv_set("p", "app", b"flag".to_vec(), b"on".to_vec())
        .await?;
    let head = db.engine().visible_head_seq();
    let guarded = |expected: &[u8], key: u8| TransactionEnvelope {
        idempotency_key: Some(IdempotencyKey([key; 16])),
        assertions: vec![
            ReadAssertion::KeyEquals {
                project_id: "p".into(),
                scope_id: "app".into(),
                key: b"flag".to_vec(),
                expected: expected.to_vec(),
            },
            ReadAssertion::RowColumnCompare {
                project_id: "p".into(),
                scope_id: "app".into(),
                table_name: "people".into(),
                primary_key: vec![Value::Integer(2)],
                column: "age".into(),
                op: CompareOp::Gte,
                threshold: Value::Integer(1),
            },
        ],
        write_intent: WriteIntent {
            mutations: vec![insert(10, "ten", None), insert(11, "eleven", None)],
        },
        ..TransactionEnvelope::default()
    };
    match db.commit_envelope(guarded(b"off", 1)).await {
        Err(err @ AedbError::AssertionFailed { index: 0, .. }) => {
            assert_eq!(err.code_str(), "assertion_failed")
        }
        other => panic!("{other:?}"),
    }
    // The failed commit wrote nothing; one commit after it records the failure in
    // _system.app.assertion_audit.
    assert_eq!(
        db.engine().visible_head_seq(),
        head + 1,
        "a failed assertion writes only its audit row"
    );
    let audit = db
        .query(
            "_system",
            "app",
            Query::select(&["*"]).from("assertion_audit"),
        )
        .await?;
    assert_eq!(audit.rows.len(), 1);
    let first = db.commit_envelope(guarded(b"on", 2)).await?;
    assert_eq!(first.idempotency, IdempotencyOutcome::Applied);
    assert_eq!(
        ids(&db, Query::select(&["*"]).from("people")).await?,
        vec![1, 2, 3, 10, 11]
    );
    let replay = db.commit_envelope(guarded(b"on", 2)).await?;
    assert_eq!(
        (
            replay.idempotency,
            replay.commit_seq,
            replay.canonical_commit_seq
        ),
        (
            IdempotencyOutcome::Duplicate,
            first.commit_seq,
            first.commit_seq
        )
    );
    assert_eq!(
        db.engine().visible_head_seq(),
        first.commit_seq,
        "a duplicate consumes no sequence"
    );
    let mut changed = guarded(b"on", 2);
    changed.write_intent.mutations.pop();
    assert!(matches!(
        db.commit_envelope(changed).await,
        Err(AedbError::Validation(_))
    ));
    let count_guard = TransactionEnvelope {
        assertions: vec![ReadAssertion::Not(Box::new(ReadAssertion::CountCompare {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "people".into(),
            filter: Some(col("id").gt(Value::Integer(5))),
            op: CompareOp::Eq,
            threshold: 2,
        }))],
        write_intent: WriteIntent {
            mutations: vec![insert(12, "twelve", None)],
        },
        ..TransactionEnvelope::default()
    };
    assert!(matches!(
        db.commit_envelope(count_guard).await,
        Err(AedbError::AssertionFailed { .. })
    ));
    assert!(matches!(
        db.commit_envelope(TransactionEnvelope::default()).await,
        Err(AedbError::Validation(_))
    ));
    let action = |n: i64| ActionEnvelopeRequest {
        caller: None,
        idempotency_key: IdempotencyKey([9; 16]),
        write_class: WriteClass::Economic,
        base_seq: 0,
        assertions: vec![],
        mutations: vec![insert(n, "action", None)],
    };
    let applied = db.commit_action_envelope(action(20)).await?;
    assert_eq!(applied.outcome, ActionCommitOutcome::Applied);
    assert!(
        applied.durable_head_seq >= applied.commit_seq,
        "Economic commits are durable"
    );
    let db = reopen(db, dir.path()).await;
    let again = db.commit_action_envelope(action(20)).await?;
    assert_eq!(
        (again.outcome, again.commit_seq),
        (ActionCommitOutcome::Duplicate, applied.commit_seq),
        "idempotency survives a restart"
    );
    Ok(())
}

#[tokio::test]
async fn inner_and_left_joins() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 4).await;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "orders".into(),
        owner_id: None,
        columns: vec![
            column("oid", ColumnType::Integer, false),
            column("person", ColumnType::Integer, false),
            column("total", ColumnType::Integer, false),
        ],
        primary_key: vec!["oid".into()],
    }))
    .await?;
    let order = |oid: i64, person: i64, total: i64| {
        Row::from_values(vec![
            Value::Integer(oid),
            Value::Integer(person),
            Value::Integer(total),
        ])
    };
    db.commit(Mutation::InsertBatch {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "orders".into(),
        rows: vec![order(100, 1, 5), order(101, 1, 7), order(102, 3, 9)],
    })
    .await?;
    let inner = db
        .query(
            "p",
            "app",
            Query::select(&["people.name", "o.total"])
                .from("people")
                .inner_join("orders", "people.id", "person")
                .with_last_join_alias("o")
                .order_by("o.total", Order::Desc),
        )
        .await?;
    assert_eq!(
        inner.rows,
        vec![
            Row::from_values(vec![Value::Text("n003".into()), Value::Integer(9)]),
            Row::from_values(vec![Value::Text("n001".into()), Value::Integer(7)]),
            Row::from_values(vec![Value::Text("n001".into()), Value::Integer(5)]),
        ]
    );
    let left = db
        .query(
            "p",
            "app",
            Query::select(&["people.id", "orders.oid"])
                .from("people")
                .left_join("orders", "people.id", "orders.person")
                .where_(col("orders.oid").is_null()),
        )
        .await?;
    assert_eq!(
        left.rows,
        vec![
            Row::from_values(vec![Value::Integer(2), Value::Null]),
            Row::from_values(vec![Value::Integer(4), Value::Null])
        ]
    );
    let totals = db
        .query(
            "p",
            "app",
            Query::select(&["*"])
                .from("people")
                .inner_join("orders", "people.id", "person")
                .group_by(&["people.name"])
                .aggregate(Aggregate::Sum("orders.total".into())),
        )
        .await?;
    assert_eq!(
        totals.rows,
        vec![
            Row::from_values(vec![Value::Text("n001".into()), Value::Integer(12)]),
            Row::from_values(vec![Value::Text("n003".into()), Value::Integer(9)])
        ]
    );
    assert!(matches!(
        db.query(
            "p",
            "app",
            Query::select(&["*"])
                .from("people")
                .inner_join("orders", "people.nope", "person")
        )
        .await,
        Err(QueryError::ColumnNotFound { .. })
    ));
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
async fn preflight_plan_lists_touched_keys_and_commits_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 2).await;
    let head = db.engine().visible_head_seq();
    let plan = db.preflight_plan(insert(5, "five", None)).await;
    assert!(plan.valid, "{plan:?}");
    assert_eq!(plan.estimated_affected_rows, 1);
    assert_eq!(plan.base_seq, head);
    assert_eq!(plan.touched_keys.len(), 1);
    assert_eq!(
        plan.touched_keys[0].1,
        aedb::encode_primary_key(&[Value::Integer(5)])
    );
    let invalid = db.preflight_plan(insert(1, "dup", None)).await;
    assert!(
        !invalid.valid && invalid.errors[0].contains("duplicate"),
        "{invalid:?}"
    );
    assert_eq!(db.engine().visible_head_seq(), head);
    assert_eq!(
        ids(&db, Query::select(&["*"]).from("people")).await?,
        vec![1, 2]
    );
    Ok(())
}

#[tokio::test]
async fn introspection_counts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = with_people(dir.path(), 7).await;
    db.kv_set("p", "app", b"k".to_vec(), b"v".to_vec()).await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        index_name: "by_age".into(),
        if_not_exists: false,
        columns: vec!["age".into()],
        index_type: IndexType::BTree,
        partial_filter: None,
    }))
    .await?;
    let tables = db.list_tables_info("p", "app").await?;
    assert_eq!(
        (
            tables[0].table_name.as_str(),
            tables[0].column_count,
            tables[0].index_count,
            tables[0].row_count
        ),
        ("people", 4, 1, 7)
    );
    let scopes = db.list_scopes_info("p").await?;
    assert_eq!(
        (
            scopes[0].scope_id.as_str(),
            scopes[0].table_count,
            scopes[0].kv_key_count
        ),
        ("app", 1, 1)
    );
    assert_eq!(
        db.describe_index("p", "app", "people", "by_age")
            .await?
            .columns,
        vec!["age".to_string()]
    );
    assert!(matches!(
        db.describe_index("p", "app", "people", "nope").await,
        Err(AedbError::NotFound {
            resource_type: ResourceType::Index,
            ..
        })
    ));
    assert_eq!(db.list_indexes("p", "app", "people").await?.len(), 1);
    Ok(())
}
