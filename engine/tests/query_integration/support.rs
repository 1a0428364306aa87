//! Helpers shared by the query_integration modules: the `people` table, its rows, open and reopen.

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::*;
use aedb::config::AedbConfig;
use aedb::query::plan::Query;
use aedb::query::QueryError;
use aedb::AedbInstance;

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(crate) fn column(name: &str, col_type: ColumnType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        col_type,
        nullable,
    }
}

pub(crate) fn people_table() -> Mutation {
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

pub(crate) fn person(id: i64, name: &str, age: Option<i64>) -> Row {
    Row::from_values(vec![
        Value::Integer(id),
        Value::Text(name.into()),
        age.map_or(Value::Null, Value::Integer),
        Value::Float(id as f64 / 2.0),
    ])
}

pub(crate) fn insert(id: i64, name: &str, age: Option<i64>) -> Mutation {
    Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        primary_key: vec![Value::Integer(id)],
        row: person(id, name, age),
    }
}

pub(crate) async fn open(dir: &std::path::Path) -> AedbInstance {
    AedbInstance::open(AedbConfig::default(), dir).expect("open")
}

pub(crate) async fn with_people(dir: &std::path::Path, count: i64) -> AedbInstance {
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

pub(crate) async fn reopen(db: AedbInstance, dir: &std::path::Path) -> AedbInstance {
    db.shutdown().await.expect("shutdown");
    open(dir).await
}

pub(crate) async fn ids(db: &AedbInstance, query: Query) -> Result<Vec<i64>, QueryError> {
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
