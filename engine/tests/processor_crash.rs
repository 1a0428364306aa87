//! Reactive processors across crashes, on the simulated disk (`AedbInstance::open_with_vfs`).
//!
//! A process emits events in commits of one to three (some of them "poison" events its
//! handler always fails, so they are retried and dead-lettered) while a processor runs, with
//! a watermark of 2 and at most 3 events a run (so batches cut and acks land between emits),
//! and checkpoints the data file now and then. Its handler records every call, outside the
//! database (a process dies with its machine: once the disk has crashed, its handler records
//! nothing more). The disk is crashed at every write point (`AEDB_SOAK=n`: n sweeps; the
//! timing of the processor moves a point number to another op from run to run); from each
//! crash image (every `CrashMode`) a new process recovers, gives the processor its handler
//! (`register_reactive_processor_handler`, which resumes it when its registration survived),
//! emits more and waits until every event is handled or dead-lettered. Then the ProcessCrash
//! branch crashes again and its power-loss and torn-write images recover the same way
//! (crash, recover, commit, power loss). Checked:
//!
//! - the recovered checkpoint is at least every checkpoint seen durable before the crash (an
//!   acknowledged checkpoint is never lost, a persisted one never goes back), and never moves
//!   back while the new process runs;
//! - the checkpoint never passes an event that no handler call returned `Ok` for and that is
//!   not dead-lettered (no event is skipped);
//! - after the restart no event at or before the recovered checkpoint reaches the handler
//!   again, and the running processor hands each event over once;
//! - in the end every event of the recovered outbox and every event emitted after recovery
//!   was handled at least once overall or dead-lettered (poison events: dead-lettered), and
//!   every acknowledged emit is in the outbox.
//!
//! The dead letters of a batch here fit one commit. A batch dead-lettered in parts (letters
//! over a quarter of `max_transaction_bytes`) is not crash-safe yet: the first part moves the
//! durable checkpoint past the whole commit, so a crash before the last part skips the rest.
//!
//! A fixed sequence checks the exact redelivery after a kill between handling and the ack.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aedb::commit::Mutation;
use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::storage::io::Vfs;
use aedb::{AedbError, AedbInstance, EventOutboxRecord, ReactiveProcessorOptions};
use parking_lot::Mutex;

const DIR: &str = "/db";
const PROC: &str = "proc";

fn config() -> AedbConfig {
    AedbConfig {
        durability_mode: DurabilityMode::Full,
        page_size: 4096,
        buffer_pool_bytes: 32 * 4096,
        max_segment_bytes: 64 << 10,
        // Checkpoints only when the workload asks: their write points are crash points too.
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        hmac_key: Some([9; 32]),
        ..AedbConfig::default()
    }
}

fn options() -> ReactiveProcessorOptions {
    ReactiveProcessorOptions {
        max_events_per_run: 3,
        checkpoint_watermark_commits: 2,
        max_retries: 1,
        run_interval_ms: 1,
        idle_backoff_ms: 2,
        retry_backoff_ms: 1,
        ..ReactiveProcessorOptions::default()
    }
}

fn open(vfs: &SimVfs) -> Result<Arc<AedbInstance>, AedbError> {
    let vfs = Arc::new(vfs.clone()) as Arc<dyn Vfs>;
    AedbInstance::open_with_vfs(config(), Path::new(DIR), vfs).map(Arc::new)
}

/// An event by what names it: (commit, key). Keys are unique over a whole run.
type Ev = (u64, String);

/// One handler call: which process made it, whether it returned `Ok`, its events.
#[derive(Debug, Clone)]
struct Call {
    gen: u32,
    ok: bool,
    events: Vec<Ev>,
}

/// What the handlers of a run of processes saw (kept outside the database).
#[derive(Debug, Clone, Default)]
struct Log {
    calls: Vec<Call>,
    /// Processes that have died: their handlers record nothing more.
    dead: BTreeSet<u32>,
    /// The checkpoints seen durable (their commit at or below the durable head): by
    /// (process, the snapshot's sequence). Observers run concurrently, so they are ordered by
    /// snapshot, not by when they were recorded.
    durable: BTreeMap<(u32, u64), u64>,
}

impl Log {
    fn handled(&self, ev: &Ev) -> bool {
        self.calls.iter().any(|c| c.ok && c.events.contains(ev))
    }

    /// The highest checkpoint seen durable by any process.
    fn floor(&self) -> u64 {
        self.durable.values().copied().max().unwrap_or(0)
    }

    /// The checkpoints process `gen` saw durable never went back from one snapshot to a
    /// later one.
    fn check_monotonic(&self, gen: u32, what: &str) {
        let mut last: Option<(u64, u64)> = None;
        for (&(_, head), &checkpoint) in self.durable.range((gen, 0)..=(gen, u64::MAX)) {
            if let Some((at, before)) = last {
                assert!(
                    checkpoint >= before,
                    "{what}: process {gen} saw the durable checkpoint {before} at commit {at}, \
                     then {checkpoint} at commit {head}"
                );
            }
            last = Some((head, checkpoint));
        }
    }
}

type Shared = Arc<Mutex<Log>>;

/// What the test's handlers return.
type HandlerFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), AedbError>> + Send>>;

/// Record the checkpoint if it is durable (checked by `Log::check_monotonic`: a panic in a
/// handler would only fail its batch).
async fn observe(db: &AedbInstance, log: &Shared, gen: u32) {
    let Ok(lag) = db.reactive_processor_lag(PROC, AtLatest).await else {
        return;
    };
    if db.engine().durable_head_seq() < lag.head_seq {
        return;
    }
    let mut log = log.lock();
    if !log.dead.contains(&gen) {
        log.durable.insert((gen, lag.head_seq), lag.checkpoint_seq);
    }
}

/// The handler of process `gen` on `vfs`: records each call, fails batches holding a poison
/// event.
fn handler(
    log: Shared,
    gen: u32,
    vfs: &SimVfs,
) -> impl Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> HandlerFuture + Send + Sync + 'static {
    let vfs = vfs.clone();
    move |db, events| {
        let (log, vfs) = (log.clone(), vfs.clone());
        Box::pin(async move {
            observe(&db, &log, gen).await;
            let poison = events.iter().any(|e| e.event_key.starts_with("poison"));
            {
                let mut log = log.lock();
                // A process dies with its machine: once the disk has crashed, its handler
                // does nothing more.
                if log.dead.contains(&gen) || vfs.has_crashed() {
                    return Err(AedbError::Validation("the process is dead".into()));
                }
                log.calls.push(Call {
                    gen,
                    ok: !poison,
                    events: events
                        .iter()
                        .map(|e| (e.commit_seq, e.event_key.clone()))
                        .collect(),
                });
            }
            if poison {
                return Err(AedbError::Validation("poison".into()));
            }
            Ok(())
        })
    }
}

/// The commits a process emits: lists of keys, a poison event in some.
fn plan(tag: &str, commits: usize) -> Vec<Vec<String>> {
    (0..commits)
        .map(|c| {
            let mut keys: Vec<String> = (0..=c % 3).map(|i| format!("{tag}-{c}-{i}")).collect();
            if c % 5 == 3 {
                keys.push(format!("poison-{tag}-{c}"));
            }
            keys
        })
        .collect()
}

/// Emit one commit of events; its (commit, keys) when acknowledged.
async fn emit(db: &AedbInstance, keys: &[String]) -> Option<(u64, Vec<String>)> {
    let mutations = keys
        .iter()
        .map(|key| Mutation::EmitEvent {
            project_id: "p".into(),
            scope_id: "app".into(),
            topic: "t".into(),
            event_key: key.clone(),
            payload_json: format!("{{\"key\":\"{key}\"}}"),
        })
        .collect();
    let result = db.commit_many_atomic(mutations).await.ok()?;
    assert!(
        result.durable_head_seq >= result.commit_seq,
        "Full acks durably"
    );
    Some((result.commit_seq, keys.to_vec()))
}

/// Wait until the persisted checkpoint reaches `seq` (the processor has caught up and idled),
/// or the disk crashed. False when the disk crashed.
async fn caught_up(db: &AedbInstance, vfs: &SimVfs, log: &Shared, gen: u32, seq: u64) -> bool {
    for _ in 0..5_000 {
        if vfs.has_crashed() {
            return false;
        }
        observe(db, log, gen).await;
        match db.reactive_processor_lag(PROC, AtLatest).await {
            Ok(lag) if lag.checkpoint_seq >= seq => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("process {gen}: the processor did not reach commit {seq} within 10 s");
}

/// The first process: a project, the processor, then the plan's commits, waiting for the
/// processor every 4 commits and checkpointing every 6; stops at the first failure.
async fn first_process(
    vfs: &SimVfs,
    log: &Shared,
) -> (Vec<(u64, Vec<String>)>, Option<Arc<AedbInstance>>) {
    let mut acked = Vec::new();
    let Ok(db) = open(vfs) else {
        return (acked, None);
    };
    if db.create_project("p").await.is_err()
        || db
            .start_reactive_processor(PROC, options(), handler(log.clone(), 0, vfs))
            .await
            .is_err()
    {
        return (acked, Some(db));
    }
    for (c, keys) in plan("a", 16).iter().enumerate() {
        let Some(commit) = emit(&db, keys).await else {
            return (acked, Some(db));
        };
        let last = commit.0;
        acked.push(commit);
        if c % 4 == 3 && !caught_up(&db, vfs, log, 0, last).await {
            return (acked, Some(db));
        }
        if c % 6 == 5 && db.checkpoint_now().await.is_err() {
            return (acked, Some(db));
        }
    }
    if let Some(&(last, _)) = acked.last() {
        caught_up(&db, vfs, log, 0, last).await;
    }
    (acked, Some(db))
}

/// Kill process `gen`: its handler records nothing more and the disk stops at once; returns
/// what the handlers had seen up to that instant.
fn kill(vfs: &SimVfs, log: &Shared, gen: u32, db: Option<Arc<AedbInstance>>) -> Log {
    let seen = {
        let mut log = log.lock();
        log.dead.insert(gen);
        vfs.crash_now();
        log.clone()
    };
    drop(db);
    handled_once(&seen, gen, "before the crash");
    seen.check_monotonic(gen, "before the crash");
    seen
}

/// While process `gen` ran, its processor handed each event over once.
fn handled_once(log: &Log, gen: u32, what: &str) {
    let mut handled = BTreeSet::new();
    for call in log.calls.iter().filter(|c| c.gen == gen && c.ok) {
        for ev in &call.events {
            assert!(
                handled.insert(ev),
                "{what}: process {gen} handled {ev:?} twice"
            );
        }
    }
}

/// What the sweep saw, over all images.
#[derive(Debug, Default)]
struct Tally {
    images: u64,
    /// Restarts that resumed the processor (its registration survived) and that started it.
    resumed: u64,
    started: u64,
    /// Events handled before a crash and again after it (past the recovered checkpoint).
    redelivered: u64,
    dead_letters: u64,
    /// Events a handler got whose commit the recovered disk does not hold (handled while
    /// visible, before they were durable).
    vanished: u64,
}

/// Recover `image` as process `gen` after `before` (the handlers' record up to the crash;
/// `acked` the acknowledged emits of every earlier process), and check it; the process keeps
/// running, caught up, and is returned with its record and acknowledged emits.
async fn recover(
    image: &SimVfs,
    before: &Log,
    acked: &[(u64, Vec<String>)],
    gen: u32,
    what: &str,
    tally: &mut Tally,
) -> (Arc<AedbInstance>, Shared, Vec<(u64, Vec<String>)>) {
    tally.images += 1;
    let db = open(image).unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    let check = db.engine().store().check();
    assert!(check.is_ok(), "{what}: {:?}", check.violations);
    let lag = db
        .reactive_processor_lag(PROC, AtLatest)
        .await
        .expect("lag");
    let recovered = lag.checkpoint_seq;
    assert!(
        recovered <= lag.head_seq,
        "{what}: checkpoint past the head"
    );
    let floor = before.floor();
    assert!(
        recovered >= floor,
        "{what}: checkpoint {recovered} < {floor}, seen durable before the crash"
    );
    let outbox = events(&db).await;
    for (seq, keys) in acked {
        for key in keys {
            assert!(
                outbox.contains(&(*seq, key.clone())),
                "{what}: acknowledged event {key} of commit {seq} lost"
            );
        }
    }
    let letters = dead_letters(&db).await;
    for ev in outbox.iter().filter(|(seq, _)| *seq <= recovered) {
        assert!(
            before.handled(ev) || letters.contains(ev),
            "{what}: checkpoint {recovered} passed {ev:?}, never handled nor dead-lettered"
        );
    }
    let vanished: BTreeSet<&Ev> = before
        .calls
        .iter()
        .flat_map(|c| &c.events)
        .filter(|ev| !outbox.contains(ev))
        .collect();
    tally.vanished += vanished.len() as u64;

    // The new process: its handler resumes the processor when the registry has it.
    let log: Shared = Arc::new(Mutex::new(Log {
        calls: before.calls.clone(),
        durable: before.durable.clone(),
        ..Log::default()
    }));
    let registered = db
        .list_reactive_processors(AtLatest)
        .await
        .expect("registry")
        .iter()
        .any(|p| p.processor_name == PROC && p.enabled);
    let resumed = db
        .register_reactive_processor_handler(PROC, handler(log.clone(), gen, image))
        .await
        .unwrap_or_else(|e| panic!("{what}: register handler: {e}"));
    assert_eq!(
        resumed, registered,
        "{what}: resumed iff registered enabled"
    );
    if resumed {
        tally.resumed += 1;
    } else {
        tally.started += 1;
        db.create_project("p").await.expect("project");
        db.start_reactive_processor(PROC, options(), handler(log.clone(), gen, image))
            .await
            .unwrap_or_else(|e| panic!("{what}: start: {e}"));
    }
    let mut mine = Vec::new();
    for keys in plan(&format!("g{gen}"), 4) {
        mine.push(
            emit(&db, &keys)
                .await
                .unwrap_or_else(|| panic!("{what}: emit")),
        );
    }
    let last = mine.last().map_or(0, |(seq, _)| *seq);
    caught_up(&db, image, &log, gen, last).await;

    // Every event, in the end: handled at least once overall or dead-lettered (poison ones
    // dead-lettered); after the restart, none at or before the recovered checkpoint again,
    // and none twice.
    let (outbox, letters, seen) = settled(&db, &log, what).await;
    for call in seen.calls.iter().filter(|c| c.gen == gen) {
        for ev in &call.events {
            assert!(
                ev.0 > recovered,
                "{what}: {ev:?} delivered again after the restart, at or before the \
                 recovered checkpoint {recovered}"
            );
        }
    }
    handled_once(&seen, gen, what);
    seen.check_monotonic(gen, what);
    for ev in &outbox {
        if ev.0 > recovered && before.handled(ev) {
            tally.redelivered += 1;
        }
    }
    tally.dead_letters += letters.len() as u64;
    let after = db
        .reactive_processor_lag(PROC, AtLatest)
        .await
        .expect("lag");
    assert!(
        after.checkpoint_seq >= last.max(recovered),
        "{what}: {after:?}"
    );
    let mut all_acked = acked.to_vec();
    all_acked.extend(mine);
    (db, log, all_acked)
}

/// Whether `ev` is done with: handled (poison events never are) or dead-lettered.
fn done(ev: &Ev, log: &Log, letters: &BTreeSet<Ev>) -> bool {
    letters.contains(ev) || (!ev.1.starts_with("poison") && log.handled(ev))
}

/// Wait until every event of the outbox is done with (within 10 s); returns the outbox, the
/// dead letters and the handlers' record then.
async fn settled(db: &AedbInstance, log: &Shared, what: &str) -> (BTreeSet<Ev>, BTreeSet<Ev>, Log) {
    for _ in 0..5_000 {
        let (outbox, letters) = (events(db).await, dead_letters(db).await);
        let seen = log.lock().clone();
        if outbox.iter().all(|ev| done(ev, &seen, &letters)) {
            return (outbox, letters, seen);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (outbox, letters) = (events(db).await, dead_letters(db).await);
    let seen = log.lock().clone();
    let skipped: Vec<&Ev> = outbox
        .iter()
        .filter(|ev| !done(ev, &seen, &letters))
        .collect();
    panic!("{what}: after 10 s, neither handled nor dead-lettered: {skipped:?}");
}

async fn events(db: &AedbInstance) -> BTreeSet<Ev> {
    let page = db
        .read_event_stream(None, 0, 100_000, AtLatest)
        .await
        .expect("events");
    page.events
        .into_iter()
        .map(|e| (e.commit_seq, e.event_key))
        .collect()
}

async fn dead_letters(db: &AedbInstance) -> BTreeSet<Ev> {
    db.reactive_processor_dead_letters(PROC, AtLatest)
        .await
        .expect("dead letters")
        .into_iter()
        .map(|l| (l.commit_seq, l.event_key))
        .collect()
}

/// One crash point (`None`: a crash after the whole workload): every image kind, and the
/// chain on from the process-crash image.
async fn crash_at(point: Option<u64>, tally: &mut Tally) {
    let vfs = SimVfs::new();
    if let Some(point) = point {
        vfs.crash_at(point);
    }
    let log: Shared = Default::default();
    let (acked, db) = first_process(&vfs, &log).await;
    let before = kill(&vfs, &log, 0, db);
    let label = format!("point {point:?} ({} commits acknowledged)", acked.len());
    let seed = point.unwrap_or(0);
    for kind in CrashMode::ALL {
        let image = vfs.crash_image(kind, seed * 31 + 7);
        let what = format!("{label}, {kind:?}");
        let (db, log, acked_now) = recover(&image, &before, &acked, 1, &what, tally).await;
        if kind != CrashMode::ProcessCrash {
            drop(db);
            continue;
        }
        // The recovered process has committed; now the power fails.
        let second = kill(&image, &log, 1, Some(db));
        for (n, kind) in [CrashMode::PowerLoss, CrashMode::TornWrite]
            .into_iter()
            .enumerate()
        {
            let what = format!("{label}: process crash, recover, commit, {kind:?}");
            let lost = image.crash_image(kind, seed + n as u64);
            let (db, ..) = recover(&lost, &second, &acked_now, 2, &what, tally).await;
            drop(db);
        }
    }
}

/// Sweeps of every write point: 1, or `AEDB_SOAK` (each run's timing differs a little, so a
/// point number lands on a different op in each).
fn sweeps() -> u64 {
    std::env::var("AEDB_SOAK")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processors_skip_nothing_and_never_go_back_at_any_write_point() {
    // The run without a crash: how many write points it has.
    let reference = SimVfs::new();
    let log: Shared = Default::default();
    let (acked, db) = first_process(&reference, &log).await;
    assert_eq!(acked.len(), 16, "the workload runs whole without a crash");
    let seen = kill(&reference, &log, 0, db);
    assert!(
        seen.calls.iter().any(|c| !c.ok),
        "poison batches were tried"
    );
    assert!(seen.floor() > 0, "checkpoints were seen durable");
    let points = reference.write_points();
    let mut tally = Tally::default();
    crash_at(None, &mut tally).await;
    for _ in 0..sweeps() {
        for point in 0..points {
            crash_at(Some(point), &mut tally).await;
        }
    }
    println!(
        "processor crash sweep: {points} write points x {}, {tally:?}",
        sweeps()
    );
    assert!(tally.resumed > 0 && tally.started > 0, "{tally:?}");
    assert!(
        tally.redelivered > 0,
        "some crash came between a delivery and its ack: {tally:?}"
    );
    assert!(tally.dead_letters > 0, "{tally:?}");
}

/// Handled events per process (gen → (commit, key) in order), for the fixed sequence below.
type Handled = Arc<Mutex<Vec<(u32, Ev)>>>;

/// Records the events of each call that returns `Ok`; with `hold` (held, release), a batch
/// holding the event "hold" signals `held`, waits until `release` is closed and fails (the
/// process is dead by then).
fn holding(
    handled: Handled,
    gen: u32,
    hold: Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Semaphore>)>,
) -> impl Fn(Arc<AedbInstance>, Vec<EventOutboxRecord>) -> HandlerFuture + Send + Sync + 'static {
    move |_db, events| {
        let (handled, hold) = (handled.clone(), hold.clone());
        Box::pin(async move {
            if let Some((held, release)) =
                hold.filter(|_| events.iter().any(|e| e.event_key == "hold"))
            {
                held.notify_one();
                let _ = release.acquire().await;
                return Err(AedbError::Validation("the process is dead".into()));
            }
            handled.lock().extend(
                events
                    .into_iter()
                    .map(|e| (gen, (e.commit_seq, e.event_key))),
            );
            Ok(())
        })
    }
}

fn of(handled: &Handled, gen: u32) -> Vec<Ev> {
    handled
        .lock()
        .iter()
        .filter(|(g, _)| *g == gen)
        .map(|(_, ev)| ev.clone())
        .collect()
}

/// A process killed while its processor has handled events past its persisted checkpoint:
/// the next process hands over exactly the events after that checkpoint (those handled but
/// not acked again, once each, none before it). That process catches up and persists its
/// checkpoint, commits more, and the power fails: the checkpoint survives, and the third
/// process hands over only what came after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_handling_and_the_ack_redelivers_exactly_the_events_past_the_checkpoint() {
    let handled: Handled = Default::default();
    let (held, release) = (Arc::default(), Arc::new(tokio::sync::Semaphore::new(0)));
    let vfs = SimVfs::new();
    let db = open(&vfs).expect("open");
    db.create_project("p").await.expect("project");
    let mut commits = Vec::new();
    for c in 0..10 {
        let key = if c == 7 {
            "hold".into()
        } else {
            format!("e{c}")
        };
        commits.push(emit(&db, &[key]).await.expect("emit"));
    }
    // Two commits a run and a watermark no run reaches: only the first ack persists, and the
    // processor never idles (which would persist its position) before the held batch.
    let options = ReactiveProcessorOptions {
        max_events_per_run: 2,
        checkpoint_watermark_commits: 1_000,
        ..options()
    };
    let hold = holding(
        handled.clone(),
        0,
        Some((Arc::clone(&held), release.clone())),
    );
    db.start_reactive_processor(PROC, options, hold)
        .await
        .expect("start");
    held.notified().await;
    vfs.crash_now();
    release.close();
    drop(db);
    // Handled before the kill: the events before the held one, in order.
    let before = of(&handled, 0);
    let all: Vec<Ev> = commits
        .iter()
        .map(|(seq, keys)| (*seq, keys[0].clone()))
        .collect();
    assert!(
        before.len() >= 2 && before[..] == all[..before.len()] && before.len() <= 7,
        "{before:?}"
    );

    let image = vfs.crash_image(CrashMode::ProcessCrash, 1);
    let db = open(&image).expect("recover");
    let checkpoint = db
        .reactive_processor_lag(PROC, AtLatest)
        .await
        .expect("lag")
        .checkpoint_seq;
    // The first ack persisted (it is due whatever the watermark), no later one.
    assert!(checkpoint >= commits[0].0, "{checkpoint}");
    let redelivered: Vec<&Ev> = before.iter().filter(|ev| ev.0 > checkpoint).collect();
    assert!(
        !redelivered.is_empty(),
        "events were handled past {checkpoint}"
    );
    let resume = holding(handled.clone(), 1, None);
    assert!(db
        .register_reactive_processor_handler(PROC, resume)
        .await
        .expect("register"));
    let mine = emit(&db, &["f0".into()]).await.expect("emit");
    let image_log: Shared = Default::default();
    caught_up(&db, &image, &image_log, 1, mine.0).await;
    let mut expected: Vec<Ev> = all.into_iter().filter(|ev| ev.0 > checkpoint).collect();
    expected.push((mine.0, "f0".into()));
    assert_eq!(
        of(&handled, 1),
        expected,
        "after the restart: every event after the checkpoint once, in order, none before it \
         (so {redelivered:?} again)"
    );
    let persisted = db
        .reactive_processor_lag(PROC, AtLatest)
        .await
        .expect("lag")
        .checkpoint_seq;
    assert!(db.engine().durable_head_seq() >= persisted);

    // The recovered process commits again; then the power fails.
    let last = emit(&db, &["f1".into()]).await.expect("emit");
    caught_up(&db, &image, &image_log, 1, last.0).await;
    let persisted = db
        .reactive_processor_lag(PROC, AtLatest)
        .await
        .expect("lag")
        .checkpoint_seq;
    assert!(persisted >= last.0);
    image.crash_now();
    drop(db);
    let lost = image.crash_image(CrashMode::PowerLoss, 2);
    let db = open(&lost).expect("recover after the power loss");
    let lag = db
        .reactive_processor_lag(PROC, AtLatest)
        .await
        .expect("lag");
    assert_eq!(
        lag.checkpoint_seq, persisted,
        "the acked checkpoint survives"
    );
    let third = holding(handled.clone(), 2, None);
    assert!(db
        .register_reactive_processor_handler(PROC, third)
        .await
        .expect("register"));
    let after = emit(&db, &["g0".into()]).await.expect("emit");
    caught_up(&db, &lost, &image_log, 2, after.0).await;
    assert_eq!(of(&handled, 2), vec![(after.0, "g0".to_string())]);
}
