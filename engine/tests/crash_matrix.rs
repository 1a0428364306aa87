//! Durability of the engine on the simulated disk: finality in every durability mode, the
//! crash-point sweep over commits and checkpoints, injected I/O errors and the failure latch.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aedb::config::{AedbConfig, DurabilityMode, RecoveryMode};
use aedb::storage::io::sim::{CrashMode, Fault, SimVfs};
use aedb::storage::io::{OpKind, Vfs};
use aedb::{AedbError, CommitFinality, Engine};

mod sim_support;
use sim_support::{apply, open_sim, read_state, State, DIR};

fn config(mode: DurabilityMode) -> AedbConfig {
    AedbConfig {
        durability_mode: mode,
        buffer_pool_bytes: 64 * 4096,
        max_segment_bytes: 64 << 10,
        // Checkpoints only when the test asks, so every run has the same write points.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        recovery_checkpoint_frames: 50,
        hmac_key: Some([3; 32]),
        ..AedbConfig::default()
    }
}

fn open(vfs: &SimVfs, mode: DurabilityMode) -> Result<Engine, AedbError> {
    open_sim(vfs, config(mode))
}

/// Commit `n` of the workload: a few puts and a delete, of varied sizes.
fn commit_ops(n: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut ops = Vec::new();
    let size = match n % 5 {
        0 => 6000, // overflow value
        1 => 1,
        _ => 80,
    };
    for j in 0..(1 + n % 4) {
        ops.push((
            format!("k{:04}", (n * 7 + j * 13) % 300).into_bytes(),
            Some(vec![(n + j) as u8; size]),
        ));
    }
    if n.is_multiple_of(3) {
        ops.push((format!("k{:04}", (n * 11) % 300).into_bytes(), None));
    }
    ops
}

fn commit(engine: &Engine, n: u64, finality: CommitFinality) -> Result<u64, AedbError> {
    sim_support::commit_ops(engine, commit_ops(n), finality).map(|outcome| outcome.commit_seq)
}

#[test]
fn commits_are_visible_durable_and_survive_reopen_in_every_mode() {
    for mode in [
        DurabilityMode::Full,
        DurabilityMode::Batch,
        DurabilityMode::OsBuffered,
    ] {
        let vfs = SimVfs::new();
        let engine = open(&vfs, mode).expect("open");
        let mut expected = State::new();
        for n in 1..=60u64 {
            let finality = if n.is_multiple_of(2) {
                CommitFinality::Durable
            } else {
                CommitFinality::Visible
            };
            let seq = commit(&engine, n, finality).expect("commit");
            assert_eq!(seq, n);
            apply(&mut expected, &commit_ops(n));
            if finality == CommitFinality::Durable {
                assert!(
                    engine.durable_head_seq() >= n,
                    "{mode:?}: Durable returned before its sync"
                );
            }
            assert_eq!(
                read_state(&engine),
                expected,
                "{mode:?}: visible after commit {n}"
            );
            if n == 30 {
                engine.checkpoint_now().expect("checkpoint");
            }
        }
        drop(engine);
        let engine = open(&vfs, mode).expect("reopen");
        assert_eq!(read_state(&engine), expected, "{mode:?}: after reopen");
        assert_eq!(engine.visible_head_seq(), 60);
        assert!(engine.store().check().is_ok());
    }
}

#[test]
fn batch_mode_syncs_within_its_interval_without_new_commits() {
    let vfs = SimVfs::new();
    let engine = open(&vfs, DurabilityMode::Batch).expect("open");
    commit(&engine, 1, CommitFinality::Visible).expect("commit");
    for _ in 0..100 {
        if engine.durable_head_seq() >= 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("Batch mode never synced a Visible commit");
}

#[test]
fn a_failed_body_commits_nothing_and_the_next_commit_proceeds() {
    let vfs = SimVfs::new();
    let engine = open(&vfs, DurabilityMode::Full).expect("open");
    commit(&engine, 1, CommitFinality::Durable).expect("commit");
    let before = read_state(&engine);
    let err = engine
        .commit_blocking(CommitFinality::Durable, |txn| {
            txn.insert("kv", b"half", b"applied")?;
            Err::<(), _>(AedbError::Validation("body refuses".into()))
        })
        .unwrap_err();
    assert!(matches!(err, AedbError::Validation(_)));
    assert_eq!(read_state(&engine), before);
    let too_big = engine.commit_blocking(CommitFinality::Visible, |txn| {
        txn.insert("kv", &vec![1u8; 5000], b"v").map(|_| ())
    });
    assert!(
        matches!(too_big, Err(AedbError::KeyTooLarge { .. })),
        "{too_big:?}"
    );
    assert_eq!(
        commit(&engine, 2, CommitFinality::Durable).expect("commit"),
        2
    );
    drop(engine);
    let engine = open(&vfs, DurabilityMode::Full).expect("reopen");
    assert_eq!(read_state(&engine).get(b"half".as_slice()), None);
    assert_eq!(engine.visible_head_seq(), 2);
}

/// Runs the sweep workload, stopping at the first error. Returns the durable-acknowledged count.
fn sweep_workload(vfs: &SimVfs, commits: u64) -> u64 {
    let Ok(engine) = open(vfs, DurabilityMode::Full) else {
        return 0;
    };
    let mut acked = 0;
    for n in 1..=commits {
        match commit(&engine, n, CommitFinality::Durable) {
            Ok(_) => acked = n,
            Err(_) => break,
        }
        if n.is_multiple_of(9) && engine.checkpoint_now().is_err() {
            break;
        }
    }
    std::mem::forget(engine); // a crashed process runs no shutdown
    acked
}

#[test]
fn crash_at_every_write_and_sync_loses_no_acknowledged_commit() {
    const COMMITS: u64 = 30;
    let reference = SimVfs::new();
    assert_eq!(sweep_workload(&reference, COMMITS), COMMITS);
    let points = reference.write_points();
    let mut states = vec![State::new()];
    for n in 1..=COMMITS {
        let mut next = states.last().cloned().unwrap_or_default();
        apply(&mut next, &commit_ops(n));
        states.push(next);
    }
    let (mut images, mut lost) = (0u64, 0u64);
    for point in 0..=points {
        let vfs = SimVfs::new();
        vfs.crash_at(point);
        let acked = sweep_workload(&vfs, COMMITS);
        for mode in CrashMode::ALL {
            let seeds = if matches!(mode, CrashMode::ProcessCrash | CrashMode::PowerLoss) {
                1
            } else {
                2
            };
            for seed in 0..seeds {
                images += 1;
                let image = vfs.crash_image(mode, point * 7 + seed);
                let engine = open(&image, DurabilityMode::Full).unwrap_or_else(|e| {
                    panic!("point {point} {mode:?}/{seed}: recovery failed: {e}")
                });
                let state = read_state(&engine);
                let prefix = states.iter().position(|s| *s == state);
                let Some(prefix) = prefix else {
                    panic!("point {point} {mode:?}/{seed}: state is not a prefix of the commits");
                };
                if (prefix as u64) < acked {
                    lost += acked - prefix as u64;
                }
                assert_eq!(
                    engine.visible_head_seq(),
                    prefix as u64,
                    "sequence matches the state"
                );
                let report = engine.store().check();
                assert!(
                    report.is_ok(),
                    "point {point} {mode:?}: {:?}",
                    report.violations
                );
                std::mem::forget(engine);
                // Recovering again (as after a crash during recovery) gives the same state.
                let again = open(&image, DurabilityMode::Full).expect("second recovery");
                assert_eq!(
                    read_state(&again),
                    state,
                    "point {point} {mode:?}: recovery is not idempotent"
                );
                drop(again);
            }
        }
    }
    println!(
        "crash sweep: {} crash points, {images} images, {lost} acknowledged commits lost",
        points + 1
    );
    assert_eq!(lost, 0);
}

#[test]
fn injected_io_errors_latch_and_lose_nothing_acknowledged() {
    let mut cases = 0;
    for op in [OpKind::Write, OpKind::Sync, OpKind::Grow] {
        // Grows are few (segment rotations, file extents): skip only as many as happen.
        let skips: &[u64] = if op == OpKind::Grow {
            &[0, 1, 2, 3]
        } else {
            &[0, 3, 10, 25]
        };
        for &skip in skips {
            for forever in [false, true] {
                for errno in [5, 28] {
                    cases += 1;
                    let vfs = SimVfs::new();
                    let engine = open(&vfs, DurabilityMode::Full).expect("open");
                    commit(&engine, 1, CommitFinality::Durable).expect("first commit");
                    let fault = if forever {
                        Fault::forever(op, skip, errno)
                    } else {
                        Fault::once(op, skip, errno)
                    };
                    vfs.inject(fault);
                    let mut acked = 1;
                    let mut failed_at = None;
                    // Commit until the fault has fired and a few commits after it.
                    let mut n = 1;
                    while n < 400 && (vfs.faults_fired() == 0 || n < failed_at.unwrap_or(n) + 3) {
                        n += 1;
                        match commit(&engine, n, CommitFinality::Durable) {
                            Ok(_) if failed_at.is_none() => acked = n,
                            Ok(_) => panic!(
                                "{op:?} skip {skip}: a commit was acknowledged after the latch"
                            ),
                            Err(err) => {
                                failed_at.get_or_insert(n);
                                assert!(
                                    matches!(err, AedbError::Failed(_) | AedbError::Io(_)),
                                    "{err}"
                                );
                            }
                        }
                        if n.is_multiple_of(10) {
                            let _ = engine.checkpoint_now();
                        }
                    }
                    assert_eq!(
                        vfs.faults_fired(),
                        1,
                        "{op:?} skip {skip}: the injected fault never fired"
                    );
                    if failed_at.is_some() {
                        assert!(matches!(
                            commit(&engine, 99, CommitFinality::Visible),
                            Err(AedbError::Failed(_))
                        ));
                    }
                    std::mem::forget(engine);
                    vfs.clear_faults();
                    let image = vfs.crash_image(CrashMode::PowerLoss, 1);
                    let engine =
                        open(&image, DurabilityMode::Full).expect("reopen after the fault");
                    let mut expected = State::new();
                    for n in 1..=acked {
                        apply(&mut expected, &commit_ops(n));
                    }
                    let state = read_state(&engine);
                    let seq = engine.visible_head_seq();
                    assert!(seq >= acked, "{op:?} skip {skip} forever {forever}: lost acknowledged commits ({seq} < {acked})");
                    let mut at_seq = State::new();
                    for n in 1..=seq {
                        apply(&mut at_seq, &commit_ops(n));
                    }
                    assert_eq!(state, at_seq);
                }
            }
        }
    }
    assert_eq!(cases, 48);
}

#[test]
fn permissive_recovery_reports_what_it_dropped() {
    let vfs = SimVfs::new();
    let engine = open(&vfs, DurabilityMode::Full).expect("open");
    for n in 1..=10 {
        commit(&engine, n, CommitFinality::Durable).expect("commit");
    }
    std::mem::forget(engine);
    // Damage the middle of the log.
    let segments =
        aedb::wal::segment::list_segments(&vfs, &Path::new(DIR).join("wal")).expect("list");
    let (_, path) = segments.last().expect("a segment").clone();
    vfs.corrupt(&path, 128 + 200, &[0x55; 16]);
    match open(&vfs, DurabilityMode::Full) {
        Err(AedbError::Corruption(message)) => assert!(message.contains("wal-"), "{message}"),
        Err(other) => panic!("unexpected {other}"),
        Ok(_) => panic!("strict recovery must refuse a damaged log"),
    }
    let permissive = AedbConfig {
        recovery_mode: RecoveryMode::Permissive,
        ..config(DurabilityMode::Full)
    };
    let engine = Engine::open_with_vfs(
        permissive,
        Path::new(DIR),
        Arc::new(vfs.clone()) as Arc<dyn Vfs>,
    )
    .expect("permissive open");
    assert!(engine.recovery_report().dropped.is_some());
    assert!(engine.visible_head_seq() < 10);
}
