//! A walk over the data file as of its current meta page: every tree from the tree of trees
//! down, every overflow chain, the free list. Each page gets a role (and its tree and fill);
//! damage is recorded where it is met, never a reason to stop.

use std::collections::HashMap;

use aedb::catalog::namespace::{decode_entry, CATALOG_TREE};
use aedb::catalog::schema::TableSchema;
use aedb::storage::alloc::decode_freelist_page;
use aedb::storage::btree::node::{usable_bytes, LeafValue, NodeRef};
use aedb::storage::meta::Meta;
use aedb::storage::overflow::{data_per_page, OVERFLOW_HEADER_BYTES};
use aedb::storage::page::{self, read_u32, read_u64, PageId, PageType};
use aedb::storage::TreeRecord;

use crate::datafile::DataFile;
use crate::util::{Progress, TREE_OF_TREES};

/// Deeper than this a tree can only be a cycle in a damaged file.
const MAX_DEPTH: usize = 48;

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
}

impl Walk {
    pub fn count(&self, role: Role) -> u64 {
        self.pages.iter().filter(|p| p.role == role).count() as u64
    }

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

/// What a named tree holds, from its name and the catalog.
pub fn describe_tree(tree: &str, tables: &HashMap<u64, TableSchema>) -> String {
    let table = |id: &str| {
        id.parse::<u64>()
            .ok()
            .and_then(|id| tables.get(&id))
            .map(|s| format!("{}/{}/{}", s.project_id, s.scope_id, s.table_name))
    };
    if tree == TREE_OF_TREES {
        return "names every other tree".into();
    }
    if tree == CATALOG_TREE {
        return "catalog".into();
    }
    if tree == aedb::commit::envelope::IDEMPOTENCY_TREE {
        return "idempotency records".into();
    }
    if tree == aedb::commit::envelope::IDEMPOTENCY_BY_SEQ_TREE {
        return "idempotency records by age".into();
    }
    if let Some(id) = tree.strip_prefix("t:") {
        return match table(id) {
            Some(name) => format!("table {name}"),
            None => format!("table id {id} (not in the catalog)"),
        };
    }
    if let Some(rest) = tree.strip_prefix("i:") {
        let (id, index) = rest.split_once(':').unwrap_or((rest, "?"));
        return match table(id) {
            Some(name) => format!("index {index} of {name}"),
            None => format!("index {index} of table id {id} (not in the catalog)"),
        };
    }
    if let Some(rest) = tree.strip_prefix("kv:") {
        return format!("KV space {}", rest.replacen(':', "/", 1));
    }
    String::new()
}

struct Walker<'a> {
    df: &'a DataFile,
    page_size: usize,
    page_count: u64,
    pages: Vec<PageInfo>,
    problems: Vec<Problem>,
    progress: &'a Progress,
}

impl Walker<'_> {
    fn problem(&mut self, page: Option<PageId>, tree: Option<&str>, message: impl Into<String>) {
        self.problems.push(Problem {
            page,
            tree: tree.map(str::to_string),
            message: message.into(),
        });
    }

    /// Claim page `id` for `role`; false (and a problem) when it may not be followed.
    fn claim(&mut self, id: PageId, role: Role, tree: u32, tree_name: &str) -> bool {
        if id < 2 || id >= self.page_count || id as usize >= self.pages.len() {
            self.problem(
                Some(id),
                Some(tree_name),
                format!(
                    "{} page referenced outside 2..{}",
                    role.name(),
                    self.page_count
                ),
            );
            return false;
        }
        let previous = self.pages[id as usize];
        if previous.role != Role::Unknown {
            self.problem(
                Some(id),
                Some(tree_name),
                format!(
                    "used twice: as {} and as {}",
                    previous.role.name(),
                    role.name()
                ),
            );
            return false;
        }
        self.pages[id as usize] = PageInfo {
            role,
            tree,
            fill: -1.0,
            bad: false,
        };
        true
    }

    /// Read and verify a page; on failure mark it bad and record why.
    fn load(&mut self, id: PageId, tree_name: &str) -> Option<Vec<u8>> {
        self.progress.inc(1);
        match self.df.verified_page(id, self.page_size) {
            Ok(buf) => Some(buf),
            Err(reason) => {
                // The type byte of a page that does not verify still tells a leaf from a
                // branch, most likely.
                let raw_type = self
                    .df
                    .page(id, self.page_size)
                    .ok()
                    .and_then(|raw| PageType::from_byte(page::page_type_byte(&raw)));
                if let Some(info) = self.pages.get_mut(id as usize) {
                    info.bad = true;
                    if info.role == Role::Branch && raw_type == Some(PageType::Leaf) {
                        info.role = Role::Leaf;
                    }
                }
                self.problem(Some(id), Some(tree_name), reason);
                None
            }
        }
    }

    /// Walk one tree; with `collect`, return its entries (values of overflow chains read).
    fn walk_tree(
        &mut self,
        index: u32,
        info: &mut TreeInfo,
        collect: bool,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries = Vec::new();
        if info.root == 0 {
            if info.recorded != 0 {
                info.problems += 1;
                self.problem(
                    None,
                    Some(&info.name),
                    format!("empty root but {} entries recorded", info.recorded),
                );
            }
            return entries;
        }
        let name = info.name.clone();
        let usable = usable_bytes(self.page_size) as f32;
        let mut leaf_depth: Option<usize> = None;
        let mut stack = vec![(info.root, 0usize)];
        let before = self.problems.len();
        while let Some((id, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                self.problem(Some(id), Some(&name), "tree too deep (a cycle?)");
                continue;
            }
            if !self.claim(id, Role::Branch, index, &name) {
                continue;
            }
            let Some(buf) = self.load(id, &name) else {
                continue;
            };
            let node = match NodeRef::new(&buf, id) {
                Ok(node) => node,
                Err(err) => {
                    self.pages[id as usize].bad = true;
                    self.problem(Some(id), Some(&name), err.to_string());
                    continue;
                }
            };
            let used = match node.used_bytes() {
                Ok(used) => used,
                Err(err) => {
                    self.pages[id as usize].bad = true;
                    self.problem(Some(id), Some(&name), err.to_string());
                    continue;
                }
            };
            let fill = used as f32 / usable;
            let decile = ((fill * 10.0) as usize).min(9);
            info.used_bytes += used as u64;
            self.pages[id as usize].fill = fill;
            if node.is_leaf() {
                self.pages[id as usize].role = Role::Leaf;
                info.leaf_pages += 1;
                info.leaf_fill[decile] += 1;
                info.entries += node.len() as u64;
                match leaf_depth {
                    None => leaf_depth = Some(depth),
                    Some(d) if d != depth => self.problem(
                        Some(id),
                        Some(&name),
                        format!("leaf at depth {depth}, others at {d}"),
                    ),
                    Some(_) => {}
                }
                for i in 0..node.len() {
                    let (key, value) = match (node.key(i), node.leaf_value(i)) {
                        (Ok(k), Ok(v)) => (k, v),
                        (Err(err), _) | (_, Err(err)) => {
                            self.pages[id as usize].bad = true;
                            self.problem(Some(id), Some(&name), err.to_string());
                            break;
                        }
                    };
                    match value {
                        LeafValue::Inline(bytes) => {
                            if collect {
                                entries.push((key.to_vec(), bytes.to_vec()));
                            }
                        }
                        LeafValue::Overflow { len, first } => {
                            let value = self.walk_overflow(index, info, id, first, len, collect);
                            if let (true, Some(value)) = (collect, value) {
                                entries.push((key.to_vec(), value));
                            }
                        }
                    }
                }
            } else {
                info.branch_pages += 1;
                info.branch_fill[decile] += 1;
                for i in (0..node.len()).rev() {
                    match node.child(i) {
                        Ok(child) => stack.push((child, depth + 1)),
                        Err(err) => {
                            self.pages[id as usize].bad = true;
                            self.problem(Some(id), Some(&name), err.to_string());
                        }
                    }
                }
            }
        }
        info.height = leaf_depth.map_or(0, |d| d as u32 + 1);
        if info.entries != info.recorded && self.problems.len() == before {
            self.problem(
                Some(info.root),
                Some(&name),
                format!(
                    "the tree record says {} entries, the leaves hold {}",
                    info.recorded, info.entries
                ),
            );
        }
        info.problems += (self.problems.len() - before) as u64;
        entries
    }

    fn walk_overflow(
        &mut self,
        index: u32,
        info: &mut TreeInfo,
        leaf: PageId,
        first: PageId,
        len: u64,
        collect: bool,
    ) -> Option<Vec<u8>> {
        let name = info.name.clone();
        let per_page = data_per_page(self.page_size) as u64;
        let mut value = Vec::new();
        let mut next = first;
        let mut remaining = len;
        let mut steps = 0u64;
        while next != 0 {
            steps += 1;
            if steps > len / per_page + 1 {
                self.problem(
                    Some(leaf),
                    Some(&name),
                    "overflow chain too long (a cycle?)",
                );
                return None;
            }
            if !self.claim(next, Role::Overflow, index, &name) {
                return None;
            }
            info.overflow_pages += 1;
            let buf = self.load(next, &name)?;
            if page::page_type_byte(&buf) != PageType::Overflow as u8 {
                self.pages[next as usize].bad = true;
                self.problem(
                    Some(next),
                    Some(&name),
                    "overflow chain reaches a page of another type",
                );
                return None;
            }
            let used = read_u32(&buf, 32) as u64;
            if used > per_page || used > remaining {
                self.pages[next as usize].bad = true;
                self.problem(
                    Some(next),
                    Some(&name),
                    format!("overflow page claims {used} bytes"),
                );
                return None;
            }
            self.pages[next as usize].fill = used as f32 / per_page as f32;
            if collect {
                value.extend_from_slice(
                    &buf[OVERFLOW_HEADER_BYTES..OVERFLOW_HEADER_BYTES + used as usize],
                );
            }
            remaining -= used;
            next = read_u64(&buf, 24);
        }
        if remaining != 0 {
            self.problem(
                Some(leaf),
                Some(&name),
                format!("overflow chain from page {first} ends {remaining} bytes short"),
            );
            return None;
        }
        Some(value)
    }
}

/// Walk the file as of `meta`.
pub fn walk(df: &DataFile, meta: &Meta, progress: &Progress) -> Walk {
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
    let mut pages = vec![
        PageInfo {
            role: Role::Unknown,
            tree: NO_TREE,
            fill: -1.0,
            bad: false,
        };
        tracked as usize
    ];
    for info in pages.iter_mut().take(2) {
        info.role = Role::Meta;
    }
    progress.set_length(tracked);
    let mut walker = Walker {
        df,
        page_size,
        page_count: meta.page_count.min(tracked),
        pages,
        problems,
        progress,
    };
    let mut trees = Vec::new();
    let mut catalog = TreeInfo {
        name: TREE_OF_TREES.into(),
        root: meta.root,
        recorded: meta.tree_count,
        ..TreeInfo::default()
    };
    let records = walker.walk_tree(0, &mut catalog, true);
    trees.push(catalog);
    let mut tables = HashMap::new();
    for (name, value) in records {
        let name = String::from_utf8_lossy(&name).into_owned();
        let record = match TreeRecord::decode(&value, meta.root) {
            Ok(record) => record,
            Err(err) => {
                walker.problem(Some(meta.root), Some(&name), err.to_string());
                continue;
            }
        };
        let index = trees.len() as u32;
        let mut info = TreeInfo {
            name: name.clone(),
            root: record.root,
            recorded: record.len,
            ..TreeInfo::default()
        };
        let entries = walker.walk_tree(index, &mut info, name == CATALOG_TREE);
        for (key, value) in entries {
            if key.starts_with(b"T\0") {
                if let Ok(schema) = decode_entry::<TableSchema>(&value) {
                    tables.insert(schema.table_id, schema);
                }
            }
        }
        trees.push(info);
    }
    let mut freelist_pages = 0;
    let mut freelist_ids = 0;
    let mut next = meta.freelist_root;
    while next != 0 {
        if !walker.claim(next, Role::FreeList, NO_TREE, "(free list)") {
            break;
        }
        freelist_pages += 1;
        let Some(buf) = walker.load(next, "(free list)") else {
            break;
        };
        match decode_freelist_page(&buf, next, meta.page_count) {
            Ok((ids, following)) => {
                for id in ids {
                    freelist_ids += 1;
                    walker.claim(id, Role::Free, NO_TREE, "(free list)");
                }
                next = following;
            }
            Err(err) => {
                walker.pages[next as usize].bad = true;
                walker.problem(Some(next), Some("(free list)"), err.to_string());
                break;
            }
        }
    }
    if freelist_ids != meta.freelist_len {
        walker.problem(
            None,
            Some("(free list)"),
            format!(
                "holds {freelist_ids} ids, the meta page says {}",
                meta.freelist_len
            ),
        );
    }
    let page_count = walker.page_count;
    let mut leaked = Vec::new();
    for (id, info) in walker.pages.iter_mut().enumerate() {
        if info.role == Role::Unknown {
            if (id as u64) < page_count {
                info.role = Role::Leaked;
                leaked.push(id as PageId);
            } else {
                info.role = Role::Tail;
            }
        }
    }
    for id in leaked {
        walker.problem(Some(id), None, "leaked: neither reachable nor free");
    }
    Walk {
        meta: *meta,
        page_size,
        file_pages,
        pages: walker.pages,
        trees,
        problems: walker.problems,
        freelist_pages,
        freelist_ids,
        tables,
    }
}

/// One node of a tree, for the level-by-level dump.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: PageId,
    pub kind: Result<PageType, String>,
    pub cells: usize,
    pub fill: f64,
    pub entries: u64,
    /// (key, child, count) of a branch; (key, value length, overflow page) of a leaf.
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum Item {
    Child {
        key: Vec<u8>,
        child: PageId,
        count: u64,
    },
    Entry {
        key: Vec<u8>,
        value_len: u64,
        overflow: Option<PageId>,
    },
}

/// A tree's nodes level by level from `root` (breadth first), reading at most `max_pages`;
/// true when that bound stopped it.
pub fn levels(
    df: &DataFile,
    page_size: usize,
    root: PageId,
    max_pages: usize,
) -> (Vec<Vec<NodeView>>, bool) {
    let mut out = Vec::new();
    let mut stopped = false;
    if root == 0 {
        return (out, stopped);
    }
    let mut frontier = vec![root];
    let mut read = 0usize;
    let mut seen = std::collections::HashSet::new();
    while !frontier.is_empty() && out.len() <= MAX_DEPTH {
        let mut level = Vec::new();
        let mut next = Vec::new();
        for id in frontier {
            if read >= max_pages {
                stopped = true;
                break;
            }
            if !seen.insert(id) {
                continue;
            }
            read += 1;
            level.push(view_node(df, page_size, id, &mut next));
        }
        out.push(level);
        frontier = next;
    }
    (out, stopped)
}

fn view_node(df: &DataFile, page_size: usize, id: PageId, next: &mut Vec<PageId>) -> NodeView {
    let mut view = NodeView {
        id,
        kind: Err(String::new()),
        cells: 0,
        fill: 0.0,
        entries: 0,
        items: Vec::new(),
    };
    let buf = match df.verified_page(id, page_size) {
        Ok(buf) => buf,
        Err(reason) => {
            view.kind = Err(reason);
            return view;
        }
    };
    let node = match NodeRef::new(&buf, id) {
        Ok(node) => node,
        Err(err) => {
            view.kind = Err(err.to_string());
            return view;
        }
    };
    view.kind = Ok(node.kind());
    view.cells = node.len();
    view.fill = node.used_bytes().unwrap_or(0) as f64 / usable_bytes(page_size) as f64;
    view.entries = node.entry_count().unwrap_or(0);
    for i in 0..node.len() {
        let key = match node.key(i) {
            Ok(key) => key.to_vec(),
            Err(err) => {
                view.kind = Err(err.to_string());
                break;
            }
        };
        if node.is_leaf() {
            match node.leaf_value(i) {
                Ok(LeafValue::Inline(v)) => view.items.push(Item::Entry {
                    key,
                    value_len: v.len() as u64,
                    overflow: None,
                }),
                Ok(LeafValue::Overflow { len, first }) => view.items.push(Item::Entry {
                    key,
                    value_len: len,
                    overflow: Some(first),
                }),
                Err(err) => {
                    view.kind = Err(err.to_string());
                    break;
                }
            }
        } else {
            match (node.child(i), node.child_count(i)) {
                (Ok(child), Ok(count)) => {
                    next.push(child);
                    view.items.push(Item::Child { key, child, count });
                }
                (Err(err), _) | (_, Err(err)) => {
                    view.kind = Err(err.to_string());
                    break;
                }
            }
        }
    }
    view
}

/// The record of a named tree in the tree of trees, read from the file.
pub fn find_tree(df: &DataFile, meta: &Meta, name: &str) -> Result<Option<TreeRecord>, String> {
    let page_size = meta.page_size as usize;
    let mut id = meta.root;
    let mut depth = 0;
    while id != 0 {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(format!("page {id}: tree of trees too deep (a cycle?)"));
        }
        let buf = df.verified_page(id, page_size)?;
        let node = NodeRef::new(&buf, id).map_err(|e| e.to_string())?;
        if node.is_leaf() {
            return match node.search(name.as_bytes()).map_err(|e| e.to_string())? {
                Ok(i) => match node.leaf_value(i).map_err(|e| e.to_string())? {
                    LeafValue::Inline(v) => TreeRecord::decode(v, id)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    LeafValue::Overflow { .. } => {
                        Err(format!("page {id}: a tree record in an overflow chain"))
                    }
                },
                Err(_) => Ok(None),
            };
        }
        let i = node
            .child_index(name.as_bytes())
            .map_err(|e| e.to_string())?;
        id = node.child(i).map_err(|e| e.to_string())?;
    }
    Ok(None)
}

/// Key-value pairs of a tree.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Every entry of the tree rooted at `root` (overflow values read), or the first damage met.
pub fn tree_entries(df: &DataFile, page_size: usize, root: PageId) -> Result<Entries, String> {
    let mut out = Vec::new();
    let mut stack = vec![(root, 0usize)];
    let per_page = data_per_page(page_size);
    while let Some((id, depth)) = stack.pop() {
        if id == 0 {
            continue;
        }
        if depth > MAX_DEPTH {
            return Err(format!("page {id}: tree too deep (a cycle?)"));
        }
        let buf = df.verified_page(id, page_size)?;
        let node = NodeRef::new(&buf, id).map_err(|e| e.to_string())?;
        for i in (0..node.len()).rev() {
            if !node.is_leaf() {
                stack.push((node.child(i).map_err(|e| e.to_string())?, depth + 1));
            }
        }
        if !node.is_leaf() {
            continue;
        }
        for i in 0..node.len() {
            let key = node.key(i).map_err(|e| e.to_string())?.to_vec();
            let value = match node.leaf_value(i).map_err(|e| e.to_string())? {
                LeafValue::Inline(v) => v.to_vec(),
                LeafValue::Overflow { len, first } => {
                    let mut value = Vec::with_capacity(len.min(1 << 26) as usize);
                    let mut next = first;
                    let mut steps = 0;
                    while next != 0 && (value.len() as u64) < len {
                        steps += 1;
                        if steps > len / per_page as u64 + 1 {
                            return Err(format!("page {id}: overflow chain too long"));
                        }
                        let page = df.verified_page(next, page_size)?;
                        let used = (read_u32(&page, 32) as usize).min(per_page);
                        value.extend_from_slice(
                            &page[OVERFLOW_HEADER_BYTES..OVERFLOW_HEADER_BYTES + used],
                        );
                        next = read_u64(&page, 24);
                    }
                    value
                }
            };
            out.push((key, value));
        }
    }
    Ok(out)
}

/// Table schemas of the file's catalog tree, by table id (empty when it cannot be read).
pub fn catalog_tables(df: &DataFile, meta: &Meta) -> HashMap<u64, TableSchema> {
    let page_size = meta.page_size as usize;
    let mut tables = HashMap::new();
    if let Ok(Some(record)) = find_tree(df, meta, CATALOG_TREE) {
        if let Ok(entries) = tree_entries(df, page_size, record.root) {
            for (key, value) in entries {
                if key.starts_with(b"T\0") {
                    if let Ok(schema) = decode_entry::<TableSchema>(&value) {
                        tables.insert(schema.table_id, schema);
                    }
                }
            }
        }
    }
    tables
}
