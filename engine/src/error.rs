//! The public error type (`aedb::error::AedbError`). Each lower crate has its own error enum;
//! they are converted here, at the boundary.

use std::path::PathBuf;

use aedb_pager::PagerError;
use aedb_wal::frame::FrameProblem;
use aedb_wal::WalError;

pub use aedb_access::CorruptionKind;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AedbError {
    #[error("I/O error: {0}")]
    Io(String),

    /// Damage reported only as text: a stored record that does not decode, a damaged log
    /// frame or segment header, neither valid meta page. Damage a check classified is
    /// [`AedbError::DataCorruption`]; both have the code "corruption".
    #[error("data corruption: {0}")]
    Corruption(String),

    /// Damage a check classified: a data-file page that fails its checksum, type or structure
    /// check (`page` names it), or a log frame that fails its HMAC, hash chain or order check
    /// (`page` is `None`; the message names the segment and offset).
    #[error("data corruption: {message}")]
    DataCorruption {
        page: Option<u64>,
        kind: CorruptionKind,
        message: String,
    },

    #[error("{path} is locked by another process")]
    Locked { path: PathBuf },

    #[error("the commit queue is full (max_inflight_commits); retry later")]
    QueueFull,

    #[error("the instance stopped accepting durable work after an I/O failure ({0}); reopen it to recover")]
    Failed(String),

    #[error("invalid configuration: {message}")]
    InvalidConfig { message: String },

    #[error("key of {len} bytes exceeds the maximum of {max}")]
    KeyTooLarge { len: usize, max: usize },

    #[error("value of {len} bytes exceeds the maximum of {max}")]
    ValueTooLarge { len: usize, max: usize },

    #[error("transaction of {len} bytes exceeds max_transaction_bytes ({max})")]
    TransactionTooLarge { len: usize, max: usize },

    #[error("the instance is shut down")]
    Closed,

    #[error("an operation of this commit failed ({0}); nothing of it was applied")]
    TransactionPoisoned(String),

    #[error("the commit body panicked ({0}); nothing of it was applied")]
    CommitPanicked(String),

    #[error("the instance was opened read-only")]
    ReadOnly,

    #[error("validation failed: {0}")]
    Validation(String),

    #[error("{resource_type} '{resource_id}' not found")]
    NotFound {
        resource_type: ResourceType,
        resource_id: String,
    },

    #[error("{resource_type} '{resource_id}' already exists")]
    AlreadyExists {
        resource_type: ResourceType,
        resource_id: String,
    },

    #[error("duplicate primary key in table '{table}': {key}")]
    DuplicatePK { table: String, key: String },

    #[error("unique index '{index}' of table '{table}' already holds {key}")]
    UniqueViolation {
        table: String,
        index: String,
        key: String,
    },

    #[error("column '{column}' of table '{table}' may not be null")]
    NotNullViolation { table: String, column: String },

    #[error("column '{column}' of table '{table}' is {expected}, got {actual}")]
    TypeMismatch {
        table: String,
        column: String,
        expected: String,
        actual: String,
    },

    #[error("table '{table}' has no column '{column}'")]
    UnknownColumn { table: String, column: String },

    #[error("check constraint '{constraint}' of table '{table}' failed")]
    CheckConstraintFailed { table: String, constraint: String },

    #[error("arithmetic underflow")]
    Underflow,

    #[error("arithmetic overflow")]
    Overflow,

    #[error("conflict: {0}")]
    Conflict(String),

    #[error("not supported yet: {0}")]
    Unsupported(String),

    #[error("encoding failed: {0}")]
    Encode(String),

    #[error("decoding failed: {0}")]
    Decode(String),

    #[error("integrity check failed: {message}")]
    IntegrityError { message: String },

    #[error("unavailable: {message}")]
    Unavailable { message: String },

    #[error("a checkpoint is in progress")]
    CheckpointInProgress,

    #[error("foreign key '{fk_name}' of table '{table}': no row {ref_key} in '{ref_table}'")]
    ForeignKeyViolation {
        fk_name: String,
        table: String,
        ref_table: String,
        ref_key: String,
    },

    #[error("permission denied: {0}")]
    PermissionDenied(String),

    #[error("timed out")]
    Timeout,

    #[error("timed out waiting for a partition lock")]
    PartitionLockTimeout,

    #[error("timed out applying an epoch")]
    EpochApplyTimeout,

    #[error("parallel apply was cancelled")]
    ParallelApplyCancelled,

    #[error("a parallel apply worker panicked")]
    ParallelApplyWorkerPanicked,

    #[error("the snapshot expired")]
    SnapshotExpired,

    #[error("read assertion {index} failed: {assertion:?} (actual: {actual:?})")]
    AssertionFailed {
        index: usize,
        assertion: Box<crate::commit::tx::ReadAssertion>,
        actual: Box<crate::commit::tx::AssertionActual>,
    },

    /// A write (a predicate mutation, a read-set revalidation) would examine more than
    /// `max_scan_rows` rows; `estimated_rows` is what it examined or expected to.
    #[error("scan of about {estimated_rows} rows exceeds max_scan_rows ({max_scan_rows})")]
    ScanBoundExceeded {
        estimated_rows: u64,
        max_scan_rows: u64,
    },
}

pub use aedb_catalog::ResourceType;

impl AedbError {
    /// A stable identifier for each kind, for logs and clients.
    pub fn code_str(&self) -> &'static str {
        match self {
            AedbError::Io(_) => "io",
            AedbError::Corruption(_) | AedbError::DataCorruption { .. } => "corruption",
            AedbError::Locked { .. } => "locked",
            AedbError::QueueFull => "queue_full",
            AedbError::Encode(_) => "encode",
            AedbError::Decode(_) => "decode",
            AedbError::IntegrityError { .. } => "integrity_error",
            AedbError::Unavailable { .. } => "unavailable",
            AedbError::CheckpointInProgress => "checkpoint_in_progress",
            AedbError::ForeignKeyViolation { .. } => "foreign_key_violation",
            AedbError::PermissionDenied(_) => "permission_denied",
            AedbError::Timeout => "timeout",
            AedbError::PartitionLockTimeout => "partition_lock_timeout",
            AedbError::EpochApplyTimeout => "epoch_apply_timeout",
            AedbError::ParallelApplyCancelled => "parallel_apply_cancelled",
            AedbError::ParallelApplyWorkerPanicked => "parallel_apply_worker_panicked",
            AedbError::SnapshotExpired => "snapshot_expired",
            AedbError::Failed(_) => "failed",
            AedbError::InvalidConfig { .. } => "invalid_config",
            AedbError::KeyTooLarge { .. } => "key_too_large",
            AedbError::ValueTooLarge { .. } => "value_too_large",
            AedbError::TransactionTooLarge { .. } => "transaction_too_large",
            AedbError::Closed => "closed",
            AedbError::CommitPanicked(_) => "commit_panicked",
            AedbError::ReadOnly => "read_only",
            AedbError::Validation(_) => "validation",
            AedbError::NotFound { resource_type, .. } => match resource_type {
                ResourceType::Project => "project_not_found",
                ResourceType::Scope => "scope_not_found",
                ResourceType::Table => "table_not_found",
                ResourceType::Index => "index_not_found",
            },
            AedbError::AlreadyExists { resource_type, .. } => match resource_type {
                ResourceType::Project => "project_already_exists",
                ResourceType::Scope => "scope_already_exists",
                ResourceType::Table => "table_already_exists",
                ResourceType::Index => "index_already_exists",
            },
            AedbError::DuplicatePK { .. } => "duplicate_primary_key",
            AedbError::UniqueViolation { .. } => "unique_violation",
            AedbError::NotNullViolation { .. } => "not_null_violation",
            AedbError::TypeMismatch { .. } => "type_mismatch",
            AedbError::UnknownColumn { .. } => "unknown_column",
            AedbError::CheckConstraintFailed { .. } => "check_constraint_failed",
            AedbError::Underflow => "underflow",
            AedbError::Overflow => "overflow",
            AedbError::Conflict(_) => "conflict",
            AedbError::Unsupported(_) => "unsupported",
            AedbError::TransactionPoisoned(_) => "transaction_poisoned",
            AedbError::AssertionFailed { .. } => "assertion_failed",
            AedbError::ScanBoundExceeded { .. } => "scan_bound_exceeded",
        }
    }

    /// Whether stored data is damaged (either corruption variant).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            AedbError::Corruption(_) | AedbError::DataCorruption { .. }
        )
    }

    /// The damaged data-file page, when the error is corruption a page check found.
    pub fn corrupt_page(&self) -> Option<u64> {
        match self {
            AedbError::DataCorruption { page, .. } => *page,
            _ => None,
        }
    }

    /// The kind of damage: `Some(CorruptionKind::Other)` for damage reported only as text,
    /// `None` when the error is not corruption.
    pub fn corruption_kind(&self) -> Option<CorruptionKind> {
        match self {
            AedbError::DataCorruption { kind, .. } => Some(*kind),
            AedbError::Corruption(_) => Some(CorruptionKind::Other),
            _ => None,
        }
    }
}

/// Damage to a page becomes [`AedbError::DataCorruption`] naming the page. Neither valid
/// meta page stays [`AedbError::Corruption`] and an I/O failure [`AedbError::Io`] with the
/// text of the `IoError` (op, offset, kind), as callers match them (engine/tests).
impl From<PagerError> for AedbError {
    fn from(err: PagerError) -> Self {
        if let Some((page, kind)) = CorruptionKind::of_page(&err) {
            return AedbError::DataCorruption {
                page: Some(page),
                kind,
                message: err.to_string(),
            };
        }
        match err {
            PagerError::Io(io) => AedbError::Io(io.to_string()),
            PagerError::KeyTooLarge { len, max } => AedbError::KeyTooLarge { len, max },
            PagerError::ValueTooLarge { len, max } => AedbError::ValueTooLarge { len, max },
            PagerError::InvalidConfig(message) => AedbError::InvalidConfig { message },
            PagerError::Failed(reason) | PagerError::Refused(reason) => AedbError::Failed(reason),
            PagerError::ReadOnly => AedbError::ReadOnly,
            PagerError::Poisoned(reason) => AedbError::TransactionPoisoned(reason),
            other @ PagerError::NoValidMeta { .. } => AedbError::Corruption(other.to_string()),
            other => AedbError::Validation(other.to_string()),
        }
    }
}

/// A log frame or segment that fails an integrity check (HMAC, hash chain, order) becomes
/// [`AedbError::DataCorruption`] of a log kind; other damage to the log stays
/// [`AedbError::Corruption`].
impl From<WalError> for AedbError {
    fn from(err: WalError) -> Self {
        let kind = match &err {
            WalError::Io(_) | WalError::FrameTooLarge { .. } => None,
            WalError::Corrupt { reason, .. } => log_check(reason),
            WalError::MissingKey => Some(CorruptionKind::LogHmac),
            _ => None,
        };
        if let Some(kind) = kind {
            return AedbError::DataCorruption {
                page: None,
                kind,
                message: err.to_string(),
            };
        }
        match err {
            WalError::Io(io) => AedbError::Io(io.to_string()),
            WalError::FrameTooLarge { len, max } => AedbError::TransactionTooLarge { len, max },
            other => AedbError::Corruption(other.to_string()),
        }
    }
}

/// The integrity check a log `Corrupt` reason reports, if any. The WAL names the check only in
/// the reason's text: `frame LSN n fails verification: {FrameProblem:?}` and `segment header
/// breaks the hash chain` (wal/src/reader.rs); the problem names are taken from
/// `FrameProblem` itself, so that a rename there does not go unnoticed.
fn log_check(reason: &str) -> Option<CorruptionKind> {
    const VERIFICATION: &str = "fails verification: ";
    if reason.contains("segment header breaks the hash chain") {
        return Some(CorruptionKind::LogChain);
    }
    let (_, problem) = reason.split_once(VERIFICATION)?;
    let named = |p: FrameProblem| problem.starts_with(&format!("{p:?}"));
    if named(FrameProblem::HmacMismatch) {
        Some(CorruptionKind::LogHmac)
    } else if named(FrameProblem::ChainMismatch) {
        Some(CorruptionKind::LogChain)
    } else if problem.starts_with("Protection(") {
        // frame.rs / reader.rs: a frame protected otherwise than configured, or out of order.
        Some(if problem.contains("HMAC") {
            CorruptionKind::LogHmac
        } else if problem.contains("chain hash") {
            CorruptionKind::LogChain
        } else {
            CorruptionKind::LogOrder
        })
    } else {
        None
    }
}

pub type Result<T, E = AedbError> = std::result::Result<T, E>;

/// Corruption, I/O and the scan bound stay typed; `TableNotFound` and `ColumnNotFound` become
/// their engine forms; the rest is `Validation` with the query error's text.
impl From<aedb_query::QueryError> for AedbError {
    fn from(err: aedb_query::QueryError) -> Self {
        use aedb_query::QueryError;
        match err {
            QueryError::TableNotFound { table, .. } => AedbError::NotFound {
                resource_type: ResourceType::Table,
                resource_id: table,
            },
            QueryError::ColumnNotFound { table, column } => {
                AedbError::UnknownColumn { table, column }
            }
            QueryError::ScanBoundExceeded {
                estimated_rows,
                max_scan_rows,
            } => AedbError::ScanBoundExceeded {
                estimated_rows,
                max_scan_rows,
            },
            QueryError::Corruption {
                page: None,
                kind: CorruptionKind::Other,
                message,
            } => AedbError::Corruption(message),
            QueryError::Corruption {
                page,
                kind,
                message,
            } => AedbError::DataCorruption {
                page,
                kind,
                message,
            },
            // The op and kind are in the message (`IoError`'s text).
            QueryError::Io { message, .. } => AedbError::Io(message),
            other => AedbError::Validation(other.to_string()),
        }
    }
}

/// Corruption, I/O and the scan bound stay typed (`Corruption(text)` is corruption of kind
/// `Other` without a page); `Validation`, a missing table and an unknown column become their
/// query forms; the rest is `InternalError` with the error's text.
impl From<AedbError> for aedb_query::QueryError {
    fn from(err: AedbError) -> Self {
        use aedb_query::QueryError;
        match err {
            AedbError::Validation(reason) => QueryError::InvalidQuery { reason },
            AedbError::NotFound {
                resource_type: ResourceType::Table,
                resource_id,
            } => QueryError::TableNotFound {
                project_id: String::new(),
                table: resource_id,
            },
            AedbError::UnknownColumn { table, column } => {
                QueryError::ColumnNotFound { table, column }
            }
            AedbError::ScanBoundExceeded {
                estimated_rows,
                max_scan_rows,
            } => QueryError::ScanBoundExceeded {
                estimated_rows,
                max_scan_rows,
            },
            AedbError::DataCorruption {
                page,
                kind,
                message,
            } => QueryError::Corruption {
                page,
                kind,
                message,
            },
            AedbError::Corruption(message) => QueryError::corruption(message),
            AedbError::Io(message) => QueryError::Io {
                op: None,
                kind: None,
                message,
            },
            // As the original: a full queue reads as the snapshot limit.
            AedbError::QueueFull => QueryError::SnapshotLimitReached,
            AedbError::SnapshotExpired => QueryError::SnapshotExpired,
            AedbError::PermissionDenied(permission) => QueryError::PermissionDenied {
                permission,
                scope: String::new(),
            },
            other => QueryError::InternalError(other.to_string()),
        }
    }
}

impl From<aedb_catalog::eval::ExprError> for AedbError {
    fn from(err: aedb_catalog::eval::ExprError) -> Self {
        // The same error a query would report, as the write path always has.
        aedb_query::QueryError::from(err).into()
    }
}

/// A failure reading a table on the write path (a `DeleteWhere`'s rows, a row an assertion
/// reads): the pager's error as the pager reports it, the rest as the same failure in a query.
impl From<aedb_access::AccessError> for AedbError {
    fn from(err: aedb_access::AccessError) -> Self {
        match err {
            aedb_access::AccessError::Pager(e) => e.into(),
            other => aedb_query::QueryError::from(other).into(),
        }
    }
}
