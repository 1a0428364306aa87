//! Index entries follow what rows read as: a `Default` added after an index, on a column added
//! after the rows were written, rebuilds the index, so queries and `DeleteWhere`/`UpdateWhere`
//! through the planner's index path find those rows. And a limited mutation on a popular index
//! value is not refused by the scan bound when its first rows are within reach in key order.
//! (Found by the adversarial review of the #11 restructure.)

use aedb::catalog::expr::col;
use aedb::catalog::schema::{ColumnDef, Constraint, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::Query;
use aedb::AedbInstance;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn column(name: &str, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        col_type: ColumnType::Integer,
        nullable,
    }
}

fn alter(alteration: TableAlteration) -> Mutation {
    Mutation::Ddl(DdlOperation::AlterTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        alteration,
    })
}

async fn rows_where(
    db: &AedbInstance,
    q: Query,
) -> Result<Vec<Vec<Value>>, Box<dyn std::error::Error>> {
    Ok(db
        .query("p", "app", q)
        .await?
        .rows
        .into_iter()
        .map(|r| r.values)
        .collect())
}

async fn setup(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = AedbInstance::open(AedbConfig::default(), dir)?;
    db.create_project("p").await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![column("id", false), column("a", false)],
        primary_key: vec!["id".into()],
    }))
    .await?;
    db.commit(Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        primary_key: vec![Value::Integer(1)],
        row: Row::from_values(vec![Value::Integer(1), Value::Integer(10)]),
    })
    .await?;
    // b added after the row: the row has no slot for it.
    db.commit(alter(TableAlteration::AddColumn(column("b", true))))
        .await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        index_name: "by_b".into(),
        if_not_exists: false,
        columns: vec!["b".into()],
        index_type: IndexType::BTree,
        partial_filter: None,
    }))
    .await?;
    // Now the row reads b = 7, but its index entry says b = Null.
    db.commit(alter(TableAlteration::AddConstraint(Constraint::Default {
        column: "b".into(),
        value: Value::Integer(7),
    })))
    .await?;
    Ok(db)
}

#[tokio::test]
async fn delete_where_on_a_defaulted_indexed_column() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let by_pk = rows_where(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(1i64)),
    )
    .await?;
    assert_eq!(
        by_pk,
        vec![vec![
            Value::Integer(1),
            Value::Integer(10),
            Value::Integer(7)
        ]],
        "the row reads b = 7"
    );
    let by_index = rows_where(
        &db,
        Query::select(&["*"]).from("t").where_(col("b").eq(7i64)),
    )
    .await?;
    assert_eq!(by_index, by_pk, "a query through the index finds it too");
    db.commit(Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        predicate: col("b").eq(7i64),
        limit: None,
    })
    .await?;
    let left = rows_where(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(1i64)),
    )
    .await?;
    assert!(
        left.is_empty(),
        "DeleteWhere b = 7 must delete the row that reads b = 7; still there: {left:?}"
    );
    Ok(())
}

#[tokio::test]
async fn update_where_on_a_defaulted_indexed_column() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.commit(Mutation::UpdateWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        predicate: col("b").eq(7i64),
        updates: vec![("a".into(), Value::Integer(99))],
        limit: None,
    })
    .await?;
    let after = rows_where(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(1i64)),
    )
    .await?;
    assert_eq!(
        after,
        vec![vec![
            Value::Integer(1),
            Value::Integer(99),
            Value::Integer(7)
        ]],
        "UpdateWhere b = 7 must update the row that reads b = 7"
    );
    Ok(())
}

/// A limited DeleteWhere whose first match is the table's first row: a scan stops there, the
/// index path collects every entry of the value first and is held to the bound by them.
#[tokio::test]
async fn delete_where_with_limit_on_a_popular_index_value() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        max_scan_rows: 50,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, dir.path())?;
    db.create_project("p").await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![column("id", false), column("grp", false)],
        primary_key: vec!["id".into()],
    }))
    .await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        index_name: "by_grp".into(),
        if_not_exists: false,
        columns: vec!["grp".into()],
        index_type: IndexType::BTree,
        partial_filter: None,
    }))
    .await?;
    let rows = (0..200i64)
        .map(|id| Row::from_values(vec![Value::Integer(id), Value::Integer(id % 2)]))
        .collect();
    db.commit(Mutation::InsertBatch {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        rows,
    })
    .await?;
    let result = db
        .commit(Mutation::DeleteWhere {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "t".into(),
            predicate: col("grp").eq(0i64),
            limit: Some(1),
        })
        .await;
    assert!(result.is_ok(), "limit 1, first row matches: {result:?}");
    let first = rows_where(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(0i64)),
    )
    .await?;
    assert!(
        first.is_empty(),
        "the first matching row in key order is deleted"
    );
    let next = rows_where(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(2i64)),
    )
    .await?;
    assert_eq!(next.len(), 1, "and only it");
    Ok(())
}
