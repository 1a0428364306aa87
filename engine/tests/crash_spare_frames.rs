//! The crash sweep directed through spare frames (`pager/src/pool/spare.rs`): the buffer pool
//! hands the memory of a discarded page's frame to the next install (a copy-on-write's copy, a
//! new page, a read's miss). A bug there puts stale bytes into a live page, which a checkpoint
//! then writes or a reader returns.
//!
//! `crash_sweep.rs` reaches that path only by chance: its 20-frame pool evicts a freed page's
//! frame long before the page is reclaimed. Here the pool holds the whole database several
//! times over, so a frame is still resident, and unreferenced, when its page is discarded
//! (freed inside its transaction, or reclaimed at the next begin once no version reaches it);
//! one retained version and a checkpoint every few commits make reclaimed pages come back
//! inside the workload. The reference run proves the path fired (`PoolStats::spare_reuses`)
//! and checks the live state after every commit; then the workload is crashed at every write
//! point, and every image is held to `crash_sweep.rs`'s rule, with each key also read on its
//! own (a point lookup takes the root-to-leaf path a scan does not).
//!
//! Some transactions write and then fail: their pages are discarded with bytes that never
//! committed, and their frames become spares. Such a spare must be filled whole (a new page
//! zeroed, a copy's free middle zeroed, `arena.rs`), or those bytes land in the unused part of
//! a live page and reach the disk; the state would not show it (that part is unspecified), so
//! the reference run looks for them in every file after every checkpoint. Frames of reclaimed
//! versions (one retained version here, so most reuses) hold only committed bytes, and a copy
//! into one leaves its free middle unwritten (`Prior::Committed`): the sweep crashes through
//! that path too.

use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::storage::io::{AlignedBuf, OpenOptions, Vfs};
use aedb::{AedbError, CommitFinality, Engine, DATA_FILE, WAL_DIR};

mod sim_support;
use sim_support::{open_sim, prefix_states, read_state, Acked, Ops, State, DIR};

/// Keys `k000` to `k159`: a tree of several leaves under a branch, so a commit copies a few
/// pages and frees as many.
const KEYS: u64 = 160;

const COMMITS: u64 = 40;

/// A checkpoint after every this many commits: pages a commit replaced are reused only after
/// the next checkpoint, and so are their frames, kept as spares meanwhile only if resident.
const CHECKPOINT_EVERY: u64 = 4;

/// The spare-frame reuses the reference run must show at least, or the sweep proves nothing
/// about them.
const MIN_SPARE_REUSES: u64 = 20;

fn config(mode: DurabilityMode) -> AedbConfig {
    AedbConfig {
        // 384 frames, about three times the data file at the end of the workload (130 pages):
        // nothing is evicted, so a freed page's frame is resident when discarded, and kept.
        buffer_pool_bytes: 384 * 4096,
        ..sim_support::sweep_config(mode)
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("k{:03}", i % KEYS).into_bytes()
}

/// A value whose bytes are a stream of its own, seeded by its commit and slot: a page
/// holding another page's bytes, or an older version of this one, does not pass for it.
fn value(n: u64, j: u64, len: usize) -> Vec<u8> {
    let seed = (n << 8 | j).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len as u64)
        .map(|i| ((seed ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8)
        .collect()
}

/// Commit `n`. The first fills half the keys; later ones put scattered keys, new or
/// overwritten (about one value in five long enough for an overflow chain, the others short
/// or long, so leaves split and shrink), and every third deletes one.
fn commit_ops(n: u64) -> Ops {
    if n == 1 {
        return (0..KEYS)
            .step_by(2)
            .map(|i| (key(i), Some(value(n, i, 180))))
            .collect();
    }
    let mut ops: Ops = (0..3 + n % 4)
        .map(|j| {
            let len = match (n + j) % 5 {
                0 => 9_000,
                1 => 7,
                2 => 60,
                _ => 300,
            };
            (key(n * 37 + j * 53), Some(value(n, j, len)))
        })
        .collect();
    if n.is_multiple_of(3) {
        ops.push((key(n * 41 + 11), None));
    }
    ops
}

fn commit(engine: &Engine, n: u64, finality: CommitFinality) -> Result<(u64, u64), AedbError> {
    sim_support::commit_ops(engine, commit_ops(n), finality)
        .map(|o| (o.commit_seq, o.durable_head_seq))
}

/// What the failed transactions write, and no committed value contains.
const NEVER_COMMITTED: &[u8; 16] = b"NEVER COMMITTED!";

/// A transaction that writes `NEVER_COMMITTED` into a few leaves and an overflow chain, then
/// fails: its pages are discarded, their frames kept as spares. `Ok` when it failed as meant,
/// the error when something else stopped it (the crash).
fn failed_commit(engine: &Engine, n: u64) -> Result<(), AedbError> {
    let result = engine.commit_blocking(CommitFinality::Visible, move |txn| {
        for (j, len) in [(0u64, 200usize), (1, 9_000), (2, 200), (3, 1_000)] {
            let garbage: Vec<u8> = NEVER_COMMITTED.iter().copied().cycle().take(len).collect();
            txn.insert("kv", &key(n * 13 + j * 40 + 5), &garbage)?;
        }
        Err::<(), _>(AedbError::Validation("fails on purpose".into()))
    });
    match result {
        Err(AedbError::Validation(_)) => Ok(()),
        Err(other) => Err(other),
        Ok(_) => panic!("the failing transaction {n} committed"),
    }
}

/// Commits `1..=COMMITS` (a checkpoint after every `CHECKPOINT_EVERY`th, a failed transaction
/// before every third), stopping at the first error; `after` sees the engine after each commit.
fn workload(
    engine: &Engine,
    mode: DurabilityMode,
    acked: &mut Acked,
    mut after: impl FnMut(&Engine, u64),
) {
    for n in 1..=COMMITS {
        if n % 3 == 2 && failed_commit(engine, n).is_err() {
            return;
        }
        let finality = if n.is_multiple_of(2) {
            CommitFinality::Durable
        } else {
            CommitFinality::Visible
        };
        match commit(engine, n, finality) {
            Ok((seq, head)) => {
                assert_eq!(seq, n, "sequence");
                acked.note(mode, finality, seq, head);
            }
            Err(_) => return,
        }
        if n.is_multiple_of(CHECKPOINT_EVERY) && engine.checkpoint_now().is_err() {
            return;
        }
        after(engine, n);
    }
}

/// Every key, read on its own, holds what `expected` says (absent keys included).
fn assert_point_reads(engine: &Engine, expected: &State, what: &str) {
    let snapshot = engine.snapshot();
    for i in 0..KEYS {
        let key = key(i);
        let got = snapshot
            .get("kv", &key)
            .unwrap_or_else(|e| panic!("{what}: reading {:?}: {e}", String::from_utf8_lossy(&key)));
        assert!(
            got.as_ref() == expected.get(&key),
            "{what}: key {} reads {:?} bytes, expected {:?}",
            String::from_utf8_lossy(&key),
            got.map(|v| v.len()),
            expected.get(&key).map(Vec::len)
        );
    }
}

/// Recover `image` and hold it to the rule (`sim_support::verify_recovered`: a prefix of the
/// commits, scanned value for value, no acknowledged commit under `floor` lost, the checker
/// passes), then read every key on its own. Returns the recovered sequence.
fn verify(image: &SimVfs, mode: DurabilityMode, floor: u64, all: &[State], what: &str) -> u64 {
    let engine =
        open_sim(image, config(mode)).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    let seq = sim_support::verify_recovered(&engine, floor, all, what);
    assert_point_reads(&engine, &all[seq as usize], what);
    seq
}

/// Every file of the database in `vfs` as it stands (read from a copy, so `vfs` passes no
/// write point for it).
fn files(vfs: &SimVfs) -> Vec<(String, Vec<u8>)> {
    let copy = vfs.crash_image(CrashMode::ProcessCrash, 0);
    let options = OpenOptions {
        read_only: true,
        ..OpenOptions::default()
    };
    let dir = Path::new(DIR);
    let mut paths = copy.list_dir(dir).expect("list");
    paths.extend(copy.list_dir(&dir.join(WAL_DIR)).expect("list the log"));
    paths
        .into_iter()
        .map(|path| {
            let file = copy.open(&path, options).expect("open");
            let len = file.len().expect("len") as usize;
            let bytes = file.read_now(0, AlignedBuf::zeroed(len)).expect("read");
            (path.display().to_string(), bytes.to_vec())
        })
        .collect()
}

/// No file of the database holds bytes of a failed transaction.
fn assert_no_uncommitted_bytes(vfs: &SimVfs, what: &str) {
    let files = files(vfs);
    assert!(
        files.iter().any(|(path, _)| path.ends_with(DATA_FILE)),
        "{what}: the data file is not among the files looked at"
    );
    for (path, bytes) in files {
        assert!(
            !bytes
                .windows(NEVER_COMMITTED.len())
                .any(|w| w == NEVER_COMMITTED),
            "{what}: {path} holds bytes of a transaction that never committed"
        );
    }
}

/// The uncrashed run: its state after every commit is the prefix, and it must have reused
/// spare frames often. Returns its spare reuses.
fn reference_run(mode: DurabilityMode, all: &[State]) -> u64 {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, config(mode)).expect("open");
    let mut acked = Acked::default();
    workload(&engine, mode, &mut acked, |engine, n| {
        let what = format!("{mode:?} reference run after commit {n}");
        assert!(
            read_state(engine) == all[n as usize],
            "{what}: the live state is not the prefix"
        );
        assert_point_reads(engine, &all[n as usize], &what);
        if n.is_multiple_of(CHECKPOINT_EVERY) {
            let report = engine.store().check();
            assert!(report.is_ok(), "{what}: {:?}", report.violations);
            assert_no_uncommitted_bytes(&vfs, &what);
        }
    });
    assert_eq!(acked.any, COMMITS, "the reference run commits everything");
    assert_no_uncommitted_bytes(&vfs, &format!("{mode:?} reference run"));
    let stats = engine.store().pool_stats();
    assert_eq!(stats.evictions, 0, "the pool held everything: {stats:?}");
    assert!(
        stats.spare_reuses >= MIN_SPARE_REUSES,
        "{mode:?}: the workload reused spare frames only {} times: {stats:?}",
        stats.spare_reuses
    );
    drop(engine);
    stats.spare_reuses
}

/// The write points of an uncrashed run that checks nothing between commits, as fast as the
/// crashed runs (should the writer thread's 100 ms wake delete covered log segments before the
/// next commit does, it happens at the same pace in both).
fn count_write_points(mode: DurabilityMode) -> u64 {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, config(mode)).expect("open");
    let mut acked = Acked::default();
    workload(&engine, mode, &mut acked, |_, _| {});
    assert_eq!(acked.any, COMMITS, "the uncrashed run commits everything");
    // Before the shutdown: a crashed run goes down before its engine is dropped, so the
    // shutdown's write points are never reached there.
    vfs.write_points()
}

#[derive(Default)]
struct Counts {
    points: u64,
    images: u64,
    chains: u64,
    /// Spare reuses of the crashed runs, up to their crash.
    crashed_runs_spare_reuses: u64,
}

/// Crash the workload at write point `point` and hold every image of it to the rule, and a
/// chain of a process crash, a recovery, two durable commits and a power loss.
fn crash_at(mode: DurabilityMode, point: u64, points: u64, all: &[State], counts: &mut Counts) {
    let vfs = SimVfs::new();
    vfs.crash_at(point);
    let mut acked = Acked::default();
    let what = format!("{mode:?} point {point}");
    sim_support::run_crashed_at(&vfs, config(mode), point, points, &what, |engine| {
        workload(engine, mode, &mut acked, |_, _| {});
        counts.crashed_runs_spare_reuses += engine.store().pool_stats().spare_reuses;
    });
    for kind in CrashMode::ALL {
        counts.images += 1;
        let image = vfs.crash_image(kind, point * 31 + 5);
        let what = format!("{mode:?} point {point} {kind:?}");
        verify(&image, mode, acked.floor(kind), all, &what);
    }
    // Point reads are not repeated here: the chain's images are scanned value for value.
    counts.chains += sim_support::crash_chain(
        &vfs,
        &config(mode),
        &acked,
        |engine, n| commit(engine, n, CommitFinality::Durable),
        point,
        all,
        &format!("{mode:?} point {point}"),
    );
}

/// The reference run, then a crash at every write point of the workload (all of them: the
/// three modes take about 9 s together in the test profile on two cores).
fn sweep(mode: DurabilityMode) {
    // Two past the workload: the crash chain commits two more.
    let all = prefix_states(COMMITS + 2, commit_ops);
    let reference_reuses = reference_run(mode, &all);
    let points = count_write_points(mode);
    let mut counts = Counts {
        points: points + 1,
        ..Counts::default()
    };
    for point in 0..=points {
        crash_at(mode, point, points, &all, &mut counts);
    }
    assert!(
        counts.crashed_runs_spare_reuses > 0,
        "{mode:?}: the crashed runs reused no spare frame"
    );
    println!(
        "spare-frame crash sweep {mode:?}: {reference_reuses} spare reuses in the reference run \
         ({} in the crashed runs), {} crash points, {} images, {} crash chains; 0 acknowledged \
         commits lost, every value read back",
        counts.crashed_runs_spare_reuses, counts.points, counts.images, counts.chains
    );
}

#[test]
fn every_crash_through_spare_frames_recovers_every_acknowledged_value_under_full() {
    sweep(DurabilityMode::Full);
}

#[test]
fn every_crash_through_spare_frames_recovers_every_acknowledged_value_under_batch() {
    sweep(DurabilityMode::Batch);
}

#[test]
fn every_crash_through_spare_frames_recovers_every_acknowledged_value_under_os_buffered() {
    sweep(DurabilityMode::OsBuffered);
}
