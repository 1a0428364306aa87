//! `aedb pages stat|dump|map`: the data file page by page, as of its current meta page.
//! `dump.rs`: one page decoded; `map.rs`: one character (or SVG cell) per page.

mod dump;
mod map;

pub use dump::dump;
pub use map::map;

use std::path::Path;

use aedb_pager::overflow::data_per_page;
use aedb_pager::page::PageId;
use serde_json::{json, Value as Json};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile};
use crate::util::{clip, human_bytes, key_values, percent, Ctx, Res, Table, EXIT_FOUND, EXIT_OK};
use crate::walk::{walk, Role, Walk};

/// Open the data file and walk it from its current meta page (damage of the meta pages noted).
fn open_and_walk(ctx: &mut Ctx<'_>, db: &DbArgs, what: &str) -> Res<(DataFile, Walk)> {
    let df = DataFile::open(&db.data_dir)?;
    let metas = read_metas(&df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    let meta = metas.require(&df.path)?;
    let progress = ctx.progress(df.pages(meta.page_size as usize), what);
    let walk = walk(&df, &meta, &progress)?;
    progress.finish();
    Ok((df, walk))
}

fn decile_header() -> Vec<&'static str> {
    vec![
        "<10%", "<20%", "<30%", "<40%", "<50%", "<60%", "<70%", "<80%", "<90%", "<=100%",
    ]
}

/// The figures of `pages stat`, from a walk.
struct Stat {
    bad: Vec<PageId>,
    reachable: u64,
    /// Bytes of cells and slots in nodes plus data in overflow pages.
    live: u64,
    /// Pages by role (unreadable ones apart).
    counts: Vec<(Role, u64)>,
}

pub fn stat(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<i32> {
    let (df, w) = open_and_walk(ctx, db, "pages")?;
    let stat = figures(&w);
    if ctx.json {
        stat_json(ctx, &df, &w, &stat)?;
    } else {
        stat_text(ctx, &df, &w, &stat)?;
    }
    finish(ctx, &df.path, &w)
}

fn figures(w: &Walk) -> Stat {
    let bad = w.bad_pages();
    let reachable: u64 = w.trees.iter().map(|t| t.pages()).sum();
    let used: u64 = w.trees.iter().map(|t| t.used_bytes).sum();
    let overflow_bytes: u64 = w
        .pages
        .iter()
        .filter(|p| p.role == Role::Overflow && p.fill >= 0.0)
        .map(|p| (p.fill as f64 * data_per_page(w.page_size) as f64) as u64)
        .sum();
    let live = used + overflow_bytes;
    let counts: Vec<(Role, u64)> = Role::ALL
        .iter()
        .map(|&r| {
            (
                r,
                w.pages.iter().filter(|p| p.role == r && !p.bad).count() as u64,
            )
        })
        .collect();
    Stat {
        bad,
        reachable,
        live,
        counts,
    }
}

fn stat_json(ctx: &mut Ctx<'_>, df: &DataFile, w: &Walk, stat: &Stat) -> Res<()> {
    let (bad, reachable, live, counts) = (&stat.bad, stat.reachable, stat.live, &stat.counts);
    let trees: Vec<Json> = w
        .trees
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "what": w.describe(&t.name),
                "branch_pages": t.branch_pages,
                "leaf_pages": t.leaf_pages,
                "overflow_pages": t.overflow_pages,
                "leaf_fill_deciles": t.leaf_fill,
                "branch_fill_deciles": t.branch_fill,
                "mean_fill": t.fill(w.page_size),
            })
        })
        .collect();
    let mut by_type = serde_json::Map::new();
    for (role, n) in counts {
        by_type.insert(role.name().into(), json!(n));
    }
    by_type.insert("unreadable".into(), json!(bad.len()));
    ctx.print_json(&json!({
            "data_file": df.path.display().to_string(),
            "page_size": w.page_size,
            "page_count": w.meta.page_count,
            "generation": w.meta.generation,
            "checkpoint_seq": w.meta.seq,
            "file_bytes": df.len,
            "file_pages": w.file_pages,
            "pages_by_type": by_type,
            "reachable_pages": reachable,
            "live_bytes": live,
            "freelist": {"ids": w.freelist_ids, "pages": w.freelist_pages},
            "trees": trees,
            "unreadable_pages": bad,
            "problems": w.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    }))
}

fn stat_text(ctx: &mut Ctx<'_>, df: &DataFile, w: &Walk, stat: &Stat) -> Res<()> {
    let (bad, reachable, live, counts) = (&stat.bad, stat.reachable, stat.live, &stat.counts);
    let page_size = w.page_size as u64;
    ctx.line(key_values(&[
        ("data file", df.path.display().to_string()),
        (
            "checkpoint",
            format!(
                "generation {}, commit seq {}",
                w.meta.generation, w.meta.seq
            ),
        ),
        ("page size", format!("{} bytes", w.page_size)),
        (
            "page count",
            format!("{} (pages 2.. are in use or free)", w.meta.page_count),
        ),
        (
            "file size",
            format!(
                "{} ({} pages; {} past the page count, preallocated)",
                human_bytes(df.len),
                w.file_pages,
                w.file_pages.saturating_sub(w.meta.page_count)
            ),
        ),
        (
            "live data",
            format!(
                "{} in {reachable} reachable pages ({}); {} of the file",
                human_bytes(live),
                human_bytes(reachable * page_size),
                percent(live as f64, df.len as f64)
            ),
        ),
        (
            "free list",
            format!(
                "{} free pages listed in {} free-list pages",
                w.freelist_ids, w.freelist_pages
            ),
        ),
    ]))?;
    let mut table = Table::new(&["TYPE", "PAGES", "BYTES"]);
    for (role, n) in counts {
        table.row(vec![
            role.name().into(),
            n.to_string(),
            human_bytes(n * page_size),
        ]);
    }
    table.row(vec![
        "unreadable".into(),
        bad.len().to_string(),
        human_bytes(bad.len() as u64 * page_size),
    ]);
    ctx.line("\npages by type")?;
    ctx.line(table.render())?;
    let mut headers = vec!["TREE", "WHAT", "LEAVES"];
    headers.extend(decile_header());
    headers.push("MEAN");
    let mut fill = Table::new(&headers);
    for t in &w.trees {
        let mut row = vec![
            t.name.clone(),
            clip(&w.describe(&t.name), 36),
            t.leaf_pages.to_string(),
        ];
        row.extend(t.leaf_fill.iter().map(|n| n.to_string()));
        row.push(percent(t.fill(w.page_size), 1.0));
        fill.row(row);
    }
    ctx.line("fill factor per tree (leaf pages by fill; MEAN over leaves and branches)")?;
    ctx.line(fill.render())?;
    report_problems(ctx, w)
}

fn report_problems(ctx: &mut Ctx<'_>, w: &Walk) -> Res<()> {
    if w.problems.is_empty() {
        ctx.line("problems: none")?;
    } else {
        ctx.line(format!("problems: {}", w.problems.len()))?;
        for p in &w.problems {
            ctx.line(format!("  {p}"))?;
        }
    }
    Ok(())
}

fn finish(ctx: &mut Ctx<'_>, path: &Path, w: &Walk) -> Res<i32> {
    for p in &w.problems {
        ctx.damage(format!("{}: {p}", path.display()));
    }
    Ok(if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    })
}
