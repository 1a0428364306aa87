//! `aedb pages stat|dump|map`: the data file page by page, as of its current meta page.

use std::fmt::Write as _;
use std::path::Path;

use aedb_pager::alloc::{decode_freelist_page, FREELIST_HEADER_BYTES};
use aedb_pager::btree::node::{usable_bytes, LeafValue, NodeRef, NODE_HEADER_BYTES, SLOT_BYTES};
use aedb_pager::meta::Meta;
use aedb_pager::overflow::data_per_page;
use aedb_pager::page::{self, read_u16, read_u32, read_u64, PageId, PageType};
use serde_json::{json, Value as Json};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile, RawMeta};
use crate::util::{
    clip, fmt_tree_key, human_bytes, key_values, percent, CliError, Ctx, Res, Table, EXIT_FOUND,
    EXIT_OK,
};
use crate::walk::{walk, PageInfo, Role, Walk};

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

/// Which tree owns page `id` (a walk of the node pages; None when no tree reaches it).
fn owner_of(df: &DataFile, meta: &Meta, id: PageId) -> Option<(String, Role)> {
    let w = walk(df, meta, &crate::util::Progress::hidden()).ok()?;
    let info: PageInfo = *w.pages.get(id as usize)?;
    match info.role {
        Role::Branch | Role::Leaf | Role::Overflow => {
            w.tree_name(&info).map(|n| (n.to_string(), info.role))
        }
        role => Some((String::new(), role)),
    }
}

/// One page as `pages dump` shows it.
struct PageView {
    id: PageId,
    page_size: usize,
    buf: Vec<u8>,
    verdict: Result<PageType, String>,
    stored: u32,
    computed: u32,
    type_byte: u8,
    /// The tree of the page, when a tree reaches it.
    owner: String,
    /// The page's role now, when known.
    role: Option<Role>,
    /// The common header, field by field.
    header: Vec<(&'static str, String)>,
    /// The layout of its type.
    body: (String, Json),
}

pub fn dump(ctx: &mut Ctx<'_>, db: &DbArgs, id: PageId, with_hex: bool) -> Res<i32> {
    let df = DataFile::open(&db.data_dir)?;
    let view = read_page(ctx, db, &df, id)?;
    if ctx.json {
        render_page_json(ctx, &view, with_hex)?;
    } else {
        render_page_text(ctx, &df, &view, with_hex)?;
    }
    // A free page holds no data: the engine never writes one back once freed (a checkpoint
    // writes only pages its version reaches), so whatever bytes it has are not damage.
    let free = matches!(view.role, Some(Role::Free));
    if let (Err(e), false) = (&view.verdict, free) {
        ctx.damage(format!("{}: page {id}: {e}", df.path.display()));
    }
    Ok(if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    })
}

/// Page `id` read, verified and decoded, with its role from a walk of the file.
fn read_page(ctx: &mut Ctx<'_>, db: &DbArgs, df: &DataFile, id: PageId) -> Res<PageView> {
    let metas = read_metas(df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    let page_size = metas.page_size as usize;
    let buf = df.page(id, page_size).map_err(|e| {
        e.hint(format!(
            "`aedb pages stat --data-dir {}` gives the page count",
            db.data_dir.display()
        ))
    })?;
    let (owner, role) = match (metas.current, id) {
        (_, 0 | 1) => (String::new(), Some(Role::Meta)),
        (Some(meta), _) => match owner_of(df, &meta, id) {
            Some((tree, role)) => (tree, Some(role)),
            None => (String::new(), None),
        },
        (None, _) => (String::new(), None),
    };
    let mut view = PageView {
        id,
        page_size,
        verdict: page::verify(&buf, id).map_err(|e| e.to_string()),
        stored: read_u32(&buf, 0),
        computed: crc32fast::hash(&buf[4..]),
        type_byte: page::page_type_byte(&buf),
        owner,
        role,
        header: Vec::new(),
        body: (String::new(), Json::Null),
        buf,
    };
    view.header = header_fields(&view);
    let page_count = metas.current.map_or(u64::MAX, |m| m.page_count);
    view.body = page_body(&view, page_count);
    Ok(view)
}

/// The common page header, field by field, the verifier's verdict and the role now.
fn header_fields(v: &PageView) -> Vec<(&'static str, String)> {
    let kind = PageType::from_byte(v.type_byte);
    let id_now = page::page_id(&v.buf);
    let mut header = vec![
        (
            "checksum",
            if v.stored == v.computed {
                format!("valid ({:#010x})", v.stored)
            } else {
                format!(
                    "INVALID: stored {:#010x}, computed {:#010x}",
                    v.stored, v.computed
                )
            },
        ),
        (
            "type",
            format!(
                "{} ({})",
                v.type_byte,
                kind.map_or("unknown".to_string(), |k| format!("{k:?}").to_lowercase())
            ),
        ),
        ("reserved", format!("0x{}", hex::encode(&v.buf[5..8]))),
        (
            "page id",
            format!(
                "{id_now}{}",
                if id_now == v.id {
                    ""
                } else {
                    " (MISDIRECTED: not this page's number)"
                }
            ),
        ),
        ("written at seq", page::page_seq(&v.buf).to_string()),
        (
            "verdict",
            match &v.verdict {
                Ok(_) => "verifies".into(),
                Err(e) => format!("DOES NOT VERIFY: {e}"),
            },
        ),
    ];
    if let Some(role) = v.role {
        let role_text = if v.owner.is_empty() {
            role.name().to_string()
        } else {
            format!("{} of tree {}", role.name(), v.owner)
        };
        header.push(("role now", role_text));
    }
    header
}

/// The layout of the page's type, as text and as JSON.
fn page_body(v: &PageView, page_count: u64) -> (String, Json) {
    let (buf, page_size) = (&v.buf[..], v.page_size);
    let mut text = String::new();
    let body = match PageType::from_byte(v.type_byte) {
        Some(PageType::Meta) => {
            let raw = RawMeta::read(buf);
            let _ = writeln!(
                text,
                "{}",
                key_values(&[
                    ("magic", String::from_utf8_lossy(&raw.magic).into_owned()),
                    ("format version", raw.version.to_string()),
                    ("page size", raw.page_size.to_string()),
                    ("generation", raw.generation.to_string()),
                    ("commit seq", raw.seq.to_string()),
                    ("tree-of-trees root", raw.root.to_string()),
                    ("free-list root", raw.freelist_root.to_string()),
                    ("free-list ids", raw.freelist_len.to_string()),
                    ("page count", raw.page_count.to_string()),
                    ("WAL position", raw.wal_position.to_string()),
                    ("trees", raw.tree_count.to_string()),
                ])
            );
            json!({"generation": raw.generation, "seq": raw.seq, "root": raw.root,
                "freelist_root": raw.freelist_root, "freelist_len": raw.freelist_len,
                "page_count": raw.page_count, "wal_position": raw.wal_position,
                "tree_count": raw.tree_count, "page_size": raw.page_size})
        }
        Some(PageType::Branch | PageType::Leaf) => {
            return node_body(buf, v.id, page_size, &v.owner)
        }
        Some(PageType::Overflow) => {
            let next = read_u64(buf, 24);
            let used = read_u32(buf, 32);
            let _ = writeln!(
                text,
                "{}",
                key_values(&[
                    ("next page", next.to_string()),
                    (
                        "data bytes",
                        format!(
                            "{used} of {} ({})",
                            data_per_page(page_size),
                            percent(used as f64, data_per_page(page_size) as f64)
                        ),
                    ),
                ])
            );
            json!({"next": next, "data_bytes": used})
        }
        Some(PageType::FreeList) => {
            let next = read_u64(buf, 24);
            let count = read_u32(buf, 32);
            let ids = decode_freelist_page(buf, v.id, page_count)
                .map(|(ids, _)| ids)
                .map_err(|e| e.to_string());
            let _ = writeln!(text, "next free-list page  {next}");
            let _ = writeln!(text, "ids                  {count}");
            match &ids {
                Ok(ids) => {
                    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                    let _ = writeln!(text, "free pages           {}", list.join(" "));
                }
                Err(e) => {
                    let _ = writeln!(text, "free pages           cannot decode: {e}");
                }
            }
            json!({"next": next, "count": count, "ids": ids.ok(),
                "capacity": (page_size - FREELIST_HEADER_BYTES) / 8})
        }
        None => {
            let _ = writeln!(text, "(unknown page type: no layout to decode)");
            Json::Null
        }
    };
    (text, body)
}

fn render_page_json(ctx: &mut Ctx<'_>, v: &PageView, with_hex: bool) -> Res<()> {
    let mut fields = serde_json::Map::new();
    for (k, value) in &v.header {
        fields.insert(k.replace(' ', "_"), json!(value));
    }
    ctx.print_json(&json!({
        "page": v.id,
        "page_size": v.page_size,
        "offset": v.id * v.page_size as u64,
        "checksum_valid": v.stored == v.computed,
        "stored_crc": v.stored,
        "computed_crc": v.computed,
        "type": v.type_byte,
        "header": fields,
        "body": v.body.1,
        "owner": v.owner,
        "error": v.verdict.as_ref().err(),
        "hex": if with_hex { json!(hex::encode(&v.buf)) } else { Json::Null },
    }))
}

fn render_page_text(ctx: &mut Ctx<'_>, df: &DataFile, v: &PageView, with_hex: bool) -> Res<()> {
    ctx.line(format!(
        "page {} of {} (offset {}, {} bytes)",
        v.id,
        df.path.display(),
        v.id * v.page_size as u64,
        v.page_size
    ))?;
    ctx.line(key_values(&v.header))?;
    ctx.line("")?;
    ctx.line(v.body.0.trim_end())?;
    if with_hex {
        ctx.line("")?;
        ctx.line(hexdump(&v.buf))?;
    }
    Ok(())
}

/// A B+tree node's header and cells, decoded defensively.
fn node_body(buf: &[u8], id: PageId, page_size: usize, tree: &str) -> (String, Json) {
    let mut text = String::new();
    let count = read_u16(buf, 24) as usize;
    let cell_start = read_u32(buf, 28);
    let fragmented = read_u32(buf, 32);
    let slots_end = NODE_HEADER_BYTES + count * SLOT_BYTES;
    let _ = writeln!(
        text,
        "{}",
        key_values(&[
            ("cells", count.to_string()),
            ("cell area start", cell_start.to_string()),
            ("fragmented bytes", fragmented.to_string()),
            ("slot array end", slots_end.to_string()),
            (
                "free gap",
                (cell_start as i64 - slots_end as i64).to_string()
            ),
        ])
    );
    let node = match NodeRef::new(buf, id) {
        Ok(node) => node,
        Err(e) => {
            let _ = writeln!(text, "cannot read the cells: {e}");
            return (text, json!({"cells": count, "error": e.to_string()}));
        }
    };
    let used = node.used_bytes().unwrap_or(0);
    let _ = writeln!(
        text,
        "fill              {used} of {} bytes ({})",
        usable_bytes(page_size),
        percent(used as f64, usable_bytes(page_size) as f64)
    );
    let mut cells = Vec::new();
    let mut table = if node.is_leaf() {
        Table::new(&["CELL", "OFFSET", "KEY", "VALUE"])
    } else {
        Table::new(&["CELL", "OFFSET", "KEY", "CHILD", "ENTRIES"])
    };
    for i in 0..node.len() {
        let offset = read_u16(buf, NODE_HEADER_BYTES + i * SLOT_BYTES);
        let key = match node.key(i) {
            Ok(k) => k,
            Err(e) => {
                table.row(vec![
                    i.to_string(),
                    offset.to_string(),
                    format!("ERROR: {e}"),
                ]);
                cells.push(json!({"cell": i, "offset": offset, "error": e.to_string()}));
                continue;
            }
        };
        let shown_key = if !node.is_leaf() && i == 0 && key.is_empty() {
            "(-inf)".to_string()
        } else if tree.is_empty() {
            crate::util::printable(key)
        } else {
            fmt_tree_key(tree, key)
        };
        if node.is_leaf() {
            let value = match node.leaf_value(i) {
                Ok(LeafValue::Inline(v)) => format!("{} bytes inline", v.len()),
                Ok(LeafValue::Overflow { len, first }) => {
                    format!("{len} bytes in overflow chain from page {first}")
                }
                Err(e) => format!("ERROR: {e}"),
            };
            cells.push(json!({"cell": i, "offset": offset, "key": shown_key,
                "key_hex": hex::encode(key), "value": value}));
            table.row(vec![
                i.to_string(),
                offset.to_string(),
                clip(&shown_key, 60),
                value,
            ]);
        } else {
            let (child, entries) = match (node.child(i), node.child_count(i)) {
                (Ok(c), Ok(n)) => (c.to_string(), n.to_string()),
                (Err(e), _) | (_, Err(e)) => (format!("ERROR: {e}"), String::new()),
            };
            cells.push(json!({"cell": i, "offset": offset, "key": shown_key,
                "key_hex": hex::encode(key), "child": child, "entries": entries}));
            table.row(vec![
                i.to_string(),
                offset.to_string(),
                clip(&shown_key, 60),
                child,
                entries,
            ]);
        }
    }
    text.push_str(&table.render());
    (
        text,
        json!({"cells": count, "cell_start": cell_start, "fragmented": fragmented,
            "used_bytes": used, "leaf": node.is_leaf(), "entries": cells}),
    )
}

fn hexdump(buf: &[u8]) -> String {
    let mut out = String::new();
    let mut previous_zero = false;
    for (n, chunk) in buf.chunks(16).enumerate() {
        let zero = chunk.iter().all(|b| *b == 0);
        if zero && previous_zero && (n + 1) * 16 < buf.len() {
            if !out.ends_with("*\n") {
                out.push_str("*\n");
            }
            continue;
        }
        previous_zero = zero;
        let _ = write!(out, "{:08x}  ", n * 16);
        for (i, b) in chunk.iter().enumerate() {
            let _ = write!(out, "{b:02x} ");
            if i == 7 {
                out.push(' ');
            }
        }
        out.push(' ');
        for b in chunk {
            out.push(if (0x20..0x7f).contains(b) {
                *b as char
            } else {
                '.'
            });
        }
        out.push('\n');
    }
    out
}

/// The map's character for a page: its type; lower case for nodes less than half full.
fn cell_char(info: &PageInfo) -> char {
    if info.bad {
        return '!';
    }
    let half = info.fill >= 0.0 && info.fill < 0.5;
    match info.role {
        Role::Meta => 'M',
        Role::Branch if half => 'b',
        Role::Branch => 'B',
        Role::Leaf if half => 'l',
        Role::Leaf => 'L',
        Role::Overflow if half => 'o',
        Role::Overflow => 'O',
        Role::FreeList => 'F',
        Role::Free => '.',
        Role::Leaked => '?',
        Role::Tail => '_',
        Role::Unknown => ' ',
    }
}

/// A map cell for a terminal: the character in its type's colour, bold when at least three
/// quarters full, dim when less than a quarter.
fn ansi_cell(info: &PageInfo) -> String {
    let colour = if info.bad {
        "31;7"
    } else {
        match info.role {
            Role::Meta => "37",
            Role::Branch => "34",
            Role::Leaf => "32",
            Role::Overflow => "33",
            Role::FreeList => "35",
            Role::Free => "90",
            Role::Leaked => "31",
            Role::Tail | Role::Unknown => "90",
        }
    };
    let weight = match info.fill {
        f if f >= 0.75 => ";1",
        f if (0.0..0.25).contains(&f) => ";2",
        _ => "",
    };
    format!("\x1b[{colour}{weight}m{}\x1b[0m", cell_char(info))
}

const LEGEND: &str = "legend: M meta  B branch  L leaf  O overflow (lower case: under half full)  \
    F free-list page  . free  ? leaked  ! unreadable  _ past the page count";

fn colour(info: &PageInfo) -> &'static str {
    if info.bad {
        return "#000000";
    }
    match info.role {
        Role::Meta => "#6b7280",
        Role::Branch => "#2563eb",
        Role::Leaf => "#16a34a",
        Role::Overflow => "#ea580c",
        Role::FreeList => "#9333ea",
        Role::Free => "#e5e7eb",
        Role::Leaked => "#dc2626",
        Role::Tail => "#f9fafb",
        Role::Unknown => "#ffffff",
    }
}

fn svg(w: &Walk, width: usize) -> String {
    let cell = 12usize;
    let rows = w.pages.len().div_ceil(width).max(1);
    let legend_h = 40;
    let left = 60;
    let legend_w: usize = Role::ALL
        .iter()
        .map(|r| 13 + 8 * (r.name().len() + 2))
        .sum();
    let (pw, ph) = (
        (left + width * cell).max(left + legend_w) + 10,
        rows * cell + 20 + legend_h,
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{pw}" height="{ph}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<title>aedb page map: {} pages of {} bytes</title>"#,
        w.pages.len(),
        w.page_size
    );
    for row in 0..rows {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="9" fill="#6b7280">{}</text>"##,
            left - 6,
            10 + row * cell + cell - 3,
            row * width
        );
    }
    for (id, info) in w.pages.iter().enumerate() {
        let (x, y) = (left + (id % width) * cell, 10 + (id / width) * cell);
        let opacity = if info.fill >= 0.0 {
            0.25 + 0.75 * info.fill.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let tree = w
            .tree_name(info)
            .map(|n| format!(" of {n} ({})", w.describe(n)))
            .unwrap_or_default();
        let fill = if info.fill >= 0.0 {
            format!(", {:.0}% full", info.fill * 100.0)
        } else {
            String::new()
        };
        let bad = if info.bad { " — UNREADABLE" } else { "" };
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{y}" width="{}" height="{}" fill="{}" fill-opacity="{opacity:.2}" stroke="{}" stroke-width="{}"><title>page {id}: {}{}{}{}</title></rect>"#,
            cell - 1,
            cell - 1,
            colour(info),
            if info.bad { "#dc2626" } else { "#ffffff" },
            if info.bad { 2 } else { 0 },
            info.role.name(),
            xml_escape(&tree),
            fill,
            bad
        );
    }
    let legend_y = 10 + rows * cell + 14;
    let mut x = left;
    for role in Role::ALL {
        let info = PageInfo {
            role,
            tree: 0,
            fill: -1.0,
            bad: false,
        };
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{}" width="10" height="10" fill="{}" stroke="#9ca3af"/><text x="{}" y="{legend_y}">{}</text>"##,
            legend_y - 9,
            colour(&info),
            x + 13,
            role.name()
        );
        x += 13 + 8 * (role.name().len() + 2);
    }
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="{}">fill: more opaque = fuller; black with a red border: unreadable</text>"#,
        legend_y + 16
    );
    out.push_str("</svg>\n");
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn map(ctx: &mut Ctx<'_>, db: &DbArgs, svg_path: Option<&Path>, width: u32) -> Res<i32> {
    let (df, w) = open_and_walk(ctx, db, "map")?;
    let width = width as usize;
    if let Some(path) = svg_path {
        let image = svg(&w, width);
        std::fs::write(path, image).map_err(|e| CliError::at(path, e))?;
    }
    let text: String = w.pages.iter().map(cell_char).collect();
    if ctx.json {
        ctx.print_json(&json!({
            "data_file": df.path.display().to_string(),
            "page_size": w.page_size,
            "pages": w.pages.len(),
            "map": text,
            "fill": w.pages.iter().map(|p| if p.fill >= 0.0 {
                json!((p.fill * 100.0).round() as u32)
            } else { Json::Null }).collect::<Vec<_>>(),
            "legend": LEGEND,
            "svg": svg_path.map(|p| p.display().to_string()),
            "problems": w.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        }))?;
    } else {
        ctx.line(format!(
            "{}: {} pages of {} bytes, {} per line",
            df.path.display(),
            w.pages.len(),
            w.page_size,
            width
        ))?;
        let colour = ctx.tty && std::env::var_os("NO_COLOR").is_none();
        let digits = (w.pages.len().max(1)).to_string().len();
        for (n, line) in w.pages.chunks(width).enumerate() {
            let mut row = String::new();
            for (i, group) in line.chunks(16).enumerate() {
                if i > 0 {
                    row.push(' ');
                }
                for info in group {
                    if colour {
                        row.push_str(&ansi_cell(info));
                    } else {
                        row.push(cell_char(info));
                    }
                }
            }
            ctx.line(format!("{:>digits$}  {}", n * width, row.trim_end()))?;
        }
        ctx.line(LEGEND)?;
        if let Some(path) = svg_path {
            ctx.line(format!("svg written to {}", path.display()))?;
        }
        report_problems(ctx, &w)?;
    }
    finish(ctx, &df.path, &w)
}
