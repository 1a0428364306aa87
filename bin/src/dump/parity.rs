//! The parity checksum: a SHA-256 over a database's logical content, computed alike from a
//! database (a traversal) and from a dump (its records), and `aedb dump parity`.

use std::path::Path;

use aedb::catalog::namespace::{encode_entry, ProjectEntry, ScopeEntry};
use aedb::catalog::rows::encode_row;
use aedb::catalog::schema::TableSchema;
use aedb::catalog::types::Row;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use super::export::item_count;
use super::{status, traverse, Counts, Item, ItemReader, Visitor};
use crate::cli::DbArgs;
use crate::db::open_read_only;
use crate::util::{key_values, CliError, Ctx, Res, EXIT_FOUND};

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

/// The parity of what a traversal or a dump reports, and its counts.
#[derive(Default)]
pub(super) struct ParityVisitor {
    pub(super) parity: Parity,
    pub(super) counts: Counts,
}

impl ParityVisitor {
    /// A row already encoded in column order (as a dump holds it).
    pub(super) fn encoded_row(&mut self, key: &[u8], encoded_row: &[u8]) {
        self.counts.table_rows += 1;
        self.parity.row(key, encoded_row);
    }
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
        self.encoded_row(key, &encode_row(row));
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

pub(super) fn sections_json(sections: &[Section]) -> Json {
    Json::Array(
        sections
            .iter()
            .map(|s| json!({"name": s.name, "count": s.count, "digest": hex::encode(s.digest)}))
            .collect(),
    )
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
    let mut parity = ParityVisitor::default();
    let mut header = Json::Null;
    let mut end = Json::Null;
    while let Some(item) = reader.next_item()? {
        match &item {
            Item::Header(h) => header = h.clone(),
            Item::Project(p) => parity.project(p)?,
            Item::Scope(s) => parity.scope(s)?,
            Item::Table(t) => parity.table(t)?,
            Item::Row { key, encoded, .. } => parity.encoded_row(key, encoded),
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
pub(super) fn database_parity(
    ctx: &mut Ctx<'_>,
    db: &DbArgs,
) -> Res<(Counts, Vec<Section>, [u8; 32], u64)> {
    let instance = open_read_only(db, ctx)?;
    let snapshot = instance.engine().snapshot();
    let mut visitor = ParityVisitor::default();
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

pub(super) fn report_parity(
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
