//! kill -9 with the real backends: a child commits with Durable finality and reports each
//! acknowledged commit; the parent kills it at random moments (checkpoints and log rotations
//! happen in between) and, after each reopen, finds every acknowledged commit.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use aedb::config::{AedbConfig, IoBackendChoice};
use aedb::storage::io::sim::SplitMix64;
use aedb::Engine;

const ROUNDS: u32 = 20;

fn run_rounds(backend: &str, choice: IoBackendChoice, seed: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let mut rng = SplitMix64(seed);
    let mut acked_total = BTreeSet::new();
    let mut next_key = 0u64;
    let mut recovered_from_checkpoint = 0;
    let mut replayed = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aedb-crash-child"))
            .arg(&dir)
            .arg(backend)
            .arg(next_key.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(key) = line.trim().parse::<u64>() {
                    acked.push(key);
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(40 + rng.below(260)));
        child.kill().expect("kill -9");
        let status = child.wait().expect("wait");
        assert!(
            !status.success(),
            "round {round}: the child must die by the signal"
        );
        let acked = reader.join().expect("reader");
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            use std::io::Read;
            let _ = err.read_to_string(&mut stderr);
        }
        assert!(
            !stderr.contains("failed"),
            "round {round}: child reported: {stderr}"
        );
        acked_total.extend(acked.iter().copied());

        let config = AedbConfig {
            io_backend: choice,
            ..AedbConfig::default()
        };
        let engine = Engine::open(config, Path::new(&dir))
            .unwrap_or_else(|e| panic!("{backend} round {round}: reopen: {e}"));
        let report = engine.recovery_report();
        if report.checkpoint_seq > 0 {
            recovered_from_checkpoint += 1;
        }
        replayed += report.frames_replayed;
        let tree = engine.snapshot().tree("kv").expect("lookup");
        let mut max_present = None;
        if let Some(tree) = &tree {
            for key in &acked_total {
                let value = tree.get(&key.to_be_bytes()).expect("get");
                assert_eq!(
                    value.as_deref(),
                    Some(aedb_tests::crash_value(*key).as_slice()),
                    "{backend} round {round}: acknowledged key {key} lost or wrong"
                );
            }
            max_present = tree
                .range(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, true)
                .next()
                .map(|item| {
                    u64::from_be_bytes(item.expect("scan").0.try_into().expect("8-byte key"))
                });
        } else {
            assert!(
                acked_total.is_empty(),
                "{backend} round {round}: tree missing"
            );
        }
        assert!(
            engine.store().check().is_ok(),
            "{backend} round {round}: invariants"
        );
        next_key = max_present
            .map_or(0, |m| m + 1)
            .max(acked_total.last().map_or(0, |m| m + 1))
            + 8;
        // Some rounds reopen cleanly, others leave the log for the next child to recover.
        if round % 2 == 0 {
            engine.shutdown().expect("shutdown");
        } else {
            drop(engine);
        }
    }
    assert!(
        recovered_from_checkpoint > 0,
        "{backend}: no round recovered from a checkpoint"
    );
    assert!(replayed > 0, "{backend}: no round replayed the log");
    assert!(
        acked_total.len() > 50,
        "{backend}: too few commits acknowledged to mean anything ({})",
        acked_total.len()
    );
    println!(
        "{backend}: {ROUNDS} kill -9 rounds, {} acknowledged commits, 0 lost; {recovered_from_checkpoint} recoveries from a checkpoint, {replayed} frames replayed",
        acked_total.len()
    );
}

#[test]
#[cfg(target_os = "linux")]
fn kill9_io_uring() {
    run_rounds("uring", IoBackendChoice::IoUring, 11);
}

#[test]
fn kill9_pread_pwrite() {
    run_rounds("sync", IoBackendChoice::Sync, 12);
}
