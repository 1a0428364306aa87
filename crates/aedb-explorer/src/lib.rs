//! `aedb-explorer`: browse a database read-only — projects, scopes, tables, their schemas,
//! rows and KV entries. Unlike the original's explorer it never opens the database for
//! writing: no byte on disk changes and no lock is taken, so it works beside a live process.
//!
//! [`run`] is the whole program with its output streams given, so tests run it in-process.

use std::ffi::OsString;
use std::io::Write;

use aedb::catalog::schema::{Constraint, TableSchema};
use aedb::query::plan::{Query, QueryOptions};
use aedb::query::QueryError;
use aedb::{AedbError, AedbInstance, CallerContext};
use aedb_cli::cli::DbArgs;
use aedb_cli::db::{block_on, open_read_only};
use aedb_cli::util::{
    clip, fmt_value, key_values, parse_hex, printable, value_json, CliError, Ctx, Res, Table,
    EXIT_FOUND, EXIT_OK,
};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value as Json};

#[derive(Debug, Parser)]
#[command(
    name = "aedb-explorer",
    version,
    about = "Browse an aedb database read-only: projects, scopes, tables, rows, KV",
    long_about = "Browse an aedb database read-only: projects, scopes, tables, rows, KV.\n\n\
        The database is opened read-only (the newest checkpoint plus the log redone in \
        memory): nothing on disk changes and no lock is taken, so it works beside a live \
        process.",
    after_help = "Examples:\n  \
        aedb-explorer projects --data-dir ./db\n  \
        aedb-explorer tables --data-dir ./db --project demo --scope app\n  \
        aedb-explorer scan-table --data-dir ./db --project demo --scope app --table users --limit 20"
)]
pub struct Cli {
    /// Print one JSON document instead of the human form
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Scope {
    #[arg(long, value_name = "PROJECT")]
    pub project: String,
    #[arg(long, value_name = "SCOPE")]
    pub scope: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every project: its scopes and creation time
    #[command(after_help = "Example:\n  aedb-explorer projects --data-dir ./db")]
    Projects {
        #[command(flatten)]
        db: DbArgs,
    },
    /// The scopes of a project
    #[command(after_help = "Example:\n  aedb-explorer scopes --data-dir ./db --project demo")]
    Scopes {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, value_name = "PROJECT")]
        project: String,
    },
    /// The tables of a scope: columns, primary key, indexes, rows
    #[command(
        after_help = "Example:\n  aedb-explorer tables --data-dir ./db --project demo --scope app"
    )]
    Tables {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        at: Scope,
    },
    /// One table's schema: columns, primary key, indexes, constraints
    #[command(
        after_help = "Example:\n  aedb-explorer describe-table --data-dir ./db --project demo --scope app --table users"
    )]
    DescribeTable {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        at: Scope,
        #[arg(long, value_name = "TABLE")]
        table: String,
    },
    /// Rows of a table in primary-key order
    #[command(
        after_help = "Example:\n  aedb-explorer scan-table --data-dir ./db --project demo --scope app --table users --limit 20"
    )]
    ScanTable {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        at: Scope,
        #[arg(long, value_name = "TABLE")]
        table: String,
        /// Rows to show at most
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Continue after the page a previous scan ended with
        #[arg(long, value_name = "CURSOR")]
        cursor: Option<String>,
        /// Show long values whole (else cut at 68 characters; --json always has them whole)
        #[arg(long)]
        wide: bool,
    },
    /// Entries of a scope's KV space in key order
    #[command(
        after_help = "Example:\n  aedb-explorer scan-kv --data-dir ./db --project demo --scope app --prefix-hex 7573 --limit 10"
    )]
    ScanKv {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        at: Scope,
        /// Entries to show at most
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Only keys starting with these bytes (hex)
        #[arg(long, value_name = "HEX")]
        prefix_hex: Option<String>,
        /// Continue after the page a previous scan ended with
        #[arg(long, value_name = "CURSOR")]
        cursor: Option<String>,
        /// Read as this caller, who sees only the keys its KvRead grants cover (without it:
        /// every key, as the owner of the data directory)
        #[arg(long, value_name = "ID")]
        caller_id: Option<String>,
        /// Show long values whole (else cut at 68 characters; --json always has them whole)
        #[arg(long)]
        wide: bool,
    },
}

/// Run `aedb-explorer` with `args` (the first is the program name); the exit status.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, progress: bool) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return aedb_cli::report_clap_error(&e, out, err),
    };
    let mut ctx = Ctx::new(out, err, cli.json, progress);
    let result = dispatch(&mut ctx, &cli.command);
    aedb_cli::finish(&mut ctx, result)
}

/// Characters of a cell shown at most without `--wide`.
const CELL_CHARS: usize = 68;

fn cell(text: String, wide: bool) -> String {
    if wide || text.chars().count() <= CELL_CHARS {
        text
    } else {
        format!(
            "{} ({} chars)",
            clip(&text, CELL_CHARS),
            text.chars().count()
        )
    }
}

fn status(ctx: &Ctx<'_>) -> i32 {
    if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    }
}

/// What the explorer needs of an engine error: its text, and whether it is damaged data.
trait EngineError: std::fmt::Display {
    fn is_damage(&self) -> bool;
}

impl EngineError for AedbError {
    fn is_damage(&self) -> bool {
        self.is_corruption()
    }
}

impl EngineError for QueryError {
    fn is_damage(&self) -> bool {
        matches!(self, QueryError::Corruption { .. })
    }
}

/// An engine error of a command; damaged data gets the command that lists the damage.
fn api_error(db: &DbArgs, e: impl EngineError) -> CliError {
    let err = CliError::at(&db.data_dir, &e);
    if e.is_damage() {
        err.hint(format!(
            "the data file is damaged: `aedb check invariants --data-dir {}` lists every \
             damaged page",
            db.data_dir.display()
        ))
    } else {
        err
    }
}

fn dispatch(ctx: &mut Ctx<'_>, command: &Command) -> Res<i32> {
    match command {
        Command::Projects { db } => projects(ctx, db),
        Command::Scopes { db, project } => scopes(ctx, db, project),
        Command::Tables { db, at } => tables(ctx, db, at),
        Command::DescribeTable { db, at, table } => describe(ctx, db, at, table),
        Command::ScanTable {
            db,
            at,
            table,
            limit,
            cursor,
            wide,
        } => scan_table(ctx, db, at, table, *limit, cursor.clone(), *wide),
        Command::ScanKv {
            db,
            at,
            limit,
            prefix_hex,
            cursor,
            caller_id,
            wide,
        } => scan_kv(
            ctx,
            db,
            at,
            (*limit, prefix_hex.as_deref(), cursor.clone()),
            caller_id.as_deref(),
            *wide,
        ),
    }
}

fn projects(ctx: &mut Ctx<'_>, db: &DbArgs) -> Res<i32> {
    let instance = open_read_only(db, ctx)?;
    let list = block_on(instance.list_projects())?.map_err(|e| api_error(db, e))?;
    if ctx.json {
        ctx.print_json(&json!({
            "projects": list.iter().map(|p| json!({
                "project_id": p.project_id,
                "scope_count": p.scope_count,
                "created_at_micros": p.created_at_micros,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut table = Table::new(&["PROJECT", "SCOPES", "CREATED_AT_MICROS"]);
        for p in &list {
            table.row(vec![
                p.project_id.clone(),
                p.scope_count.to_string(),
                p.created_at_micros.to_string(),
            ]);
        }
        ctx.line(table.render().trim_end())?;
    }
    Ok(status(ctx))
}

fn scopes(ctx: &mut Ctx<'_>, db: &DbArgs, project: &str) -> Res<i32> {
    let instance = open_read_only(db, ctx)?;
    let list = block_on(instance.list_scopes(project))?.map_err(|e| {
        api_error(db, e).hint(format!(
            "`aedb-explorer projects --data-dir {}` lists the projects",
            db.data_dir.display()
        ))
    })?;
    if ctx.json {
        ctx.print_json(&json!({"project": project, "scopes": list}))?;
    } else {
        let mut table = Table::new(&["SCOPE"]);
        for s in &list {
            table.row(vec![s.clone()]);
        }
        ctx.line(table.render().trim_end())?;
    }
    Ok(status(ctx))
}

fn row_count(instance: &AedbInstance, schema: &TableSchema) -> u64 {
    aedb::stored::rows::count(&instance.engine().snapshot(), schema).unwrap_or(0)
}

fn tables(ctx: &mut Ctx<'_>, db: &DbArgs, at: &Scope) -> Res<i32> {
    let instance = open_read_only(db, ctx)?;
    if !block_on(instance.scope_exists(&at.project, &at.scope))?.map_err(|e| api_error(db, e))? {
        return Err(CliError::at(
            &db.data_dir,
            format!("scope {}/{} does not exist", at.project, at.scope),
        )
        .hint(format!(
            "`aedb-explorer scopes --data-dir {} --project {}` lists its scopes",
            db.data_dir.display(),
            at.project
        )));
    }
    let list =
        block_on(instance.list_tables(&at.project, &at.scope))?.map_err(|e| api_error(db, e))?;
    if ctx.json {
        ctx.print_json(&json!({
            "project": at.project,
            "scope": at.scope,
            "tables": list.iter().map(|t| json!({
                "table": t.table_name,
                "columns": t.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
                "primary_key": t.primary_key,
                "indexes": t.indexes.iter().map(|i| &i.index_name).collect::<Vec<_>>(),
                "rows": row_count(&instance, t),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut table = Table::new(&["TABLE", "COLUMNS", "PRIMARY_KEY", "INDEXES", "ROWS"]);
        for t in &list {
            table.row(vec![
                t.table_name.clone(),
                t.columns.len().to_string(),
                t.primary_key.join(","),
                t.indexes
                    .iter()
                    .map(|i| i.index_name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                row_count(&instance, t).to_string(),
            ]);
        }
        ctx.line(table.render().trim_end())?;
    }
    Ok(status(ctx))
}

fn describe(ctx: &mut Ctx<'_>, db: &DbArgs, at: &Scope, table: &str) -> Res<i32> {
    let instance = open_read_only(db, ctx)?;
    let schema = block_on(instance.describe_table(&at.project, &at.scope, table))?
        .map_err(|e| table_hint(db, at, api_error(db, e)))?;
    let default_of = |name: &str| schema.default_for(name).map(fmt_value);
    if ctx.json {
        ctx.print_json(&json!({
            "project": schema.project_id,
            "scope": schema.scope_id,
            "table": schema.table_name,
            "table_id": schema.table_id,
            "owner": schema.owner_id,
            "rows": row_count(&instance, &schema),
            "columns": schema.columns.iter().map(|c| json!({
                "name": c.name,
                "type": c.col_type.name(),
                "nullable": c.nullable,
                "primary_key": schema.primary_key.contains(&c.name),
                "default": schema.default_for(&c.name).map(value_json),
            })).collect::<Vec<_>>(),
            "primary_key": schema.primary_key,
            "indexes": schema.indexes.iter().map(|i| json!({
                "name": i.index_name,
                "columns": i.columns,
                "type": format!("{:?}", i.index_type),
                "partial_filter": i.partial_filter.as_ref().map(|f| format!("{f:?}")),
            })).collect::<Vec<_>>(),
            "constraints": schema.constraints.iter().map(constraint_text).collect::<Vec<_>>(),
        }))?;
    } else {
        ctx.line(key_values(&[
            (
                "table",
                format!(
                    "{}/{}/{}",
                    schema.project_id, schema.scope_id, schema.table_name
                ),
            ),
            ("table id", schema.table_id.to_string()),
            (
                "owner",
                schema.owner_id.clone().unwrap_or_else(|| "-".into()),
            ),
            ("rows", row_count(&instance, &schema).to_string()),
            ("primary key", schema.primary_key.join(", ")),
        ]))?;
        let mut cols = Table::new(&["COLUMN", "TYPE", "NULLABLE", "PK", "DEFAULT"]);
        for c in &schema.columns {
            cols.row(vec![
                c.name.clone(),
                c.col_type.name().into(),
                if c.nullable { "yes" } else { "no" }.into(),
                if schema.primary_key.contains(&c.name) {
                    "yes"
                } else {
                    ""
                }
                .into(),
                default_of(&c.name).unwrap_or_default(),
            ]);
        }
        ctx.line(cols.render())?;
        if !schema.indexes.is_empty() {
            let mut idx = Table::new(&["INDEX", "COLUMNS", "TYPE", "PARTIAL_FILTER"]);
            for i in &schema.indexes {
                idx.row(vec![
                    i.index_name.clone(),
                    i.columns.join(","),
                    format!("{:?}", i.index_type),
                    i.partial_filter
                        .as_ref()
                        .map(|f| format!("{f:?}"))
                        .unwrap_or_default(),
                ]);
            }
            ctx.line(idx.render())?;
        }
        if !schema.constraints.is_empty() {
            ctx.line("constraints")?;
            for c in &schema.constraints {
                ctx.line(format!("  {}", constraint_text(c)))?;
            }
        }
    }
    Ok(status(ctx))
}

fn constraint_text(c: &Constraint) -> String {
    match c {
        Constraint::Unique { name, columns } => format!("unique {name} ({})", columns.join(", ")),
        Constraint::Check { name, expr } => format!("check {name}: {expr:?}"),
        Constraint::NotNull { column } => format!("not null {column}"),
        Constraint::Default { column, value } => format!("default {column} = {}", fmt_value(value)),
    }
}

fn table_hint(db: &DbArgs, at: &Scope, e: CliError) -> CliError {
    e.hint(format!(
        "`aedb-explorer tables --data-dir {} --project {} --scope {}` lists its tables",
        db.data_dir.display(),
        at.project,
        at.scope
    ))
}

fn scan_table(
    ctx: &mut Ctx<'_>,
    db: &DbArgs,
    at: &Scope,
    table: &str,
    limit: u64,
    mut cursor: Option<String>,
    wide: bool,
) -> Res<i32> {
    let instance = open_read_only(db, ctx)?;
    let schema = block_on(instance.describe_table(&at.project, &at.scope, table))?
        .map_err(|e| table_hint(db, at, api_error(db, e)))?;
    let mut rows = Vec::new();
    let mut examined = 0usize;
    let mut snapshot_seq;
    let mut columns;
    // A page holds at most `max_scan_rows` rows: follow cursors until `limit` rows.
    loop {
        let want = (limit as usize - rows.len()).max(1);
        let query = Query::select(&["*"]).from(table).limit(want);
        let options = QueryOptions {
            cursor: cursor.take(),
            ..QueryOptions::default()
        };
        let page = block_on(instance.query_with_options(&at.project, &at.scope, query, options))?
            .map_err(|e| api_error(db, e))?;
        examined += page.rows_examined;
        snapshot_seq = page.snapshot_seq;
        columns = page.columns;
        rows.extend(page.rows);
        cursor = page.cursor;
        if cursor.is_none() || rows.len() as u64 >= limit {
            break;
        }
    }
    rows.truncate(limit as usize);
    let truncated = cursor.is_some();
    let types: Vec<String> = columns
        .iter()
        .map(|c| {
            schema
                .columns
                .iter()
                .find(|d| &d.name == c)
                .map_or(String::new(), |d| d.col_type.name().to_string())
        })
        .collect();
    if ctx.json {
        ctx.print_json(&json!({
            "columns": columns.iter().zip(&types).map(|(c, t)| json!({"name": c, "type": t})).collect::<Vec<_>>(),
            "rows": rows.iter().map(|r| Json::Array(r.values.iter().map(value_json).collect())).collect::<Vec<_>>(),
            "rows_returned": rows.len(),
            "rows_examined": examined,
            "truncated": truncated,
            "snapshot_seq": snapshot_seq,
            "cursor": cursor,
        }))?;
    } else {
        let headers: Vec<String> = columns
            .iter()
            .zip(&types)
            .map(|(c, t)| format!("{c}:{t}"))
            .collect();
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut out = Table::new(&header_refs);
        for r in &rows {
            out.row(r.values.iter().map(|v| cell(fmt_value(v), wide)).collect());
        }
        ctx.line(out.render().trim_end())?;
        ctx.line(format!(
            "rows_returned={} rows_examined={examined} truncated={truncated} snapshot_seq={snapshot_seq}",
            rows.len()
        ))?;
        if let Some(c) = &cursor {
            ctx.line(format!("cursor={c}"))?;
        }
    }
    Ok(status(ctx))
}

fn scan_kv(
    ctx: &mut Ctx<'_>,
    db: &DbArgs,
    at: &Scope,
    (limit, prefix_hex, cursor): (u64, Option<&str>, Option<String>),
    caller_id: Option<&str>,
    wide: bool,
) -> Res<i32> {
    let prefix = match prefix_hex {
        Some(text) => parse_hex(text).map_err(|e| {
            CliError::new(format!("--prefix-hex: {e}"))
                .hint("give the prefix as hex, e.g. 7573 for \"us\"")
        })?,
        None => Vec::new(),
    };
    let instance = open_read_only(db, ctx)?;
    if !block_on(instance.scope_exists(&at.project, &at.scope))?.map_err(|e| api_error(db, e))? {
        return Err(CliError::at(
            &db.data_dir,
            format!("scope {}/{} does not exist", at.project, at.scope),
        ));
    }
    let latest = aedb::query::plan::ConsistencyMode::AtLatest;
    let (project, scope) = (&at.project, &at.scope);
    let page = match caller_id {
        Some(id) => {
            let caller = CallerContext::new(id);
            block_on(
                instance.kv_scan_prefix(project, scope, &prefix, limit, cursor, latest, &caller),
            )?
        }
        None => {
            let (start, end) = aedb::storage::keyspace::kv_prefix_bounds(&prefix);
            block_on(
                instance.kv_scan_range_no_auth(project, scope, start, end, limit, cursor, latest),
            )?
        }
    }
    .map_err(|e| api_error(db, e))?;
    if ctx.json {
        ctx.print_json(&json!({
            "entries": page.entries.iter().map(|(k, e)| json!({
                "key_hex": hex::encode(k),
                "key": printable(k),
                "value_hex": hex::encode(&e.value),
                "version": e.version,
                "created_at": e.created_at,
            })).collect::<Vec<_>>(),
            "entries_returned": page.entries.len(),
            "truncated": page.truncated,
            "snapshot_seq": page.snapshot_seq,
            "cursor": page.cursor,
        }))?;
    } else {
        let mut table = Table::new(&["KEY_HEX", "KEY", "VALUE_HEX", "VERSION", "CREATED_AT"])
            .text_column(0)
            .text_column(2);
        for (k, e) in &page.entries {
            table.row(vec![
                cell(hex::encode(k), wide),
                cell(printable(k), wide),
                cell(hex::encode(&e.value), wide),
                e.version.to_string(),
                e.created_at.to_string(),
            ]);
        }
        ctx.line(table.render().trim_end())?;
        ctx.line(format!(
            "entries_returned={} truncated={} snapshot_seq={}",
            page.entries.len(),
            page.truncated,
            page.snapshot_seq
        ))?;
        if let Some(c) = &page.cursor {
            ctx.line(format!("cursor={c}"))?;
        }
    }
    Ok(status(ctx))
}
