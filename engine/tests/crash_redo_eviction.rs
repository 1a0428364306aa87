//! A crash sweep whose recovery must evict under the loan: recovery lends half the buffer pool
//! to its redo buffer (`BufferPool::lend`, 16 frames of a 32-frame pool here), and the
//! workload's log dirties far more pages than the 16 frames left, so the pool writes dirty
//! frames back while redo runs. First the premise (recovering the whole workload did lend and
//! did write back), then a crash at every write point of the workload under a process crash and
//! a power loss, then crashes of recovery itself at write points of the redo's evictions.
//!
//! The rule every image is held to is `sim_support::verify`'s: it recovers, its state is
//! exactly some prefix of the commits, the invariant checker passes, and no acknowledged
//! commit is missing (every commit is durable once acknowledged under `Full`).

use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::{AedbError, CommitFinality, Engine, RecoveryReport, DATA_FILE};

mod sim_support;
use sim_support::trace::{PointOp, TracedPoint, TracingVfs};
use sim_support::{open_sim, prefix_states, Acked, Ops, State, DIR};

const MODE: DurabilityMode = DurabilityMode::Full;
const PAGE: u64 = 4096;
/// Commits of the workload.
const COMMITS: u64 = 40;
/// Keys the workload spreads its puts over.
const KEYS: u64 = 1500;

fn config() -> AedbConfig {
    AedbConfig {
        durability_mode: MODE,
        page_size: PAGE as u32,
        // 32 frames: recovery lends 16 and keeps 16 usable.
        buffer_pool_bytes: 32 * PAGE,
        // The smallest segment allowed: the log rotates during the workload.
        max_segment_bytes: 64 << 10,
        // No checkpoint before the crash: recovery redoes the whole log.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        // The default: recovery that replays anything checkpoints before it answers.
        recovery_checkpoint_frames: 0,
        max_versions: 1,
        hmac_key: Some([5; 32]),
        ..AedbConfig::default()
    }
}

/// Commit `n`: eight puts of about 300 bytes spread over [`KEYS`] keys (so over many leaves),
/// an overflow value of three pages every fifth commit, and a delete every third.
fn commit_ops(n: u64) -> Ops {
    let mut ops: Ops = (0..8u64)
        .map(|j| {
            let key = format!("key{:05}", (n * 193 + j * 811) % KEYS).into_bytes();
            let value = (0..300).map(|i| (n * 31 + j * 7 + i) as u8).collect();
            (key, Some(value))
        })
        .collect();
    if n.is_multiple_of(5) {
        ops.push((
            format!("big{:03}", n % 35).into_bytes(),
            Some(vec![n as u8; 11_000]),
        ));
    }
    if n.is_multiple_of(3) {
        ops.push((format!("key{:05}", (n * 577) % KEYS).into_bytes(), None));
    }
    ops
}

fn finality_of(n: u64) -> CommitFinality {
    if n.is_multiple_of(2) {
        CommitFinality::Durable
    } else {
        CommitFinality::Visible
    }
}

/// Commits `1..=COMMITS`, stopping at the first error; what was acknowledged.
fn workload(engine: &Engine) -> Acked {
    let mut acked = Acked::default();
    for n in 1..=COMMITS {
        let finality = finality_of(n);
        match sim_support::commit_ops(engine, commit_ops(n), finality) {
            Ok(outcome) => {
                assert_eq!(outcome.commit_seq, n, "sequence");
                acked.note(MODE, finality, outcome.commit_seq, outcome.durable_head_seq);
            }
            Err(_) => break,
        }
    }
    acked
}

/// The whole workload, then a crash that loses nothing (the process dies after its last
/// acknowledgement, before any shutdown): the disk recovery starts from.
fn whole_workload() -> (SimVfs, Acked) {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, config()).expect("open");
    let acked = workload(&engine);
    assert_eq!(acked.any, COMMITS, "the reference run commits everything");
    vfs.crash_now();
    drop(engine);
    (vfs, acked)
}

/// The premise: recovering the whole workload borrowed frames from the pool and had to write
/// dirty frames back meanwhile. Without it the sweep would test nothing new.
fn assert_redo_evicts(report: &RecoveryReport, what: &str) {
    assert_eq!(
        report.frames_replayed, COMMITS,
        "{what}: redo replays the log"
    );
    assert!(
        report.redo_lent_frames > 0,
        "{what}: the pool lent no frames to redo: {report:?}"
    );
    // 16 usable frames: evicting fewer pages than that would mean redo barely overflowed.
    assert!(
        report.redo_write_backs >= 16,
        "{what}: redo did not write back dirty frames under the loan: {report:?}"
    );
}

fn premise(all: &[State]) -> RecoveryReport {
    let (vfs, acked) = whole_workload();
    let image = vfs.crash_image(CrashMode::ProcessCrash, 0);
    let engine = open_sim(&image, config()).expect("recovery of the whole workload");
    let report = engine.recovery_report().clone();
    assert_redo_evicts(&report, "whole workload");
    let seq = sim_support::verify_recovered(&engine, acked.any, all, "whole workload");
    assert_eq!(seq, COMMITS);
    println!(
        "redo of {COMMITS} commits: {} frames lent of 32, {} dirty frames written back under the loan",
        report.redo_lent_frames, report.redo_write_backs
    );
    report
}

/// The write points of the whole workload.
fn workload_points() -> u64 {
    let (vfs, _) = whole_workload();
    vfs.write_points()
}

/// The workload crashed at its write point `point` of `points`: the machine, and what was
/// acknowledged.
fn crashed_run(point: u64, points: u64) -> (SimVfs, Acked) {
    let vfs = SimVfs::new();
    vfs.crash_at(point);
    let mut acked = Acked::default();
    let mut fired = true;
    if let Ok(engine) = open_sim(&vfs, config()) {
        acked = workload(&engine);
        // Before `crash_now`, which would make any point look fired.
        fired = vfs.has_crashed();
        vfs.crash_now();
        drop(engine); // its shutdown fails: the machine is down
    }
    // The point fires unless it is the end (a crashed run stops counting write points, so
    // only the uncrashed run's count tells).
    assert!(
        fired || point >= points,
        "point {point} of {points} did not fire"
    );
    (vfs, acked)
}

/// Commit `n` of the workload, durable: its sequence and the durable head.
fn commit_durable(engine: &Engine, n: u64) -> Result<(u64, u64), AedbError> {
    sim_support::commit_ops(engine, commit_ops(n), CommitFinality::Durable)
        .map(|o| (o.commit_seq, o.durable_head_seq))
}

#[derive(Default)]
struct Counts {
    points: u64,
    images: u64,
    /// Images whose recovery wrote back dirty frames under the loan.
    evicting: u64,
    chains: u64,
}

/// Every write point of the workload, crashed; each image recovered after a process crash, a
/// power loss and the device's partial variants of it, and the chain of a process crash, a
/// recovery (evicting) with two more commits and a power loss.
fn sweep(all: &[State]) -> Counts {
    let points = workload_points();
    let mut counts = Counts {
        points: points + 1,
        ..Counts::default()
    };
    for point in 0..=points {
        let (vfs, acked) = crashed_run(point, points);
        for kind in CrashMode::ALL {
            counts.images += 1;
            let image = vfs.crash_image(kind, point * 31 + 5);
            let what = format!("point {point} {kind:?}");
            let engine = open_sim(&image, config())
                .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
            if engine.recovery_report().redo_write_backs > 0 {
                counts.evicting += 1;
            }
            sim_support::verify_recovered(&engine, acked.floor(kind), all, &what);
        }
        let what = format!("point {point}");
        counts.chains +=
            sim_support::crash_chain(&vfs, &config(), &acked, commit_durable, point, all, &what);
    }
    counts
}

#[test]
fn redo_evicting_under_the_loan_survives_a_crash_at_every_write_point() {
    // Two commits past the workload: the chains commit after their recovery.
    let all = prefix_states(COMMITS + 2, commit_ops);
    premise(&all);
    let counts = sweep(&all);
    // Most images replay enough of the log to evict (those crashed early do not).
    assert!(
        counts.evicting * 2 > counts.images,
        "only {} of {} recoveries evicted",
        counts.evicting,
        counts.images
    );
    println!(
        "redo eviction sweep: {} workload crash points, {} images ({} recovered with evictions under the loan), {} crash chains; 0 acknowledged commits lost",
        counts.points, counts.images, counts.evicting, counts.chains
    );
}

/// A write of a page of the data file other than the two meta pages.
fn is_data_page_write(point: &TracedPoint) -> bool {
    point.path == Path::new(DIR).join(DATA_FILE)
        && matches!(point.op, PointOp::Write { offset, .. } if offset >= 2 * PAGE)
}

/// The write points of the redo's eviction write-backs when `vfs`'s process-crash image
/// recovers. Traced on a recovery that does not checkpoint after redo, so every data page it
/// writes is an eviction of redo's (their number is checked against the report); the
/// recovery with the default configuration passes the same points up to the end of redo
/// (checked too), so the numbers hold for it.
fn redo_eviction_points(vfs: &SimVfs, what: &str) -> Vec<u64> {
    let trace_recovery = |config: AedbConfig| {
        let traced = TracingVfs::new(vfs.crash_image(CrashMode::ProcessCrash, 0));
        let engine = traced
            .open(config)
            .unwrap_or_else(|e| panic!("{what}: traced recovery: {e}"));
        let report = engine.recovery_report().clone();
        traced.sim().crash_now();
        drop(engine);
        (traced.points(), report)
    };
    let (no_checkpoint, report) = trace_recovery(AedbConfig {
        recovery_checkpoint_frames: u64::MAX,
        ..config()
    });
    let evictions: Vec<u64> = no_checkpoint
        .iter()
        .filter(|p| is_data_page_write(p))
        .map(|p| p.point)
        .collect();
    assert_eq!(
        evictions.len() as u64,
        report.redo_write_backs,
        "{what}: the traced data-page writes are the redo's write-backs"
    );
    let (default, _) = trace_recovery(config());
    let redo_end = evictions.last().map_or(0, |last| *last as usize + 1);
    assert!(
        default.len() >= redo_end
            && default[..redo_end]
                .iter()
                .zip(&no_checkpoint[..redo_end])
                .all(|(a, b)| a.path == b.path && a.op == b.op),
        "{what}: recovery's write points up to the end of redo depend on the configuration"
    );
    evictions
}

/// `n` points evenly spaced over `points`, the first and the last included.
fn evenly_spaced(points: &[u64], n: usize) -> Vec<u64> {
    if points.len() <= n {
        return points.to_vec();
    }
    let mut chosen: Vec<u64> = (0..n)
        .map(|i| points[i * (points.len() - 1) / (n - 1)])
        .collect();
    chosen.dedup();
    chosen
}

/// Crash the recovery of `vfs`'s image at each of its redo's eviction write-backs, each then
/// recovered again and after a power loss. Returns how many.
fn crash_redo_evictions(vfs: &SimVfs, acked: &Acked, all: &[State], what: &str) -> usize {
    let evictions = redo_eviction_points(vfs, what);
    let config = config();
    let (expected, _) = sim_support::recover_process_image(vfs, &config, what);
    for &r in &evictions {
        // The crash fires at a data page's write, inside the open, as traced.
        let traced = TracingVfs::new(vfs.crash_image(CrashMode::ProcessCrash, 0));
        traced.sim().crash_at(r);
        assert!(
            traced.open(config.clone()).is_err(),
            "{what}: crashed at {r}"
        );
        let at = traced.crashed_at();
        assert!(
            at.as_ref().is_some_and(is_data_page_write),
            "{what}: the crash at {r} hit {at:?}, not a redo write-back"
        );
        sim_support::crash_recovery_at(vfs, &config, r, &expected, acked.durable, all, what);
    }
    evictions.len()
}

#[test]
fn a_crash_during_the_redos_evictions_recovers_again() {
    let all = prefix_states(COMMITS, commit_ops);
    let report = premise(&all);
    let (vfs, acked) = whole_workload();
    let whole = crash_redo_evictions(&vfs, &acked, &all, "whole workload");
    assert_eq!(
        whole as u64, report.redo_write_backs,
        "every eviction point"
    );
    // Workloads crashed at evenly spaced points: shorter logs, most of them still evicting.
    let total = workload_points();
    let points: Vec<u64> = (0..=total).collect();
    let (mut images, mut crashed) = (0, whole);
    for point in evenly_spaced(&points, 8) {
        let (vfs, acked) = crashed_run(point, total);
        let n = crash_redo_evictions(&vfs, &acked, &all, &format!("point {point}"));
        images += usize::from(n > 0);
        crashed += n;
    }
    assert!(
        images >= 5,
        "only {images} of 8 crashed workloads evicted in redo"
    );
    println!(
        "recovery crashed at {crashed} write points of its redo's evictions ({whole} of the whole workload's, the rest over {images} crashed workloads); 0 acknowledged commits lost"
    );
}
