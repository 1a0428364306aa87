//! A walk over the data file as of its current meta page: the pager's own checker
//! (`aedb_pager::check::walk_file`), whose visitor here gives each page a role (and its tree and
//! fill) and collects what the checker finds; damage is recorded where it is met, never a
//! reason to stop.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use aedb::catalog::namespace::{decode_entry, parse_catalog_key, CatalogKey, CATALOG_TREE};
use aedb::catalog::schema::TableSchema;
use aedb_pager::btree::cursor::Cursor;
use aedb_pager::btree::node::{usable_bytes, NodeRef};
use aedb_pager::check::{walk_file, CheckReport, Part, Violation, Visitor};
use aedb_pager::meta::Meta;
use aedb_pager::overflow::data_per_page;
use aedb_pager::page::{self, PageId, PageType};
use aedb_pager::pool::BufferPool;
use aedb_pager::{btree, TreeRecord};

use crate::datafile::DataFile;
use crate::util::{describe_tree, Progress, Res};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not reached (yet).
    Unknown,
    Meta,
    Branch,
    Leaf,
    Overflow,
    FreeList,
    Free,
    /// Below the page count, neither reachable nor free.
    Leaked,
    /// At or beyond the page count: file space not yet handed out.
    Tail,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Unknown => "unknown",
            Role::Meta => "meta",
            Role::Branch => "branch",
            Role::Leaf => "leaf",
            Role::Overflow => "overflow",
            Role::FreeList => "free-list",
            Role::Free => "free",
            Role::Leaked => "leaked",
            Role::Tail => "unallocated",
        }
    }

    pub const ALL: [Role; 8] = [
        Role::Meta,
        Role::Branch,
        Role::Leaf,
        Role::Overflow,
        Role::FreeList,
        Role::Free,
        Role::Leaked,
        Role::Tail,
    ];
}

pub const NO_TREE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
pub struct PageInfo {
    pub role: Role,
    /// Index into `Walk::trees`, or `NO_TREE`.
    pub tree: u32,
    /// Used share of the page's usable bytes (nodes and overflow pages), or negative.
    pub fill: f32,
    /// The page could not be read or did not verify.
    pub bad: bool,
}

impl PageInfo {
    const UNKNOWN: PageInfo = PageInfo {
        role: Role::Unknown,
        tree: NO_TREE,
        fill: -1.0,
        bad: false,
    };
}

#[derive(Debug, Clone, Default)]
pub struct TreeInfo {
    pub name: String,
    pub root: PageId,
    /// Entries the tree record claims.
    pub recorded: u64,
    /// Entries found in its leaves.
    pub entries: u64,
    pub height: u32,
    pub branch_pages: u64,
    pub leaf_pages: u64,
    pub overflow_pages: u64,
    /// Bytes of slots and cells in its nodes.
    pub used_bytes: u64,
    /// Leaf pages by fill decile (0–9 %, 10–19 %, … 90–100 %).
    pub leaf_fill: [u64; 10],
    pub branch_fill: [u64; 10],
    pub problems: u64,
}

impl TreeInfo {
    pub fn pages(&self) -> u64 {
        self.branch_pages + self.leaf_pages + self.overflow_pages
    }

    /// Mean fill of its nodes.
    pub fn fill(&self, page_size: usize) -> f64 {
        let nodes = self.branch_pages + self.leaf_pages;
        if nodes == 0 {
            return 0.0;
        }
        self.used_bytes as f64 / (nodes as f64 * usable_bytes(page_size) as f64)
    }
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub page: Option<PageId>,
    pub tree: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.page, &self.tree) {
            (Some(p), Some(t)) => write!(f, "page {p} (tree {t}): {}", self.message),
            (Some(p), None) => write!(f, "page {p}: {}", self.message),
            (None, Some(t)) => write!(f, "tree {t}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

pub struct Walk {
    pub meta: Meta,
    pub page_size: usize,
    pub file_pages: u64,
    pub pages: Vec<PageInfo>,
    /// Index 0 is the tree of trees.
    pub trees: Vec<TreeInfo>,
    pub problems: Vec<Problem>,
    pub freelist_pages: u64,
    pub freelist_ids: u64,
    /// Table schemas from the catalog tree, by table id (to name the trees).
    pub tables: HashMap<u64, TableSchema>,
    /// The checker's report on the walk (its violations are the problems).
    pub report: CheckReport,
}

impl Walk {
    pub fn bad_pages(&self) -> Vec<PageId> {
        self.pages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.bad)
            .map(|(i, _)| i as PageId)
            .collect()
    }

    pub fn tree_name(&self, info: &PageInfo) -> Option<&str> {
        self.trees.get(info.tree as usize).map(|t| t.name.as_str())
    }

    /// What a tree is, in words ("table demo/app/users").
    pub fn describe(&self, tree: &str) -> String {
        describe_tree(tree, &self.tables)
    }
}

/// The checker's visitor: a role per page, fill deciles per tree, the problems where met.
struct Mapper<'a> {
    df: &'a DataFile,
    page_size: usize,
    pages: Vec<PageInfo>,
    trees: Vec<TreeInfo>,
    /// The part of the walk under way: a tree (its index), the free pages, the leaks.
    part: Option<u32>,
    free_part: bool,
    problems: Vec<Problem>,
    freelist_pages: u64,
    freelist_ids: u64,
    progress: &'a Progress,
}

impl Mapper<'_> {
    fn info(&mut self, id: PageId) -> Option<&mut PageInfo> {
        self.pages.get_mut(id as usize)
    }

    /// A page that does not verify or decode: bad. The type byte of one that does not verify
    /// still tells a leaf from a branch, most likely.
    fn damaged(&mut self, id: PageId) {
        let page_size = self.page_size;
        let raw_type = self
            .df
            .page(id, page_size)
            .ok()
            .and_then(|raw| PageType::from_byte(page::page_type_byte(&raw)));
        if let Some(info) = self.info(id) {
            info.bad = true;
            if info.role == Role::Branch && raw_type == Some(PageType::Leaf) {
                info.role = Role::Leaf;
            }
        }
    }
}

impl Visitor for Mapper<'_> {
    fn enter(&mut self, part: Part<'_>) {
        self.part = None;
        self.free_part = false;
        match part {
            Part::Tree { name, record } => {
                self.part = Some(self.trees.len() as u32);
                self.trees.push(TreeInfo {
                    name: name.to_string(),
                    root: record.root,
                    recorded: record.len,
                    ..TreeInfo::default()
                });
            }
            Part::Free => self.free_part = true,
            Part::Leaked => {}
        }
    }

    fn page(&mut self, id: PageId, what: &'static str) {
        self.progress.inc(1);
        let role = match what {
            "tree node" => Role::Branch,
            "overflow" => Role::Overflow,
            "free-list" => {
                self.freelist_pages += 1;
                Role::FreeList
            }
            "free" => {
                self.freelist_ids += 1;
                Role::Free
            }
            _ => return,
        };
        let tree = self.part.unwrap_or(NO_TREE);
        if let Some(info) = self.info(id) {
            *info = PageInfo {
                role,
                tree,
                ..PageInfo::UNKNOWN
            };
        }
    }

    fn node(&mut self, node: &NodeRef<'_>, used: usize) {
        let fill = used as f32 / usable_bytes(self.page_size) as f32;
        let decile = ((fill * 10.0) as usize).min(9);
        let leaf = node.is_leaf();
        if let Some(tree) = self.part.and_then(|t| self.trees.get_mut(t as usize)) {
            let deciles = if leaf {
                &mut tree.leaf_fill
            } else {
                &mut tree.branch_fill
            };
            deciles[decile] += 1;
        }
        if let Some(info) = self.info(node.id()) {
            info.fill = fill;
            info.role = if leaf { Role::Leaf } else { Role::Branch };
        }
    }

    fn overflow(&mut self, id: PageId, used: u64) {
        let per_page = data_per_page(self.page_size) as f32;
        if let Some(info) = self.info(id) {
            info.fill = used as f32 / per_page;
        }
    }

    fn violation(&mut self, violation: &Violation, damaged: bool) {
        if let (Some(id), true) = (violation.page, damaged) {
            self.damaged(id);
        }
        let tree = match (self.part, self.free_part) {
            (Some(t), _) => {
                self.trees[t as usize].problems += 1;
                Some(self.trees[t as usize].name.clone())
            }
            (None, true) => Some("(free list)".to_string()),
            (None, false) => None,
        };
        self.problems.push(Problem {
            page: violation.page,
            // A violation without a page names its tree itself.
            tree: violation.page.and(tree),
            message: violation.message.clone(),
        });
    }
}

/// Walk the file as of `meta`: the pages the file holds (a page count beyond them is a
/// problem; pages past the file's end are not looked for).
pub fn walk(df: &DataFile, meta: &Meta, progress: &Progress) -> Res<Walk> {
    walk_pages(df, meta, false, progress)
}

/// [`walk`] with the checker's verdict on the whole page count the meta page gives (pages past
/// the file's end are leaks or unreadable), for `aedb check invariants`.
pub fn check(df: &DataFile, meta: &Meta, progress: &Progress) -> Res<Walk> {
    walk_pages(df, meta, true, progress)
}

fn walk_pages(df: &DataFile, meta: &Meta, whole: bool, progress: &Progress) -> Res<Walk> {
    let page_size = meta.page_size as usize;
    let file_pages = df.pages(page_size);
    let mut problems = Vec::new();
    // A damaged page count must not make us allocate for pages the file does not have.
    let tracked = if meta.page_count > file_pages {
        problems.push(Problem {
            page: None,
            tree: None,
            message: format!(
                "the meta page counts {} pages, the file holds {file_pages}",
                meta.page_count
            ),
        });
        file_pages.max(2)
    } else {
        file_pages
    };
    let mut pages = vec![PageInfo::UNKNOWN; tracked as usize];
    for info in pages.iter_mut().take(2) {
        info.role = Role::Meta;
    }
    progress.set_length(tracked);
    let mut mapper = Mapper {
        df,
        page_size,
        pages,
        trees: Vec::new(),
        part: None,
        free_part: false,
        problems,
        freelist_pages: 0,
        freelist_ids: 0,
        progress,
    };
    let pool = df.pool(page_size)?;
    let walked = Meta {
        page_count: if whole {
            meta.page_count
        } else {
            meta.page_count.min(tracked)
        },
        ..*meta
    };
    let report = walk_file(&pool, &walked, &mut mapper);
    let reports = std::iter::once(&report.catalog).chain(&report.trees);
    for (tree, checked) in mapper.trees.iter_mut().zip(reports) {
        tree.entries = checked.entries;
        tree.height = checked.height;
        tree.branch_pages = checked.branch_pages;
        tree.leaf_pages = checked.leaf_pages;
        tree.overflow_pages = checked.overflow_pages;
        tree.used_bytes = checked.used_bytes;
    }
    for (id, info) in mapper.pages.iter_mut().enumerate() {
        if info.role == Role::Unknown {
            info.role = if (id as u64) < meta.page_count {
                Role::Leaked
            } else {
                Role::Tail
            };
        }
    }
    Ok(Walk {
        meta: *meta,
        page_size,
        file_pages,
        pages: mapper.pages,
        trees: mapper.trees,
        problems: mapper.problems,
        freelist_pages: mapper.freelist_pages,
        freelist_ids: mapper.freelist_ids,
        tables: catalog_tables(&pool, meta),
        report,
    })
}

/// The record of a named tree in the tree of trees, read from the file.
pub fn find_tree(pool: &BufferPool, meta: &Meta, name: &str) -> Result<Option<TreeRecord>, String> {
    let Some(value) = btree::get(pool, meta.root, name.as_bytes()).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    TreeRecord::decode(&value, meta.root)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Table schemas of the file's catalog tree, by table id (as far as it can be read).
pub fn catalog_tables(pool: &Arc<BufferPool>, meta: &Meta) -> HashMap<u64, TableSchema> {
    let mut tables = HashMap::new();
    let Ok(Some(record)) = find_tree(pool, meta, CATALOG_TREE) else {
        return tables;
    };
    let entries = Cursor::new(
        Arc::clone(pool),
        record.root,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
    );
    for (key, value) in entries.map_while(Result::ok) {
        if let CatalogKey::Table { .. } = parse_catalog_key(&key) {
            if let Ok(schema) = decode_entry::<TableSchema>(&value) {
                tables.insert(schema.table_id, schema);
            }
        }
    }
    tables
}
