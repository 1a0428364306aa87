//! Errors of the write-ahead log.

use std::path::PathBuf;

use aedb_io::IoError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    #[error("WAL I/O error: {0}")]
    Io(#[from] IoError),

    #[error("WAL corrupt in {segment} at offset {offset}: {reason}")]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("WAL frame payload of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge { len: usize, max: usize },

    #[error("WAL record is malformed: {0}")]
    BadRecord(String),

    #[error("the WAL needs an HMAC key to verify its frames, and none is configured")]
    MissingKey,
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;
