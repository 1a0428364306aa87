//! Idempotency records answer replays within their window, then expire and are pruned, so the
//! records kept stay bounded.

use aedb::commit::validation::Mutation;
use aedb::commit::{IdempotencyKey, IdempotencyOutcome, TransactionEnvelope, WriteIntent};
use aedb::config::AedbConfig;
use aedb::AedbInstance;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn kv_set(key: &str, value: &[u8]) -> Mutation {
    Mutation::KvSet {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
    }
}

fn keyed(key: u8, value: &[u8]) -> TransactionEnvelope {
    TransactionEnvelope {
        idempotency_key: Some(IdempotencyKey([key; 16])),
        write_intent: WriteIntent {
            mutations: vec![kv_set("k", value)],
        },
        ..TransactionEnvelope::default()
    }
}

async fn open(
    dir: &std::path::Path,
    commits: u64,
    seconds: u64,
) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let config = AedbConfig {
        idempotency_window_commits: commits,
        idempotency_window_seconds: seconds,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, dir)?;
    db.create_project("p").await?;
    Ok(db)
}

fn records(db: &AedbInstance, tree: &str) -> Result<u64, Box<dyn std::error::Error>> {
    Ok(db.engine().snapshot().tree(tree)?.map_or(0, |t| t.len()))
}

#[tokio::test]
async fn a_record_answers_within_its_commit_window_then_expires() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path(), 3, 300).await?;
    let first = db.commit_envelope(keyed(1, b"a")).await?;
    db.commit(kv_set("other", b"x")).await?;
    let replay = db.commit_envelope(keyed(1, b"a")).await?;
    assert_eq!(replay.idempotency, IdempotencyOutcome::Duplicate);
    assert_eq!(replay.commit_seq, first.commit_seq);
    // Reusing the key for another request inside the window is refused.
    assert!(db.commit_envelope(keyed(1, b"b")).await.is_err());
    for _ in 0..3 {
        db.commit(kv_set("other", b"x")).await?;
    }
    // More than 3 commits later the key is free: a different request applies.
    let later = db.commit_envelope(keyed(1, b"b")).await?;
    assert_eq!(later.idempotency, IdempotencyOutcome::Applied);
    assert!(later.commit_seq > first.commit_seq);
    // And the new record answers replays again, also after a reopen.
    db.shutdown().await?;
    let db = open(dir.path(), 3, 300).await?;
    let replay = db.commit_envelope(keyed(1, b"b")).await?;
    assert_eq!(replay.idempotency, IdempotencyOutcome::Duplicate);
    assert_eq!(replay.commit_seq, later.commit_seq);
    Ok(())
}

#[tokio::test]
async fn expired_records_are_pruned_so_the_table_stays_bounded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path(), 10, 300).await?;
    for key in 0..200u8 {
        db.commit_envelope(keyed(key, &[key])).await?;
    }
    let kept = records(&db, aedb::commit::envelope::IDEMPOTENCY_TREE)?;
    assert!(kept <= 12, "{kept} records kept for a window of 10 commits");
    assert_eq!(
        kept,
        records(&db, aedb::commit::envelope::IDEMPOTENCY_BY_SEQ_TREE)?,
        "one age entry per record"
    );
    // The newest still answer.
    let replay = db.commit_envelope(keyed(199, &[199])).await?;
    assert_eq!(replay.idempotency, IdempotencyOutcome::Duplicate);
    Ok(())
}

#[tokio::test]
async fn both_windows_zero_keeps_no_record() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path(), 0, 0).await?;
    let first = db.commit_envelope(keyed(7, b"a")).await?;
    let second = db.commit_envelope(keyed(7, b"a")).await?;
    assert_eq!(second.idempotency, IdempotencyOutcome::Applied);
    assert!(second.commit_seq > first.commit_seq);
    assert_eq!(records(&db, aedb::commit::envelope::IDEMPOTENCY_TREE)?, 0);
    Ok(())
}

#[tokio::test]
async fn a_record_expires_after_its_seconds_window() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path(), 100_000, 1).await?;
    let first = db.commit_envelope(keyed(3, b"a")).await?;
    assert_eq!(
        db.commit_envelope(keyed(3, b"a")).await?.idempotency,
        IdempotencyOutcome::Duplicate
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let later = db.commit_envelope(keyed(3, b"a")).await?;
    assert_eq!(later.idempotency, IdempotencyOutcome::Applied);
    assert!(later.commit_seq > first.commit_seq);
    Ok(())
}

#[tokio::test]
async fn a_record_of_the_first_layout_reads_as_expired() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(dir.path(), 100_000, 300).await?;
    // A 40-byte record (sequence ‖ fingerprint, no time), as the first layout stored it, for
    // an anonymous caller's key [9; 16].
    let mut record_key = vec![0u8];
    record_key.extend_from_slice(&[9u8; 16]);
    db.engine()
        .commit(aedb::CommitFinality::Visible, move |txn| {
            let mut old = 1u64.to_le_bytes().to_vec();
            old.extend_from_slice(&[0u8; 32]);
            txn.insert(aedb::commit::envelope::IDEMPOTENCY_TREE, &record_key, &old)
        })
        .await?;
    let applied = db.commit_envelope(keyed(9, b"a")).await?;
    assert_eq!(applied.idempotency, IdempotencyOutcome::Applied);
    let replay = db.commit_envelope(keyed(9, b"a")).await?;
    assert_eq!(replay.idempotency, IdempotencyOutcome::Duplicate);
    assert_eq!(replay.commit_seq, applied.commit_seq);
    Ok(())
}
