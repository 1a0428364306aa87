//! What the simulator-based durability suites share: opening on a simulated disk, the "kv"
//! tree's state, commits of put/delete lists, the rule a crash image is held to
//! ([`verify`], [`Acked`]), crashes of recovery itself, and a trace of a run's write points
//! (`trace`). Each suite uses some of it.
#![allow(dead_code)]

pub mod trace;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::storage::io::Vfs;
use aedb::{AedbError, CommitFinality, CommitOutcome, Engine};

pub const DIR: &str = "/db";
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;
/// Puts (`Some`) and deletes (`None`) of one commit, in order.
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Open on the simulated disk, the checkpoint after redo included: the sweeps count and crash
/// the recovery's write points, so an open is over when that checkpoint is.
pub fn open_sim(vfs: &SimVfs, config: AedbConfig) -> Result<Engine, AedbError> {
    let engine = Engine::open_with_vfs(
        config,
        Path::new(DIR),
        Arc::new(vfs.clone()) as Arc<dyn Vfs>,
    )?;
    engine.wait_for_recovery_checkpoint()?;
    Ok(engine)
}

/// The crash sweeps' settings (`crash_sweep.rs`, `crash_spare_frames.rs`; each sets its own
/// pool): the same write points on every run, freed pages reused inside the sweep.
pub fn sweep_config(mode: DurabilityMode) -> AedbConfig {
    AedbConfig {
        durability_mode: mode,
        // Syncs in Batch mode come from the byte bound, not the clock: the same write points
        // on every run.
        batch_interval_ms: 3_600_000,
        batch_max_bytes: 6_000,
        page_size: 4096,
        // The smallest segment allowed: the sweep's log rotates.
        max_segment_bytes: 64 << 10,
        // Checkpoints only where the workload asks.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        // The default: recovery that replays anything checkpoints before it answers.
        recovery_checkpoint_frames: 0,
        // One retained version: pages freed by copy-on-write are reused after the next
        // checkpoint, inside the sweep.
        max_versions: 1,
        hmac_key: Some([9; 32]),
        ..AedbConfig::default()
    }
}

/// Open an engine on `vfs`, whose disk is set to crash at write point `point`, and run
/// `workload` on it; then the machine goes down. Asserts that only the crash stopped the open
/// (anything else would leave empty images to check) and that the point fired unless it is
/// `points`, the number an uncrashed run passes (its end: no write there).
pub fn run_crashed_at(
    vfs: &SimVfs,
    config: AedbConfig,
    point: u64,
    points: u64,
    what: &str,
    workload: impl FnOnce(&Engine),
) {
    let fired = match open_sim(vfs, config) {
        Ok(engine) => {
            workload(&engine);
            // Before `crash_now`, which would make any point look fired.
            let fired = vfs.has_crashed();
            vfs.crash_now();
            drop(engine); // its shutdown fails: the machine is down
            fired
        }
        Err(e) => {
            assert!(vfs.has_crashed(), "{what}: open failed: {e}");
            true
        }
    };
    // A run that crashed stops counting write points, so only the uncrashed run's count can
    // tell a point that never came from the end of the workload.
    assert!(
        fired || point >= points,
        "{what}: point {point} of {points} did not fire"
    );
}

/// Every entry of the tree "kv" at the head.
pub fn read_state(engine: &Engine) -> State {
    let snapshot = engine.snapshot();
    match snapshot.tree("kv").expect("lookup") {
        None => State::new(),
        Some(tree) => tree
            .range(Bound::Unbounded, Bound::Unbounded, false)
            .collect::<Result<State, _>>()
            .expect("scan"),
    }
}

/// `state` after `ops`.
pub fn apply(state: &mut State, ops: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (key, value) in ops {
        match value {
            Some(v) => state.insert(key.clone(), v.clone()),
            None => state.remove(key),
        };
    }
}

/// Commit `ops` to the tree "kv" as one commit.
pub fn commit_ops(
    engine: &Engine,
    ops: Ops,
    finality: CommitFinality,
) -> Result<CommitOutcome<()>, AedbError> {
    engine.commit_blocking(finality, move |txn| {
        for (key, value) in &ops {
            match value {
                Some(v) => {
                    txn.insert("kv", key, v)?;
                }
                None => {
                    txn.remove("kv", key)?;
                }
            }
        }
        Ok(())
    })
}

/// The state after each prefix of the commits `1..=commits` (`ops(n)` is commit `n`'s): entry
/// `n` holds the state after `n` commits.
pub fn prefix_states(commits: u64, ops: impl Fn(u64) -> Ops) -> Vec<State> {
    let mut out = vec![State::new()];
    for n in 1..=commits {
        let mut next = out.last().cloned().unwrap_or_default();
        apply(&mut next, &ops(n));
        out.push(next);
    }
    out
}

/// What the clients were told.
#[derive(Debug, Default, Clone, Copy)]
pub struct Acked {
    /// The newest acknowledged commit.
    pub any: u64,
    /// The newest commit acknowledged durable, or reported durable by any answer.
    pub durable: u64,
}

impl Acked {
    pub fn note(&mut self, mode: DurabilityMode, finality: CommitFinality, seq: u64, head: u64) {
        self.any = self.any.max(seq);
        if mode == DurabilityMode::Full || finality == CommitFinality::Durable {
            assert!(
                head >= seq,
                "{mode:?}/{finality:?}: answered before durable"
            );
            self.durable = self.durable.max(seq);
        }
        self.durable = self.durable.max(head);
    }

    /// What an image of `kind` must hold: a process crash keeps every acknowledged commit, a
    /// power loss every one acknowledged durable.
    pub fn floor(&self, kind: CrashMode) -> u64 {
        if kind == CrashMode::ProcessCrash {
            self.any
        } else {
            self.durable
        }
    }
}

/// Recover `image` and hold it to the rule: it recovers (with `config`), its state is exactly
/// the prefix `all[seq]` of the commits for the recovered sequence `seq`, that sequence is at
/// least `floor`, and the invariant checker passes. Returns the recovered sequence.
pub fn verify(image: &SimVfs, config: &AedbConfig, floor: u64, all: &[State], what: &str) -> u64 {
    let engine =
        open_sim(image, config.clone()).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    verify_recovered(&engine, floor, all, what)
}

/// [`verify`] of an engine that has just recovered.
pub fn verify_recovered(engine: &Engine, floor: u64, all: &[State], what: &str) -> u64 {
    let state = read_state(engine);
    let seq = engine.visible_head_seq();
    assert!(
        all.get(seq as usize) == Some(&state),
        "{what}: state is not the prefix of {seq} commits"
    );
    assert!(
        seq >= floor,
        "{what}: lost acknowledged commits ({seq} < {floor})"
    );
    let report = engine.store().check();
    assert!(report.is_ok(), "{what}: {:?}", report.violations);
    seq
}

/// Recover `vfs`'s process-crash image once, uninterrupted: the state it gives and how many
/// write points the recovery passed.
pub fn recover_process_image(vfs: &SimVfs, config: &AedbConfig, what: &str) -> (State, u64) {
    let image = vfs.crash_image(CrashMode::ProcessCrash, 0);
    let engine =
        open_sim(&image, config.clone()).unwrap_or_else(|e| panic!("{what}: recovery: {e}"));
    let state = read_state(&engine);
    let points = image.write_points();
    drop(engine);
    (state, points)
}

/// Crash the recovery of `vfs`'s process-crash image at its write point `r`: that open must
/// fail; recovering again (the page cache survived) must give `expected`, the state the
/// uninterrupted recovery gave; and a power loss after the interrupted recovery must still
/// hold to the rule with `durable_floor`.
pub fn crash_recovery_at(
    vfs: &SimVfs,
    config: &AedbConfig,
    r: u64,
    expected: &State,
    durable_floor: u64,
    all: &[State],
    what: &str,
) {
    let image = vfs.crash_image(CrashMode::ProcessCrash, 0);
    image.crash_at(r);
    let interrupted = open_sim(&image, config.clone());
    assert!(
        interrupted.is_err(),
        "{what}: recovery crashed at its write point {r} yet opened"
    );
    drop(interrupted);
    let again = image.crash_image(CrashMode::ProcessCrash, 0);
    let engine = open_sim(&again, config.clone())
        .unwrap_or_else(|e| panic!("{what}: recovery after recovery crashed at {r}: {e}"));
    assert_eq!(
        &read_state(&engine),
        expected,
        "{what}: recovery crashed at {r} and redone differs"
    );
    drop(engine);
    let what = format!("{what}: recovery crashed at {r}, then power loss");
    verify(
        &image.crash_image(CrashMode::PowerLoss, r),
        config,
        durable_floor,
        all,
        &what,
    );
}

/// A chain of crashes: the process of `vfs` died (the OS kept its page cache), the next one
/// recovers and acknowledges two more commits (`commit(engine, n)` commits the workload's commit
/// `n` durable and returns its sequence and durable head), then the power fails before the kernel
/// wrote back what the first process left unsynced. Each image (a power loss, a torn write with
/// `seed`) must recover to a prefix keeping every durable acknowledgement of both processes.
/// `all` must reach two commits past the workload's. Returns the images checked.
pub fn crash_chain(
    vfs: &SimVfs,
    config: &AedbConfig,
    acked: &Acked,
    commit: impl Fn(&Engine, u64) -> Result<(u64, u64), AedbError>,
    seed: u64,
    all: &[State],
    what: &str,
) -> u64 {
    let mode = config.durability_mode;
    let survivor = vfs.crash_image(CrashMode::ProcessCrash, 0);
    let engine = open_sim(&survivor, config.clone())
        .unwrap_or_else(|e| panic!("{what}: recovery after a process crash: {e}"));
    let recovered = engine.visible_head_seq();
    let mut chained = *acked;
    chained.any = chained.any.max(recovered);
    for n in recovered + 1..=recovered + 2 {
        let (seq, head) =
            commit(&engine, n).unwrap_or_else(|e| panic!("{what}: commit {n} after recovery: {e}"));
        chained.note(mode, CommitFinality::Durable, seq, head);
    }
    survivor.crash_now();
    drop(engine);
    let mut images = 0;
    for kind in [CrashMode::PowerLoss, CrashMode::TornWrite] {
        images += 1;
        let image = survivor.crash_image(kind, seed);
        let what = format!("{what} process crash, 2 commits, {kind:?}");
        verify(&image, config, chained.durable, all, &what);
    }
    images
}
