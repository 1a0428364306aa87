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

/// A read-only open registers with the live writer (R1 of the durability review): the writer
/// checkpoints several times and rewrites every key meanwhile, reusing freed pages, yet none
/// the reader's checkpoint reaches, so the reader still reads exactly its version; once it is
/// gone, the writer reuses them.
#[test]
fn a_reader_beside_a_checkpointing_writer_reads_its_version() {
    use aedb::Engine;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        max_versions: 1,
        checkpoint_interval_ms: 0,
        ..AedbConfig::default()
    };
    let writer = Engine::open(config.clone(), tmp.path()).expect("writer");
    let write_all = |round: u8| {
        for chunk in 0..4u32 {
            writer
                .commit_blocking(CommitFinality::Durable, move |txn| {
                    for i in chunk * 500..(chunk + 1) * 500 {
                        txn.insert("kv", &i.to_be_bytes(), &[round; 200])?;
                    }
                    Ok(())
                })
                .expect("commit");
        }
    };
    write_all(1);
    writer.checkpoint_now().expect("checkpoint");
    let reader = Engine::open_read_only(config, tmp.path()).expect("reader");
    for round in 2..6 {
        write_all(round);
        let info = writer.checkpoint_now().expect("checkpoint");
        assert!(info.readers_oldest.is_some(), "the writer sees the reader");
    }
    assert_reader_sees_round(&reader, 1, 2000);
    assert!(reader.store().check().is_ok());
    drop(reader);
    let info = writer.checkpoint_now().expect("checkpoint");
    assert_eq!(
        info.readers_oldest, None,
        "the reader's registration ended with it"
    );
    writer.shutdown().expect("shutdown");
}

/// The writer restarts while a reader is registered: the new writer's loaded free list holds
/// pages the reader's older checkpoint reaches (the old writer kept them waiting for it), and
/// it must not reuse them either.
#[test]
fn a_reader_outliving_its_writer_is_still_honoured_by_the_next_writer() {
    use aedb::Engine;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        max_versions: 1,
        checkpoint_interval_ms: 0,
        ..AedbConfig::default()
    };
    let write_all = |writer: &Engine, round: u8| {
        writer
            .commit_blocking(CommitFinality::Durable, move |txn| {
                for i in 0..2000u32 {
                    txn.insert("kv", &i.to_be_bytes(), &[round; 200])?;
                }
                Ok(())
            })
            .expect("commit");
        writer.checkpoint_now().expect("checkpoint");
    };
    let first = Engine::open(config.clone(), tmp.path()).expect("writer");
    write_all(&first, 1);
    let reader = Engine::open_read_only(config.clone(), tmp.path()).expect("reader");
    for round in 2..4 {
        write_all(&first, round);
    }
    first.shutdown().expect("shutdown");
    let second = Engine::open(config, tmp.path()).expect("next writer");
    for round in 4..7 {
        write_all(&second, round);
    }
    assert_reader_sees_round(&reader, 1, 2000);
    drop(reader);
    second.shutdown().expect("shutdown");
}

/// While a reader keeps the log from being deleted, an idle writer does not checkpoint again
/// and again (the triggers look at what no checkpoint covers, not at the log's length).
#[test]
fn an_idle_writer_beside_a_reader_does_not_checkpoint_without_new_commits() {
    use aedb::Engine;
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        checkpoint_interval_ms: 10,
        checkpoint_wal_bytes: 1,
        ..AedbConfig::default()
    };
    let writer = Engine::open(config.clone(), tmp.path()).expect("writer");
    writer
        .commit_blocking(CommitFinality::Durable, |txn| {
            txn.insert("kv", b"k", b"v").map(|_| ())
        })
        .expect("commit");
    writer.checkpoint_now().expect("checkpoint");
    let _reader = Engine::open_read_only(config, tmp.path()).expect("reader");
    writer
        .commit_blocking(CommitFinality::Durable, |txn| {
            txn.insert("kv", b"k2", b"v").map(|_| ())
        })
        .expect("commit");
    // Long enough for dozens of interval and size triggers.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let generation = writer.store().durable_meta().generation;
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(
        writer.store().durable_meta().generation,
        generation,
        "checkpoints went on with nothing new to cover"
    );
    assert_eq!(writer.store().durable_meta().seq, writer.visible_head_seq());
}

/// Every row the reader reads is the one written in `round`, and there are `rows` of them: no
/// page of its version was reused under it.
fn assert_reader_sees_round(reader: &aedb::Engine, round: u8, rows: usize) {
    let tree = reader.snapshot().tree("kv").expect("lookup").expect("tree");
    let mut seen = 0;
    for entry in tree.range(
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        false,
    ) {
        let (_, value) = entry.expect("a page of the reader's version was reused");
        assert_eq!(
            value,
            vec![round; 200],
            "the reader sees another version's rows"
        );
        seen += 1;
    }
    assert_eq!(seen, rows);
}
