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
//!    crash, recover, commit, lose power"), under `AedbInstance::open_with_vfs`: the real
//!    accumulator rules create the accumulator (after its project), apply deltas (some
//!    releasing an exposure, folded and compacted by the rules), open exposures in batches,
//!    release them, and count a refusal past the margin in a commit of its own. Every image
//!    must recover to exactly the state after some prefix of the calls, holding every
//!    acknowledged one and at most the one in flight, with its records consistent (value = sum
//!    of the deltas, total exposure = sum of the open exposures) and read the same through the
//!    API.

use std::collections::BTreeMap;
use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::plan::ConsistencyMode;
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
use aedb::storage::io::Vfs;
use aedb::stored::accumulators::{self as stored, Acc};
use aedb::AedbError;

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

/// What the project and its accumulator hold, as read back from the records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Held {
    project: bool,
    exists: bool,
    value: i64,
    latest_order: Option<u64>,
    total_exposure: i64,
    open_exposures: u64,
    rejections: u64,
    dedupe: BTreeMap<String, (u64, i64)>,
    exposures: BTreeMap<String, i64>,
}

/// One call of the simulated workload (one commit each, a refusal's count included).
#[derive(Debug, Clone)]
enum SimCommit {
    Project,
    Create,
    Delta {
        key: String,
        delta: i64,
        order: u64,
        release: Option<String>,
    },
    Expose(Vec<(i64, String)>),
    Release(String),
    /// An exposure past the margin: refused, and the refusal counted in a commit of its own.
    Refused,
}

/// The workload: the project, a create, then deltas (some releasing), exposures, releases and
/// refusals; big enough that the accumulator's tree splits and the delta log is compacted.
fn sim_commits() -> Vec<SimCommit> {
    let mut out = vec![SimCommit::Project, SimCommit::Create];
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
            SimCommit::Project => next.project = true,
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

/// Make `commit`'s call on `db`; whether it was acknowledged. Under Full an acknowledged
/// commit is durable when it returns.
async fn call(db: &AedbInstance, vfs: &SimVfs, commit: &SimCommit) -> bool {
    let (p, s, n) = (ACC.project, ACC.scope, ACC.name);
    let result = match commit.clone() {
        SimCommit::Project => return db.create_project(p).await.is_ok(),
        SimCommit::Create => {
            db.create_accumulator_with_options(p, s, n, None, 4, 1_000, None)
                .await
        }
        SimCommit::Delta {
            key,
            delta,
            order,
            release,
        } => {
            db.accumulate_with_release(p, s, n, delta, key, order, release)
                .await
        }
        SimCommit::Expose(items) => db.expose_accumulator_many_atomic(p, s, n, items).await,
        SimCommit::Release(id) => db.release_accumulator_exposure(p, s, n, id).await,
        SimCommit::Refused => {
            return match db
                .expose_accumulator(p, s, n, 1_000_000, "big".into())
                .await
            {
                // The refusal is answered whether or not its count was stored: only a disk
                // that did not crash during the call surely stored it.
                Err(AedbError::Validation(m)) if m.starts_with("exposure margin exceeded") => {
                    !vfs.has_crashed()
                }
                Ok(r) => panic!("an exposure past the margin was accepted: {r:?}"),
                Err(_) => false,
            };
        }
    };
    match result {
        Ok(r) => {
            assert!(
                r.durable_head_seq >= r.commit_seq,
                "{commit:?}: acknowledged under Full before it was durable"
            );
            true
        }
        Err(_) => false,
    }
}

/// Read the project and accumulator back from `db`'s head, checking that its records, its
/// state and the API's reads agree.
async fn read_held(db: &AedbInstance, what: &str) -> Held {
    use aedb::storage::ReadTrees;
    let project = db
        .project_exists(ACC.project)
        .await
        .expect("project_exists");
    let snapshot = db.engine().snapshot();
    if stored::definition(&snapshot, ACC)
        .expect("definition")
        .is_none()
    {
        return Held {
            project,
            ..Held::default()
        };
    }
    assert!(project, "{what}: an accumulator without its project");
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
    // The delta log holds the folded deltas not compacted yet and the unfolded ones.
    assert_eq!(
        deltas,
        state.applied_in_log + state.unapplied_deltas,
        "{what}: delta log {state:?}"
    );
    assert_eq!(
        i128::from(state.value) + state.pending,
        dedupe.values().map(|(_, d)| i128::from(*d)).sum::<i128>(),
        "{what}: value is the sum of the accepted deltas"
    );
    assert_eq!(
        state.total_exposure,
        exposures.values().sum::<i64>(),
        "{what}: total exposure is the sum of the open ones"
    );
    assert_eq!(state.open_exposures, exposures.len() as u64, "{what}");
    // The API reads the same.
    let (p, s, n, at) = (ACC.project, ACC.scope, ACC.name, ConsistencyMode::AtLatest);
    let strong = db
        .accumulator_value_strong(p, s, n, at)
        .await
        .expect("value");
    let metrics = db
        .accumulator_exposure_metrics(p, s, n, at)
        .await
        .expect("metrics");
    assert_eq!(
        (strong, metrics.total_exposure, metrics.open_exposure_count),
        (
            dedupe.values().map(|(_, d)| d).sum::<i64>(),
            state.total_exposure,
            exposures.len()
        ),
        "{what}: the API's reads differ from the records"
    );
    assert_eq!(metrics.rejection_count, state.rejections, "{what}");
    Held {
        project,
        exists: true,
        value: strong,
        latest_order: state.latest_order_key,
        total_exposure: state.total_exposure,
        open_exposures: state.open_exposures,
        rejections: state.rejections,
        dedupe,
        exposures,
    }
}

fn open_sim(vfs: &SimVfs) -> Result<AedbInstance, AedbError> {
    AedbInstance::open_with_vfs(
        sim_config(),
        Path::new(sim_support::DIR),
        std::sync::Arc::new(vfs.clone()) as std::sync::Arc<dyn Vfs>,
    )
}

/// Makes the calls `commits[from..]` in order and a checkpoint after every 8th, stopping at
/// the first one not acknowledged; returns the number acknowledged.
async fn run_sim(db: &AedbInstance, vfs: &SimVfs, commits: &[SimCommit], from: usize) -> usize {
    let mut acked = from;
    for (n, commit) in commits.iter().enumerate().skip(from) {
        if !call(db, vfs, commit).await {
            break;
        }
        acked = n + 1;
        if acked.is_multiple_of(8) && db.checkpoint_now().await.is_err() {
            break;
        }
    }
    acked
}

/// Recover `image`: it holds the state after some prefix of at least `floor` calls; returns
/// that prefix's length.
async fn verify_sim(image: &SimVfs, all: &[Held], floor: usize, what: &str) -> usize {
    let db = open_sim(image).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    let held = read_held(&db, what).await;
    // The newest prefix with this state (a refusal's count is the only change some calls
    // make, so no two prefixes are equal).
    let prefix = all
        .iter()
        .rposition(|s| *s == held)
        .unwrap_or_else(|| panic!("{what}: {held:?} is no prefix of the calls"));
    assert!(
        prefix >= floor,
        "{what}: lost acknowledged commits (state of {prefix} < {floor} acknowledged)"
    );
    let report = db.engine().store().check();
    assert!(report.is_ok(), "{what}: {:?}", report.violations);
    prefix
}

#[test]
fn accumulator_commits_are_atomic_at_every_write_point_of_the_simulated_disk() {
    block_on(async {
        let commits = sim_commits();
        let all = sim_states(&commits);
        let reference = SimVfs::new();
        let db = open_sim(&reference).expect("open");
        assert_eq!(run_sim(&db, &reference, &commits, 0).await, commits.len());
        assert_eq!(read_held(&db, "reference").await, all[commits.len()]);
        let state = stored::state(&db.engine().snapshot(), ACC).expect("state");
        assert!(
            state.applied_in_log < 4 && state.unapplied_deltas == 0,
            "the rules folded every delta and compacted the log: {state:?}"
        );
        drop(db);
        let points = reference.write_points();
        let (mut images, mut in_flight_kept, mut in_flight_lost) = (0, 0, 0);
        for point in 0..points {
            let vfs = SimVfs::new();
            vfs.crash_at(point);
            let acked = match open_sim(&vfs) {
                Ok(db) => {
                    let acked = run_sim(&db, &vfs, &commits, 0).await;
                    vfs.crash_now();
                    drop(db);
                    acked
                }
                Err(_) => 0,
            };
            assert!(vfs.has_crashed(), "point {point} fired");
            for kind in CrashMode::ALL {
                images += 1;
                let what = format!("point {point} {kind:?} ({acked} acknowledged)");
                let image = vfs.crash_image(kind, point * 17 + 3);
                let prefix = verify_sim(&image, &all, acked, &what).await;
                // The call in flight at the crash is there whole or not at all.
                assert!(prefix <= acked + 1, "{what}: more than the call in flight");
                // A killed process leaves a commit written but not yet synced (kept) or not
                // yet written (lost).
                if kind == CrashMode::ProcessCrash {
                    if prefix > acked {
                        in_flight_kept += 1;
                    } else {
                        in_flight_lost += 1;
                    }
                }
            }
            // The process died; the next one recovers, finishes the workload (the call in
            // flight is retried only if it was lost), then the power fails.
            let survivor = vfs.crash_image(CrashMode::ProcessCrash, 0);
            let db = open_sim(&survivor).expect("recovery after a process crash");
            let held = read_held(&db, "survivor").await;
            let recovered = all.iter().rposition(|s| *s == held).expect("a prefix");
            assert_eq!(
                run_sim(&db, &survivor, &commits, recovered).await,
                commits.len(),
                "point {point}: the workload goes on after recovery"
            );
            survivor.crash_now();
            drop(db);
            for kind in [CrashMode::PowerLoss, CrashMode::TornWrite] {
                images += 1;
                let what = format!("point {point}: process crash, recover, commit, {kind:?}");
                let image = survivor.crash_image(kind, point);
                let prefix = verify_sim(&image, &all, commits.len(), &what).await;
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
    });
}

/// The user's sequence: a killed process, a reopen, an accumulator commit, a power loss.
#[test]
fn a_delta_committed_after_recovering_a_killed_process_survives_power_loss() {
    block_on(async {
        let commits = sim_commits();
        let all = sim_states(&commits);
        let vfs = SimVfs::new();
        let db = open_sim(&vfs).expect("open");
        assert_eq!(run_sim(&db, &vfs, &commits[..10], 0).await, 10);
        vfs.crash_now();
        drop(db);
        let survivor = vfs.crash_image(CrashMode::ProcessCrash, 0);
        let db = open_sim(&survivor).expect("recover");
        assert_eq!(read_held(&db, "recovered").await, all[10]);
        assert_eq!(run_sim(&db, &survivor, &commits[..12], 10).await, 12);
        survivor.crash_now();
        drop(db);
        let lost_power = survivor.crash_image(CrashMode::PowerLoss, 0);
        let prefix = verify_sim(&lost_power, &all, 12, "crash, recover, commit, power loss").await;
        assert_eq!(prefix, 12);
        // The exposure totals are still those of the open exposures (checked by `read_held`),
        // and the accumulator takes more calls.
        let db = open_sim(&lost_power).expect("reopen");
        assert_eq!(run_sim(&db, &lost_power, &commits, 12).await, commits.len());
        assert_eq!(read_held(&db, "finished").await, all[commits.len()]);
    });
}
