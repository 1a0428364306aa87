//! Logical dumps (`aedb dump export|parity|restore`). The format (docs/CLI.md):
//!
//! ```text
//! "AEDBDUMP" ‖ version u32 LE (1) ‖ reserved u32 (0)
//! record*    : kind u8 ‖ length u32 LE ‖ payload ‖ CRC32(kind ‖ length ‖ payload) u32 LE
//! trailer    : "AEDBDEND" ‖ SHA-256 of every byte before the trailer
//! ```
//!
//! Records, in this order: one header; per project (by id) its project record, then per scope
//! its scope record, per table (by name) its table record followed by its rows (by primary key),
//! then the scope's KV-space record followed by its entries (by key); one end record.
//!
//! The parity checksum is a SHA-256 over the logical content only (see `Parity`), so a restored
//! database has the parity of its dump although table ids, creation times and KV versions
//! differ.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use aedb::catalog::namespace::{
    decode_entry, encode_entry, kv_tree, parse_tree_name, scope_prefix, table_prefix, table_tree,
    ProjectEntry, ScopeEntry, TreeKind, CATALOG_TREE, DEFAULT_SCOPE_ID,
};
use aedb::catalog::rows::{decode_row, encode_row};
use aedb::catalog::schema::{Constraint, TableSchema};
use aedb::catalog::types::Row;
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::Mutation;
use aedb::AedbInstance;
use aedb_pager::store::prefix_end;
use aedb_pager::Snapshot;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::cli::DbArgs;
use crate::db::{block_on, open_read_only};
use crate::util::{human_bytes, key_values, CliError, Ctx, Progress, Res, EXIT_FOUND, EXIT_OK};

pub const MAGIC: &[u8; 8] = b"AEDBDUMP";
pub const TRAILER_MAGIC: &[u8; 8] = b"AEDBDEND";
pub const VERSION: u32 = 1;
/// The largest record accepted when reading (a row or KV value is at most a few MiB).
const MAX_RECORD_BYTES: u32 = 256 << 20;

pub const KIND_HEADER: u8 = 1;
pub const KIND_PROJECT: u8 = 2;
pub const KIND_SCOPE: u8 = 3;
pub const KIND_TABLE: u8 = 4;
pub const KIND_ROW: u8 = 5;
pub const KIND_KV_SPACE: u8 = 6;
pub const KIND_KV_ENTRY: u8 = 7;
pub const KIND_END: u8 = 0x7f;

/// Rows (or KV entries) per restore commit, and their bytes at most.
const BATCH_ITEMS: usize = 1000;
const BATCH_BYTES: usize = 2 << 20;

fn lp(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// A table's schema without what a restore cannot keep (its id, the slots of its stored rows)
/// and with its indexes and constraints in a canonical order.
pub fn canonical_schema(schema: &TableSchema) -> Vec<u8> {
    let mut s = schema.clone();
    s.table_id = 0;
    s.slots = (0..s.columns.len() as u32).collect();
    s.slot_count = s.columns.len() as u32;
    s.indexes.sort_by(|a, b| a.index_name.cmp(&b.index_name));
    s.constraints.sort_by_key(encode_entry);
    encode_entry(&s)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub count: u64,
    pub digest: [u8; 32],
}

/// The parity checksum: SHA-256 over the logical content. Sections: `catalog` (projects and
/// scopes with their owners, tables with their canonical schema), then per table `table p/s/t`
/// (primary key and row, in key order) and per scope `kv p/s` (key and value, in key order).
/// Not included: table ids, creation times, KV versions, idempotency records.
pub struct Parity {
    catalog: Sha256,
    catalog_items: u64,
    current: Option<(String, u64, Sha256)>,
    sections: Vec<Section>,
}

impl Default for Parity {
    fn default() -> Self {
        Parity {
            catalog: Sha256::new(),
            catalog_items: 0,
            current: None,
            sections: Vec::new(),
        }
    }
}

impl Parity {
    fn close(&mut self) {
        if let Some((name, count, hasher)) = self.current.take() {
            self.sections.push(Section {
                name,
                count,
                digest: hasher.finalize().into(),
            });
        }
    }

    pub fn project(&mut self, p: &ProjectEntry) {
        self.close();
        self.catalog.update(b"P");
        lp(&mut self.catalog, p.project_id.as_bytes());
        lp(
            &mut self.catalog,
            p.owner_id.as_deref().unwrap_or("\0").as_bytes(),
        );
        self.catalog_items += 1;
    }

    pub fn scope(&mut self, s: &ScopeEntry) {
        self.close();
        self.catalog.update(b"S");
        lp(&mut self.catalog, s.project_id.as_bytes());
        lp(&mut self.catalog, s.scope_id.as_bytes());
        lp(
            &mut self.catalog,
            s.owner_id.as_deref().unwrap_or("\0").as_bytes(),
        );
        self.catalog_items += 1;
    }

    pub fn table(&mut self, s: &TableSchema) {
        self.close();
        self.catalog.update(b"T");
        lp(&mut self.catalog, &canonical_schema(s));
        self.catalog_items += 1;
        self.current = Some((
            format!("table {}/{}/{}", s.project_id, s.scope_id, s.table_name),
            0,
            Sha256::new(),
        ));
    }

    /// A row in column order under its encoded primary key.
    pub fn row(&mut self, key: &[u8], encoded_row: &[u8]) {
        if let Some((_, count, hasher)) = &mut self.current {
            lp(hasher, key);
            lp(hasher, encoded_row);
            *count += 1;
        }
    }

    pub fn kv_space(&mut self, project: &str, scope: &str) {
        self.close();
        self.current = Some((format!("kv {project}/{scope}"), 0, Sha256::new()));
    }

    pub fn kv(&mut self, key: &[u8], value: &[u8]) {
        self.row(key, value);
    }

    /// The sections (catalog first) and the overall checksum.
    pub fn finish(mut self) -> (Vec<Section>, [u8; 32]) {
        self.close();
        let mut sections = vec![Section {
            name: "catalog".into(),
            count: self.catalog_items,
            digest: self.catalog.finalize().into(),
        }];
        sections.append(&mut self.sections);
        let mut all = Sha256::new();
        for s in &sections {
            lp(&mut all, s.name.as_bytes());
            all.update(s.count.to_le_bytes());
            all.update(s.digest);
        }
        (sections, all.finalize().into())
    }
}

/// What a traversal of a database reports, in dump order.
pub trait Visitor {
    fn project(&mut self, entry: &ProjectEntry) -> Res<()>;
    fn scope(&mut self, entry: &ScopeEntry) -> Res<()>;
    fn table(&mut self, schema: &TableSchema) -> Res<()>;
    /// `row` is the row in column order.
    fn row(&mut self, key: &[u8], row: &Row) -> Res<()>;
    fn kv_space(&mut self, project: &str, scope: &str) -> Res<()>;
    fn kv(&mut self, key: &[u8], version: u64, created_at: u64, value: &[u8]) -> Res<()>;
}

fn storage_error(dir: &Path, what: &str, err: impl std::fmt::Display) -> CliError {
    CliError::at(dir, format!("{what}: {err}")).hint(format!(
        "`aedb check invariants --data-dir {}` lists every damaged page",
        dir.display()
    ))
}

fn prefixed(snapshot: &Snapshot, dir: &Path, prefix: &[u8]) -> Res<Vec<(Vec<u8>, Vec<u8>)>> {
    let Some(catalog) = snapshot
        .tree(CATALOG_TREE)
        .map_err(|e| storage_error(dir, "cannot read the catalog", e))?
    else {
        return Ok(Vec::new());
    };
    let end = prefix_end(prefix);
    let upper = match &end {
        Some(e) => Bound::Excluded(e.as_slice()),
        None => Bound::Unbounded,
    };
    catalog
        .range(Bound::Included(prefix), upper, false)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| storage_error(dir, "cannot read the catalog", e))
}

fn entry_error<'a>(dir: &'a Path, key: &'a [u8]) -> impl Fn(String) -> CliError + 'a {
    move |e| {
        storage_error(
            dir,
            &format!("catalog entry {}", crate::util::printable_catalog_key(key)),
            e,
        )
    }
}

/// Visit every project, scope, table, row and KV entry of a snapshot, in dump order.
pub fn traverse(
    snapshot: &Snapshot,
    dir: &Path,
    visitor: &mut dyn Visitor,
    progress: &Progress,
) -> Res<()> {
    for (key, bytes) in prefixed(snapshot, dir, b"P\0")? {
        let project: ProjectEntry = decode_entry(&bytes).map_err(entry_error(dir, &key))?;
        visitor.project(&project)?;
        for (key, bytes) in prefixed(snapshot, dir, &scope_prefix(&project.project_id))? {
            let scope: ScopeEntry = decode_entry(&bytes).map_err(entry_error(dir, &key))?;
            visitor.scope(&scope)?;
            let (p, s) = (&scope.project_id, &scope.scope_id);
            for (key, bytes) in prefixed(snapshot, dir, &table_prefix(p, s))? {
                let schema: TableSchema = decode_entry(&bytes).map_err(entry_error(dir, &key))?;
                visitor.table(&schema)?;
                let tree = table_tree(schema.table_id);
                let what = format!("table {p}/{s}/{} (tree {tree})", schema.table_name);
                let view = snapshot
                    .tree(&tree)
                    .map_err(|e| storage_error(dir, &what, e))?;
                if let Some(view) = view {
                    for item in view.range(Bound::Unbounded, Bound::Unbounded, false) {
                        let (key, stored) = item.map_err(|e| storage_error(dir, &what, e))?;
                        let stored = decode_row(&stored).map_err(|e| {
                            storage_error(
                                dir,
                                &format!("{what}: row {}", crate::util::fmt_encoded_key(&key)),
                                e,
                            )
                        })?;
                        visitor.row(&key, &schema.from_stored(stored))?;
                        progress.inc(1);
                    }
                }
            }
            visitor.kv_space(p, s)?;
            let tree = kv_tree(p, s);
            let what = format!("KV space {p}/{s} (tree {tree})");
            let view = snapshot
                .tree(&tree)
                .map_err(|e| storage_error(dir, &what, e))?;
            if let Some(view) = view {
                for item in view.range(Bound::Unbounded, Bound::Unbounded, false) {
                    let (key, entry) = item.map_err(|e| storage_error(dir, &what, e))?;
                    if entry.len() < 16 {
                        return Err(storage_error(
                            dir,
                            &what,
                            format!("entry of {} bytes", entry.len()),
                        ));
                    }
                    let u64_at = |at: usize| {
                        let mut raw = [0u8; 8];
                        raw.copy_from_slice(&entry[at..at + 8]);
                        u64::from_le_bytes(raw)
                    };
                    visitor.kv(&key, u64_at(0), u64_at(8), &entry[16..])?;
                    progress.inc(1);
                }
            }
        }
    }
    Ok(())
}

/// Rows plus KV entries of a snapshot (for progress bars).
fn item_count(snapshot: &Snapshot) -> u64 {
    snapshot
        .trees()
        .map(|trees| {
            trees
                .iter()
                .filter(|(n, _)| {
                    matches!(
                        parse_tree_name(n),
                        TreeKind::Table { .. } | TreeKind::Kv { .. }
                    )
                })
                .map(|(_, r)| r.len)
                .sum()
        })
        .unwrap_or(0)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub projects: u64,
    pub scopes: u64,
    pub tables: u64,
    pub table_rows: u64,
    pub kv_entries: u64,
}

struct ParityVisitor {
    parity: Parity,
    counts: Counts,
}

impl Visitor for ParityVisitor {
    fn project(&mut self, entry: &ProjectEntry) -> Res<()> {
        self.counts.projects += 1;
        self.parity.project(entry);
        Ok(())
    }
    fn scope(&mut self, entry: &ScopeEntry) -> Res<()> {
        self.counts.scopes += 1;
        self.parity.scope(entry);
        Ok(())
    }
    fn table(&mut self, schema: &TableSchema) -> Res<()> {
        self.counts.tables += 1;
        self.parity.table(schema);
        Ok(())
    }
    fn row(&mut self, key: &[u8], row: &Row) -> Res<()> {
        self.counts.table_rows += 1;
        self.parity.row(key, &encode_row(row));
        Ok(())
    }
    fn kv_space(&mut self, project: &str, scope: &str) -> Res<()> {
        self.parity.kv_space(project, scope);
        Ok(())
    }
    fn kv(&mut self, key: &[u8], _: u64, _: u64, value: &[u8]) -> Res<()> {
        self.counts.kv_entries += 1;
        self.parity.kv(key, value);
        Ok(())
    }
}

/// Writes records, hashing every byte.
struct DumpWriter {
    path: PathBuf,
    out: BufWriter<File>,
    sha: Sha256,
    bytes: u64,
    records: u64,
}

impl DumpWriter {
    fn write(&mut self, bytes: &[u8]) -> Res<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| CliError::at(&self.path, e))?;
        self.sha.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn record(&mut self, kind: u8, payload: &[u8]) -> Res<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD_BYTES)
            .ok_or_else(|| {
                CliError::at(&self.path, format!("a record of {} bytes", payload.len()))
            })?;
        let mut head = [0u8; 5];
        head[0] = kind;
        head[1..].copy_from_slice(&len.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(payload);
        self.write(&head)?;
        self.write(payload)?;
        self.write(&crc.finalize().to_le_bytes())?;
        self.records += 1;
        Ok(())
    }
}

struct ExportVisitor {
    writer: DumpWriter,
    parity: ParityVisitor,
}

impl Visitor for ExportVisitor {
    fn project(&mut self, entry: &ProjectEntry) -> Res<()> {
        self.parity.project(entry)?;
        self.writer.record(KIND_PROJECT, &encode_entry(entry))
    }
    fn scope(&mut self, entry: &ScopeEntry) -> Res<()> {
        self.parity.scope(entry)?;
        self.writer.record(KIND_SCOPE, &encode_entry(entry))
    }
    fn table(&mut self, schema: &TableSchema) -> Res<()> {
        self.parity.table(schema)?;
        self.writer.record(KIND_TABLE, &encode_entry(schema))
    }
    fn row(&mut self, key: &[u8], row: &Row) -> Res<()> {
        let encoded = encode_row(row);
        self.parity.counts.table_rows += 1;
        self.parity.parity.row(key, &encoded);
        let mut payload = Vec::with_capacity(4 + key.len() + encoded.len());
        payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
        payload.extend_from_slice(key);
        payload.extend_from_slice(&encoded);
        self.writer.record(KIND_ROW, &payload)
    }
    fn kv_space(&mut self, project: &str, scope: &str) -> Res<()> {
        self.parity.kv_space(project, scope)?;
        let mut payload = Vec::new();
        for part in [project, scope] {
            payload.extend_from_slice(&(part.len() as u16).to_le_bytes());
            payload.extend_from_slice(part.as_bytes());
        }
        self.writer.record(KIND_KV_SPACE, &payload)
    }
    fn kv(&mut self, key: &[u8], version: u64, created_at: u64, value: &[u8]) -> Res<()> {
        self.parity.kv(key, version, created_at, value)?;
        let mut payload = Vec::with_capacity(20 + key.len() + value.len());
        payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
        payload.extend_from_slice(key);
        payload.extend_from_slice(&version.to_le_bytes());
        payload.extend_from_slice(&created_at.to_le_bytes());
        payload.extend_from_slice(value);
        self.writer.record(KIND_KV_ENTRY, &payload)
    }
}

fn sections_json(sections: &[Section]) -> Json {
    Json::Array(
        sections
            .iter()
            .map(|s| json!({"name": s.name, "count": s.count, "digest": hex::encode(s.digest)}))
            .collect(),
    )
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn temp_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "dump".into());
    name.push(".tmp");
    out.with_file_name(name)
}

pub fn export(ctx: &mut Ctx<'_>, db: &DbArgs, out: &Path) -> Res<i32> {
    let dir = db.data_dir.as_path();
    let instance = open_read_only(db, ctx)?;
    let snapshot = instance.engine().snapshot();
    let tmp = temp_path(out);
    let file = File::create(&tmp).map_err(|e| {
        CliError::at(&tmp, e).hint("the directory of --out must exist and be writable")
    })?;
    let mut visitor = ExportVisitor {
        writer: DumpWriter {
            path: tmp.clone(),
            out: BufWriter::with_capacity(1 << 20, file),
            sha: Sha256::new(),
            bytes: 0,
            records: 0,
        },
        parity: ParityVisitor {
            parity: Parity::default(),
            counts: Counts::default(),
        },
    };
    let result = (|| -> Res<(Counts, [u8; 32], u64)> {
        let mut preamble = Vec::new();
        preamble.extend_from_slice(MAGIC);
        preamble.extend_from_slice(&VERSION.to_le_bytes());
        preamble.extend_from_slice(&0u32.to_le_bytes());
        visitor.writer.write(&preamble)?;
        let header = json!({
            "format": "aedb-dump",
            "version": VERSION,
            "source": dir.display().to_string(),
            "snapshot_seq": snapshot.seq(),
            "created_unix_micros": now_micros(),
            "tool": format!("aedb-cli {}", env!("CARGO_PKG_VERSION")),
        });
        visitor
            .writer
            .record(KIND_HEADER, header.to_string().as_bytes())?;
        let progress = ctx.progress(item_count(&snapshot), "dump");
        traverse(&snapshot, dir, &mut visitor, &progress)?;
        progress.finish();
        let ExportVisitor { mut writer, parity } = visitor;
        let counts = parity.counts;
        let (sections, checksum) = parity.parity.finish();
        let end = json!({
            "records": writer.records + 1,
            "snapshot_seq": snapshot.seq(),
            "projects": counts.projects,
            "scopes": counts.scopes,
            "tables": counts.tables,
            "table_rows": counts.table_rows,
            "kv_entries": counts.kv_entries,
            "parity": hex::encode(checksum),
            "sections": sections_json(&sections),
        });
        writer.record(KIND_END, end.to_string().as_bytes())?;
        let digest: [u8; 32] = writer.sha.clone().finalize().into();
        writer.write(TRAILER_MAGIC)?;
        writer.write(&digest)?;
        let bytes = writer.bytes;
        let file = writer
            .out
            .into_inner()
            .map_err(|e| CliError::at(&tmp, e.error()))?;
        file.sync_all().map_err(|e| CliError::at(&tmp, e))?;
        Ok((counts, checksum, bytes))
    })();
    let (counts, checksum, bytes) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, out).map_err(|e| CliError::at(out, e))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    if ctx.json {
        ctx.print_json(&json!({
            "ok": true,
            "dump": out.display().to_string(),
            "snapshot_seq": snapshot.seq(),
            "parity": hex::encode(checksum),
            "projects": counts.projects,
            "scopes": counts.scopes,
            "tables": counts.tables,
            "table_rows": counts.table_rows,
            "kv_entries": counts.kv_entries,
            "bytes": bytes,
        }))?;
    } else {
        ctx.line("ok")?;
        ctx.line(key_values(&[
            ("dump", out.display().to_string()),
            ("snapshot seq", snapshot.seq().to_string()),
            (
                "namespaces",
                format!("{} projects, {} scopes", counts.projects, counts.scopes),
            ),
            (
                "tables",
                format!("{} ({} rows)", counts.tables, counts.table_rows),
            ),
            ("kv entries", counts.kv_entries.to_string()),
            ("parity", hex::encode(checksum)),
            ("size", human_bytes(bytes)),
        ]))?;
    }
    Ok(status(ctx))
}

fn status(ctx: &Ctx<'_>) -> i32 {
    if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    }
}

/// One record read back, with where it was.
pub struct Record {
    pub kind: u8,
    pub payload: Vec<u8>,
    pub index: u64,
    pub offset: u64,
}

/// Reads a dump record by record, checking every CRC, and the trailer's SHA-256 at the end.
pub struct DumpReader {
    path: PathBuf,
    input: BufReader<File>,
    sha: Sha256,
    offset: u64,
    records: u64,
    done: bool,
}

impl DumpReader {
    pub fn open(path: &Path) -> Res<Self> {
        let file = File::open(path).map_err(|e| {
            CliError::at(path, e).hint("--dump names a file written by `aedb dump export`")
        })?;
        let mut reader = DumpReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 20, file),
            sha: Sha256::new(),
            offset: 0,
            records: 0,
            done: false,
        };
        let mut preamble = [0u8; 16];
        reader.read_exact(&mut preamble, "the file header")?;
        if &preamble[..8] != MAGIC {
            return Err(CliError::at(path, "not an aedb dump (bad magic)")
                .hint("--dump names a file written by `aedb dump export`"));
        }
        let version = u32::from_le_bytes([preamble[8], preamble[9], preamble[10], preamble[11]]);
        if version != VERSION {
            return Err(CliError::at(
                path,
                format!("dump format version {version}; this tool reads version {VERSION}"),
            ));
        }
        Ok(reader)
    }

    fn bad(&self, what: impl std::fmt::Display) -> CliError {
        CliError::at(&self.path, format!("damaged dump: {what}"))
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Res<()> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.bad(format!(
                    "the file ends inside {what} at offset {} (truncated?)",
                    self.offset
                ))
            } else {
                CliError::at(&self.path, e)
            }
        })?;
        self.sha.update(&*buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// The next record; None after the end record and a verified trailer.
    pub fn next_record(&mut self) -> Res<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let offset = self.offset;
        let index = self.records;
        let mut head = [0u8; 5];
        self.read_exact(&mut head, &format!("record {index}"))?;
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_RECORD_BYTES {
            return Err(self.bad(format!(
                "record {index} at offset {offset} claims {len} bytes"
            )));
        }
        let mut payload = vec![0u8; len as usize];
        self.read_exact(&mut payload, &format!("record {index}"))?;
        let mut crc = [0u8; 4];
        self.read_exact(&mut crc, &format!("record {index}"))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&payload);
        if u32::from_le_bytes(crc) != hasher.finalize() {
            return Err(self.bad(format!(
                "record {index} (kind {}) at offset {offset}: checksum mismatch",
                head[0]
            )));
        }
        self.records += 1;
        if head[0] == KIND_END {
            let expected: [u8; 32] = self.sha.clone().finalize().into();
            let mut trailer = [0u8; 40];
            self.read_exact(&mut trailer, "the trailer")?;
            if &trailer[..8] != TRAILER_MAGIC {
                return Err(self.bad("the trailer's magic is wrong"));
            }
            if trailer[8..] != expected {
                return Err(self.bad("the SHA-256 of the file does not match its trailer"));
            }
            let mut rest = [0u8; 1];
            if self
                .input
                .read(&mut rest)
                .map_err(|e| CliError::at(&self.path, e))?
                != 0
            {
                return Err(self.bad("bytes after the trailer"));
            }
            self.done = true;
        }
        Ok(Some(Record {
            kind: head[0],
            payload,
            index,
            offset,
        }))
    }
}

/// A decoded dump record.
pub enum Item {
    Header(Json),
    Project(ProjectEntry),
    Scope(ScopeEntry),
    Table(TableSchema),
    Row {
        key: Vec<u8>,
        row: Row,
        encoded: Vec<u8>,
    },
    KvSpace {
        project: String,
        scope: String,
    },
    Kv {
        key: Vec<u8>,
        version: u64,
        created_at: u64,
        value: Vec<u8>,
    },
    End(Json),
}

fn split_u32(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let key = bytes.get(4..4 + len)?;
    Some((key, &bytes[4 + len..]))
}

fn split_u16(bytes: &[u8]) -> Option<(String, &[u8])> {
    let len = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
    let text = String::from_utf8(bytes.get(2..2 + len)?.to_vec()).ok()?;
    Some((text, &bytes[2 + len..]))
}

/// Reads items and checks their order: the grammar of the format.
pub struct ItemReader {
    reader: DumpReader,
    state: Grammar,
}

#[derive(Default)]
struct Grammar {
    header: bool,
    project: Option<String>,
    scope: Option<(String, String)>,
    table: Option<TableSchema>,
    kv: bool,
    end: bool,
}

impl ItemReader {
    pub fn open(path: &Path) -> Res<Self> {
        Ok(ItemReader {
            reader: DumpReader::open(path)?,
            state: Grammar::default(),
        })
    }

    pub fn next_item(&mut self) -> Res<Option<Item>> {
        let Some(record) = self.reader.next_record()? else {
            if !self.state.end {
                return Err(self.reader.bad("no end record"));
            }
            return Ok(None);
        };
        let at = format!(
            "record {} (kind {}) at offset {}",
            record.index, record.kind, record.offset
        );
        let bad = |what: &str| self_bad(&self.reader.path, &at, what);
        let g = &mut self.state;
        if g.end {
            return Err(bad("a record after the end record"));
        }
        if !g.header && record.kind != KIND_HEADER {
            return Err(bad("the first record is not a header"));
        }
        let item = match record.kind {
            KIND_HEADER => {
                if g.header {
                    return Err(bad("a second header"));
                }
                g.header = true;
                Item::Header(
                    serde_json::from_slice(&record.payload).map_err(|e| bad(&e.to_string()))?,
                )
            }
            KIND_PROJECT => {
                let p: ProjectEntry = decode_entry(&record.payload).map_err(|e| bad(&e))?;
                g.project = Some(p.project_id.clone());
                g.scope = None;
                g.table = None;
                g.kv = false;
                Item::Project(p)
            }
            KIND_SCOPE => {
                let s: ScopeEntry = decode_entry(&record.payload).map_err(|e| bad(&e))?;
                if g.project.as_deref() != Some(s.project_id.as_str()) {
                    return Err(bad("a scope outside its project"));
                }
                g.scope = Some((s.project_id.clone(), s.scope_id.clone()));
                g.table = None;
                g.kv = false;
                Item::Scope(s)
            }
            KIND_TABLE => {
                let t: TableSchema = decode_entry(&record.payload).map_err(|e| bad(&e))?;
                if g.scope.as_ref() != Some(&(t.project_id.clone(), t.scope_id.clone())) || g.kv {
                    return Err(bad("a table outside its scope"));
                }
                g.table = Some(t.clone());
                Item::Table(t)
            }
            KIND_ROW => {
                if g.table.is_none() || g.kv {
                    return Err(bad("a row outside a table"));
                }
                let (key, encoded) =
                    split_u32(&record.payload).ok_or_else(|| bad("short row record"))?;
                let row = decode_row(encoded).map_err(|e| bad(&e.to_string()))?;
                Item::Row {
                    key: key.to_vec(),
                    row,
                    encoded: encoded.to_vec(),
                }
            }
            KIND_KV_SPACE => {
                let (project, rest) =
                    split_u16(&record.payload).ok_or_else(|| bad("short KV space record"))?;
                let (scope, _) = split_u16(rest).ok_or_else(|| bad("short KV space record"))?;
                if g.scope.as_ref() != Some(&(project.clone(), scope.clone())) || g.kv {
                    return Err(bad("a KV space outside its scope"));
                }
                g.table = None;
                g.kv = true;
                Item::KvSpace { project, scope }
            }
            KIND_KV_ENTRY => {
                if !g.kv {
                    return Err(bad("a KV entry outside a KV space"));
                }
                let (key, rest) =
                    split_u32(&record.payload).ok_or_else(|| bad("short KV record"))?;
                if rest.len() < 16 {
                    return Err(bad("short KV record"));
                }
                let mut v = [0u8; 8];
                v.copy_from_slice(&rest[..8]);
                let mut c = [0u8; 8];
                c.copy_from_slice(&rest[8..16]);
                Item::Kv {
                    key: key.to_vec(),
                    version: u64::from_le_bytes(v),
                    created_at: u64::from_le_bytes(c),
                    value: rest[16..].to_vec(),
                }
            }
            KIND_END => {
                g.end = true;
                Item::End(serde_json::from_slice(&record.payload).map_err(|e| bad(&e.to_string()))?)
            }
            other => return Err(bad(&format!("unknown record kind {other}"))),
        };
        Ok(Some(item))
    }
}

fn self_bad(path: &Path, at: &str, what: &str) -> CliError {
    CliError::at(path, format!("damaged dump: {at}: {what}"))
}

/// Everything a full read of a dump learns: counts, parity recomputed from its records, and
/// what its end record claims.
pub struct DumpSummary {
    pub header: Json,
    pub counts: Counts,
    pub sections: Vec<Section>,
    pub parity: [u8; 32],
    pub claimed_parity: String,
}

/// Read a whole dump, verifying it; `apply` sees every item on the way.
pub fn read_dump(path: &Path, mut apply: impl FnMut(&Item) -> Res<()>) -> Res<DumpSummary> {
    let mut reader = ItemReader::open(path)?;
    let mut parity = ParityVisitor {
        parity: Parity::default(),
        counts: Counts::default(),
    };
    let mut header = Json::Null;
    let mut end = Json::Null;
    while let Some(item) = reader.next_item()? {
        match &item {
            Item::Header(h) => header = h.clone(),
            Item::Project(p) => parity.project(p)?,
            Item::Scope(s) => parity.scope(s)?,
            Item::Table(t) => parity.table(t)?,
            Item::Row { key, encoded, .. } => {
                parity.counts.table_rows += 1;
                parity.parity.row(key, encoded);
            }
            Item::KvSpace { project, scope } => parity.kv_space(project, scope)?,
            Item::Kv { key, value, .. } => parity.kv(key, 0, 0, value)?,
            Item::End(e) => end = e.clone(),
        }
        apply(&item)?;
    }
    let counts = parity.counts;
    let (sections, checksum) = parity.parity.finish();
    let claimed = end
        .get("parity")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    if claimed != hex::encode(checksum) {
        return Err(CliError::at(
            path,
            format!(
                "damaged dump: its end record claims parity {claimed}, its records give {}",
                hex::encode(checksum)
            ),
        ));
    }
    Ok(DumpSummary {
        header,
        counts,
        sections,
        parity: checksum,
        claimed_parity: claimed,
    })
}

/// The parity of a database directory (opened read-only).
fn database_parity(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<(Counts, Vec<Section>, [u8; 32], u64)> {
    let instance = open_read_only(db, ctx)?;
    let snapshot = instance.engine().snapshot();
    let mut visitor = ParityVisitor {
        parity: Parity::default(),
        counts: Counts::default(),
    };
    let progress = ctx.progress(item_count(&snapshot), "parity");
    traverse(&snapshot, &db.data_dir, &mut visitor, &progress)?;
    progress.finish();
    let (sections, checksum) = visitor.parity.finish();
    Ok((visitor.counts, sections, checksum, snapshot.seq()))
}

/// What differs between two section lists.
fn differences(expected: &[Section], actual: &[Section]) -> Vec<String> {
    let mut out = Vec::new();
    for e in expected {
        match actual.iter().find(|a| a.name == e.name) {
            None => out.push(format!("{}: in the dump, not in the database", e.name)),
            Some(a) if a.count != e.count => out.push(format!(
                "{}: {} items in the dump, {} in the database",
                e.name, e.count, a.count
            )),
            Some(a) if a.digest != e.digest => out.push(format!(
                "{}: same count ({}), different content",
                e.name, e.count
            )),
            Some(_) => {}
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.name == a.name) {
            out.push(format!("{}: in the database, not in the dump", a.name));
        }
    }
    out
}

fn report_parity(
    ctx: &mut Ctx<'_>,
    dump: &Path,
    dir: &Path,
    expected: &DumpSummary,
    actual: (&Counts, &[Section], [u8; 32]),
    restored: bool,
) -> Res<i32> {
    let (counts, sections, checksum) = actual;
    let ok = checksum == expected.parity;
    let diffs = differences(&expected.sections, sections);
    if ctx.json {
        ctx.print_json(&json!({
            "ok": ok,
            "result": if ok { "ok" } else { "mismatch" },
            "dump": dump.display().to_string(),
            "data_dir": dir.display().to_string(),
            "restored": restored,
            "expected": hex::encode(expected.parity),
            "actual": hex::encode(checksum),
            "tables": counts.tables,
            "table_rows": counts.table_rows,
            "kv_entries": counts.kv_entries,
            "differences": diffs,
        }))?;
    } else {
        ctx.line(if ok { "ok" } else { "mismatch" })?;
        ctx.line(key_values(&[
            ("dump", dump.display().to_string()),
            ("database", dir.display().to_string()),
            (
                "restored",
                if restored {
                    "yes (the dump was loaded, then the parity checked)".into()
                } else {
                    "no".into()
                },
            ),
            ("expected", hex::encode(expected.parity)),
            ("actual", hex::encode(checksum)),
            (
                "dump holds",
                format!(
                    "{} tables, {} rows, {} kv entries",
                    expected.counts.tables, expected.counts.table_rows, expected.counts.kv_entries
                ),
            ),
            (
                "database holds",
                format!(
                    "{} tables, {} rows, {} kv entries",
                    counts.tables, counts.table_rows, counts.kv_entries
                ),
            ),
        ]))?;
        for d in &diffs {
            ctx.line(format!("differs: {d}"))?;
        }
    }
    Ok(if ok { status(ctx) } else { EXIT_FOUND })
}

pub fn parity(ctx: &mut Ctx<'_>, dump: &Path, db: &DbArgs) -> Res<i32> {
    let progress = ctx.progress(0, "read dump");
    let expected = read_dump(dump, |_| {
        progress.inc(1);
        Ok(())
    })?;
    progress.finish();
    let (counts, sections, checksum, _) = database_parity(ctx, db)?;
    report_parity(
        ctx,
        dump,
        &db.data_dir,
        &expected,
        (&counts, &sections, checksum),
        false,
    )
}

/// Applies dump items to a new database through the public API.
struct Restorer<'a> {
    instance: &'a AedbInstance,
    project: Option<String>,
    default_scope_seen: bool,
    table: Option<TableSchema>,
    kv: Option<(String, String)>,
    rows: Vec<Row>,
    kv_batch: Vec<Mutation>,
    batch_bytes: usize,
}

impl Restorer<'_> {
    fn commit(&self, what: &str, mutation: Mutation) -> Res<()> {
        block_on(self.instance.commit(mutation))?
            .map(|_| ())
            .map_err(|e| CliError::new(format!("restore failed at {what}: {e}")))
    }

    fn flush(&mut self) -> Res<()> {
        if let (Some(t), false) = (&self.table, self.rows.is_empty()) {
            let what = format!("table {}/{}/{}", t.project_id, t.scope_id, t.table_name);
            let mutation = Mutation::InsertBatch {
                project_id: t.project_id.clone(),
                scope_id: t.scope_id.clone(),
                table_name: t.table_name.clone(),
                rows: std::mem::take(&mut self.rows),
            };
            self.commit(&what, mutation)?;
        }
        if !self.kv_batch.is_empty() {
            let batch = std::mem::take(&mut self.kv_batch);
            block_on(self.instance.commit_many_atomic(batch))?
                .map_err(|e| CliError::new(format!("restore failed at a KV space: {e}")))?;
        }
        self.batch_bytes = 0;
        Ok(())
    }

    /// Done with a table: its last rows, then its default values. A default added after rows
    /// were written leaves their Nulls (reads do not apply it to a stored Null); inserting the
    /// rows under it would replace them, so defaults come last.
    fn end_table(&mut self) -> Res<()> {
        self.flush()?;
        let Some(t) = self.table.take() else {
            return Ok(());
        };
        let what = format!("table {}/{}/{}", t.project_id, t.scope_id, t.table_name);
        for c in &t.constraints {
            if matches!(c, Constraint::Default { .. }) {
                self.commit(
                    &what,
                    Mutation::Ddl(DdlOperation::AlterTable {
                        project_id: t.project_id.clone(),
                        scope_id: t.scope_id.clone(),
                        table_name: t.table_name.clone(),
                        alteration: TableAlteration::AddConstraint(c.clone()),
                    }),
                )?;
            }
        }
        Ok(())
    }

    /// Done with a project: drop the default scope if the dump did not have it.
    fn end_project(&mut self) -> Res<()> {
        self.end_table()?;
        if let (Some(p), false) = (self.project.take(), self.default_scope_seen) {
            self.commit(
                &format!("project {p}"),
                Mutation::Ddl(DdlOperation::DropScope {
                    project_id: p,
                    scope_id: DEFAULT_SCOPE_ID.into(),
                    if_exists: true,
                }),
            )?;
        }
        Ok(())
    }

    fn apply(&mut self, item: &Item) -> Res<()> {
        match item {
            Item::Header(_) => {}
            Item::Project(p) => {
                self.end_project()?;
                self.kv = None;
                self.commit(
                    &format!("project {}", p.project_id),
                    Mutation::Ddl(DdlOperation::CreateProject {
                        project_id: p.project_id.clone(),
                        owner_id: p.owner_id.clone(),
                        if_not_exists: false,
                    }),
                )?;
                self.project = Some(p.project_id.clone());
                self.default_scope_seen = false;
            }
            Item::Scope(s) => {
                self.end_table()?;
                self.kv = None;
                if s.scope_id == DEFAULT_SCOPE_ID {
                    self.default_scope_seen = true;
                } else {
                    self.commit(
                        &format!("scope {}/{}", s.project_id, s.scope_id),
                        Mutation::Ddl(DdlOperation::CreateScope {
                            project_id: s.project_id.clone(),
                            scope_id: s.scope_id.clone(),
                            owner_id: s.owner_id.clone(),
                            if_not_exists: false,
                        }),
                    )?;
                }
            }
            Item::Table(t) => {
                self.end_table()?;
                self.create_table(t)?;
                self.table = Some(t.clone());
            }
            Item::Row { row, encoded, .. } => {
                if self.rows.len() >= BATCH_ITEMS
                    || (!self.rows.is_empty() && self.batch_bytes + encoded.len() > BATCH_BYTES)
                {
                    self.flush()?;
                }
                self.batch_bytes += encoded.len();
                self.rows.push(row.clone());
            }
            Item::KvSpace { project, scope } => {
                self.end_table()?;
                self.kv = Some((project.clone(), scope.clone()));
            }
            Item::Kv { key, value, .. } => {
                let size = key.len() + value.len();
                if self.kv_batch.len() >= BATCH_ITEMS
                    || (!self.kv_batch.is_empty() && self.batch_bytes + size > BATCH_BYTES)
                {
                    self.flush()?;
                }
                let Some((project, scope)) = &self.kv else {
                    return Ok(());
                };
                self.batch_bytes += size;
                self.kv_batch.push(Mutation::KvSet {
                    project_id: project.clone(),
                    scope_id: scope.clone(),
                    key: key.clone(),
                    value: value.clone(),
                });
            }
            Item::End(_) => self.end_project()?,
        }
        Ok(())
    }

    /// The table, its constraints but defaults (a unique constraint brings its index) and its
    /// indexes.
    fn create_table(&self, t: &TableSchema) -> Res<()> {
        let what = format!("table {}/{}/{}", t.project_id, t.scope_id, t.table_name);
        self.commit(
            &what,
            Mutation::Ddl(DdlOperation::CreateTable {
                project_id: t.project_id.clone(),
                scope_id: t.scope_id.clone(),
                table_name: t.table_name.clone(),
                owner_id: t.owner_id.clone(),
                columns: t.columns.clone(),
                primary_key: t.primary_key.clone(),
            }),
        )?;
        let mut implied = Vec::new();
        for c in &t.constraints {
            if let Constraint::Unique { name, .. } = c {
                implied.push(name.clone());
            }
            if matches!(c, Constraint::Default { .. }) {
                continue;
            }
            self.commit(
                &what,
                Mutation::Ddl(DdlOperation::AlterTable {
                    project_id: t.project_id.clone(),
                    scope_id: t.scope_id.clone(),
                    table_name: t.table_name.clone(),
                    alteration: TableAlteration::AddConstraint(c.clone()),
                }),
            )?;
        }
        for i in t
            .indexes
            .iter()
            .filter(|i| !implied.contains(&i.index_name))
        {
            self.commit(
                &what,
                Mutation::Ddl(DdlOperation::CreateIndex {
                    project_id: t.project_id.clone(),
                    scope_id: t.scope_id.clone(),
                    table_name: t.table_name.clone(),
                    index_name: i.index_name.clone(),
                    if_not_exists: false,
                    columns: i.columns.clone(),
                    index_type: i.index_type,
                    partial_filter: i.partial_filter.clone(),
                }),
            )?;
        }
        Ok(())
    }
}

pub fn restore(ctx: &mut Ctx<'_>, dump: &Path, db: &DbArgs) -> Res<i32> {
    let dir = db.data_dir.as_path();
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| CliError::at(dir, e))?;
        if entries.next().is_some() {
            return Err(CliError::at(dir, "the restore target must be empty").hint(
                "restore into a new directory (it is created) or an empty one; nothing was \
                 written",
            ));
        }
    }
    // Verify the whole dump before writing anything.
    let expected = read_dump(dump, |_| Ok(()))?;
    let config = db.config()?;
    let instance = AedbInstance::open(config, dir).map_err(|e| CliError::at(dir, e))?;
    let progress = ctx.progress(
        expected.counts.table_rows + expected.counts.kv_entries,
        "restore",
    );
    {
        let mut restorer = Restorer {
            instance: &instance,
            project: None,
            default_scope_seen: false,
            table: None,
            kv: None,
            rows: Vec::new(),
            kv_batch: Vec::new(),
            batch_bytes: 0,
        };
        read_dump(dump, |item| {
            if matches!(item, Item::Row { .. } | Item::Kv { .. }) {
                progress.inc(1);
            }
            restorer.apply(item)
        })?;
    }
    progress.finish();
    block_on(instance.shutdown())?.map_err(|e| CliError::at(dir, e))?;
    let (counts, sections, checksum, _) = database_parity(ctx, db)?;
    report_parity(
        ctx,
        dump,
        dir,
        &expected,
        (&counts, &sections, checksum),
        true,
    )
}
