//! Versions retained for `AtSeq` reads are bounded by count and by the pages they keep from
//! reuse, so bulk commits neither grow the file without bound nor release their garbage in one
//! burst a thousand commits later.

use std::collections::BTreeMap;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::{CommitFinality, Engine};
use proptest::prelude::*;

fn config(pool_bytes: u64, max_versions: usize) -> AedbConfig {
    AedbConfig {
        durability_mode: DurabilityMode::OsBuffered,
        buffer_pool_bytes: pool_bytes,
        max_versions,
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        ..AedbConfig::default()
    }
}

fn put_many(engine: &Engine, round: u64, keys: u64) -> Result<(), aedb::AedbError> {
    engine.commit_blocking(CommitFinality::Visible, move |txn| {
        for k in 0..keys {
            let key = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes();
            txn.insert("kv", &key, &[round as u8; 100])?;
        }
        Ok(())
    })?;
    Ok(())
}

#[test]
fn count_bound_keeps_exactly_the_newest_versions() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(config(64 << 20, 8), dir.path())?;
    for round in 0..20 {
        put_many(&engine, round, 1)?;
    }
    let head = engine.visible_head_seq();
    assert_eq!(engine.retention_stats().0, 8);
    for seq in head - 7..=head {
        assert_eq!(engine.snapshot_at(seq).map(|s| s.seq()), Ok(seq));
    }
    assert_eq!(
        engine.snapshot_at(head - 8).map(|s| s.seq()),
        Err(head - 7),
        "older than the ring: the error names the oldest retained"
    );
    Ok(())
}

#[test]
fn page_bound_lets_bulk_garbage_be_reused() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // A 1 MiB pool: the retained versions may hold at most 64 pages (the floor of the budget).
    let engine = Engine::open(config(1 << 20, 1024), dir.path())?;
    for round in 0..60 {
        // Rewrites every leaf of the tree: each commit replaces about 50 pages.
        put_many(&engine, round, 1_000)?;
        let (versions, held) = engine.retention_stats();
        assert!(
            held <= 64 || versions == 1,
            "round {round}: {versions} versions hold {held} pages"
        );
    }
    let (versions, _) = engine.retention_stats();
    assert!(
        versions < 10,
        "bulk commits should push old versions out by pages, kept {versions}"
    );
    // The newest retained version is still exact.
    let head = engine.visible_head_seq();
    assert_eq!(engine.snapshot_at(head - 1).map(|s| s.seq()), Ok(head - 1));
    drop(engine);
    // 60 rewrites of ~120 KB: with every replaced page held for 1,024 commits the file would
    // pass 10 MiB; reused, it stays a small multiple of the live data.
    let len = std::fs::metadata(dir.path().join(aedb::DATA_FILE))?.len();
    assert!(len < 4 << 20, "data file grew to {len} bytes");
    Ok(())
}

/// Random rewrites without checkpoints for size or age: every page a commit replaces waits
/// for the next checkpoint before reuse, and the pages waiting past the space setting call
/// for one (and past twice the setting, hold the commits until one begins). Without it no
/// checkpoint runs and the file holds a second copy of the tree (about 1.95 × the pages of
/// the loaded tree here); with it, about 1.3 ×.
#[test]
fn pages_held_for_a_checkpoint_call_for_one() -> Result<(), Box<dyn std::error::Error>> {
    let run = |percent: u32| -> Result<(u64, u64, u64), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let engine = Engine::open(
            AedbConfig {
                checkpoint_space_percent: percent,
                // The default minimum (16 MiB) is more than this whole tree.
                checkpoint_space_min_bytes: 256 << 10,
                page_size: 4096,
                ..config(4 << 20, 16)
            },
            dir.path(),
        )?;
        // 48,000 keys (about 5,000 leaves); commits of 50 keys, each replacing about 1 % of
        // the leaves, as W12's 1,000-key commits of a million keys do.
        let keys: u64 = 48_000;
        let commits = 960;
        let mut after_load = 0;
        for round in 0..3u64 {
            for chunk in 0..commits {
                engine.commit_blocking(CommitFinality::Visible, move |txn| {
                    for k in (chunk..keys).step_by(commits as usize) {
                        let key = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes();
                        txn.insert("kv", &key, &[round as u8; 300])?;
                    }
                    Ok(())
                })?;
            }
            if round == 0 {
                engine.checkpoint_now()?;
                after_load = engine.store().durable_meta().generation;
            }
        }
        let held = engine.store().space_held();
        let checkpoints = engine.store().durable_meta().generation - after_load;
        drop(engine);
        Ok((checkpoints, held.held_pages, held.page_count))
    };
    let (none, held_without, pages_without) = run(0)?;
    assert_eq!(none, 0, "nothing else asks for a checkpoint here");
    assert!(
        held_without > 4_000,
        "every leaf replaced: {held_without} held"
    );
    let percent = aedb::config::AedbConfig::default().checkpoint_space_percent;
    let (checkpoints, held, pages) = run(percent)?;
    assert!(
        checkpoints > 0,
        "no checkpoint for {held_without} held pages"
    );
    assert!(
        held < held_without,
        "{held} pages held after {checkpoints} checkpoints"
    );
    assert!(
        pages * 100 < pages_without * 75,
        "{pages} pages with checkpoints for space, {pages_without} without"
    );
    Ok(())
}

#[test]
fn a_space_share_over_100_percent_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = AedbConfig {
        checkpoint_space_percent: 101,
        ..AedbConfig::default()
    };
    match Engine::open(config, dir.path()) {
        Err(aedb::AedbError::InvalidConfig { message }) => {
            assert!(message.contains("checkpoint_space_percent"), "{message}")
        }
        other => panic!("expected InvalidConfig, got {:?}", other.err()),
    }
}

/// A copy into the frame of a reclaimed version leaves the node's free middle as it was
/// (`Fill::CopyAround`): only frames that held committed pages are treated so. Bytes a failed
/// commit wrote are in frames its transaction dropped, and must never reach a live page
/// through a later copy's unwritten middle. The pool is large, so no page of the failed
/// commits is written back before it is dropped: whatever the files hold came from a page some
/// checkpoint wrote. Run with every version retained (the failed commits' frames are the only
/// spare ones) and with two (reclaimed frames, left unzeroed, are reused beside them).
#[test]
fn bytes_of_a_failed_commit_never_reach_a_live_page() -> Result<(), Box<dyn std::error::Error>> {
    const MARK: &[u8; 16] = b"NEVER-COMMITTED!";
    for max_versions in [1024, 2] {
        let dir = tempfile::tempdir()?;
        let engine = Engine::open(config(64 << 20, max_versions), dir.path())?;
        put_many(&engine, 0, 50)?;
        let side = |round: u8| {
            engine.commit_blocking(CommitFinality::Visible, move |txn| {
                txn.insert("side", b"k", &[round; 8]).map(drop)
            })
        };
        side(0)?;
        for attempt in 0..4u8 {
            let failed = engine.commit_blocking(CommitFinality::Visible, move |txn| {
                // Into the middle of a leaf, where a later copy into the same memory writes
                // nothing when it holds a mostly empty node.
                txn.insert("kv", &[0xFF, attempt], &MARK.repeat(60))?;
                txn.insert("side", &[0xFF, attempt], &MARK.repeat(60))?;
                Err::<(), _>(aedb::AedbError::Validation("refused after writing".into()))
            });
            assert!(failed.is_err());
            // Copies of mostly empty nodes (the side tree's leaf, the tree of trees) into spare
            // frames, each written to the file by a checkpoint.
            for round in 0..3 {
                side(attempt * 3 + round + 1)?;
                put_many(&engine, u64::from(attempt) + 1, 5)?;
                engine.checkpoint_now()?;
            }
        }
        drop(engine);
        let mut checked = 0;
        for entry in std::fs::read_dir(dir.path())? {
            let path = entry?.path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            checked += bytes.len();
            assert!(
                !bytes.windows(MARK.len()).any(|window| window == MARK),
                "{} holds bytes of a commit that failed (max_versions {max_versions})",
                path.display()
            );
        }
        assert!(checked > 64 << 10, "the files were read ({checked} bytes)");
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Step {
    Put(usize, u8, u8),
    Remove(usize, u8),
    Drop(usize),
}

const TREES: [&str; 3] = ["t0", "t1", "t2"];

type Model = BTreeMap<&'static str, BTreeMap<u8, u8>>;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..TREES.len(), 0u8..40, any::<u8>()).prop_map(|(t, k, v)| Step::Put(t, k, v)),
        3 => (0..TREES.len(), 0u8..40).prop_map(|(t, k)| Step::Remove(t, k)),
        1 => (0..TREES.len()).prop_map(Step::Drop),
    ]
}

/// The trees of a snapshot as the model holds them (a tree that does not exist reads as empty,
/// as the model cannot tell the two apart), each tree's count checked against its entries.
fn read_back(snapshot: &aedb::storage::Snapshot) -> Model {
    let mut state = Model::new();
    for name in TREES {
        let Some(tree) = snapshot.tree(name).expect("lookup") else {
            continue;
        };
        let entries: BTreeMap<u8, u8> = tree
            .range(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
            )
            .map(|entry| {
                let (key, value) = entry.expect("scan");
                (key[0], value[0])
            })
            .collect();
        assert_eq!(tree.len(), entries.len() as u64, "{name}'s count");
        if !entries.is_empty() {
            state.insert(name, entries);
        }
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every retained version reads exactly as the trees were at its sequence, whatever came
    /// after it (puts, removes, dropped and recreated trees, a checkpoint), and a sequence
    /// older than the retained ones is refused naming the oldest.
    #[test]
    fn every_retained_version_reads_as_its_commit_left_the_trees(
        commits in proptest::collection::vec(proptest::collection::vec(step(), 1..4), 1..40),
        checkpoint_at in 0usize..40,
    ) {
        const KEEP: usize = 6;
        let dir = tempfile::tempdir().expect("dir");
        let engine = Engine::open(config(64 << 20, KEEP), dir.path()).expect("open");
        let mut model = Model::new();
        let mut history: BTreeMap<u64, Model> = BTreeMap::new();
        for (i, steps) in commits.into_iter().enumerate() {
            for step in &steps {
                match *step {
                    Step::Put(t, k, v) => {
                        model.entry(TREES[t]).or_default().insert(k, v);
                    }
                    Step::Remove(t, k) => {
                        if let Some(tree) = model.get_mut(TREES[t]) {
                            tree.remove(&k);
                        }
                    }
                    Step::Drop(t) => {
                        model.remove(TREES[t]);
                    }
                }
            }
            model.retain(|_, tree| !tree.is_empty());
            let seq = engine
                .commit_blocking(CommitFinality::Visible, move |txn| {
                    for step in steps {
                        match step {
                            Step::Put(t, k, v) => txn.insert(TREES[t], &[k], &[v]).map(drop)?,
                            Step::Remove(t, k) => txn.remove(TREES[t], &[k]).map(drop)?,
                            Step::Drop(t) => txn.drop_tree(TREES[t]).map(drop)?,
                        }
                    }
                    Ok(())
                })
                .expect("commit")
                .commit_seq;
            history.insert(seq, model.clone());
            if i == checkpoint_at {
                engine.checkpoint_now().expect("checkpoint");
            }
            let head = engine.visible_head_seq();
            prop_assert_eq!(head, seq);
            // The durable checkpoint's version stays readable too (`AtCheckpoint`).
            let checkpointed = engine.checkpoint_snapshot().seq();
            for (&at, expected) in history.range(head.saturating_sub(KEEP as u64 + 1)..) {
                let retained = at + KEEP as u64 > head || at == checkpointed;
                match engine.snapshot_at(at) {
                    Ok(snapshot) => {
                        prop_assert!(retained, "seq {} is past the ring", at);
                        prop_assert_eq!(&read_back(&snapshot), expected, "seq {}", at);
                    }
                    Err(oldest) => {
                        prop_assert!(!retained, "seq {} should be retained", at);
                        prop_assert_eq!(oldest, head + 1 - KEEP as u64);
                    }
                }
            }
            // The checkpoint's version, wherever it is.
            if let Some(expected) = history.get(&checkpointed) {
                let snapshot = engine.snapshot_at(checkpointed);
                prop_assert!(snapshot.is_ok(), "the checkpoint's seq {}", checkpointed);
                if let Ok(snapshot) = snapshot {
                    prop_assert_eq!(&read_back(&snapshot), expected);
                }
            }
        }
    }
}
