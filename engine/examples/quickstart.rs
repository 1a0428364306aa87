//! Open a database, write, query, reopen and query again.
//!
//! Run: `cargo run --release -p aedb --example quickstart [DATA_DIR]`

use std::path::PathBuf;

use aedb::catalog::expr::col;
use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::{Aggregate, Order, Query};
use aedb::{AedbInstance, CommitFinality};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let config = AedbConfig {
        buffer_pool_bytes: 16 << 20,
        ..AedbConfig::default()
    };

    let db = AedbInstance::open(config.clone(), &dir)?;
    println!("opened {} ({} I/O)", dir.display(), db.engine().backend());
    db.create_project("shop").await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateTableIfNotExists {
        project_id: "shop".into(),
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
                name: "name".into(),
                col_type: ColumnType::Text,
                nullable: false,
            },
            ColumnDef {
                name: "age".into(),
                col_type: ColumnType::Integer,
                nullable: true,
            },
        ],
        primary_key: vec!["id".into()],
    }))
    .await?;

    // 10,000 users in one atomic batch, acknowledged once the WAL has them on disk.
    let rows = (0..10_000i64)
        .map(|id| {
            Row::from_values(vec![
                Value::Integer(id),
                Value::Text(format!("user-{id:05}")),
                Value::Integer(18 + id % 60),
            ])
        })
        .collect();
    let batch = Mutation::UpsertBatch {
        project_id: "shop".into(),
        scope_id: "app".into(),
        table_name: "users".into(),
        rows,
    };
    let result = db
        .commit_with_finality(batch, CommitFinality::Durable)
        .await?;
    println!("commit {} is durable", result.commit_seq);
    db.kv_set("shop", "app", b"greeting".to_vec(), b"hello".to_vec())
        .await?;

    // Query: a point lookup, an ordered range, an aggregate.
    let one = db
        .query(
            "shop",
            "app",
            Query::select(&["name"])
                .from("users")
                .where_(col("id").eq(Value::Integer(42))),
        )
        .await?;
    println!("user 42 = {:?}", one.rows[0].values[0]);
    let oldest = db
        .query(
            "shop",
            "app",
            Query::select(&["id", "age"])
                .from("users")
                .where_(col("id").lt(Value::Integer(100)))
                .order_by("age", Order::Desc)
                .limit(3),
        )
        .await?;
    println!(
        "oldest of the first 100: {:?}",
        oldest
            .rows
            .iter()
            .map(|r| r.values.clone())
            .collect::<Vec<_>>()
    );
    let count = db
        .query(
            "shop",
            "app",
            Query::select(&["*"])
                .from("users")
                .aggregate(Aggregate::Count),
        )
        .await?;
    println!("users: {:?}", count.rows[0].values[0]);

    // Close (a checkpoint, then the lock is released) and reopen.
    db.shutdown().await?;
    let db = AedbInstance::open(config, &dir)?;
    let again = db
        .query(
            "shop",
            "app",
            Query::select(&["*"])
                .from("users")
                .aggregate(Aggregate::Count),
        )
        .await?;
    assert_eq!(again.rows[0].values[0], Value::Integer(10_000));
    let greeting = db
        .kv_get_no_auth("shop", "app", b"greeting", Default::default())
        .await?;
    assert_eq!(greeting.map(|e| e.value), Some(b"hello".to_vec()));
    let check = db.engine().store().check();
    println!(
        "reopened: 10000 users, greeting kept, invariant check {}",
        if check.is_ok() { "ok" } else { "FAILED" }
    );
    if !check.is_ok() {
        return Err(format!("invariant violations: {:?}", check.violations).into());
    }
    db.shutdown().await?;
    Ok(())
}
