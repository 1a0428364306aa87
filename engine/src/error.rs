//! The public error type (`aedb::error::AedbError`). Each lower crate has its own error enum;
//! they are converted here, at the boundary.

use std::path::PathBuf;

use aedb_pager::PagerError;
use aedb_wal::WalError;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AedbError {
    #[error("I/O error: {0}")]
    Io(String),

    #[error("data corruption: {0}")]
    Corruption(String),

    #[error("{path} is locked by another process")]
    Locked { path: PathBuf },

    #[error("the commit queue is full ({capacity} commits waiting); retry later")]
    QueueFull { capacity: usize },

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

    #[error("read assertion {index} failed: {assertion} (actual: {actual})")]
    AssertionFailed {
        index: usize,
        assertion: String,
        actual: String,
    },
}

/// What a `NotFound` / `AlreadyExists` error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Project,
    Scope,
    Table,
    Index,
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceType::Project => "project",
            ResourceType::Scope => "scope",
            ResourceType::Table => "table",
            ResourceType::Index => "index",
        })
    }
}

impl AedbError {
    /// A stable identifier for each kind, for logs and clients.
    pub fn code_str(&self) -> &'static str {
        match self {
            AedbError::Io(_) => "io",
            AedbError::Corruption(_) => "corruption",
            AedbError::Locked { .. } => "locked",
            AedbError::QueueFull { .. } => "queue_full",
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
        }
    }
}

impl From<PagerError> for AedbError {
    fn from(err: PagerError) -> Self {
        match err {
            PagerError::Io(io) => AedbError::Io(io.to_string()),
            PagerError::KeyTooLarge { len, max } => AedbError::KeyTooLarge { len, max },
            PagerError::ValueTooLarge { len, max } => AedbError::ValueTooLarge { len, max },
            PagerError::InvalidConfig(message) => AedbError::InvalidConfig { message },
            PagerError::Failed(reason) | PagerError::Refused(reason) => AedbError::Failed(reason),
            PagerError::ReadOnly => AedbError::ReadOnly,
            PagerError::Poisoned(reason) => AedbError::TransactionPoisoned(reason),
            other @ (PagerError::Checksum { .. }
            | PagerError::Corrupt { .. }
            | PagerError::WrongPageType { .. }
            | PagerError::NoValidMeta { .. }) => AedbError::Corruption(other.to_string()),
            other => AedbError::Validation(other.to_string()),
        }
    }
}

impl From<WalError> for AedbError {
    fn from(err: WalError) -> Self {
        match err {
            WalError::Io(io) => AedbError::Io(io.to_string()),
            WalError::FrameTooLarge { len, max } => AedbError::TransactionTooLarge { len, max },
            other => AedbError::Corruption(other.to_string()),
        }
    }
}

pub type Result<T, E = AedbError> = std::result::Result<T, E>;

impl From<aedb_query::QueryError> for AedbError {
    fn from(err: aedb_query::QueryError) -> Self {
        match err {
            aedb_query::QueryError::TableNotFound { table, .. } => AedbError::NotFound {
                resource_type: ResourceType::Table,
                resource_id: table,
            },
            aedb_query::QueryError::ColumnNotFound { table, column } => {
                AedbError::UnknownColumn { table, column }
            }
            other => AedbError::Validation(other.to_string()),
        }
    }
}

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
