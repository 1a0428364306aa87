//! The trust-mode marker: a note in the data directory that the database was once opened with
//! weaker settings (permissive recovery, which skips damaged log frames, or without the log's
//! hash chain). What such an open may have let through cannot be told afterwards, so a secure
//! or production open of that directory is refused rather than vouching for it.
//!
//! | file              | contents                                                        |
//! |-------------------|-----------------------------------------------------------------|
//! | `trust_mode`      | UTF-8 text: `aedb trust mode 1`, newline, `weakened:` and the   |
//! |                   | settings of the first weak open (e.g. `recovery=Permissive`)    |
//! | `trust_mode.hmac` | HMAC-SHA256 of `trust_mode` under the HMAC key of that open, as |
//! |                   | 64 hex digits; absent when that open had no key                 |
//!
//! The marker is written (and synced) before the weak open changes anything, and never
//! removed by the engine. It guards against an operator's mistake, not an attacker: whoever
//! can write the directory can delete it (see docs/SECURITY_ACCEPTANCE_CRITERIA.md).

use std::path::Path;

use aedb_pager::io::{read_whole_file, write_file_durably, IoErrorKind, Vfs};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::AedbConfig;
use crate::error::{AedbError, Result};

pub const MARKER_FILE: &str = "trust_mode";
pub const MARKER_HMAC_FILE: &str = "trust_mode.hmac";
const HEADER: &str = "aedb trust mode 1\n";
/// Longer marker files are not ours.
const MAX_MARKER_BYTES: usize = 4096;

/// Whether `config` opens with weaker settings than a secure open demands.
pub fn weakened(config: &AedbConfig) -> bool {
    !config.strict_recovery() || !config.hash_chain_required
}

fn mac(key: &[u8; 32], text: &[u8]) -> Hmac<Sha256> {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(text);
    mac
}

fn read_optional(vfs: &dyn Vfs, path: &Path) -> Result<Option<Vec<u8>>> {
    match read_whole_file(vfs, path, MAX_MARKER_BYTES) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(e.kind, IoErrorKind::Os(libc::ENOENT)) => Ok(None),
        Err(e) => Err(AedbError::Io(format!("{}: {e}", path.display()))),
    }
}

/// Before a writable open with `config`: a weak one records itself (once).
pub fn note_open(vfs: &dyn Vfs, dir: &Path, config: &AedbConfig) -> Result<()> {
    if !weakened(config) || read_optional(vfs, &dir.join(MARKER_FILE))?.is_some() {
        return Ok(());
    }
    let text = format!(
        "{HEADER}weakened: recovery={:?} hash_chain_required={}\n",
        config.recovery_mode, config.hash_chain_required
    );
    let io = |e: aedb_pager::io::IoError| AedbError::Io(e.to_string());
    vfs.create_dir_all(dir).map_err(io)?;
    if let Some(key) = &config.hmac_key {
        let tag = hex::encode(mac(key, text.as_bytes()).finalize().into_bytes());
        write_file_durably(vfs, dir, MARKER_HMAC_FILE, tag.as_bytes()).map_err(io)?;
    }
    write_file_durably(vfs, dir, MARKER_FILE, text.as_bytes()).map_err(io)?;
    tracing::warn!(dir = %dir.display(), "opened with weakened settings: a secure open of this directory will be refused");
    Ok(())
}

/// Before a secure or production open: refuse a directory once opened with weaker settings.
pub fn check_strict_open(vfs: &dyn Vfs, dir: &Path, config: &AedbConfig) -> Result<()> {
    let Some(text) = read_optional(vfs, &dir.join(MARKER_FILE))? else {
        return Ok(());
    };
    if let (Some(tag), Some(key)) = (
        read_optional(vfs, &dir.join(MARKER_HMAC_FILE))?,
        &config.hmac_key,
    ) {
        let tag = hex::decode(tag.trim_ascii()).unwrap_or_default();
        if mac(key, &text).verify_slice(&tag).is_err() {
            return Err(AedbError::IntegrityError {
                message: format!(
                    "trust mode marker {} does not match its HMAC (altered, or written under \
                     another key)",
                    dir.join(MARKER_FILE).display()
                ),
            });
        }
    }
    Err(AedbError::Validation(format!(
        "strict open denied: data directory {} was previously opened with non-strict recovery \
         or hash-chain disabled ({})",
        dir.display(),
        String::from_utf8_lossy(&text)
            .lines()
            .nth(1)
            .unwrap_or("marker unreadable")
    )))
}
