//! A quick W8-style probe for working on recovery without building the peer suite.
//!
//! `recovery_probe write DIR MIB`: preload 100,000 keys, checkpoint, then log MIB of new
//! key+value payload in durable 1,000-key commits and exit without shutting down (no final
//! checkpoint: the log stays to replay, as after a kill -9).
//! `recovery_probe open DIR`: time the open (redo), the first read, and the checkpoint after
//! redo (which runs after the open returns), and report MB/s of log to the first read.
//! `benches/` (peer-bench W8) is the measurement of record; this is a development aid.

use std::time::Instant;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::{CommitFinality, Engine};

const PRELOAD: u64 = 100_000;
const BATCH: u64 = 1_000;
const VALUE_BYTES: usize = 100;

fn config() -> AedbConfig {
    AedbConfig {
        durability_mode: DurabilityMode::Full,
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 50,
        // No checkpoint for space either: the whole log stays to replay (as in W8).
        checkpoint_space_percent: 0,
        ..AedbConfig::default()
    }
}

fn key(n: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

fn load(engine: &Engine, from: u64, to: u64) -> Result<(), aedb::AedbError> {
    let mut start = from;
    while start < to {
        let end = (start + BATCH).min(to);
        engine.commit_blocking(CommitFinality::Durable, move |txn| {
            for n in start..end {
                txn.insert("kv", &key(n), &[n as u8; VALUE_BYTES])?;
            }
            Ok(())
        })?;
        start = end;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.get(1).ok_or("usage: write|open DIR [MIB]")?);
    match args[0].as_str() {
        "write" => {
            let mib: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
            let _ = std::fs::remove_dir_all(&dir);
            let engine = Engine::open(config(), &dir)?;
            load(&engine, 0, PRELOAD)?;
            engine.checkpoint_now()?;
            let rows = mib * (1 << 20) / (16 + VALUE_BYTES as u64);
            let start = Instant::now();
            load(&engine, PRELOAD, PRELOAD + rows)?;
            println!(
                "logged {rows} rows ({mib} MiB of payload) in {:.2} s",
                start.elapsed().as_secs_f64()
            );
            // No shutdown: the log stays to replay, as after a kill -9.
            std::process::exit(0);
        }
        "open" => {
            let start = Instant::now();
            let engine = Engine::open(config(), &dir)?;
            let open = start.elapsed().as_secs_f64();
            let first = engine
                .snapshot()
                .tree("kv")?
                .ok_or("the kv tree is missing")?
                .get(&key(PRELOAD))?;
            if first.is_none() {
                return Err("the first logged key is missing".into());
            }
            let first_read = start.elapsed().as_secs_f64();
            engine.wait_for_recovery_checkpoint()?;
            let checkpointed = start.elapsed().as_secs_f64();
            let report = engine.recovery_report();
            println!(
                "open {open:.3} s, first read {first_read:.3} s, checkpoint after redo durable \
                 {checkpointed:.3} s: {} frames, {:.1} MiB replayed, {:.1} MB/s to the first \
                 read, checkpointed after redo: {}",
                report.frames_replayed,
                report.bytes_replayed as f64 / (1 << 20) as f64,
                report.bytes_replayed as f64 / 1e6 / first_read,
                report.checkpointed_after_redo
            );
            std::process::exit(0);
        }
        other => Err(format!("unknown mode {other}").into()),
    }
}
