//! Errors of the storage core.

use std::path::PathBuf;

use crate::io::IoError;
use crate::page::{PageId, PageType};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PagerError {
    #[error("I/O error: {0}")]
    Io(#[from] IoError),

    #[error("page {page}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        page: PageId,
        stored: u32,
        computed: u32,
    },

    #[error("page {page} is corrupt: {reason}")]
    Corrupt { page: PageId, reason: String },

    #[error("page {page}: expected a {expected:?} page, found type byte {found}")]
    WrongPageType {
        page: PageId,
        expected: PageType,
        found: u8,
    },

    #[error("{path}: neither meta page is valid ({reason}); the file is not an aedb data file or both meta pages are damaged")]
    NoValidMeta { path: PathBuf, reason: String },

    #[error("key of {len} bytes exceeds the maximum of {max} bytes for this page size")]
    KeyTooLarge { len: usize, max: usize },

    #[error("value of {len} bytes exceeds the maximum of {max} bytes")]
    ValueTooLarge { len: usize, max: usize },

    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    #[error("tree {0:?} does not exist")]
    NoSuchTree(String),

    #[error("the store refused further writes after an earlier I/O failure: {0}")]
    Failed(String),

    #[error("the store is read-only")]
    ReadOnly,

    /// A write transaction an operation failed in: it cannot be published.
    #[error("the transaction cannot commit: {0}")]
    Poisoned(String),

    /// An API used against its contract (a bug in the caller, not bad data or configuration).
    #[error("misuse: {0}")]
    Misuse(String),

    /// A checkpoint its caller called off before it captured anything (nothing was written).
    #[error("checkpoint refused: {0}")]
    Refused(String),
}

impl PagerError {
    pub fn corrupt(page: PageId, reason: impl Into<String>) -> Self {
        PagerError::Corrupt {
            page,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = PagerError> = std::result::Result<T, E>;
