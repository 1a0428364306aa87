//! Open a database, write, query, reopen and query again.
//!
//! Run: `cargo run --release -p aedb --example quickstart [DATA_DIR]`

use std::ops::Bound;
use std::path::PathBuf;

use aedb::config::AedbConfig;
use aedb::{CommitFinality, Engine};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let config = AedbConfig {
        buffer_pool_bytes: 8 << 20,
        ..AedbConfig::default()
    };

    let db = Engine::open(config.clone(), &dir)?;
    println!("opened {} with the {} backend", dir.display(), db.backend());

    // One atomic commit of 10,000 users, acknowledged once its WAL frame is fsynced.
    let outcome = db.commit_blocking(CommitFinality::Durable, |txn| {
        for id in 0..10_000u32 {
            txn.insert(
                "users",
                &id.to_be_bytes(),
                format!("user-{id:05}").as_bytes(),
            )?;
        }
        Ok(())
    })?;
    println!(
        "commit {} is durable (durable head {})",
        outcome.commit_seq, outcome.durable_head_seq
    );

    // Query: a point read and a range, from a snapshot.
    let snapshot = db.snapshot();
    let users = snapshot.tree("users")?.ok_or("users tree missing")?;
    let user = users.get(&42u32.to_be_bytes())?;
    println!(
        "user 42 = {:?}",
        user.as_deref().map(String::from_utf8_lossy)
    );
    let range: Vec<String> = users
        .range(
            Bound::Included(&100u32.to_be_bytes()[..]),
            Bound::Excluded(&105u32.to_be_bytes()[..]),
            false,
        )
        .map(|item| item.map(|(_, v)| String::from_utf8_lossy(&v).into_owned()))
        .collect::<Result<_, _>>()?;
    println!("users 100..105 = {range:?}");
    drop((snapshot, users));

    // Close (a checkpoint, then the lock is released) and reopen; after a crash instead, the
    // reopen would redo the commit from the WAL.
    db.shutdown()?;
    let db = Engine::open(config, &dir)?;
    let report = db.recovery_report().clone();
    let users = db
        .snapshot()
        .tree("users")?
        .ok_or("users tree missing after reopen")?;
    assert_eq!(users.len(), 10_000);
    assert_eq!(
        users.get(&42u32.to_be_bytes())?.as_deref(),
        Some(&b"user-00042"[..])
    );
    let check = db.store().check();
    println!(
        "reopened at commit {} ({} frames replayed): {} users, invariant check {}",
        report.recovered_seq,
        report.frames_replayed,
        users.len(),
        if check.is_ok() { "ok" } else { "FAILED" }
    );
    if !check.is_ok() {
        return Err(format!("invariant violations: {:?}", check.violations).into());
    }
    drop(users);
    db.shutdown()?;
    Ok(())
}
