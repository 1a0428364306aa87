//! Events (behaviour spec 7.1): `emit_event` checks and stores an event in the outbox table
//! `_system.app.event_outbox`; `read_event_stream` pages it; the query API reads it.

use aedb::catalog::types::Value;
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::query::plan::Query;
use aedb::{AedbError, AedbInstance};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn emit(topic: &str, key: &str, payload: &str) -> Mutation {
    Mutation::EmitEvent {
        project_id: "casino".into(),
        scope_id: "app".into(),
        topic: topic.into(),
        event_key: key.into(),
        payload_json: payload.into(),
    }
}

#[tokio::test]
async fn events_are_stored_paged_and_queryable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("casino").await?;
    // Nothing emitted yet: an empty page.
    let empty = db.read_event_stream(None, 0, 10, AtLatest).await?;
    assert!(empty.events.is_empty());
    assert_eq!(empty.next_commit_seq, None);

    let first = db
        .emit_event(
            "casino",
            "app",
            "hand_settled",
            "hand_42".into(),
            r#"{"user_id":"u1","wager":100,"pnl":-120}"#.into(),
        )
        .await?;
    // Two events in one commit; the same topic and key twice collapse into the last.
    let second = db
        .commit_many_atomic(vec![
            emit("deposit", "d1", "{}"),
            emit("hand_settled", "hand_43", "[1]"),
            emit("hand_settled", "hand_43", "[2]"),
        ])
        .await?;

    let page = db.read_event_stream(None, 0, 100, AtLatest).await?;
    let seen: Vec<(u64, &str, &str, &str)> = page
        .events
        .iter()
        .map(|e| {
            (
                e.commit_seq,
                e.topic.as_str(),
                e.event_key.as_str(),
                e.payload_json.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                first.commit_seq,
                "hand_settled",
                "hand_42",
                r#"{"user_id":"u1","wager":100,"pnl":-120}"#
            ),
            (second.commit_seq, "deposit", "d1", "{}"),
            (second.commit_seq, "hand_settled", "hand_43", "[2]"),
        ]
    );
    assert_eq!(page.next_commit_seq, Some(second.commit_seq));
    assert!(page.snapshot_seq >= second.commit_seq);
    assert_eq!(page.events[0].project_id, "casino");
    assert!(page.events[0].ts_micros > 0);

    let settled = db
        .read_event_stream(Some("hand_settled"), first.commit_seq, 100, AtLatest)
        .await?;
    assert_eq!(settled.events.len(), 1);
    assert_eq!(settled.events[0].event_key, "hand_43");
    let one = db.read_event_stream(None, 0, 1, AtLatest).await?;
    assert_eq!(
        (one.events.len(), one.next_commit_seq),
        (1, Some(first.commit_seq))
    );
    assert!(db
        .read_event_stream(None, 0, 0, AtLatest)
        .await?
        .events
        .is_empty());

    // The outbox is an ordinary table of the system project.
    let rows = db
        .query(
            "_system",
            "app",
            Query::select(&["*"]).from("event_outbox").limit(10),
        )
        .await?;
    assert_eq!(rows.rows.len(), 3);
    assert_eq!(rows.rows[1].values[4], Value::Text("deposit".into()));

    // And everything survives a reopen.
    db.shutdown().await?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    assert_eq!(
        db.read_event_stream(None, 0, 100, AtLatest)
            .await?
            .events
            .len(),
        3
    );
    Ok(())
}

#[tokio::test]
async fn bad_events_are_refused_and_commit_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    db.create_project("casino").await?;
    let head = db.engine().visible_head_seq();
    let refused = |result: Result<_, AedbError>| match result {
        Err(AedbError::Validation(message)) => message,
        Err(AedbError::NotFound { .. }) => "not found".into(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let space = db
        .emit_event("casino", "app", "bad topic", "k".into(), "{}".into())
        .await;
    assert!(refused(space).contains("topic"));
    let blank = db
        .emit_event("casino", "app", "t", " ".into(), "{}".into())
        .await;
    assert!(refused(blank).contains("event_key"));
    let not_json = db
        .emit_event("casino", "app", "t", "k".into(), "{oops".into())
        .await;
    assert!(refused(not_json).starts_with("payload_json must be valid JSON"));
    let big = format!("\"{}\"", "x".repeat(64 << 10));
    let too_big = db.emit_event("casino", "app", "t", "k".into(), big).await;
    assert!(refused(too_big).contains("max_event_payload_bytes"));
    let no_scope = db
        .emit_event("casino", "nope", "t", "k".into(), "{}".into())
        .await;
    refused(no_scope);
    assert_eq!(db.engine().visible_head_seq(), head, "nothing committed");
    assert!(db
        .read_event_stream(None, 0, 10, AtLatest)
        .await?
        .events
        .is_empty());
    Ok(())
}
