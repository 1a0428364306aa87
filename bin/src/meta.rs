//! `aedb meta`: both meta pages field by field, their verdicts, and which one opening uses.

use aedb_pager::page::PageType;
use serde_json::{json, Value as Json};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile, RawSlot, Slot};
use crate::util::{Ctx, Res, Table, EXIT_FOUND, EXIT_OK};

fn raw_json(raw: &RawSlot) -> Json {
    let (h, m) = (&raw.header, &raw.meta);
    json!({
        "stored_crc": format!("{:#010x}", h.stored_crc),
        "computed_crc": format!("{:#010x}", h.computed_crc),
        "type": h.type_byte,
        "page_id": h.page_id,
        "header_seq": h.seq,
        "magic": String::from_utf8_lossy(&m.magic),
        "format_version": m.version,
        "page_size": m.page_size,
        "generation": m.generation,
        "seq": m.seq,
        "root": m.root,
        "freelist_root": m.freelist_root,
        "freelist_len": m.freelist_len,
        "page_count": m.page_count,
        "wal_position": m.wal_position,
        "tree_count": m.tree_count,
        "all_zero": raw.all_zero,
    })
}

fn fields(slot: &Slot) -> Vec<String> {
    let Some(RawSlot {
        header: h, meta: r, ..
    }) = &slot.raw
    else {
        return vec!["(beyond the end of the file)".into(); 16];
    };
    let magic: String = r
        .magic
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    vec![
        if h.checksum_ok() {
            format!("ok {:#010x}", h.stored_crc)
        } else {
            format!(
                "MISMATCH stored {:#010x}, computed {:#010x}",
                h.stored_crc, h.computed_crc
            )
        },
        format!(
            "{}{}",
            h.type_byte,
            if h.page_type() == Some(PageType::Meta) {
                " (meta)"
            } else {
                " (not meta)"
            }
        ),
        h.page_id.to_string(),
        h.seq.to_string(),
        format!("{magic}{}", if r.magic_ok() { "" } else { " (bad)" }),
        r.version.to_string(),
        r.page_size.to_string(),
        r.generation.to_string(),
        r.seq.to_string(),
        r.root.to_string(),
        r.freelist_root.to_string(),
        r.freelist_len.to_string(),
        r.page_count.to_string(),
        r.wal_position.to_string(),
        r.tree_count.to_string(),
        match &slot.verdict {
            Ok(_) => "valid".into(),
            Err(e) => format!("INVALID: {e}"),
        },
    ]
}

pub fn run(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<i32> {
    let df = DataFile::open(&db.data_dir)?;
    let state = read_metas(&df)?;
    let damage = state.damage(&df.path);
    if ctx.json {
        let slots: Vec<Json> = state
            .slots
            .iter()
            .map(|s| {
                json!({
                    "slot": s.slot,
                    "fields": s.raw.as_ref().map(raw_json),
                    "valid": s.verdict.is_ok(),
                    "error": s.verdict.as_ref().err(),
                })
            })
            .collect();
        ctx.print_json(&json!({
            "data_file": df.path.display().to_string(),
            "file_bytes": df.len,
            "page_size": state.page_size,
            "page_size_known": state.page_size_known,
            "slots": slots,
            "current": state.current.map(|m| m.slot()),
            "why": state.why,
            "damage": damage,
        }))?;
    } else {
        ctx.line(format!(
            "data file {} ({} bytes), page size {}{}",
            df.path.display(),
            df.len,
            state.page_size,
            if state.page_size_known {
                ""
            } else {
                " (a guess: no meta page is valid)"
            }
        ))?;
        let names = [
            "checksum",
            "page type",
            "page id",
            "header seq",
            "magic",
            "format version",
            "page size",
            "generation",
            "commit seq",
            "tree-of-trees root",
            "free-list root",
            "free-list ids",
            "page count",
            "WAL position",
            "trees",
            "verdict",
        ];
        let a = fields(&state.slots[0]);
        let b = fields(&state.slots[1]);
        let mut table = Table::new(&["FIELD", "PAGE 0", "PAGE 1"]);
        for (i, name) in names.iter().enumerate() {
            table.row(vec![name.to_string(), a[i].clone(), b[i].clone()]);
        }
        ctx.line(table.render().trim_end())?;
        match state.current {
            Some(m) => ctx.line(format!("current: page {} — {}", m.slot(), state.why))?,
            None => ctx.line(format!("current: none — {}", state.why))?,
        }
    }
    for line in damage {
        ctx.damage(line);
    }
    Ok(if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    })
}
