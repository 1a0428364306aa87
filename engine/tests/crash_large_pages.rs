//! A crash sweep at the largest page size, 64 KiB. There the smallest extent the data file
//! grows by (64 pages) is already the largest (4 MiB, `MAX_GROWTH_BYTES`), so every growth is
//! exactly 4 MiB. The workload grows the file at least twice with checkpoints in between, so
//! it has write points at the growth itself, at eviction and checkpoint write-backs into the
//! extent just grown, at the checkpoint's data-file sync and at the meta-page write. The sweep
//! crashes it at every write point (a process crash, a power loss, and a power loss that
//! tears one unsynced write), and after a process crash at a fifth of the points and at every
//! growth, sync and meta point, also recovers, commits more and loses power.
//!
//! How each kind is known to be hit: every crash run runs on a `TracingVfs`, which records the
//! op the crash fired at; [`classify`] names its kind, and the test asserts that each kind of
//! [`REQUIRED`] was crashed at at least once (the reference run's trace also asserts that they
//! all occur, before the sweep).
//!
//! The rule every image is held to is `sim_support::verify`'s: it recovers, its state is
//! exactly some prefix of the commits, the invariant checker passes, and no acknowledged
//! commit is missing (every commit is durable once acknowledged under `Full`).

use std::collections::BTreeMap;
use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::{AedbError, CommitFinality, Engine, DATA_FILE};

mod sim_support;
use sim_support::trace::{PointOp, TracedPoint, TracingVfs};
use sim_support::{prefix_states, Acked, Ops, DIR};

const MODE: DurabilityMode = DurabilityMode::Full;
const PAGE: u64 = 65536;
/// Every growth at 64 KiB pages: 64 pages, the smallest extent, is the 4 MiB cap.
const EXTENT: u64 = 4 << 20;
/// A new data file: the two meta pages.
const INITIAL_LEN: u64 = 2 * PAGE;
const COMMITS: u64 = 24;
/// A checkpoint after every this many commits.
const CHECKPOINT_EVERY: u64 = 7;
/// Keys of the large values.
const BIG_KEYS: u64 = 30;
/// A large value: three overflow pages (a page holds 65,496 bytes of a value), the last one
/// nearly empty, so the pages come with little log.
const BIG_VALUE: u64 = 131_000;

const OPENING: &str = "open";
const COMMITTING: &str = "commit";
const CHECKPOINTING: &str = "checkpoint";

fn config() -> AedbConfig {
    AedbConfig {
        durability_mode: MODE,
        page_size: PAGE as u32,
        // 32 frames of 64 KiB (2 MiB): fewer than the pages the commits between two
        // checkpoints dirty, so commits evict dirty frames (and recovery, 16 frames lent).
        buffer_pool_bytes: 32 * PAGE,
        // One segment holds the whole log (about 6.3 MiB): no segment is ever covered and
        // deleted, which the writer thread does when it gets to it, so the write points are
        // numbered the same on every run.
        max_segment_bytes: 8 << 20,
        // Checkpoints only where the workload asks: the same write points on every run.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        recovery_checkpoint_frames: 0,
        max_versions: 1,
        hmac_key: Some([7; 32]),
        ..AedbConfig::default()
    }
}

/// Commit `n`: two values of three pages under [`BIG_KEYS`] keys (90 live pages once every
/// key was written: the file passes 66 pages, its size after the first growth), three small
/// puts, and a delete of a large value every third commit (freed pages reused after the next
/// checkpoint).
fn commit_ops(n: u64) -> Ops {
    let mut ops: Ops = (0..2u64)
        .map(|j| {
            let key = format!("big{:03}", (2 * n + j) % BIG_KEYS).into_bytes();
            let value = (0..BIG_VALUE).map(|i| (i * 7 + n * 13 + j) as u8).collect();
            (key, Some(value))
        })
        .collect();
    for j in 0..3u64 {
        let key = format!("small{:03}", (n * 17 + j * 5) % 200).into_bytes();
        ops.push((key, Some(vec![(n + j) as u8; 100])));
    }
    if n.is_multiple_of(3) {
        ops.push((format!("big{:03}", (n * 7) % BIG_KEYS).into_bytes(), None));
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

/// Commit `n` of the workload, durable: its sequence and the durable head.
fn commit_durable(engine: &Engine, n: u64) -> Result<(u64, u64), AedbError> {
    sim_support::commit_ops(engine, commit_ops(n), CommitFinality::Durable)
        .map(|o| (o.commit_seq, o.durable_head_seq))
}

/// Open on `vfs` and run the workload (a checkpoint every [`CHECKPOINT_EVERY`] commits),
/// stopping at the first error; the write points are labelled with what the run was doing.
fn workload(vfs: &TracingVfs) -> Acked {
    let mut acked = Acked::default();
    vfs.set_label(OPENING);
    let Ok(engine) = vfs.open(config()) else {
        return acked;
    };
    assert_eq!(engine.store().page_size(), PAGE as usize, "64 KiB pages");
    for n in 1..=COMMITS {
        vfs.set_label(COMMITTING);
        let finality = finality_of(n);
        match sim_support::commit_ops(&engine, commit_ops(n), finality) {
            Ok(outcome) => {
                assert_eq!(outcome.commit_seq, n, "sequence");
                acked.note(MODE, finality, outcome.commit_seq, outcome.durable_head_seq);
            }
            Err(_) => break,
        }
        if n.is_multiple_of(CHECKPOINT_EVERY) {
            vfs.set_label(CHECKPOINTING);
            if engine.checkpoint_now().is_err() {
                break;
            }
        }
    }
    // A crashed process runs no shutdown: the machine goes down with it.
    vfs.sim().crash_now();
    drop(engine);
    acked
}

/// The kind of a write point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// The data file grows by an extent.
    Grow,
    /// An eviction's write-back of a page (outside a checkpoint) into the extent grown last.
    EvictionIntoNewExtent,
    /// A checkpoint's write of pages starting in the extent grown last.
    CheckpointIntoNewExtent,
    /// A page write elsewhere in the file.
    OtherPageWrite,
    /// A checkpoint's sync of the data file before its meta page.
    DataSync,
    /// The write of a meta page.
    MetaWrite,
    /// The sync after a meta page's write.
    MetaSync,
    /// The log, directory entries, and the syncs of an open.
    Other,
}

/// The kinds the sweep must crash at.
const REQUIRED: [Kind; 5] = [
    Kind::Grow,
    Kind::EvictionIntoNewExtent,
    Kind::CheckpointIntoNewExtent,
    Kind::DataSync,
    Kind::MetaWrite,
];

/// The data file's extents grown before `history`'s end: (start, end) of each growth.
fn extents(history: &[TracedPoint]) -> Vec<(u64, u64)> {
    let data = Path::new(DIR).join(DATA_FILE);
    let mut len = INITIAL_LEN;
    let mut out = Vec::new();
    for point in history.iter().filter(|p| p.path == data) {
        if let PointOp::Grow { len: to } = point.op {
            out.push((len, to));
            len = to;
        }
    }
    out
}

/// The kind of `point`, whose predecessors in its run are `history`.
fn classify(history: &[TracedPoint], point: &TracedPoint) -> Kind {
    let data = Path::new(DIR).join(DATA_FILE);
    if point.path != data {
        return Kind::Other;
    }
    let previous = history.iter().rev().find(|p| p.path == data);
    match point.op {
        PointOp::Grow { .. } => Kind::Grow,
        PointOp::Write { offset, .. } if offset < 2 * PAGE => Kind::MetaWrite,
        PointOp::Write { offset, .. } => {
            let newest = extents(history).last().copied();
            let in_newest = newest.is_some_and(|(start, end)| (start..end).contains(&offset));
            match (point.label, in_newest) {
                (COMMITTING, true) => Kind::EvictionIntoNewExtent,
                (CHECKPOINTING, true) => Kind::CheckpointIntoNewExtent,
                _ => Kind::OtherPageWrite,
            }
        }
        PointOp::Sync if point.label == CHECKPOINTING => match previous.map(|p| p.op) {
            Some(PointOp::Write { offset, .. }) if offset < 2 * PAGE => Kind::MetaSync,
            _ => Kind::DataSync,
        },
        _ => Kind::Other,
    }
}

/// The reference run: every commit, the file grown at least twice by exactly 4 MiB, a page
/// written into the second extent, and every kind of [`REQUIRED`] among its write points.
/// Returns its write points.
fn premise() -> u64 {
    let vfs = TracingVfs::new(SimVfs::new());
    assert_eq!(workload(&vfs).any, COMMITS, "the reference run commits all");
    let points = vfs.points();
    let grown = extents(&points);
    assert!(grown.len() >= 2, "the data file grew {} times", grown.len());
    for (start, end) in &grown {
        assert_eq!(end - start, EXTENT, "a growth of {start}..{end}");
    }
    let len = vfs
        .sim()
        .file_bytes(&Path::new(DIR).join(DATA_FILE))
        .expect("the data file")
        .len() as u64;
    assert!(len >= INITIAL_LEN + 2 * EXTENT, "the file is {len} bytes");
    let second = grown[1];
    assert!(
        points
            .iter()
            .any(|p| matches!(p.op, PointOp::Write { offset, .. }
            if p.path.ends_with(DATA_FILE) && (second.0..second.1).contains(&offset))),
        "no page was written into the second extent"
    );
    let kinds = kinds_of(&points);
    for kind in REQUIRED {
        assert!(
            kinds.contains_key(&kind),
            "the workload has no {kind:?} point: {kinds:?}"
        );
    }
    // Recovering it replays the commits after the last checkpoint, with 16 of 32 frames lent.
    let image = vfs.sim().crash_image(CrashMode::ProcessCrash, 0);
    let engine = sim_support::open_sim(&image, config()).expect("recovery");
    let report = engine.recovery_report().clone();
    assert_eq!(report.recovered_seq, COMMITS);
    drop(engine);
    println!(
        "64 KiB pages: the file grew {} times by 4 MiB to {len} bytes; write points by kind: {kinds:?}; its recovery replayed {} commits, {} frames lent, {} written back",
        grown.len(),
        report.frames_replayed,
        report.redo_lent_frames,
        report.redo_write_backs
    );
    vfs.sim().write_points()
}

fn kinds_of(points: &[TracedPoint]) -> BTreeMap<Kind, u64> {
    let mut kinds = BTreeMap::new();
    for (i, point) in points.iter().enumerate() {
        *kinds.entry(classify(&points[..i], point)).or_insert(0) += 1;
    }
    kinds
}

/// The workload crashed at `point` of `points`: the machine, what was acknowledged, and the
/// kind of the op the crash fired at (None when the run ended first).
fn crashed_run(point: u64, points: u64) -> (SimVfs, Acked, Option<Kind>) {
    let vfs = TracingVfs::new(SimVfs::new());
    vfs.sim().crash_at(point);
    let acked = workload(&vfs);
    let kind = vfs.crashed_at().map(|at| {
        let points = vfs.points();
        let history: Vec<TracedPoint> = points.into_iter().filter(|p| p.point < at.point).collect();
        classify(&history, &at)
    });
    // The point fires unless it is the end (a crashed run stops counting write points, so
    // only the uncrashed run's count tells).
    assert!(
        kind.is_some() || point >= points,
        "point {point} of {points} did not fire"
    );
    (vfs.sim().clone(), acked, kind)
}

#[test]
fn growth_checkpoints_and_meta_writes_at_64k_pages_survive_a_crash_at_every_write_point() {
    let points = premise();
    // Two commits past the workload: the chains commit after their recovery.
    let all = prefix_states(COMMITS + 2, commit_ops);
    let config = config();
    let mut crashed: BTreeMap<Kind, u64> = BTreeMap::new();
    let (mut images, mut chains) = (0, 0);
    for point in 0..=points {
        let (vfs, acked, kind) = crashed_run(point, points);
        if let Some(kind) = kind {
            *crashed.entry(kind).or_insert(0) += 1;
        }
        // A killed process, a power loss, and one with a write torn at a sector (a 64 KiB page
        // is 128 of them).
        for mode in [
            CrashMode::ProcessCrash,
            CrashMode::PowerLoss,
            CrashMode::TornWrite,
        ] {
            images += 1;
            let image = vfs.crash_image(mode, point * 17 + 3);
            let what = format!("point {point} ({kind:?}) {mode:?}");
            sim_support::verify(&image, &config, acked.floor(mode), &all, &what);
        }
        // The chain at every point of the few growth, sync and meta kinds, and every fifth.
        let rare = matches!(
            kind,
            Some(Kind::Grow | Kind::DataSync | Kind::MetaWrite | Kind::MetaSync)
        );
        if rare || point.is_multiple_of(5) {
            let what = format!("point {point} ({kind:?})");
            chains +=
                sim_support::crash_chain(&vfs, &config, &acked, commit_durable, point, &all, &what);
        }
    }
    for kind in REQUIRED {
        assert!(
            crashed.contains_key(&kind),
            "no crash fired at a {kind:?} point: {crashed:?}"
        );
    }
    println!(
        "64 KiB crash sweep: {} workload crash points {crashed:?}, {images} images, {chains} crash chains; 0 acknowledged commits lost",
        points + 1
    );
}
