//! The checker's walking API (`check::walk_file` with a `Visitor`): what it tells a tool that
//! maps a file page by page agrees with the checker's own report, on a sound file and on one
//! with a damaged page.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aedb_pager::btree::node::NodeRef;
use aedb_pager::check::{walk_file, CheckReport, Part, Violation, Visitor};
use aedb_pager::io::sim::SimVfs;
use aedb_pager::io::{all_ok, submit_wait, AlignedBuf, IoOp, OpenOptions, Vfs};
use aedb_pager::page::PageId;
use aedb_pager::{PageStore, StoreConfig, TreeRecord};

const PATH: &str = "/db/data.aedb";

#[derive(Default)]
struct Recorder {
    trees: Vec<(String, TreeRecord)>,
    /// Page → what it was claimed as, and the tree (index into `trees`) it was claimed in.
    claims: BTreeMap<PageId, (&'static str, usize)>,
    claimed_twice: usize,
    leaves: u64,
    branches: u64,
    overflow: u64,
    violations: Vec<(Violation, bool)>,
    parts_after_trees: Vec<&'static str>,
}

fn part_name(part: Part<'_>) -> &'static str {
    match part {
        Part::Tree { .. } => "tree",
        Part::Free => "free",
        Part::Leaked => "leaked",
    }
}

impl Visitor for Recorder {
    fn enter(&mut self, part: Part<'_>) {
        match part {
            Part::Tree { name, record } => self.trees.push((name.to_string(), record)),
            Part::Free | Part::Leaked => self.parts_after_trees.push(part_name(part)),
        }
    }
    fn page(&mut self, id: PageId, what: &'static str) {
        let tree = self.trees.len().saturating_sub(1);
        if self.claims.insert(id, (what, tree)).is_some() {
            self.claimed_twice += 1;
        }
    }
    fn node(&mut self, node: &NodeRef<'_>, used: usize) {
        assert!(used > 0);
        assert_eq!(self.claims.get(&node.id()).map(|c| c.0), Some("tree node"));
        if node.is_leaf() {
            self.leaves += 1;
        } else {
            self.branches += 1;
        }
    }
    fn overflow(&mut self, id: PageId, used: u64) {
        assert!(used > 0);
        assert_eq!(self.claims.get(&id).map(|c| c.0), Some("overflow"));
        self.overflow += 1;
    }
    fn violation(&mut self, violation: &Violation, damaged: bool) {
        self.violations.push((violation.clone(), damaged));
    }
}

fn store(vfs: &Arc<dyn Vfs>) -> PageStore {
    let config = StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: 4 << 20,
        direct_io: false,
    };
    let store = PageStore::open(Arc::clone(vfs), Path::new(PATH), &config).expect("open");
    let mut txn = store.begin_write().expect("begin");
    for i in 0..400u32 {
        txn.insert("small", &i.to_be_bytes(), &[i as u8; 100])
            .expect("insert");
    }
    for i in 0..5u32 {
        txn.insert("large", &i.to_be_bytes(), &vec![i as u8; 9000])
            .expect("insert");
    }
    txn.commit().expect("commit");
    store.checkpoint().expect("checkpoint");
    store
}

fn walk(store: &PageStore) -> (Recorder, CheckReport) {
    let mut recorder = Recorder::default();
    let report = walk_file(store.pool(), &store.durable_meta(), &mut recorder);
    (recorder, report)
}

#[test]
fn a_sound_file_is_told_page_by_page_as_the_report_counts_it() {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
    let store = store(&vfs);
    let (seen, report) = walk(&store);
    assert!(report.is_ok(), "{:?}", report.violations);
    assert!(seen.violations.is_empty());
    let names: Vec<&str> = seen.trees.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["(tree of trees)", "large", "small"]);
    assert_eq!(seen.trees[2].1.len, 400);
    assert_eq!(seen.parts_after_trees, ["free", "leaked"]);
    assert_eq!(seen.claimed_twice, 0);
    // Every page below the page count is claimed once: reachable or free.
    let claimed: Vec<PageId> = seen.claims.keys().copied().collect();
    assert_eq!(claimed, (2..report.page_count).collect::<Vec<_>>());
    let trees = std::iter::once(&report.catalog).chain(&report.trees);
    let leaves: u64 = trees.clone().map(|t| t.leaf_pages).sum();
    let branches: u64 = trees.clone().map(|t| t.branch_pages).sum();
    let overflow: u64 = trees.map(|t| t.overflow_pages).sum();
    assert_eq!(
        (seen.leaves, seen.branches, seen.overflow),
        (leaves, branches, overflow)
    );
    assert_eq!(seen.overflow, 5 * 3);
    let in_large = seen
        .claims
        .values()
        .filter(|(what, tree)| *what == "overflow" && *tree == 1)
        .count();
    assert_eq!(in_large, 15);
}

#[test]
fn a_damaged_page_is_told_as_damaged_and_as_the_report_has_it() {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
    let store = store(&vfs);
    let (seen, _) = walk(&store);
    let (&leaf, _) = seen
        .claims
        .iter()
        .rev()
        .find(|(_, (what, tree))| *what == "tree node" && *tree == 2)
        .expect("a node of small");
    let mut page = store.pool().read_from_disk(leaf).expect("read").to_vec();
    page[2000] ^= 0x5a;
    let file = vfs
        .open(Path::new(PATH), OpenOptions::default())
        .expect("open file");
    all_ok(submit_wait(
        &*file,
        vec![IoOp::Write {
            offset: leaf * 4096,
            buf: AlignedBuf::from_slice(&page),
        }],
    ))
    .expect("write");
    let (seen, report) = walk(&store);
    assert!(!report.is_ok());
    let told: Vec<Violation> = seen.violations.iter().map(|(v, _)| v.clone()).collect();
    assert_eq!(told, report.violations);
    let damaged: Vec<Option<PageId>> = seen
        .violations
        .iter()
        .filter(|(_, damaged)| *damaged)
        .map(|(v, _)| v.page)
        .collect();
    assert_eq!(damaged, [Some(leaf)]);
    assert!(told[0].message.contains("checksum mismatch"), "{told:?}");
}
