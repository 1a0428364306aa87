//! `aedb wal dump`: every segment and frame of the log, verified one by one (CRC, LSN order,
//! hash chain, HMAC when a key is given), with the effects each commit carries; then where the
//! valid log ends and why, as recovery sees it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aedb::catalog::namespace::{decode_entry, CATALOG_TREE};
use aedb::catalog::schema::TableSchema;
use aedb_pager::io::{os_vfs, IoBackendChoice};
use aedb_wal::frame::{
    decode_crc_only, peek_header, FrameHeader, FrameProblem, FRAME_HEADER_BYTES, FRAME_MAGIC,
    HASH_BYTES,
};
use aedb_wal::segment::{parse_segment_name, SegmentHeader, SEGMENT_HEADER_BYTES};
use aedb_wal::{decode_record, scan, Integrity, RecoveryMode, WalOp};
use hmac::{Hmac, Mac};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, wal_dir, DataFile};
use crate::util::describe_tree;
use crate::util::{clip, fmt_tree_key, key_values, CliError, Ctx, Res, Table, EXIT_FOUND, EXIT_OK};
use crate::walk::catalog_tables;

const FLAG_CHAIN: u8 = 1;
const FLAG_HMAC: u8 = 2;
/// Frames found beyond the end of the valid log that are listed at most.
const MAX_ORPHANS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The frame carries none.
    Absent,
    Ok,
    Mismatch,
    /// Present, but no key was given to verify it.
    Unverified,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Absent => "-",
            Check::Ok => "ok",
            Check::Mismatch => "MISMATCH",
            Check::Unverified => "unverified",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FrameInfo {
    pub offset: u64,
    pub header: FrameHeader,
    pub total: usize,
    pub crc_ok: bool,
    /// LSN is the one due (previous + 1).
    pub lsn_ok: bool,
    pub chain: Check,
    pub hmac: Check,
    pub ops: Result<Vec<Effect>, String>,
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

/// How the frames of a segment end.
#[derive(Debug, Clone)]
pub enum End {
    /// Zeros (the preallocated rest of the segment): the normal end.
    Zeros { offset: u64 },
    /// The frames fill the file to its last byte.
    FileEnd { offset: u64 },
    /// A frame cut off by the end of the file.
    Truncated {
        offset: u64,
        lsn: Option<u64>,
        needed: u64,
        available: u64,
    },
    /// Bytes that are not a valid frame (a torn write, or damage).
    Bad { offset: u64, reason: String },
}

impl End {
    fn describe(&self) -> String {
        match self {
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
            End::Bad { offset, reason } => format!("no valid frame at offset {offset}: {reason}"),
        }
    }
}

/// A frame whose CRC holds, found after the end of a segment's valid frames.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub offset: u64,
    pub lsn: u64,
    pub synced_through: u64,
}

#[derive(Debug, Clone)]
pub struct SegInfo {
    pub number: u64,
    pub path: PathBuf,
    pub len: u64,
    pub header: Result<SegmentHeader, String>,
    pub frames: Vec<FrameInfo>,
    pub end: Option<End>,
    pub orphans: Vec<Orphan>,
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

fn chain_hash(prev: &[u8; 32], header: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize().into()
}

/// Whether `tag` is the frame's HMAC, compared in constant time.
fn frame_mac_ok(
    key: &[u8; 32],
    header: &[u8],
    payload: &[u8],
    hash: &[u8; 32],
    tag: &[u8],
) -> bool {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return false;
    };
    mac.update(header);
    mac.update(payload);
    mac.update(hash);
    mac.verify_slice(tag).is_ok()
}

/// Segment files of the log directory, by number.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, String> {
    let wal = wal_dir(dir);
    if !wal.exists() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(&wal).map_err(|e| format!("{}: {e}", wal.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", wal.display()))?.path();
        if let Some(number) = parse_segment_name(&path) {
            out.push((number, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Read and verify every segment.
pub fn analyse(dir: &Path, key: Option<[u8; 32]>) -> Analysis {
    let mut analysis = Analysis::default();
    let segments = match list(dir) {
        Ok(s) => s,
        Err(e) => {
            analysis.errors.push(e);
            return analysis;
        }
    };
    let count = segments.len();
    for (index, (number, path)) in segments.into_iter().enumerate() {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                analysis.errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let seg = analyse_segment(number, path, &bytes, key);
        let p = seg.path.display().to_string();
        match &seg.header {
            Err(reason) if index + 1 < count => analysis
                .damage
                .push(format!("{p}: segment header is invalid: {reason}")),
            Ok(h) if h.number != number => analysis.damage.push(format!(
                "{p}: the header names segment {}, the file name {number}",
                h.number
            )),
            _ => {}
        }
        for f in &seg.frames {
            if f.chain == Check::Mismatch {
                analysis.damage.push(format!(
                    "{p}: frame LSN {} at offset {}: the hash chain does not verify (altered)",
                    f.header.lsn, f.offset
                ));
            }
            if f.hmac == Check::Mismatch {
                analysis.damage.push(format!(
                    "{p}: frame LSN {} at offset {}: the HMAC does not verify (altered, or a \
                     wrong key)",
                    f.header.lsn, f.offset
                ));
            }
        }
        match &seg.end {
            Some(end @ End::Truncated { .. }) => analysis.damage.push(format!(
                "{p}: {}; segments are preallocated before any frame is written, so a crash \
                 cannot cut one short: the file was truncated",
                end.describe()
            )),
            Some(End::Bad { offset, reason }) => {
                let missing = seg
                    .frames
                    .iter()
                    .rfind(|f| f.crc_ok)
                    .map_or(seg.header.as_ref().map_or(0, |h| h.first_lsn), |f| {
                        f.header.lsn + 1
                    });
                if let Some(o) = seg
                    .orphans
                    .iter()
                    .find(|o| o.lsn >= missing && o.synced_through >= missing)
                {
                    analysis.damage.push(format!(
                        "{p}: offset {offset}: {reason}; frame LSN {} at offset {} says LSN \
                         {missing} had been made durable",
                        o.lsn, o.offset
                    ));
                }
            }
            _ => {}
        }
        analysis.segments.push(seg);
    }
    analysis
}

fn analyse_segment(number: u64, path: PathBuf, bytes: &[u8], key: Option<[u8; 32]>) -> SegInfo {
    let len = bytes.len() as u64;
    let mut seg = SegInfo {
        number,
        header: SegmentHeader::decode(bytes, &path).map_err(|e| e.to_string()),
        path,
        len,
        frames: Vec::new(),
        end: None,
        orphans: Vec::new(),
    };
    let Ok(header) = seg.header.clone() else {
        return seg;
    };
    let mut chain = header.chain;
    let mut expected = header.first_lsn;
    let mut offset = SEGMENT_HEADER_BYTES as usize;
    let end = loop {
        let rest = bytes.get(offset..).unwrap_or(&[]);
        if rest.is_empty() {
            break End::FileEnd {
                offset: offset as u64,
            };
        }
        let header = match peek_header(rest) {
            Ok(h) => h,
            Err(FrameProblem::NoFrame) => {
                if rest.iter().all(|b| *b == 0) {
                    break End::Zeros {
                        offset: offset as u64,
                    };
                }
                if rest.len() < FRAME_HEADER_BYTES
                    && FRAME_MAGIC.starts_with(&rest[..rest.len().min(4)])
                {
                    break End::Truncated {
                        offset: offset as u64,
                        lsn: None,
                        needed: FRAME_HEADER_BYTES as u64,
                        available: rest.len() as u64,
                    };
                }
                break End::Bad {
                    offset: offset as u64,
                    reason: "no frame magic, and the bytes are not zeros (a torn write?)".into(),
                };
            }
            Err(problem) => {
                break End::Bad {
                    offset: offset as u64,
                    reason: format!("{problem:?}"),
                }
            }
        };
        let total = header.total_len();
        if total > rest.len() {
            break End::Truncated {
                offset: offset as u64,
                lsn: Some(header.lsn),
                needed: total as u64,
                available: rest.len() as u64,
            };
        }
        if let Err(problem) = decode_crc_only(rest) {
            seg.frames.push(FrameInfo {
                offset: offset as u64,
                header,
                total,
                crc_ok: false,
                lsn_ok: header.lsn == expected,
                chain: Check::Unverified,
                hmac: Check::Unverified,
                ops: Err("not decoded: the frame does not verify".into()),
            });
            break End::Bad {
                offset: offset as u64,
                reason: format!("frame LSN {} fails its CRC ({problem:?})", header.lsn),
            };
        }
        let frame = &rest[..total];
        let payload = &frame[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + header.len as usize];
        let mut at = FRAME_HEADER_BYTES + header.len as usize;
        let mut hash = chain;
        let chain_check = if header.flags & FLAG_CHAIN != 0 {
            let mut stored = [0u8; 32];
            stored.copy_from_slice(&frame[at..at + HASH_BYTES]);
            at += HASH_BYTES;
            let ok = stored == chain_hash(&chain, &frame[..36], payload);
            hash = stored;
            if ok {
                Check::Ok
            } else {
                Check::Mismatch
            }
        } else {
            Check::Absent
        };
        let hmac_check = if header.flags & FLAG_HMAC != 0 {
            match key {
                Some(key) => {
                    let tag = &frame[at..at + HASH_BYTES];
                    let ok = frame_mac_ok(&key, &frame[..36], payload, &hash, tag);
                    if ok {
                        Check::Ok
                    } else {
                        Check::Mismatch
                    }
                }
                None => Check::Unverified,
            }
        } else {
            Check::Absent
        };
        seg.frames.push(FrameInfo {
            offset: offset as u64,
            header,
            total,
            crc_ok: true,
            lsn_ok: header.lsn == expected,
            chain: chain_check,
            hmac: hmac_check,
            ops: effects(payload),
        });
        chain = hash;
        expected = header.lsn + 1;
        offset += total;
    };
    if let End::Bad { offset, .. } = &end {
        let mut at = *offset as usize + 1;
        while seg.orphans.len() < MAX_ORPHANS {
            let Some(pos) = bytes
                .get(at..)
                .and_then(|b| b.windows(4).position(|w| w == FRAME_MAGIC))
            else {
                break;
            };
            let start = at + pos;
            if let Ok(h) = decode_crc_only(&bytes[start..]) {
                seg.orphans.push(Orphan {
                    offset: start as u64,
                    lsn: h.lsn,
                    synced_through: h.synced_through,
                });
            }
            at = start + 1;
        }
    }
    seg.end = Some(end);
    seg
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
            if tree == CATALOG_TREE && key.starts_with(b"T\0") {
                if let Ok(schema) = decode_entry::<TableSchema>(value) {
                    tables.insert(schema.table_id, schema);
                }
            }
        }
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
    let dir = db.data_dir.as_path();
    let config = db.config()?;
    let df = DataFile::open(dir)?;
    let metas = read_metas(&df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    let mut tables = match metas.current {
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
                s.header
                    .as_ref()
                    .ok()
                    .map(|h| h.first_lsn.saturating_sub(1))
            })
            .unwrap_or(0)
    });
    let vfs = os_vfs(IoBackendChoice::Sync).map_err(|e| CliError::new(e.to_string()))?;
    let integrity = Integrity {
        hash_chain: config.hash_chain_required,
        hmac_key: config.hmac_key,
    };
    let mode_name = match config.recovery_mode {
        RecoveryMode::Strict => "strict",
        RecoveryMode::Permissive => "permissive",
    };
    let verdict = scan(
        &*vfs,
        &wal_dir(dir),
        after_lsn,
        &integrity,
        config.recovery_mode,
        |_, _| Ok(()),
    );
    let mut damage = analysis.damage.clone();
    let verdict_text = match &verdict {
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
                    .any(|f| f.hmac == Check::Unverified);
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
    let shown = |lsn: u64| lsn >= from_lsn && to_lsn.is_none_or(|to| lsn <= to);
    if ctx.json {
        let segments: Vec<Json> = analysis
            .segments
            .iter()
            .map(|s| {
                let frames: Vec<Json> = s
                    .frames
                    .iter()
                    .filter(|f| shown(f.header.lsn))
                    .map(|f| {
                        learn_tables(f.ops.as_deref().unwrap_or(&[]), &mut tables);
                        json!({
                            "offset": f.offset,
                            "lsn": f.header.lsn,
                            "seq": f.header.seq,
                            "synced_through": f.header.synced_through,
                            "bytes": f.total,
                            "payload_bytes": f.header.len,
                            "crc": if f.crc_ok { "ok" } else { "MISMATCH" },
                            "lsn_in_order": f.lsn_ok,
                            "chain": f.chain.name(),
                            "hmac": f.hmac.name(),
                            "covered_by_checkpoint": covered.is_some_and(|c| f.header.lsn <= c),
                            "effects": match (&f.ops, no_effects) {
                                (_, true) => Json::Null,
                                (Ok(ops), false) => Json::Array(ops.iter().map(op_json).collect()),
                                (Err(e), false) => json!({"error": e}),
                            },
                        })
                    })
                    .collect();
                json!({
                    "number": s.number,
                    "path": s.path.display().to_string(),
                    "bytes": s.len,
                    "header": match &s.header {
                        Ok(h) => json!({"ok": true, "number": h.number, "first_lsn": h.first_lsn}),
                        Err(e) => json!({"ok": false, "error": e}),
                    },
                    "frames": frames,
                    "end": s.end.as_ref().map(End::describe),
                    "frames_after_end": s.orphans.iter().map(|o| json!({
                        "offset": o.offset, "lsn": o.lsn, "synced_through": o.synced_through
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        ctx.print_json(&json!({
            "wal_dir": wal_dir(dir).display().to_string(),
            "checkpoint_covers_lsn": covered,
            "segments": segments,
            "verdict": verdict_text,
            "damage": damage,
        }))?;
    } else {
        let total_frames: usize = analysis.segments.iter().map(|s| s.frames.len()).sum();
        ctx.line(key_values(&[
            ("wal directory", wal_dir(dir).display().to_string()),
            ("segments", analysis.segments.len().to_string()),
            ("frames", total_frames.to_string()),
            (
                "checkpoint",
                match covered {
                    Some(c) => format!("covers LSN <= {c} (redo starts after it)"),
                    None => "unknown (no valid meta page)".into(),
                },
            ),
        ]))?;
        for s in &analysis.segments {
            let header = match &s.header {
                Ok(h) => format!("first LSN {}", h.first_lsn),
                Err(e) => format!("HEADER INVALID: {e}"),
            };
            ctx.line(format!(
                "\nsegment {}  {}  {} bytes  {header}",
                s.number,
                s.path.display(),
                s.len
            ))?;
            let mut table = Table::new(&[
                "LSN", "SEQ", "OFFSET", "BYTES", "SYNCED", "CRC", "CHAIN", "HMAC", "NOTE",
            ]);
            for f in s.frames.iter().filter(|f| shown(f.header.lsn)) {
                let ops = f.ops.as_deref().unwrap_or(&[]);
                learn_tables(ops, &mut tables);
                let mut note = Vec::new();
                if covered.is_some_and(|c| f.header.lsn <= c) {
                    note.push("checkpointed".to_string());
                }
                if !f.lsn_ok {
                    note.push("LSN OUT OF ORDER".into());
                }
                match &f.ops {
                    Ok(ops) => note.push(format!("{} effects", ops.len())),
                    Err(e) => note.push(e.clone()),
                }
                table.row(vec![
                    f.header.lsn.to_string(),
                    f.header.seq.to_string(),
                    f.offset.to_string(),
                    f.total.to_string(),
                    f.header.synced_through.to_string(),
                    if f.crc_ok { "ok" } else { "MISMATCH" }.into(),
                    f.chain.name().into(),
                    f.hmac.name().into(),
                    note.join(", "),
                ]);
                if !no_effects {
                    for op in ops.iter().take(max_ops) {
                        table.note(op_text(op, &tables));
                    }
                    if ops.len() > max_ops {
                        table.note(format!("… {} more (--max-ops)", ops.len() - max_ops));
                    }
                }
            }
            if !table.is_empty() {
                for line in table.render().lines() {
                    ctx.line(format!("  {line}"))?;
                }
            }
            if let Some(end) = &s.end {
                ctx.line(format!("  end: {}", end.describe()))?;
            }
            for o in &s.orphans {
                ctx.line(format!(
                    "  after the end: a frame with a valid CRC at offset {} (LSN {}, synced \
                     through {})",
                    o.offset, o.lsn, o.synced_through
                ))?;
            }
        }
        ctx.line(format!("verdict: {verdict_text}"))?;
        if damage.is_empty() {
            ctx.line("damage: none")?;
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
