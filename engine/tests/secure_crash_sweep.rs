//! The crash sweep on a secure-mode configuration: HMAC-authenticated, hash-chained log frames,
//! `RecoveryMode::Strict` and `DurabilityMode::Full` — the configuration
//! `AedbConfig::validate_secure` demands. With an HMAC key under Strict recovery the WAL reader's
//! evidence floor is 0: damage any later frame proves durable is refused even where the
//! checkpoint covers it, and a segment that joins across a covered gap must still continue the
//! hash chain.
//!
//! The workload (one process, 20 commits, a checkpoint after every 5th, segments of the smallest
//! size allowed) rotates the log at least twice (five segments), and its later checkpoints cover
//! whole segments that stay on disk until the first commit after the checkpoint deletes them
//! (a caller-led group ends by deleting what a checkpoint covers, as the writer thread's do):
//! images crashed in between hold covered segments, which secure recovery reads and verifies,
//! and joins the segments after them. The shutdown's write points are not swept: a crashed run
//! goes down before its engine is dropped.
//! The sweep crashes the workload at *every* write point (no sampling; about 160 points, a few
//! seconds in the test profile) and takes every crash image (`CrashMode::ALL`: process crash,
//! power loss, and the subset, torn and garbage-sector variants of power loss). One image is
//! also opened under a wrong key, which must be refused (`LogHmac`): the frames really are
//! authenticated.
//!
//! Determinism: the write points are the same on every run. Should the writer thread's idle
//! wake (100 ms) delete covered segments before the next commit does, their write points come
//! earlier but are as many.
//! Crashes during recovery itself are not swept here: `crash_sweep.rs` (`sweep_full`, whose
//! configuration is also HMAC, hash chain, Strict and `Full`) does that.
//!
//! The rule every image is held to, as in `crash_sweep.rs`: it opens with the same secure
//! configuration (Strict), its state is exactly some prefix of the commits, the invariant
//! checker passes, and no acknowledged commit is missing that the image's kind of crash must
//! keep — a process crash keeps every acknowledged commit, a power loss every one acknowledged
//! durable (under `Full`, every acknowledged one).
//!
//! Two chains per crash point: (1) the process died, the next recovers and acknowledges two
//! durable commits, then the power fails (power-loss and torn-write images); (2) the power
//! failed mid-write (a torn-write image), the next process recovers past the torn tail and
//! acknowledges two durable commits, then it is killed or the power fails again — recovery
//! must then read across the tail the first recovery abandoned into the segment it started.

use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode, RecoveryMode};
use aedb::error::CorruptionKind;
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::storage::io::Vfs;
use aedb::{AedbError, CommitFinality, Engine};

mod sim_support;
use sim_support::{open_sim, Acked, State};

const KEY: [u8; 32] = [0x5e; 32];
const COMMITS: u64 = 20;
/// Commits each chain acknowledges after its first recovery.
const CHAIN_COMMITS: u64 = 2;
const WAL_DIR: &str = "/db/wal";

fn config() -> AedbConfig {
    AedbConfig {
        hmac_key: Some(KEY),
        hash_chain_required: true,
        recovery_mode: RecoveryMode::Strict,
        durability_mode: DurabilityMode::Full,
        page_size: 4096,
        buffer_pool_bytes: 20 * 4096,
        // The smallest segment allowed: the workload rotates the log more than once.
        max_segment_bytes: 64 << 10,
        // Checkpoints come only from the workload: the same write points on every run.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        recovery_checkpoint_frames: 0,
        // One retained version: pages freed by copy-on-write are reused inside the sweep.
        max_versions: 1,
        ..AedbConfig::default()
    }
}

fn open(vfs: &SimVfs) -> Result<Engine, AedbError> {
    open_sim(vfs, config())
}

/// Commit `n`: puts of varied sizes (a large overflow value every fourth) and a delete every
/// third.
fn commit_ops(n: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let size = match n % 4 {
        0 => 24_000,
        1 => 5,
        _ => 300,
    };
    let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..(1 + n % 3))
        .map(|j| {
            (
                format!("s{:03}", (n * 5 + j * 17) % 50).into_bytes(),
                Some(vec![(n * 3 + j) as u8; size]),
            )
        })
        .collect();
    if n.is_multiple_of(3) {
        ops.push((format!("s{:03}", (n * 13) % 50).into_bytes(), None));
    }
    ops
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

/// Segment numbers in the log directory of `vfs`.
fn segments(vfs: &SimVfs) -> Vec<u64> {
    let dir = Path::new(WAL_DIR);
    if !vfs.exists(dir) {
        return Vec::new();
    }
    let mut out: Vec<u64> = vfs
        .list_dir(dir)
        .expect("list the log directory")
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            name.strip_prefix("wal-")?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    out.sort_unstable();
    out
}

/// What a run saw of the log's segments.
#[derive(Debug, Default)]
struct SegmentsSeen {
    /// The highest segment number that existed.
    newest: u64,
    /// The most segments on disk right after a checkpoint: with two or more, the checkpoint
    /// covers every frame of a segment that stays on disk until the next commit deletes it,
    /// which secure recovery of an image crashed in between still reads and verifies.
    covered_at_checkpoint: usize,
}

impl SegmentsSeen {
    fn rotated(&mut self, vfs: &SimVfs) {
        self.newest = self.newest.max(segments(vfs).last().copied().unwrap_or(0));
    }

    fn checkpointed(&mut self, vfs: &SimVfs) {
        self.covered_at_checkpoint = self.covered_at_checkpoint.max(segments(vfs).len());
    }
}

/// Commits `first..=last` (and a checkpoint after every 5th), stopping at the first error.
fn workload(
    engine: &Engine,
    vfs: &SimVfs,
    first: u64,
    last: u64,
    acked: &mut Acked,
    seen: &mut SegmentsSeen,
) {
    for n in first..=last {
        let finality = finality_of(n);
        match commit(engine, n, finality) {
            Ok((seq, head)) => {
                assert_eq!(seq, n, "sequence");
                acked.note(DurabilityMode::Full, finality, seq, head);
            }
            Err(_) => return,
        }
        seen.rotated(vfs);
        if n.is_multiple_of(5) {
            if engine.checkpoint_now().is_err() {
                return;
            }
            seen.checkpointed(vfs);
        }
    }
}

/// Recover `image` with the secure configuration and hold it to the rule; returns the
/// recovered sequence.
fn verify(image: &SimVfs, floor: u64, all: &[State], what: &str) -> u64 {
    sim_support::verify(image, &config(), floor, all, what)
}

/// Recover `source`, acknowledge `CHAIN_COMMITS` durable commits on it, crash, and hold each of
/// `finals` (crash images of that second crash) to the rule. Returns the images checked.
fn chain(source: &SimVfs, finals: &[CrashMode], all: &[State], what: &str) -> u64 {
    let engine = open(source).unwrap_or_else(|e| panic!("{what}: first recovery failed: {e}"));
    let recovered = engine.visible_head_seq();
    let mut acked = Acked {
        any: recovered,
        durable: recovered,
    };
    for n in recovered + 1..=recovered + CHAIN_COMMITS {
        let (seq, head) = commit(&engine, n, CommitFinality::Durable)
            .unwrap_or_else(|e| panic!("{what}: commit {n} after recovery failed: {e}"));
        assert_eq!(seq, n, "{what}: sequence after recovery");
        acked.note(DurabilityMode::Full, CommitFinality::Durable, seq, head);
    }
    source.crash_now();
    drop(engine); // its shutdown fails: the machine is down
    for (i, &kind) in finals.iter().enumerate() {
        let image = source.crash_image(kind, 7 + i as u64);
        let what = format!("{what}, {CHAIN_COMMITS} commits, {kind:?}");
        let seq = verify(&image, acked.floor(kind), all, &what);
        assert!(
            seq >= recovered + CHAIN_COMMITS,
            "{what}: chain commits lost"
        );
    }
    finals.len() as u64
}

/// The sweep's images really are authenticated: the same image under another key is refused.
fn wrong_key_refused(image: &SimVfs, point: u64) {
    let wrong = AedbConfig {
        hmac_key: Some([0xa7; 32]),
        ..config()
    };
    match open_sim(image, wrong) {
        Err(AedbError::DataCorruption {
            kind: CorruptionKind::LogHmac,
            ..
        }) => {}
        Err(e) => panic!("point {point}: the wrong HMAC key refused otherwise: {e:?}"),
        Ok(_) => panic!("point {point}: an image opened under the wrong HMAC key"),
    }
}

#[derive(Debug, Default)]
struct Counts {
    points: u64,
    images: u64,
    chain_images: u64,
    /// Images that held more than one log segment when recovery opened them.
    multi_segment_images: u64,
    /// Torn-write chain sources whose log differs from the power-loss image's: unsynced log
    /// bytes (some of them torn) that the first recovery had to end the log at.
    torn_logs: u64,
}

/// Whether the log files of `a` and `b` differ (names or bytes).
fn logs_differ(a: &SimVfs, b: &SimVfs) -> bool {
    let (sa, sb) = (segments(a), segments(b));
    sa != sb
        || sa.iter().any(|n| {
            let path = Path::new(WAL_DIR).join(format!("wal-{n:016}.log"));
            a.file_bytes(&path) != b.file_bytes(&path)
        })
}

fn sweep() -> Counts {
    let all = sim_support::prefix_states(COMMITS + CHAIN_COMMITS, commit_ops);
    let reference = SimVfs::new();
    let engine = open(&reference).expect("open");
    let mut acked = Acked::default();
    let mut seen = SegmentsSeen::default();
    workload(&engine, &reference, 1, COMMITS, &mut acked, &mut seen);
    assert_eq!(acked.any, COMMITS, "the reference run commits everything");
    assert!(
        seen.newest >= 3,
        "the workload rotates the log at least twice (newest segment {})",
        seen.newest
    );
    assert!(
        seen.covered_at_checkpoint >= 2,
        "a checkpoint covers a whole segment that stays on disk: {seen:?}"
    );
    // Counted before the shutdown: a crashed run goes down before its engine is dropped, so
    // the shutdown's write points are never reached there.
    let points = reference.write_points();
    drop(engine);
    // The clean shutdown checkpoints and deletes every covered segment.
    assert_eq!(
        segments(&reference),
        vec![seen.newest],
        "shutdown deleted the covered segments"
    );
    let mut counts = Counts {
        points: points + 1,
        ..Counts::default()
    };
    for point in 0..=points {
        let vfs = SimVfs::new();
        vfs.crash_at(point);
        let mut acked = Acked::default();
        let mut seen = SegmentsSeen::default();
        let mut fired = true;
        if let Ok(engine) = open(&vfs) {
            workload(&engine, &vfs, 1, COMMITS, &mut acked, &mut seen);
            fired = vfs.has_crashed();
            vfs.crash_now();
            drop(engine); // its shutdown fails: the machine is down
        }
        // The crash point fires unless it is the end of the workload (a crashed run stops
        // counting write points, so only the reference run's count tells).
        assert!(
            fired || point >= points,
            "point {point} of {points} did not fire"
        );
        let seed = point * 31 + 5;
        for kind in CrashMode::ALL {
            counts.images += 1;
            let image = vfs.crash_image(kind, seed);
            if segments(&image).len() > 1 {
                counts.multi_segment_images += 1;
            }
            let what = format!("secure point {point} {kind:?} (seed {seed})");
            verify(&image, acked.floor(kind), &all, &what);
        }
        if point == points / 2 {
            wrong_key_refused(&vfs.crash_image(CrashMode::ProcessCrash, 0), point);
        }
        // Chain 1: killed process, recovery and two durable commits, then a power loss.
        let survivor = vfs.crash_image(CrashMode::ProcessCrash, 0);
        let what = format!("secure point {point} ProcessCrash");
        counts.chain_images += chain(
            &survivor,
            &[CrashMode::PowerLoss, CrashMode::TornWrite],
            &all,
            &what,
        );
        // Chain 2: a torn write at power loss, recovery past the torn tail and two durable
        // commits, then the process is killed or the power fails again.
        let torn = vfs.crash_image(CrashMode::TornWrite, seed);
        if logs_differ(&torn, &vfs.crash_image(CrashMode::PowerLoss, seed)) {
            counts.torn_logs += 1;
        }
        let what = format!("secure point {point} TornWrite (seed {seed})");
        counts.chain_images += chain(
            &torn,
            &[CrashMode::ProcessCrash, CrashMode::PowerLoss],
            &all,
            &what,
        );
    }
    counts
}

#[test]
fn secure_config_is_what_secure_mode_demands() {
    let config = config();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.validate_secure("secure crash sweep"), Ok(()));
}

#[test]
fn secure_sweep_full() {
    let counts = sweep();
    assert!(
        counts.multi_segment_images > 0,
        "some images hold several segments: {counts:?}"
    );
    assert!(
        counts.torn_logs > 0,
        "some torn-write images hold unsynced log bytes: {counts:?}"
    );
    println!(
        "secure crash sweep: {} workload crash points, {} images ({} with several segments), {} chain images ({} chains from a torn log); 0 acknowledged commits lost",
        counts.points, counts.images, counts.multi_segment_images, counts.chain_images, counts.torn_logs
    );
}
