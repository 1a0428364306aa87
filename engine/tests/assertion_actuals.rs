//! A failed read assertion reports, typed, which assertion failed and what it found
//! (`AedbError::AssertionFailed { index, assertion, actual }`), as the original does.

use aedb::commit::envelope::CompareOp;
use aedb::commit::tx::{AssertionActual, ReadAssertion, TransactionEnvelope, WriteIntent};
use aedb::commit::validation::{KvU256MutatorOp, Mutation};
use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode;
use aedb::{AedbError, AedbInstance};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn key_exists(key: &[u8], expected: bool) -> ReadAssertion {
    ReadAssertion::KeyExists {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: key.to_vec(),
        expected,
    }
}

fn set(key: &[u8], value: &[u8]) -> Mutation {
    Mutation::KvSet {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

/// Commit `assertions` guarding one write; the failure's index, assertion and actual.
async fn failure(
    db: &AedbInstance,
    assertions: Vec<ReadAssertion>,
) -> Result<(usize, ReadAssertion, AssertionActual), Box<dyn std::error::Error>> {
    let envelope = TransactionEnvelope {
        assertions,
        write_intent: WriteIntent {
            mutations: vec![set(b"guarded", b"x")],
        },
        ..TransactionEnvelope::default()
    };
    match db.commit_envelope(envelope).await {
        Err(AedbError::AssertionFailed {
            index,
            assertion,
            actual,
        }) => Ok((index, *assertion, *actual)),
        other => Err(format!("expected AssertionFailed, got {other:?}").into()),
    }
}

#[tokio::test]
async fn each_assertion_reports_what_it_found() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("p").await?;
    db.commit(set(b"k", b"abc")).await?;

    let equals = ReadAssertion::KeyEquals {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"k".to_vec(),
        expected: b"zzz".to_vec(),
    };
    let (index, assertion, actual) =
        failure(&db, vec![key_exists(b"k", true), equals.clone()]).await?;
    assert_eq!(
        (index, &assertion),
        (1, &equals),
        "the second assertion failed"
    );
    assert_eq!(actual, AssertionActual::Bytes(b"abc".to_vec()));

    let compare_missing = ReadAssertion::KeyCompare {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"absent".to_vec(),
        op: CompareOp::Gt,
        threshold: vec![0],
    };
    let (_, _, actual) = failure(&db, vec![compare_missing]).await?;
    assert_eq!(actual, AssertionActual::Missing);

    let (_, _, actual) = failure(&db, vec![key_exists(b"k", false)]).await?;
    assert_eq!(actual, AssertionActual::Bool(true));

    let version = db
        .kv_get_no_auth("p", "app", b"k", ConsistencyMode::AtLatest)
        .await?
        .map(|e| e.version);
    let stale = ReadAssertion::KeyVersion {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"k".to_vec(),
        expected_seq: 999,
    };
    let (_, _, actual) = failure(&db, vec![stale]).await?;
    assert_eq!(Some(actual), version.map(AssertionActual::Version));

    // A `Not` fails because its inner assertion held.
    let not = ReadAssertion::Not(Box::new(key_exists(b"k", true)));
    let (_, _, actual) = failure(&db, vec![not]).await?;
    assert_eq!(actual, AssertionActual::Bool(true));

    // `All` reports its first failing member; `Any` its last.
    let all = ReadAssertion::All(vec![key_exists(b"k", true), key_exists(b"k", false)]);
    let (_, _, actual) = failure(&db, vec![all]).await?;
    assert_eq!(actual, AssertionActual::Bool(true));

    assert_eq!(
        db.kv_get_no_auth("p", "app", b"guarded", ConsistencyMode::AtLatest)
            .await?,
        None,
        "nothing written"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_compare_and_set_is_a_key_version_assertion() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("p").await?;
    let mut one = [0u8; 32];
    one[31] = 1;
    let cas = |expected_seq| Mutation::KvMutateU256 {
        project_id: "p".into(),
        scope_id: "app".into(),
        key: b"n".to_vec(),
        op: KvU256MutatorOp::Add,
        operand_be: one,
        expected_seq: Some(expected_seq),
    };
    let first = db.commit(cas(0)).await?;
    match db.commit(cas(0)).await {
        Err(AedbError::AssertionFailed {
            index: 0,
            assertion,
            actual,
        }) => {
            assert_eq!(
                *assertion,
                ReadAssertion::KeyVersion {
                    project_id: "p".into(),
                    scope_id: "app".into(),
                    key: b"n".to_vec(),
                    expected_seq: 0,
                }
            );
            assert_eq!(*actual, AssertionActual::Version(first.commit_seq));
        }
        other => panic!("expected AssertionFailed, got {other:?}"),
    }
    Ok(())
}
