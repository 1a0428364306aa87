//! `aedb check invariants`: the storage invariant checker on the data file (every page read
//! from disk and verified), the same checker on the recovered version (checkpoint plus log),
//! and the catalog-level checks: every catalog entry consistent, every table and index with
//! its tree and no tree without an owner, every row decodable under its key, every secondary
//! index equal to a rebuild from its table, every KV entry decodable.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;

use aedb::catalog::keys::{decode_key, decode_prefix, encode_key};
use aedb::catalog::namespace::{
    decode_entry, index_tree, kv_tree, parse_tree_name, table_tree, ProjectEntry, ScopeEntry,
    TreeKind, CATALOG_TREE, NEXT_TABLE_ID_KEY,
};
use aedb::catalog::rows::decode_row;
use aedb::catalog::schema::TableSchema;
use aedb::catalog::types::Value;
use aedb_pager::{Snapshot, TreeView};
use serde_json::json;

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile};
use crate::db::{open_error, Seen};
use crate::util::{
    fmt_encoded_key, fmt_tree_key, key_values, Ctx, Progress, Res, Table, EXIT_FOUND, EXIT_OK,
};
use crate::walk::{self, Role, Walk};

/// Violations listed per index or table at most (the count is always exact).
const MAX_LISTED: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub location: String,
    pub problem: String,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub tables: u64,
    pub table_rows: u64,
    pub indexes: u64,
    pub kv_entries: u64,
    pub trees: u64,
    pub pages: u64,
    pub seq: u64,
}

pub use aedb::query::index::index_entry;

fn table_name(s: &TableSchema) -> String {
    format!("{}/{}/{}", s.project_id, s.scope_id, s.table_name)
}

struct Checker<'a> {
    violations: Vec<Violation>,
    snapshot: &'a Snapshot,
    summary: Summary,
}

impl Checker<'_> {
    fn violation(&mut self, location: impl Into<String>, problem: impl Into<String>) {
        self.violations.push(Violation {
            location: location.into(),
            problem: problem.into(),
        });
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

    fn catalog(&mut self, progress: &Progress) {
        let trees = match self.snapshot.trees() {
            Ok(t) => t,
            Err(e) => {
                self.violation("tree of trees", format!("cannot be read: {e}"));
                return;
            }
        };
        self.summary.trees = trees.len() as u64;
        let tree_names: BTreeSet<String> = trees.iter().map(|(n, _)| n.clone()).collect();
        let Some(catalog) = self.tree(CATALOG_TREE, "catalog") else {
            if !trees.is_empty() {
                self.violation("catalog", format!("tree {CATALOG_TREE} is missing"));
            }
            return;
        };
        let mut projects = BTreeSet::new();
        let mut scopes = BTreeSet::new();
        let mut tables: Vec<TableSchema> = Vec::new();
        let mut next_table_id = None;
        for item in catalog.range(Bound::Unbounded, Bound::Unbounded, false) {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    self.violation("catalog", format!("cannot be read: {e}"));
                    return;
                }
            };
            let shown = fmt_tree_key(CATALOG_TREE, &key);
            let location = format!("catalog entry {shown}");
            let parts: Vec<&[u8]> = key.split(|b| *b == 0).collect();
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            match parts.first().copied() {
                Some(b"P") if parts.len() == 2 => match decode_entry::<ProjectEntry>(&value) {
                    Ok(p) if p.project_id == text(parts[1]) => {
                        projects.insert(p.project_id);
                    }
                    Ok(p) => self.violation(location, format!("names project {:?}", p.project_id)),
                    Err(e) => self.violation(location, e),
                },
                Some(b"S") if parts.len() == 3 => match decode_entry::<ScopeEntry>(&value) {
                    Ok(s) if s.project_id == text(parts[1]) && s.scope_id == text(parts[2]) => {
                        if !projects.contains(&s.project_id) {
                            self.violation(
                                location,
                                format!(
                                    "scope of project {:?}, which does not exist",
                                    s.project_id
                                ),
                            );
                        }
                        scopes.insert((s.project_id, s.scope_id));
                    }
                    Ok(s) => self.violation(
                        location,
                        format!("names scope {:?}/{:?}", s.project_id, s.scope_id),
                    ),
                    Err(e) => self.violation(location, e),
                },
                Some(b"T") if parts.len() == 4 => match decode_entry::<TableSchema>(&value) {
                    Ok(s)
                        if s.project_id == text(parts[1])
                            && s.scope_id == text(parts[2])
                            && s.table_name == text(parts[3]) =>
                    {
                        if !scopes.contains(&(s.project_id.clone(), s.scope_id.clone())) {
                            self.violation(
                                location,
                                format!(
                                    "table of scope {}/{}, which does not exist",
                                    s.project_id, s.scope_id
                                ),
                            );
                        }
                        tables.push(s);
                    }
                    Ok(s) => self.violation(location, format!("names table {}", table_name(&s))),
                    Err(e) => self.violation(location, e),
                },
                _ if key == NEXT_TABLE_ID_KEY => match <[u8; 8]>::try_from(value.as_slice()) {
                    Ok(raw) => next_table_id = Some(u64::from_le_bytes(raw)),
                    Err(_) => self.violation(location, format!("counter of {} bytes", value.len())),
                },
                _ => self.violation(location, "not a project, scope, table or counter key"),
            }
        }
        let mut ids = BTreeMap::new();
        for s in &tables {
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
        if let (Some(next), Some((&max, name))) = (next_table_id, ids.iter().next_back()) {
            if next <= max {
                self.violation(
                    "catalog counter next_table_id",
                    format!("is {next}, but table {name} already has id {max}"),
                );
            }
        }
        // Every data tree must belong to something in the catalog.
        let mut owned: BTreeSet<String> = [
            CATALOG_TREE,
            aedb::commit::envelope::IDEMPOTENCY_TREE,
            aedb::commit::envelope::IDEMPOTENCY_BY_SEQ_TREE,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for s in &tables {
            owned.insert(table_tree(s.table_id));
            for i in &s.indexes {
                owned.insert(index_tree(s.table_id, &i.index_name));
            }
        }
        for (p, s) in &scopes {
            owned.insert(kv_tree(p, s));
        }
        for name in tree_names.difference(&owned) {
            self.violation(
                format!("tree {name}"),
                "no catalog entry owns it (an orphan left behind?)",
            );
        }
        self.summary.tables = tables.len() as u64;
        for s in &tables {
            self.table(s, &tree_names, progress);
        }
        for (p, s) in &scopes {
            self.kv(p, s);
        }
    }

    fn table(&mut self, s: &TableSchema, trees: &BTreeSet<String>, progress: &Progress) {
        let name = table_name(s);
        let location = format!("table {name} (tree {})", table_tree(s.table_id));
        if !trees.contains(&table_tree(s.table_id)) {
            self.violation(
                &location,
                format!(
                    "the catalog names it but tree {} does not exist",
                    table_tree(s.table_id)
                ),
            );
            return;
        }
        let Some(view) = self.tree(&table_tree(s.table_id), &location) else {
            return;
        };
        let mut indexes = Vec::new();
        for def in &s.indexes {
            self.summary.indexes += 1;
            let tree = index_tree(s.table_id, &def.index_name);
            if !trees.contains(&tree) {
                self.violation(
                    format!("index {} of {name}", def.index_name),
                    format!("tree {tree} does not exist"),
                );
                continue;
            }
            if let Some(iv) = self.tree(&tree, &tree) {
                indexes.push((def, tree, iv, 0u64, 0usize));
            }
        }
        let mut rows = 0u64;
        let mut bad_rows = 0usize;
        for item in view.range(Bound::Unbounded, Bound::Unbounded, false) {
            progress.inc(1);
            let (key, bytes) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    self.violation(&location, format!("cannot be read: {e}"));
                    return;
                }
            };
            rows += 1;
            let shown = fmt_encoded_key(&key);
            let stored = match decode_row(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    bad_rows += 1;
                    if bad_rows <= MAX_LISTED {
                        self.violation(&location, format!("row {shown} does not decode: {e}"));
                    }
                    continue;
                }
            };
            let row = s.from_stored(stored);
            let pk: Vec<Value> = s
                .pk_positions()
                .into_iter()
                .map(|i| row.values.get(i).cloned().unwrap_or(Value::Null))
                .collect();
            if encode_key(&pk) != key {
                bad_rows += 1;
                if bad_rows <= MAX_LISTED {
                    self.violation(
                        &location,
                        format!("row stored under key {shown} has primary key {pk:?}"),
                    );
                }
            }
            for (i, (col, value)) in s.columns.iter().zip(&row.values).enumerate() {
                let wrong_type = value.column_type().is_some_and(|t| t != col.col_type);
                let bad_null =
                    value.is_null() && !col.nullable && s.default_for(&col.name).is_none();
                if wrong_type || bad_null {
                    bad_rows += 1;
                    if bad_rows <= MAX_LISTED {
                        self.violation(
                            &location,
                            format!(
                                "row {shown}: column {i} ({}) is {} but holds {}",
                                col.name,
                                if col.nullable { "nullable" } else { "not null" },
                                value.kind_name()
                            ) + &format!(" (declared {})", col.col_type.name()),
                        );
                    }
                }
            }
            for (def, tree, iv, expected, missing) in indexes.iter_mut() {
                let Some(entry) = index_entry(s, def, &row, &key) else {
                    continue;
                };
                *expected += 1;
                match iv.get(&entry) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        *missing += 1;
                        if *missing <= MAX_LISTED {
                            self.violations.push(Violation {
                                location: format!(
                                    "index {} of {name} (tree {tree})",
                                    def.index_name
                                ),
                                problem: format!("no entry for row {shown} (a rebuild has one)"),
                            });
                        }
                    }
                    Err(e) => self.violations.push(Violation {
                        location: format!("index {} of {name} (tree {tree})", def.index_name),
                        problem: format!("cannot be read: {e}"),
                    }),
                }
            }
        }
        self.summary.table_rows += rows;
        if bad_rows > MAX_LISTED {
            self.violation(&location, format!("{bad_rows} bad rows in all"));
        }
        if rows != view.len() {
            self.violation(
                &location,
                format!(
                    "the tree record counts {} entries, {rows} rows were read",
                    view.len()
                ),
            );
        }
        for (def, tree, iv, expected, missing) in indexes {
            let location = format!("index {} of {name} (tree {tree})", def.index_name);
            if missing > MAX_LISTED {
                self.violation(&location, format!("{missing} rows without an entry in all"));
            }
            if iv.len() == expected && missing == 0 {
                continue;
            }
            // Entries a rebuild would not make: each must point at a row that yields it.
            let mut extra = 0usize;
            for item in iv.range(Bound::Unbounded, Bound::Unbounded, false) {
                let Ok((entry, _)) = item else { break };
                let pk = decode_prefix(&entry, def.columns.len())
                    .ok()
                    .map(|(_, used)| entry[used..].to_vec());
                let valid = pk.as_ref().is_some_and(|pk| {
                    matches!(view.get(pk), Ok(Some(bytes)) if decode_row(&bytes)
                        .map(|r| index_entry(s, def, &s.from_stored(r), pk).as_deref() == Some(entry.as_slice()))
                        .unwrap_or(false))
                });
                if !valid {
                    extra += 1;
                    if extra <= MAX_LISTED {
                        let shown = match decode_key(&entry) {
                            Ok(v) => format!("{v:?}"),
                            Err(_) => crate::util::printable(&entry),
                        };
                        self.violation(
                            &location,
                            format!("entry {shown} has no row that yields it (a rebuild drops it)"),
                        );
                    }
                }
            }
            if extra > MAX_LISTED {
                self.violation(&location, format!("{extra} stale entries in all"));
            }
            if extra == 0 && missing == 0 {
                self.violation(
                    &location,
                    format!(
                        "the tree record counts {} entries, a rebuild makes {expected}",
                        iv.len()
                    ),
                );
            }
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
            match item {
                Ok((key, value)) => {
                    self.summary.kv_entries += 1;
                    if value.len() < 16 {
                        bad += 1;
                        if bad <= MAX_LISTED {
                            self.violation(
                                &location,
                                format!(
                                    "entry {} of {} bytes is shorter than its 16-byte header",
                                    crate::util::printable(&key),
                                    value.len()
                                ),
                            );
                        }
                    }
                }
                Err(e) => {
                    self.violation(&location, format!("cannot be read: {e}"));
                    return;
                }
            }
        }
    }
}

/// Name the tree (and role) of a damaged page, from the walk that found it.
fn locate(w: &Walk, page: u64) -> String {
    match w.pages.get(page as usize) {
        Some(info) if matches!(info.role, Role::Branch | Role::Leaf | Role::Overflow) => {
            let tree = w.tree_name(info).unwrap_or("?");
            let what = w.describe(tree);
            let role = if info.bad && info.role == Role::Branch {
                "node".to_string()
            } else {
                info.role.name().to_string()
            };
            if what.is_empty() {
                format!("page {page} ({role} of tree {tree})")
            } else {
                format!("page {page} ({role} of tree {tree}: {what})")
            }
        }
        Some(info) => format!("page {page} ({})", info.role.name()),
        None => format!("page {page}"),
    }
}

pub fn invariants(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<i32> {
    let dir: &Path = &db.data_dir;
    let df = DataFile::open(dir)?;
    let metas = read_metas(&df)?;
    let mut violations = Vec::new();
    for slot in &metas.slots {
        if let Err(e) = &slot.verdict {
            violations.push(Violation {
                location: format!("page {} (meta)", slot.slot),
                problem: format!("invalid meta page: {e}"),
            });
        }
    }
    let mut summary = Summary::default();
    if let Some(meta) = metas.current {
        summary.pages = meta.page_count;
        let spinner = ctx.progress(0, "storage");
        let w = walk::check(&df, &meta, &Progress::hidden())?;
        spinner.finish();
        for v in &w.report.violations {
            violations.push(Violation {
                location: v
                    .page
                    .map_or_else(|| "data file".to_string(), |page| locate(&w, page)),
                problem: v.message.clone(),
            });
        }
    } else {
        violations.push(Violation {
            location: df.path.display().to_string(),
            problem: format!("no valid meta page: {}", metas.why),
        });
    }
    // Engine-level checks on the recovered state (checkpoint plus log, in memory).
    let config = db.config()?;
    let config_key = config.hmac_key.is_some();
    match aedb::AedbInstance::open_read_only(config, dir) {
        Err(e) => violations.push(Violation {
            location: dir.display().to_string(),
            problem: open_error(
                dir,
                &e,
                Seen {
                    key_given: config_key,
                    meta_valid: metas.current.is_some(),
                },
            )
            .message,
        }),
        Ok(instance) => {
            let engine = instance.engine();
            if engine.recovery_report().dropped.is_some() {
                for d in crate::wal::analyse(dir, db.hmac_key()?).damage {
                    violations.push(Violation {
                        location: "write-ahead log".into(),
                        problem: d,
                    });
                }
            }
            let head = engine.store().check();
            let known: BTreeSet<String> = violations.iter().map(|v| v.problem.clone()).collect();
            for v in head.violations {
                if !known.contains(&v.message) {
                    violations.push(Violation {
                        location: format!(
                            "recovered version{}",
                            v.page.map(|p| format!(", page {p}")).unwrap_or_default()
                        ),
                        problem: v.message,
                    });
                }
            }
            let snapshot = engine.snapshot();
            let rows: u64 = snapshot
                .trees()
                .map(|t| {
                    t.iter()
                        .filter(|(n, _)| matches!(parse_tree_name(n), TreeKind::Table { .. }))
                        .map(|(_, r)| r.len)
                        .sum()
                })
                .unwrap_or(0);
            let progress = ctx.progress(rows, "rows");
            let mut checker = Checker {
                violations: Vec::new(),
                snapshot: &snapshot,
                summary: Summary {
                    pages: summary.pages,
                    seq: snapshot.seq(),
                    ..Summary::default()
                },
            };
            checker.catalog(&progress);
            progress.finish();
            violations.extend(checker.violations);
            summary = checker.summary;
        }
    }
    violations.dedup();
    let ok = violations.is_empty();
    if ctx.json {
        ctx.print_json(&json!({
            "ok": ok,
            "data_dir": dir.display().to_string(),
            "seq": summary.seq,
            "tables": summary.tables,
            "table_rows": summary.table_rows,
            "indexes": summary.indexes,
            "kv_entries": summary.kv_entries,
            "trees": summary.trees,
            "pages": summary.pages,
            "violations": violations.iter().map(|v| json!({
                "location": v.location, "problem": v.problem
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        if ok {
            ctx.line("ok")?;
        } else {
            ctx.line(format!("violations: {}", violations.len()))?;
        }
        ctx.line(key_values(&[
            ("database", dir.display().to_string()),
            ("recovered seq", summary.seq.to_string()),
            ("tables", summary.tables.to_string()),
            ("table rows", summary.table_rows.to_string()),
            ("indexes", summary.indexes.to_string()),
            ("kv entries", summary.kv_entries.to_string()),
            ("trees", summary.trees.to_string()),
            ("pages", summary.pages.to_string()),
        ]))?;
        if !ok {
            let mut table = Table::new(&["LOCATION", "VIOLATION"]);
            for v in &violations {
                table.row(vec![v.location.clone(), v.problem.clone()]);
            }
            ctx.line(table.render().trim_end())?;
        }
    }
    Ok(if ok { EXIT_OK } else { EXIT_FOUND })
}
