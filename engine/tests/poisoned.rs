//! A transaction whose operation failed cannot publish, whatever its body returns: the commit
//! fails with that operation's error and nothing of the body is visible, now or after reopen.

use aedb::config::AedbConfig;
use aedb::{AedbError, CommitFinality, Engine};

fn value(engine: &Engine, key: &[u8]) -> Option<Vec<u8>> {
    engine.snapshot().get("kv", key).expect("read")
}

#[test]
fn a_body_that_swallows_a_failed_insert_commits_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(AedbConfig::default(), tmp.path()).expect("open");
    let huge_key = vec![7u8; 64 * 1024];
    let result = engine.commit_blocking(CommitFinality::Durable, move |txn| {
        txn.insert("kv", b"before", b"1")?;
        let failed = txn.insert("kv", &huge_key, b"x");
        assert!(failed.is_err(), "a 64 KiB key must be refused");
        // The body ignores the error and reports success.
        txn.insert("kv", b"after", b"2")?;
        Ok(())
    });
    match result {
        Err(AedbError::KeyTooLarge { len, .. }) => assert_eq!(len, 64 * 1024),
        other => panic!("expected the swallowed KeyTooLarge, got {other:?}"),
    }
    assert_eq!(value(&engine, b"before"), None);
    assert_eq!(value(&engine, b"after"), None);
    // The writer goes on: the next commit publishes normally.
    engine
        .commit_blocking(CommitFinality::Durable, |txn| {
            txn.insert("kv", b"next", b"3").map(|_| ())
        })
        .expect("a later commit");
    assert_eq!(value(&engine, b"next").as_deref(), Some(&b"3"[..]));
    engine.shutdown().expect("shutdown");
    let engine = Engine::open(AedbConfig::default(), tmp.path()).expect("reopen");
    assert_eq!(
        value(&engine, b"before"),
        None,
        "the log must not hold it either"
    );
    assert_eq!(value(&engine, b"next").as_deref(), Some(&b"3"[..]));
}

#[test]
fn a_body_that_swallows_an_oversize_transaction_commits_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        max_transaction_bytes: 4096,
        ..AedbConfig::default()
    };
    let engine = Engine::open(config, tmp.path()).expect("open");
    let result = engine.commit_blocking(CommitFinality::Visible, |txn| {
        let mut refused = 0;
        for i in 0..100u32 {
            if txn.insert("kv", &i.to_be_bytes(), &[0u8; 100]).is_err() {
                refused += 1;
            }
        }
        assert!(refused > 0, "the record must outgrow 4 KiB");
        Ok(())
    });
    assert!(
        matches!(result, Err(AedbError::TransactionTooLarge { .. })),
        "got {result:?}"
    );
    assert_eq!(value(&engine, &0u32.to_be_bytes()), None);
}
