//! Read-only opening: sees everything durable (checkpoint and log), changes no byte on disk,
//! works beside a live writer, and refuses writes.

use std::collections::BTreeMap;
use std::path::Path;

use aedb::catalog::types::Value;
use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode;
use aedb::{AedbError, AedbInstance, CommitFinality};

fn file_hashes(dir: &Path) -> BTreeMap<String, (u64, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.insert(
                    path.display().to_string(),
                    (bytes.len() as u64, crc32(&bytes)),
                );
            }
        }
    }
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    // A small FNV-style digest is enough to notice any change.
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ *b as u32).wrapping_mul(0x0100_0193)
    })
}

#[tokio::test]
async fn read_only_sees_durable_state_and_changes_nothing() -> Result<(), Box<dyn std::error::Error>>
{
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let live = AedbInstance::open(AedbConfig::default(), dir)?;
    live.create_project("p").await?;
    for i in 0..50u32 {
        live.kv_set("p", "app", i.to_be_bytes().to_vec(), vec![1; 100])
            .await?;
    }
    live.checkpoint_now().await?;
    // These live only in the WAL (no checkpoint covers them).
    for i in 50..80u32 {
        live.commit_with_finality(
            aedb::commit::validation::Mutation::KvSet {
                project_id: "p".into(),
                scope_id: "app".into(),
                key: i.to_be_bytes().to_vec(),
                value: vec![2; 100],
            },
            CommitFinality::Durable,
        )
        .await?;
    }
    let before = file_hashes(dir);
    {
        let inspector = AedbInstance::open_read_only(AedbConfig::default(), dir)?;
        assert!(inspector.engine().is_read_only());
        let entries = inspector
            .kv_scan_prefix_no_auth("p", "app", b"", 1000, ConsistencyMode::AtLatest)
            .await?;
        assert_eq!(
            entries.len(),
            80,
            "checkpointed and logged commits are both visible"
        );
        assert!(matches!(
            inspector
                .kv_set("p", "app", b"x".to_vec(), b"y".to_vec())
                .await,
            Err(AedbError::ReadOnly)
        ));
        assert!(matches!(
            inspector.checkpoint_now().await,
            Err(AedbError::ReadOnly)
        ));
        assert!(inspector.engine().store().check().is_ok());
        let _ = Value::Null;
    }
    assert_eq!(
        file_hashes(dir),
        before,
        "a read-only open changed bytes on disk"
    );
    // The live writer is unaffected and goes on.
    live.kv_set("p", "app", b"after".to_vec(), b"v".to_vec())
        .await?;
    live.shutdown().await?;
    // A missing database is an error, not a new empty one.
    let empty = tempfile::tempdir()?;
    assert!(AedbInstance::open_read_only(AedbConfig::default(), empty.path()).is_err());
    assert!(
        std::fs::read_dir(empty.path())?.next().is_none(),
        "nothing was created"
    );
    Ok(())
}
