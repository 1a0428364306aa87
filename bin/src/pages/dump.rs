//! `aedb pages dump`: one page, its header field by field, the verifier's verdict, its role
//! now, and the layout of its type.

use std::fmt::Write as _;

use aedb_pager::alloc::{decode_freelist_page, freelist_ids_per_page, RawFreelistHeader};
use aedb_pager::btree::node::{slot_offset, usable_bytes, LeafValue, NodeRef, RawNodeHeader};
use aedb_pager::meta::{Meta, RawMeta};
use aedb_pager::overflow::{data_per_page, RawOverflowHeader};
use aedb_pager::page::{self, PageId, PageType, RawHeader};
use serde_json::{json, Value as Json};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile};
use crate::util::{
    clip, fmt_tree_key, key_values, percent, CliError, Ctx, Res, Table, EXIT_FOUND, EXIT_OK,
};
use crate::walk::{walk, PageInfo, Role};

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
    /// The common header as stored (decoded whether or not the page verifies).
    raw: RawHeader,
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
    // `df.page` reads whole pages, so this is only a guard against a buffer without a header.
    let raw = RawHeader::parse(&buf)
        .ok_or_else(|| CliError::at(&df.path, format!("page {id} is shorter than its header")))?;
    let mut view = PageView {
        id,
        page_size,
        verdict: page::verify(&buf, id).map_err(|e| e.to_string()),
        raw,
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
    let raw = &v.raw;
    let id_now = raw.page_id;
    let mut header = vec![
        (
            "checksum",
            if raw.checksum_ok() {
                format!("valid ({:#010x})", raw.stored_crc)
            } else {
                format!(
                    "INVALID: stored {:#010x}, computed {:#010x}",
                    raw.stored_crc, raw.computed_crc
                )
            },
        ),
        (
            "type",
            format!(
                "{} ({})",
                raw.type_byte,
                raw.page_type()
                    .map_or("unknown".to_string(), |k| format!("{k:?}").to_lowercase())
            ),
        ),
        ("reserved", format!("0x{}", hex::encode(raw.reserved))),
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
        ("written at seq", raw.seq.to_string()),
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
    let body = match v.raw.page_type() {
        Some(PageType::Meta) => {
            let Some(raw) = RawMeta::parse(buf) else {
                return short_body("meta");
            };
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
            let Some(RawOverflowHeader { next, used }) = RawOverflowHeader::parse(buf) else {
                return short_body("overflow");
            };
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
            let Some(RawFreelistHeader { next, count }) = RawFreelistHeader::parse(buf) else {
                return short_body("free-list");
            };
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
                "capacity": freelist_ids_per_page(page_size)})
        }
        None => {
            let _ = writeln!(text, "(unknown page type: no layout to decode)");
            Json::Null
        }
    };
    (text, body)
}

/// The body of a page too short for its type's header (`df.page` reads whole pages, so only a
/// guard).
fn short_body(kind: &str) -> (String, Json) {
    let text = format!("(shorter than a {kind} page header: no layout to decode)\n");
    (text, Json::Null)
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
        "checksum_valid": v.raw.checksum_ok(),
        "stored_crc": v.raw.stored_crc,
        "computed_crc": v.raw.computed_crc,
        "type": v.raw.type_byte,
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
    let Some(header) = RawNodeHeader::parse(buf) else {
        return short_body("node");
    };
    let count = header.count as usize;
    let (cell_start, fragmented) = (header.cell_start, header.fragmented);
    let slots_end = header.slots_end();
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
        // A checked view's slots all lie inside the page: the offset is always there.
        let offset = slot_offset(buf, i).unwrap_or_default();
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
