//! `aedb dump export`: a database traversed in dump order through the engine's owners of its
//! data (`aedb::stored`: the catalog, rows, KV entries) at one snapshot, streamed to a dump.

use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use aedb::catalog::namespace::{
    kv_tree, parse_tree_name, table_tree, ProjectEntry, ScopeEntry, TreeKind,
};
use aedb::catalog::rows::encode_row;
use aedb::catalog::schema::TableSchema;
use aedb::catalog::types::Row;
use aedb::stored::{catalog, kv, rows};
use aedb_pager::Snapshot;
use serde_json::json;

use super::format::DumpWriter;
use super::parity::{sections_json, ParityVisitor};
use super::{status, Counts, Visitor};
use crate::cli::DbArgs;
use crate::db::open_read_only;
use crate::util::{
    engine_detail, fmt_encoded_key, human_bytes, key_values, CliError, Ctx, Progress, Res,
};

fn storage_error(dir: &Path, what: &str, err: impl std::fmt::Display) -> CliError {
    CliError::at(dir, format!("{what}: {err}")).hint(format!(
        "`aedb check invariants --data-dir {}` lists every damaged page",
        dir.display()
    ))
}

/// Visit every project, scope, table, row and KV entry of a snapshot, in dump order.
pub fn traverse(
    snapshot: &Snapshot,
    dir: &Path,
    visitor: &mut dyn Visitor,
    progress: &Progress,
) -> Res<()> {
    let catalog_error =
        |e: aedb::AedbError| storage_error(dir, "cannot read the catalog", engine_detail(&e));
    for project in catalog::projects(snapshot).map_err(catalog_error)? {
        // The engine's own tables (event outbox, processor state, lifecycle outbox) are not
        // user data: a restore could not write them, and they are not part of a dump.
        if project.project_id == aedb::catalog::namespace::SYSTEM_PROJECT_ID {
            continue;
        }
        visitor.project(&project)?;
        for scope in catalog::scopes(snapshot, &project.project_id).map_err(catalog_error)? {
            visitor.scope(&scope)?;
            let (p, s) = (&scope.project_id, &scope.scope_id);
            for schema in catalog::tables(snapshot, p, s).map_err(catalog_error)? {
                visitor.table(&schema)?;
                table_rows(snapshot, dir, &schema, visitor, progress)?;
            }
            visitor.kv_space(p, s)?;
            kv_entries(snapshot, dir, p, s, visitor, progress)?;
        }
    }
    Ok(())
}

/// A table's rows, in primary-key order.
fn table_rows(
    snapshot: &Snapshot,
    dir: &Path,
    schema: &TableSchema,
    visitor: &mut dyn Visitor,
    progress: &Progress,
) -> Res<()> {
    let what = format!(
        "table {}/{}/{} (tree {})",
        schema.project_id,
        schema.scope_id,
        schema.table_name,
        table_tree(schema.table_id)
    );
    let damaged = |e: aedb::AedbError| storage_error(dir, &what, engine_detail(&e));
    for item in rows::scan(snapshot, schema).map_err(damaged)? {
        let (key, row) = item.map_err(damaged)?;
        let row = row.map_err(|e| {
            let row = format!("{what}: row {}", fmt_encoded_key(&key));
            storage_error(dir, &row, engine_detail(&e))
        })?;
        visitor.row(&key, &row)?;
        progress.inc(1);
    }
    Ok(())
}

/// KV entries read per page of a scope's KV space.
const KV_PAGE: usize = 1024;

/// A scope's KV entries, in key order, a page at a time.
fn kv_entries(
    snapshot: &Snapshot,
    dir: &Path,
    project: &str,
    scope: &str,
    visitor: &mut dyn Visitor,
    progress: &Progress,
) -> Res<()> {
    let what = format!(
        "KV space {project}/{scope} (tree {})",
        kv_tree(project, scope)
    );
    let mut start = Bound::Unbounded;
    loop {
        let page = kv::scan(
            snapshot,
            (project, scope),
            (start, Bound::Unbounded),
            KV_PAGE,
            u64::MAX,
            &|_| true,
        )
        .map_err(|e| storage_error(dir, &what, engine_detail(&e)))?;
        for (key, entry) in &page.entries {
            visitor.kv(key, entry.version, entry.created_at, &entry.value)?;
            progress.inc(1);
        }
        match page.entries.into_iter().next_back() {
            Some((last, _)) if page.more => start = Bound::Excluded(last),
            _ => return Ok(()),
        }
    }
}

/// Rows plus KV entries of a snapshot (for progress bars).
pub(super) fn item_count(snapshot: &Snapshot) -> u64 {
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

/// Writes what a traversal reports to the dump, computing its parity on the way.
struct ExportVisitor {
    writer: DumpWriter,
    parity: ParityVisitor,
}

impl Visitor for ExportVisitor {
    fn project(&mut self, entry: &ProjectEntry) -> Res<()> {
        self.parity.project(entry)?;
        self.writer.project(entry)
    }
    fn scope(&mut self, entry: &ScopeEntry) -> Res<()> {
        self.parity.scope(entry)?;
        self.writer.scope(entry)
    }
    fn table(&mut self, schema: &TableSchema) -> Res<()> {
        self.parity.table(schema)?;
        self.writer.table(schema)
    }
    fn row(&mut self, key: &[u8], row: &Row) -> Res<()> {
        let encoded = encode_row(row);
        self.parity.encoded_row(key, &encoded);
        self.writer.row(key, &encoded)
    }
    fn kv_space(&mut self, project: &str, scope: &str) -> Res<()> {
        self.parity.kv_space(project, scope)?;
        self.writer.kv_space(project, scope)
    }
    fn kv(&mut self, key: &[u8], version: u64, created_at: u64, value: &[u8]) -> Res<()> {
        self.parity.kv(key, version, created_at, value)?;
        self.writer.kv(key, version, created_at, value)
    }
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

/// What an export wrote.
struct Exported {
    snapshot_seq: u64,
    counts: Counts,
    parity: [u8; 32],
    bytes: u64,
}

pub fn export(ctx: &mut Ctx<'_>, db: &DbArgs, out: &Path) -> Res<i32> {
    let instance = open_read_only(db, ctx)?;
    let snapshot = instance.engine().snapshot();
    let tmp = temp_path(out);
    let file = File::create(&tmp).map_err(|e| {
        CliError::at(&tmp, e).hint("the directory of --out must exist and be writable")
    })?;
    let exported = match write_dump(ctx, &db.data_dir, &snapshot, tmp.clone(), file) {
        Ok(exported) => exported,
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
    render(ctx, out, &exported)?;
    Ok(status(ctx))
}

/// The whole dump of `snapshot`, written to `file` (at `path`) and synced.
fn write_dump(
    ctx: &Ctx<'_>,
    dir: &Path,
    snapshot: &Snapshot,
    path: PathBuf,
    file: File,
) -> Res<Exported> {
    let mut visitor = ExportVisitor {
        writer: DumpWriter::new(path, file)?,
        parity: ParityVisitor::default(),
    };
    visitor.writer.header(&json!({
        "format": "aedb-dump",
        "version": super::format::VERSION,
        "source": dir.display().to_string(),
        "snapshot_seq": snapshot.seq(),
        "created_unix_micros": now_micros(),
        "tool": format!("aedb-cli {}", env!("CARGO_PKG_VERSION")),
    }))?;
    let progress = ctx.progress(item_count(snapshot), "dump");
    traverse(snapshot, dir, &mut visitor, &progress)?;
    progress.finish();
    let ExportVisitor { writer, parity } = visitor;
    let counts = parity.counts;
    let (sections, checksum) = parity.parity.finish();
    let end = json!({
        "records": writer.records() + 1,
        "snapshot_seq": snapshot.seq(),
        "projects": counts.projects,
        "scopes": counts.scopes,
        "tables": counts.tables,
        "table_rows": counts.table_rows,
        "kv_entries": counts.kv_entries,
        "parity": hex::encode(checksum),
        "sections": sections_json(&sections),
    });
    let bytes = writer.finish(&end)?;
    Ok(Exported {
        snapshot_seq: snapshot.seq(),
        counts,
        parity: checksum,
        bytes,
    })
}

fn render(ctx: &mut Ctx<'_>, out: &Path, e: &Exported) -> Res<()> {
    let counts = &e.counts;
    if ctx.json {
        return ctx.print_json(&json!({
            "ok": true,
            "dump": out.display().to_string(),
            "snapshot_seq": e.snapshot_seq,
            "parity": hex::encode(e.parity),
            "projects": counts.projects,
            "scopes": counts.scopes,
            "tables": counts.tables,
            "table_rows": counts.table_rows,
            "kv_entries": counts.kv_entries,
            "bytes": e.bytes,
        }));
    }
    ctx.line("ok")?;
    ctx.line(key_values(&[
        ("dump", out.display().to_string()),
        ("snapshot seq", e.snapshot_seq.to_string()),
        (
            "namespaces",
            format!("{} projects, {} scopes", counts.projects, counts.scopes),
        ),
        (
            "tables",
            format!("{} ({} rows)", counts.tables, counts.table_rows),
        ),
        ("kv entries", counts.kv_entries.to_string()),
        ("parity", hex::encode(e.parity)),
        ("size", human_bytes(e.bytes)),
    ]))
}
