//! Model-based tests: random operations against the store and a `BTreeMap`, compared after
//! every step, with snapshots held across later writes, checkpoints and reopen.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use aedb_pager::io::sim::SimVfs;
use aedb_pager::io::Vfs;
use aedb_pager::{PageStore, Snapshot, StoreConfig};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, usize, u8),
    Remove(u16),
    Get(u16),
    Range(u16, u16, bool),
    Count(u16, u16),
    Commit,
    Abort,
    Checkpoint,
    Pin,
    Unpin,
    Reopen,
}

fn key(k: u16) -> Vec<u8> {
    // Variable-length keys: the tail repeats so some keys are long.
    let mut key = format!("k{:05}", k).into_bytes();
    key.extend(std::iter::repeat_n(b'x', (k % 7) as usize * 20));
    key
}

fn value(len: usize, fill: u8) -> Vec<u8> {
    (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let value_len = prop_oneof![8 => 0usize..64, 2 => 64usize..900, 1 => 900usize..9000];
    prop_oneof![
        30 => (0u16..600, value_len, any::<u8>()).prop_map(|(k, l, f)| Op::Insert(k, l, f)),
        12 => (0u16..600).prop_map(Op::Remove),
        6 => (0u16..600).prop_map(Op::Get),
        3 => (0u16..600, 0u16..600, any::<bool>()).prop_map(|(a, b, r)| Op::Range(a, b, r)),
        3 => (0u16..600, 0u16..600).prop_map(|(a, b)| Op::Count(a, b)),
        4 => Just(Op::Commit),
        1 => Just(Op::Abort),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Pin),
        1 => Just(Op::Unpin),
        1 => Just(Op::Reopen),
    ]
}

const TREE: &str = "t";

fn config() -> StoreConfig {
    StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: 64 * 4096,
        direct_io: false,
    }
}

fn open(vfs: &SimVfs) -> PageStore {
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    PageStore::open(vfs, Path::new("/db/data.aedb"), &config()).expect("open")
}

fn snapshot_matches(snapshot: &Snapshot, model: &Model) {
    let tree = snapshot.tree(TREE).expect("tree lookup");
    let Some(tree) = tree else {
        assert!(
            model.is_empty(),
            "tree missing but model has {} entries",
            model.len()
        );
        return;
    };
    let all: Vec<(Vec<u8>, Vec<u8>)> = tree
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .collect::<Result<_, _>>()
        .expect("scan");
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all.len(), expected.len());
    assert!(
        all == expected,
        "snapshot {} differs from its model",
        snapshot.seq()
    );
    assert_eq!(tree.len(), model.len() as u64);
}

fn run(ops: Vec<Op>) {
    let vfs = SimVfs::new();
    let mut store = open(&vfs);
    let mut committed = Model::new();
    let mut durable = Model::new();
    let mut working = committed.clone();
    let mut txn = None;
    let mut pins: Vec<(Snapshot, Model)> = Vec::new();
    for op in ops {
        match op {
            Op::Insert(k, len, fill) => {
                let t = txn.get_or_insert_with(|| store.begin_write().expect("begin"));
                let v = value(len, fill);
                let replaced = t.insert(TREE, &key(k), &v).expect("insert");
                assert_eq!(replaced, working.insert(key(k), v).is_some());
            }
            Op::Remove(k) => {
                let t = txn.get_or_insert_with(|| store.begin_write().expect("begin"));
                assert_eq!(
                    t.remove(TREE, &key(k)).expect("remove"),
                    working.remove(&key(k)).is_some()
                );
            }
            Op::Get(k) => {
                let t = txn.get_or_insert_with(|| store.begin_write().expect("begin"));
                assert_eq!(
                    t.get(TREE, &key(k)).expect("get"),
                    working.get(&key(k)).cloned()
                );
                assert_eq!(
                    store.snapshot().get(TREE, &key(k)).expect("get"),
                    committed.get(&key(k)).cloned()
                );
            }
            Op::Range(a, b, reverse) => {
                let (lo, hi) = (key(a.min(b)), key(a.max(b)));
                let t = txn.get_or_insert_with(|| store.begin_write().expect("begin"));
                let got: Vec<_> = t
                    .range(TREE, Bound::Included(&lo), Bound::Excluded(&hi), reverse)
                    .expect("range")
                    .collect::<Result<_, _>>()
                    .expect("scan");
                let mut want: Vec<_> = working
                    .range(lo.clone()..hi.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if reverse {
                    want.reverse();
                }
                assert!(got == want, "range {a}..{b} reverse={reverse}");
            }
            Op::Count(a, b) => {
                let (lo, hi) = (key(a.min(b)), key(a.max(b)));
                let t = txn.get_or_insert_with(|| store.begin_write().expect("begin"));
                let got = t
                    .count(TREE, Bound::Excluded(&lo), Bound::Included(&hi))
                    .expect("count");
                let want = working
                    .range::<Vec<u8>, _>((Bound::Excluded(lo), Bound::Included(hi)))
                    .count() as u64;
                assert_eq!(got, want);
            }
            Op::Commit => {
                if let Some(t) = txn.take() {
                    t.commit().expect("commit");
                    committed = working.clone();
                    let report = store.check();
                    assert!(report.is_ok(), "after commit: {:?}", report.violations);
                }
            }
            Op::Abort => {
                txn = None;
                working = committed.clone();
            }
            Op::Checkpoint => {
                if txn.is_none() {
                    store.checkpoint().expect("checkpoint");
                    durable = committed.clone();
                }
            }
            Op::Pin => pins.push((store.snapshot(), committed.clone())),
            Op::Unpin => {
                if !pins.is_empty() {
                    let (snapshot, model) = pins.remove(0);
                    snapshot_matches(&snapshot, &model);
                }
            }
            Op::Reopen => {
                txn = None;
                pins.clear();
                drop(store);
                store = open(&vfs);
                let meta = store.durable_meta();
                let file_report = aedb_pager::check::check_file(store.pool(), &meta);
                assert!(
                    file_report.is_ok(),
                    "file after reopen: {:?}",
                    file_report.violations
                );
                committed = durable.clone();
                working = durable.clone();
                snapshot_matches(&store.snapshot(), &committed);
            }
        }
    }
    for (snapshot, model) in &pins {
        snapshot_matches(snapshot, model);
    }
    drop(txn);
    snapshot_matches(&store.snapshot(), &committed);
    let report = store.check();
    assert!(report.is_ok(), "final: {:?}", report.violations);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    #[test]
    fn store_matches_btreemap(ops in proptest::collection::vec(op_strategy(), 1..400)) {
        run(ops);
    }
}

#[test]
fn many_sequential_and_reverse_inserts_then_deletes() {
    let vfs = SimVfs::new();
    let store = open(&vfs);
    let mut txn = store.begin_write().unwrap();
    let mut model = Model::new();
    for i in 0..3000u32 {
        let k = if i % 2 == 0 { i } else { 100_000 - i };
        let k = format!("{k:08}").into_bytes();
        txn.insert(TREE, &k, &k.repeat(3)).unwrap();
        model.insert(k.clone(), k.repeat(3));
    }
    txn.commit().unwrap();
    assert!(store.check().is_ok(), "{:?}", store.check().violations);
    let mut txn = store.begin_write().unwrap();
    for (n, k) in model.clone().keys().enumerate() {
        if n % 3 != 0 {
            assert!(txn.remove(TREE, k).unwrap());
            model.remove(k);
        }
    }
    txn.commit().unwrap();
    let report = store.check();
    assert!(report.is_ok(), "{:?}", report.violations);
    snapshot_matches(&store.snapshot(), &model);
    store.checkpoint().unwrap();
    drop(store);
    let store = open(&vfs);
    snapshot_matches(&store.snapshot(), &model);
}

#[test]
fn prefix_ranges_seek_and_counts() {
    let vfs = SimVfs::new();
    let store = open(&vfs);
    let mut txn = store.begin_write().unwrap();
    let mut model = Model::new();
    for group in [b"a".as_slice(), b"ab", b"b", b"b\xff", b"c"] {
        for i in 0..300u32 {
            let mut k = group.to_vec();
            k.extend_from_slice(&i.to_be_bytes());
            txn.insert(TREE, &k, &i.to_le_bytes()).unwrap();
            model.insert(k, i.to_le_bytes().to_vec());
        }
    }
    txn.commit().unwrap();
    let tree = store.snapshot().tree(TREE).unwrap().unwrap();
    for prefix in [b"a".as_slice(), b"ab", b"b", b"b\xff", b"", b"zz"] {
        for reverse in [false, true] {
            let got: Vec<_> = tree.prefix(prefix, reverse).map(|r| r.unwrap().0).collect();
            let mut want: Vec<_> = model
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            if reverse {
                want.reverse();
            }
            assert_eq!(got, want, "prefix {prefix:?} reverse {reverse}");
        }
        let counted = tree
            .count(
                Bound::Included(prefix),
                match aedb_pager::store::prefix_end(prefix) {
                    Some(ref end) => Bound::Excluded(end.as_slice()),
                    None => Bound::Unbounded,
                },
            )
            .unwrap();
        assert_eq!(
            counted,
            model.keys().filter(|k| k.starts_with(prefix)).count() as u64
        );
    }
    // Seek forwards and backwards inside a bounded range.
    let lo = b"ab".to_vec();
    let hi = b"c".to_vec();
    let mut forward = tree.range(Bound::Included(&lo), Bound::Excluded(&hi), false);
    assert_eq!(
        forward.next().unwrap().unwrap().0,
        [b"ab".as_slice(), &0u32.to_be_bytes()].concat()
    );
    let target = [b"b".as_slice(), &150u32.to_be_bytes()].concat();
    forward.seek(&target);
    assert_eq!(forward.next().unwrap().unwrap().0, target);
    let mut backward = tree.range(Bound::Included(&lo), Bound::Excluded(&hi), true);
    backward.seek(&[b"b".as_slice(), &10u32.to_be_bytes()].concat());
    assert_eq!(
        backward.next().unwrap().unwrap().0,
        [b"b".as_slice(), &10u32.to_be_bytes()].concat()
    );
    let rest = backward.count();
    assert_eq!(rest, 10 + 300, "b0..b9 and all of ab remain below");
}
