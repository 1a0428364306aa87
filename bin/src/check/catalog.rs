//! The catalog-level checks of `aedb check invariants`, on the recovered version: every
//! catalog entry under its own key and its parents there, table ids unique and below the
//! counter, every table and index with its tree and no tree without an owner, every row
//! decodable under the key its primary key encodes with values of its columns' types, every
//! secondary index equal to a rebuild from its table, every KV entry with its header.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use aedb::catalog::keys::{decode_key, decode_prefix, encode_key};
use aedb::catalog::namespace::{
    decode_entry, index_tree, kv_tree, parse_catalog_key, table_tree, CatalogKey, ProjectEntry,
    ScopeEntry, CATALOG_TREE,
};
use aedb::catalog::schema::{IndexDef, TableSchema};
use aedb::catalog::types::{Row, Value};
use aedb::query::index::index_entry;
use aedb::stored::kv::KvEntry;
use aedb::stored::{catalog, rows};
use aedb_pager::{Snapshot, TreeView};

use super::{Summary, Violation};
use crate::util::{engine_detail, fmt_encoded_key, fmt_tree_key, printable, Progress};

/// Violations listed per index or table at most (the count is always exact).
const MAX_LISTED: usize = 10;

fn table_name(s: &TableSchema) -> String {
    format!("{}/{}/{}", s.project_id, s.scope_id, s.table_name)
}

/// What the catalog holds, each entry checked against its key.
#[derive(Default)]
struct Catalog {
    projects: BTreeSet<String>,
    scopes: BTreeSet<(String, String)>,
    tables: Vec<TableSchema>,
    next_table_id: Option<u64>,
}

/// A secondary index of the table being checked, and what its rows say it must hold.
struct IndexCheck<'a> {
    def: &'a IndexDef,
    view: TreeView<'static>,
    location: String,
    /// Entries a rebuild makes.
    expected: u64,
    /// Rows whose entry is not there.
    missing: usize,
}

pub struct Checker<'a> {
    pub violations: Vec<Violation>,
    pub snapshot: &'a Snapshot,
    pub summary: Summary,
}

impl Checker<'_> {
    fn violation(&mut self, location: impl Into<String>, problem: impl Into<String>) {
        self.violations.push(Violation {
            location: location.into(),
            problem: problem.into(),
        });
    }

    /// A violation counted against `count`, listed while it is at most `MAX_LISTED`.
    fn listed(&mut self, count: &mut usize, location: &str, problem: impl FnOnce() -> String) {
        *count += 1;
        if *count <= MAX_LISTED {
            self.violation(location, problem());
        }
    }

    fn tree(&mut self, name: &str, location: &str) -> Option<TreeView<'static>> {
        match self.snapshot.tree(name) {
            Ok(view) => view,
            Err(e) => {
                self.violation(location, format!("cannot read tree {name}: {e}"));
                None
            }
        }
    }

    /// Every check, from the catalog down.
    pub fn run(&mut self, progress: &Progress) {
        let trees = match self.snapshot.trees() {
            Ok(t) => t,
            Err(e) => {
                self.violation("tree of trees", format!("cannot be read: {e}"));
                return;
            }
        };
        self.summary.trees = trees.len() as u64;
        let tree_names: BTreeSet<String> = trees.iter().map(|(n, _)| n.clone()).collect();
        let Some(view) = self.tree(CATALOG_TREE, "catalog") else {
            if !trees.is_empty() {
                self.violation("catalog", format!("tree {CATALOG_TREE} is missing"));
            }
            return;
        };
        let Some(catalog) = self.catalog(&view) else {
            return;
        };
        self.table_ids(&catalog);
        self.owners(&catalog, &tree_names);
        self.summary.tables = catalog.tables.len() as u64;
        for s in &catalog.tables {
            self.table(s, &tree_names, progress);
        }
        for (p, s) in &catalog.scopes {
            self.kv(p, s);
        }
    }

    /// The catalog's entries, each under its own key and with its parents before it; None
    /// when the tree cannot be read.
    fn catalog(&mut self, view: &TreeView<'static>) -> Option<Catalog> {
        let mut c = Catalog::default();
        for item in view.range(Bound::Unbounded, Bound::Unbounded, false) {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    self.violation("catalog", format!("cannot be read: {e}"));
                    return None;
                }
            };
            let location = format!("catalog entry {}", fmt_tree_key(CATALOG_TREE, &key));
            match parse_catalog_key(&key) {
                CatalogKey::Project { project } => match decode_entry::<ProjectEntry>(&value) {
                    Ok(p) if p.project_id == project => {
                        c.projects.insert(p.project_id);
                    }
                    Ok(p) => self.violation(location, format!("names project {:?}", p.project_id)),
                    Err(e) => self.violation(location, e),
                },
                CatalogKey::Scope { project, scope } => match decode_entry::<ScopeEntry>(&value) {
                    Ok(s) if s.project_id == project && s.scope_id == scope => {
                        if !c.projects.contains(&s.project_id) {
                            let problem = format!(
                                "scope of project {:?}, which does not exist",
                                s.project_id
                            );
                            self.violation(location, problem);
                        }
                        c.scopes.insert((s.project_id, s.scope_id));
                    }
                    Ok(s) => self.violation(
                        location,
                        format!("names scope {:?}/{:?}", s.project_id, s.scope_id),
                    ),
                    Err(e) => self.violation(location, e),
                },
                CatalogKey::Table {
                    project,
                    scope,
                    table,
                } => match decode_entry::<TableSchema>(&value) {
                    Ok(s)
                        if s.project_id == project
                            && s.scope_id == scope
                            && s.table_name == table =>
                    {
                        if !c
                            .scopes
                            .contains(&(s.project_id.clone(), s.scope_id.clone()))
                        {
                            let problem = format!(
                                "table of scope {}/{}, which does not exist",
                                s.project_id, s.scope_id
                            );
                            self.violation(location, problem);
                        }
                        c.tables.push(s);
                    }
                    Ok(s) => self.violation(location, format!("names table {}", table_name(&s))),
                    Err(e) => self.violation(location, e),
                },
                CatalogKey::NextTableId => match catalog::decode_table_id_counter(&value) {
                    Ok(next) => c.next_table_id = Some(next),
                    Err(_) => self.violation(location, format!("counter of {} bytes", value.len())),
                },
                CatalogKey::Other => {
                    self.violation(location, "not a project, scope, table or counter key")
                }
            }
        }
        Some(c)
    }

    /// Table ids unique and below the counter; column slots matching the columns.
    fn table_ids(&mut self, c: &Catalog) {
        let mut ids = BTreeMap::new();
        for s in &c.tables {
            if let Some(other) = ids.insert(s.table_id, table_name(s)) {
                self.violation(
                    format!("table {}", table_name(s)),
                    format!("table id {} is also the id of {other}", s.table_id),
                );
            }
            if s.slots.len() != s.columns.len() || s.slots.iter().any(|x| *x >= s.slot_count) {
                self.violation(
                    format!("table {}", table_name(s)),
                    "column slots do not match the columns",
                );
            }
        }
        if let (Some(next), Some((&max, name))) = (c.next_table_id, ids.iter().next_back()) {
            if next <= max {
                self.violation(
                    "catalog counter next_table_id",
                    format!("is {next}, but table {name} already has id {max}"),
                );
            }
        }
    }

    /// Every data tree must belong to something in the catalog.
    fn owners(&mut self, c: &Catalog, tree_names: &BTreeSet<String>) {
        let mut owned: BTreeSet<String> = [
            CATALOG_TREE,
            aedb::stored::idempotency::IDEMPOTENCY_TREE,
            aedb::stored::idempotency::IDEMPOTENCY_BY_SEQ_TREE,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for s in &c.tables {
            owned.insert(table_tree(s.table_id));
            for i in &s.indexes {
                owned.insert(index_tree(s.table_id, &i.index_name));
            }
        }
        for (p, s) in &c.scopes {
            owned.insert(kv_tree(p, s));
        }
        for name in tree_names.difference(&owned) {
            self.violation(
                format!("tree {name}"),
                "no catalog entry owns it (an orphan left behind?)",
            );
        }
    }

    fn table(&mut self, s: &TableSchema, trees: &BTreeSet<String>, progress: &Progress) {
        let tree = table_tree(s.table_id);
        let location = format!("table {} (tree {tree})", table_name(s));
        if !trees.contains(&tree) {
            let problem = format!("the catalog names it but tree {tree} does not exist");
            self.violation(&location, problem);
            return;
        }
        let Some(view) = self.tree(&tree, &location) else {
            return;
        };
        let mut indexes = self.indexes(s, trees);
        let Some(read) = self.rows(s, &location, &mut indexes, progress) else {
            return;
        };
        self.summary.table_rows += read;
        if read != view.len() {
            let problem = format!(
                "the tree record counts {} entries, {read} rows were read",
                view.len()
            );
            self.violation(&location, problem);
        }
        for index in &indexes {
            self.index_rebuilt(s, index);
        }
    }

    /// The trees of the table's secondary indexes (each missing one a violation).
    fn indexes<'s>(&mut self, s: &'s TableSchema, trees: &BTreeSet<String>) -> Vec<IndexCheck<'s>> {
        let mut indexes = Vec::new();
        for def in &s.indexes {
            self.summary.indexes += 1;
            let tree = index_tree(s.table_id, &def.index_name);
            if !trees.contains(&tree) {
                self.violation(
                    format!("index {} of {}", def.index_name, table_name(s)),
                    format!("tree {tree} does not exist"),
                );
                continue;
            }
            if let Some(view) = self.tree(&tree, &tree) {
                indexes.push(IndexCheck {
                    def,
                    location: format!(
                        "index {} of {} (tree {tree})",
                        def.index_name,
                        table_name(s)
                    ),
                    view,
                    expected: 0,
                    missing: 0,
                });
            }
        }
        indexes
    }

    /// Every row checked, and looked up in every index; the rows read, or None when the
    /// table's tree cannot be read.
    fn rows(
        &mut self,
        s: &TableSchema,
        location: &str,
        indexes: &mut [IndexCheck<'_>],
        progress: &Progress,
    ) -> Option<u64> {
        let scan = match rows::scan(self.snapshot, s) {
            Ok(scan) => scan,
            Err(e) => {
                self.violation(location, format!("cannot be read: {}", engine_detail(&e)));
                return None;
            }
        };
        let mut read = 0u64;
        let mut bad_rows = 0usize;
        for item in scan {
            progress.inc(1);
            let (key, row) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    self.violation(location, format!("cannot be read: {}", engine_detail(&e)));
                    return None;
                }
            };
            read += 1;
            let shown = fmt_encoded_key(&key);
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    let problem = || format!("row {shown} does not decode: {}", engine_detail(&e));
                    self.listed(&mut bad_rows, location, problem);
                    continue;
                }
            };
            self.row(s, location, &key, &shown, &row, &mut bad_rows);
            for index in indexes.iter_mut() {
                self.index_entry(s, index, &key, &shown, &row);
            }
        }
        if bad_rows > MAX_LISTED {
            self.violation(location, format!("{bad_rows} bad rows in all"));
        }
        Some(read)
    }

    /// A row under the key its primary key encodes, with values of its columns' types.
    fn row(
        &mut self,
        s: &TableSchema,
        location: &str,
        key: &[u8],
        shown: &str,
        row: &Row,
        bad_rows: &mut usize,
    ) {
        let pk: Vec<Value> = s
            .pk_positions()
            .into_iter()
            .map(|i| row.values.get(i).cloned().unwrap_or(Value::Null))
            .collect();
        if encode_key(&pk) != key {
            let problem = || format!("row stored under key {shown} has primary key {pk:?}");
            self.listed(bad_rows, location, problem);
        }
        for (i, (col, value)) in s.columns.iter().zip(&row.values).enumerate() {
            let wrong_type = value.column_type().is_some_and(|t| t != col.col_type);
            let bad_null = value.is_null() && !col.nullable && s.default_for(&col.name).is_none();
            if wrong_type || bad_null {
                let problem = || {
                    format!(
                        "row {shown}: column {i} ({}) is {} but holds {} (declared {})",
                        col.name,
                        if col.nullable { "nullable" } else { "not null" },
                        value.kind_name(),
                        col.col_type.name()
                    )
                };
                self.listed(bad_rows, location, problem);
            }
        }
    }

    /// The row's entry in one index, as a rebuild makes it, must be there.
    fn index_entry(
        &mut self,
        s: &TableSchema,
        index: &mut IndexCheck<'_>,
        key: &[u8],
        shown: &str,
        row: &Row,
    ) {
        let Some(entry) = index_entry(s, index.def, row, key) else {
            return;
        };
        index.expected += 1;
        match index.view.get(&entry) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let problem = || format!("no entry for row {shown} (a rebuild has one)");
                self.listed(&mut index.missing, &index.location, problem);
            }
            Err(e) => self.violation(&index.location, format!("cannot be read: {e}")),
        }
    }

    /// An index against a rebuild from its table: the rows without their entry counted, and
    /// entries a rebuild would not make (each must point at a row that yields it).
    fn index_rebuilt(&mut self, s: &TableSchema, index: &IndexCheck<'_>) {
        let (def, view, location) = (index.def, &index.view, index.location.as_str());
        if index.missing > MAX_LISTED {
            let problem = format!("{} rows without an entry in all", index.missing);
            self.violation(location, problem);
        }
        if view.len() == index.expected && index.missing == 0 {
            return;
        }
        let mut extra = 0usize;
        for item in view.range(Bound::Unbounded, Bound::Unbounded, false) {
            let Ok((entry, _)) = item else { break };
            let pk = decode_prefix(&entry, def.columns.len())
                .ok()
                .map(|(_, used)| entry[used..].to_vec());
            let valid = pk.as_ref().is_some_and(|pk| {
                matches!(rows::read_row(self.snapshot, s, pk), Ok(Some(row))
                    if index_entry(s, def, &row, pk).as_deref() == Some(entry.as_slice()))
            });
            if !valid {
                let problem = || {
                    let shown = match decode_key(&entry) {
                        Ok(v) => format!("{v:?}"),
                        Err(_) => printable(&entry),
                    };
                    format!("entry {shown} has no row that yields it (a rebuild drops it)")
                };
                self.listed(&mut extra, location, problem);
            }
        }
        if extra > MAX_LISTED {
            self.violation(location, format!("{extra} stale entries in all"));
        }
        if extra == 0 && index.missing == 0 {
            let problem = format!(
                "the tree record counts {} entries, a rebuild makes {}",
                view.len(),
                index.expected
            );
            self.violation(location, problem);
        }
    }

    fn kv(&mut self, project: &str, scope: &str) {
        let name = kv_tree(project, scope);
        let Some(view) = self.tree(&name, &name) else {
            return;
        };
        let location = format!("KV space {project}/{scope} (tree {name})");
        let mut bad = 0usize;
        for item in view.range(Bound::Unbounded, Bound::Unbounded, false) {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    self.violation(&location, format!("cannot be read: {e}"));
                    return;
                }
            };
            self.summary.kv_entries += 1;
            if KvEntry::decode_header(&value).is_err() {
                let problem = || {
                    format!(
                        "entry {} of {} bytes is shorter than its 16-byte header",
                        printable(&key),
                        value.len()
                    )
                };
                self.listed(&mut bad, &location, problem);
            }
        }
    }
}
