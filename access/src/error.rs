//! What reading a table can fail with ([`AccessError`]), and the kinds of damage a check can
//! find ([`CorruptionKind`], shared by every layer above that reports corruption).

use aedb_catalog::eval::ExprError;
use aedb_pager::PagerError;

/// Which check found damaged data: the kind of the query layer's `QueryError::Corruption` and
/// of the engine's `AedbError::DataCorruption`, which carry the same fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// A data-file page whose stored checksum does not match its bytes.
    Checksum,
    /// A data-file page of another type than the reference to it expects.
    WrongPageType,
    /// A data-file page whose content fails a structural check.
    Malformed,
    /// A log frame whose HMAC does not verify (a wrong key, or an altered frame), or that is
    /// protected by an HMAC differently from the configuration (an HMAC and no key configured,
    /// a key configured and no HMAC).
    LogHmac,
    /// A log frame or segment that does not continue the hash chain, or lacks a chain hash the
    /// configuration requires.
    LogChain,
    /// A log frame whose checks hold but whose LSN is not the one due.
    LogOrder,
    /// Damage a layer reported only as text (`AedbError::Corruption`).
    Other,
}

impl CorruptionKind {
    /// The damaged page and the check that found it, for a pager error that reports damage to
    /// one page.
    pub fn of_page(err: &PagerError) -> Option<(u64, CorruptionKind)> {
        match err {
            PagerError::Checksum { page, .. } => Some((*page, CorruptionKind::Checksum)),
            PagerError::WrongPageType { page, .. } => Some((*page, CorruptionKind::WrongPageType)),
            PagerError::Corrupt { page, .. } => Some((*page, CorruptionKind::Malformed)),
            _ => None,
        }
    }

    /// A stable name, for logs and machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            CorruptionKind::Checksum => "checksum",
            CorruptionKind::WrongPageType => "wrong_page_type",
            CorruptionKind::Malformed => "malformed",
            CorruptionKind::LogHmac => "log_hmac",
            CorruptionKind::LogChain => "log_chain",
            CorruptionKind::LogOrder => "log_order",
            CorruptionKind::Other => "other",
        }
    }

    /// Whether the damage is in the write-ahead log (else in the data file, or not known).
    pub fn is_log(self) -> bool {
        matches!(
            self,
            CorruptionKind::LogHmac | CorruptionKind::LogChain | CorruptionKind::LogOrder
        )
    }
}

/// A failure to read a table's rows. The query layer and the engine each turn it into their
/// own error (`QueryError`, `AedbError`), keeping corruption, I/O and the scan bound typed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The predicate does not fit the table (an unknown column, a type mismatch).
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// The rows a predicate needs exceed the scan bound.
    #[error("scan of about {estimated_rows} rows exceeds max_scan_rows ({max_scan_rows})")]
    ScanBoundExceeded {
        estimated_rows: u64,
        max_scan_rows: u64,
    },
    /// The pager failed: damage to a page, I/O, or a transaction that cannot be read.
    #[error(transparent)]
    Pager(#[from] PagerError),
    /// A stored row or index entry whose bytes do not decode.
    #[error("data corruption: {0}")]
    Corrupt(String),
    /// A schema that contradicts itself (an index the access path names is gone): a bug.
    #[error("internal error: {0}")]
    Internal(String),
}
