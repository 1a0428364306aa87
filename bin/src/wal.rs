//! `aedb wal dump`: every segment and frame of the log, as the log's own inspection reads and
//! verifies it (`aedb_wal::inspect`: CRC, LSN order, hash chain, HMAC when a key is given),
//! with the effects each commit carries; then where the valid log ends and why, as recovery
//! (`aedb_wal::scan`) sees it.

use std::collections::HashMap;
use std::path::Path;

use aedb::catalog::namespace::{decode_entry, parse_catalog_key, CatalogKey, CATALOG_TREE};
use aedb::catalog::schema::TableSchema;
use aedb_pager::io::{os_vfs, IoBackendChoice};
use aedb_wal::frame::{Check, FrameProblem};
use aedb_wal::inspect::{self, End, FrameReport, SegmentReport};
use aedb_wal::{decode_record, scan, Integrity, RecoveryMode, WalOp};
use serde_json::{json, Value as Json};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, wal_dir, DataFile};
use crate::util::{
    clip, describe_tree, fmt_tree_key, key_values, CliError, Ctx, Res, Table, EXIT_FOUND, EXIT_OK,
};
use crate::walk::catalog_tables;

fn check_name(check: Check) -> &'static str {
    match check {
        Check::Absent => "-",
        Check::Ok => "ok",
        Check::Mismatch => "MISMATCH",
        Check::Unverified => "unverified",
    }
}

/// An effect of a commit. Values are kept only for the catalog (to name tables); for the rest
/// only their length is, so that a long log does not have to fit in memory.
#[derive(Debug, Clone)]
pub struct Effect {
    pub op: WalOp,
    pub value_len: usize,
}

fn effects(payload: &[u8]) -> Result<Vec<Effect>, String> {
    let ops = decode_record(payload).map_err(|e| e.to_string())?;
    Ok(ops
        .into_iter()
        .map(|op| match op {
            WalOp::Put { tree, key, value } if tree != CATALOG_TREE => Effect {
                value_len: value.len(),
                op: WalOp::Put {
                    tree,
                    key,
                    value: Vec::new(),
                },
            },
            WalOp::Put { tree, key, value } => Effect {
                value_len: value.len(),
                op: WalOp::Put { tree, key, value },
            },
            other => Effect {
                op: other,
                value_len: 0,
            },
        })
        .collect())
}

/// A frame as inspected (its payload dropped) and the effects it carries.
#[derive(Debug)]
pub struct FrameInfo {
    pub frame: FrameReport,
    pub ops: Result<Vec<Effect>, String>,
}

/// A segment as inspected, its frames with their effects.
#[derive(Debug)]
pub struct SegInfo {
    pub segment: SegmentReport,
    pub frames: Vec<FrameInfo>,
}

#[derive(Debug, Default)]
pub struct Analysis {
    pub segments: Vec<SegInfo>,
    /// Damage a crash cannot explain (a cut-off segment, a broken chain or HMAC, a lost
    /// durable frame).
    pub damage: Vec<String>,
    /// Problems reading the directory or a file.
    pub errors: Vec<String>,
}

/// Read and verify every segment.
pub fn analyse(dir: &Path, key: Option<[u8; 32]>) -> Analysis {
    let mut analysis = Analysis::default();
    let segments = os_vfs(IoBackendChoice::Sync)
        .map_err(|e| e.to_string())
        .and_then(|vfs| {
            let reports =
                inspect::segments(&*vfs, &wal_dir(dir), key).map_err(|e| e.to_string())?;
            Ok(reports.collect::<Vec<_>>())
        });
    let segments = match segments {
        Ok(s) => s,
        Err(e) => {
            analysis.errors.push(e);
            return analysis;
        }
    };
    let count = segments.len();
    for (index, segment) in segments.into_iter().enumerate() {
        let mut segment = match segment {
            Ok(s) => s,
            Err((path, e)) => {
                analysis.errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        analysis
            .damage
            .extend(segment_damage(&segment, index + 1 < count));
        let frames = std::mem::take(&mut segment.frames)
            .into_iter()
            .map(|mut frame| FrameInfo {
                ops: match frame.crc_ok {
                    true => effects(&std::mem::take(&mut frame.payload)),
                    false => Err("not decoded: the frame does not verify".into()),
                },
                frame,
            })
            .collect();
        analysis.segments.push(SegInfo { segment, frames });
    }
    analysis
}

/// Damage in a segment a crash cannot explain. `later`: segments follow it.
fn segment_damage(seg: &SegmentReport, later: bool) -> Vec<String> {
    let mut damage = Vec::new();
    let p = seg.path.display().to_string();
    match &seg.header {
        Err(reason) if later => damage.push(format!("{p}: segment header is invalid: {reason}")),
        Ok(h) if h.number != seg.number => damage.push(format!(
            "{p}: the header names segment {}, the file name {}",
            h.number, seg.number
        )),
        _ => {}
    }
    for f in &seg.frames {
        let (lsn, offset) = (f.header.lsn, f.offset);
        if f.chain == Check::Mismatch {
            damage.push(format!(
                "{p}: frame LSN {lsn} at offset {offset}: the hash chain does not verify (altered)"
            ));
        }
        if f.hmac == Check::Mismatch {
            damage.push(format!(
                "{p}: frame LSN {lsn} at offset {offset}: the HMAC does not verify (altered, or a \
                 wrong key)"
            ));
        }
    }
    match &seg.end {
        Some(end @ End::Truncated { .. }) => damage.push(format!(
            "{p}: {}; segments are preallocated before any frame is written, so a crash cannot \
             cut one short: the file was truncated",
            end_text(end)
        )),
        Some(End::Bad { offset, .. }) => {
            if let Some(later) = seg.durable_evidence() {
                damage.push(format!(
                    "{p}: offset {offset}: {}; frame LSN {} at offset {} says LSN {} had been \
                     made durable",
                    bad_reason(seg.end.as_ref()),
                    later.header.lsn,
                    later.offset,
                    seg.missing_lsn()
                ));
            }
        }
        _ => {}
    }
    damage
}

/// Why a segment's frames end badly.
fn bad_reason(end: Option<&End>) -> String {
    match end {
        Some(End::Bad {
            problem: FrameProblem::NoFrame,
            ..
        }) => "no frame magic, and the bytes are not zeros (a torn write?)".into(),
        Some(End::Bad {
            problem: problem @ FrameProblem::Checksum,
            lsn: Some(lsn),
            ..
        }) => format!("frame LSN {lsn} fails its CRC ({problem:?})"),
        Some(End::Bad { problem, .. }) => format!("{problem:?}"),
        _ => String::new(),
    }
}

/// How a segment's frames end, in words.
fn end_text(end: &End) -> String {
    match end {
        End::Zeros { offset } => {
            format!("frames end at offset {offset}; zeros follow (preallocated space)")
        }
        End::FileEnd { offset } => format!("frames fill the file up to its end ({offset})"),
        End::Truncated {
            offset,
            lsn,
            needed,
            available,
        } => format!(
            "TRUNCATED: the frame at offset {offset}{} needs {needed} bytes, the file ends \
             {available} bytes after its start",
            lsn.map(|l| format!(" (LSN {l})")).unwrap_or_default()
        ),
        End::Bad { offset, .. } => {
            format!(
                "no valid frame at offset {offset}: {}",
                bad_reason(Some(end))
            )
        }
    }
}

fn op_text(effect: &Effect, tables: &HashMap<u64, TableSchema>) -> String {
    let what = |tree: &str| {
        let d = describe_tree(tree, tables);
        if d.is_empty() {
            tree.to_string()
        } else {
            format!("{tree} [{d}]")
        }
    };
    match &effect.op {
        WalOp::Put { tree, key, .. } => format!(
            "put    {} key {} ({} bytes)",
            what(tree),
            clip(&fmt_tree_key(tree, key), 80),
            effect.value_len
        ),
        WalOp::Delete { tree, key } => format!(
            "delete {} key {}",
            what(tree),
            clip(&fmt_tree_key(tree, key), 80)
        ),
        WalOp::CreateTree { tree } => format!("create tree {}", what(tree)),
        WalOp::DropTree { tree } => format!("drop tree {}", what(tree)),
    }
}

fn op_json(effect: &Effect) -> Json {
    match &effect.op {
        WalOp::Put { tree, key, .. } => json!({
            "op": "put", "tree": tree, "key": fmt_tree_key(tree, key), "value_bytes": effect.value_len
        }),
        WalOp::Delete { tree, key } => {
            json!({"op": "delete", "tree": tree, "key": fmt_tree_key(tree, key)})
        }
        WalOp::CreateTree { tree } => json!({"op": "create_tree", "tree": tree}),
        WalOp::DropTree { tree } => json!({"op": "drop_tree", "tree": tree}),
    }
}

/// Learn table schemas written by the log itself (tables created after the checkpoint).
fn learn_tables(ops: &[Effect], tables: &mut HashMap<u64, TableSchema>) {
    for effect in ops {
        if let WalOp::Put { tree, key, value } = &effect.op {
            let table = matches!(parse_catalog_key(key), CatalogKey::Table { .. });
            if tree == CATALOG_TREE && table {
                if let Ok(schema) = decode_entry::<TableSchema>(value) {
                    tables.insert(schema.table_id, schema);
                }
            }
        }
    }
}

/// What `wal dump` shows: the log as inspected, what the checkpoint covers, and recovery's
/// verdict.
struct WalReport {
    analysis: Analysis,
    /// The LSN the newest checkpoint covers (unknown without a valid meta page).
    covered: Option<u64>,
    verdict: String,
    damage: Vec<String>,
    /// Tables by id, from the checkpoint's catalog (the log's are learnt as frames are shown).
    tables: HashMap<u64, TableSchema>,
}

/// Which frames `wal dump` shows and how much of each.
struct Shown {
    from_lsn: u64,
    to_lsn: Option<u64>,
    no_effects: bool,
    max_ops: usize,
}

impl Shown {
    fn lsn(&self, lsn: u64) -> bool {
        lsn >= self.from_lsn && self.to_lsn.is_none_or(|to| lsn <= to)
    }
}

pub fn dump(
    ctx: &mut Ctx<'_>,
    db: &DbArgs,
    from_lsn: u64,
    to_lsn: Option<u64>,
    no_effects: bool,
    max_ops: usize,
) -> Res<i32> {
    let mut report = read(ctx, db)?;
    let shown = Shown {
        from_lsn,
        to_lsn,
        no_effects,
        max_ops,
    };
    if ctx.json {
        render_json(ctx, &db.data_dir, &mut report, &shown)?;
    } else {
        render_text(ctx, &db.data_dir, &mut report, &shown)?;
    }
    for line in report.damage {
        ctx.damage(line);
    }
    Ok(if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    })
}

/// The log inspected, and recovery's verdict on it in the chosen mode.
fn read(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<WalReport> {
    let dir = db.data_dir.as_path();
    let config = db.config()?;
    let df = DataFile::open(dir)?;
    let metas = read_metas(&df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    let tables = match metas.current {
        Some(m) => catalog_tables(&df.pool(m.page_size as usize)?, &m),
        None => Default::default(),
    };
    let analysis = analyse(dir, config.hmac_key);
    if let Some(e) = analysis.errors.first() {
        return Err(CliError::new(e.clone()));
    }
    let covered = metas.current.map(|m| m.wal_position);
    let after_lsn = covered.unwrap_or_else(|| {
        analysis
            .segments
            .iter()
            .find_map(|s| {
                let header = s.segment.header.as_ref().ok();
                header.map(|h| h.first_lsn.saturating_sub(1))
            })
            .unwrap_or(0)
    });
    let vfs = os_vfs(IoBackendChoice::Sync).map_err(|e| CliError::new(e.to_string()))?;
    let integrity = Integrity {
        hash_chain: config.hash_chain_required,
        hmac_key: config.hmac_key,
    };
    let mode = config.recovery_mode;
    let outcome = scan(&*vfs, &wal_dir(dir), after_lsn, &integrity, mode, |_, _| {
        Ok(())
    });
    let mode_name = match mode {
        RecoveryMode::Strict => "strict",
        RecoveryMode::Permissive => "permissive",
    };
    let mut damage = analysis.damage.clone();
    let verdict = match &outcome {
        Ok(outcome) => {
            let mut text = format!(
                "{mode_name} recovery accepts the log: redo would apply {} frames after LSN \
                 {after_lsn}; the valid log ends at LSN {}",
                outcome.frames_replayed, outcome.last_lsn
            );
            if let Some(dropped) = &outcome.dropped {
                text.push_str(&format!("; it ends early: {dropped}"));
                if outcome.last_lsn < after_lsn {
                    text.push_str(&format!(
                        " (the checkpoint covers up to LSN {after_lsn}: no commit is lost)"
                    ));
                }
            }
            if !outcome.stale.is_empty() {
                text.push_str(&format!(
                    "; {} segment(s) after the end hold nothing durable",
                    outcome.stale.len()
                ));
            }
            text
        }
        Err(err) => {
            let keyless = config.hmac_key.is_none()
                && analysis
                    .segments
                    .iter()
                    .flat_map(|s| &s.frames)
                    .any(|f| f.frame.crc_ok && f.frame.hmac == Check::Unverified);
            if keyless {
                damage.push(
                    "cannot verify the log: its frames carry an HMAC and no key was given \
                     (--hmac-key-hex)"
                        .into(),
                );
            } else {
                damage.push(format!("{mode_name} recovery refuses the log: {err}"));
            }
            format!("{mode_name} recovery REFUSES the log: {err}")
        }
    };
    Ok(WalReport {
        analysis,
        covered,
        verdict,
        damage,
        tables,
    })
}

fn render_json(ctx: &mut Ctx<'_>, dir: &Path, report: &mut WalReport, shown: &Shown) -> Res<()> {
    let covered = report.covered;
    let mut segments = Vec::new();
    for s in &report.analysis.segments {
        let mut frames = Vec::new();
        for f in s.frames.iter().filter(|f| shown.lsn(f.frame.header.lsn)) {
            learn_tables(f.ops.as_deref().unwrap_or(&[]), &mut report.tables);
            let h = &f.frame.header;
            frames.push(json!({
                "offset": f.frame.offset,
                "lsn": h.lsn,
                "seq": h.seq,
                "synced_through": h.synced_through,
                "bytes": f.frame.total,
                "payload_bytes": h.len,
                "crc": if f.frame.crc_ok { "ok" } else { "MISMATCH" },
                "lsn_in_order": f.frame.lsn_ok,
                "chain": check_name(f.frame.chain),
                "hmac": check_name(f.frame.hmac),
                "covered_by_checkpoint": covered.is_some_and(|c| h.lsn <= c),
                "effects": match (&f.ops, shown.no_effects) {
                    (_, true) => Json::Null,
                    (Ok(ops), false) => Json::Array(ops.iter().map(op_json).collect()),
                    (Err(e), false) => json!({"error": e}),
                },
            }));
        }
        let seg = &s.segment;
        segments.push(json!({
            "number": seg.number,
            "path": seg.path.display().to_string(),
            "bytes": seg.len,
            "header": match &seg.header {
                Ok(h) => json!({"ok": true, "number": h.number, "first_lsn": h.first_lsn}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            },
            "frames": frames,
            "end": seg.end.as_ref().map(end_text),
            "frames_after_end": seg.later.iter().map(|l| json!({
                "offset": l.offset, "lsn": l.header.lsn, "synced_through": l.header.synced_through
            })).collect::<Vec<_>>(),
        }));
    }
    ctx.print_json(&json!({
        "wal_dir": wal_dir(dir).display().to_string(),
        "checkpoint_covers_lsn": covered,
        "segments": segments,
        "verdict": report.verdict,
        "damage": report.damage,
    }))
}

fn render_text(ctx: &mut Ctx<'_>, dir: &Path, report: &mut WalReport, shown: &Shown) -> Res<()> {
    let segments = &report.analysis.segments;
    let total_frames: usize = segments.iter().map(|s| s.frames.len()).sum();
    ctx.line(key_values(&[
        ("wal directory", wal_dir(dir).display().to_string()),
        ("segments", segments.len().to_string()),
        ("frames", total_frames.to_string()),
        (
            "checkpoint",
            match report.covered {
                Some(c) => format!("covers LSN <= {c} (redo starts after it)"),
                None => "unknown (no valid meta page)".into(),
            },
        ),
    ]))?;
    for s in segments {
        let seg = &s.segment;
        let header = match &seg.header {
            Ok(h) => format!("first LSN {}", h.first_lsn),
            Err(e) => format!("HEADER INVALID: {e}"),
        };
        ctx.line(format!(
            "\nsegment {}  {}  {} bytes  {header}",
            seg.number,
            seg.path.display(),
            seg.len
        ))?;
        let table = frame_table(s, report.covered, &mut report.tables, shown);
        if !table.is_empty() {
            for line in table.render().lines() {
                ctx.line(format!("  {line}"))?;
            }
        }
        if let Some(end) = &seg.end {
            ctx.line(format!("  end: {}", end_text(end)))?;
        }
        for l in &seg.later {
            ctx.line(format!(
                "  after the end: a frame with a valid CRC at offset {} (LSN {}, synced \
                 through {})",
                l.offset, l.header.lsn, l.header.synced_through
            ))?;
        }
    }
    ctx.line(format!("verdict: {}", report.verdict))?;
    if report.damage.is_empty() {
        ctx.line("damage: none")?;
    }
    Ok(())
}

/// A segment's shown frames, one row each, their effects under them.
fn frame_table(
    s: &SegInfo,
    covered: Option<u64>,
    tables: &mut HashMap<u64, TableSchema>,
    shown: &Shown,
) -> Table {
    let mut table = Table::new(&[
        "LSN", "SEQ", "OFFSET", "BYTES", "SYNCED", "CRC", "CHAIN", "HMAC", "NOTE",
    ]);
    for f in s.frames.iter().filter(|f| shown.lsn(f.frame.header.lsn)) {
        let (frame, h) = (&f.frame, &f.frame.header);
        let ops = f.ops.as_deref().unwrap_or(&[]);
        learn_tables(ops, tables);
        let mut note = Vec::new();
        if covered.is_some_and(|c| h.lsn <= c) {
            note.push("checkpointed".to_string());
        }
        if !frame.lsn_ok {
            note.push("LSN OUT OF ORDER".into());
        }
        match &f.ops {
            Ok(ops) => note.push(format!("{} effects", ops.len())),
            Err(e) => note.push(e.clone()),
        }
        table.row(vec![
            h.lsn.to_string(),
            h.seq.to_string(),
            frame.offset.to_string(),
            frame.total.to_string(),
            h.synced_through.to_string(),
            if frame.crc_ok { "ok" } else { "MISMATCH" }.into(),
            check_name(frame.chain).into(),
            check_name(frame.hmac).into(),
            note.join(", "),
        ]);
        if !shown.no_effects {
            for op in ops.iter().take(shown.max_ops) {
                table.note(op_text(op, tables));
            }
            if ops.len() > shown.max_ops {
                table.note(format!("… {} more (--max-ops)", ops.len() - shown.max_ops));
            }
        }
    }
    table
}
