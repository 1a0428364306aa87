//! Opening a database for inspection: read-only (no byte written, no lock), with the meta pages
//! and the end of the log checked first so that damage is named even when opening copes.

use std::future::Future;
use std::path::Path;

use aedb::AedbInstance;

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile};
use crate::util::{CliError, Ctx, Res};
use crate::wal;

/// Run a future of the engine's async API to completion on this thread.
pub fn block_on<F: Future>(future: F) -> Res<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// Damage visible without the engine: invalid meta pages, a log that is cut short.
pub fn preflight(dir: &Path, ctx: &mut Ctx<'_>) -> Res<()> {
    let df = DataFile::open(dir)?;
    let metas = read_metas(&df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    Ok(())
}

/// Open read-only: the newest checkpoint plus the log redone in memory.
pub fn open_read_only(args: &DbArgs, ctx: &mut Ctx<'_>) -> Res<AedbInstance> {
    let dir = args.data_dir.as_path();
    preflight(dir, ctx)?;
    let config = args.config()?;
    let instance = AedbInstance::open_read_only(config, dir).map_err(|e| open_error(dir, &e))?;
    if let Some(dropped) = &instance.engine().recovery_report().dropped {
        // A torn tail is what a crash leaves; a frame cut off by the end of its (preallocated)
        // segment file, or damage a later frame proves durable, is not.
        let analysis = wal::analyse(dir, args.hmac_key()?);
        if analysis.damage.is_empty() {
            if !ctx.json {
                writeln!(ctx.err, "note: the log ends early: {dropped}")?;
            }
        } else {
            for line in analysis.damage {
                ctx.damage(line);
            }
        }
    }
    Ok(instance)
}

/// An engine error at open, with the command that explains it.
pub fn open_error(dir: &Path, err: &aedb::AedbError) -> CliError {
    let text = err.to_string();
    let d = dir.display();
    let hint = if text.contains("HMAC") {
        "the log is protected by an HMAC: give its key with --hmac-key-hex (64 hex digits)".into()
    } else if text.contains("meta page") {
        format!("`aedb meta --data-dir {d}` shows both meta pages")
    } else if text.contains("WAL") || text.contains("log") {
        format!(
            "`aedb wal dump --data-dir {d}` shows where the log is damaged; --permissive \
             opens the valid prefix"
        )
    } else if text.contains("page") {
        format!("`aedb check invariants --data-dir {d}` lists every damaged page")
    } else {
        "is this an aedb database directory?".into()
    };
    CliError::at(dir, format!("cannot open read-only: {text}")).hint(hint)
}
