//! The data file: a damaged page of each kind gives a typed error naming the page, on open or
//! on the read that meets it, never a panic and never wrong rows.

use std::collections::BTreeMap;
use std::path::Path;

use aedb::catalog::namespace::table_tree;
use aedb::config::AedbConfig;
use aedb::error::CorruptionKind;
use aedb::query::QueryError;
use aedb::storage::io::{os_vfs, IoBackendChoice};
use aedb::{AedbError, AedbInstance, DATA_FILE};
use aedb_pager::btree::node::NodeRef;
use aedb_pager::check::{walk_file, Part, Visitor};
use aedb_pager::{PageStore, StoreConfig};

use super::support::*;

// ---- the data file ----

/// The pages of one tree, as the checker's walk meets them.
#[derive(Debug, Default)]
struct TreePages {
    root: u64,
    branches: Vec<u64>,
    leaves: Vec<u64>,
    overflow: Vec<u64>,
}

/// The data file's pages by role.
#[derive(Debug, Default)]
struct Layout {
    current: String,
    trees: BTreeMap<String, TreePages>,
    freelist: Vec<u64>,
    free: Vec<u64>,
    /// The slot of the newest meta page.
    meta_slot: u64,
    page_size: u64,
}

impl Visitor for Layout {
    fn enter(&mut self, part: Part<'_>) {
        self.current.clear();
        if let Part::Tree { name, record } = part {
            self.current = name.to_string();
            self.trees.entry(name.to_string()).or_default().root = record.root;
        }
    }

    fn page(&mut self, id: u64, what: &'static str) {
        match what {
            "free-list" => self.freelist.push(id),
            "free" => self.free.push(id),
            _ => {}
        }
    }

    fn node(&mut self, node: &NodeRef<'_>, _used: usize) {
        let tree = self.trees.entry(self.current.clone()).or_default();
        match node.is_leaf() {
            true => tree.leaves.push(node.id()),
            false => tree.branches.push(node.id()),
        }
    }

    fn overflow(&mut self, id: u64, _used: u64) {
        let tree = self.trees.entry(self.current.clone()).or_default();
        tree.overflow.push(id);
    }
}

/// Walk the data file of `dir` with the checker (which must find nothing wrong).
fn layout(dir: &Path) -> Layout {
    let vfs = os_vfs(IoBackendChoice::Sync).expect("vfs");
    let store_config = StoreConfig {
        page_size: config().page_size,
        buffer_pool_bytes: 1 << 20,
        direct_io: false,
    };
    let store = PageStore::open_read_only(vfs, &dir.join(DATA_FILE), &store_config).expect("store");
    let meta = store.durable_meta();
    let mut layout = Layout {
        meta_slot: meta.slot(),
        page_size: u64::from(meta.page_size),
        ..Layout::default()
    };
    let report = walk_file(store.pool(), &meta, &mut layout);
    assert!(report.is_ok(), "{:?}", report.violations);
    assert!(!layout.freelist.is_empty() && !layout.free.is_empty());
    layout
}

/// The table's tree in `layout` (its name from the catalog).
fn table_pages<'a>(dir: &Path, layout: &'a Layout) -> &'a TreePages {
    let id = block(async {
        let db = AedbInstance::open_read_only(config(), dir).expect("open");
        let schema = db.describe_table("p", "app", "t").await;
        schema.expect("schema").table_id
    });
    let table = &layout.trees[&table_tree(id)];
    let two_levels = table.branches == [table.root];
    assert!(two_levels && !table.overflow.is_empty(), "{table:?}");
    table
}

/// Flip one byte in the middle of `page` of the data file.
fn flip_page(dir: &Path, layout: &Layout, page: u64) {
    let size = layout.page_size;
    flip(&dir.join(DATA_FILE), page * size + size / 2);
}

/// What opening and reading every row gives: the error of the open, else of the read, else
/// the rows.
#[derive(Debug)]
enum Outcome {
    OpenFails(AedbError),
    ReadFails(QueryError),
    Rows(Vec<i64>),
}

fn outcome(dir: &Path) -> Outcome {
    block(async {
        let db = match open(dir) {
            Ok(db) => db,
            Err(err) => return Outcome::OpenFails(err),
        };
        match read_rows(&db).await {
            Ok(ids) => Outcome::Rows(ids),
            Err(err) => Outcome::ReadFails(err),
        }
    })
}

/// `outcome` is corruption of `page` found by `kind`, at the open (`at_open`) or at the read.
fn assert_page_error(outcome: &Outcome, at_open: bool, page: u64, kind: CorruptionKind) {
    let (found, message) = match (outcome, at_open) {
        (Outcome::ReadFails(e @ QueryError::Corruption { page, kind, .. }), false) => {
            ((*page, *kind), e.to_string())
        }
        (Outcome::OpenFails(e @ AedbError::DataCorruption { page, kind, .. }), true) => {
            ((*page, *kind), e.to_string())
        }
        (other, _) => panic!("expected {kind:?} of page {page}, got {other:?}"),
    };
    assert_eq!(found, (Some(page), kind), "{message}");
    assert!(message.contains(&format!("page {page}")), "{message}");
}

/// Flip a byte of the page `pick` chooses in a copy of the checkpointed fixture: the read of
/// the rows meets it and fails naming it (opening reads none of these pages).
fn read_meets(pick: impl Fn(&Layout, &TreePages) -> u64) {
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    let page = pick(&layout, table_pages(&dir, &layout));
    flip_page(&dir, &layout, page);
    assert_page_error(&outcome(&dir), false, page, CorruptionKind::Checksum);
}

#[test]
fn a_damaged_leaf_fails_the_read_naming_it() {
    read_meets(|_, table| table.leaves[table.leaves.len() / 2]);
}

#[test]
fn a_damaged_branch_fails_the_read_naming_it() {
    read_meets(|_, table| table.root);
}

#[test]
fn a_damaged_overflow_page_fails_the_read_naming_it() {
    read_meets(|_, table| table.overflow[table.overflow.len() / 2]);
}

#[test]
fn a_damaged_tree_of_trees_fails_the_read_naming_it() {
    read_meets(|layout, _| layout.trees["(tree of trees)"].root);
}

#[test]
fn a_damaged_catalog_page_fails_the_read_naming_it() {
    read_meets(|layout, _| layout.trees["sys:catalog"].root);
}

#[test]
fn a_damaged_free_list_page_fails_the_open_naming_it() {
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.freelist[0]);
    let page = layout.freelist[0];
    assert_page_error(&outcome(&dir), true, page, CorruptionKind::Checksum);
}

#[test]
fn a_damaged_free_page_changes_nothing() {
    // No version reaches it; its next user writes it whole.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.free[0]);
    assert!(matches!(outcome(&dir), Outcome::Rows(ids) if ids == kept_rows()));
}

#[test]
fn a_leaf_resealed_with_a_wrong_cell_count_is_malformed() {
    // Pages carry a CRC, no keyed MAC: a forger can redo it. What no longer decodes is still
    // refused, naming the page, without a panic.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    let page = table_pages(&dir, &layout).leaves[0];
    edit(&dir.join(DATA_FILE), |bytes| {
        let size = layout.page_size as usize;
        let bytes = &mut bytes[page as usize * size..][..size];
        bytes[24..26].copy_from_slice(&u16::MAX.to_le_bytes());
        aedb_pager::page::seal(bytes);
    });
    assert_page_error(&outcome(&dir), false, page, CorruptionKind::Malformed);
}

#[test]
fn a_damaged_page_that_redo_reads_fails_the_open_naming_it() {
    // A commit after the checkpoint is in the log only; redoing it reads the damaged leaf.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    let page = table_pages(&dir, &layout).leaves[0];
    block(async {
        let db = open(&dir).expect("open");
        db.commit(upsert(1, body(1))).await.expect("update");
        std::mem::forget(db);
    });
    // The crashed instance keeps its directory locked: recover a copy.
    let (_crashed, dir) = copy_of(&capture(&dir));
    flip_page(&dir, &layout, page);
    assert_page_error(&outcome(&dir), true, page, CorruptionKind::Checksum);
}

#[test]
fn both_meta_pages_damaged_fail_the_open_naming_the_file() {
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, 0);
    flip_page(&dir, &layout, 1);
    match outcome(&dir) {
        Outcome::OpenFails(AedbError::Corruption(message)) => {
            assert!(message.contains(DATA_FILE), "{message}");
            assert!(message.contains("meta page 0") && message.contains("meta page 1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_newest_meta_page_damaged_falls_back_and_the_log_heals_it() {
    // The older meta page names the checkpoint of the open that deleted rows, and the log
    // (its newest segment is never deleted) still holds the deletes: redone on the older
    // checkpoint, whose pages nothing reused, they give every row as it was.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.meta_slot);
    let (ids, report) = open_and_read(&dir);
    assert_eq!(ids, kept_rows());
    let deletes = (0..ROWS).filter(|id| deleted(*id)).count() as u64;
    assert_eq!(report.frames_replayed, deletes, "{report:?}");
}

#[test]
fn the_newest_meta_page_damaged_after_reuse_fails_the_open() {
    // Pages only the older checkpoint reaches are reused once the newer one is durable, and a
    // small pool writes them back before any checkpoint. Falling back to the older checkpoint
    // then meets a page that holds something else: a typed error naming it, not old rows.
    let (_tmp, dir) = copy_of(checkpointed());
    let small = AedbConfig {
        buffer_pool_bytes: 48 << 12,
        max_segment_bytes: 4 << 20,
        ..config()
    };
    block(async {
        let db = AedbInstance::open(small.clone(), &dir).expect("open");
        let rows = (0..ROWS).filter(|id| !deleted(*id));
        for id in rows.clone() {
            let update = upsert(id, format!("first {id}"));
            db.commit(update).await.expect("update");
        }
        db.checkpoint_now().await.expect("checkpoint");
        for id in rows {
            let update = upsert(id, format!("second {id}"));
            db.commit(update).await.expect("update");
        }
        std::mem::forget(db);
    });
    let (_crashed, dir) = copy_of(&capture(&dir));
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.meta_slot);
    match AedbInstance::open(small, &dir) {
        Err(AedbError::DataCorruption { page: Some(_), .. }) => {}
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened on the older checkpoint"),
    }
}
