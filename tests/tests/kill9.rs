//! kill -9 with the real backends: a child (`aedb-crash-child`) commits in a loop and reports
//! each acknowledged commit; the parent kills it at random moments (checkpoints and log
//! rotations happen in between; in every fourth round the moment counts from the spawn, so it
//! may land in the child's own recovery) and, after each reopen, finds every acknowledged
//! commit with its exact value. Every (backend × workload) pair is its own test:
//!
//! - `engine-durable`: `Engine::commit_blocking` with Durable finality, Full mode;
//! - `batch-durable`: the same in Batch mode;
//! - `instance-plain`: `AedbInstance` with the default configuration and plain `commit`
//!   (Visible finality), which Full mode must make durable before it returns.
//!
//! Even rounds verify with a writable open and shut it down (the next child starts from a clean
//! checkpoint); odd rounds verify with a read-only open, which writes nothing, so the next child
//! recovers the killed child's log itself.
//!
//! Environment: `AEDB_KILL9_ROUNDS` sets the rounds per pair (default 20). Below
//! `MIN_ROUNDS_FOR_TOTALS` only the per-round checks apply: the totals (recoveries from a
//! checkpoint, frames replayed, commits acknowledged) need several rounds to be certain.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use aedb::catalog::namespace::kv_tree;
use aedb::config::{AedbConfig, IoBackendChoice};
use aedb::query::plan::ConsistencyMode;
use aedb::storage::io::sim::SplitMix64;
use aedb::storage::Snapshot;
use aedb::{AedbInstance, Engine, RecoveryReport};
use aedb_tests::{
    crash_value, CrashWorkload, CRASH_PROJECT, CRASH_RECOVERED_PREFIX, CRASH_SCOPE, CRASH_TREE,
};

const DEFAULT_ROUNDS: u32 = 20;
const MIN_ROUNDS_FOR_TOTALS: u32 = 4;
/// Far below what any workload reaches (Batch, the slowest, waits for its 10 ms batch timer):
/// only a child that hardly ever gets to commit falls under it.
const MIN_ACKED_PER_ROUND: usize = 3;

fn rounds() -> u32 {
    match std::env::var("AEDB_KILL9_ROUNDS") {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => panic!("AEDB_KILL9_ROUNDS must be a positive whole number, not {text:?}"),
        },
        Err(_) => DEFAULT_ROUNDS,
    }
}

/// When the parent kills the child.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This long after the child reports its database open: every such round has a window of
    /// commits, however long the open takes (with the default configuration, 100-300 ms on two
    /// busy cores: most of a window counted from the spawn).
    AfterOpen(Duration),
    /// This long after the spawn: the kill may land in the middle of the child's recovery.
    AfterSpawn(Duration),
}

/// How long the parent waits for a child to report its open before killing it anyway.
const OPEN_WAIT: Duration = Duration::from_secs(30);

/// What one killed child said before it died.
struct ChildRun {
    acked: Vec<u64>,
    /// (checkpoint seq, frames replayed) of the child's own recovery, when it got that far.
    recovered: Option<(u64, u64)>,
}

fn run_child(
    dir: &Path,
    backend: &str,
    workload: CrashWorkload,
    first_key: u64,
    kill_at: KillAt,
    label: &str,
) -> ChildRun {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aedb-crash-child"))
        .arg(dir)
        .arg(backend)
        .arg(first_key.to_string())
        .arg(workload.name())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut recovered = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(CRASH_RECOVERED_PREFIX) {
                let mut fields = rest.split(' ').map(str::parse::<u64>);
                if let (Some(Ok(checkpoint)), Some(Ok(frames))) = (fields.next(), fields.next()) {
                    recovered = Some((checkpoint, frames));
                }
                let _ = opened_tx.send(());
            } else if let Ok(key) = line.trim().parse::<u64>() {
                acked.push(key);
            }
        }
        (acked, recovered)
    });
    match kill_at {
        KillAt::AfterOpen(delay) => {
            // A child that dies before it opens disconnects the channel; its stderr says why.
            if opened_rx.recv_timeout(OPEN_WAIT).is_ok() {
                std::thread::sleep(delay);
            }
        }
        KillAt::AfterSpawn(delay) => std::thread::sleep(delay),
    }
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    let (acked, recovered) = reader.join().expect("reader");
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(
        !stderr.contains("failed"),
        "{label}: child reported: {stderr}"
    );
    assert!(
        !status.success(),
        "{label}: the child must die by the signal (stderr: {stderr})"
    );
    if let KillAt::AfterOpen(_) = kill_at {
        assert!(
            recovered.is_some(),
            "{label}: the child did not report its open within {OPEN_WAIT:?} (stderr: {stderr})"
        );
    }
    ChildRun { acked, recovered }
}

/// What a verifying open found.
struct Verified {
    checkpoint_seq: u64,
    frames_replayed: u64,
    /// The largest key present, acknowledged or not (the next child starts above it).
    max_present: Option<u64>,
}

fn key_of(bytes: &[u8], label: &str) -> u64 {
    match <[u8; 8]>::try_from(bytes) {
        Ok(array) => u64::from_be_bytes(array),
        Err(_) => panic!("{label}: a key of {} bytes, not 8: {bytes:?}", bytes.len()),
    }
}

fn max_key(snapshot: &Snapshot, tree: &str, label: &str) -> Option<u64> {
    let tree = snapshot
        .tree(tree)
        .unwrap_or_else(|e| panic!("{label}: tree lookup: {e}"))?;
    let last = tree
        .range(Bound::Unbounded, Bound::Unbounded, true)
        .next()?;
    let (key, _) = last.unwrap_or_else(|e| panic!("{label}: scan: {e}"));
    Some(key_of(&key, label))
}

fn found(report: &RecoveryReport, max_present: Option<u64>) -> Verified {
    Verified {
        checkpoint_seq: report.checkpoint_seq,
        frames_replayed: report.frames_replayed,
        max_present,
    }
}

fn verify_engine(
    dir: &Path,
    config: AedbConfig,
    writable: bool,
    acked: &BTreeSet<u64>,
    label: &str,
) -> Verified {
    let engine = if writable {
        Engine::open(config, dir)
    } else {
        Engine::open_read_only(config, dir)
    }
    .unwrap_or_else(|e| panic!("{label}: reopen (writable: {writable}): {e}"));
    let snapshot = engine.snapshot();
    let tree = snapshot
        .tree(CRASH_TREE)
        .unwrap_or_else(|e| panic!("{label}: tree lookup: {e}"));
    match &tree {
        Some(tree) => {
            for key in acked {
                let value = tree
                    .get(&key.to_be_bytes())
                    .unwrap_or_else(|e| panic!("{label}: get {key}: {e}"));
                assert_eq!(
                    value.as_deref(),
                    Some(crash_value(*key).as_slice()),
                    "{label}: acknowledged key {key} lost or wrong"
                );
            }
        }
        None => assert!(acked.is_empty(), "{label}: tree missing"),
    }
    drop(tree);
    let max_present = max_key(&snapshot, CRASH_TREE, label);
    drop(snapshot);
    let check = engine.store().check();
    assert!(check.is_ok(), "{label}: invariants: {:?}", check.violations);
    let verified = found(engine.recovery_report(), max_present);
    if writable {
        engine
            .shutdown()
            .unwrap_or_else(|e| panic!("{label}: shutdown: {e}"));
    }
    verified
}

fn verify_instance(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    config: AedbConfig,
    writable: bool,
    acked: &BTreeSet<u64>,
    label: &str,
) -> Verified {
    let db = if writable {
        AedbInstance::open(config, dir)
    } else {
        AedbInstance::open_read_only(config, dir)
    }
    .unwrap_or_else(|e| panic!("{label}: reopen (writable: {writable}): {e}"));
    for key in acked {
        let entry = runtime
            .block_on(db.kv_get_no_auth(
                CRASH_PROJECT,
                CRASH_SCOPE,
                &key.to_be_bytes(),
                ConsistencyMode::AtLatest,
            ))
            .unwrap_or_else(|e| panic!("{label}: kv_get {key}: {e}"));
        assert_eq!(
            entry.map(|e| e.value),
            Some(crash_value(*key)),
            "{label}: acknowledged key {key} lost or wrong"
        );
    }
    let max_present = max_key(
        &db.engine().snapshot(),
        &kv_tree(CRASH_PROJECT, CRASH_SCOPE),
        label,
    );
    let check = db.engine().store().check();
    assert!(check.is_ok(), "{label}: invariants: {:?}", check.violations);
    let verified = found(db.engine().recovery_report(), max_present);
    if writable {
        runtime
            .block_on(db.shutdown())
            .unwrap_or_else(|e| panic!("{label}: shutdown: {e}"));
    }
    verified
}

fn run_rounds(backend: &str, choice: IoBackendChoice, workload: CrashWorkload, seed: u64) {
    let rounds = rounds();
    let name = format!("{backend}/{}", workload.name());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let config = AedbConfig {
        io_backend: choice,
        durability_mode: workload.durability_mode(),
        ..AedbConfig::default()
    };
    let verify = |writable: bool, acked: &BTreeSet<u64>, label: &str| match workload {
        CrashWorkload::InstancePlain => {
            verify_instance(&runtime, &dir, config.clone(), writable, acked, label)
        }
        CrashWorkload::EngineDurable | CrashWorkload::BatchDurable => {
            verify_engine(&dir, config.clone(), writable, acked, label)
        }
    };
    let mut rng = SplitMix64(seed);
    let mut acked_total = BTreeSet::new();
    let mut next_key = 0u64;
    let mut recovered_from_checkpoint = 0;
    let mut replayed = 0;
    // Frames of a killed child's log that a read-only round left and the next writer redid.
    let mut left_and_recovered = 0;
    // What the previous round's verifying open recovered, and whether it could write.
    let mut previous: Option<(bool, u64, u64)> = None;
    for round in 0..rounds {
        let label = format!("{name} round {round}");
        // A round after a read-only one (see `writable` below) redoes the killed child's log at
        // open: some of those are killed at a random moment from the spawn, often mid-redo or
        // mid-checkpoint after it.
        let kill_at = if round % 4 == 2 {
            KillAt::AfterSpawn(Duration::from_millis(rng.below(150)))
        } else {
            KillAt::AfterOpen(Duration::from_millis(20 + rng.below(240)))
        };
        let run = run_child(&dir, backend, workload, next_key, kill_at, &label);
        if let (Some((was_writable, checkpoint, frames)), Some(child)) = (previous, run.recovered) {
            if was_writable {
                assert_eq!(
                    child.1, 0,
                    "{label}: the child replayed frames after a clean shutdown"
                );
            } else {
                // Nothing wrote between the read-only open and this child: it must have found
                // the same checkpoint and redone the same log.
                assert_eq!(
                    child,
                    (checkpoint, frames),
                    "{label}: the child's recovery (checkpoint seq, frames) differs from the \
                     read-only open's before it"
                );
                left_and_recovered += child.1;
            }
        }
        acked_total.extend(run.acked.iter().copied());

        let writable = round % 2 == 0;
        let verified = verify(writable, &acked_total, &label);
        if verified.checkpoint_seq > 0 {
            recovered_from_checkpoint += 1;
        }
        replayed += verified.frames_replayed;
        previous = Some((writable, verified.checkpoint_seq, verified.frames_replayed));
        next_key = verified
            .max_present
            .map_or(0, |m| m + 1)
            .max(acked_total.last().map_or(0, |m| m + 1))
            + 8;
    }
    // The last killed child's log, when a read-only round left it, is still to be recovered by
    // a writer; the same equality holds for this open.
    if let Some((false, checkpoint, frames)) = previous {
        let label = format!("{name} final writable open");
        let verified = verify(true, &acked_total, &label);
        assert_eq!(
            (verified.checkpoint_seq, verified.frames_replayed),
            (checkpoint, frames),
            "{label}: recovery differs from the read-only open's before it"
        );
        left_and_recovered += verified.frames_replayed;
    }
    if rounds >= MIN_ROUNDS_FOR_TOTALS {
        assert!(
            recovered_from_checkpoint > 0,
            "{name}: no round recovered from a checkpoint"
        );
        assert!(replayed > 0, "{name}: no round replayed the log");
        assert!(
            left_and_recovered > 0,
            "{name}: no read-only round left a log for the next writer to recover"
        );
        let min_acked = rounds as usize * MIN_ACKED_PER_ROUND;
        assert!(
            acked_total.len() >= min_acked,
            "{name}: too few commits acknowledged to mean anything ({} < {min_acked})",
            acked_total.len()
        );
    }
    println!(
        "{name}: {rounds} kill -9 rounds, {} acknowledged commits, 0 lost; \
         {recovered_from_checkpoint} recoveries from a checkpoint, {replayed} frames replayed \
         ({left_and_recovered} left by read-only rounds and redone by the next writer)",
        acked_total.len()
    );
}

#[test]
#[cfg(target_os = "linux")]
fn kill9_uring_engine_durable() {
    run_rounds(
        "uring",
        IoBackendChoice::IoUring,
        CrashWorkload::EngineDurable,
        11,
    );
}

#[test]
#[cfg(target_os = "linux")]
fn kill9_uring_instance_plain() {
    run_rounds(
        "uring",
        IoBackendChoice::IoUring,
        CrashWorkload::InstancePlain,
        13,
    );
}

#[test]
#[cfg(target_os = "linux")]
fn kill9_uring_batch_durable() {
    run_rounds(
        "uring",
        IoBackendChoice::IoUring,
        CrashWorkload::BatchDurable,
        15,
    );
}

#[test]
fn kill9_sync_engine_durable() {
    run_rounds(
        "sync",
        IoBackendChoice::Sync,
        CrashWorkload::EngineDurable,
        12,
    );
}

#[test]
fn kill9_sync_instance_plain() {
    run_rounds(
        "sync",
        IoBackendChoice::Sync,
        CrashWorkload::InstancePlain,
        14,
    );
}

#[test]
fn kill9_sync_batch_durable() {
    run_rounds(
        "sync",
        IoBackendChoice::Sync,
        CrashWorkload::BatchDurable,
        16,
    );
}
