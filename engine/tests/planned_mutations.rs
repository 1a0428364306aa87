//! `DeleteWhere` and `UpdateWhere` find their rows through the query planner: a predicate on
//! the primary key or an index touches only the matching rows, so it works on a table larger
//! than `max_scan_rows`; a predicate no path covers is still held to the bound.

use aedb::catalog::expr::col;
use aedb::catalog::schema::{ColumnDef, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::Query;
use aedb::{AedbError, AedbInstance};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ROWS: i64 = 300;
const BOUND: u64 = 50;

async fn setup(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let config = AedbConfig {
        max_scan_rows: BOUND,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, dir)?;
    db.create_project("p").await?;
    let column = |name: &str| ColumnDef {
        name: name.into(),
        col_type: ColumnType::Integer,
        nullable: false,
    };
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![column("id"), column("grp"), column("v")],
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
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(40) {
        let rows = chunk
            .iter()
            .map(|id| {
                Row::from_values(vec![
                    Value::Integer(*id),
                    Value::Integer(id % 30),
                    Value::Integer(0),
                ])
            })
            .collect();
        db.commit(Mutation::InsertBatch {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "t".into(),
            rows,
        })
        .await?;
    }
    Ok(db)
}

async fn ids(db: &AedbInstance, query: Query) -> Result<Vec<i64>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    let result = db.query("p", "app", query).await?;
    for row in result.rows {
        if let Some(Value::Integer(id)) = row.values.first() {
            out.push(*id);
        }
    }
    Ok(out)
}

#[tokio::test]
async fn delete_where_on_the_primary_key_in_a_table_past_the_bound() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.commit(Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        predicate: col("id").eq(5i64),
        limit: None,
    })
    .await?;
    let left = ids(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(5i64)),
    )
    .await?;
    assert!(left.is_empty(), "row 5 must be gone");
    // A key range of 20 rows, also past the bound in table size.
    db.commit(Mutation::DeleteWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        predicate: col("id").gte(100i64).and(col("id").lt(120i64)),
        limit: None,
    })
    .await?;
    let around = ids(
        &db,
        Query::select(&["*"])
            .from("t")
            .where_(col("id").gte(98i64).and(col("id").lt(122i64))),
    )
    .await?;
    assert_eq!(around, vec![98, 99, 120, 121]);
    let kept = ids(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(6i64)),
    )
    .await?;
    assert_eq!(kept, vec![6], "a neighbour of the deleted key stays");
    Ok(())
}

#[tokio::test]
async fn update_where_on_an_index_touches_only_its_rows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    db.commit(Mutation::UpdateWhere {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        predicate: col("grp").eq(7i64),
        updates: vec![("v".into(), Value::Integer(1))],
        limit: None,
    })
    .await?;
    for (grp, want) in [(7i64, 1i64), (8, 0)] {
        let result = db
            .query(
                "p",
                "app",
                Query::select(&["*"]).from("t").where_(col("grp").eq(grp)),
            )
            .await?;
        assert_eq!(result.rows.len() as i64, ROWS / 30);
        for row in result.rows {
            assert_eq!(
                row.values.get(2),
                Some(&Value::Integer(want)),
                "group {grp}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_predicate_no_path_covers_is_held_to_the_bound() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path()).await?;
    let result = db
        .commit(Mutation::DeleteWhere {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "t".into(),
            predicate: col("v").eq(0i64),
            limit: None,
        })
        .await;
    assert!(
        matches!(&result, Err(AedbError::ScanBoundExceeded { .. })),
        "got {result:?}"
    );
    // Nothing was deleted.
    let kept = ids(
        &db,
        Query::select(&["*"]).from("t").where_(col("id").eq(0i64)),
    )
    .await?;
    assert_eq!(kept, vec![0]);
    Ok(())
}
