//! Accumulators across crashes.
//!
//! 1. `AedbInstance` (the accumulator rules themselves): a random workload under
//!    `DurabilityMode::Full` with checkpoints off, held to the model after every call; every few
//!    calls the live directory is copied between two commits — the disk a `kill -9` at that
//!    moment leaves — and the copy is opened, so recovery redoes the log's accumulator frames.
//!    The recovered accumulators must equal the model of the acknowledged calls; the last
//!    call retried on the copy must be a no-op (or refused as the model says); the copy accepts
//!    new deltas; and a copy of the copy (a second crash after recovery and more commits)
//!    recovers the same way.
//!
//! 2. The simulated disk, crashed at every write point (every crash kind, and the chain "process
//!    crash, recover, commit, lose power"). `AedbInstance` opens only on the OS file systems,
//!    so these commits are made on `Engine` with the accumulator's storage owner
//!    (`aedb::stored::accumulators`), writing what each kind of accumulator commit writes:
//!    the registry entry and a fresh tree, a delta with its dedupe records and state, an
//!    exposure, a release, a counted refusal. Every image must recover to exactly the state
//!    after some prefix of the commits, holding every acknowledged one, with its records
//!    consistent (value = sum of the deltas, total exposure = sum of the open exposures).

use std::collections::BTreeMap;
use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::AedbInstance;
use proptest::prelude::*;

mod accumulator_support;
use accumulator_support::{check_reads, defs, op, setup, step, AccDef, Call, Model, Op, NAMES};

fn instance_config() -> AedbConfig {
    AedbConfig {
        durability_mode: DurabilityMode::Full,
        // No checkpoint while the workload runs: every copy is recovered by redoing the log.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        ..AedbConfig::default()
    }
}

/// Copy the directory `from` (files and subdirectories) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Open the disk a crash left in `dir`, hold it to `model`, and return it open with the
/// number of log frames its recovery redid.
async fn recover(dir: &Path, model: &Model, label: &str) -> (AedbInstance, u64) {
    let db = AedbInstance::open(instance_config(), dir)
        .unwrap_or_else(|e| panic!("{label}: recovery failed: {e}"));
    let frames = db.engine().recovery_report().frames_replayed;
    check_reads(&db, model, label).await;
    let check = db.engine().store().check();
    assert!(check.is_ok(), "{label}: {:?}", check.violations);
    (db, frames)
}

/// A new delta on the first accumulator that exists (if any), on `db` and `model`.
async fn one_more_delta(db: &AedbInstance, model: &mut Model, tag: &str, label: &str) {
    let Some((name, latest)) = model
        .accs
        .iter()
        .next()
        .map(|(name, acc)| (name.clone(), acc.latest_order.unwrap_or(0)))
    else {
        return;
    };
    let call = Call::Accumulate {
        name,
        delta: 3,
        key: format!("after-{tag}"),
        order: latest + 1,
        release: None,
    };
    let class = step(db, model, &call, label).await;
    assert_eq!(class, accumulator_support::Class::Ok, "{label}");
}

/// Run `ops` (a crash after each marked one); returns (crashes, log frames redone).
async fn crash_between_commits(defs: Vec<AccDef>, ops: Vec<(Op, bool)>) -> (usize, u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let live_dir = tmp.path().join("live");
    let mut db = AedbInstance::open(instance_config(), &live_dir).expect("open");
    let mut model = Model::new(defs);
    setup(&db, &model).await;
    let (mut crashes, mut redone) = (0, 0);
    for (i, (op, crash_after)) in ops.iter().enumerate() {
        let label = format!("step {i} {op:?}");
        if let Op::Reopen = op {
            // A clean stop: later crashes recover from its checkpoint and the log after it.
            db.shutdown().await.expect("shutdown");
            db = AedbInstance::open(instance_config(), &live_dir).expect("reopen");
        }
        let calls = model.resolve(op);
        for call in &calls {
            step(&db, &mut model, call, &label).await;
        }
        if !crash_after {
            continue;
        }
        crashes += 1;
        // kill -9 now: the disk holds everything written so far, nothing more.
        let first = tmp.path().join(format!("crash{i}"));
        copy_dir(&live_dir, &first);
        let label = format!("{label}, crashed");
        let (copy, frames) = recover(&first, &model, &label).await;
        redone += frames;
        // The client retries the calls it made last; then goes on.
        let mut after = model.clone();
        for call in &calls {
            step(&copy, &mut after, call, &format!("{label}, retried")).await;
        }
        one_more_delta(&copy, &mut after, &i.to_string(), &label).await;
        check_reads(&copy, &after, &format!("{label}, retried")).await;
        // And crashes again, before any checkpoint of its own commits.
        let second = tmp.path().join(format!("crash{i}-again"));
        copy_dir(&first, &second);
        let (again, frames) = recover(&second, &after, &format!("{label}, crashed again")).await;
        redone += frames;
        // The retried calls are still the no-ops (or refusals) they were.
        let mut retried = after.clone();
        for call in &calls {
            step(
                &again,
                &mut retried,
                call,
                &format!("{label}, retried again"),
            )
            .await;
        }
        check_reads(&again, &retried, &format!("{label}, retried again")).await;
        again.shutdown().await.expect("shutdown");
        copy.shutdown().await.expect("shutdown");
    }
    db.shutdown().await.expect("shutdown");
    let db = AedbInstance::open(instance_config(), &live_dir).expect("reopen");
    check_reads(&db, &model, "reopened at the end").await;
    db.shutdown().await.expect("shutdown");
    (crashes, redone)
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("AEDB_SOAK").ok().and_then(|n| n.parse().ok()).unwrap_or(6),
        ..ProptestConfig::default()
    })]
    #[test]
    fn acknowledged_accumulator_commits_survive_a_kill_between_commits(
        defs in defs(),
        ops in proptest::collection::vec((op(1), proptest::bool::weighted(0.12)), 1..50),
    ) {
        block_on(crash_between_commits(defs, ops));
    }
}

/// A fixed workload with a crash after every kind of call, so each is redone at least once
/// whatever the random cases draw.
#[test]
fn every_kind_of_accumulator_commit_is_redone_after_a_kill() {
    use accumulator_support::OrderPick::After;
    let def = AccDef {
        retain: Some(6),
        ttl: Some(10),
        ..AccDef::plain(1_000, 2)
    };
    let acc = |delta, key, release| Op::Accumulate {
        acc: 0,
        delta,
        key: Some(key),
        order: After(1),
        release,
    };
    let ops = vec![
        acc(1_000, 1, None),
        acc(500, 2, None),
        Op::Expose {
            acc: 0,
            amount: 300,
            id: 1,
            preflight: false,
        },
        Op::ExposeBatch {
            acc: 0,
            items: vec![(200, 2), (100, 3), (200, 2)],
        },
        // Refused by the margin rule: counted in a commit of its own.
        Op::Expose {
            acc: 0,
            amount: 1_000,
            id: 4,
            preflight: false,
        },
        acc(-50, 3, Some(1)),
        Op::Release { acc: 0, id: 2 },
        Op::Retry {
            acc: 0,
            key: 2,
            release: None,
        },
        acc(i64::MAX, 4, None),
        acc(7, 5, None),
        Op::Recreate { acc: 1 },
        Op::Drop { acc: 1 },
    ];
    let ops: Vec<(Op, bool)> = ops.into_iter().map(|op| (op, true)).collect();
    let (crashes, redone) = block_on(crash_between_commits(vec![def; NAMES.len()], ops));
    assert_eq!(crashes, 12);
    // Two recoveries per crash, each redoing every commit since the database was created.
    assert!(redone >= 2 * 12 * 4, "{redone} frames redone");
}

// ---- 2. the simulated disk ----

mod sim_support;
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::stored::accumulators::{self as stored, Acc, AccumulatorDef, DedupeRecord, Exposure};
use aedb::{AedbError, CommitFinality, Engine, LoggedTxn};

fn sim_config() -> AedbConfig {
    AedbConfig {
        durability_mode: DurabilityMode::Full,
        page_size: 4096,
        buffer_pool_bytes: 24 * 4096,
        max_segment_bytes: 64 << 10,
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        // One retained version: pages freed by copy-on-write come back after a checkpoint.
        max_versions: 1,
        hmac_key: Some([5; 32]),
        ..AedbConfig::default()
    }
}

const ACC: Acc<'static> = Acc {
    project: "m",
    scope: "app",
    name: "bal",
};

/// What an accumulator holds, as read back from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Held {
    exists: bool,
    value: i64,
    latest_order: Option<u64>,
    total_exposure: i64,
    open_exposures: u64,
    rejections: u64,
    dedupe: BTreeMap<String, (u64, i64)>,
    exposures: BTreeMap<String, i64>,
}

/// One commit of the simulated workload.
#[derive(Debug, Clone)]
enum SimCommit {
    Create,
    Delta {
        key: String,
        delta: i64,
        order: u64,
        release: Option<String>,
    },
    Expose(Vec<(i64, String)>),
    Release(String),
    Refused,
}

/// The workload: a create, then deltas (some releasing), exposures, releases and refusals;
/// big enough that the accumulator's tree splits and the delta log is compacted.
fn sim_commits() -> Vec<SimCommit> {
    let mut out = vec![SimCommit::Create];
    for n in 1..=30u64 {
        let release = (n % 6 == 0).then(|| format!("x{}", n - 2));
        out.push(SimCommit::Delta {
            // Long keys: the tree outgrows a page.
            key: format!("settlement-{n:04}-{}", "k".repeat(120)),
            delta: if n % 5 == 0 { -40 } else { 100 + n as i64 },
            order: n * 3,
            release,
        });
        if n % 3 == 1 {
            out.push(SimCommit::Expose(vec![
                (10, format!("x{n}")),
                (5, format!("y{n}")),
            ]));
        }
        if n % 7 == 3 {
            // The newest `y` opened so far.
            out.push(SimCommit::Release(format!("y{}", n - (n - 1) % 3)));
        }
        if n % 8 == 4 {
            out.push(SimCommit::Refused);
        }
    }
    out
}

/// The state after each prefix of `commits` (`[0]`: nothing).
fn sim_states(commits: &[SimCommit]) -> Vec<Held> {
    let mut out = vec![Held::default()];
    for commit in commits {
        let mut next = out.last().cloned().unwrap_or_default();
        match commit {
            SimCommit::Create => next.exists = true,
            SimCommit::Delta {
                key,
                delta,
                order,
                release,
            } => {
                next.value += delta;
                next.latest_order = Some(*order);
                next.dedupe.insert(key.clone(), (*order, *delta));
                if let Some(id) = release {
                    let amount = next.exposures.remove(id).expect("released id is open");
                    next.total_exposure -= amount;
                    next.open_exposures -= 1;
                }
            }
            SimCommit::Expose(items) => {
                for (amount, id) in items {
                    next.exposures.insert(id.clone(), *amount);
                    next.total_exposure += amount;
                    next.open_exposures += 1;
                }
            }
            SimCommit::Release(id) => {
                let amount = next.exposures.remove(id).expect("released id is open");
                next.total_exposure -= amount;
                next.open_exposures -= 1;
            }
            SimCommit::Refused => next.rejections += 1,
        }
        out.push(next);
    }
    out
}

/// Write `commit` as the accumulator rules do: the records it changes, then the state.
fn write(txn: &mut LoggedTxn, commit: &SimCommit) -> Result<(), AedbError> {
    if let SimCommit::Create = commit {
        let def = AccumulatorDef {
            value_type: aedb::catalog::schema::AccumulatorValueType::BigInt,
            dedupe_retain_commits: None,
            snapshot_every: 4,
            exposure_margin_bps: 1_000,
            exposure_ttl_commits: None,
            created_seq: txn.seq(),
        };
        return stored::create(txn, ACC, &def);
    }
    let mut state = stored::state(txn, ACC)?;
    let seq = txn.seq();
    match commit {
        SimCommit::Create => unreachable!(),
        SimCommit::Delta {
            key,
            delta,
            order,
            release,
        } => {
            stored::append_delta(txn, ACC, *order, *delta)?;
            stored::put_dedupe(
                txn,
                ACC,
                key,
                DedupeRecord {
                    order_key: *order,
                    delta: *delta,
                    seq,
                },
            )?;
            if let Some(id) = release {
                let open = stored::exposure(txn, ACC, id)?.expect("open");
                stored::close_exposure(txn, ACC, id, open)?;
                state.total_exposure -= open.amount;
                state.open_exposures -= 1;
            }
            // Folded in the same commit, and the log compacted every 4 folds.
            state.value += delta;
            state.latest_order_key = Some(*order);
            state.last_applied_order_key = *order;
            state.latest_seq = seq;
            state.materialized_seq = seq;
            state.applied_in_log += 1;
            if state.applied_in_log >= 4 {
                let removed = stored::compact_deltas(txn, ACC, *order, 4_096)?;
                state.applied_in_log -= removed;
            }
        }
        SimCommit::Expose(items) => {
            for (amount, id) in items {
                let exposure = Exposure {
                    amount: *amount,
                    opened_seq: seq,
                };
                stored::open_exposure(txn, ACC, id, exposure)?;
                state.total_exposure += amount;
                state.open_exposures += 1;
            }
        }
        SimCommit::Release(id) => {
            let open = stored::exposure(txn, ACC, id)?.expect("open");
            stored::close_exposure(txn, ACC, id, open)?;
            state.total_exposure -= open.amount;
            state.open_exposures -= 1;
        }
        SimCommit::Refused => state.rejections += 1,
    }
    stored::put_state(txn, ACC, &state)
}

/// Read the accumulator back from `engine`'s head, checking its records agree.
fn read_held(engine: &Engine, what: &str) -> Held {
    use aedb::storage::ReadTrees;
    let snapshot = engine.snapshot();
    if stored::definition(&snapshot, ACC)
        .expect("definition")
        .is_none()
    {
        return Held::default();
    }
    let state = stored::state(&snapshot, ACC).unwrap_or_else(|e| panic!("{what}: state: {e}"));
    let tree = format!("acc:{}:{}:{}", ACC.project, ACC.scope, ACC.name);
    let mut dedupe = BTreeMap::new();
    let mut exposures = BTreeMap::new();
    let mut deltas = 0u64;
    for item in snapshot.prefix(&tree, b"", false).expect("scan") {
        let (key, _) = item.expect("entry");
        let rest = String::from_utf8_lossy(&key[1..]).into_owned();
        match key[0] {
            b'K' => {
                let record = stored::dedupe(&snapshot, ACC, &rest)
                    .expect("dedupe")
                    .expect("listed");
                dedupe.insert(rest, (record.order_key, record.delta));
            }
            b'E' => {
                let open = stored::exposure(&snapshot, ACC, &rest)
                    .expect("exposure")
                    .expect("listed");
                exposures.insert(rest, open.amount);
            }
            b'D' => deltas += 1,
            _ => {}
        }
    }
    // The delta log holds the folded deltas not compacted yet, and nothing else.
    assert_eq!(deltas, state.applied_in_log, "{what}: delta log {state:?}");
    assert_eq!(state.pending, 0, "{what}: every delta folded");
    assert_eq!(
        state.value,
        dedupe.values().map(|(_, d)| d).sum::<i64>(),
        "{what}: value is the sum of the accepted deltas"
    );
    assert_eq!(
        state.total_exposure,
        exposures.values().sum::<i64>(),
        "{what}: total exposure is the sum of the open ones"
    );
    assert_eq!(state.open_exposures, exposures.len() as u64, "{what}");
    Held {
        exists: true,
        value: state.value,
        latest_order: state.latest_order_key,
        total_exposure: state.total_exposure,
        open_exposures: state.open_exposures,
        rejections: state.rejections,
        dedupe,
        exposures,
    }
}

fn open_sim(vfs: &SimVfs) -> Result<Engine, AedbError> {
    sim_support::open_sim(vfs, sim_config())
}

/// Commits `commits[from..]` in order, one commit each, and a checkpoint after every 8th,
/// stopping at the first error; returns the number acknowledged (every one is durable under
/// Full).
fn run_sim(engine: &Engine, commits: &[SimCommit], from: usize) -> usize {
    let mut acked = from;
    for (n, commit) in commits.iter().enumerate().skip(from) {
        let commit = commit.clone();
        let result =
            engine.commit_blocking(CommitFinality::Visible, move |txn| write(txn, &commit));
        match result {
            Ok(outcome) => {
                assert!(
                    outcome.durable_head_seq >= outcome.commit_seq,
                    "commit {n}: acknowledged under Full before it was durable"
                );
                acked = n + 1;
            }
            Err(_) => break,
        }
        if acked.is_multiple_of(8) && engine.checkpoint_now().is_err() {
            break;
        }
    }
    acked
}

/// Recover `image`: its accumulator equals the state after some prefix of at least `floor`
/// commits; returns that prefix's length.
fn verify_sim(image: &SimVfs, all: &[Held], floor: usize, what: &str) -> usize {
    let engine = open_sim(image).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    let held = read_held(&engine, what);
    // The newest prefix with this state (a refusal's count is the only change some commits
    // make, so no two prefixes are equal).
    let prefix = all
        .iter()
        .rposition(|s| *s == held)
        .unwrap_or_else(|| panic!("{what}: {held:?} is no prefix of the commits"));
    assert!(
        prefix >= floor,
        "{what}: lost acknowledged commits (state of {prefix} < {floor} acknowledged)"
    );
    let report = engine.store().check();
    assert!(report.is_ok(), "{what}: {:?}", report.violations);
    prefix
}

#[test]
fn accumulator_commits_are_atomic_at_every_write_point_of_the_simulated_disk() {
    let commits = sim_commits();
    let all = sim_states(&commits);
    let reference = SimVfs::new();
    let engine = open_sim(&reference).expect("open");
    assert_eq!(run_sim(&engine, &commits, 0), commits.len());
    assert_eq!(read_held(&engine, "reference"), all[commits.len()]);
    drop(engine);
    let points = reference.write_points();
    let (mut images, mut in_flight_kept, mut in_flight_lost) = (0, 0, 0);
    for point in 0..points {
        let vfs = SimVfs::new();
        vfs.crash_at(point);
        let acked = match open_sim(&vfs) {
            Ok(engine) => {
                let acked = run_sim(&engine, &commits, 0);
                vfs.crash_now();
                drop(engine);
                acked
            }
            Err(_) => 0,
        };
        assert!(vfs.has_crashed(), "point {point} fired");
        for kind in CrashMode::ALL {
            images += 1;
            let what = format!("point {point} {kind:?} ({acked} acknowledged)");
            let image = vfs.crash_image(kind, point * 17 + 3);
            let prefix = verify_sim(&image, &all, acked, &what);
            // The commit in flight at the crash is there whole or not at all.
            assert!(
                prefix <= acked + 1,
                "{what}: more than the commit in flight"
            );
            // A killed process leaves a commit written but not yet synced (kept) or not yet
            // written (lost).
            if kind == CrashMode::ProcessCrash {
                if prefix > acked {
                    in_flight_kept += 1;
                } else {
                    in_flight_lost += 1;
                }
            }
        }
        // The process died; the next one recovers, finishes the workload (the commit in
        // flight is retried only if it was lost), then the power fails.
        let survivor = vfs.crash_image(CrashMode::ProcessCrash, 0);
        let engine = open_sim(&survivor).expect("recovery after a process crash");
        let recovered = all
            .iter()
            .rposition(|s| *s == read_held(&engine, "survivor"))
            .expect("a prefix");
        assert_eq!(
            run_sim(&engine, &commits, recovered),
            commits.len(),
            "point {point}: the workload goes on after recovery"
        );
        survivor.crash_now();
        drop(engine);
        for kind in [CrashMode::PowerLoss, CrashMode::TornWrite] {
            images += 1;
            let what = format!("point {point}: process crash, recover, commit, {kind:?}");
            let prefix = verify_sim(
                &survivor.crash_image(kind, point),
                &all,
                commits.len(),
                &what,
            );
            assert_eq!(prefix, commits.len(), "{what}");
        }
    }
    assert!(
        in_flight_kept > 0 && in_flight_lost > 0,
        "crashes land both before and after a commit is durable ({in_flight_kept} kept, \
         {in_flight_lost} lost)"
    );
    println!(
        "accumulator crash sweep: {points} write points, {images} images, 0 acknowledged \
         commits lost, no commit half there"
    );
}

/// The user's sequence: a killed process, a reopen, an accumulator commit, a power loss.
#[test]
fn a_delta_committed_after_recovering_a_killed_process_survives_power_loss() {
    let commits = sim_commits();
    let all = sim_states(&commits);
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs).expect("open");
    assert_eq!(run_sim(&engine, &commits[..10], 0), 10);
    vfs.crash_now();
    drop(engine);
    let survivor = vfs.crash_image(CrashMode::ProcessCrash, 0);
    let engine = open_sim(&survivor).expect("recover");
    assert_eq!(read_held(&engine, "recovered"), all[10]);
    assert_eq!(run_sim(&engine, &commits[..12], 10), 12);
    survivor.crash_now();
    drop(engine);
    let lost_power = survivor.crash_image(CrashMode::PowerLoss, 0);
    let prefix = verify_sim(&lost_power, &all, 12, "crash, recover, commit, power loss");
    assert_eq!(prefix, 12);
    // The exposure totals are still those of the open exposures (checked by `read_held`),
    // and the accumulator takes more commits.
    let engine = open_sim(&lost_power).expect("reopen");
    assert_eq!(run_sim(&engine, &commits, 12), commits.len());
    assert_eq!(read_held(&engine, "finished"), all[commits.len()]);
}
