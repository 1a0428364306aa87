//! What the simulator-based durability suites share: opening on a simulated disk, the "kv"
//! tree's state, and commits of put/delete lists. Each suite uses some of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use aedb::config::AedbConfig;
use aedb::storage::io::sim::SimVfs;
use aedb::storage::io::Vfs;
use aedb::{AedbError, CommitFinality, CommitOutcome, Engine};

pub const DIR: &str = "/db";
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;
/// Puts (`Some`) and deletes (`None`) of one commit, in order.
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

pub fn open_sim(vfs: &SimVfs, config: AedbConfig) -> Result<Engine, AedbError> {
    Engine::open_with_vfs(
        config,
        Path::new(DIR),
        Arc::new(vfs.clone()) as Arc<dyn Vfs>,
    )
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
