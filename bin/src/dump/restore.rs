//! `aedb dump restore`: a verified dump replayed into an empty directory through the public
//! API, then its parity checked.

use std::path::Path;

use aedb::catalog::namespace::DEFAULT_SCOPE_ID;
use aedb::catalog::schema::{Constraint, TableSchema};
use aedb::catalog::types::Row;
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::Mutation;
use aedb::AedbInstance;

use super::parity::{database_parity, report_parity};
use super::{read_dump, Item};
use crate::cli::DbArgs;
use crate::db::block_on;
use crate::util::{CliError, Ctx, Res};

/// Rows (or KV entries) per restore commit, and their bytes at most.
const BATCH_ITEMS: usize = 1000;
const BATCH_BYTES: usize = 2 << 20;

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
        for c in &t.constraints {
            if matches!(c, Constraint::Default { .. }) {
                self.add_constraint(&t, c)?;
            }
        }
        Ok(())
    }

    fn add_constraint(&self, t: &TableSchema, c: &Constraint) -> Res<()> {
        let what = format!("table {}/{}/{}", t.project_id, t.scope_id, t.table_name);
        self.commit(
            &what,
            Mutation::Ddl(DdlOperation::AlterTable {
                project_id: t.project_id.clone(),
                scope_id: t.scope_id.clone(),
                table_name: t.table_name.clone(),
                alteration: TableAlteration::AddConstraint(c.clone()),
            }),
        )
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
            if !matches!(c, Constraint::Default { .. }) {
                self.add_constraint(t, c)?;
            }
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
