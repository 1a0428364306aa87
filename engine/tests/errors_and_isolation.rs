//! Error kinds not provoked elsewhere, each asserting its variant and that nothing was
//! committed; and snapshot isolation at the API.

use std::sync::Arc;

use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode;
use aedb::{AedbError, AedbInstance};

#[tokio::test]
async fn oversize_value_and_transaction_and_full_queue() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        max_transaction_bytes: 64 << 10,
        max_inflight_commits: 2,
        ..AedbConfig::default()
    };
    let db = Arc::new(AedbInstance::open(config, dir.path())?);
    db.create_project("p").await?;
    let head = db.engine().visible_head_seq();
    let big_value = db
        .kv_set("p", "app", b"k".to_vec(), vec![0; (1 << 20) + 1])
        .await;
    assert!(
        matches!(big_value, Err(AedbError::ValueTooLarge { .. })),
        "{big_value:?}"
    );
    let many: Vec<Mutation> = (0..200u32)
        .map(|i| Mutation::KvSet {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: i.to_be_bytes().to_vec(),
            value: vec![1; 1000],
        })
        .collect();
    match db.commit_many_atomic(many).await {
        Err(err @ AedbError::TransactionTooLarge { .. }) => {
            assert_eq!(err.code_str(), "transaction_too_large")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        db.engine().visible_head_seq(),
        head,
        "nothing was committed"
    );
    // A queue of two: a burst from many tasks meets QueueFull (and the queue never grows).
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let db = Arc::clone(&db);
        tasks.push(tokio::spawn(async move {
            db.kv_set("p", "app", i.to_be_bytes().to_vec(), vec![2; 10])
                .await
        }));
    }
    let mut full = 0;
    let mut ok = 0;
    for task in tasks {
        match task.await? {
            Ok(_) => ok += 1,
            Err(err @ AedbError::QueueFull) => {
                assert_eq!(err.code_str(), "queue_full");
                full += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert!(ok > 0 && full > 0, "ok {ok}, queue full {full}");
    let stored = db
        .kv_scan_prefix_no_auth("p", "app", b"", 1000, ConsistencyMode::AtLatest)
        .await?;
    assert_eq!(stored.len(), ok, "exactly the accepted commits are there");
    Ok(())
}

#[tokio::test]
async fn a_pinned_read_sees_nothing_of_ten_thousand_later_commits(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        durability_mode: aedb::config::DurabilityMode::OsBuffered,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, dir.path())?;
    db.create_project("p").await?;
    db.kv_set("p", "app", b"counter".to_vec(), 0u64.to_be_bytes().to_vec())
        .await?;
    let pinned = db.begin_read_tx(ConsistencyMode::AtLatest).await?;
    let seq = pinned.snapshot_seq();
    for n in 1..=10_000u64 {
        db.kv_set("p", "app", b"counter".to_vec(), n.to_be_bytes().to_vec())
            .await?;
        if n % 1000 == 0 {
            db.kv_set("p", "app", n.to_be_bytes().to_vec(), b"x".to_vec())
                .await?;
        }
    }
    let entry = pinned
        .kv_get("p", "app", b"counter")
        .await?
        .expect("counter");
    assert_eq!(entry.value, 0u64.to_be_bytes().to_vec());
    assert_eq!(entry.version, seq);
    assert!(pinned
        .kv_get("p", "app", &1000u64.to_be_bytes())
        .await?
        .is_none());
    let latest = db
        .kv_get_no_auth("p", "app", b"counter", ConsistencyMode::AtLatest)
        .await?
        .expect("counter");
    assert_eq!(latest.value, 10_000u64.to_be_bytes().to_vec());
    Ok(())
}
