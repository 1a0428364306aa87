//! The README's other snippets, as written: the consistency-modes example and the low-latency
//! profile (the Quick Start runs verbatim as `examples/readme_quickstart.rs`).

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::AedbInstance;

async fn users_db(dir: &std::path::Path) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = AedbInstance::open(Default::default(), dir)?;
    db.create_project("demo").await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "demo".into(),
        scope_id: "app".into(),
        table_name: "users".into(),
        owner_id: None,
        columns: vec![
            ColumnDef {
                name: "id".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            },
            ColumnDef {
                name: "username".into(),
                col_type: ColumnType::Text,
                nullable: false,
            },
        ],
        primary_key: vec!["id".into()],
    }))
    .await?;
    db.commit(Mutation::Insert {
        project_id: "demo".into(),
        scope_id: "app".into(),
        table_name: "users".into(),
        primary_key: vec![Value::Integer(1)],
        row: Row::from_values(vec![Value::Integer(1), Value::Text("alice".into())]),
    })
    .await?;
    Ok(db)
}

#[tokio::test]
async fn consistency_modes_snippet_works_on_a_new_database(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = users_db(dir.path()).await?;

    // --- README, "Consistency modes", verbatim ---
    use aedb::query::plan::{ConsistencyMode, Query, QueryOptions};

    let result = db
        .query_with_options(
            "demo",
            "app",
            Query::select(&["*"]).from("users"),
            QueryOptions {
                consistency: ConsistencyMode::AtCheckpoint,
                ..QueryOptions::default()
            },
        )
        .await?;

    println!("snapshot seq = {}", result.snapshot_seq);
    // --- end of the snippet ---

    // No checkpoint yet beyond the one of creation: the table is empty there.
    assert_eq!(result.snapshot_seq, 0);
    assert!(result.rows.is_empty());
    // After a checkpoint the same query sees the row, and AtLatest sees it at once.
    db.checkpoint_now().await?;
    let at_checkpoint = db
        .query_with_options(
            "demo",
            "app",
            Query::select(&["*"]).from("users"),
            QueryOptions {
                consistency: ConsistencyMode::AtCheckpoint,
                ..QueryOptions::default()
            },
        )
        .await?;
    assert_eq!(at_checkpoint.rows.len(), 1);
    assert_eq!(at_checkpoint.snapshot_seq, db.engine().visible_head_seq());
    let latest = db
        .query("demo", "app", Query::select(&["*"]).from("users"))
        .await?;
    assert_eq!(
        latest.rows,
        vec![Row::from_values(vec![
            Value::Integer(1),
            Value::Text("alice".into())
        ])]
    );
    Ok(())
}

#[tokio::test]
async fn low_latency_snippet_opens_and_commits() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // --- README, "Low-latency profile example", verbatim ---
    use aedb::config::AedbConfig;

    let config = AedbConfig::low_latency([7u8; 32]);
    let db = aedb::AedbInstance::open(config, dir.path())?;
    // --- end of the snippet ---

    db.create_project("demo").await?;
    let visible = db
        .kv_set("demo", "app", b"k".to_vec(), b"v".to_vec())
        .await?;
    assert!(visible.durable_head_seq <= visible.commit_seq);
    let durable = db
        .commit_with_finality(
            Mutation::KvSet {
                project_id: "demo".into(),
                scope_id: "app".into(),
                key: b"k2".to_vec(),
                value: b"v2".to_vec(),
            },
            aedb::CommitFinality::Durable,
        )
        .await?;
    assert!(durable.durable_head_seq >= durable.commit_seq);
    Ok(())
}
