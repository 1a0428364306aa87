//! Opening a database for inspection: read-only (no byte written, no lock), with the meta pages
//! and the end of the log checked first so that damage is named even when opening copes.

use std::future::Future;
use std::path::Path;

use aedb::error::CorruptionKind;
use aedb::{AedbError, AedbInstance};

use crate::cli::DbArgs;
use crate::datafile::{read_metas, DataFile, MetaState};
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

/// Damage visible without the engine: invalid meta pages, a log that is cut short. Returns
/// the meta pages as read.
pub fn preflight(dir: &Path, ctx: &mut Ctx<'_>) -> Res<MetaState> {
    let df = DataFile::open(dir)?;
    let metas = read_metas(&df)?;
    for line in metas.damage(&df.path) {
        ctx.damage(line);
    }
    Ok(metas)
}

/// Open read-only: the newest checkpoint plus the log redone in memory.
pub fn open_read_only(args: &DbArgs, ctx: &mut Ctx<'_>) -> Res<AedbInstance> {
    let dir = args.data_dir.as_path();
    let metas = preflight(dir, ctx)?;
    let config = args.config()?;
    let seen = Seen {
        key_given: config.hmac_key.is_some(),
        meta_valid: metas.current.is_some(),
    };
    let instance =
        AedbInstance::open_read_only(config, dir).map_err(|e| open_error(dir, &e, seen))?;
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

/// What the CLI itself read of a database the engine refuses to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// An HMAC key was given (`--hmac-key-hex`).
    pub key_given: bool,
    /// A meta page verifies (`preflight`).
    pub meta_valid: bool,
}

/// An engine error at open, with the command that explains it.
pub fn open_error(dir: &Path, err: &AedbError, seen: Seen) -> CliError {
    CliError::at(dir, format!("cannot open read-only: {err}")).hint(open_hint(dir, err, seen))
}

/// The command that explains an engine error at open, chosen by the error's kind (never by its
/// text). Damage the engine reports only as text (`AedbError::Corruption`) is placed by what
/// the CLI read itself: no valid meta page, or else the log (the rest of what opening reads).
pub fn open_hint(dir: &Path, err: &AedbError, seen: Seen) -> String {
    let d = dir.display();
    let log = || {
        format!(
            "`aedb wal dump --data-dir {d}` shows where the log is damaged; --permissive \
             opens the valid prefix"
        )
    };
    match err {
        AedbError::DataCorruption {
            kind: CorruptionKind::LogHmac,
            ..
        } if !seen.key_given => {
            "the log is protected by an HMAC: give its key with --hmac-key-hex (64 hex digits)"
                .into()
        }
        AedbError::DataCorruption {
            kind: CorruptionKind::LogHmac,
            ..
        } => format!(
            "the log's HMAC does not verify with the key given: is --hmac-key-hex the key it \
             was written with? `aedb wal dump --data-dir {d} --hmac-key-hex KEY` shows which \
             frames fail (a wrong key fails them all)"
        ),
        AedbError::DataCorruption { page: Some(_), .. } => {
            format!("`aedb check invariants --data-dir {d}` lists every damaged page")
        }
        AedbError::DataCorruption { .. } => log(),
        AedbError::Corruption(_) if !seen.meta_valid => {
            format!("`aedb meta --data-dir {d}` shows both meta pages")
        }
        AedbError::Corruption(_) => log(),
        AedbError::Io(_) => {
            format!("the data directory {d} could not be read: check its permissions and the disk")
        }
        _ => "is this an aedb database directory?".into(),
    }
}
