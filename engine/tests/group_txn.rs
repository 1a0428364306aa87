//! One copy-on-write transaction per commit group (`durable/group.rs`): commits queued behind a
//! running one are applied to one write transaction, each keeping its own sequence, frame and
//! answer; a commit that fails, panics, poisons or discards after writing is taken out without
//! touching its neighbours, and what is published is what the log recovers.
//!
//! The group is formed deterministically: a first commit's body holds the writer until every
//! other commit is queued (`Engine::queued_commits`), in a known order.

mod sim_support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use aedb::config::AedbConfig;
use aedb::storage::io::sim::{CrashMode, Fault, SimVfs};
use aedb::storage::io::OpKind;
use aedb::{AedbError, CommitFinality, CommitOutcome, Engine, LoggedTxn};
use sim_support::{open_sim, read_state, State};

type Outcome = Result<CommitOutcome<Option<Vec<u8>>>, AedbError>;
type Body = Box<dyn FnOnce(&mut LoggedTxn) -> Result<Option<Vec<u8>>, AedbError> + Send>;

fn config() -> AedbConfig {
    AedbConfig {
        page_size: 4096,
        buffer_pool_bytes: 64 * 4096,
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        ..AedbConfig::default()
    }
}

fn wait_until_queued(engine: &Engine, n: usize) {
    // A bound on progress, not a timing assertion: queuing takes microseconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.queued_commits() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} commits were queued",
            engine.queued_commits()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A call queued behind the holder: a commit, or a dry run (answered with sequence 0).
enum Call {
    Commit(Body),
    DryRun(Body),
}

impl Call {
    fn run(self, engine: &Engine) -> Outcome {
        match self {
            Call::Commit(body) => engine.commit_blocking(CommitFinality::Visible, body),
            Call::DryRun(body) => tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(engine.dry_run(body))
                .map(|value| CommitOutcome {
                    commit_seq: 0,
                    durable_head_seq: 0,
                    value,
                }),
        }
    }
}

/// Run `bodies` as one group: each is queued (in order) behind a commit that holds the writer
/// until all are; returns the holder's outcome and theirs, and how many groups ran.
fn run_as_one_group(engine: &Engine, bodies: Vec<Body>) -> (Outcome, Vec<Outcome>, u64) {
    run_calls(engine, bodies.into_iter().map(Call::Commit).collect())
}

/// [`run_as_one_group`] for any calls.
fn run_calls(engine: &Engine, calls: Vec<Call>) -> (Outcome, Vec<Outcome>, u64) {
    let (groups_before, _) = engine.group_stats();
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let holder = scope.spawn(move || {
            engine.commit_blocking(CommitFinality::Visible, move |txn| {
                started_tx.send(()).expect("the test waits for the holder");
                released.recv().expect("the test releases the holder");
                txn.insert("kv", b"holder", b"h")?;
                Ok(None)
            })
        });
        started.recv().expect("the holder's body runs");
        let handles: Vec<_> = calls
            .into_iter()
            .enumerate()
            .map(|(i, call)| {
                let handle = scope.spawn(move || call.run(engine));
                wait_until_queued(engine, i + 1);
                handle
            })
            .collect();
        release.send(()).expect("the holder waits");
        let holder = holder.join().expect("the holder thread");
        let outcomes = handles
            .into_iter()
            .map(|h| h.join().expect("a committer thread"))
            .collect();
        let (groups_after, _) = engine.group_stats();
        (holder, outcomes, groups_after - groups_before)
    })
}

fn put(key: &'static [u8], value: &'static [u8]) -> Body {
    Box::new(move |txn| {
        txn.insert("kv", key, value)?;
        Ok(None)
    })
}

#[test]
fn a_failed_commit_inside_a_group_leaves_no_trace_and_its_neighbours_commit() {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, config()).expect("open");
    sim_support::commit_ops(
        &engine,
        vec![(b"base".to_vec(), Some(b"b".to_vec()))],
        CommitFinality::Durable,
    )
    .expect("base commit");

    let bodies: Vec<Body> = vec![
        put(b"k0", b"v0"),
        Box::new(|txn| {
            txn.insert("kv", b"f1", b"x")?;
            Err(AedbError::Validation("refused after writing".into()))
        }),
        put(b"k2", b"v2"),
        Box::new(|txn| {
            txn.insert("kv", b"f3", b"x")?;
            panic!("a body panicked after writing");
        }),
        // Reads what an earlier commit of the same group wrote.
        Box::new(|txn| {
            let seen = txn.get("kv", b"k0")?;
            txn.insert("kv", b"k4", seen.as_deref().unwrap_or(b"missing"))?;
            Ok(seen)
        }),
        Box::new(|txn| {
            txn.insert("kv", b"f5", b"x")?;
            txn.poison(AedbError::Validation("poisoned after writing".into()));
            Ok(None)
        }),
        Box::new(|txn| {
            txn.insert("kv", b"f6", b"x")?;
            txn.discard();
            Ok(None)
        }),
        Box::new(|txn| {
            txn.remove("kv", b"k2")?;
            Ok(None)
        }),
        Box::new(|txn| {
            let seen = txn.get("kv", b"k4")?;
            txn.discard();
            Ok(seen)
        }),
        put(b"k9", b"v9"),
    ];
    let (holder, outcomes, groups) = run_as_one_group(&engine, bodies);
    assert_eq!(
        groups, 2,
        "the holder's group, then one group of every queued commit"
    );
    let s = holder.expect("the holder commits").commit_seq;

    let seq_of = |i: usize| match &outcomes[i] {
        Ok(outcome) => outcome.commit_seq,
        Err(err) => panic!("commit {i} failed: {err}"),
    };
    assert_eq!(
        [seq_of(0), seq_of(2), seq_of(4), seq_of(7), seq_of(9)],
        [s + 1, s + 2, s + 3, s + 4, s + 5],
        "logged commits keep consecutive sequences of their own"
    );
    assert!(matches!(outcomes[1], Err(AedbError::Validation(_))));
    assert!(matches!(outcomes[3], Err(AedbError::CommitPanicked(_))));
    assert!(matches!(outcomes[5], Err(AedbError::Validation(_))));
    assert_eq!(seq_of(6), 0, "a discard consumes no sequence");
    assert_eq!(seq_of(8), 0);
    let value_of = |i: usize| outcomes[i].as_ref().ok().and_then(|o| o.value.clone());
    assert_eq!(value_of(4).as_deref(), Some(&b"v0"[..]));
    assert_eq!(value_of(8).as_deref(), Some(&b"v0"[..]));
    for outcome in outcomes.iter().flatten() {
        assert!(
            outcome.durable_head_seq >= outcome.commit_seq.max(s),
            "Full answers once durable"
        );
    }

    let expected: State = [
        (&b"base"[..], &b"b"[..]),
        (b"holder", b"h"),
        (b"k0", b"v0"),
        (b"k4", b"v0"),
        (b"k9", b"v9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_vec(), v.to_vec()))
    .collect();
    assert_eq!(read_state(&engine), expected);
    assert_eq!(engine.visible_head_seq(), s + 5);
    assert!(engine.store().check().is_ok());

    // A group is one version, its last sequence. A rebuild seals the group (so no record is
    // replayed twice): s+1, s+2 and s+3 each ended one; s+4 is inside the last.
    assert!(engine.snapshot_at(s + 5).is_ok());
    assert!(engine.snapshot_at(s + 3).is_ok());
    assert!(engine.snapshot_at(s + 4).is_err());
    assert!(
        engine.snapshot_at(s).is_ok(),
        "the holder's group is a version"
    );

    // What was published is what the log gives back, after a process crash or a power loss.
    for mode in [CrashMode::ProcessCrash, CrashMode::PowerLoss] {
        let image = vfs.crash_image(mode, 7);
        let recovered = open_sim(&image, config()).expect("recovery");
        assert_eq!(read_state(&recovered), expected, "{mode:?}");
        assert_eq!(recovered.visible_head_seq(), s + 5, "{mode:?}");
        assert!(recovered.store().check().is_ok(), "{mode:?}");
    }
}

#[test]
fn commits_of_one_group_see_each_other_in_order() {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, config()).expect("open");
    const N: usize = 24;
    let bodies: Vec<Body> = (0..N)
        .map(|_| -> Body {
            Box::new(|txn| {
                let current = txn.get("kv", b"counter")?;
                let n = current.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])));
                txn.insert("kv", b"counter", &(n + 1).to_le_bytes())?;
                // Every commit also writes a key of its own: the group rewrites shared pages.
                txn.insert("kv", format!("key-{n:04}").as_bytes(), &[7u8; 300])?;
                Ok(Some((n + 1).to_le_bytes().to_vec()))
            })
        })
        .collect();
    let (holder, outcomes, groups) = run_as_one_group(&engine, bodies);
    holder.expect("the holder commits");
    assert_eq!(groups, 2);
    let seen: Vec<u64> = outcomes
        .into_iter()
        .map(|o| {
            let value = o.expect("every increment commits").value.expect("a value");
            u64::from_le_bytes(value.try_into().expect("eight bytes"))
        })
        .collect();
    assert_eq!(
        seen,
        (1..=N as u64).collect::<Vec<_>>(),
        "serial order, no lost update"
    );
    let state = read_state(&engine);
    assert_eq!(state.len(), N + 2, "counter, holder and one key per commit");
    let image = vfs.crash_image(CrashMode::PowerLoss, 1);
    let recovered = open_sim(&image, config()).expect("recovery");
    assert_eq!(read_state(&recovered), state);
}

fn sized_puts(sizes: &[usize]) -> Vec<Body> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| -> Body {
            Box::new(move |txn| {
                txn.insert("kv", format!("big-{i}").as_bytes(), &vec![i as u8; len])?;
                Ok(None)
            })
        })
        .collect()
}

fn small_segments() -> AedbConfig {
    // 64 KiB segments: groups are sealed past 16 KiB of frames.
    AedbConfig {
        max_segment_bytes: 64 << 10,
        ..config()
    }
}

/// Which of the `big-{i}` keys the engine shows, and that a reopen after a process crash or a
/// power loss shows exactly the same state.
fn visible_and_recovered(engine: &Engine, vfs: &SimVfs, n: usize) -> Vec<bool> {
    let state = read_state(engine);
    for mode in [CrashMode::ProcessCrash, CrashMode::PowerLoss] {
        let image = vfs.crash_image(mode, 3);
        let recovered = open_sim(&image, small_segments()).expect("recovery");
        assert_eq!(
            read_state(&recovered),
            state,
            "{mode:?}: a reopen finds what was shown"
        );
    }
    (0..n)
        .map(|i| state.contains_key(format!("big-{i}").as_bytes()))
        .collect()
}

/// A group whose last commit is too large for its frames to share a segment rotates inside
/// it. When creating the next segment then fails, the commits whose frames the rotation wrote
/// and synced are acknowledged *and* published (what this process shows is what a reopen
/// finds); the one that needed the new segment fails with the I/O error, and the engine
/// latches.
#[test]
fn a_rotation_failing_inside_a_group_publishes_exactly_the_commits_it_acknowledges() {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, small_segments()).expect("open");
    let mut calls: Vec<Call> = sized_puts(&[5_000, 5_000, 5_000, 60_000, 5_000])
        .into_iter()
        .map(Call::Commit)
        .collect();
    // A dry run in the same group, after the latch: refused like a commit.
    calls.push(Call::DryRun(Box::new(|_| Ok(None))));
    vfs.inject(Fault::once(OpKind::Grow, 0, libc::ENOSPC).on_path("wal-"));
    let (holder, outcomes, _) = run_calls(&engine, calls);
    holder.expect("the holder commits");
    assert!(outcomes[..3].iter().all(Result::is_ok), "{outcomes:?}");
    assert!(
        matches!(outcomes[3], Err(AedbError::Io(_))),
        "{:?}",
        outcomes[3]
    );
    assert!(
        matches!(outcomes[4], Err(AedbError::Failed(_))),
        "{:?}",
        outcomes[4]
    );
    assert!(
        matches!(outcomes[5], Err(AedbError::Failed(_))),
        "a dry run after the latch: {:?}",
        outcomes[5]
    );
    assert_eq!(
        visible_and_recovered(&engine, &vfs, 5),
        [true, true, true, false, false],
        "visible exactly when acknowledged"
    );
    let after = sim_support::commit_ops(
        &engine,
        vec![(b"after".to_vec(), Some(b"x".to_vec()))],
        CommitFinality::Visible,
    );
    assert!(
        matches!(after, Err(AedbError::Failed(_))),
        "the engine latched"
    );
}

/// A group that would straddle the segment's end rotates before its first frame
/// (`WalWriter::reserve`); when that rotation fails, no commit of the group reached the log,
/// and every one of them fails.
#[test]
fn a_rotation_failing_before_a_group_fails_all_of_it() {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, small_segments()).expect("open");
    sim_support::commit_ops(
        &engine,
        vec![(b"filler".to_vec(), Some(vec![1; 52_000]))],
        CommitFinality::Durable,
    )
    .expect("a commit filling most of the segment");
    vfs.inject(Fault::once(OpKind::Grow, 0, libc::ENOSPC).on_path("wal-"));
    let bodies = sized_puts(&[5_000, 5_000, 5_000]);
    let (holder, outcomes, _) = run_as_one_group(&engine, bodies);
    holder.expect("the holder commits");
    assert!(
        outcomes.iter().all(|o| matches!(o, Err(AedbError::Io(_)))),
        "{outcomes:?}"
    );
    assert_eq!(
        visible_and_recovered(&engine, &vfs, 3),
        [false, false, false]
    );
}

/// The rotation inside a group fails in its own fsync: the commits it appended before are in
/// the log at most unsynced, so they are not shown and are told their outcome is unknown; the
/// one that needed the new segment fails with the I/O error; a power loss keeps none of them.
#[test]
fn a_rotation_whose_sync_fails_inside_a_group_acknowledges_none_of_it() {
    let vfs = SimVfs::new();
    let engine = open_sim(&vfs, small_segments()).expect("open");
    let bodies = sized_puts(&[5_000, 5_000, 5_000, 60_000]);
    // The holder's group syncs the log once; the next sync is the rotation's.
    vfs.inject(Fault::once(OpKind::Sync, 1, libc::EIO).on_path("wal-"));
    let (holder, outcomes, _) = run_as_one_group(&engine, bodies);
    holder.expect("the holder commits");
    for outcome in &outcomes[..3] {
        match outcome {
            Err(AedbError::Failed(message)) => assert!(message.contains("unknown"), "{message}"),
            other => panic!("expected an unknown outcome, got {other:?}"),
        }
    }
    assert!(
        matches!(outcomes[3], Err(AedbError::Io(_))),
        "{:?}",
        outcomes[3]
    );
    let state = read_state(&engine);
    assert!((0..4).all(|i| !state.contains_key(format!("big-{i}").as_bytes())));
    let image = vfs.crash_image(CrashMode::PowerLoss, 5);
    let recovered = open_sim(&image, small_segments()).expect("recovery");
    assert_eq!(
        read_state(&recovered),
        state,
        "a power loss keeps none of the group"
    );
}
