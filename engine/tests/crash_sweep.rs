//! The crash sweep, second pass: every durability mode with both finalities, page reuse (one
//! retained version and a tiny pool, so freed pages really come back), the recovery-checkpoint
//! path, crashes at every write point of the workload *and* of recovery itself, and chains of
//! crashes where the page cache survives the first (a killed process) and not the second (a
//! power loss after the next process acknowledged commits).
//!
//! The rule every image is held to: it recovers (Strict), its state is exactly some prefix of
//! the commits, the invariant checker passes, and no acknowledged commit is missing that the
//! image's kind of crash must keep — a process crash keeps every acknowledged commit, a power
//! loss every one acknowledged durable (Durable finality, any commit under `Full`, or one at or
//! below a `durable_head_seq` some answer reported).

use std::path::Path;
use std::sync::Arc;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::storage::io::Vfs;
use aedb::{AedbError, CommitFinality, Engine};

mod sim_support;
use sim_support::{open_sim, prefix_states, read_state, Acked, State, DIR};

fn config(mode: DurabilityMode) -> AedbConfig {
    AedbConfig {
        buffer_pool_bytes: 20 * 4096,
        ..sim_support::sweep_config(mode)
    }
}

fn open(vfs: &SimVfs, mode: DurabilityMode) -> Result<Engine, AedbError> {
    open_sim(vfs, config(mode))
}

/// Commit `n`: puts of varied sizes (overflow values every fourth) and a delete every third.
fn commit_ops(n: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let size = match n % 4 {
        0 => 12_000,
        1 => 3,
        _ => 150,
    };
    let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..(1 + n % 3))
        .map(|j| {
            (
                format!("k{:03}", (n * 7 + j * 13) % 60).into_bytes(),
                Some(vec![(n + j) as u8; size]),
            )
        })
        .collect();
    if n.is_multiple_of(3) {
        ops.push((format!("k{:03}", (n * 11) % 60).into_bytes(), None));
    }
    ops
}

fn states(commits: u64) -> Vec<State> {
    prefix_states(commits, commit_ops)
}

fn commit(engine: &Engine, n: u64, finality: CommitFinality) -> Result<(u64, u64), AedbError> {
    sim_support::commit_ops(engine, commit_ops(n), finality)
        .map(|o| (o.commit_seq, o.durable_head_seq))
}

fn finality_of(n: u64) -> CommitFinality {
    if n.is_multiple_of(2) {
        CommitFinality::Durable
    } else {
        CommitFinality::Visible
    }
}

/// Commits `first..=last` (and a checkpoint every 7th), stopping at the first error.
fn workload(engine: &Engine, mode: DurabilityMode, first: u64, last: u64, acked: &mut Acked) {
    for n in first..=last {
        let finality = finality_of(n);
        match commit(engine, n, finality) {
            Ok((seq, head)) => {
                assert_eq!(seq, n, "sequence");
                acked.note(mode, finality, seq, head);
            }
            Err(_) => return,
        }
        if n.is_multiple_of(7) && engine.checkpoint_now().is_err() {
            return;
        }
    }
}

/// Recover `image` and hold it to the rule (`sim_support::verify`); returns the recovered
/// sequence.
fn verify(image: &SimVfs, mode: DurabilityMode, floor: u64, all: &[State], what: &str) -> u64 {
    sim_support::verify(image, &config(mode), floor, all, what)
}

struct Counts {
    points: u64,
    images: u64,
    chains: u64,
    recovery_points: u64,
}

const COMMITS: u64 = 24;

fn sweep(mode: DurabilityMode) -> Counts {
    let all = states(COMMITS + 4);
    let reference = SimVfs::new();
    let engine = open(&reference, mode).expect("open");
    let mut acked = Acked::default();
    workload(&engine, mode, 1, COMMITS, &mut acked);
    assert_eq!(acked.any, COMMITS, "the reference run commits everything");
    // Counted before the shutdown: a crashed run goes down before its engine is dropped, so
    // the shutdown's write points are never reached there.
    let points = reference.write_points();
    drop(engine);
    let mut counts = Counts {
        points: points + 1,
        images: 0,
        chains: 0,
        recovery_points: 0,
    };
    for point in 0..=points {
        let vfs = SimVfs::new();
        vfs.crash_at(point);
        let mut acked = Acked::default();
        sim_support::run_crashed_at(
            &vfs,
            config(mode),
            point,
            points,
            &format!("{mode:?} point {point}"),
            |engine| workload(engine, mode, 1, COMMITS, &mut acked),
        );
        for kind in CrashMode::ALL {
            counts.images += 1;
            let image = vfs.crash_image(kind, point * 31 + 5);
            let what = format!("{mode:?} point {point} {kind:?}");
            verify(&image, mode, acked.floor(kind), &all, &what);
        }
        // Chain: the process died, the next one recovers and acknowledges more, then the power
        // fails before the kernel wrote back what the first left in the page cache.
        counts.chains += sim_support::crash_chain(
            &vfs,
            &config(mode),
            &acked,
            |engine, n| commit(engine, n, CommitFinality::Durable),
            point,
            &all,
            &format!("{mode:?} point {point}"),
        );
        // A crash at every write point of recovery itself: recovering again gives the same
        // state, or after a power loss, still every durable acknowledgement.
        counts.recovery_points += crash_during_recovery(&vfs, mode, &acked, &all, point);
    }
    counts
}

/// Crashes the recovery of `vfs`'s process-crash image at each of its write points.
fn crash_during_recovery(
    vfs: &SimVfs,
    mode: DurabilityMode,
    acked: &Acked,
    all: &[State],
    point: u64,
) -> u64 {
    let config = config(mode);
    let what = format!("{mode:?} point {point}");
    let (expected, recovery_points) = sim_support::recover_process_image(vfs, &config, &what);
    for r in 0..recovery_points {
        sim_support::crash_recovery_at(vfs, &config, r, &expected, acked.durable, all, &what);
    }
    recovery_points
}

fn report(mode: DurabilityMode, counts: &Counts) {
    println!(
        "crash sweep {mode:?}: {} workload crash points, {} images, {} crash chains, {} recovery crash points; 0 acknowledged commits lost",
        counts.points, counts.images, counts.chains, counts.recovery_points
    );
}

#[test]
fn sweep_full() {
    let counts = sweep(DurabilityMode::Full);
    assert!(counts.recovery_points > 0);
    report(DurabilityMode::Full, &counts);
}

#[test]
fn sweep_batch() {
    let counts = sweep(DurabilityMode::Batch);
    report(DurabilityMode::Batch, &counts);
}

#[test]
fn sweep_os_buffered() {
    let counts = sweep(DurabilityMode::OsBuffered);
    report(DurabilityMode::OsBuffered, &counts);
}

/// F1 of the review, as a user meets it: a killed process, a reopen, a durable commit, a power
/// loss. The reopened process must not build on frames only the page cache held.
#[test]
fn durable_commit_after_recovering_a_killed_process_survives_power_loss() {
    let all = states(12);
    let vfs = SimVfs::new();
    let engine = open(&vfs, DurabilityMode::Batch).expect("open");
    for n in 1..=10 {
        commit(&engine, n, CommitFinality::Visible).expect("commit");
    }
    assert!(vfs.unsynced_writes() > 0, "Batch left frames unsynced");
    vfs.crash_now();
    drop(engine);
    let survivor = vfs.crash_image(CrashMode::ProcessCrash, 0);
    let engine = open(&survivor, DurabilityMode::Full).expect("recover");
    assert_eq!(
        engine.visible_head_seq(),
        10,
        "the page cache kept every frame"
    );
    let (seq, head) = commit(&engine, 11, CommitFinality::Durable).expect("commit 11");
    assert_eq!((seq, head), (11, 11));
    survivor.crash_now();
    drop(engine);
    let lost_power = survivor.crash_image(CrashMode::PowerLoss, 0);
    let recovered = verify(
        &lost_power,
        DurabilityMode::Full,
        11,
        &all,
        "crash, recover, commit, power loss",
    );
    assert_eq!(recovered, 11);
}

/// Commits, checkpoints, evictions and aborted transactions from several threads, with the
/// background checkpointer on (by log size, age and space), crashed at a seeded write point: the races of checkpoints with
/// page reuse and eviction (F4, F5) get their chance, and every image is still held to the rule.
#[test]
fn concurrent_clients_and_background_checkpoints_crash_safely() {
    let mut images = 0;
    for seed in 0..24u64 {
        let mode = [
            DurabilityMode::Full,
            DurabilityMode::Batch,
            DurabilityMode::OsBuffered,
        ][seed as usize % 3];
        let vfs = SimVfs::new();
        let engine = Arc::new(
            Engine::open_with_vfs(
                AedbConfig {
                    checkpoint_wal_bytes: 16 << 10,
                    checkpoint_interval_ms: 2,
                    batch_interval_ms: 2,
                    // Checkpoints for space and the commit wait past twice the share fire too
                    // (the default minimum is far above this database).
                    checkpoint_space_min_bytes: 4 * 4096,
                    ..config(mode)
                },
                Path::new(DIR),
                Arc::new(vfs.clone()) as Arc<dyn Vfs>,
            )
            .expect("open"),
        );
        vfs.crash_at(60 + seed * 37);
        let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..3u64)
            .map(|t| {
                let engine = Arc::clone(&engine);
                let acked = Arc::clone(&acked);
                std::thread::spawn(move || {
                    for i in 0..400u64 {
                        // One key per commit: a thread's last, unanswered commit can then not
                        // hide an acknowledged write under a newer value.
                        let key = format!("t{t}-{i:03}").into_bytes();
                        let value = vec![i as u8; if i % 9 == 0 { 5000 } else { 120 }];
                        let finality = finality_of(i);
                        let abort = i % 5 == 4;
                        let result = engine.commit_blocking(finality, move |txn| {
                            txn.insert("kv", &key, &value)?;
                            if abort {
                                return Err(AedbError::Validation("aborted".into()));
                            }
                            Ok((key, value))
                        });
                        match result {
                            Ok(o) => acked.lock().expect("lock").push((
                                o.commit_seq,
                                o.durable_head_seq,
                                finality,
                                o.value,
                            )),
                            Err(AedbError::Validation(_)) => {}
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("client");
        }
        assert!(vfs.has_crashed(), "seed {seed}: the crash point fired");
        let engine = Arc::try_unwrap(engine).ok().expect("clients are done");
        drop(engine);
        let acked = acked.lock().expect("lock").clone();
        let mut floor = Acked::default();
        for (seq, head, finality, _) in &acked {
            floor.note(mode, *finality, *seq, *head);
        }
        for kind in CrashMode::ALL {
            images += 1;
            let image = vfs.crash_image(kind, seed);
            let engine = open(&image, mode)
                .unwrap_or_else(|e| panic!("seed {seed} {kind:?}: recovery failed: {e}"));
            let seq = engine.visible_head_seq();
            assert!(
                seq >= floor.floor(kind),
                "seed {seed} {mode:?} {kind:?}: lost acknowledged commits ({seq} < {})",
                floor.floor(kind)
            );
            let state = read_state(&engine);
            // The newest write of each key at or below the recovered sequence is what it holds.
            let mut expected = State::new();
            let mut sorted = acked.clone();
            sorted.sort_by_key(|a| a.0);
            for (s, _, _, (key, value)) in sorted {
                if s <= seq {
                    expected.insert(key, value);
                }
            }
            for (key, value) in &expected {
                assert_eq!(
                    state.get(key),
                    Some(value),
                    "seed {seed} {kind:?}: acknowledged write missing or stale"
                );
            }
            // An aborted commit wrote before failing, often inside a group whose transaction
            // it shared (`group.rs`): nothing of it may ever come back.
            for key in state.keys() {
                let i: u64 = std::str::from_utf8(&key[key.len() - 3..])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .expect("keys end in their commit's number");
                assert!(
                    i % 5 != 4,
                    "seed {seed} {kind:?}: an aborted commit's write recovered"
                );
            }
            let report = engine.store().check();
            assert!(
                report.is_ok(),
                "seed {seed} {kind:?}: {:?}",
                report.violations
            );
        }
    }
    println!("concurrent crash runs: 24 seeds, {images} images, 0 acknowledged commits lost");
}
