//! The `aedb` command: logical dumps with parity, invariant checks, and page-level debugging
//! of a database directory. Every inspection opens the database read-only (nothing on disk
//! changes, no lock is taken), so it works beside a live process.
//!
//! [`run`] is the whole program with its output streams given, so tests run it in-process.

pub mod check;
pub mod cli;
pub mod datafile;
pub mod db;
pub mod dump;
pub mod meta;
pub mod pages;
pub mod tree;
pub mod util;
pub mod wal;
pub mod walk;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

use cli::{CheckCommand, Cli, Command, DumpCommand, PagesCommand, TreeCommand, WalCommand};
use util::{Ctx, Res, EXIT_ERROR};

/// Run `aedb` with `args` (the first is the program name); the exit status.
/// `progress`: draw progress bars on stderr (the caller knows whether it is a terminal).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, progress: bool) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(&e, out, err),
    };
    let mut ctx = Ctx::new(out, err, cli.json, progress);
    let result = dispatch(&mut ctx, &cli.command);
    finish(&mut ctx, result)
}

/// Print clap's help, version or usage error; its exit status.
pub fn report_clap_error(e: &clap::Error, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let text = e.render().to_string();
    if e.use_stderr() {
        let _ = write!(err, "{text}");
    } else {
        let _ = write!(out, "{text}");
    }
    e.exit_code()
}

/// Report damage noticed along the way and an error, if any; the exit status.
pub fn finish(ctx: &mut Ctx<'_>, result: Res<i32>) -> i32 {
    let damage = std::mem::take(&mut ctx.damage);
    for line in &damage {
        let _ = writeln!(ctx.err, "damage: {line}");
    }
    match result {
        Ok(status) if damage.is_empty() => status,
        Ok(_) => util::EXIT_FOUND,
        Err(e) if e.quiet => EXIT_ERROR,
        Err(e) => {
            if ctx.json {
                let _ = ctx.print_json(&serde_json::json!({
                    "error": e.message,
                    "hint": e.hint,
                    "damage": damage,
                }));
            }
            let _ = writeln!(ctx.err, "error: {}", e.message);
            if let Some(hint) = &e.hint {
                let _ = writeln!(ctx.err, "hint: {hint}");
            }
            EXIT_ERROR
        }
    }
}

fn dispatch(ctx: &mut Ctx<'_>, command: &Command) -> Res<i32> {
    match command {
        Command::Dump(DumpCommand::Export { db, out }) => dump::export(ctx, db, out),
        Command::Dump(DumpCommand::Parity { dump: file, db }) => dump::parity(ctx, file, db),
        Command::Dump(DumpCommand::Restore { dump: file, db }) => dump::restore(ctx, file, db),
        Command::Check(CheckCommand::Invariants(db)) => check::invariants(ctx, db),
        Command::Pages(PagesCommand::Stat(db)) => pages::stat(ctx, db),
        Command::Pages(PagesCommand::Dump { page, db, hex }) => pages::dump(ctx, db, *page, *hex),
        Command::Pages(PagesCommand::Map { db, svg, width }) => {
            pages::map(ctx, db, svg.as_deref(), *width)
        }
        Command::Tree(TreeCommand::List(db)) => tree::list(ctx, db),
        Command::Tree(TreeCommand::Dump {
            name,
            db,
            keys,
            max_pages,
        }) => tree::dump(ctx, db, name, *keys, *max_pages),
        Command::Wal(WalCommand::Dump {
            db,
            from_lsn,
            to_lsn,
            no_effects,
            max_ops,
        }) => wal::dump(ctx, db, *from_lsn, *to_lsn, *no_effects, *max_ops),
        Command::Meta(db) => meta::run(ctx, db),
    }
}
