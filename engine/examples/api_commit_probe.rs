//! Durable one-key commits through the public API (`AedbInstance::commit` of a `KvSet` at the
//! default `DurabilityMode::Full`), on a fresh database whose buffer pool grows meanwhile: the
//! latency an async caller sees, its tail, and how many commits took over a millisecond.
//!
//! Run: `cargo run --release -p aedb --example api_commit_probe [DIR] [COMMITS]` (defaults: a
//! temporary directory, 3,000 commits). `AEDB_PROBE_MODE=os` or `batch` opens with
//! `DurabilityMode::OsBuffered` or `Batch` instead (the path's cost without the fsync; `full`,
//! the default, any other value is refused).
//! `AEDB_PROBE_SPAWN=1` commits from a spawned task, on a runtime worker as a service's task
//! would, instead of from the main thread's `block_on`.

use std::path::PathBuf;
use std::time::Instant;

use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode};
use aedb::AedbInstance;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let commits: u32 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_000);
    let mode = match std::env::var("AEDB_PROBE_MODE").as_deref() {
        Ok("os") => DurabilityMode::OsBuffered,
        Ok("batch") => DurabilityMode::Batch,
        Ok("full") | Ok("") | Err(_) => DurabilityMode::Full,
        Ok(other) => return Err(format!("AEDB_PROBE_MODE={other}: os, batch or full").into()),
    };
    let spawned = std::env::var("AEDB_PROBE_SPAWN").as_deref() == Ok("1");
    let config = AedbConfig {
        durability_mode: mode,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, &dir)?;
    db.create_project("p").await?;
    db.create_scope("p", "s").await?;
    let db = std::sync::Arc::new(db);
    let run = {
        let db = db.clone();
        async move {
            let mut micros = Vec::with_capacity(commits as usize);
            for i in 0..commits {
                let start = Instant::now();
                db.commit(Mutation::KvSet {
                    project_id: "p".into(),
                    scope_id: "s".into(),
                    key: i.to_be_bytes().to_vec(),
                    value: vec![1; 64],
                })
                .await?;
                micros.push(start.elapsed().as_secs_f64() * 1e6);
            }
            Ok::<_, aedb::error::AedbError>(micros)
        }
    };
    let mut micros = if spawned {
        tokio::spawn(run).await??
    } else {
        run.await?
    };
    let over_1ms = micros.iter().filter(|m| **m > 1_000.0).count();
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    println!(
        "{:?}{}, {commits} commits: p50 {:.1} µs, p99 {:.1} µs, max {:.0} µs, {over_1ms} over 1 ms",
        mode,
        if spawned { ", spawned task" } else { "" },
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
