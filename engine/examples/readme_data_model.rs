// The README's "Data model" snippet (this project's), verbatim (CI runs it:
// `cargo run -p aedb --example readme_data_model`). The specification README's snippets of this
// area run in `engine/tests/readme_snippets.rs`: its event-stream and processor lines as
// written; its circuit-breaker lines expose against an unfunded accumulator, which its own
// safety model refuses, so that test checks the refusal and runs its hand lifecycle on a
// funded balance.
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

    println!("data model: strong value {strong}, exposure released");
    Ok(())
}
