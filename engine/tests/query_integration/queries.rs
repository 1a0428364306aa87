//! Expressions, ordering and aggregates, pagination with cursors, consistency modes, joins, introspection.

use aedb::catalog::expr::col;
use aedb::catalog::schema::IndexType;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::*;
use aedb::config::AedbConfig;
use aedb::error::ResourceType;
use aedb::query::plan::{Aggregate, ConsistencyMode, Expr, Order, Query, QueryOptions};
use aedb::query::planner::Access;
use aedb::query::QueryError;
use aedb::{AedbError, AedbInstance};

use super::support::*;

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
