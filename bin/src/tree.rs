//! `aedb tree list|dump`: the tree of trees and each tree's structure, level by level.

use std::collections::HashSet;

use aedb_pager::btree::node::{usable_bytes, LeafValue, NodeRef};
use aedb_pager::btree::MAX_DEPTH;
use aedb_pager::page::{PageId, PageType};
use serde_json::{json, Value as Json};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile};
use crate::util::{
    clip, describe_tree, fmt_tree_key, percent, CliError, Ctx, Res, Table, EXIT_FOUND, EXIT_OK,
    TREE_OF_TREES,
};
use crate::walk::{catalog_tables, find_tree, walk};

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
    let mut seen = HashSet::new();
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

pub fn list(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<i32> {
    let df = DataFile::open(&db.data_dir)?;
    let metas = read_metas(&df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    let meta = metas.require(&df.path)?;
    let progress = ctx.progress(df.pages(meta.page_size as usize), "trees");
    let w = walk(&df, &meta, &progress)?;
    progress.finish();
    if ctx.json {
        let trees: Vec<Json> = w
            .trees
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "what": w.describe(&t.name),
                    "root": t.root,
                    "height": t.height,
                    "entries": t.entries,
                    "recorded_entries": t.recorded,
                    "branch_pages": t.branch_pages,
                    "leaf_pages": t.leaf_pages,
                    "overflow_pages": t.overflow_pages,
                    "used_bytes": t.used_bytes,
                    "mean_fill": t.fill(w.page_size),
                    "problems": t.problems,
                })
            })
            .collect();
        ctx.print_json(&json!({
            "data_file": df.path.display().to_string(),
            "checkpoint_seq": meta.seq,
            "trees": trees,
            "problems": w.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        }))?;
    } else {
        ctx.line(format!(
            "{}: {} trees as of the checkpoint at commit seq {} (generation {})",
            df.path.display(),
            w.trees.len().saturating_sub(1),
            meta.seq,
            meta.generation
        ))?;
        let mut table = Table::new(&[
            "TREE", "WHAT", "ROOT", "HEIGHT", "ENTRIES", "BRANCH", "LEAF", "OVERFLOW", "FILL",
            "PROBLEMS",
        ]);
        for t in &w.trees {
            table.row(vec![
                t.name.clone(),
                clip(&w.describe(&t.name), 40),
                t.root.to_string(),
                t.height.to_string(),
                t.entries.to_string(),
                t.branch_pages.to_string(),
                t.leaf_pages.to_string(),
                t.overflow_pages.to_string(),
                percent(t.fill(w.page_size), 1.0),
                t.problems.to_string(),
            ]);
        }
        ctx.line(table.render().trim_end())?;
        if !w.problems.is_empty() {
            ctx.line(format!("problems: {}", w.problems.len()))?;
            for p in &w.problems {
                ctx.line(format!("  {p}"))?;
            }
        }
    }
    for p in &w.problems {
        ctx.damage(format!("{}: {p}", df.path.display()));
    }
    Ok(if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    })
}

fn key_text(tree: &str, key: &[u8], first_branch_cell: bool) -> String {
    if first_branch_cell && key.is_empty() {
        "(-inf)".into()
    } else {
        clip(&fmt_tree_key(tree, key), 60)
    }
}

fn node_json(tree: &str, n: &NodeView) -> Json {
    let items: Vec<Json> = n
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Item::Child { key, child, count } => json!({
                "key": key_text(tree, key, i == 0), "key_hex": hex::encode(key),
                "child": child, "entries": count
            }),
            Item::Entry {
                key,
                value_len,
                overflow,
            } => json!({
                "key": key_text(tree, key, false), "key_hex": hex::encode(key),
                "value_bytes": value_len, "overflow_page": overflow
            }),
        })
        .collect();
    json!({
        "page": n.id,
        "kind": match &n.kind { Ok(k) => format!("{k:?}").to_lowercase(), Err(_) => "unreadable".into() },
        "error": n.kind.as_ref().err(),
        "cells": n.cells,
        "entries": n.entries,
        "fill": n.fill,
        "items": items,
    })
}

/// One tree as `tree dump` shows it.
struct TreeDump<'a> {
    name: &'a str,
    what: String,
    root: PageId,
    recorded: u64,
    levels: Vec<Vec<NodeView>>,
    /// `--max-pages` stopped the reading.
    stopped: bool,
    /// Pages that could not be read or decoded, and why.
    bad: Vec<(PageId, String)>,
}

pub fn dump(ctx: &mut Ctx<'_>, db: &DbArgs, name: &str, keys: bool, max_pages: usize) -> Res<i32> {
    let df = DataFile::open(&db.data_dir)?;
    let tree = read_tree(ctx, db, &df, name, max_pages)?;
    if ctx.json {
        dump_json(ctx, &tree)?;
    } else {
        dump_text(ctx, &tree, keys)?;
        if tree.stopped {
            ctx.line(format!(
                "(stopped after {max_pages} pages: --max-pages reads more)"
            ))?;
        }
    }
    for (id, e) in &tree.bad {
        ctx.damage(format!(
            "{}: tree {name}: page {id}: {e}",
            df.path.display()
        ));
    }
    Ok(if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    })
}

/// The tree named `name` found in the tree of trees and read level by level.
fn read_tree<'a>(
    ctx: &mut Ctx<'_>,
    db: &DbArgs,
    df: &DataFile,
    name: &'a str,
    max_pages: usize,
) -> Res<TreeDump<'a>> {
    let metas = read_metas(df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    let meta = metas.require(&df.path)?;
    let page_size = meta.page_size as usize;
    let pool = df.pool(page_size)?;
    let (root, recorded) = if name == TREE_OF_TREES {
        (meta.root, meta.tree_count)
    } else {
        match find_tree(&pool, &meta, name) {
            Ok(Some(record)) => (record.root, record.len),
            Ok(None) => {
                return Err(
                    CliError::at(&df.path, format!("no tree named {name:?}")).hint(format!(
                        "`aedb tree list --data-dir {}` names every tree; \"{TREE_OF_TREES}\" is \
                         the tree of trees",
                        db.data_dir.display()
                    )),
                )
            }
            Err(e) => {
                ctx.damage(format!("{}: {e}", df.path.display()));
                return Err(CliError::at(
                    &df.path,
                    format!("cannot read the tree of trees: {e}"),
                ));
            }
        }
    };
    let what = describe_tree(name, &catalog_tables(&pool, &meta));
    let (levels, stopped) = levels(df, page_size, root, max_pages);
    let bad = levels
        .iter()
        .flatten()
        .filter_map(|n| n.kind.as_ref().err().map(|e| (n.id, e.clone())))
        .collect();
    Ok(TreeDump {
        name,
        what,
        root,
        recorded,
        levels,
        stopped,
        bad,
    })
}

fn dump_json(ctx: &mut Ctx<'_>, t: &TreeDump<'_>) -> Res<()> {
    let levels_json: Vec<Json> = t
        .levels
        .iter()
        .map(|l| Json::Array(l.iter().map(|n| node_json(t.name, n)).collect()))
        .collect();
    ctx.print_json(&json!({
        "tree": t.name,
        "what": t.what,
        "root": t.root,
        "recorded_entries": t.recorded,
        "height": t.levels.len(),
        "stopped_at_max_pages": t.stopped,
        "levels": levels_json,
        "unreadable": t.bad.iter().map(|(id, e)| json!({"page": id, "error": e})).collect::<Vec<_>>(),
    }))
}

fn dump_text(ctx: &mut Ctx<'_>, t: &TreeDump<'_>, keys: bool) -> Res<()> {
    let name = t.name;
    ctx.line(format!(
        "tree {name}{}: root page {}, {} entries recorded, height {}",
        if t.what.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.what)
        },
        t.root,
        t.recorded,
        t.levels.len()
    ))?;
    for (depth, level) in t.levels.iter().enumerate() {
        let label = match (depth, level.first().map(|n| &n.kind)) {
            (0, _) => "root",
            (_, Some(Ok(PageType::Leaf))) => "leaves",
            _ => "branches",
        };
        ctx.line(format!("level {depth} ({label}): {} pages", level.len()))?;
        for n in level {
            node_text(ctx, name, n, keys)?;
        }
    }
    Ok(())
}

/// A node's line, and a line per branch cell (per leaf cell with `keys`).
fn node_text(ctx: &mut Ctx<'_>, name: &str, n: &NodeView, keys: bool) -> Res<()> {
    let kind = match &n.kind {
        Ok(k) => format!("{k:?}").to_lowercase(),
        Err(e) => return ctx.line(format!("  page {}  UNREADABLE: {e}", n.id)),
    };
    let span = match (n.items.first(), n.items.last()) {
        (Some(Item::Entry { key: a, .. }), Some(Item::Entry { key: b, .. })) => {
            format!(
                "  keys {} .. {}",
                key_text(name, a, false),
                key_text(name, b, false)
            )
        }
        _ => String::new(),
    };
    ctx.line(format!(
        "  page {}  {kind}  {} cells  {} entries  fill {}{span}",
        n.id,
        n.cells,
        n.entries,
        percent(n.fill, 1.0)
    ))?;
    for (i, item) in n.items.iter().enumerate() {
        match item {
            Item::Child { key, child, count } => ctx.line(format!(
                "    {} -> page {child} ({count} entries)",
                key_text(name, key, i == 0)
            ))?,
            Item::Entry {
                key,
                value_len,
                overflow,
            } if keys => ctx.line(format!(
                "    {}  {value_len} bytes{}",
                key_text(name, key, false),
                overflow
                    .map(|p| format!(" (overflow from page {p})"))
                    .unwrap_or_default()
            ))?,
            Item::Entry { .. } => {}
        }
    }
    Ok(())
}
