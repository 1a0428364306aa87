//! `aedb check invariants`: the storage invariant checker on the data file (every page read
//! from disk and verified), the same checker on the recovered version (checkpoint plus log),
//! and the catalog-level checks (`catalog.rs`).

mod catalog;

use std::collections::BTreeSet;
use std::path::Path;

use aedb::catalog::namespace::{parse_tree_name, TreeKind};
use serde_json::json;

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile};
use crate::db::{open_error, Seen};
use crate::util::{key_values, Ctx, Progress, Res, Table, EXIT_FOUND, EXIT_OK};
use crate::walk::{self, Role, Walk};
use catalog::Checker;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub location: String,
    pub problem: String,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub tables: u64,
    pub table_rows: u64,
    pub indexes: u64,
    pub kv_entries: u64,
    pub trees: u64,
    pub pages: u64,
    pub seq: u64,
}

/// Name the tree (and role) of a damaged page, from the walk that found it.
fn locate(w: &Walk, page: u64) -> String {
    match w.pages.get(page as usize) {
        Some(info) if matches!(info.role, Role::Branch | Role::Leaf | Role::Overflow) => {
            let tree = w.tree_name(info).unwrap_or("?");
            let what = w.describe(tree);
            let role = if info.bad && info.role == Role::Branch {
                "node".to_string()
            } else {
                info.role.name().to_string()
            };
            if what.is_empty() {
                format!("page {page} ({role} of tree {tree})")
            } else {
                format!("page {page} ({role} of tree {tree}: {what})")
            }
        }
        Some(info) => format!("page {page} ({})", info.role.name()),
        None => format!("page {page}"),
    }
}

pub fn invariants(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<i32> {
    let (violations, summary) = analyse(ctx, db)?;
    render(ctx, &db.data_dir, &violations, &summary)?;
    Ok(if violations.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    })
}

/// Every violation, in order (the data file's, the log's, the recovered version's, the
/// catalog's), and what was checked.
fn analyse(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<(Vec<Violation>, Summary)> {
    let dir: &Path = &db.data_dir;
    let df = DataFile::open(dir)?;
    let metas = read_metas(&df)?;
    let mut violations = Vec::new();
    for slot in &metas.slots {
        if let Err(e) = &slot.verdict {
            violations.push(Violation {
                location: format!("page {} (meta)", slot.slot),
                problem: format!("invalid meta page: {e}"),
            });
        }
    }
    let mut summary = Summary::default();
    if let Some(meta) = metas.current {
        summary.pages = meta.page_count;
        let spinner = ctx.progress(0, "storage");
        let w = walk::check(&df, &meta, &Progress::hidden())?;
        spinner.finish();
        for v in &w.report.violations {
            violations.push(Violation {
                location: v
                    .page
                    .map_or_else(|| "data file".to_string(), |page| locate(&w, page)),
                problem: v.message.clone(),
            });
        }
    } else {
        violations.push(Violation {
            location: df.path.display().to_string(),
            problem: format!("no valid meta page: {}", metas.why),
        });
    }
    // Engine-level checks on the recovered state (checkpoint plus log, in memory).
    let config = db.config()?;
    let config_key = config.hmac_key.is_some();
    match aedb::AedbInstance::open_read_only(config, dir) {
        Err(e) => violations.push(Violation {
            location: dir.display().to_string(),
            problem: open_error(
                dir,
                &e,
                Seen {
                    key_given: config_key,
                    meta_valid: metas.current.is_some(),
                },
            )
            .message,
        }),
        Ok(instance) => {
            let engine = instance.engine();
            if engine.recovery_report().dropped.is_some() {
                for d in crate::wal::analyse(dir, db.hmac_key()?).damage {
                    violations.push(Violation {
                        location: "write-ahead log".into(),
                        problem: d,
                    });
                }
            }
            let head = engine.store().check();
            let known: BTreeSet<String> = violations.iter().map(|v| v.problem.clone()).collect();
            for v in head.violations {
                if !known.contains(&v.message) {
                    violations.push(Violation {
                        location: format!(
                            "recovered version{}",
                            v.page.map(|p| format!(", page {p}")).unwrap_or_default()
                        ),
                        problem: v.message,
                    });
                }
            }
            let snapshot = engine.snapshot();
            let rows: u64 = snapshot
                .trees()
                .map(|t| {
                    t.iter()
                        .filter(|(n, _)| matches!(parse_tree_name(n), TreeKind::Table { .. }))
                        .map(|(_, r)| r.len)
                        .sum()
                })
                .unwrap_or(0);
            let progress = ctx.progress(rows, "rows");
            let mut checker = Checker {
                violations: Vec::new(),
                snapshot: &snapshot,
                summary: Summary {
                    pages: summary.pages,
                    seq: snapshot.seq(),
                    ..Summary::default()
                },
            };
            checker.run(&progress);
            progress.finish();
            violations.extend(checker.violations);
            summary = checker.summary;
        }
    }
    violations.dedup();
    Ok((violations, summary))
}

fn render(ctx: &mut Ctx<'_>, dir: &Path, violations: &[Violation], summary: &Summary) -> Res<()> {
    let ok = violations.is_empty();
    if ctx.json {
        ctx.print_json(&json!({
            "ok": ok,
            "data_dir": dir.display().to_string(),
            "seq": summary.seq,
            "tables": summary.tables,
            "table_rows": summary.table_rows,
            "indexes": summary.indexes,
            "kv_entries": summary.kv_entries,
            "trees": summary.trees,
            "pages": summary.pages,
            "violations": violations.iter().map(|v| json!({
                "location": v.location, "problem": v.problem
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        if ok {
            ctx.line("ok")?;
        } else {
            ctx.line(format!("violations: {}", violations.len()))?;
        }
        ctx.line(key_values(&[
            ("database", dir.display().to_string()),
            ("recovered seq", summary.seq.to_string()),
            ("tables", summary.tables.to_string()),
            ("table rows", summary.table_rows.to_string()),
            ("indexes", summary.indexes.to_string()),
            ("kv entries", summary.kv_entries.to_string()),
            ("trees", summary.trees.to_string()),
            ("pages", summary.pages.to_string()),
        ]))?;
        if !ok {
            let mut table = Table::new(&["LOCATION", "VIOLATION"]);
            for v in violations {
                table.row(vec![v.location.clone(), v.problem.clone()]);
            }
            ctx.line(table.render().trim_end())?;
        }
    }
    Ok(())
}
