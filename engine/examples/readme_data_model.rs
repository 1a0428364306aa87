// The README's "Data model" snippets (this project's), verbatim, and the specification
// README's event-stream lines (CI runs it: `cargo run -p aedb --example readme_data_model`).
// The specification README's circuit-breaker lines expose against an unfunded accumulator,
// which its own safety model refuses; `engine/tests/readme_snippets.rs` runs them and checks
// that refusal, and runs its hand lifecycle on a funded balance.
use aedb::query::plan::ConsistencyMode;
use aedb::AedbInstance;
use tempfile::tempdir;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempdir()?;
    let db = AedbInstance::open(Default::default(), dir.path())?;
    db.create_project("casino").await?;

    // --- README (this project), "Data model", verbatim ---
    db.create_accumulator("casino", "app", "house_balance", Some(86_400), 10_000)
        .await?;
    db.accumulate("casino", "app", "house_balance", 1_000, "fund_1".into(), 1)
        .await?;
    db.expose_accumulator("casino", "app", "house_balance", 500, "hand-42".into())
        .await?;
    db.accumulate_with_release(
        "casino",
        "app",
        "house_balance",
        -120,
        "settle_hand_42".into(),
        2,
        Some("hand-42".into()),
    )
    .await?;
    let strong = db
        .accumulator_value_strong("casino", "app", "house_balance", ConsistencyMode::AtLatest)
        .await?; // 880
                 // --- end of the snippet ---
    assert_eq!(strong, 880, "the strong value after the snippet");
    let exposure = db
        .accumulator_exposure("casino", "app", "house_balance", ConsistencyMode::AtLatest)
        .await?;
    assert_eq!(exposure, 0, "the settle released the exposure");

    // --- specification README, "Tier-2 event stream + processor checkpoint", verbatim ---
    db.emit_event(
        "casino",
        "app",
        "hand_settled",
        "hand_42".into(),
        r#"{"user_id":"u1","wager":100,"pnl":-120}"#.into(),
    )
    .await?;

    let page = db
        .read_event_stream(Some("hand_settled"), 0, 100, ConsistencyMode::AtLatest)
        .await?;
    db.ack_reactive_processor_checkpoint("points_processor", page.next_commit_seq.unwrap_or(0))
        .await?;
    let processor_lag = db
        .reactive_processor_lag("points_processor", ConsistencyMode::AtLatest)
        .await?;
    // --- end of the snippet ---
    assert_eq!(page.events.len(), 1);
    assert_eq!(
        processor_lag.checkpoint_seq,
        page.next_commit_seq.unwrap_or(0)
    );
    println!(
        "data model: strong value {strong}, {} event read, processor checkpoint {}",
        page.events.len(),
        processor_lag.checkpoint_seq
    );
    Ok(())
}
